"""StateLoss readouts: hand-made states, and a float64 LI neuron against its closed form."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _tiny import li_integral, li_membrane

import eventax as ex
from eventax.losses import StateLoss

INF = np.inf
TSYN, TMEM, T = 5.0, 20.0, 30.0
W_IN = np.array([1.0, -0.5, 0.8, 0.6])  # input weights; channel 3 doubles as the cue
# Worst trapezoid error per unit of sum|w| measured for the docstring (3000 random drives).
BOUND = {("integral", 31): 5.8e-3, ("exp_integral", 31): 4.3e-3,
         ("integral", 101): 5.5e-4, ("exp_integral", 101): 3.9e-4}


def handmade(states):
    states = jnp.asarray(states, jnp.float32)
    return ex.Simulation(jnp.full((states.shape[0],), jnp.inf), states, None, jnp.asarray(9.0))


def test_readouts_on_handmade_states():
    grid = np.linspace(1.0, 9.0, 5)
    v = np.stack([np.sin(grid / 3.0), 0.1 * grid - 0.3])  # (n_out=2, n_obs=5)
    states = np.stack([v, -v], axis=-1)  # channel 1 must be ignored
    cases = {
        StateLoss("max", 9.0, n_obs=5, t_start=1.0): v.max(axis=1),
        StateLoss("integral", 9.0, n_obs=5, t_start=1.0): np.trapezoid(v, grid, axis=1),
        StateLoss("exp_integral", 9.0, n_obs=5, t_start=1.0): np.trapezoid(v * np.exp(-(grid - 1.0) / 8.0), grid, axis=1),
        StateLoss("exp_integral", 9.0, n_obs=5, t_start=1.0, tau=3.0): np.trapezoid(v * np.exp(-(grid - 1.0) / 3.0), grid, axis=1),
        StateLoss("max", 9.0, n_obs=5, t_start=1.0, channel=1): (-v).max(axis=1),
    }

    @jax.jit
    def evaluate(states):
        sim = handmade(states)
        out = [(loss.logits(sim), loss.predict(sim), loss(sim, 1)) for loss in cases]
        # The gradient w.r.t. the states is the quadrature weight of each sample.
        integral = list(cases)[1]
        return out, jax.grad(lambda s: integral.logits(handmade(s))[0])(states)

    out, g = evaluate(jnp.asarray(states, jnp.float32))
    for (logits, pred, value), want in zip(out, cases.values()):
        assert logits.shape == (2,)
        np.testing.assert_allclose(np.asarray(logits), want, rtol=1e-5, atol=1e-6)
        assert int(pred) == int(np.argmax(want))
        np.testing.assert_allclose(float(value), np.log(np.exp(want).sum()) - want[1], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(g[0, :, 0]), [1.0, 2.0, 2.0, 2.0, 1.0])
    np.testing.assert_array_equal(np.asarray(g[1]), 0.0)


@pytest.mark.parametrize("n_obs", [31, 101])
@pytest.mark.parametrize("readout", ["integral", "exp_integral"])
def test_trapezoid_error_on_the_li_closed_form_is_within_the_documented_bound(readout, n_obs):
    spikes = [1.3, 4.7, 9.2, 17.5]
    grid = np.linspace(0.0, T, n_obs)
    v = li_membrane(grid, spikes, W_IN, TSYN, TMEM)
    logits = StateLoss(readout, T, n_obs=n_obs).logits(handmade(np.stack([v, v])[:, :, None]))
    tau = None if readout == "integral" else T
    exact = li_integral(spikes, W_IN, TSYN, TMEM, 0.0, T, tau)
    err = abs(float(logits[0]) - exact)
    assert err <= BOUND[(readout, n_obs)] * np.abs(W_IN).sum()
    assert err > 1e-6  # an approximation, not exact: the bound is what the docstring claims


def test_li_network_against_closed_form_with_per_sample_windows_under_vmap(x64):
    net = ex.EvNN(
        ex.LI, 1, T, 4, key=jax.random.PRNGKey(0), tsyn=TSYN, tmem=TMEM, dtype=jnp.float64,
        init_weights=np.concatenate([[0.0], W_IN])[:, None], solver=diffrax.Tsit5(),
        solver_stepsize=0.1,  # Tsit5: states exact to ~1e-10 here
    )
    inputs = [1.3, 4.7, 9.2]
    cues = [INF, 17.5, 6.0]  # no cue: the window is [t_start, t_end] = [0, 30]
    xs = jnp.asarray([[[t] for t in inputs + [c]] for c in cues], jnp.float64)
    losses = {r: StateLoss(r, T, n_obs=31, start_channels=(3,)) for r in ("integral", "exp_integral", "max")}
    sims = jax.jit(jax.vmap(lambda x: losses["integral"].simulate(net, x)))(xs)
    assert sims.states.shape == (3, 1, 31, 2)
    for b, cue in enumerate(cues):
        s = 0.0 if cue == INF else cue
        grid = np.linspace(s, T, 31)
        np.testing.assert_allclose(np.asarray(losses["max"].obs_times(xs[b])), grid, atol=1e-12)
        spikes = inputs + ([] if cue == INF else [cue])
        v = li_membrane(grid, spikes, W_IN[: len(spikes)], TSYN, TMEM)
        np.testing.assert_allclose(np.asarray(sims.states[b, 0, :, 0]), v, atol=1e-10)  # exact states
        sim = jax.tree_util.tree_map(lambda a: a[b], sims)
        # The window is taken in normalised time: (L / (T - s)) * trapezoid over [s, T].
        stretch = T / (T - s)
        want = {
            "integral": stretch * np.trapezoid(v, grid),
            "exp_integral": stretch * np.trapezoid(v * np.exp(-(grid - s) * stretch / T), grid),
            "max": v.max(),
        }
        for readout, loss in losses.items():
            np.testing.assert_allclose(float(loss.logits(sim)[0]), want[readout], rtol=1e-9, atol=1e-12)
        if cue == INF:  # the plain window: within the measured trapezoid error of the exact integral
            for readout in ("integral", "exp_integral"):
                exact = li_integral(spikes, W_IN, TSYN, TMEM, 0.0, T, None if readout == "integral" else T)
                err = abs(want[readout] - exact)
                assert err <= BOUND[(readout, 31)] * np.abs(W_IN[:3]).sum()


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"readout": "mean"}, "readout"),
        ({"n_obs": 1}, "n_obs"),
        ({"t_start": 5.0, "t_end": 5.0}, "t_end"),
        ({"tau": 0.0}, "tau"),
        ({"start_channels": ()}, "start_channels"),
    ],
)
def test_bad_arguments_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        StateLoss(**{"readout": "integral", "t_end": 10.0, **kw})


def test_errors_name_the_fix():
    net = ex.EvNN(ex.LI, 1, 10.0, 2, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="t_end"):
        StateLoss("max", 20.0).simulate(net, jnp.ones((2, 1)))
    with pytest.raises(ValueError, match="start_channels"):
        StateLoss("max", 10.0, start_channels=(2,)).simulate(net, jnp.ones((2, 1)))
    with pytest.raises(ValueError, match="obs_times"):
        StateLoss("max", 10.0).logits(ex.Simulation(jnp.zeros(1), None, None, jnp.asarray(1.0)))
    with pytest.raises(ValueError, match="n_obs"):
        StateLoss("max", 10.0, n_obs=4).logits(handmade(np.zeros((1, 3, 2))))
