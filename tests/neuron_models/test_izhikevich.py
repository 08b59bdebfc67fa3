"""`Izhikevich` / `PIzhikevich` against independent truths.

Exact settings (float64, Tsit5, PID rtol = atol = 1e-12, Newton 1e-13): spike
times are compared with an independent float64 event-driven simulation
(`scipy` DOP853, its own event detection at `v_thresh`, the reset
`v -> c, u -> u + d` and spike delivery by hand), and the gradients of spike
times and observed states w.r.t. every learnable parameter with central
finite differences of the simulator.
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
from eventax.neuron_models import Izhikevich, PIzhikevich

pytestmark = pytest.mark.usefixtures("x64")

PARAMS = ("a", "b", "c", "d", "v_thresh", "tau_syn")


# ---------------------------------------------------------------- independent reference


def izhikevich_reference(weights, params, ic, in_times, t_end):
    """`params`: dict of PARAMS (scalars or per neuron). Starts at the resting state."""
    n = weights.shape[1]
    p = {k: np.broadcast_to(np.asarray(v, float), (n,)) for k, v in params.items()}
    ic = np.broadcast_to(np.asarray(ic, float), (n,))

    def rhs(y):
        v, u, i = y[:, 0], y[:, 1], y[:, 2]
        dv = 0.04 * v * v + 5.0 * v + 140.0 - u + i + ic
        return np.stack([dv, p["a"] * (p["b"] * v - u), -i / p["tau_syn"]], axis=1)

    def reset(y, j):
        y[j, 0] = p["c"][j]
        y[j, 1] += p["d"][j]

    def deliver(y, row):
        y[:, 2] += weights[row]

    v0 = np.array([_rest(b) for b in p["b"]])
    y0 = np.stack([v0, p["b"] * v0, np.zeros(n)], axis=1)
    return event_driven(rhs, lambda y: y[:, 0] - p["v_thresh"], reset, deliver, y0, input_rows(in_times, n), t_end)


def _rest(b):
    """Stable fixed point of the unforced neuron, from numpy's polynomial roots."""
    roots = np.roots([0.04, 5.0 - b, 140.0])
    return float(np.min(roots.real))


def test_initial_state_is_at_rest():
    """Without input the initial state is a fixed point (-70 mV for b = 0.2); where
    no rest exists (b = 0.3) the neuron starts at (c, b c)."""
    model = Izhikevich(
        jax.random.PRNGKey(0), 3, 0, np.ones((3, 3)), b=np.array([0.2, 0.25, 0.3]), c=-60.0,
        dtype=jnp.float64,
    )
    y0 = model.init_state(3)
    v, u, i = (np.asarray(c) for c in y0)
    assert v[0] == pytest.approx(-70.0) and v[1] == pytest.approx(_rest(0.25))
    np.testing.assert_allclose(u[:2], [0.2 * -70.0, 0.25 * _rest(0.25)])
    f = np.stack(model.dynamics(0.0, y0, None), axis=1)
    np.testing.assert_allclose(f[:2], 0.0, atol=1e-10)
    np.testing.assert_allclose([v[2], u[2], i[2]], [-60.0, -18.0, 0.0])


# ---------------------------------------------------------------- single neuron

SINGLE = dict(a=0.02, b=0.2, c=-65.0, d=4.0, v_thresh=30.0, tau_syn=5.0)
T_END_1 = 30.0
_record = eqx.filter_jit(lambda net, x: net.record(x, max_spikes=64))

SINGLE_CASES = [
    # (w_self, w_in, ic, input times): bias only; inputs; inputs + bias + self-connection
    (0.0, 0.0, 10.0, [np.inf] * 4),
    (0.0, 12.0, 0.0, [2.0, 4.0, 5.0, 20.0]),
    (-8.0, 15.0, 3.0, [1.0, 3.0, 11.0, np.inf]),
    (6.0, -10.0, 12.0, [4.0, 5.0, 15.0, 22.0]),
]


@pytest.mark.parametrize("case", SINGLE_CASES)
def test_driven_neuron_matches_scipy(case):
    """Every spike time within 1e-6 of the scipy reference (measured ~1e-10)."""
    w_self, w_in, ic, x = case
    x, weights = np.array([x]), np.array([[w_self], [w_in]])
    net = ex.EvNN(
        Izhikevich, 1, T_END_1, 1, wmask=np.ones((2, 1)), init_weights=weights, init_bias=ic,
        **SINGLE, **EXACT,
    )
    got = spike_list(_record(net, jnp.asarray(x)))
    assert len(got) >= 2
    err = spike_error(got, izhikevich_reference(weights, SINGLE, ic, x, T_END_1))
    print(f"\n[Izhikevich single] case={case}: {len(got)} spikes, max err vs scipy {err:.2e}")
    assert err < 1e-6


# ---------------------------------------------------------------- network + gradients

N_IN, N_HID, N_OUT = 2, 3, 2
N = N_HID + N_OUT
T_END_NET = 30.0
X_NET = np.array([[1.0, 9.0], [3.0, 14.0]])
OBS_TIMES = np.array([16.0, 25.0])
NET_PARAMS = dict(
    a=np.array([0.02, 0.1, 0.05, 0.03, 0.08]),
    b=np.array([0.2, 0.22, 0.18, 0.2, 0.25]),
    c=np.array([-65.0, -60.0, -55.0, -65.0, -50.0]),
    d=np.array([4.0, 2.0, 6.0, 8.0, 3.0]),
    v_thresh=np.array([30.0, 30.0, 25.0, 30.0, 35.0]),
    tau_syn=np.array([4.0, 5.0, 3.0, 5.0, 6.0]),
)
NET_IC = np.array([2.0, 4.0, 0.0, 1.0, 0.5])


def _net_weights():
    mask = feed_forward_mask(N_IN, N_HID, N_OUT)
    rng = np.random.default_rng(3)
    weights = np.where(mask, rng.uniform(6.0, 14.0, mask.shape), 0.0)
    weights[N, 1], weights[0, 3] = -5.0, -4.0  # some inhibition
    return mask, weights


def network():
    """`PIzhikevich` (learnable `a`, `tau_syn`) with every other parameter learnable too."""
    mask, weights = _net_weights()
    return ex.EvNN(
        PIzhikevich, N, T_END_NET, N_IN, wmask=mask, output_neurons=np.arange(N_HID, N),
        init_weights=weights, init_bias=NET_IC, trainable=PARAMS, **NET_PARAMS, **EXACT,
    )


# spike loss: the first 16 spike times weighted 1 .. -0.5; state loss: the outputs'
# (v, u, i) at OBS_TIMES, channel 0 weighted per output and time, the others uniformly.
CHANNEL_0 = np.array([[0.3, 0.8], [1.1, -0.5]])  # (output, time)
LOSSES = NetworkLosses(
    X_NET, OBS_TIMES, np.linspace(1.0, -0.5, 16),
    np.stack([CHANNEL_0, np.full((2, 2), 0.7), np.full((2, 2), 0.4)], axis=-1),
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
    err = spike_error(got, izhikevich_reference(weights, NET_PARAMS, NET_IC, X_NET, T_END_NET))
    assert {j for _, j in got} == set(range(N))  # every neuron spikes
    print(f"\n[Izhikevich network] {len(got)} spikes, max err vs scipy {err:.2e}")
    assert err < 1e-6


def test_network_gradients_match_finite_differences(evaluated_network):
    """d(spike-time loss) and d(state loss) w.r.t. weights, ic and every per-neuron
    parameter (a, b, c, d, v_thresh, tau_syn) vs central FD.

    Spike-time loss: weighted sum of all spike times (`record`); state loss:
    weighted sum of the outputs' (v, u, i) at t = 16 and 25 (`state_at_t`),
    after resets. Step `h = 1e-5 max(1, |p|)`; error relative to
    `max(|fd|, 1e-3 max |fd|)` per loss, tolerance 1e-5 (measured < 1e-6).
    """
    net, (_, rec, grads) = evaluated_network
    check_entrywise_gradients("Izhikevich gradients", net, grads, rec, LEARNABLE, _evaluate, tol=1e-5)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(a=0.0), "`a`"),
        (dict(a=-0.02), "`a`"),
        (dict(tau_syn=-5.0), "tau_syn"),
        (dict(c=30.0), "`c`"),
        (dict(c=-50.0, v_thresh=-60.0), "`c`"),
        (dict(b=np.ones(3)), "`b`"),
        (dict(d=np.nan), "`d`"),
        (dict(v_thresh=np.ones((2, 2))), "v_thresh"),
        (dict(trainable=("tmem",)), "trainable"),
        (dict(wmask=np.ones((2, 2))), "wmask"),
    ],
)
def test_bad_parameters_raise(kwargs, name):
    assert_rejected(Izhikevich, name, **kwargs)


def test_pizhikevich_trains_time_constants():
    model = PIzhikevich(jax.random.PRNGKey(0), 3, 1, np.ones((4, 3)))
    assert model.a.shape == (3,) and model.tau_syn.shape == (3,)
    assert isinstance(model.b, ex.Constant) and isinstance(model.d, ex.Constant)
    assert Izhikevich.time_constants == ("tau_syn", "a")
    assert isinstance(Izhikevich(jax.random.PRNGKey(0), 3, 1, np.ones((4, 3))).a, ex.Constant)
