"""`EIF` against independent truths.

Exact settings (float64, Tsit5, PID rtol = atol = 1e-12, Newton 1e-13): spike
times are compared with an independent float64 event-driven simulation
(`scipy` DOP853, its own event detection at `v_peak`, resets and spike
delivery by hand), and the gradients of spike times and observed states
w.r.t. every learnable parameter with central finite differences of the
simulator.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    EXACT, NetworkLosses, assert_rejected, check_entrywise_gradients, event_driven, feed_forward_mask,
    input_rows, spike_error, spike_list,
)

import eventax as ex
from eventax.neuron_models.eif import EIF

pytestmark = pytest.mark.usefixtures("x64")

PARAMS = ("tmem", "tsyn", "vT", "deltaT", "EL", "vreset", "v_peak")


# ---------------------------------------------------------------- independent reference


def eif_reference(weights, params, ic, in_times, t_end):
    """EIF spikes by `event_driven`; `params`: dict of PARAMS (scalars or per neuron)."""
    n = weights.shape[1]
    p = {k: np.broadcast_to(np.asarray(v, float), (n,)) for k, v in params.items()}
    ic = np.broadcast_to(np.asarray(ic, float), (n,))

    def rhs(y):
        v, i = y[:, 0], y[:, 1]
        # Solver stages may overshoot v_peak; cap far above it (never reached by
        # the trajectory) so that numpy does not overflow.
        growth = np.exp(np.minimum((v - p["vT"]) / p["deltaT"], 60.0))
        dv = (p["EL"] - v + p["deltaT"] * growth + i + ic) / p["tmem"]
        return np.stack([dv, -i / p["tsyn"]], axis=1)

    def reset(y, j):
        y[j, 0] = p["vreset"][j]

    def deliver(y, row):
        y[:, 1] += weights[row]

    y0 = np.stack([p["EL"], np.zeros(n)], axis=1)
    return event_driven(rhs, lambda y: y[:, 0] - p["v_peak"], reset, deliver, y0, input_rows(in_times, n), t_end)


# ---------------------------------------------------------------- single neuron

SINGLE = dict(tmem=10.0, tsyn=3.0, vT=1.0, deltaT=0.2, EL=0.0, vreset=0.0, v_peak=2.0)
T_END_1 = 30.0
_record = eqx.filter_jit(lambda net, x: net.record(x, max_spikes=64))

SINGLE_CASES = [
    # (w_self, w_in, ic, input times): bias only; inputs; inputs + bias + self-connection
    (0.0, 0.0, 1.3, [np.inf] * 4),
    (0.0, 0.0, 2.5, [np.inf] * 4),
    (0.0, 5.0, 0.0, [2.0, 4.0, 5.0, 20.0]),
    (-1.0, 4.0, 0.6, [1.0, 3.0, 11.0, np.inf]),
    (0.8, -1.5, 2.5, [4.0, 5.0, 15.0, 22.0]),
]


@pytest.mark.parametrize("case", SINGLE_CASES)
def test_driven_neuron_matches_scipy(case):
    """Every spike time within 1e-6 of the scipy reference (measured ~1e-10)."""
    w_self, w_in, ic, x = case
    x, weights = np.array([x]), np.array([[w_self], [w_in]])
    net = ex.EvNN(
        EIF, 1, T_END_1, 1, wmask=np.ones((2, 1)), init_weights=weights, init_bias=ic,
        **SINGLE, **EXACT,
    )
    got = spike_list(_record(net, jnp.asarray(x)))
    assert len(got) >= 1
    err = spike_error(got, eif_reference(weights, SINGLE, ic, x, T_END_1))
    print(f"\n[EIF single] case={case}: {len(got)} spikes, max err vs scipy {err:.2e}")
    assert err < 1e-6


def test_default_cutoff_and_initial_state():
    model = EIF(jax.random.PRNGKey(0), 2, 1, np.ones((3, 2)), vT=1.5, deltaT=0.3, EL=-0.5, dtype=jnp.float32)
    assert float(model.param(model.v_peak)) == pytest.approx(1.5 + 5 * 0.3)
    np.testing.assert_array_equal(np.asarray(model.observe(model.init_state(2))), [[-0.5, 0.0], [-0.5, 0.0]])


def test_exponential_is_guarded_against_overflow():
    """Far above the cut-off (a solver stage overshooting) the right-hand side is
    finite and increasing; at and below `v_peak` it is the exact EIF (float32)."""
    model = EIF(jax.random.PRNGKey(0), 4, 0, np.ones((4, 4)), tmem=1.0, dtype=jnp.float32)
    v = jnp.array([1.0, 2.0, 50.0, 1e30], jnp.float32)
    dv = np.asarray(model.dynamics(0.0, (v, jnp.zeros(4)), None)[0])
    assert np.all(np.isfinite(dv)) and np.all(np.diff(dv) > 0)
    exact = -np.array([1.0, 2.0]) + 0.2 * np.exp((np.array([1.0, 2.0]) - 1.0) / 0.2)
    np.testing.assert_allclose(dv[:2], exact, rtol=1e-6)


# ---------------------------------------------------------------- network + gradients

N_IN, N_HID, N_OUT = 2, 3, 2
N = N_HID + N_OUT
T_END_NET = 15.0
X_NET = np.array([[1.0, 9.0], [3.0, 14.0]])
OBS_TIMES = np.array([9.0, 12.0])
NET_PARAMS = dict(
    tmem=np.array([5.0, 6.0, 4.0, 5.0, 6.0]),
    tsyn=np.array([2.0, 2.5, 3.0, 2.0, 2.5]),
    vT=np.array([1.0, 1.1, 0.9, 1.0, 1.05]),
    deltaT=np.array([0.2, 0.25, 0.15, 0.2, 0.3]),
    EL=np.array([0.0, -0.1, 0.05, 0.0, 0.1]),
    vreset=np.array([-0.2, 0.0, 0.1, -0.1, 0.0]),
    v_peak=np.array([2.0, 2.5, 1.8, 2.2, 3.0]),
)
NET_IC = np.array([0.4, 0.8, 0.3, 0.1, 0.0])


def _net_weights():
    mask = feed_forward_mask(N_IN, N_HID, N_OUT)
    rng = np.random.default_rng(2)
    weights = np.where(mask, rng.uniform(2.0, 4.0, mask.shape), 0.0)
    weights[N, 1], weights[0, 3] = -0.5, -1.5  # some inhibition
    return mask, weights


def network():
    mask, weights = _net_weights()
    return ex.EvNN(
        EIF, N, T_END_NET, N_IN, wmask=mask, output_neurons=np.arange(N_HID, N),
        init_weights=weights, init_bias=NET_IC, trainable=PARAMS, **NET_PARAMS, **EXACT,
    )


# spike loss: the first 16 spike times weighted 1 .. -0.5; state loss: the outputs'
# (v, i) at OBS_TIMES, channel 0 weighted per output and time, the others uniformly.
CHANNEL_0 = np.array([[0.3, 0.8], [1.1, -0.5]])  # (output, time)
LOSSES = NetworkLosses(
    X_NET, OBS_TIMES, np.linspace(1.0, -0.5, 16),
    np.stack([CHANNEL_0, np.full((2, 2), 0.4)], axis=-1),
)
_evaluate = LOSSES.evaluate


LEARNABLE = ("weights", "ic") + PARAMS


@pytest.fixture(scope="module")
def evaluated_network(x64_module):
    """The network and its losses, spike record and gradients (compiled once)."""
    net = network()
    return net, _evaluate(net)


def test_network_matches_scipy(evaluated_network):
    """2 inputs -> 3 hidden -> 2 outputs: all spikes within 1e-6 of scipy (measured ~1e-10)."""
    net, (_, rec, _) = evaluated_network
    got = spike_list(rec)
    _, weights = _net_weights()
    err = spike_error(got, eif_reference(weights, NET_PARAMS, NET_IC, X_NET, T_END_NET))
    assert {j for _, j in got} == set(range(N))  # every neuron spikes
    print(f"\n[EIF network] {len(got)} spikes, max err vs scipy {err:.2e}")
    assert err < 1e-6


def test_network_gradients_match_finite_differences(evaluated_network):
    """d(spike-time loss) and d(state loss) w.r.t. weights, ic and every per-neuron
    parameter (tmem, tsyn, vT, deltaT, EL, vreset, v_peak) vs central FD.

    Spike-time loss: weighted sum of all spike times (`record`); state loss:
    weighted sum of the outputs' (v, i) at t = 9 and 12 (`state_at_t`), after
    resets. Step `h = 1e-5 max(1, |p|)`; error relative to
    `max(|fd|, 1e-3 max |fd|)` per loss, tolerance 1e-5 (measured < 1e-6).
    """
    net, (_, rec, grads) = evaluated_network
    check_entrywise_gradients("EIF gradients", net, grads, rec, LEARNABLE, _evaluate, tol=1e-5)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(tmem=-1.0), "tmem"),
        (dict(tsyn=0.0), "tsyn"),
        (dict(deltaT=0.0), "deltaT"),
        (dict(deltaT=-0.1), "deltaT"),
        (dict(vreset=2.0), "vreset"),
        (dict(v_peak=0.5, vreset=0.5), "vreset"),
        (dict(v_peak=30.0), "v_peak"),
        (dict(vT=np.ones(3)), "vT"),
        (dict(v_peak=np.ones(3)), "v_peak"),
        (dict(EL=np.inf), "EL"),
        (dict(trainable=("thresh",)), "trainable"),
        (dict(wmask=np.ones((2, 2))), "wmask"),
    ],
)
def test_bad_parameters_raise(kwargs, name):
    assert_rejected(EIF, name, **kwargs)


def test_trainable_parameters_are_per_neuron_arrays():
    model = EIF(jax.random.PRNGKey(0), 3, 1, np.ones((4, 3)), trainable=PARAMS)
    for name in PARAMS:
        assert getattr(model, name).shape == (3,), name
    assert float(model.v_peak[0]) == pytest.approx(2.0)
    assert isinstance(EIF(jax.random.PRNGKey(0), 3, 1, np.ones((4, 3))).tmem, ex.Constant)
