"""Every solver family and step-size controller runs spiking networks, to the right spike times.

Issue 12, target 4: Euler, Heun, Tsit5 and Dopri5 at constant steps up to 1.0 (the
inter-spike scale), and a PID controller at rtol 1e-3 and 1e-6 in float32 and 1e-10 in
float64, must run spiking networks without aborting. Long steps used to abort with "The
ODE solver or the spike-time root finder failed": Newton on `max_k spike_condition_k`
over a long step cycled between two neurons' branches (see `eventax._segment.bracketed`).

The network is one `EvNN` of two independent blocks, so that one compiled program per
solver setting covers both kinds of connectivity (and the general event loop, which any
recurrent network takes):

- a feed-forward 3-6-2 LIF block whose hidden neurons fire several times each
  (~33 spikes per trial before the outputs' first spikes);
- a recurrent block of 5 LIF neurons (2 inputs, all-to-all recurrent weights of both
  signs, self-connections included) with 9-12 spikes per trial.

Truth: with `tmem = 2 tsyn` the LIF membrane between events is a quadratic in
`z = exp(-t / tmem)`, so an exact float64 event-driven simulation needs only the roots of
a quadratic (`lif_truth`); it is checked here against `scipy.integrate.solve_ivp`
(DOP853, rtol = atol = 1e-12, with events).

Tolerances (max |first-spike error| over 4 outputs x 3 trials), error model
`K dt^p + floor`:
- float32 floor 1e-4: the root finder's time tolerance is 4 eps t_max = 1.4e-5 and float32
  rounding of times near 30 is 2e-6 per spike; both propagate through up to ~30
  upstream spikes (measured: 1e-5 at most for every Tsit5/Dopri5 step and PID 1e-6);
- Euler (p = 1) `10 dt`, Heun (p = 2) `0.5 dt^2`: the global error of a p-th order
  method; K is ~2-5x the measured constant (Euler: 7.4 at dt 0.1, Heun: 0.19 at dt 1.0,
  both in the recurrent block, where a spike time error feeds back). The convergence
  itself is asserted: going from dt 1.0 to 0.1 must cut the error by at least 10^p / 4;
- Tsit5 / Dopri5: the float32 floor at every step up to 1.0 (5th-order steps with a
  4th-order dense output: (h / tsyn)^5 ~ 3e-4 relative at h = 1, measured ~1e-5);
- PID float32 rtol 1e-3: 5e-3 (5x rtol; measured 7e-4); rtol 1e-6: the float32 floor;
- PID float64 rtol = atol = 1e-10: 1e-8 (100x rtol; measured 5e-10).

Spike/no-spike must agree with the truth everywhere.
"""

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eventax as ex

TSYN, TMEM, THRESH, T_END = 5.0, 10.0, 1.0, 30.0
N_FF, N_REC, IN_FF, IN_REC = 8, 5, 3, 2
N, IN = N_FF + N_REC, IN_FF + IN_REC
OUTPUTS = [6, 7, N_FF + 3, N_FF + 4]
F32_FLOOR = 1e-4


def make_weights():
    rng = np.random.default_rng(1)
    w = np.zeros((N + IN, N))
    w[N:N + IN_FF, :6] = rng.uniform(1.0, 3.0, (IN_FF, 6))              # inputs -> hidden
    w[:6, 6:N_FF] = rng.uniform(0.3, 1.2, (6, 2))                        # hidden -> outputs
    w[N + IN_FF:, N_FF:] = rng.uniform(1.2, 2.5, (IN_REC, N_REC))        # inputs -> recurrent
    w[N_FF:N, N_FF:] = rng.uniform(-0.5, 0.7, (N_REC, N_REC))            # recurrent
    return w


WEIGHTS = make_weights()
# (trials, IN, 2): two spikes per input channel (feed-forward inputs, then recurrent inputs)
INPUTS = np.array([
    [[1.0, 9.0], [3.0, 14.0], [5.0, 20.0], [1.0, 12.0], [4.0, 18.0]],
    [[2.0, 11.0], [0.5, 16.0], [6.0, 13.0], [2.0, 9.0], [0.5, 15.0]],
    [[4.0, 7.0], [1.5, 18.0], [3.0, 22.0], [3.0, 14.0], [6.0, 20.0]],
])


def lif_truth(weights, inputs, t_end=T_END):
    """Exact float64 event-driven LIF network (`tmem = 2 tsyn`, no bias, reset to 0).

    Between events, with `s` the time since the last one and `z = exp(-s / tmem)`:
    `i(s) = i0 z^2`, `v(s) = (v0 + c i0) z - c i0 z^2`, `c = tsyn / (tmem - tsyn)`.
    Each neuron's next upward threshold crossing is a root of a quadratic in `z`.
    Returns the first spike time of every neuron and the number of spikes.
    """
    n = weights.shape[1]
    c = TSYN / (TMEM - TSYN)
    pending = sorted((float(t), n + r) for r, row in enumerate(inputs) for t in row if np.isfinite(t))
    v, i, t = np.zeros(n), np.zeros(n), 0.0
    first, n_spikes = np.full(n, np.inf), 0
    while t < t_end:
        t_in, row = pending.pop(0) if pending else (t_end, None)
        a, b = v + c * i, c * i
        s_cross = np.full(n, np.inf)
        for k in range(n):
            if b[k] == 0:
                roots = [THRESH / a[k]] if a[k] != 0 else []
            else:
                disc = a[k] ** 2 - 4 * b[k] * THRESH
                if disc < 0:
                    continue
                q = 0.5 * (a[k] + math.copysign(math.sqrt(disc), a[k]))
                roots = [q / b[k], THRESH / q] if q != 0 else []
            for z in roots:
                # inside the gap, and v rising: dv/ds = -(a - 2 b z) z / tmem > 0
                if 0 < z < 1 and a[k] - 2 * b[k] * z < 0:
                    s = -TMEM * math.log(z)
                    if 0 < s <= t_in - t:
                        s_cross[k] = min(s_cross[k], s)
        k = int(np.argmin(s_cross))
        s = s_cross[k] if np.isfinite(s_cross[k]) else t_in - t
        z = math.exp(-s / TMEM)
        v, i, t = a * z - b * z * z, i * z * z, t + s
        if np.isfinite(s_cross[k]):
            if row is not None:
                pending.insert(0, (t_in, row))
            v[k] = 0.0
            first[k] = min(first[k], t)
            n_spikes += 1
            i = i + weights[k]
        elif row is not None:
            i = i + weights[row]
    return first, n_spikes


TRUTH = np.stack([lif_truth(WEIGHTS, x)[0][OUTPUTS] for x in INPUTS])


def run(dtype=jnp.float32, **solver_kwargs):
    net = ex.EvNN(
        ex.LIF, N, T_END, IN, wmask=WEIGHTS != 0, output_neurons=OUTPUTS,
        init_weights=jnp.asarray(WEIGHTS, dtype), init_bias=0.0,
        thresh=THRESH, tsyn=TSYN, tmem=TMEM, dtype=dtype, **solver_kwargs,
    )
    ttfs = eqx.filter_jit(lambda net, x: jax.vmap(net.ttfs)(x))
    return np.asarray(ttfs(net, jnp.asarray(INPUTS, dtype)))


def error(t):
    assert np.array_equal(np.isfinite(t), np.isfinite(TRUTH)), (t, TRUTH)
    return float(np.max(np.abs(t - TRUTH)))


def test_closed_form_truth_matches_solve_ivp():
    """The truth is what a tight general-purpose solver gives (to 1e-9), and it spikes a lot."""
    from scipy.integrate import solve_ivp

    def rhs(t, y):
        return np.concatenate([(-y[:N] + y[N:]) / TMEM, -y[N:] / TSYN])

    def crossing(k):
        event = lambda t, y: y[k] - THRESH  # noqa: E731
        event.terminal, event.direction = True, 1
        return event

    events = [crossing(k) for k in range(N)]
    for x in INPUTS:
        pending = sorted((float(t), N + r) for r, row in enumerate(x) for t in row)
        y, t, first = np.zeros(2 * N), 0.0, np.full(N, np.inf)
        while t < T_END:
            t_in, row = pending.pop(0) if pending else (T_END, None)
            hit = []
            if t_in > t:
                sol = solve_ivp(rhs, (t, t_in), y, method="DOP853", rtol=1e-12, atol=1e-12,
                                events=events)
                hit = [k for k in range(N) if len(sol.t_events[k])]
            if hit:
                k = min(hit, key=lambda k: sol.t_events[k][0])
                t, y = sol.t_events[k][0], sol.y_events[k][0].copy()
                y[k], first[k] = 0.0, min(first[k], t)
                y[N:] += WEIGHTS[k]
                if row is not None:
                    pending.insert(0, (t_in, row))
            else:
                if t_in > t:
                    y = sol.y[:, -1].copy()
                t = t_in
                if row is not None:
                    y[N:] += WEIGHTS[row]
        truth, n_spikes = lif_truth(WEIGHTS, x)
        np.testing.assert_allclose(first, truth, rtol=0, atol=1e-9)
        assert n_spikes >= 40 and np.all(np.isfinite(truth[OUTPUTS]))


@pytest.mark.parametrize(
    "solver, order, k",
    [(diffrax.Euler, 1, 10.0), (diffrax.Heun, 2, 0.5), (diffrax.Tsit5, 4, 0.0), (diffrax.Dopri5, 4, 0.0)],
)
def test_constant_steps_up_to_one(solver, order, k):
    errors = {}
    for dt in (0.1, 0.5, 1.0):
        errors[dt] = error(run(solver=solver(), solver_stepsize=dt))
        print(f"\n{solver.__name__} dt={dt}: max |error| {errors[dt]:.2e}")
        assert errors[dt] <= k * dt**order + F32_FLOOR
    if k:
        assert errors[1.0] / errors[0.1] >= 10**order / 4  # converges at its order


@pytest.mark.parametrize("rtol, tol", [(1e-3, 5e-3), (1e-6, F32_FLOOR)])
def test_pid_controller_float32(rtol, tol):
    controller = diffrax.PIDController(rtol=rtol, atol=rtol * 1e-3)
    err = error(run(solver=diffrax.Tsit5(), solver_stepsize=0.1, stepsize_controller=controller))
    print(f"\nPID rtol={rtol}: max |error| {err:.2e}")
    assert err <= tol


def test_pid_controller_float64_is_a_reference(x64):
    controller = diffrax.PIDController(rtol=1e-10, atol=1e-10)
    err = error(run(jnp.float64, solver=diffrax.Tsit5(), solver_stepsize=0.1,
                    stepsize_controller=controller))
    print(f"\nPID float64 rtol=atol=1e-10: max |error| {err:.2e}")
    assert err <= 1e-8
