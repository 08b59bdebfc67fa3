"""The fixed-step surrogate mode against hand-written recurrences, NumPy, and the event mode."""

from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eventax as ev
from eventax.neuron_models.base import CurrentSynapses, NeuronModel


class DeltaLIF(CurrentSynapses):
    """The textbook LIF, written as a user would: a spike adds its weight to `v`."""

    input_channel: ClassVar[int] = 0
    weights: jax.Array
    tmem: float = eqx.field(static=True)
    thresh: float = eqx.field(static=True, default=1.0)
    soft: bool = eqx.field(static=True, default=True)

    def init_state(self, n_neurons):
        return jnp.zeros((n_neurons, 1), self.dtype)

    def dynamics(self, t, y, args):
        return -y / self.tmem

    def spike_condition(self, t, y):
        return y[:, 0] - self.thresh

    def reset_spiked(self, y, spike_mask):
        v = y[:, 0] - self.thresh if self.soft else jnp.zeros_like(y[:, 0])
        return y.at[:, 0].set(jnp.where(spike_mask, v, y[:, 0]))


def _step_of(times, dt):
    """Grid step that delivers an input spike: the k with t_{k-1} < s <= t_k (s = 0: step 1)."""
    return np.maximum(np.ceil(times / dt), 1).astype(int)


def _counts(x, dt, n_steps):
    counts = np.zeros((n_steps + 1, x.shape[0]))
    for ch, row in enumerate(x):
        for s in row[np.isfinite(row)]:
            if _step_of(s, dt) <= n_steps:
                counts[_step_of(s, dt), ch] += 1
    return counts


@pytest.mark.parametrize("soft", [True, False], ids=["soft-reset", "hard-reset"])
def test_textbook_discrete_lif_recurrence(x64, soft):
    """reset="next_step", Euler, beta = 1 - dt/tmem: exactly

        U[t] = beta U[t-1] + W_in X[t] + W_rec S[t-1] - S[t-1] theta       (soft)
        U[t] = beta U[t-1] (1 - S[t-1]) + W_in X[t] + W_rec S[t-1]          (hard)
        S[t] = H(U[t] - theta)
    """
    n, n_in, dt, beta, theta, T = 6, 4, 0.5, 0.9, 1.0, 40.0
    rng = np.random.default_rng(1)
    w = rng.normal(0.3, 0.6, (n + n_in, n))
    model = DeltaLIF(jnp.asarray(w), tmem=dt / (1 - beta), thresh=theta, soft=soft, dtype=jnp.float64)
    net = ev.EvNN(model, n, T, n_in, dtype=jnp.float64)
    x = rng.uniform(0, T, (n_in, 5))
    fixed = net.fixed_step(dt, reset="next_step")
    spikes = np.asarray(fixed.spike_trains(jnp.asarray(x)))

    n_steps = int(T / dt)
    counts = _counts(x, dt, n_steps)
    u, s = np.zeros(n), np.zeros(n)
    expected = []
    for t in range(1, n_steps + 1):
        drive = counts[t] @ w[n:] + s @ w[:n]
        u = beta * u + drive - s * theta if soft else beta * u * (1 - s) + drive
        s = (u - theta >= 0).astype(float)
        expected.append(s)
    expected = np.array(expected)
    assert expected.sum() > 20  # the test exercises resets
    np.testing.assert_array_equal(spikes, expected)


def _numpy_lif(w, wmask, x, dt, n_steps, thresh, tsyn, tmem, vreset):
    """Current-based LIF, Euler, reset at the spike ("immediate"), one-step latency."""
    n = w.shape[1]
    w = np.where(wmask, w, 0.0)
    counts = _counts(x, dt, n_steps)
    v, i, s = np.zeros(n), np.zeros(n), np.zeros(n)
    spikes, membranes = [], []
    for k in range(1, n_steps + 1):
        v, i = v + dt * (-v + i) / tmem, i - dt * i / tsyn
        i = i + np.concatenate([s, counts[k]]) @ w
        s = (v - thresh >= 0).astype(float)
        spikes.append(s)
        membranes.append(v.copy())
        v = np.where(s > 0, vreset, v)
    return np.array(spikes), np.array(membranes)


def test_forward_equals_numpy_time_stepping_on_a_recurrent_lif_network(x64):
    n, n_in, T, dt = 8, 5, 30.0, 0.05
    rng = np.random.default_rng(2)
    wmask = rng.random((n + n_in, n)) < 0.6
    net = ev.EvNN(
        ev.LIF, n, T, n_in, wmask=wmask, output_neurons=[5, 6, 7], thresh=1.0, tsyn=5.0,
        tmem=20.0, vreset=-0.2, init_weights=rng.normal(1.5, 1.5, wmask.shape) * wmask,
        dtype=jnp.float64,
    )
    x = rng.uniform(0, 20, (n_in, 4))
    fixed = net.fixed_step(dt)
    obs = np.array([0.0, 3.0, 7.31, 12.5, 30.0])
    sim = fixed.run(jnp.asarray(x), obs_times=obs, max_spikes=2000)
    w = np.asarray(net.neuron_model.weights)
    spikes, v = _numpy_lif(w, wmask, x, dt, 600, 1.0, 5.0, 20.0, -0.2)
    assert 30 < spikes.sum() < 2000
    np.testing.assert_array_equal(fixed.spike_trains(jnp.asarray(x)), spikes)
    times = dt * np.arange(1, 601)
    outs = [5, 6, 7]
    first = [times[np.argmax(spikes[:, j])] if spikes[:, j].any() else np.inf for j in outs]
    np.testing.assert_allclose(sim.first_spikes, first, rtol=1e-12)
    # states at the nearest grid point (step 0: the initial state), before the reset
    steps = np.round(obs / dt).astype(int)
    v0 = np.vstack([np.zeros(n), v])
    np.testing.assert_allclose(sim.states[:, :, 0], v0[steps][:, outs].T, rtol=1e-10, atol=1e-12)
    # the first spike times of each output, up to a time
    until = np.asarray(fixed.spikes_until_t(jnp.asarray(x), 20.0, max_spikes=3))
    for row, j in zip(until, outs):
        expected = times[spikes[:, j] > 0]
        expected = expected[expected <= 20.0][:3]
        np.testing.assert_allclose(row[: len(expected)], expected, rtol=1e-12)
        assert np.all(np.isinf(row[len(expected):]))
    # the spike log: every spike, in time order
    k, j = np.nonzero(spikes)
    count = int(sim.spikes.n_spikes)
    assert count == len(k)
    np.testing.assert_allclose(sim.spikes.times[:count], times[k], rtol=1e-12)
    np.testing.assert_array_equal(sim.spikes.neurons[:count], j)
    assert np.all(np.isinf(sim.spikes.times[count:]))


def test_spike_times_converge_to_the_event_mode_at_first_order(x64):
    """Errors at dt, dt/2, dt/4, dt/8 shrink like dt (latency, Euler and grid rounding are all O(dt))."""
    net = ev.FFEvNN(
        [12, 3], 4, ev.LIF, 20.0, key=jax.random.PRNGKey(0), thresh=1.0, tsyn=5.0, tmem=20.0,
        wmean=3.0, wlim=3.0, dtype=jnp.float64, solver=diffrax.Tsit5(), solver_stepsize=0.05,
    )
    x = jnp.asarray(np.random.default_rng(0).uniform(0, 10, (4, 4, 1)))
    exact = jax.vmap(net.ttfs)(x)
    assert np.all(np.isfinite(exact))
    assert np.all(exact < 19)
    dts = np.array([0.04, 0.02, 0.01, 0.005])
    errors = [float(jnp.mean(jnp.abs(jax.vmap(net.fixed_step(dt).ttfs)(x) - exact))) for dt in dts]
    order = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert 0.8 < order < 1.25, (errors, order)
    assert errors[-1] < 0.05


def test_gradients_forward_mode_equals_reverse_mode():
    net = ev.FFEvNN([10, 3], 4, ev.LIF, 15.0, key=jax.random.PRNGKey(1), wmean=3.0, wlim=3.0)
    fixed = net.fixed_step(0.1, surrogate=ev.surrogates.Arctan(slope=2.0))
    x = jnp.asarray(np.random.default_rng(1).uniform(0, 8, (4, 1)), jnp.float32)
    loss = ev.TTFSLoss(silent_guard=1.0, no_spike_time=15.0)

    def f(w):
        model = eqx.tree_at(lambda m: m.neuron_model.weights, fixed, w)
        return loss(loss.simulate(model, x), 1)

    w = fixed.neuron_model.weights
    direction = jnp.asarray(np.random.default_rng(2).normal(size=w.shape), w.dtype)
    _, forward = jax.jvp(f, (w,), (direction,))
    reverse = jnp.vdot(jax.grad(f)(w), direction)
    assert np.isfinite(forward) and abs(forward) > 1e-4
    np.testing.assert_allclose(forward, reverse, rtol=1e-4)


def test_surrogate_gradient_reaches_earlier_layers_and_detach_reset_matters():
    net = ev.FFEvNN([10, 3], 4, ev.LIF, 30.0, key=jax.random.PRNGKey(1), wmean=3.0, wlim=3.0)
    x = jnp.asarray(np.random.default_rng(1).uniform(0, 15, (4, 1)), jnp.float32)

    def grads(detach):
        fixed = net.fixed_step(0.1, detach_reset=detach)
        return eqx.filter_jit(eqx.filter_grad(lambda m: jnp.sum(m.ttfs(x))))(fixed).neuron_model.weights

    g = grads(True)
    assert np.all(np.isfinite(g))
    assert np.any(g[-4:, :10] != 0)  # input -> hidden weights get a surrogate gradient
    assert not np.allclose(g, grads(False))


def _random_state(model, n, key):
    y = model.init_state(n)
    leaves, tree = jax.tree_util.tree_flatten(y)
    keys = jax.random.split(key, len(leaves))
    leaves = [a + jax.random.normal(k, a.shape, a.dtype) for a, k in zip(leaves, keys)]
    return jax.tree_util.tree_unflatten(tree, leaves)


MODELS = {
    "LIF": (ev.LIF, {}),
    "ALIF": (ev.ALIF, {}),
    "EIF": (ev.EIF, {}),
    "QIF": (ev.QIF, {}),
    "Izhikevich": (ev.Izhikevich, {}),
    "AMOS(LIF)": (ev.AMOS(ev.LIF), {}),
    "Refractory(QIF)": (ev.Refractory(ev.QIF), {"t_refrac": 1.0}),
    "Multi(AMOS(LIF), LIF)": (ev.MultiNeuronModel, {
        "neuron_models": [ev.AMOS(ev.LIF), ev.LIF], "neuron_type_ids": [0, 1, 0, 1, 0]}),
}


@pytest.mark.parametrize("name", MODELS)
def test_fast_input_spikes_equals_superposed_single_spikes(name):
    """Each override of `input_spikes` equals delivering the spikes one by one with `input_spike`."""
    cls, kwargs = MODELS[name]
    n, n_in = 5, 3
    wmask = np.random.default_rng(0).random((n + n_in, n)) < 0.7
    net = ev.EvNN(cls, n, 10.0, n_in, key=jax.random.PRNGKey(0), wmask=wmask, **kwargs)
    model = net.neuron_model
    y = _random_state(model, n, jax.random.PRNGKey(1))
    if name.startswith("AMOS"):
        y = (y[0], jnp.array([0.0, 1.0, 0.0, 1.0, 0.0]))
    if name.startswith("Multi"):
        y = ((y[0][0], jnp.array([0.0, 1.0, 0.0])), y[1])
    counts = jnp.array([1.0, 0.0, 2.0, 1.0, 0.0, 1.0, 3.0, 0.0])
    fast = model.input_spikes(y, counts, jnp.asarray(wmask))
    one_by_one = y
    for k, c in enumerate(np.asarray(counts, int)):
        for _ in range(c):
            one_by_one = model.input_spike(one_by_one, k, jnp.arange(n), jnp.asarray(wmask[k]))
    assert type(model).input_spikes is not NeuronModel.input_spikes
    for a, b in zip(jax.tree_util.tree_leaves(fast), jax.tree_util.tree_leaves(one_by_one)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_losses_and_any_model_run_in_fixed_step_mode():
    """TTFS and state losses give finite gradients; a model without an `input_spikes`
    override (EGRU) runs through the generic delivery."""
    x = jnp.asarray(np.random.default_rng(1).uniform(0, 10, (4, 1)), jnp.float32)
    net = ev.FFEvNN([6, 2], 4, ev.EGRU, 10.0, key=jax.random.PRNGKey(0))
    fixed = net.fixed_step(0.25)
    for loss in (ev.TTFSLoss(no_spike_time=10.0), ev.StateLoss(readout="max", t_end=10.0)):
        g = eqx.filter_jit(eqx.filter_grad(lambda m: loss(loss.simulate(m, x, max_spikes=200), 0)))(fixed)
        leaves = jax.tree_util.tree_leaves(eqx.filter(g, eqx.is_inexact_array))
        assert all(np.all(np.isfinite(a)) for a in leaves)


def test_bad_arguments_are_named():
    net = ev.FFEvNN([4, 2], 3, ev.LIF, 10.0)
    with pytest.raises(ValueError, match="`dt`"):
        net.fixed_step(0.0)
    with pytest.raises(ValueError, match="`dt`"):
        net.fixed_step(20.0)
    with pytest.raises(ValueError, match="`reset`"):
        net.fixed_step(0.1, reset="soft")
    with pytest.raises(ValueError, match="`surrogate`"):
        net.fixed_step(0.1, surrogate=lambda x: x)
    with pytest.raises(ValueError, match="`solver`"):
        net.fixed_step(0.1, solver=diffrax.ImplicitEuler())
    with pytest.raises(ValueError, match="delays"):
        ev.FFEvNN([4, 2], 3, ev.LIF, 10.0, dlim=1.0).fixed_step(0.1)
    with pytest.raises(ValueError, match="in_spike_times"):
        net.fixed_step(0.1).ttfs(jnp.zeros((2, 1)))
    x = jnp.zeros((3, 1))
    with pytest.raises(Exception, match="max_spikes"):
        net.fixed_step(0.1).record(x + 0.0, max_spikes=1) if False else ev.FFEvNN(
            [4, 2], 3, ev.LIF, 10.0, wmean=8.0, wlim=1.0
        ).fixed_step(0.1).record(x, max_spikes=1)
