"""`QIF` / `PQIF` against independent truths.

Exact settings (float64, Tsit5, PID rtol = atol = 1e-12, Newton 1e-13): spike
times are compared with

a. the closed form of a bias-driven QIF: from `V = 0` the first spike is at
   `pi tmem / (2 sqrt(I))`, then one every `pi tmem / sqrt(I)`;
b. an independent float64 event-driven simulation (`scipy` DOP853, its own
   event detection, resets and spike delivery by hand) whose right-hand side
   is the voltage form `tmem V' = V^2 + I` written in the phase chart
   `theta' = 2 (V^2 + I) / (tmem (1 + V^2))`, `V = tan(theta / 2)`;

and the gradients of spike times and observed states w.r.t. every learnable
parameter with central finite differences of the simulator.
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
from eventax.neuron_models import PQIF, QIF

pytestmark = pytest.mark.usefixtures("x64")


# ---------------------------------------------------------------- independent reference


def qif_rhs(tmem, tsyn, ic):
    """Voltage form in the phase chart: theta' = 2 (V^2 + I) / (tmem (1 + V^2))."""

    def rhs(y):
        theta, i = y[:, 0], y[:, 1]
        v = np.tan(theta / 2)
        return np.stack([2 * (v**2 + i + ic) / (tmem * (1 + v**2)), -i / tsyn], axis=1)

    return rhs


def qif_reference(weights, tmem, tsyn, ic, in_times, t_end):
    """QIF spikes by `event_driven` in the phase chart: spike at theta = pi, reset to -pi."""
    n = weights.shape[1]

    def reset(y, j):
        y[j, 0] = -np.pi

    def deliver(y, row):
        y[:, 1] += weights[row]

    return event_driven(
        qif_rhs(tmem, tsyn, ic), lambda y: y[:, 0] - np.pi, reset, deliver, np.zeros((n, 2)),
        input_rows(in_times, n), t_end,
    )


def test_phase_dynamics_equal_the_voltage_form():
    """`dynamics` is `tmem V' = V^2 + I` under `V = tan(theta/2)` (1e-12 relative)."""
    rng = np.random.default_rng(0)
    theta = rng.uniform(-3.0, 3.0, 7)
    i, ic = rng.normal(size=7), rng.normal(size=7)
    model = QIF(jax.random.PRNGKey(0), 7, 0, np.ones((7, 7)), tmem=3.0, tsyn=2.0, init_bias=ic, dtype=jnp.float64)
    got = np.stack(model.dynamics(0.0, (jnp.asarray(theta), jnp.asarray(i)), None), axis=1)
    expected = qif_rhs(3.0, 2.0, ic)(np.stack([theta, i], 1))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(np.asarray(model.observe(model.init_state(7))), np.zeros((7, 2)))


# ---------------------------------------------------------------- a + b: single neuron

TMEM_1, TSYN_1, T_END_1 = 4.0, 2.0, 30.0
_record = eqx.filter_jit(lambda net, x: net.record(x, max_spikes=64))


def single_neuron(w_self, w_in, ic):
    return ex.EvNN(
        QIF, 1, T_END_1, 1, wmask=np.ones((2, 1)), init_weights=np.array([[w_self], [w_in]]),
        init_bias=ic, tmem=TMEM_1, tsyn=TSYN_1, **EXACT,
    )


@pytest.mark.parametrize("ic", [0.2, 1.0, 3.0])
def test_bias_driven_neuron_matches_closed_form(ic):
    """Spike k at `pi tmem / sqrt(I) (k - 1/2)`; tolerance 1e-9 (measured ~1e-12)."""
    got = spike_list(_record(single_neuron(0.0, 0.0, ic), jnp.asarray(np.full((1, 4), np.inf))))
    times = np.array([t for t, _ in got])
    period = np.pi * TMEM_1 / np.sqrt(ic)
    expected = period * (np.arange(1, 1 + int(T_END_1 / period + 0.5)) - 0.5)
    assert len(times) == len(expected) >= 1
    err = np.max(np.abs(times - expected))
    print(f"\n[QIF closed form] I={ic}: {len(times)} spikes, max err {err:.2e}")
    assert err < 1e-9


SINGLE_CASES = [
    # (w_self, w_in, ic, input times)
    (0.0, 2.5, 0.0, [2.0, 6.0, 7.5, 20.0]),
    (-0.7, 2.0, 0.1, [1.0, 3.0, 11.0, np.inf]),
    (0.5, -0.4, 0.6, [4.0, 5.0, 15.0, 22.0]),
]


@pytest.mark.parametrize("case", SINGLE_CASES)
def test_driven_neuron_matches_scipy(case):
    """Bias, excitatory/inhibitory input spikes and a self-connection: every spike
    time within 1e-6 of the scipy reference (measured ~1e-10)."""
    w_self, w_in, ic, x = case
    x = np.array([x])
    got = spike_list(_record(single_neuron(w_self, w_in, ic), jnp.asarray(x)))
    assert len(got) >= 2
    err = spike_error(got, qif_reference(np.array([[w_self], [w_in]]), TMEM_1, TSYN_1, ic, x, T_END_1))
    print(f"\n[QIF single] case={case}: {len(got)} spikes, max err vs scipy {err:.2e}")
    assert err < 1e-6


# ---------------------------------------------------------------- network + gradients

N_IN, N_HID, N_OUT = 2, 3, 2
N = N_HID + N_OUT
T_END_NET = 30.0
X_NET = np.array([[1.0, 9.0], [3.0, 14.0]])
OBS_TIMES = np.array([17.0, 25.0])


def _net_arrays():
    mask = feed_forward_mask(N_IN, N_HID, N_OUT)
    rng = np.random.default_rng(1)
    weights = np.where(mask, rng.uniform(1.5, 4.0, mask.shape), 0.0)
    weights[N, 1], weights[0, 3] = -0.8, -0.6  # some inhibition
    tmem = np.array([4.0, 5.0, 6.0, 5.0, 4.5])
    tsyn = np.array([2.0, 3.0, 2.5, 3.0, 2.0])
    ic = np.array([0.3, -0.05, 0.2, 0.1, -0.02])
    return mask, weights, tmem, tsyn, ic


def network():
    mask, weights, tmem, tsyn, ic = _net_arrays()
    return ex.EvNN(
        PQIF, N, T_END_NET, N_IN, wmask=mask, output_neurons=np.arange(N_HID, N),
        init_weights=weights, init_bias=ic, tmem=tmem, tsyn=tsyn, **EXACT,
    )


# spike loss: the first 16 spike times weighted 1 .. -0.5; state loss: the outputs'
# (theta, i) at OBS_TIMES, channel 0 weighted per output and time, the others uniformly.
CHANNEL_0 = np.array([[0.3, 0.8], [1.1, -0.5]])  # (output, time)
LOSSES = NetworkLosses(
    X_NET, OBS_TIMES, np.linspace(1.0, -0.5, 16),
    np.stack([CHANNEL_0, np.full((2, 2), 0.4)], axis=-1),
)
_evaluate = LOSSES.evaluate


LEARNABLE = ("weights", "ic", "tmem", "tsyn")


@pytest.fixture(scope="module")
def evaluated_network(x64_module):
    """The network and its losses, spike record and gradients (compiled once)."""
    net = network()
    return net, _evaluate(net)


def test_network_matches_scipy(evaluated_network):
    """2 inputs -> 3 hidden -> 2 outputs: all 9 spikes within 1e-6 of scipy (measured ~1e-10)."""
    net, (_, rec, _) = evaluated_network
    got = spike_list(rec)
    mask, weights, tmem, tsyn, ic = _net_arrays()
    err = spike_error(got, qif_reference(weights, tmem, tsyn, ic, X_NET, T_END_NET))
    assert {j for _, j in got} == set(range(N))  # every neuron spikes
    print(f"\n[QIF network] {len(got)} spikes, max err vs scipy {err:.2e}")
    assert err < 1e-6


def test_network_gradients_match_finite_differences(evaluated_network):
    """d(spike-time loss) and d(state loss) w.r.t. weights, ic, tmem, tsyn vs central FD.

    Spike-time loss: weighted sum of all 9 spike times (`record`); state loss:
    weighted sum of the outputs' (theta, i) at t = 17 and 25 (`state_at_t`),
    after resets. The perturbed networks must keep the same spike count.

    Step `h = 1e-5 max(1, |p|)`; error relative to `max(|fd|, 1e-3 max |fd|)`
    per loss, tolerance 1e-5 (measured < 1e-8).
    """
    net, (_, rec, grads) = evaluated_network
    check_entrywise_gradients("QIF gradients", net, grads, rec, LEARNABLE, _evaluate, tol=1e-5)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(tmem=-1.0), "tmem"),
        (dict(tsyn=0.0), "tsyn"),
        (dict(tmem=np.ones(3)), "tmem"),
        (dict(tsyn=np.nan), "tsyn"),
        (dict(trainable=("thresh",)), "trainable"),
        (dict(wmask=np.ones((2, 2))), "wmask"),
    ],
)
def test_bad_parameters_raise(kwargs, name):
    assert_rejected(QIF, name, **kwargs)


def test_pqif_trains_time_constants():
    model = PQIF(jax.random.PRNGKey(0), 3, 1, np.ones((4, 3)), tmem=np.array([1.0, 2.0, 3.0]))
    assert model.tmem.shape == (3,) and model.tsyn.shape == (3,)
    assert isinstance(QIF(jax.random.PRNGKey(0), 3, 1, np.ones((4, 3))).tmem, ex.Constant)
    assert QIF.time_constants == ("tsyn", "tmem")
