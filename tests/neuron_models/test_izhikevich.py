"""`Izhikevich` / `pIzhikevich` against independent truths.

Exact settings (float64, Tsit5, PID rtol = atol = 1e-12, Newton 1e-13): spike
times are compared with an independent float64 event-driven simulation
(`scipy` DOP853, its own event detection at `v_thresh`, the reset
`v -> c, u -> u + d` and spike delivery by hand), and the gradients of spike
times and observed states w.r.t. every learnable parameter with central
finite differences of the simulator.
"""

from __future__ import annotations

import jax

_X64_BEFORE_IMPORT = jax.config.jax_enable_x64
jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optimistix as optx  # noqa: E402
import pytest  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import eventax as ex  # noqa: E402
from eventax.data import yin_yang, yin_yang_spikes  # noqa: E402
from eventax.neuron_models.izhikevich import Izhikevich, pIzhikevich  # noqa: E402

jax.config.update("jax_enable_x64", _X64_BEFORE_IMPORT)


@pytest.fixture(autouse=True)
def _float64_mode():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


EXACT = dict(
    dtype=jnp.float64,
    solver=diffrax.Tsit5(),
    stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-12),
    root_finder=optx.Newton(1e-13, 1e-13),
    solver_stepsize=0.01,
)
PARAMS = ("a", "b", "c", "d", "v_thresh", "tau_syn")


# ---------------------------------------------------------------- independent reference


def reference_spikes(rhs, weights, y0, in_times, t_end, spike_channel, peak, reset, jump):
    """Event-driven float64 simulation with `scipy.integrate.solve_ivp` (DOP853).

    Integrates all neurons between events; a terminal event per neuron finds
    `y[j, spike_channel] = peak[j]` crossing upwards; then `reset(y, j)` and the
    spike is delivered at once (`jump(y, weights[j])`). Input rows are delivered
    by hand at their times. Returns `[(time, neuron), ...]` in time order.
    """
    shape = y0.shape
    n = shape[0]
    pending = sorted((float(t), n + k) for k, row in enumerate(in_times) for t in row if np.isfinite(t))

    def event(j):
        def crossing(s, z):
            return z.reshape(shape)[j, spike_channel] - peak[j]

        crossing.terminal, crossing.direction = True, 1.0
        return crossing

    events = [event(j) for j in range(n)]
    t, y, spikes = 0.0, np.array(y0, float), []
    while True:
        t_next = pending[0][0] if pending else t_end
        if t_next > t:
            sol = solve_ivp(
                lambda s, z: rhs(z.reshape(shape)).ravel(), (t, t_next), y.ravel(),
                method="DOP853", rtol=1e-10, atol=1e-12, events=events,
            )
            assert sol.status >= 0, sol.message
            if sol.status == 1:
                t, j = min((te[0], j) for j, te in enumerate(sol.t_events) if len(te))
                y = reset(sol.y_events[j][0].reshape(shape), j)
                spikes.append((t, j))
                y = jump(y, weights[j])
                continue
            y = sol.y[:, -1].reshape(shape)
        t = t_next
        while pending and pending[0][0] <= t:
            y = jump(y, weights[pending.pop(0)[1]])
        if t >= t_end:
            return spikes


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
        y = y.copy()
        y[j, 0] = p["c"][j]
        y[j, 1] += p["d"][j]
        return y

    def jump(y, w):
        y = y.copy()
        y[:, 2] += w
        return y

    v0 = np.array([_rest(b) for b in p["b"]])
    y0 = np.stack([v0, p["b"] * v0, np.zeros(n)], axis=1)
    return reference_spikes(rhs, weights, y0, in_times, t_end, 0, p["v_thresh"], reset, jump)


def _rest(b):
    """Stable fixed point of the unforced neuron, from numpy's polynomial roots."""
    roots = np.roots([0.04, 5.0 - b, 140.0])
    return float(np.min(roots.real))


def _spike_times(rec):
    n = int(rec.n_spikes)
    assert n < rec.times.shape[0]
    return np.asarray(rec.times[:n]), np.asarray(rec.neurons[:n])


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
    times, _ = _spike_times(_record(net, jnp.asarray(x)))
    ref = izhikevich_reference(weights, SINGLE, ic, x, T_END_1)
    assert len(times) == len(ref) >= 2
    err = np.max(np.abs(times - [t for t, _ in ref]))
    print(f"\n[Izhikevich single] case={case}: {len(times)} spikes, max err vs scipy {err:.2e}")
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
    mask = np.zeros((N + N_IN, N), bool)
    mask[N:, :N_HID] = True
    mask[:N_HID, N_HID:] = True
    rng = np.random.default_rng(3)
    weights = np.where(mask, rng.uniform(6.0, 14.0, mask.shape), 0.0)
    weights[N, 1], weights[0, 3] = -5.0, -4.0  # some inhibition
    return mask, weights


def network():
    """`pIzhikevich` (learnable `a`, `tau_syn`) with every other parameter learnable too."""
    mask, weights = _net_weights()
    return ex.EvNN(
        pIzhikevich, N, T_END_NET, N_IN, wmask=mask, output_neurons=np.arange(N_HID, N),
        init_weights=weights, init_bias=NET_IC, trainable=PARAMS, **NET_PARAMS, **EXACT,
    )


MAX_SPIKES = 16
SPIKE_COEFS = np.linspace(1.0, -0.5, MAX_SPIKES)


def _loss_spikes(net):
    """A weighted sum of every spike time (hidden and output) from `record`."""
    rec = net.record(jnp.asarray(X_NET), max_spikes=MAX_SPIKES)
    return jnp.sum(jnp.where(jnp.isfinite(rec.times), rec.times, 0.0) * SPIKE_COEFS), rec


def _loss_states(net):
    s = net.state_at_t(jnp.asarray(X_NET), jnp.asarray(OBS_TIMES))  # (n_out, times, [v, u, i])
    weights = jnp.array([[0.3, 0.8], [1.1, -0.5]])
    return jnp.sum(s[..., 0] * weights) + 0.7 * jnp.sum(s[..., 1]) + 0.4 * jnp.sum(s[..., 2])


@eqx.filter_jit
def _evaluate(net):
    (l1, rec), g1 = eqx.filter_value_and_grad(_loss_spikes, has_aux=True)(net)
    l2, g2 = eqx.filter_value_and_grad(_loss_states)(net)
    return jnp.stack([l1, l2]), (g1, g2), rec


LEARNABLE = ("weights", "ic") + PARAMS


def _leaves(model):
    return {name: getattr(model, name) for name in LEARNABLE}


def finite_differences(net, rel_step=1e-5):
    """Central differences of both losses w.r.t. every learnable entry (real synapses only).

    Returns `rows = [(name, index, step)]`, `fd` of shape `(len(rows), 2)` and the
    spike count of every perturbed network. Reuses the compiled `_evaluate`.
    """
    mask = np.asarray(net.wmask.value)
    base = {k: np.asarray(v) for k, v in _leaves(net.neuron_model).items()}
    rows = [
        (name, idx, rel_step * max(1.0, abs(value[idx])))
        for name, value in base.items()
        for idx in zip(*np.nonzero(mask if name == "weights" else np.ones(value.shape, bool)))
    ]
    fd, n_spikes = np.zeros((len(rows), 2)), []
    for r, (name, idx, h) in enumerate(rows):
        for sign in (1.0, -1.0):
            value = jnp.asarray(base[name]).at[idx].add(sign * h)
            losses, _, rec = _evaluate(eqx.tree_at(lambda n: getattr(n.neuron_model, name), net, value))
            fd[r] += sign * np.asarray(losses) / (2 * h)
            n_spikes.append(int(rec.n_spikes))
    return rows, fd, np.array(n_spikes)


@pytest.fixture(scope="module")
def evaluated_network():
    """The network and its losses, gradients and spike record (compiled once)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    net = network()
    result = net, _evaluate(net)
    jax.config.update("jax_enable_x64", previous)
    return result


def test_network_matches_scipy(evaluated_network):
    """2 inputs -> 3 hidden -> 2 outputs: all spikes within 1e-6 of scipy (measured ~1e-10)."""
    net, (_, _, rec) = evaluated_network
    times, neurons = _spike_times(rec)
    _, weights = _net_weights()
    ref = izhikevich_reference(weights, NET_PARAMS, NET_IC, X_NET, T_END_NET)
    assert [j for _, j in ref] == list(neurons)
    assert set(neurons) == set(range(N))  # every neuron spikes
    err = np.max(np.abs(times - [t for t, _ in ref]))
    print(f"\n[Izhikevich network] {len(times)} spikes, max err vs scipy {err:.2e}")
    assert err < 1e-6


def test_network_gradients_match_finite_differences(evaluated_network):
    """d(spike-time loss) and d(state loss) w.r.t. weights, ic and every per-neuron
    parameter (a, b, c, d, v_thresh, tau_syn) vs central FD.

    Spike-time loss: weighted sum of all spike times (`record`); state loss:
    weighted sum of the outputs' (v, u, i) at t = 16 and 25 (`state_at_t`),
    after resets. Step `h = 1e-5 max(1, |p|)`; error relative to
    `max(|fd|, 1e-3 max |fd|)` per loss, tolerance 1e-5 (measured < 1e-6).
    """
    net, (_, grads, rec) = evaluated_network
    rows, fd, n_spikes = finite_differences(net)
    assert np.all(n_spikes == int(rec.n_spikes))  # no spike appears or vanishes
    mask = np.asarray(net.wmask.value)
    for loss_idx, loss_name in enumerate(["spike times", "states"]):
        ad = _leaves(grads[loss_idx].neuron_model)
        assert np.all(np.asarray(ad["weights"])[~mask] == 0.0)  # absent synapses
        g = np.array([np.asarray(ad[name])[idx] for name, idx, _ in rows])
        floor = 1e-3 * np.max(np.abs(fd[:, loss_idx]))
        rel = np.abs(g - fd[:, loss_idx]) / np.maximum(np.abs(fd[:, loss_idx]), floor)
        worst = {name: max(r for (n, *_), r in zip(rows, rel) if n == name) for name in LEARNABLE}
        print(f"\n[Izhikevich gradients] {loss_name}: {len(rows)} parameters, worst relative error "
              f"{rel.max():.2e}; per parameter " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
        k = int(np.argmax(rel))
        assert rel[k] < 1e-5, (loss_name, rows[k], g[k], fd[k, loss_idx])


# ---------------------------------------------------------------- float32 training step


def test_ffevnn_float32_training_step_and_save_load(tmp_path):
    """FFEvNN([50, 3]) of `pIzhikevich` on 8 Yin-Yang samples (30 ms): finite loss and
    gradients under jit + vmap; some outputs spike; a saved and loaded network
    gives identical ttfs."""
    jax.config.update("jax_enable_x64", False)  # the autouse fixture restores it
    features, labels = yin_yang(8, seed=0)
    x = jnp.asarray(yin_yang_spikes(features), jnp.float32)
    net = ex.FFEvNN(
        [50, 3], 5, pIzhikevich, 30.0, key=jax.random.PRNGKey(0), wlim=20.0, wmean=15.0,
        output_no_spike_value=30.0,
    )

    @eqx.filter_jit
    @eqx.filter_value_and_grad(has_aux=True)
    def loss_fn(net, x, labels):
        ttfs = jax.vmap(net.ttfs)(x)
        logp = jax.nn.log_softmax(-ttfs, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1)), ttfs

    (loss, ttfs), grads = loss_fn(net, x, jnp.asarray(labels))
    leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_array))
    assert np.isfinite(float(loss))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert float(jnp.max(jnp.abs(grads.neuron_model.a))) > 0
    spiked = float(jnp.mean(ttfs < 30.0))
    print(f"\n[Izhikevich FFEvNN] loss={float(loss):.4f}, fraction of outputs that spiked {spiked:.2f}")
    assert spiked > 0.25

    ex.save_evnn(tmp_path / "izhikevich.eqx", net)
    loaded, _ = ex.load_evnn(tmp_path / "izhikevich.eqx")
    assert type(loaded.neuron_model) is pIzhikevich
    (_, ttfs_loaded), _ = loss_fn(loaded, x, jnp.asarray(labels))
    np.testing.assert_array_equal(np.asarray(ttfs_loaded), np.asarray(ttfs))


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
    args = dict(key=jax.random.PRNGKey(0), n_neurons=2, in_size=1, wmask=np.ones((3, 2)))
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        Izhikevich(**args)


def test_pizhikevich_trains_time_constants():
    model = pIzhikevich(jax.random.PRNGKey(0), 3, 1, np.ones((4, 3)))
    assert model.a.shape == (3,) and model.tau_syn.shape == (3,)
    assert isinstance(model.b, ex.Constant) and isinstance(model.d, ex.Constant)
    assert Izhikevich.time_constants == ("tau_syn", "a")
    assert isinstance(Izhikevich(jax.random.PRNGKey(0), 3, 1, np.ones((4, 3))).a, ex.Constant)
