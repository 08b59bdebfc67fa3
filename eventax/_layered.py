"""Layered simulation of acyclic networks: each neuron runs on its own clock.

In a network without recurrent connections the neurons fall into layers (the
longest path from the inputs), and a layer's input spikes are all known once
the layers before it have run. So each layer is simulated on its own, and each
of its neurons advances independently through its own sorted list of input
arrivals: there is no global event queue, no lock-step between neurons, and a
neuron's spike costs only that neuron's loop iteration.

One iteration of a neuron at clock `t`:

1. step the ODE from `t` to `tau = min(next arrival, step end, next
   observation, end)` with one step of the solver. With constant steps the step
   end is the next grid point `t0 + k h` (`h = solver_stepsize`); with a
   `PIDController` it is `t` plus the neuron's own proposed step, and a step whose
   error estimate exceeds the tolerance is rejected and retried shorter (`_Adaptive`);
2. if the spike condition crosses zero in `[t, tau]`, stop there: the crossing
   is the root of the condition along the quintic Hermite interpolant of the
   step (values, slopes and curvatures at both ends), found by a safeguarded
   Newton iteration; its gradient is the implicit-function-theorem one. An
   observation due at the crossing's time records the state there (the left
   limit); then the neuron is reset and its spike logged;
3. otherwise, at `tau`, record a due observation (the left limit) and deliver
   a due arrival; a neuron lifted to `condition >= 0` by it spikes at once.

Every neuron of the layer is stepped in each iteration: one vectorised call of
the layer's model (`NeuronModel.subset`; the whole population, with the other
neurons idle, where a model cannot be restricted) with per-neuron times;
finished neurons take steps of length zero. The model therefore sees `t` as a
per-neuron array of shape `(n_neurons,)` and `input_spike`'s `from_idx` as one
source row per target: models written elementwise need no change.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import diffrax as dfx
import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, Bool, Float, Int, PyTree

from ._segment import _explicit_tableau, solver_init, solver_step
from ._engine import AbstractEngine
from ._loop import saved_while_loop
from ._simulate import _nonnegative
from .simulation import Outcome, Recorders

if TYPE_CHECKING:
    from .evnn import EvNN

_MAX_NEWTON = 32
_NEWTON_UNROLLED = 3  # Newton iterations taken before testing for convergence (usually 3)
# With adaptive steps, a step holding a crossing is retaken to end this factor
# past it (relative to the step's start).
_RETAKE = 1.01
_RETAKE_INSIDE = 0.01  # (crossings closer to the step's start are kept)
# Loop iterations an adaptive layer may take beyond its estimate (as Diffrax's
# `diffeqsolve(max_steps=4096)`).
_ADAPTIVE_STEPS = 4096
# Iterations of a layer's loop saved for reverse-mode AD (no recomputation) at most;
# later ones are recomputed from checkpoints (see `_Layer.run`).
_MAX_SAVED = 1024
# Numbers per trial a layer's loop may save to keep every possible iteration.
_SAVE_ALL = 1_000_000
# Spikes per neuron in a usual trial (sizes the saved part of a layer's loop).
_USUAL_SPIKES = 4


def layers(wmask: np.ndarray, n_neurons: int) -> tuple[np.ndarray, ...] | None:
    """The neurons of each layer (longest path from the inputs), or `None` if the
    neuron-to-neuron connections have a cycle (a self-connection included)."""
    adj = np.asarray(wmask, bool)[:n_neurons, :n_neurons]
    remaining = adj.sum(axis=0)
    depth = np.zeros(n_neurons, int)
    ready = list(np.flatnonzero(remaining == 0))
    seen = 0
    while ready:
        j = ready.pop()
        seen += 1
        for k in np.flatnonzero(adj[j]):
            depth[k] = max(depth[k], depth[j] + 1)
            remaining[k] -= 1
            if remaining[k] == 0:
                ready.append(k)
    if seen < n_neurons:
        return None
    return tuple(np.flatnonzero(depth == d) for d in range(depth.max() + 1))


# ---------------------------------------------------------------------- one step


def _scaled(v, like):
    """Broadcast a per-neuron `(n,)` array against a leaf with a leading neuron axis."""
    return v.reshape(v.shape + (1,) * (like.ndim - 1))


def _tree_scale(tree, v):
    return jax.tree_util.tree_map(lambda leaf: leaf * _scaled(v, leaf).astype(leaf.dtype), tree)


class _Step(NamedTuple):
    """One step `[t, t + dt]` of every neuron, in the rescaled time `s in [0, 1]`:
    the end state, the state's first and second derivatives at both ends, and the
    spike condition's value and first two derivatives at both ends."""

    y1: PyTree
    f0: PyTree
    f1: PyTree
    a0: PyTree
    a1: PyTree
    c: tuple[Array, Array, Array, Array, Array, Array]  # c0, c0', c0'', c1, c1', c1''
    error: PyTree  # the solver's embedded estimate of the local error of `y1` (or None)


def _step(model, solver, t, dt, y) -> _Step:
    """One solver step of every neuron from `t` to `t + dt` (per-neuron arrays).

    The ODE is solved in the rescaled time `s in [0, 1]`, `t(s) = t + s dt`,
    `dy/ds = dt f(t(s), y)`, so one scalar step covers every neuron's own
    interval. Derivatives are per unit `s`; second derivatives of the state come
    from a Jacobian-vector product of the dynamics, `y'' = dt (df/dt dt + df/dy y')`.
    """

    def rescaled(s, z):
        return _tree_scale(model.dynamics(t + s * dt, z, None), dt)

    y1, error, f0, f1 = _solver_step(solver, rescaled, y, dt.dtype)
    one = jnp.ones((), dt.dtype)
    f0, a0 = jax.jvp(rescaled, (jnp.zeros((), dt.dtype), y), (one, f0))
    f1, a1 = jax.jvp(rescaled, (one, y1), (one, f1))
    ends = _along(model, t, dt, y, f0, a0, 0.0) + _along(model, t, dt, y1, f1, a1, 1.0)
    return _Step(y1, f0, f1, a0, a1, ends, error)


def _solver_step(solver, fn, y, dtype):
    """One step of `solver` from `s = 0` to `1` of `dy/ds = fn(s, y)`:
    `(y1, error estimate, fn(0, y), fn(1, y1))`.

    Explicit Runge-Kutta solvers run with their stages unrolled (`solver_step`);
    the end slopes repeat its first and (first-same-as-last) last stage, which XLA
    evaluates once.
    """
    terms = dfx.ODETerm(lambda s, z, args: fn(s, z))
    zero, one = jnp.zeros((), dtype), jnp.ones((), dtype)
    y1, error = solver_step(solver, terms, zero, one, y, solver_init(solver, terms, zero, one, y))[:2]
    return y1, error, fn(zero, y), fn(one, y1)


def _along(model, t, dt, y, f, a, s0):
    """The condition and its first two `s`-derivatives at `s0`, along the path
    `y + (s - s0) f + (s - s0)^2 a / 2` (which the quintic matches there)."""

    def path(s):
        u = s - s0
        z = jax.tree_util.tree_map(
            lambda yl, fl, al: yl + _scaled(u, yl) * fl + _scaled(u * u / 2, yl) * al, y, f, a
        )
        return model.spike_condition(t + s * dt, z)

    def slope(s):
        return jax.jvp(path, (s,), (jnp.ones_like(s),))[1]

    s = jnp.full(dt.shape, s0, dt.dtype)
    c, dc = jax.jvp(path, (s,), (jnp.ones_like(s),))
    return c, dc, jax.jvp(slope, (s,), (jnp.ones_like(s),))[1]


def _quintic_basis(s):
    """Quintic Hermite basis on `[0, 1]`: weights of `(v0, v0', v0'', v1, v1', v1'')`."""
    s2 = s * s
    s3 = s2 * s
    s4, s5 = s3 * s, s3 * s2
    return (
        1 - 10 * s3 + 15 * s4 - 6 * s5,
        s - 6 * s3 + 8 * s4 - 3 * s5,
        0.5 * s2 - 1.5 * s3 + 1.5 * s4 - 0.5 * s5,
        10 * s3 - 15 * s4 + 6 * s5,
        -4 * s3 + 7 * s4 - 3 * s5,
        0.5 * s3 - s4 + 0.5 * s5,
    )


def _interpolate(y0, st: _Step, s):
    """The step's quintic Hermite interpolant at `s in [0, 1]` (per neuron): it
    matches the state and its first two derivatives at both ends."""
    w = _quintic_basis(s)

    def leaf(*parts):
        return sum(_scaled(wk, parts[0]) * part for wk, part in zip(w, parts)).astype(parts[0].dtype)

    return jax.tree_util.tree_map(leaf, y0, st.f0, st.a0, st.y1, st.f1, st.a1)


def _condition_poly(st: _Step):
    """Monomial coefficients `p0..p5` of the condition's quintic Hermite in `s`."""
    c0, d0, e0, c1, d1, e1 = st.c
    return (
        c0,
        d0,
        0.5 * e0,
        -10 * c0 - 6 * d0 - 1.5 * e0 + 10 * c1 - 4 * d1 + 0.5 * e1,
        15 * c0 + 8 * d0 + 1.5 * e0 - 15 * c1 + 7 * d1 - e1,
        -6 * c0 - 3 * d0 - 0.5 * e0 + 6 * c1 - 3 * d1 + 0.5 * e1,
    )


def _poly(p, s):
    value, slope = p[5], 5 * p[5]
    for k in (4, 3, 2, 1):
        value = value * s + p[k]
        slope = slope * s + k * p[k]
    return value * s + p[0], slope


def _bracket(st: _Step):
    """Whether the condition may cross zero upwards in the step, and an upper end
    `hi` of a bracket `[0, hi]` holding only the first crossing.

    A crossing is `c0 < 0 <= c1`, or a grazing one: both ends below zero but a
    local maximum inside reaching it. The maximum is located on the cubic Hermite
    of the condition (values and slopes at the ends); if it is at or above zero,
    the first crossing lies before it. `_root` confirms it on the quintic.
    """
    c0, d0, _, c1, d1, _ = st.c
    p3, p2, p1, p0 = 2 * c0 + d0 - 2 * c1 + d1, -3 * c0 - 2 * d0 + 3 * c1 - d1, d0, c0
    disc = p2 * p2 - 3 * p3 * p1
    sq = jnp.sqrt(jnp.maximum(disc, 0.0))
    q = -(p2 + jnp.where(p2 >= 0, sq, -sq))
    s_max = jnp.where(p2 > 0, q / jnp.where(p3 == 0, 1.0, 3 * p3), p1 / jnp.where(q == 0, 1.0, q))
    inside = (disc >= 0) & (q != 0) & (s_max > 0) & (s_max < 1)
    s_max = jnp.where(inside, s_max, 1.0)
    peak = inside & (((p3 * s_max + p2) * s_max + p1) * s_max + p0 >= 0)
    return (c0 < 0) & ((c1 >= 0) | peak), jnp.where(peak, s_max, 1.0)


def _root(st: _Step, hi, wanted):
    """First zero of the condition's quintic in `[0, hi]`, per neuron, and whether
    there is one (some iterate, or the bracket's upper end, reached zero).

    Newton's method from the secant guess, kept inside the shrinking sign-change
    bracket (a step that leaves it bisects instead). It iterates until every
    `wanted` neuron's step is below a few ulp, at most `_MAX_NEWTON` times.
    """
    p = _condition_poly(st)
    v_hi, _ = _poly(p, hi)
    s = jnp.clip(-p[0] / jnp.where(v_hi > p[0], v_hi - p[0], 1.0), 0.0, 1.0) * hi
    tol = 4 * jnp.finfo(hi.dtype).eps

    def body(c):
        s, lo, hi, found, done, k = c
        v, slope = _poly(p, s)
        found = found | (~done & (v >= 0))
        lo, hi = jnp.where(v < 0, s, lo), jnp.where(v < 0, hi, s)
        newton = s - v / jnp.where(slope > 0, slope, 1.0)
        # (a finite slope only: an infinite one gives a zero step that looks converged)
        ok = (slope > 0) & (slope < jnp.inf) & (newton >= lo) & (newton <= hi)
        # A converged neuron keeps its root: the others' iterations must not move it
        # (and a batch must give what each sample gives alone).
        s_next = jnp.where(done, s, jnp.where(ok, newton, 0.5 * (lo + hi)))
        return s_next, lo, hi, found, done | (jnp.abs(s_next - s) <= tol), k + 1

    def running(c):
        # (`unvmap_any`: under `vmap` one loop for the batch, with no per-sample selects)
        return (c[5] < _MAX_NEWTON) & eqxi.unvmap_any(~c[4])

    c = (s, jnp.zeros_like(hi), hi, v_hi >= 0, ~wanted, jnp.asarray(0))
    for _ in range(_NEWTON_UNROLLED):  # (one fused kernel; the loop rarely runs after them)
        c = body(c)
    s, _, _, found, _, _ = jax.lax.while_loop(running, body, c)
    return s, found


def _crossing(model, st: _Step, t, dt, y, hi, wanted):
    """Time and state of the first crossing, with the implicit-function gradient,
    and whether the crossing exists.

    The Newton iterate `s` is computed without gradients; one more Newton step on
    the condition along the interpolant, `s - g(s) / g'(s)` with `g'` held
    constant, gives the same value and the exact derivative `-dg/dtheta / g'`.
    """
    s, found = _root(jax.lax.stop_gradient(st), hi, wanted)
    s = jax.lax.stop_gradient(s)

    def g(s):
        return model.spike_condition(t + s * dt, _interpolate(y, st, s))

    value, slope = jax.jvp(g, (s,), (jnp.ones_like(s),))
    slope = jax.lax.stop_gradient(slope)
    # Only where a crossing is sought: elsewhere the condition may be far from zero
    # (e.g. a silenced neuron) and the step would leave [0, 1].
    s = jnp.where(wanted, s - value / jnp.where(slope > 0, slope, 1.0), s)
    return t + s * dt, _interpolate(y, st, s), found


# ---------------------------------------------------------------------- step sizes


class _Grid(NamedTuple):
    """Constant steps: a step ends at the next grid point `t0 + k h` at the latest."""

    t0: float
    h: float

    def next_time(self, t, h_prop):
        grid = self.t0 + (jnp.floor((t - self.t0) / self.h) + 1) * self.h
        return jnp.where(grid <= t, grid + self.h, grid)

    def control(self, st: _Step, y0, dt, h_prop):
        """`(accepted, next proposed step)`: every step is accepted."""
        return jnp.ones(dt.shape, bool), h_prop

    def settle(self, sought, found, ok, h, c, dt, t_x):
        """`(crossed, accepted, next proposed step, retook)` once the crossing was sought."""
        return sought & found, ok, h, c.retook

    def bound(self, span: float, events: int, typical: int) -> tuple[int, int]:
        """`(most loop iterations, iterations saved)` for at most `events` arrivals and
        spikes over `span`, `typical` of them in a usual trial."""
        n = math.ceil(span / self.h) + 1
        return n + events, n + typical


class _Adaptive(NamedTuple):
    """Per-neuron adaptive steps: each neuron's step is accepted when the RMS over
    its state of `error / (atol + rtol max(|y0|, |y1|))` is at most 1, and the next
    one is `dt * safety * ratio^(-1/order)`, the factor clipped to `[factormin,
    factormax]` (at most 1 after a rejection) and the step to `[dtmin, dtmax]`:
    Diffrax's `PIDController` with its default (integral) coefficients, applied to
    each neuron on its own clock. Step sizes carry no gradient."""

    rtol: float
    atol: float
    safety: float
    factormin: float
    factormax: float
    dtmin: float
    dtmax: float
    exponent: float
    h0: float

    def next_time(self, t, h_prop):
        return t + h_prop

    def control(self, st: _Step, y0, dt, h_prop):
        """`(accepted, next proposed step)` per neuron."""
        leaves = (jax.tree_util.tree_leaves(tree) for tree in (st.error, y0, st.y1))
        scaled = [
            ((e / (self.atol + self.rtol * jnp.maximum(jnp.abs(a), jnp.abs(b)))) ** 2).reshape(e.shape[0], -1)
            for e, a, b in zip(*leaves)
        ]
        ratio = jnp.sqrt(sum(_row_sum(q) for q in scaled) / sum(q.shape[1] for q in scaled))
        ratio = jnp.where(jnp.isnan(ratio), jnp.inf, ratio)
        accepted = (ratio <= 1) | (dt <= self.dtmin)
        factor = jnp.where(ratio > 0, self.safety * ratio ** -self.exponent, self.factormax)
        grown = jnp.clip(dt * factor, dt * self.factormin, jnp.maximum(h_prop, dt * self.factormax))
        shrunk = dt * jnp.clip(factor, self.factormin, 1.0)
        h = jnp.clip(jnp.where(accepted, grown, shrunk), self.dtmin, self.dtmax)
        return accepted, jnp.where(dt > 0, h, h_prop)

    def settle(self, sought, found, ok, h, c, dt, t_x):
        """`(crossed, accepted, next proposed step, retook)` once the crossing was sought.

        A step whose crossing lies inside it is retaken once, to end just past the
        crossing: the root then lies where the interpolant is pinned to the solver's
        values (its error grows as `s^3 (1 - s)^3`). A step whose crossing could not
        be located (the interpolant overflowed) is retaken shorter.
        """
        failed = sought & ~(found & jnp.isfinite(t_x))
        crossed = sought & ~failed
        length = jax.lax.stop_gradient(t_x - c.t) * _RETAKE
        inside = (length > _RETAKE_INSIDE * dt) & (length < dt) & (c.t + length > c.t)
        retake = crossed & inside & ~c.retook
        h = jnp.where(failed, dt * self.factormin, jnp.where(retake, length, h))
        return crossed & ~retake, ok & ~(failed | retake), h, retake

    def bound(self, span: float, events: int, typical: int) -> tuple[int, int]:
        """`(most loop iterations, iterations saved)`: the steps of the first step size
        over `span` and two iterations per arrival or spike (at most `events`, `typical`
        of them in a usual trial), plus `_ADAPTIVE_STEPS` at most."""
        n = math.ceil(span / self.h0) + 1
        return n + 2 * events + _ADAPTIVE_STEPS, n + 2 * typical


def step_sizes(net: EvNN) -> _Grid | _Adaptive | None:
    """The layered engine's step-size rule for `net`'s solver settings, or `None`
    when it has none (an adaptive controller other than Diffrax's integral
    `PIDController`, or one without an explicit Runge-Kutta solver's error estimate)."""
    ctrl, solver = net.stepsize_controller, net.solver
    if isinstance(ctrl, dfx.ConstantStepSize):
        return _Grid(net.t0, net.solver_stepsize)
    tableau = _explicit_tableau(solver)
    plain = isinstance(ctrl, dfx.PIDController) and ctrl.pcoeff == 0 and ctrl.dcoeff == 0
    if not plain or ctrl.norm is not optx.rms_norm or tableau is None or tableau.b_error is None:
        return None
    span = net.max_solver_time - net.t0
    return _Adaptive(
        rtol=float(ctrl.rtol), atol=float(ctrl.atol), safety=float(ctrl.safety),
        factormin=float(ctrl.factormin), factormax=float(ctrl.factormax),
        dtmin=0.0 if ctrl.dtmin is None else float(ctrl.dtmin),
        dtmax=span if ctrl.dtmax is None else float(ctrl.dtmax),
        exponent=float(ctrl.icoeff) / float(solver.order(None) if ctrl.error_order is None else ctrl.error_order),
        h0=net.solver_stepsize,
    )


# ---------------------------------------------------------------------- one layer


class _Carry(NamedTuple):
    """Loop state of one layer: its population's clocks, states and records."""

    t: Float[Array, " pop"]
    h: Float[Array, " pop"]  # the next proposed step (adaptive steps)
    retook: Bool[Array, " pop"]  # the last step was retaken to end past a crossing
    y: PyTree
    ptr: Int[Array, " pop"]
    log_t: Float[Array, " capacity"]
    log_j: Int[Array, " capacity"]
    count: Int[Array, ""]
    first: Float[Array, " pop"]
    observations: Float[Array, "n_times n_out channels"]  # in time order (`_Observing`)
    obs_ptr: Int[Array, " n_out"]  # each output's next observation
    trains: Float[Array, "n_out train"]
    train_count: Int[Array, " n_out"]


class _Observing(NamedTuple):
    """The observation times in time order, visited by each output with a pointer.

    `times`: sorted; `order[k]`: the position in the given times of `times[k]`;
    `next[k]`: the first index past every time equal to `times[k]`; `first[k]`: the
    first index equal to `times[k]` (tied times are observed once, at the first).
    """

    times: Float[Array, " n_obs"]
    order: Int[Array, " n_obs"]
    next: Int[Array, " n_obs"]
    first: Int[Array, " n_obs"]

    @classmethod
    def of(cls, obs_times: Float[Array, " n_obs"] | None, dtype) -> _Observing:
        obs_times = jnp.zeros((0,), dtype) if obs_times is None else obs_times
        order = jnp.argsort(obs_times, stable=True)
        times = obs_times[order]
        key = jax.lax.stop_gradient(times)
        return cls(times, order, *(jnp.searchsorted(key, key, side=side).astype(jnp.int32)
                                   for side in ("right", "left")))

    def due(self, ptr: Int[Array, " k"]) -> Float[Array, " k"]:
        """The time of the observation at `ptr` (`inf` past the last)."""
        n = len(self.times)
        if not n:
            return jnp.full(ptr.shape, jnp.inf, self.times.dtype)
        return jnp.where(ptr < n, self.times[jnp.minimum(ptr, n - 1)], jnp.inf)

    def after(self, ptr: Int[Array, " k"]) -> Int[Array, " k"]:
        """The pointer once the observation at `ptr` (and those tied with it) is made."""
        return self.next[jnp.minimum(ptr, len(self.times) - 1)]

    def in_given_order(self, observations: Float[Array, "n_obs n_out channels"]):
        return observations[self.first][jnp.argsort(self.order)]


class _Events(NamedTuple):
    """A layer's input arrivals, sorted per target (`width` 1: shared by all)."""

    times: Float[Array, "width M"]
    source: Int[Array, "width M"]


class _Layer:
    """One layer's loop over the population `pop` (the layer's neurons, or every
    neuron with the others idle when the model cannot be restricted to a layer)."""

    def __init__(self, net: EvNN, members: np.ndarray, recorders: Recorders, obs: _Observing, t_end,
                 steps: _Grid | _Adaptive):
        n = net.n_neurons
        model = net.neuron_model.subset(members, n, n + net.in_size)
        self.pop = np.arange(n) if model is None else np.asarray(members)
        self.model = net.neuron_model if model is None else model
        self.active = np.isin(self.pop, members)
        self.members, self.net, self.recorders, self.obs, self.t_end = members, net, recorders, obs, t_end
        self.capacity = layer_capacity(net, len(members))
        outs = np.asarray(net.output_indices)
        self.out_pos = np.flatnonzero(np.isin(self.pop, outs) & self.active)  # in pop
        self.out_slot = np.searchsorted(outs, self.pop[self.out_pos])  # in the outputs
        self.wmask = np.asarray(net.wmask.value)[:, self.pop]
        self.steps = steps

    def init(self, c: _Carry) -> _Carry:
        """Fresh clocks, states and log for this layer; the output records carry over."""
        m, dtype = len(self.pop), self.net.dtype
        return c._replace(
            t=jnp.full((m,), self.net.t0, dtype),
            h=jnp.full((m,), self.net.solver_stepsize, dtype),
            retook=jnp.zeros((m,), bool),
            y=self.model.init_state(m),
            ptr=jnp.zeros((m,), jnp.int32),
            # (one slot more: where the neurons that do not spike write)
            log_t=jnp.full((self.capacity + 1,), jnp.inf, dtype),
            log_j=jnp.full((self.capacity + 1,), -1, jnp.int32),
            count=jnp.asarray(0, jnp.int32),
            first=jnp.full((m,), jnp.inf, dtype),
        )

    def finished(self, c: _Carry) -> Bool[Array, " pop"]:
        done = (c.t >= self.t_end) | ~jnp.asarray(self.active)
        if self.recorders.stop_at_first_output and len(self.out_pos):
            pos = self.out_pos
            spiked = jnp.isfinite(c.first[pos]) & (c.obs_ptr[self.out_slot] >= len(self.obs.next))
            done = done.at[pos].set(done[pos] | spiked)
        return done

    def iteration(self, ev: _Events, c: _Carry) -> _Carry:
        net, model, dtype = self.net, self.model, self.net.dtype
        m = len(self.pop)
        pos, slot = self.out_pos, self.out_slot
        act = ~self.finished(c)

        rows = jnp.arange(m) if ev.times.shape[0] > 1 else jnp.zeros((m,), jnp.int32)
        idx = jnp.minimum(c.ptr, ev.times.shape[1] - 1)
        t_ev = jnp.where(c.ptr < ev.times.shape[1], ev.times[rows, idx], jnp.inf)
        nxt = self.steps.next_time(c.t, c.h)
        due_obs = self.obs.due(c.obs_ptr[slot])
        t_obs = jnp.full((m,), jnp.inf, dtype).at[pos].set(due_obs)
        # `where`, not `minimum`: at a tie the derivative goes wholly to the arrival
        # or observation time (a tied `minimum` would split it with the grid point);
        # an observation tied with an arrival takes it (it is made before the arrival
        # lands, which then keeps its own derivative: `deliver`).
        tau = jnp.minimum(nxt, self.t_end)
        tau = jnp.where(t_ev <= tau, t_ev, tau)
        tau = jnp.where(t_obs <= tau, t_obs, tau)
        tau = jnp.where(act & (tau >= c.t), tau, c.t)  # a tie takes the arrival's derivative
        dt = tau - c.t

        st = _step(model, net.solver, c.t, dt, c.y)
        ok, h = self.steps.control(*jax.lax.stop_gradient((st, c.y, dt, c.h)))
        crossed, hi = _bracket(jax.lax.stop_gradient(st))  # (no gradient: and sqrt(0) would NaN it)
        sought = crossed & act & ok & (dt > 0)
        t_x, y_x, found = _crossing(model, st, c.t, dt, c.y, hi, sought)
        crossed, ok, h, retook = self.steps.settle(sought, found, ok, h, c, dt, t_x)
        t = jnp.where(crossed, t_x, jnp.where(ok, tau, c.t))
        y = _select(crossed, y_x, _select(ok, st.y1, c.y))

        # The left limit at `tau` is observed before an arrival at `tau` lands.
        # (a crossing at an observation time, `t_x = tau`, is observed there too: the
        # left limit is the state at the crossing, before the reset)
        reached = act & ok & ~crossed
        observations, obs_ptr = c.observations, c.obs_ptr
        if len(pos) and len(self.obs.next):
            hit = (reached | crossed)[pos] & (due_obs <= t[pos])
            observed = model.observe(_select(crossed, y_x, st.y1))[pos]  # padded to the widest model
            observed = jnp.pad(observed, ((0, 0), (0, observations.shape[-1] - observed.shape[-1])))
            row = jnp.where(hit, c.obs_ptr[slot], len(self.obs.next))
            observations = observations.at[row, slot].set(observed, mode="drop")
            obs_ptr = obs_ptr.at[slot].set(jnp.where(hit, self.obs.after(c.obs_ptr[slot]), c.obs_ptr[slot]))

        due = reached & (tau == t_ev)
        if len(pos) and len(self.obs.next):
            # An arrival at an observation's time: the clock has that time's derivative;
            # a step of length `t_ev - t` (zero) along the step's end slope `f1 / dt`
            # gives the arrival its own (not where the step had length zero).
            # (both `where`s: an unused `inf - t` or `1 / 0` would make the gradient NaN)
            tied = due & (dt > 0)
            lag = jnp.where(tied, t_ev - t, 0.0) / jnp.where(tied, dt, 1.0)
            y = jax.tree_util.tree_map(lambda yl, fl: yl + _scaled(lag, yl).astype(yl.dtype) * fl, y, st.f1)
            t = jnp.where(due, t_ev, t)
        source = ev.source[rows, idx]
        targets = jnp.arange(m)
        y = model.input_spike(y, source, targets, due & jnp.asarray(self.wmask)[source, targets])
        lifted = due & (model.spike_condition(t, y) >= 0)
        spiked = crossed | lifted
        y = model.reset_spiked(y, spiked)

        at = jnp.where(spiked, jnp.minimum(c.count + jnp.cumsum(spiked) - 1, self.capacity), self.capacity)
        trains, train_count = c.trains, c.train_count
        if self.recorders.train_length and len(pos):
            k = jnp.where(spiked[pos], train_count[slot], self.recorders.train_length)
            trains = trains.at[slot, k].set(t[pos], mode="drop")
            train_count = train_count.at[slot].add(spiked[pos].astype(jnp.int32))
        return _Carry(
            t=t,
            h=h,
            retook=retook,
            y=y,
            ptr=c.ptr + due.astype(jnp.int32),
            log_t=c.log_t.at[at].set(t),
            log_j=c.log_j.at[at].set(jnp.asarray(self.pop, jnp.int32)),
            count=c.count + jnp.sum(spiked, dtype=jnp.int32),
            first=jnp.where(spiked & jnp.isinf(c.first), t, c.first),
            observations=observations,
            obs_ptr=obs_ptr,
            trains=trains,
            train_count=train_count,
        )

    def run(self, events: _Events, c: _Carry, bound: tuple[int, int]) -> _Carry:
        """Iterate until every neuron of the layer is finished: at most `bound[0]`
        iterations, the first `bound[1]` of them each saved for reverse-mode AD.

        Where every possible iteration fits in `_SAVE_ALL` numbers per trial, all are
        saved. Otherwise those of a usual trial are, and the rest, which a trial rarely
        reaches, are recomputed from a few checkpoints in the backward pass
        (`saved_while_loop`), so that their memory stays small.
        """
        c = self.init(c)
        most, saved = bound
        size = sum(leaf.size for leaf in jax.tree_util.tree_leaves(c)) - sum(
            leaf.size for leaf in jax.tree_util.tree_leaves(_buffers(c)))
        if most <= _MAX_SAVED and most * size <= _SAVE_ALL:
            saved = most
        c = saved_while_loop(
            lambda c: jnp.any(~self.finished(c)),
            lambda c: self.iteration(events, c),
            c, max_steps=most, saved=min(saved, _MAX_SAVED), buffers=_buffers,
        )
        return c._replace(log_t=c.log_t[: self.capacity], log_j=c.log_j[: self.capacity])


def _buffers(c: _Carry):
    """The spike log, observations and spike trains: the loop's write-only buffers.
    Every slot is written at most once (the others' writes drop out of range) and
    never read inside the loop, so the loop need not save them per iteration. (The
    log's spare last slot, which non-spiking neurons overwrite, breaks the write-once
    rule; it is cut off after the loop, so its cotangent is zero and its gradient
    never read.)"""
    return c.log_t, c.log_j, c.observations, c.trains


def _select(pred, a, b):
    return jax.tree_util.tree_map(lambda x, z: jnp.where(_scaled(pred, x), x, z), a, b)


# ---------------------------------------------------------------------- the network


class _Spikes(NamedTuple):
    """Spikes that some layer receives: times, source rows, and which rows can appear."""

    times: Float[Array, " M"]
    source: Int[Array, " M"]
    rows: np.ndarray


def layer_capacity(net: EvNN, size: int) -> int:
    """Spikes one layer of `size` neurons may emit in a trial."""
    return net.layer_capacity if net.layer_capacity is not None else 4 * size + 16


class Layered(AbstractEngine):
    """Networks without recurrent connections, layer by layer, each neuron on its own
    clock (module docstring). Needs no `adjoint`, and constant steps or a
    `PIDController` it can apply per neuron (`step_sizes`)."""

    def can_run(self, net: EvNN) -> bool:
        return (
            layers(np.asarray(net.wmask.value), net.n_neurons) is not None
            and step_sizes(net) is not None
            and net.adjoint is None
        )

    def run(self, net: EvNN, in_spike_times, recorders: Recorders, t_end=None) -> Outcome:
        return simulate_layered(net, in_spike_times, recorders, t_end)


def simulate_layered(net: EvNN, in_spike_times, recorders: Recorders, t_end=None) -> Outcome:
    """Run one trial layer by layer; raise (inside jit: at run time) if it could not finish."""
    dtype, n = net.dtype, net.n_neurons
    t_end = jnp.asarray(net.max_solver_time if t_end is None else t_end, dtype)
    wmask = np.asarray(net.wmask.value)
    outs = np.asarray(net.output_indices)
    in_size, k = in_spike_times.shape
    inputs = _Spikes(
        in_spike_times.reshape(-1),
        jnp.repeat(jnp.arange(n, n + in_size, dtype=jnp.int32), k),
        np.arange(n, n + in_size),
    )
    n_obs = 0 if recorders.obs_times is None else recorders.obs_times.shape[0]
    channels = net.neuron_model.observe(net.neuron_model.init_state(n)).shape[-1]
    c = _Carry(
        t=None, h=None, retook=None, y=None, ptr=None, log_t=None, log_j=None, count=None, first=None,
        observations=jnp.zeros((n_obs, len(outs), channels), dtype),
        obs_ptr=jnp.zeros((len(outs),), jnp.int32),
        trains=jnp.full((len(outs), recorders.train_length), jnp.inf, dtype),
        train_count=jnp.zeros((len(outs),), jnp.int32),
    )
    steps = step_sizes(net)
    obs = _Observing.of(recorders.obs_times, dtype)
    received, logs = [inputs], []
    first = jnp.full((n,), jnp.inf, dtype)
    out_clock = jnp.full((len(outs),), net.t0, dtype)  # where each output's simulation ended
    for depth, members in enumerate(layers(wmask, n)):
        feeds = [s for s in received if wmask[s.rows][:, members].any()]
        layer = _Layer(net, members, recorders, obs, t_end, steps)
        events = _events(net, feeds, layer.pop)
        span = net.max_solver_time - net.t0
        # a usual trial: one arrival per source row, a few spikes per neuron
        typical = sum(len(f.rows) for f in feeds) + _USUAL_SPIKES + n_obs + 2
        most, saved = steps.bound(span, events.times.shape[1] + layer.capacity + n_obs + 2, typical)
        c = _check_layer(layer, layer.run(events, c, (most, saved)), depth, most)
        first = first.at[layer.pop].set(jnp.where(layer.active, c.first, first[layer.pop]))
        out_clock = out_clock.at[layer.out_slot].set(c.t[layer.out_pos])
        received.append(_Spikes(c.log_t, jnp.maximum(c.log_j, 0), members))
        logs.append((c.log_t, c.log_j, c.count))
    c = c._replace(observations=obs.in_given_order(c.observations))
    result = _result(recorders, c, first, out_clock, logs, t_end)
    if recorders.log_length:
        result = eqx.error_if(
            result, result.log_count > recorders.log_length,
            f"More than max_spikes={recorders.log_length} spikes occurred; increase `max_spikes`.",
        )
    return result


def _events(net: EvNN, feeds: list[_Spikes], pop: np.ndarray) -> _Events:
    """Arrival times (after axonal and synaptic delays) of `feeds` at the neurons
    `pop`, sorted per target (one shared row without synaptic delays)."""
    times = jnp.concatenate([f.times for f in feeds])
    source = jnp.concatenate([f.source for f in feeds])
    if net.axonal_delays is not None:
        times = times + _nonnegative(net.axonal_delays[source])
    times = times[None]
    if net.delays is not None:
        connected = jnp.asarray(np.asarray(net.wmask.value)[:, pop])[source].T
        delays = _nonnegative(net.delays[:, pop][source]).T
        times = jnp.where(connected, times + delays, jnp.inf)
    order = jnp.argsort(times, axis=1, stable=True)
    source = jnp.broadcast_to(source[None], times.shape)
    return _Events(jnp.take_along_axis(times, order, 1), jnp.take_along_axis(source, order, 1))


def _check_layer(layer: _Layer, c: _Carry, depth: int, most: int) -> _Carry:
    c = eqx.error_if(
        c, c.count > layer.capacity,
        f"Layer {depth} ({len(layer.members)} neurons) emitted more than "
        f"layer_capacity={layer.capacity} spikes in one trial. Increase `layer_capacity`.",
    )
    return eqx.error_if(
        c, jnp.any(~layer.finished(c)),
        f"Layer {depth} ran out of loop iterations before the end of the trial (input "
        f"spikes + solver steps + its own spikes exceed {most}, a bound set by "
        "`layer_capacity` and `solver_stepsize`, plus "
        f"{_ADAPTIVE_STEPS} with adaptive steps). Increase `layer_capacity`; with "
        "adaptive steps, also loosen the tolerances or lower `solver_stepsize`.",
    )


def _result(recorders: Recorders, c: _Carry, first, out_clock, logs, t_end) -> Outcome:
    t_stop = jnp.max(out_clock) if recorders.stop_at_first_output else t_end
    times = jnp.concatenate([lt for lt, _, _ in logs])
    neurons = jnp.concatenate([lj for _, lj, _ in logs])
    count = sum(cnt for _, _, cnt in logs)
    order = jnp.argsort(times, stable=True)[: recorders.log_length]
    log_times = jnp.full((recorders.log_length,), jnp.inf, times.dtype).at[: order.shape[0]].set(times[order])
    log_neurons = jnp.full((recorders.log_length,), -1, jnp.int32).at[: order.shape[0]].set(neurons[order])
    return Outcome(t_stop, first, c.observations, c.trains, log_times, log_neurons, count)


def _row_sum(q):
    """`q.sum(axis=1)` as elementwise additions of its columns (XLA's CPU reduction
    of a narrow trailing axis inside the layer loop costs more than the whole step)."""
    return sum(q[:, k] for k in range(q.shape[1])) if q.shape[1] <= 16 else q.sum(axis=1)
