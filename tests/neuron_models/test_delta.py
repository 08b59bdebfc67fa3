"""`DeltaLIF` / `DeltaLI` against closed forms: input spikes jump the membrane,
between them it relaxes to `ic` with `tmem`."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_rejected

import eventax as ex

NO_INPUT = jnp.array([[jnp.inf]])


def _single(model=ex.DeltaLIF, **kw):
    """One neuron, one input, the library's default solver settings (float32)."""
    return ex.FFEvNN([1], 1, model, 60.0, **kw)


def test_bias_driven_train_and_its_gradient_match_the_closed_form():
    """`ic > thresh`, reset to 0: spikes at `k tmem ln(ic / (ic - thresh))`, within
    2e-5 (float32, default Tsit5 steps of 1: measured ~7e-6 by the 5th spike); the
    first spike's derivative in `ic`, `tmem (1/ic - 1/(ic - thresh))`, within 1e-4
    relative."""
    tmem, ic = 10.0, 1.5
    period = tmem * np.log(ic / (ic - 1.0))
    t = np.asarray(_single(init_weights=0.0, init_bias=ic, tmem=tmem).record(NO_INPUT, 10).times[:5])
    np.testing.assert_allclose(t, period * np.arange(1, 6), atol=2e-5)

    net = _single(init_weights=0.0, init_bias=ic, tmem=tmem)
    d_ic = eqx.filter_jit(eqx.filter_grad(lambda n: n.ttfs(NO_INPUT)[0]))(net).neuron_model.ic[0]
    np.testing.assert_allclose(float(d_ic), tmem * (1 / ic - 1 / (ic - 1.0)), rtol=1e-4)


def test_an_input_spike_jumps_the_membrane():
    """Below threshold the jump decays as `w exp(-(t - t1) / tmem)` (observed at three
    times, to 1e-6); a jump to above threshold spikes at the arrival time itself, so
    the spike time's derivative is 0 in the weight and 1 in the arrival time."""
    x = jnp.array([[3.0]])
    below = _single(ex.DeltaLI, init_weights=np.array([[0.0], [0.7]]), tmem=8.0)
    times = jnp.array([2.0, 3.5, 20.0])
    v = np.asarray(below.state_at_t(x, times))[0, :, 0]
    np.testing.assert_allclose(v, [0.0, 0.7 * np.exp(-0.5 / 8.0), 0.7 * np.exp(-17.0 / 8.0)], atol=1e-6)
    above = _single(init_weights=np.array([[0.0], [1.2]]))
    assert float(above.ttfs(x)[0]) == 3.0
    # ... so that spike's time does not depend on the weight, only on the arrival
    grads = eqx.filter_jit(eqx.filter_grad(lambda n, x: n.ttfs(x)[0]))
    assert float(grads(above, x).neuron_model.weights[1, 0]) == 0.0
    d_x = eqx.filter_jit(jax.grad(lambda x: above.ttfs(x)[0]))(x)
    assert float(d_x[0, 0]) == pytest.approx(1.0)


def test_bad_parameters_raise():
    assert_rejected(ex.DeltaLIF, "tmem", tmem=-1.0)
    assert_rejected(ex.DeltaLIF, "vreset", vreset=2.0)
    with pytest.raises(ValueError, match="tsyn"):  # it has no synaptic current
        ex.DeltaLIF(jax.random.PRNGKey(0), 2, 1, np.ones((3, 2)), tsyn=5.0)


def test_state_is_one_membrane_array():
    model = ex.DeltaLIF(jax.random.PRNGKey(0), 3, 2, np.ones((5, 3)))
    (v,) = model.init_state(3)
    assert v.shape == (3,) and model.weights.shape == (5, 3)
