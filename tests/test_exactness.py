"""Physics and gradients of `EvNN` against independent truths, in float64.

Every network here uses Tsit5 and a Newton spike-time root finder
(`rtol = atol = 1e-13`), on both of eventax's segment integrators:

- "adaptive": `PIDController(rtol=1e-12, atol=1e-12)`, which goes through
  `diffrax.diffeqsolve` with a `diffrax.Event`;
- "fixed": a constant step of 0.01, which goes through eventax's lean
  fixed-step loop and a root find on Tsit5's dense interpolant (local error
  ~h^5: the spike times are exact to ~1e-14 here).

With these settings the simulator is a near-exact integrator, so it is compared
with

a. the closed-form spike train of a bias-driven LIF neuron,
b. the closed-form response of a LIF neuron to one input spike (tmem = 2 tsyn),
c. central finite differences of the simulator itself on a small multi-layer
   network with hidden spikes, resets, biases and learnable delays.

Tolerances are stated (with the measured error) in each test's docstring.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest

import eventax as ex

THRESH = 1.0


@pytest.fixture(autouse=True)
def _float64_mode(x64):
    """Every test of this module runs with x64 on (module constants are NumPy
    float64 arrays; they become JAX arrays inside the tests)."""


PATHS = ["adaptive", "fixed"]


def exact_net(path, n_neurons, in_size, max_solver_time, **kwargs):
    """An `EvNN` of LIF neurons with near-exact float64 solver settings."""
    if path == "adaptive":
        controller = diffrax.PIDController(rtol=1e-12, atol=1e-12)
    else:
        controller = diffrax.ConstantStepSize()
    net = ex.EvNN(
        ex.LIF,
        n_neurons,
        max_solver_time,
        in_size,
        key=jax.random.PRNGKey(0),
        thresh=THRESH,
        dtype=jnp.float64,
        solver=diffrax.Tsit5(),
        stepsize_controller=controller,
        root_finder=optx.Newton(rtol=1e-13, atol=1e-13),
        solver_stepsize=0.01,
        **kwargs,
    )
    assert net.root_finder.atol == 1e-13  # not raised by eventax's tolerance floor
    return net


# Jitted entry points, shared by all tests of a and b: their nets have the same
# structure and differ only in array leaves, so each entry point compiles once.


def _first_spike(net_and_x):
    net, x = net_and_x
    return net.ttfs(x)[0]


def _kth_spike(net, x, k):
    train = net.spikes_until_t(x, T_END_AB, max_spikes=16)[0]
    return train[k], train


# Value and gradient w.r.t. both the network and the input spike times.
_ttfs_value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(_first_spike))
_kth_spike_value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(_kth_spike, has_aux=True))
_record = eqx.filter_jit(lambda net, x: net.record(x, max_spikes=64))
_state_at_t = eqx.filter_jit(lambda net, x, ts: net.state_at_t(x, ts))

T_END_AB = 40.0


def single_lif(path, *, ic=0.0, w=0.0, tsyn, tmem):
    """One LIF neuron fed by one input row (no self-connection).

    tsyn, tmem and thresh are trainable so that they are array leaves: nets of
    a and b then share one compiled program per entry point.
    """
    return exact_net(
        path, 1, 1, T_END_AB, wmask=np.array([[0], [1]]), init_weights=w, init_bias=ic,
        tsyn=tsyn, tmem=tmem, trainable=("thresh", "tsyn", "tmem"),
    )


# --------------------------------------------------------------------------- a.
# Bias-driven LIF: v' = (ic - v)/tmem from v = 0, no input. v(t) = ic (1 - e^{-t/tmem})
# reaches thresh at T = tmem ln(ic / (ic - thresh)); after the reset to 0 the
# same trajectory repeats, so the k-th spike is at k T.

TMEM_A, TSYN_A = 10.0, 5.0
NO_INPUT = np.array([[np.inf]])


def bias_net(ic, path="adaptive"):
    return single_lif(path, ic=ic, tsyn=TSYN_A, tmem=TMEM_A)


def bias_period(ic, thresh=THRESH, tmem=TMEM_A):
    return tmem * np.log(ic / (ic - thresh))


ICS = [1.2, 1.5, 2.0, 3.0]


@pytest.mark.parametrize("ic", ICS)
@pytest.mark.parametrize("path", PATHS)
def test_bias_driven_first_spike_time_and_gradients(ic, path):
    """First spike time (`ttfs`) and its gradients match the closed form.

    T = tmem ln(ic/(ic - thresh)); dT/dic = tmem (1/ic - 1/(ic - thresh)),
    dT/dtmem = ln(ic/(ic - thresh)), dT/dthresh = tmem/(ic - thresh),
    dT/dtsyn = 0 (no synaptic current), dT/d(input time = inf) = 0 (not NaN).
    Tolerance: 1e-9 absolute on the time (solver/root tolerances 1e-12/1e-13;
    measured ~2e-11) and 1e-7 relative on each gradient (measured ~2e-10).
    """
    net = bias_net(ic, path)
    t, (grads, grad_x) = _ttfs_value_and_grad((net, jnp.asarray(NO_INPUT)))
    t = float(t)
    expected = bias_period(ic)
    print(f"\n[a {path}] ic={ic}: t_spike={t:.15f} closed form={expected:.15f} err={t - expected:.2e}")
    assert abs(t - expected) < 1e-9

    model = grads.neuron_model
    analytic = {
        "ic": TMEM_A * (1.0 / ic - 1.0 / (ic - THRESH)),
        "tmem": np.log(ic / (ic - THRESH)),
        "thresh": TMEM_A / (ic - THRESH),
    }
    for name, value in analytic.items():
        got = float(getattr(model, name)[0])
        rel = abs(got - value) / abs(value)
        print(f"[a {path}] ic={ic}: dT/d{name}={got:.12f} analytic={value:.12f} rel err={rel:.2e}")
        assert rel < 1e-7, name
    assert float(model.tsyn[0]) == 0.0
    assert np.all(np.asarray(grad_x) == 0.0), "gradient w.r.t. an absent (inf) input must be 0"


@pytest.mark.parametrize("ic", ICS)
@pytest.mark.parametrize("path", PATHS)
def test_bias_driven_periodic_firing(ic, path):
    """`record` reports spikes at exact multiples k T of the closed-form period.

    Checks every spike until t_end = 40 (2 to 9 spikes) and that no extra spike
    is reported. Tolerance: 1e-9 absolute per spike (each reset restarts the same
    trajectory, errors add up over <= 9 intervals; measured <= 4e-11).
    """
    net = bias_net(ic, path)
    period = bias_period(ic)
    rec = _record(net, jnp.asarray(NO_INPUT))
    n = int(rec.n_spikes)
    expected = period * np.arange(1, int(T_END_AB // period) + 1)
    assert n == len(expected)
    assert np.all(np.asarray(rec.neurons[:n]) == 0)
    err = np.max(np.abs(np.asarray(rec.times[:n]) - expected))
    print(f"\n[a {path}] ic={ic}: {n} spikes, max |t_k - k T| = {err:.2e}")
    assert err < 1e-9
    assert np.all(np.isinf(np.asarray(rec.times[n:])))


@pytest.mark.parametrize("ic", [1.5, 3.0])
@pytest.mark.parametrize("path", PATHS)
def test_bias_driven_gradient_of_later_spikes(ic, path):
    """Gradients through resets: d t_k / d ic = k dT/dic for the k-th spike.

    Uses `spikes_until_t`; k = 1..3 for ic = 1.5 (period ~11) and ic = 3 (~4).
    Tolerance: 1e-9 absolute on t_k, 1e-7 relative on the gradient (measured
    ~7e-11).
    """
    net = bias_net(ic, path)
    d_period = TMEM_A * (1.0 / ic - 1.0 / (ic - THRESH))
    for k in range(3):
        (t_k, _), grads = _kth_spike_value_and_grad(net, jnp.asarray(NO_INPUT), jnp.asarray(k))
        assert abs(float(t_k) - (k + 1) * bias_period(ic)) < 1e-9
        got = float(grads.neuron_model.ic[0])
        rel = abs(got - (k + 1) * d_period) / abs((k + 1) * d_period)
        print(f"\n[a {path}] ic={ic}: d t_{k + 1}/d ic={got:.12f} expected={(k + 1) * d_period:.12f} rel={rel:.2e}")
        assert rel < 1e-7


# --------------------------------------------------------------------------- b.
# One input spike of weight w at t_in, no bias, tmem = 2 tsyn = 2 tau.
# With s = t - t_in: i(s) = w e^{-s/tau} and v' = (-v + i)/(2 tau), v(0) = 0.
# Variation of constants:
#   v(s) = (w/(2tau)) e^{-s/(2tau)} int_0^s e^{r/(2tau)} e^{-r/tau} dr
#        = w e^{-s/(2tau)} (1 - e^{-s/(2tau)}) = w (u - u^2),   u = e^{-s/(2tau)}.
# (The maximum w/4 is reached at u = 1/2: the neuron spikes iff w > 4 thresh.)
# Spike: u - u^2 = thresh/w  ->  u* = (1 + sqrt(1 - 4 thresh/w))/2 (the earlier
# crossing is the larger u), s* = -2 tau ln u*.
# Implicit differentiation: (1 - 2u) du = -(thresh/w^2) dw, ds = -2 tau du/u, so
#   ds*/dw = -2 tau thresh / (w^2 u* (2u* - 1)).

TAU_B, T_IN_B = 2.0, 1.3
X_B = np.array([[T_IN_B]])


def closed_form_v(s, w, tau=TAU_B):
    u = jnp.exp(-s / (2 * tau))
    return w * (u - u**2)


def closed_form_spike(w, thresh=THRESH, tau=TAU_B):
    u = (1.0 + np.sqrt(1.0 - 4.0 * thresh / w)) / 2.0
    s = -2.0 * tau * np.log(u)
    ds_dw = -2.0 * tau * thresh / (w**2 * u * (2.0 * u - 1.0))
    return s, ds_dw


def one_input_net(w, path="adaptive"):
    return single_lif(path, w=w, tsyn=TAU_B, tmem=2 * TAU_B)


def test_closed_form_solves_the_lif_ode():
    """Sanity check of the truth used in b: v(s) = w(u - u^2) solves the ODE.

    v(0) = 0 and v'(s) = (-v(s) + w e^{-s/tau})/(2 tau) at several s, with v'
    from autodiff; the closed-form spike time hits thresh on an upward crossing
    and its derivative matches a central difference of the closed form.
    Tolerance 1e-12 / 1e-8 relative (pure float64 arithmetic; the central
    difference has O(h^2) ~ 1e-10 error).
    """
    w = 6.0
    assert float(closed_form_v(0.0, w)) == 0.0
    for s in [0.1, 0.7, 2.0, 5.0]:
        dv = float(jax.grad(closed_form_v)(s, w))
        rhs = (-float(closed_form_v(s, w)) + w * np.exp(-s / TAU_B)) / (2 * TAU_B)
        assert abs(dv - rhs) < 1e-12
    s_star, ds_dw = closed_form_spike(w)
    assert abs(float(closed_form_v(s_star, w)) - THRESH) < 1e-12
    assert float(jax.grad(closed_form_v)(s_star, w)) > 0  # upward crossing
    h = 1e-5
    fd = (closed_form_spike(w + h)[0] - closed_form_spike(w - h)[0]) / (2 * h)
    assert abs(fd - ds_dw) < 1e-8 * abs(ds_dw)


@pytest.mark.parametrize("w", [4.5, 6.0, 10.0])
@pytest.mark.parametrize("path", PATHS)
def test_single_input_spike_time_and_gradients(w, path):
    """Spike time, d t/d w and d t/d t_in against the closed form.

    Tolerance: 1e-9 absolute on the time (measured ~1e-12), 1e-7 relative on
    d t/d w (measured ~2e-10), 1e-7 absolute on d t/d t_in = 1; the masked
    self-connection must get an exactly zero gradient.
    """
    net = one_input_net(w, path)
    s_star, ds_dw = closed_form_spike(w)
    t, (grads, grad_x) = _ttfs_value_and_grad((net, jnp.asarray(X_B)))
    t = float(t)
    print(f"\n[b {path}] w={w}: t_spike={t:.15f} closed form={T_IN_B + s_star:.15f} err={t - T_IN_B - s_star:.2e}")
    assert abs(t - (T_IN_B + s_star)) < 1e-9

    g = grads.neuron_model.weights
    rel = abs(float(g[1, 0]) - ds_dw) / abs(ds_dw)
    print(f"[b {path}] w={w}: dt/dw={float(g[1, 0]):.12f} closed form={ds_dw:.12f} rel err={rel:.2e}")
    assert rel < 1e-7
    assert float(g[0, 0]) == 0.0

    g_x = float(grad_x[0, 0])
    print(f"[b {path}] w={w}: dt/dt_in={g_x:.12f}")
    assert abs(g_x - 1.0) < 1e-7


@pytest.mark.parametrize("path", PATHS)
def test_single_input_below_threshold_never_spikes(path):
    """w = 3.9 < 4 thresh: v peaks at w/4 = 0.975 < thresh, so no spike (inf)."""
    rec = _record(one_input_net(3.9, path), jnp.asarray(X_B))
    assert int(rec.n_spikes) == 0


@pytest.mark.parametrize("w", [4.5, 10.0])
@pytest.mark.parametrize("path", PATHS)
def test_single_input_membrane_trajectory(w, path):
    """`state_at_t` (v, i) before the spike equals the closed form.

    Times: before the input (state 0), exactly at the input (left limit: still
    0), and five times between the input and just before the spike.
    Tolerance: 1e-9 absolute (measured ~7e-14).
    """
    net = one_input_net(w, path)
    s_star, _ = closed_form_spike(w)
    times = np.array(
        [0.5, T_IN_B] + list(T_IN_B + s_star * np.array([0.01, 0.25, 0.5, 0.9, 0.999]))
    )
    states = np.asarray(_state_at_t(net, jnp.asarray(X_B), jnp.asarray(times)))
    assert states.shape == (1, len(times), 2)
    s = np.maximum(times - T_IN_B, 0.0)
    after = times > T_IN_B
    v_exp = np.where(after, np.asarray(closed_form_v(s, w)), 0.0)
    i_exp = np.where(after, w * np.exp(-s / TAU_B), 0.0)
    err_v = np.max(np.abs(states[0, :, 0] - v_exp))
    err_i = np.max(np.abs(states[0, :, 1] - i_exp))
    print(f"\n[b {path}] w={w}: max |v - closed form| = {err_v:.2e}, max |i - closed form| = {err_i:.2e}")
    assert err_v < 1e-9 and err_i < 1e-9
    assert np.all(states[0, :, 0] < THRESH)


# --------------------------------------------------------------------------- c.
# Gradients of a 3 -> 4 (hidden LIF) -> 2 (output LIF) network with biases,
# synaptic and axonal delays, against central finite differences.

N_IN, N_HID, N_OUT = 3, 4, 2
N_C = N_HID + N_OUT
T_END_C = 12.0
OBS_TIMES = np.array([9.0, 11.0])
INPUTS_C = np.array([[0.5, 2.0], [1.0, 3.5], [1.5, np.inf]])


def _ff_mask():
    mask = np.zeros((N_C + N_IN, N_C), bool)
    mask[N_C:, :N_HID] = True  # inputs -> hidden
    mask[:N_HID, N_HID:] = True  # hidden -> output
    return mask


def multilayer_net(path):
    rng = np.random.default_rng(0)
    mask = _ff_mask()
    weights = np.where(mask, rng.uniform(1.0, 4.0, mask.shape), 0.0)
    weights[:N_HID, N_HID:] = rng.uniform(0.5, 3.0, (N_HID, N_OUT))
    return exact_net(
        path, N_C, N_IN, T_END_C, wmask=mask, output_neurons=np.arange(N_HID, N_C),
        init_weights=weights,
        init_bias=rng.uniform(0.2, 0.6, N_C),
        init_delays=np.where(mask, rng.uniform(0.0, 0.5, mask.shape), 0.0),
        init_axonal_delays=rng.uniform(0.05, 0.3, N_C + N_IN),
        tsyn=2.0, tmem=4.0,
    )


def _loss_ttfs(net):
    return jnp.sum(net.ttfs(INPUTS_C) * jnp.array([1.0, 0.7]))


def _loss_state(net):
    s = net.state_at_t(INPUTS_C, OBS_TIMES)  # (n_out, n_times, [v, i])
    return jnp.sum(s[..., 0] * jnp.array([[0.3, 0.8], [1.1, -0.5]])) + 0.4 * jnp.sum(s[..., 1])


def _losses_and_grads(net):
    (l1, g1), (l2, g2) = (eqx.filter_value_and_grad(f)(net) for f in (_loss_ttfs, _loss_state))
    return jnp.stack([l1, l2]), (g1, g2)


# One compiled program serves both AD and the FD evaluations (compiling a
# separate value-only program would cost more than the unused backward passes).
_losses_and_grads = eqx.filter_jit(_losses_and_grads)


def _params(net):
    return [net.neuron_model.weights, net.neuron_model.ic, net.delays, net.axonal_delays]


def _fd_entries(mask):
    """`(parameter number in _params, index)` of the entries checked against FD: a
    seeded sample with 2 entries of each layer of weights and synaptic delays,
    one hidden and one output bias, and the axonal delays of 2 input and 2
    hidden rows (output rows project nowhere: their gradient is 0 by structure)."""
    rng = np.random.default_rng(0)

    def pick(sel, n):
        where = np.argwhere(sel)
        return [tuple(int(i) for i in where[j]) for j in rng.choice(len(where), n, replace=False)]

    rows = np.arange(N_C + N_IN)[:, None]
    into_hidden, into_outputs = mask & (rows >= N_C), mask & (rows < N_C)
    neurons, sources = np.arange(N_C), np.arange(N_C + N_IN)
    return (
        [(0, i) for i in pick(into_hidden, 2) + pick(into_outputs, 2)]
        + [(1, i) for i in pick(neurons < N_HID, 1) + pick(neurons >= N_HID, 1)]
        + [(2, i) for i in pick(into_hidden, 2) + pick(into_outputs, 2)]
        + [(3, i) for i in pick(sources >= N_C, 2) + pick(sources < N_HID, 2)]
    )


def test_ffevnn_builds_the_same_layered_mask():
    """`FFEvNN([4, 2], 3, ...)` has the hand-built mask and outputs used in c."""
    ff = ex.FFEvNN([N_HID, N_OUT], N_IN, ex.LIF, T_END_C, thresh=1.0, tsyn=2.0, tmem=4.0, dtype=jnp.float64)
    assert np.array_equal(ff.wmask.value, _ff_mask())
    assert ff.output_indices == tuple(range(N_HID, N_C))


@pytest.mark.parametrize("path", PATHS)
def test_multilayer_gradients_match_finite_differences(path):
    """AD gradients of a spike-time loss and a post-reset state loss vs central FD.

    Network: 3 inputs (2 spike slots each, one padded with inf) -> 4 hidden LIF
    -> 2 output LIF; random spike-producing weights, nonzero biases, synaptic
    delays on every real synapse and axonal delays on every row.
    Loss 1: weighted sum of the output first-spike times (`ttfs`).
    Loss 2: weighted sum of output (v, i) at t = 9 and 11 (`state_at_t`), after
    several output spikes and resets.
    Checked entries: 14 of the 55 parameters (`_fd_entries`, a seeded sample
    that covers every kind and both layers: 2 input->hidden and 2 hidden->output
    synapse weights and synaptic delays, one hidden and one output bias, the
    axonal delays of 2 input and 2 hidden rows); masked entries must have zero
    gradient (all of them, from the one AD gradient). Each FD entry costs two
    simulations with their backward passes; sampling keeps the per-entry check
    as it was (the tolerances below are per entry or relative), it only checks
    fewer entries. FD: central, step 1e-6, float64. Tolerance: norm-wise
    relative error <= 1e-5 and, on entries with |FD| > 1e-3 max|FD|, elementwise
    relative error <= 1e-5 (FD truncation ~1e-12, solver/root noise 1e-12/h ~
    1e-6 abs at worst; measured norm-wise error ~4e-9 on all 55 entries).
    """
    net = multilayer_net(path)
    mask = _ff_mask()

    # The configuration must exercise hidden spikes, resets and output spikes.
    rec = _record(net, INPUTS_C)
    n = int(rec.n_spikes)
    assert n < 64
    times, neurons = np.asarray(rec.times[:n]), np.asarray(rec.neurons[:n])
    counts = np.bincount(neurons, minlength=N_C)
    print(f"\n[c {path}] {n} spikes; per neuron: {counts.tolist()}")
    assert np.all(counts[:N_HID] >= 2), "every hidden neuron must spike and reset"
    for j in range(N_HID, N_C):
        assert np.sum((neurons == j) & (times < OBS_TIMES[0])) >= 2, "outputs must reset before the observations"
    losses, grads = _losses_and_grads(net)
    assert np.all(np.isfinite(np.asarray(losses)))
    base = _params(net)
    h = 1e-6
    ad, fd, labels = [], [], []
    for k, idx in _fd_entries(mask):
        def perturbed(eps, k=k, idx=idx):
            vals = list(base)
            vals[k] = base[k].at[idx].add(eps)
            return eqx.tree_at(_params, net, vals)

        fd.append((np.asarray(_losses_and_grads(perturbed(h))[0]) - np.asarray(_losses_and_grads(perturbed(-h))[0])) / (2 * h))
        ad.append([float(_params(g)[k][idx]) for g in grads])
        labels.append((["weights", "ic", "delays", "axonal_delays"][k], idx))
    ad, fd = np.array(ad), np.array(fd)  # (n_entries, 2 losses)
    assert ad.shape == (14, 2)

    for loss_i, name in enumerate(["ttfs loss", "state loss"]):
        a, f = ad[:, loss_i], fd[:, loss_i]
        norm_rel = np.linalg.norm(a - f) / np.linalg.norm(f)
        big = np.abs(f) > 1e-3 * np.max(np.abs(f))
        elem_rel = np.max(np.abs(a - f)[big] / np.abs(f)[big])
        worst = labels[int(np.argmax(np.where(big, np.abs(a - f) / np.maximum(np.abs(f), 1e-300), 0)))]
        print(
            f"[c {path}] {name}: ||AD - FD||/||FD|| = {norm_rel:.2e}, max elementwise rel = {elem_rel:.2e}"
            f" (at {worst}), {int(big.sum())} entries checked elementwise"
        )
        assert norm_rel <= 1e-5, name
        assert elem_rel <= 1e-5, name

    # Masked (non-existent) synapses get exactly zero gradient.
    for g in grads:
        assert np.all(np.asarray(g.neuron_model.weights)[~mask] == 0.0)
        assert np.all(np.asarray(g.delays)[~mask] == 0.0)

