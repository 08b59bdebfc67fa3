"""`DendriticNeuron` vs SciPy and finite differences; dCaAP attenuation, XOR (Yin-Yang: test_contract.py).

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
from eventax.neuron_models.dendritic import Dendritic, DendriticNeuron

pytestmark = pytest.mark.usefixtures("x64")

SOMA = ("thresh", "vreset", "tmem")
DENDRITE = ("tsyn", "tden", "tdca", "gdca", "gc", "v1", "v2", "v3", "v4")
TRAINABLE = SOMA + DENDRITE


# ----------------------------------------------------------------------- reference


def reference_dendritic(p, weights, ic, inputs, t_end):
    """Dendritic-neuron spikes by `event_driven`; `y = (v, i, vd, d)`, the last
    three of shape `(n, N)`, flattened. `weights` `(pre, n, N)`."""
    n, nd = weights.shape[1:]

    def split(y):
        return y[:n], y[n:].reshape(3, n, nd)

    def rhs(y):
        v, (i, vd, d) = split(y)
        m = 0.5 * (1 + np.tanh((vd - p["v1"]) / p["v2"]))
        h = 0.5 * (1 - np.tanh((vd - p["v3"]) / p["v4"]))
        dv = (-v + ic + np.sum(d + p["gc"] * vd, axis=1)) / p["tmem"]
        di = -i / p["tsyn"]
        dvd = (-vd + i) / p["tden"]
        dd = (-d + p["gdca"] * m * h) / p["tdca"]
        return np.concatenate([dv, di.ravel(), dvd.ravel(), dd.ravel()])

    def condition(y):
        return y[:n] - p["thresh"]

    def reset(y, j):
        y[j] = p["vreset"][j]

    def deliver(y, row):
        y[n : n + n * nd] += weights[row].ravel()

    return event_driven(rhs, condition, reset, deliver, np.zeros(n + 3 * n * nd), inputs, t_end, max_step=0.5)


def reference(net, x, t_end):
    """`reference_dendritic` with the parameters of `net` and input spike times `x`."""
    m = net.neuron_model
    n, nd = net.n_neurons, m.n_dendrites
    p = {name: np.broadcast_to(np.asarray(m.param(getattr(m, name))), (n,)) for name in SOMA}
    p.update({name: np.broadcast_to(np.asarray(m.param(getattr(m, name))), (n, nd)) for name in DENDRITE})
    inputs = input_rows(x, n)
    return reference_dendritic(p, np.asarray(m.weights), np.asarray(m.ic), inputs, t_end)


def compare(net, rec, x, t_end):
    """Max |t - t_scipy| over the spikes of `rec` (which must match SciPy's neurons)."""
    got = spike_list(rec)
    return spike_error(got, reference(net, x, t_end)), len(got)


_record = eqx.filter_jit(lambda net, x: net.record(x, max_spikes=64))


# --------------------------------------------------------------------- single neuron

T_SINGLE = 60.0
X_SINGLE = np.array([[3.0, 4.0, 20.0, 21.0, 35.0]])


def single_neuron():
    """Two dendrites: the input contacts both (weights 2.8 and 1.5), an autapse
    contacts dendrite 1 (-1.0); a subthreshold soma bias ic = 0.5."""
    return ex.EvNN(
        DendriticNeuron, 1, T_SINGLE, 1, wmask=np.ones((2, 1)), n_dendrites=2,
        init_weights=np.array([[[0.0, -1.0]], [[2.8, 1.5]]]), init_bias=0.5,
        tsyn=[5.0, 3.0], tden=[4.0, 2.0], tdca=[2.0, 3.0], tmem=8.0, **EXACT, trainable=TRAINABLE,
    )


def test_single_neuron_matches_scipy():
    """Spike times of one driven two-dendrite neuron vs SciPy: |dt| <= 1e-6."""
    net = single_neuron()
    rec = _record(net, jnp.asarray(X_SINGLE))
    err, n = compare(net, rec, X_SINGLE, T_SINGLE)
    print(f"\n[Dendritic single] {n} spikes, max |t - t_scipy| = {err:.2e}")
    assert n >= 3 and err <= 1e-6


# --------------------------------------------------------------------- small network

N_IN, N_HID, N_OUT = 2, 3, 2
N = N_HID + N_OUT
T_NET = 30.0
X_NET = np.array([[1.0, 9.0, 16.0], [2.5, 12.0, np.inf]])
OBS = np.array([12.0, 25.0])


def small_network():
    rng = np.random.default_rng(1)
    mask = feed_forward_mask(N_IN, N_HID, N_OUT)
    w = np.where(mask[:, :, None], rng.uniform(0.8, 2.0, mask.shape + (2,)), 0.0)
    w[0, N_HID] = -0.5  # one inhibitory connection
    return ex.EvNN(
        DendriticNeuron, N, T_NET, N_IN, wmask=mask, n_dendrites=2, init_weights=w,
        init_bias=rng.uniform(0.2, 0.6, N), tmem=rng.uniform(4.0, 8.0, N),
        tsyn=rng.uniform(2.0, 5.0, (N, 2)), tden=rng.uniform(2.0, 4.0, (N, 2)),
        tdca=rng.uniform(1.5, 3.0, (N, 2)), gdca=rng.uniform(3.0, 5.0, (N, 2)), **EXACT, trainable=TRAINABLE,
    )


# One compiled program per loss serves the SciPy comparison (its aux is the
# spike record), the AD gradients and the FD evaluations: compiling costs far
# more here than the unused backward passes.
LOSSES = NetworkLosses(
    X_NET, OBS, np.random.default_rng(2).uniform(0.5, 1.5, 64),
    np.random.default_rng(3).uniform(-1.0, 1.0, (N, len(OBS), 7)),
)


def test_small_network_matches_scipy():
    """2 inputs -> 3 -> 2 two-dendrite neurons (each spikes at least twice): |dt| <= 1e-6."""
    net = small_network()
    (_, rec), _ = LOSSES.spike_grad(net)
    err, n = compare(net, rec, X_NET, T_NET)
    counts = np.bincount(np.asarray(rec.neurons[:n]), minlength=N)
    print(f"\n[Dendritic network] {n} spikes {counts.tolist()}, max |t - t_scipy| = {err:.2e}")
    assert np.all(counts >= 2) and err <= 1e-6


LEAVES = ("weights", "ic") + TRAINABLE


def test_gradients_match_finite_differences():
    """d(spike-time loss) and d(state loss) w.r.t. every learnable array vs central FD.

    Spike loss: weighted sum of all recorded spike times (hidden and output);
    state loss: weighted sum of all 7 channels (v, i, vd, d of both dendrites)
    of all neurons at t = 12, 25 (after spikes and resets). For each learnable
    array (weights on the real synapses, ic, thresh, vreset, tmem and the
    per-dendrite tsyn, tden, tdca, gdca, gc, v1, v2, v3, v4) the directional derivative along
    `u * sign(grad)` (u uniform in [0.5, 1.5]) is compared with a central
    difference of step 1e-6 (float64; the FD truncation error, ~h^2, is
    below 1e-7 relative there). Tolerance: relative error <= 1e-5.
    """
    net = small_network()
    losses, grads = LOSSES.losses_and_grads(net)
    check_directional_derivatives("Dendritic grad", net, grads, LEAVES, LOSSES.loss, tol=1e-5)
    mask = feed_forward_mask(N_IN, N_HID, N_OUT)
    for g in grads:
        assert np.all(np.asarray(g.neuron_model.weights)[~mask] == 0.0)


# --------------------------------------------------------------------- dCaAP and XOR

# Two inputs (rows 1, 2) contact dendrite 0 of one neuron with the same weight
# W_XOR = 3.0; no autapse, dendrite 1 unused, default parameters (tsyn = 5,
# tden = 4: one input lifts vd to a peak of 0.41 W = 1.23, inside the dCaAP
# window v1 = 1 .. v3 = 1.3; both together to 2.46, far above it).
W_XOR = 3.0
T_XOR = 30.0
GRID = np.linspace(0.5, T_XOR, 120)
A, B, NO = 1.0, 1.0, np.inf
PATTERNS = {  # (2 inputs, 2 spike slots); summed input drive in units of W_XOR
    "none": [[NO, NO], [NO, NO]],
    "A": [[A, NO], [NO, NO]],
    "B": [[NO, NO], [B, NO]],
    "A+B": [[A, NO], [B, NO]],
    "2A+2B": [[A, A], [B, B]],
}


def xor_neuron():
    return ex.EvNN(
        DendriticNeuron, 1, T_XOR, 2, wmask=np.array([[0], [1], [1]]), n_dendrites=2,
        dendrite_map=[0, 0, 0], init_weights=W_XOR, dtype=jnp.float64, solver_stepsize=0.01,
    )


@eqx.filter_jit
def _probe(net, xs):
    return jax.vmap(lambda x: (net.ttfs(x)[0], net.state_at_t(x, jnp.asarray(GRID))[0]))(xs)


def test_dendritic_spike_attenuates_and_one_neuron_computes_xor():
    """Threshold-level input (one synapse) gives a larger dendritic spike current
    d than 2x and 4x stronger input, although vd grows monotonically; the soma
    spikes for exactly one active input (XOR). Euler, step 0.01."""
    net = xor_neuron()
    assert np.all(np.asarray(net.neuron_model.weights)[:, 0, 1] == 0)  # dendrite_map
    t_first, states = _probe(net, jnp.asarray(list(PATTERNS.values())))
    peak_vd, peak_d = np.asarray(states[:, :, 3].max(1)), np.asarray(states[:, :, 5].max(1))
    charge = np.asarray(states[:, :, 5].sum(1)) * (GRID[1] - GRID[0])
    for k, name in enumerate(PATTERNS):
        print(f"\n[Dendritic dCaAP] {name:6s}: peak vd {peak_vd[k]:.3f}, peak d {peak_d[k]:.3f}, "
              f"int d dt {charge[k]:.2f}, first soma spike {float(t_first[k]):.3f}", end="")
    none, a, b, ab, strong = range(5)
    assert peak_vd[a] < peak_vd[ab] < peak_vd[strong]
    assert peak_d[a] > 1.3 * peak_d[ab] and peak_d[a] > 1.3 * peak_d[strong]
    assert charge[a] > charge[ab] > charge[strong]
    spikes = np.isfinite(np.asarray(t_first))
    assert spikes.tolist() == [False, True, True, False, False]


# --------------------------------------------------------------------- bad parameters


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tmem": -1.0}, "tmem"),
        ({"tsyn": 0.0}, "tsyn"),
        ({"tden": [1.0, -1.0]}, "tden"),
        ({"tdca": np.ones(3)}, "tdca"),
        ({"tsyn": np.ones((3, 2))}, "tsyn"),
        ({"vreset": 1.5}, "vreset"),
        ({"v2": 0.0}, "v2"),
        ({"v3": 0.9}, "v3"),
        ({"gdca": -1.0}, "gdca"),
        ({"gc": -0.1}, "gc"),
        ({"n_dendrites": 0}, "n_dendrites"),
        ({"dendrite_map": [0, 2, 1]}, "dendrite_map"),
        ({"dendrite_map": [0, 1]}, "dendrite_map"),
        ({"init_weights": np.ones((3, 2, 3))}, "init_weights"),
        ({"trainable": ("tau",)}, "trainable"),
    ],
)
def test_bad_parameters_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DendriticNeuron(jax.random.PRNGKey(0), 2, 1, np.ones((3, 2)), **kwargs)


def test_alias_defaults_and_shapes():
    assert Dendritic is DendriticNeuron
    assert DendriticNeuron.time_constants == ("tsyn", "tden", "tdca", "tmem")
    m = DendriticNeuron(jax.random.PRNGKey(0), 2, 1, np.ones((3, 2)), n_dendrites=3, trainable=("tden",))
    assert m.weights.shape == (3, 2, 3) and m.tden.shape == (2, 3)
    assert m.observe(m.init_state(2)).shape == (2, 10)
