"""`EGRU` against an independent SciPy event-driven simulation and finite differences (Yin-Yang: test_contract.py).

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
from eventax.neuron_models.egru import EGRU

pytestmark = pytest.mark.usefixtures("x64")

TRAINABLE = ("thresh", "tsyn", "tmem")
GATES = ("u", "r", "z")


# ----------------------------------------------------------------------- reference


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_egru(p, W, b, inputs, t_end):
    """EGRU spikes by `event_driven`; state `y = (c, i_u, i_r, i_z)` stacked per channel."""
    n = len(b["u"])

    def rhs(y):
        c, iu, ir, iz = y.reshape(4, n)
        u, r = sigmoid(iu + b["u"]), sigmoid(ir + b["r"])
        z = np.tanh(b["z"] + r * iz)
        return np.concatenate([u * (z - c) / p["tmem"], -y[n:] / np.tile(p["tsyn"], 3)])

    def condition(y):
        return y[:n] - p["thresh"]

    def reset(y, j):
        y[j] -= p["thresh"][j]

    def deliver(y, row):
        for g_idx, g in enumerate(GATES):
            y[(1 + g_idx) * n : (2 + g_idx) * n] += W[g][row]

    return event_driven(rhs, condition, reset, deliver, np.zeros(4 * n), inputs, t_end, max_step=0.5)


def reference(net, x, t_end):
    """`reference_egru` with the parameters of `net` and input spike times `x`."""
    m = net.neuron_model
    p = {name: np.broadcast_to(np.asarray(m.param(getattr(m, name))), (net.n_neurons,)) for name in TRAINABLE}
    W = {g: np.asarray(getattr(m, f"W_{g}")) for g in GATES}
    b = {g: np.asarray(getattr(m, f"b_{g}")) for g in GATES}
    inputs = input_rows(x, net.n_neurons)
    return reference_egru(p, W, b, inputs, t_end)


def compare(net, rec, x, t_end):
    """Max |t - t_scipy| over the spikes of `rec` (which must match SciPy's neurons)."""
    got = spike_list(rec)
    return spike_error(got, reference(net, x, t_end)), len(got)


_record = eqx.filter_jit(lambda net, x: net.record(x, max_spikes=64))


# --------------------------------------------------------------------- single neuron

T_SINGLE = 60.0
X_SINGLE = np.array([[3.0, 4.0, 20.0, 21.0, 35.0]])


def single_neuron():
    """One EGRU cell with a tonic candidate (b_z = 0.8), a self-inhibiting autapse
    (W_z = -1.5) and 5 input spikes that open the update gate and raise z."""
    return ex.EvNN(
        EGRU, 1, T_SINGLE, 1, wmask=np.ones((2, 1)),
        init_weights={"u": [[0.5], [1.5]], "r": [[-1.0], [1.0]], "z": [[-1.5], [2.0]]},
        init_bias={"u": -0.5, "r": 0.5, "z": 0.8}, thresh=0.4, tsyn=4.0, tmem=3.0, **EXACT, trainable=TRAINABLE,
    )


def test_single_neuron_matches_scipy():
    """Spike times of one driven EGRU cell vs SciPy: |dt| <= 1e-6."""
    net = single_neuron()
    rec = _record(net, jnp.asarray(X_SINGLE))
    err, n = compare(net, rec, X_SINGLE, T_SINGLE)
    print(f"\n[EGRU single] {n} spikes, max |t - t_scipy| = {err:.2e}")
    assert n >= 5 and err <= 1e-6


# --------------------------------------------------------------------- small network

N_IN, N_HID, N_OUT = 2, 3, 2
N = N_HID + N_OUT
T_NET = 30.0
X_NET = np.array([[1.0, 9.0, 16.0], [2.5, 12.0, np.inf]])
OBS = np.array([12.0, 25.0])


def small_network():
    rng = np.random.default_rng(8)
    mask = feed_forward_mask(N_IN, N_HID, N_OUT)
    ranges = {"u": (0.0, 1.5), "r": (-1.0, 1.0), "z": (0.8, 2.0)}
    w = {g: np.where(mask, rng.uniform(*ranges[g], mask.shape), 0.0) for g in GATES}
    w["z"][0, N_HID] = -1.0  # one inhibitory synapse
    b = {"u": rng.uniform(-1.0, 0.0, N), "r": rng.uniform(0.0, 1.0, N), "z": rng.uniform(-0.2, 0.3, N)}
    return ex.EvNN(
        EGRU, N, T_NET, N_IN, wmask=mask, init_weights=w, init_bias=b,
        thresh=rng.uniform(0.35, 0.5, N), tsyn=rng.uniform(3.0, 6.0, N), tmem=rng.uniform(1.5, 3.0, N),
        **EXACT, trainable=TRAINABLE,
    )


# One compiled program per loss serves the SciPy comparison (its aux is the
# spike record), the AD gradients and the FD evaluations: compiling costs far
# more here than the unused backward passes.
LOSSES = NetworkLosses(
    X_NET, OBS, np.random.default_rng(2).uniform(0.5, 1.5, 64),
    np.random.default_rng(3).uniform(-1.0, 1.0, (N, len(OBS), 4)),
)


def test_small_network_matches_scipy():
    """2 inputs -> 3 -> 2 EGRU (every cell spikes at least twice): |dt| <= 1e-6."""
    net = small_network()
    (_, rec), _ = LOSSES.spike_grad(net)
    err, n = compare(net, rec, X_NET, T_NET)
    counts = np.bincount(np.asarray(rec.neurons[:n]), minlength=N)
    print(f"\n[EGRU network] {n} spikes {counts.tolist()}, max |t - t_scipy| = {err:.2e}")
    assert np.all(counts >= 2) and err <= 1e-6


LEAVES = ("W_u", "W_r", "W_z", "b_u", "b_r", "b_z") + TRAINABLE


def test_gradients_match_finite_differences():
    """d(spike-time loss) and d(state loss) w.r.t. every learnable array vs central FD.

    Spike loss: weighted sum of all recorded spike times (hidden and output);
    state loss: weighted sum of the observed (c, u, r, z) of all cells at
    t = 12, 25 (after spikes and resets). For each learnable array (W_u, W_r,
    W_z on the real synapses, b_u, b_r, b_z, thresh, tsyn, tmem) the
    directional derivative along `u * sign(grad)` (u uniform in [0.5, 1.5]) is
    compared with a central
    difference of step 1e-6 (float64; the FD truncation error, ~h^2, is
    below 1e-7 relative there). Tolerance: relative error <= 1e-5.
    """
    net = small_network()
    losses, grads = LOSSES.losses_and_grads(net)
    check_directional_derivatives("EGRU grad", net, grads, LEAVES, LOSSES.loss, tol=1e-5)
    mask = feed_forward_mask(N_IN, N_HID, N_OUT)
    for g in grads:
        for gate in GATES:
            assert np.all(np.asarray(getattr(g.neuron_model, f"W_{gate}"))[~mask] == 0.0)


# --------------------------------------------------------------------- bad parameters


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tmem": -1.0}, "tmem"),
        ({"tsyn": 0.0}, "tsyn"),
        ({"tsyn": np.ones(3)}, "tsyn"),
        ({"thresh": 0.0}, "thresh"),
        ({"thresh": 1.2}, "thresh"),
        ({"thresh": np.full((2, 2), 0.5)}, "thresh"),
        ({"init_weights": {"u": 1.0, "q": 1.0}}, "init_weights"),
        ({"wmask": np.ones((2, 2))}, "wmask"),
        ({"trainable": ("b_u",)}, "trainable"),
    ],
)
def test_bad_parameters_raise_value_error(kwargs, match):
    kwargs = {"wmask": np.ones((3, 2)), **kwargs}
    with pytest.raises(ValueError, match=match):
        EGRU(jax.random.PRNGKey(0), 2, 1, **kwargs)


def test_defaults_and_per_gate_initialisation():
    m = EGRU(jax.random.PRNGKey(0), 2, 1, np.ones((3, 2)), init_weights={"z": 2.0}, init_bias={"u": 0.5})
    assert EGRU.time_constants == ("tsyn", "tmem")
    np.testing.assert_array_equal(m.W_z, 2.0)
    np.testing.assert_array_equal(m.b_u, 0.5)
    np.testing.assert_array_equal(m.b_r, 1.0)  # bias_r_mean, blim unset
    assert float(jnp.abs(m.W_u).sum()) > 0  # default uniform init for the gates not given
    y = m.init_state(2)
    assert len(y) == 4 and all(c.shape == (2,) for c in y) and m.observe(y).shape == (2, 4)
