"""Every built-in model's `network_defaults` gives accurate spike times (issue 12, target 2),
and so does the fallback for a model without them (a user's own: `UserCondLIF` below).

A user who passes no solver settings to `FFEvNN` gets the model's defaults. On a small
Yin-Yang-coded network (5-10-3, or 5-3 for the dendritic neuron, as its config), the
float32 first output spikes at the defaults must agree with a float64 reference solved
with Tsit5 and a PIDController at rtol = atol = 1e-10 by the *other* engine than the one
the defaults choose (an independent code path): median error <= 1e-4 (the target), max
<= 1e-3, the same spike/no-spike pattern. Measured on yy-5-50-3 with batch 256
(`experiments/work_precision.py`, README): medians 5e-7 (LIF) to 2e-5 (EIF), maxima
<= 5e-5. The reference's own error (rtol 1e-10) is ~1e-9.

The parameters are those of the Yin-Yang configs, so that most outputs spike; the test
asserts that they do, so that it cannot pass on silent networks.
"""

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eventax as ex
from eventax.data import yin_yang, yin_yang_spikes
from eventax.simulation import Recorders

class UserCondLIF(ex.NeuronModel):
    """A model as a user writes it (the README's conductance-based LIF), without
    `network_defaults`: `tmem v' = -v + g (e_rev - v)`, `tsyn g' = -g`."""

    weights: jax.Array
    tmem: float = 20.0
    tsyn: float = 5.0
    e_rev: float = 5.0

    def __init__(self, key, n_neurons, in_size, wmask, dtype=jnp.float32, scale=2.0):
        self.dtype = dtype
        self.weights = scale * jax.random.uniform(key, wmask.shape, dtype) * wmask

    def init_state(self, n_neurons):
        zeros = jnp.zeros((n_neurons,), self.dtype)
        return zeros, zeros

    def dynamics(self, t, y, args):
        v, g = y
        return (-v + g * (self.e_rev - v)) / self.tmem, -g / self.tsyn

    def spike_condition(self, t, y):
        return y[0] - 1.0

    def input_spike(self, y, from_idx, to_idx, valid_mask):
        v, g = y
        return v, g.at[to_idx].add(jnp.where(valid_mask, self.weights[from_idx, to_idx], 0.0))

    def reset_spiked(self, y, spike_mask):
        v, g = y
        return jnp.where(spike_mask, 0.0, v), g


MODELS = {
    "a user's model": (UserCondLIF, [10, 3], {}, {}),
    "LIF": (ex.LIF, [10, 3], dict(thresh=1.0, tsyn=5.0, tmem=10.0, wmean=1.5, wlim=3.0), {}),
    "ALIF": (ex.ALIF, [10, 3], dict(thresh=1.0, tsyn=5.0, tmem=10.0, wmean=2.5, wlim=3.0), {}),
    "QIF": (ex.QIF, [10, 3], dict(tsyn=2.5, tmem=5.0, wmean=1.5, wlim=3.0), {}),
    "EIF": (ex.EIF, [10, 3], dict(tsyn=2.5, tmem=5.0, vT=1.0, deltaT=0.2, wmean=3.0, wlim=6.0, bmean=0.3), {}),
    "Izhikevich": (
        ex.Izhikevich, [10, 3],
        dict(a=0.02, b=0.2, c=-65.0, d=4.0, v_thresh=30.0, tau_syn=5.0, wmean=15.0, wlim=20.0),
        dict(layer_capacity=1000, max_event_steps=4000),
    ),
    "Dendritic": (ex.Dendritic, [3], dict(n_dendrites=7, tmem=10.0, wmean=1.0, wlim=2.0), {}),
}


def _same_parameters(net, ref_net):
    """Both networks with the reference's parameters rounded to float32."""
    leaves, treedef = jax.tree_util.tree_flatten(net.neuron_model)
    ref_leaves, ref_treedef = jax.tree_util.tree_flatten(ref_net.neuron_model)
    rounded = [b.astype(a.dtype) if eqx.is_inexact_array(a) else a for a, b in zip(leaves, ref_leaves)]
    widened = [jnp.asarray(r, b.dtype) if eqx.is_inexact_array(b) else b for r, b in zip(rounded, ref_leaves)]
    return (
        eqx.tree_at(lambda n: n.neuron_model, net, jax.tree_util.tree_unflatten(treedef, rounded)),
        eqx.tree_at(lambda n: n.neuron_model, ref_net, jax.tree_util.tree_unflatten(ref_treedef, widened)),
    )


@pytest.mark.parametrize("name", list(MODELS))
def test_defaults_are_accurate(name, x64):
    cls, sizes, params, extra = MODELS[name]
    x = yin_yang_spikes(yin_yang(size=8, seed=0)[0], 30.0)
    net = ex.FFEvNN(sizes, 5, cls, 30.0, key=jax.random.PRNGKey(0), dtype=jnp.float32, **params, **extra)
    engine = net._engine(Recorders(stop_at_first_output=True))
    other = "loop" if type(engine).__name__ == "Layered" else "layered"
    ref_net = ex.FFEvNN(
        sizes, 5, cls, 30.0, key=jax.random.PRNGKey(0), dtype=jnp.float64, engine=other,
        solver=dfx.Tsit5(), solver_stepsize=0.5,
        stepsize_controller=dfx.PIDController(rtol=1e-10, atol=1e-10), **params, **extra,
    )
    net, ref_net = _same_parameters(net, ref_net)
    t = np.asarray(jax.jit(jax.vmap(net.ttfs))(jnp.asarray(x, jnp.float32)), float)
    ref = np.asarray(jax.jit(jax.vmap(ref_net.ttfs))(jnp.asarray(x)))
    assert np.mean(np.isfinite(ref)) >= 0.5, f"{name}: too few output spikes to test"
    np.testing.assert_array_equal(np.isfinite(t), np.isfinite(ref))
    err = np.abs(t - ref)[np.isfinite(ref)]
    print(f"\n{name} ({type(engine).__name__}): median {np.median(err):.1e}, max {err.max():.1e}")
    assert np.median(err) <= 1e-4
    assert err.max() <= 1e-3
