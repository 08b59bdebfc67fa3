"""`ALIF` against an independent SciPy event-driven simulation and finite differences (Yin-Yang: test_contract.py).

The float64 tests use near-exact settings (Tsit5, PID rtol = atol = 1e-12,
Newton 1e-13) and compare with `scipy.integrate.solve_ivp(DOP853, rtol=1e-10,
atol=1e-12)` whose right-hand side is written here in NumPy, with its own
event detection and the reset and spike deliveries applied by hand.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    EXACT, NetworkLosses, check_directional_derivatives, event_driven, feed_forward_mask, input_rows,
    spike_error, spike_list,
)

import eventax as ex
from eventax.neuron_models.alif import ALIF

pytestmark = pytest.mark.usefixtures("x64")

TRAINABLE = ("thresh", "vreset", "beta", "tsyn", "tmem", "ta")


# ----------------------------------------------------------------------- reference


def reference_alif(p, weights, ic, inputs, t_end):
    """ALIF spikes by `event_driven`; state `y = (v, i, a)` stacked per channel."""
    n = len(ic)

    def rhs(y):
        v, i, a = y.reshape(3, n)
        return np.concatenate([(-v + i + ic) / p["tmem"], -i / p["tsyn"], -a / p["ta"]])

    def condition(y):
        return y[:n] - p["thresh"] - p["beta"] * y[2 * n :]

    def reset(y, j):
        y[j], y[2 * n + j] = p["vreset"][j], y[2 * n + j] + 1.0

    def deliver(y, row):
        y[n : 2 * n] += weights[row]

    return event_driven(rhs, condition, reset, deliver, np.zeros(3 * n), inputs, t_end, max_step=0.5)


def reference(net, x, t_end):
    """`reference_alif` with the parameters of `net` and input spike times `x`."""
    m = net.neuron_model
    p = {name: np.broadcast_to(np.asarray(m.param(getattr(m, name))), (net.n_neurons,)) for name in TRAINABLE}
    inputs = input_rows(x, net.n_neurons)
    return reference_alif(p, np.asarray(m.weights), np.asarray(m.ic), inputs, t_end)


def compare(net, rec, x, t_end):
    """Max |t - t_scipy| over the spikes of `rec` (which must match SciPy's neurons)."""
    got = spike_list(rec)
    return spike_error(got, reference(net, x, t_end)), len(got)


_record = eqx.filter_jit(lambda net, x: net.record(x, max_spikes=64))


# --------------------------------------------------------------------- single neuron

T_SINGLE = 60.0
X_SINGLE = np.array([[3.0, 4.0, 20.0, 21.0, 35.0]])


def single_neuron():
    """Bias-driven ALIF (ic = 1.6) with an inhibitory autapse and 5 excitatory input spikes."""
    return ex.EvNN(
        ALIF, 1, T_SINGLE, 1, wmask=np.ones((2, 1)), init_weights=np.array([[-0.3], [1.5]]),
        init_bias=2.0, thresh=1.0, beta=0.4, tsyn=3.0, tmem=8.0, ta=25.0, vreset=-0.2, **EXACT, trainable=TRAINABLE,
    )


def test_single_neuron_matches_scipy():
    """Spike times of one driven, adapting neuron vs SciPy: |dt| <= 1e-6 (measured
    ~1e-11). After the last input the interval exceeds the non-adapting bias
    period tmem ln((ic - vreset)/(ic - thresh)) = 6.3: the threshold has risen."""
    net = single_neuron()
    rec = _record(net, jnp.asarray(X_SINGLE))
    err, n = compare(net, rec, X_SINGLE, T_SINGLE)
    print(f"\n[ALIF single] {n} spikes, max |t - t_scipy| = {err:.2e}")
    assert n >= 5 and err <= 1e-6
    t = np.asarray(rec.times[:n])
    assert t[-2] > X_SINGLE.max() and t[-1] - t[-2] > 8.0 * np.log(2.2 / 1.0)


# --------------------------------------------------------------------- small network

N_IN, N_HID, N_OUT = 2, 3, 2
N = N_HID + N_OUT
T_NET = 30.0
X_NET = np.array([[1.0, 9.0, 16.0], [2.5, 12.0, np.inf]])
OBS = np.array([12.0, 25.0])


def small_network():
    rng = np.random.default_rng(1)
    mask = feed_forward_mask(N_IN, N_HID, N_OUT)
    w = np.where(mask, rng.uniform(1.5, 3.5, mask.shape), 0.0)
    w[0, N_HID] = -0.8  # one inhibitory synapse
    return ex.EvNN(
        ALIF, N, T_NET, N_IN, wmask=mask, init_weights=w, init_bias=rng.uniform(0.3, 0.8, N),
        thresh=rng.uniform(0.8, 1.2, N), beta=rng.uniform(0.2, 0.6, N), tsyn=rng.uniform(2.0, 4.0, N),
        tmem=rng.uniform(4.0, 8.0, N), ta=rng.uniform(10.0, 30.0, N), vreset=-0.1, **EXACT, trainable=TRAINABLE,
    )


# --------------------------------------------------------------------- gradients

# One compiled program per loss serves the SciPy comparison (its aux is the
# spike record), the AD gradients and the FD evaluations: compiling costs far
# more here than the unused backward passes.
LOSSES = NetworkLosses(
    X_NET, OBS, np.random.default_rng(2).uniform(0.5, 1.5, 64),
    np.random.default_rng(3).uniform(-1.0, 1.0, (N, len(OBS), 3)),
)


def test_small_network_matches_scipy():
    """2 inputs -> 3 -> 2 ALIF (every neuron spikes at least twice): |dt| <= 1e-6."""
    net = small_network()
    (_, rec), _ = LOSSES.spike_grad(net)
    err, n = compare(net, rec, X_NET, T_NET)
    counts = np.bincount(np.asarray(rec.neurons[:n]), minlength=N)
    print(f"\n[ALIF network] {n} spikes {counts.tolist()}, max |t - t_scipy| = {err:.2e}")
    assert np.all(counts >= 2) and err <= 1e-6


LEAVES = ("weights", "ic") + TRAINABLE


def test_gradients_match_finite_differences():
    """d(spike-time loss) and d(state loss) w.r.t. every learnable array vs central FD.

    Spike loss: weighted sum of all recorded spike times (hidden and output);
    state loss: weighted sum of (v, i, a) of all neurons at t = 12, 25 (after
    spikes and resets). For each learnable array (weights on the real synapses,
    ic, thresh, vreset, beta, tsyn, tmem, ta) the directional derivative along
    `u * sign(grad)` (u uniform in [0.5, 1.5]) is compared with a central
    difference of step 1e-6 (float64; the FD truncation error, ~h^2, is
    below 1e-7 relative there). Tolerance: relative error <= 1e-5.
    """
    net = small_network()
    losses, grads = LOSSES.losses_and_grads(net)
    check_directional_derivatives("ALIF grad", net, grads, LEAVES, LOSSES.loss, tol=1e-5)
    mask = feed_forward_mask(N_IN, N_HID, N_OUT)
    for g in grads:
        assert np.all(np.asarray(g.neuron_model.weights)[~mask] == 0.0)


# --------------------------------------------------------------------- bad parameters


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tmem": -1.0}, "tmem"),
        ({"tsyn": 0.0}, "tsyn"),
        ({"ta": -5.0}, "ta"),
        ({"ta": np.ones(3)}, "ta"),
        ({"vreset": 1.5}, "vreset"),
        ({"beta": -0.1}, "beta"),
        ({"thresh": np.ones((2, 2))}, "thresh"),
        ({"thresh": 1.0, "b0": 1.0}, "b0"),
        ({"trainable": ("tau",)}, "trainable"),
    ],
)
def test_bad_parameters_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ALIF(jax.random.PRNGKey(0), 2, 1, np.ones((3, 2)), **kwargs)


def test_b0_is_the_baseline_threshold():
    m = ALIF(jax.random.PRNGKey(0), 2, 1, np.ones((3, 2)), b0=0.7)
    assert float(m.param(m.thresh)) == pytest.approx(0.7)
    assert ALIF.time_constants == ("tsyn", "tmem", "ta")
