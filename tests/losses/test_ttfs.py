"""TTFSLoss against the W&P formula written out in NumPy; silent outputs; the silent guard."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _tiny import NO_GUARD, T_END, X, trainer_heads, with_output_weights

import eventax as ex
from eventax.losses import TTFSLoss

TAU0, TAU1, ALPHA, T_NS = 0.8, 5.0, 0.01, 10.0
INF = np.inf


def sim_of(times, states=None):
    t = jnp.asarray(times, jnp.float32)
    return ex.Simulation(t, states, None, jnp.asarray(T_NS, jnp.float32))


def expected(times, label, tau0=TAU0, tau1=TAU1, alpha=ALPHA, t_ns=T_NS):
    """W&P loss and its gradient w.r.t. the spike times, by formula (float64)."""
    t = np.asarray(times, np.float64)
    spiking = t < t_ns
    t = np.where(spiking, t, t_ns)
    z = -t / tau0
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    value = np.log(np.exp(z - z.max()).sum()) + z.max() - z[label] + alpha * np.expm1(t[label] / tau1)
    onehot = np.eye(len(t))[label]
    grad = -(p - onehot) / tau0 + onehot * alpha / tau1 * np.exp(t[label] / tau1)
    return value, np.where(spiking, grad, 0.0)


@jax.jit
def _value_and_time_grad(times, label):
    loss = TTFSLoss(tau0=TAU0, tau1=TAU1, alpha=ALPHA, no_spike_time=T_NS, silent_guard=0.0)
    return jax.value_and_grad(lambda t: loss(sim_of(t), label))(times)


@pytest.mark.parametrize(
    "times, label",
    [
        ([2.0, 3.5, 6.0], 1),  # all spike
        ([2.0, INF, 6.0], 0),  # a silent non-target
        ([2.0, INF, 6.0], 1),  # the target is silent
        ([INF, INF, INF], 2),  # all silent
        ([2.0, 12.0, INF], 1),  # a spike after no_spike_time counts as silent
    ],
)
def test_value_and_time_gradient_match_formula(times, label):
    value, grad = _value_and_time_grad(jnp.asarray(times, jnp.float32), label)
    want_value, want_grad = expected(times, label)
    assert np.isfinite(float(value)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(float(value), want_value, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(grad), want_grad, rtol=1e-5, atol=1e-6)


def test_a_label_outside_the_outputs_is_an_error():
    """Label 7 of a 3-output network gave a finite loss (an out-of-range index is clamped)."""
    loss, sim = TTFSLoss(silent_guard=0.0), sim_of([4.0, 2.0, INF])
    assert np.isfinite(float(loss(sim, 2)))
    for label in (3, 7, -1):
        with pytest.raises(ValueError, match="`label` must be a class index in \\[0, 3\\)"):
            loss(sim, label)
    with pytest.raises(Exception, match="`label` must be a class index"):  # inside jit: at run time
        jax.block_until_ready(jax.jit(loss)(sim, 7))


def test_defaults_and_logits_and_predict():
    loss = TTFSLoss()
    assert (loss.tau0, loss.tau1, loss.alpha, loss.no_spike_time, loss.silent_guard) == (0.5, 6.4, 3e-3, 30.0, 10.0)
    sim = sim_of([4.0, 2.0, INF])
    np.testing.assert_allclose(np.asarray(loss.logits(sim)), [-8.0, -4.0, -60.0])
    assert int(loss.predict(sim)) == 1
    assert int(loss.predict(sim_of([3.0, 3.0, 5.0]))) == 0  # tie -> lowest index
    assert int(loss.predict(sim_of([INF, INF, INF]))) == 0
    assert int(loss.predict(sim_of([INF, 7.0, 7.0]))) == 1


def test_guard_term_on_a_handmade_simulation():
    # states (n_out=2, n_times=3, channels=2); channel 0 is the membrane.
    states = jnp.array([[[0.2, 0.0], [0.9, 0.0], [0.4, 0.0]], [[0.1, 0.0], [0.3, 0.0], [0.2, 0.0]]])
    loss = TTFSLoss(tau0=TAU0, tau1=TAU1, alpha=ALPHA, no_spike_time=T_NS, silent_guard=2.0)

    @jax.jit
    def values_and_grad(states):
        # Labels traced under vmap, as in a trainer.
        values = jax.vmap(lambda y: loss(sim_of([3.0, INF], states), y))(jnp.array([0, 1]))
        return values, jax.grad(lambda s: loss(sim_of([3.0, INF], s), 1))(states)

    values, g = values_and_grad(states)
    # Output 1 is silent: as target it pays 2 * (1 - max v); as non-target nothing.
    want = [expected([3.0, INF], 0)[0], expected([3.0, INF], 1)[0] + 2.0 * (1.0 - 0.3)]
    np.testing.assert_allclose(np.asarray(values), want, rtol=1e-5, atol=1e-6)
    # Gradient w.r.t. the states: -silent_guard at the target's highest point only.
    want_g = np.zeros(states.shape)
    want_g[1, 1, 0] = -2.0
    np.testing.assert_allclose(np.asarray(g), want_g)


def test_guard_needs_observed_states():
    with pytest.raises(ValueError, match="silent_guard"):
        TTFSLoss()(sim_of([1.0, 2.0]), 0)


@pytest.mark.parametrize("kw", [{"tau0": 0.0}, {"tau1": -1.0}, {"alpha": -0.1}, {"guard_obs": 0}])
def test_bad_hyperparameters_raise(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        TTFSLoss(**kw)


# ----------------------------------------------------------------------------- on a network


def test_simulate_asks_for_what_the_loss_needs(tiny_net):
    sim = eqx.filter_jit(NO_GUARD.simulate)(tiny_net, X)  # no guard: stop at the last output's first spike
    assert sim.states is None and sim.spikes is None
    assert np.all(np.isfinite(np.asarray(sim.first_spikes)))
    assert float(sim.t_stop) == pytest.approx(float(jnp.max(sim.first_spikes)))
    np.testing.assert_allclose(float(NO_GUARD(sim, 1)), expected(np.asarray(sim.first_spikes), 1)[0], rtol=1e-5)
    values, _, guarded = trainer_heads(tiny_net, X, 1)  # guard: observe up to no_spike_time
    assert guarded.states.shape == (2, 8, 2) and float(guarded.t_stop) == T_END
    assert guarded.spikes is not None and int(guarded.spikes.n_spikes) > 0
    # Observation stops restart the Euler step grid: the same spikes within O(dt) error.
    np.testing.assert_allclose(np.asarray(guarded.first_spikes), np.asarray(sim.first_spikes), atol=1e-3)
    np.testing.assert_allclose(float(values[0]), float(values[1]))  # target spikes: no guard term


def _heads(net, label=1):
    values, grads, sim = trainer_heads(net, X, label)
    for leaf in (values, grads.neuron_model.weights, grads.neuron_model.ic):
        assert np.all(np.isfinite(np.asarray(leaf)))
    return np.asarray(values), np.asarray(grads.neuron_model.weights), sim


@pytest.mark.parametrize("case", ["target silent", "all silent"])
def test_network_value_and_gradient_are_finite_with_silent_outputs(tiny_net, case):
    net = with_output_weights(tiny_net, 1, 0.1)  # output 1 stays below threshold
    if case == "all silent":
        net = with_output_weights(net, 0, 0.0)
    values, _, sim = _heads(net)
    silent = ~np.isfinite(np.asarray(sim.first_spikes))
    assert silent[1] and silent[0] == (case == "all silent")
    assert np.all(np.isfinite(np.asarray(NO_GUARD.logits(sim))))


def test_guard_gives_a_silent_target_a_gradient(tiny_net):
    net = with_output_weights(tiny_net, 1, 0.1)
    values, w, sim = _heads(net, label=1)
    v_max = float(jnp.max(sim.states[1, :, 0]))
    np.testing.assert_allclose(values[0] - values[1], 1.0 - v_max, rtol=1e-5)  # the guard term
    on, off = w[0][:3, 4], w[1][:, 4]  # hidden -> target weights
    assert np.all(-on > 1e-2)  # descent raises the target's membrane through every hidden weight
    np.testing.assert_array_equal(off, 0.0)  # switched off: no gradient reaches the target
