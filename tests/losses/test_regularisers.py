"""ActivityRegulariser (soft spike counts) and spike_counts against NumPy formulas."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _tiny import MAX_SPIKES, UPPER, X, trainer_heads

import eventax as ex
from eventax.losses import ActivityRegulariser, spike_counts

INF = np.inf
T_STOP, EDGE = 10.0, 0.5
TIMES = [1.0, 2.0, 5.0, 9.8, 9.9, INF, INF, INF]
NEURONS = [0, 2, 1, 0, 2, -1, -1, -1]


def record(times=TIMES, neurons=NEURONS, n=5):
    return ex.SpikeRecord(jnp.asarray(times, jnp.float32), jnp.asarray(neurons, jnp.int32), jnp.asarray(n))


def sim_with(times):
    return ex.Simulation(jnp.full((1,), jnp.inf), None, record(times), jnp.asarray(T_STOP, jnp.float32))


def soft_counts_np(indices):
    t, n = np.asarray(TIMES[:5]), np.asarray(NEURONS[:5])
    w = 1.0 / (1.0 + np.exp(-(T_STOP - t) / EDGE))
    return np.array([w[n == j].sum() for j in indices])


def test_spike_counts_are_exact_and_skip_unused_or_infinite_slots():
    np.testing.assert_array_equal(np.asarray(spike_counts(record(), 4)), [2, 1, 2, 0])
    np.testing.assert_array_equal(np.asarray(spike_counts(record(n=3), 4)), [1, 1, 1, 0])
    dropped = record(times=[1.0, INF, 5.0, 9.8, INF, INF, INF, INF])
    np.testing.assert_array_equal(np.asarray(spike_counts(dropped, 4)), [2, 1, 0, 0])


@pytest.mark.parametrize("scope", ["neuron", "population"])
@pytest.mark.parametrize("lower, upper", [(0.0, 1.2), (1.5, INF), (1.1, 1.6)])
def test_value_matches_formula(scope, lower, upper):
    reg = ActivityRegulariser(0.7, lower=lower, upper=upper, scope=scope, neurons=[0, 1, 2, 3], edge=EDGE)
    c = soft_counts_np([0, 1, 2, 3])
    np.testing.assert_allclose(np.asarray(reg.soft_counts(sim_with(TIMES))), c, rtol=1e-6)
    if scope == "population":
        c = c.mean(keepdims=True)
    want = 0.7 * np.mean(np.maximum(c - upper, 0.0) ** 2 + np.maximum(lower - c, 0.0) ** 2)
    np.testing.assert_allclose(float(reg(sim_with(TIMES))), want, rtol=1e-5)


def test_gradient_moves_spikes_out_of_or_into_the_window():
    t = jnp.asarray(TIMES, jnp.float32)
    too_many = ActivityRegulariser(1.0, upper=0.5, neurons=[0, 1, 2], edge=EDGE)
    too_few = ActivityRegulariser(1.0, lower=3.0, neurons=[0, 1, 2], edge=EDGE)
    grads = jax.jit(lambda t: [jax.grad(lambda t: r(sim_with(t)))(t) for r in (too_many, too_few)])
    g_up, g_lo = map(np.asarray, grads(t))
    assert np.all(np.isfinite(g_up)) and np.all(np.isfinite(g_lo))
    # Descent (-g) moves the spikes near the window's end later (upper) / earlier (lower).
    assert np.all(g_up <= 0) and np.all(g_up[[3, 4]] < -1e-2)
    assert np.all(g_lo >= 0) and np.all(g_lo[[3, 4]] > 1e-2)
    np.testing.assert_array_equal(g_up[5:], 0.0)  # unused slots
    # The window's end is not differentiated.
    g_stop = jax.grad(lambda s: too_many(sim_with(TIMES)._replace(t_stop=s)))(jnp.asarray(T_STOP))
    assert float(g_stop) == 0.0


def test_needs_the_spike_log_and_the_network():
    with pytest.raises(ValueError, match="max_spikes"):
        UPPER(ex.Simulation(jnp.zeros(1), None, None, jnp.asarray(1.0)))
    with pytest.raises(ValueError, match="bind"):
        ActivityRegulariser(1.0, upper=2.0)(sim_with(TIMES))


def test_neuron_selection(tiny_net):
    assert ActivityRegulariser(1.0).bind(tiny_net).indices == (0, 1, 2)
    assert ActivityRegulariser(1.0, neurons="all", net=tiny_net).indices == (0, 1, 2, 3, 4)
    assert ActivityRegulariser(1.0, neurons=[4, 1]).indices == (4, 1)
    with pytest.raises(ValueError, match="neurons"):
        ActivityRegulariser(1.0, neurons=[7], net=tiny_net)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"strength": -1.0}, "strength"),
        ({"lower": 2.0, "upper": 1.0}, "lower"),
        ({"scope": "layer"}, "scope"),
        ({"edge": 0.0}, "edge"),
        ({"neurons": "outputs"}, "neurons"),
        ({"neurons": [-1]}, "neurons"),
    ],
)
def test_bad_arguments_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        ActivityRegulariser(**{"strength": 1.0, **kw})


def test_on_a_network_a_gradient_step_lowers_the_penalty(tiny_net):
    values, grads, sim = trainer_heads(tiny_net, X, 1)
    assert sim.spikes.times.shape == (MAX_SPIKES,)
    n = int(sim.spikes.n_spikes)
    t, who = np.asarray(sim.spikes.times[:n]), np.asarray(sim.spikes.neurons[:n])
    w = 1.0 / (1.0 + np.exp(-(float(sim.t_stop) - t) / UPPER.edge))
    c = np.array([w[who == j].sum() for j in UPPER.indices])
    np.testing.assert_allclose(float(values[2]), np.mean(np.maximum(c - UPPER.upper, 0.0) ** 2), rtol=1e-5)
    g = jax.tree_util.tree_map(lambda a: a[2], eqx.filter(grads, eqx.is_inexact_array))
    assert np.all(np.isfinite(np.asarray(g.neuron_model.weights)))
    stepped = eqx.apply_updates(tiny_net, jax.tree_util.tree_map(lambda a: -0.2 * a, g))
    assert float(trainer_heads(stepped, X, 1)[0][2]) < float(values[2])
