"""Integrating one inter-event segment and locating the first spike in it.

`segment(net, y, t0, t1)` integrates the neuron ODE from `t0` towards `t1`,
stopping at the first upward zero crossing of `max_k spike_condition_k`, or after
`net.segment_max_steps` solver steps. It returns `(t, y, crossed, failed)`.

Two implementations share that contract:

- constant step sizes with the default adjoint take a lean loop over solver
  steps (`solver_step`: explicit Runge-Kutta stages unrolled, else the Diffrax
  solver's own `step`), then root-find the crossing on the solver's dense
  interpolant of the crossing step (`optimistix.root_find`, differentiated by
  the implicit function theorem). Per step it carries only what the next step
  and the final root find need, which makes it about twice as fast as a general
  `diffeqsolve` with an `Event` (measured in `experiments/benchmark.py`);
- anything else (adaptive controllers, a user-chosen adjoint) goes through
  `diffrax.diffeqsolve` with a `diffrax.Event` (explicit Runge-Kutta solvers
  with their stages unrolled, `unrolled`).

Both locate the crossing with `BracketedNewton` (Newton kept inside a shrinking
sign-change bracket), which converges on the kinks of `max_k spike_condition_k`
where plain Newton cycles on long steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import diffrax as dfx
import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import optimistix as optx

from ._loop import saved_while_loop

if TYPE_CHECKING:
    from .evnn import EvNN


def segment(net: EvNN, y, t0, t1):
    """Integrate `[t0, t1]` until the first spike-condition crossing; see module docstring."""
    if _uses_fixed_steps(net):
        return _fixed_step_segment(net, y, t0, t1)
    return _diffrax_segment(net, y, t0, t1)


def _uses_fixed_steps(net: EvNN) -> bool:
    return isinstance(net.stepsize_controller, dfx.ConstantStepSize) and net.adjoint is None


def _crossing(model, t, y):
    return jnp.max(model.spike_condition(t, y))


class _Step(eqx.Module):
    n: jax.Array
    t_prev: jax.Array
    y_prev: object
    t: jax.Array
    y: object
    solver_state: object
    crossed: jax.Array
    failed: jax.Array


def _fixed_step_segment(net: EvNN, y0, t0, t1):
    model, solver = net.neuron_model, net.solver
    terms = dfx.ODETerm(model.dynamics)
    dt = jnp.asarray(net.solver_stepsize, net.dtype)

    def step(s: _Step) -> _Step:
        t_next = jnp.minimum(s.t + dt, t1)
        y1, _, _, state, bad = solver_step(solver, terms, s.t, t_next, s.y, s.solver_state)
        return _Step(
            n=s.n + 1, t_prev=s.t, y_prev=s.y, t=t_next, y=y1, solver_state=state,
            crossed=_crossing(model, t_next, y1) > 0, failed=s.failed | bad,
        )

    def running(s: _Step):
        return (s.n < net.segment_max_steps) & (s.t < t1) & ~s.crossed & ~s.failed

    init = _Step(
        n=jnp.asarray(0, jnp.int32), t_prev=t0, y_prev=y0, t=t0, y=y0,
        solver_state=solver_init(solver, terms, t0, t0 + dt, y0),
        crossed=jnp.asarray(False), failed=jnp.asarray(False),
    )
    s = saved_while_loop(running, step, init, max_steps=net.segment_max_steps)
    t_root, y_root, root_failed = _locate(net, terms, s)
    t = jnp.where(s.crossed, t_root, s.t)
    y = jax.tree_util.tree_map(lambda a, b: jnp.where(s.crossed, a, b), y_root, s.y)
    return t, y, s.crossed, s.failed | (s.crossed & root_failed)


def _explicit_tableau(solver):
    """The Butcher tableau of an explicit Runge-Kutta solver, else None."""
    tableau = getattr(solver, "tableau", None)
    if isinstance(solver, dfx.AbstractERK) and isinstance(tableau, dfx.ButcherTableau):
        return tableau
    return None


def solver_init(solver, terms, t0, t1, y0):
    """Solver state for `solver_step` from `(t0, y0)`."""
    if _explicit_tableau(solver) is not None:
        return terms.vf(t0, y0, None)
    return solver.init(terms, t0, t1, y0, None)


def solver_step(solver, terms, t0, t1, y0, state):
    """One step `t0 -> t1`: `(y1, y_error, dense_info, state, failed)` (`y_error` is
    the embedded error estimate, `None` for a solver without one).

    Explicit Runge-Kutta solvers (Heun, Tsit5, Dopri5, ...) are stepped by
    `_erk_step`, with the stages unrolled: the same arithmetic as `solver.step`
    (y1 and the dense output agree to rounding) but, vmapped over a batch on CPU,
    about 30x faster per step. Diffrax runs the stages in a `while_loop` over a
    stage buffer, which under `vmap` costs 2.4 ms per Tsit5 step of 256 samples of
    a 53-neuron LIF state against 77 us unrolled (9 us for an Euler step): Tsit5
    at constant step 0.1 ran 56 samples/s on yy-5-50-3, and 1600 unrolled. The
    state is the vector field at `(t0, y0)` (first-same-as-last: the last stage of
    Tsit5 / Dopri5 is the next step's first). Other solvers use their own `step`.
    """
    tableau = _explicit_tableau(solver)
    if tableau is None:
        y1, err, dense, state, result = solver.step(terms, t0, t1, y0, None, state, False)
        return y1, err, dense, state, result != dfx.RESULTS.successful
    y1, err, dense, f1 = _erk_step(tableau, terms, t0, t1, y0, None, state)
    return y1, err, dense, f1, jnp.asarray(False)


def _erk_step(tableau, terms, t0, t1, y0, args, f0):
    """Explicit Runge-Kutta step with unrolled stages: `(y1, y_error, dense_info, f1)`,
    `f1` the vector field at `(t1, y1)`. Same stages, solution, error estimate and
    dense information (`dict(y0, y1, k)`, `k` the stacked stage increments) as
    Diffrax's `AbstractRungeKutta.step`."""
    tree_map = jax.tree_util.tree_map
    control = terms.contr(t0, t1)
    h = t1 - t0

    def combine(coeffs, ks, base):
        # `base + sum_j c_j k_j`, the increment summed first (as Diffrax does: adding
        # the small terms to `base` one at a time doubles the float32 rounding error).
        pairs = [(float(c), k) for c, k in zip(coeffs, ks) if float(c) != 0.0]
        if not pairs:
            return tree_map(jnp.zeros_like, y0) if base is None else base

        def leaf(*leaves):
            increment = sum(c * kk for (c, _), kk in zip(pairs, leaves[1:]))
            return increment if base is None else leaves[0] + increment

        return tree_map(leaf, y0 if base is None else base, *[k for _, k in pairs])

    ks = [terms.prod(f0, control)]
    f = f0
    y_stage = y0
    for c, a in zip(tableau.c, tableau.a_lower):
        y_stage = combine(a, ks, y0)
        f = terms.vf(t0 + float(c) * h, y_stage, args)
        ks.append(terms.prod(f, control))
    y1 = y_stage if tableau.ssal else combine(tableau.b_sol, ks, y0)
    f1 = f if tableau.fsal else terms.vf(t1, y1, args)
    y_error = combine(tableau.b_error, ks, None)
    dense = dict(y0=y0, y1=y1, k=tree_map(lambda *k: jnp.stack(k), *ks))
    return y1, y_error, dense, f1


_UNROLLED: dict[type, type] = {}


def unrolled(solver):
    """`solver` with `_erk_step` as its `step`, for `diffeqsolve` (adaptive steps).

    An explicit Runge-Kutta solver becomes an instance of a subclass of its own
    class (so Diffrax's checks, order, error order and interpolation are its own)
    whose state is the vector field at the current point (re-evaluated after a
    jump); other solvers are returned as they are. PID-controlled Tsit5 runs about
    3x faster on yy-5-50-3 with it (see `solver_step` for why).
    """
    if _explicit_tableau(solver) is None:
        return solver
    cls = type(solver)
    if cls not in _UNROLLED:

        def init(self, terms, t0, t1, y0, args):
            return terms.vf(t0, y0, args)

        def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
            f0 = jax.lax.cond(
                eqxi.unvmap_any(made_jump),
                lambda: terms.vf(t0, y0, args),
                lambda: solver_state,
            )
            y1, y_error, dense, f1 = _erk_step(self.tableau, terms, t0, t1, y0, args, f0)
            return y1, y_error, dense, f1, dfx.RESULTS.successful

        _UNROLLED[cls] = type(f"Unrolled{cls.__name__}", (cls,), {"init": init, "step": step})
    fields = {f.name: getattr(solver, f.name) for f in dataclasses.fields(solver) if f.init}
    return _UNROLLED[cls](**fields)


def _locate(net: EvNN, terms, s: _Step):
    """Root of the crossing on the dense interpolant of the last step `[t_prev, t]`."""
    model, solver = net.neuron_model, net.solver
    # Recompute the last step for its dense output (cheaper than carrying it).
    state = solver_init(solver, terms, s.t_prev, s.t, s.y_prev)
    _, _, dense, _, _ = solver_step(solver, terms, s.t_prev, s.t, s.y_prev, state)
    # A step of zero length cannot hold a crossing; widen it so the
    # interpolant stays finite in batch elements that did not cross.
    t_hi = jnp.where(s.t > s.t_prev, s.t, s.t_prev + 1)
    # Divide the condition by its secant slope over the step, so that the root
    # finder's tolerance on the function value is a tolerance in time whatever
    # the units of `spike_condition` (a steep condition, e.g. mV/ms, otherwise
    # fails Newton's |f| < atol test). The root and its IFT gradient are unchanged.
    # The slope is that of the neuron that crossed (the largest condition at the
    # step end), not of `max_k cond_k`: when another neuron held the maximum at
    # the step start, the secant of the maximum underestimates the crossing
    # neuron's slope and scales float rounding of the condition up past `atol`.
    cond_end = model.spike_condition(s.t, s.y)
    k = jnp.argmax(cond_end)
    rise = cond_end[k] - model.spike_condition(s.t_prev, s.y_prev)[k]
    # Elements that did not cross (their root find is a dummy) get slope 1: a
    # floor near the smallest float could flush to zero and put inf/NaN into the
    # Newton linear solve of the whole vmapped batch.
    secant = rise / (t_hi - s.t_prev)
    slope = jax.lax.stop_gradient(jnp.where(s.crossed & (secant > 0), secant, 1.0))

    def interp(t, args):
        dense, t_lo, t_hi, *_ = args
        return solver.interpolation_cls(t0=t_lo, t1=t_hi, **dense).evaluate(t)

    def fn(t, args):
        # Where nothing crossed, put a harmless root at the step end.
        _, _, t_hi, crossed, model, slope = args
        return jnp.where(crossed, _crossing(model, t, interp(t, args)) / slope, t_hi - t)

    args = (dense, s.t_prev, t_hi, s.crossed, model, slope)
    sol = optx.root_find(
        fn, bracketed(net.root_finder), t_hi, args=args,
        options={"lower": s.t_prev, "upper": t_hi}, throw=False,
    )
    t_root = jnp.clip(sol.value, s.t_prev, t_hi)
    return t_root, interp(t_root, args), sol.result != optx.RESULTS.successful


def _event_fn(model):
    # Diffrax pads non-triggered events with a Python 0.0 (float64 under x64):
    # return the default float type so both branches agree.
    def fn(t, y, args, **kwargs):
        return _crossing(model, t, y).astype(jnp.result_type(float))

    return fn


def _diffrax_segment(net: EvNN, y, t0, t1):
    """`diffeqsolve` + `Event`; a zero-length segment is solved over a dummy
    positive interval and discarded (Diffrax's root find, when it runs for other
    batch elements, differentiates an interpolant over `[t0, t1]`, 0/0 if empty)."""
    model = net.neuron_model
    dt = jnp.asarray(net.solver_stepsize, net.dtype)
    empty = t1 <= t0
    adjoint = net.adjoint or dfx.RecursiveCheckpointAdjoint(checkpoints=net.segment_max_steps)
    sol = dfx.diffeqsolve(
        dfx.ODETerm(model.dynamics),
        unrolled(net.solver),
        t0,
        jnp.where(empty, t0 + dt, t1),
        dt,
        y,
        saveat=dfx.SaveAt(t1=True),
        stepsize_controller=net.stepsize_controller,
        event=dfx.Event(_event_fn(model), bracketed(net.root_finder), direction=True),
        max_steps=net.segment_max_steps,
        throw=False,
        adjoint=adjoint,
    )
    ok = (
        (sol.result == dfx.RESULTS.successful)
        | (sol.result == dfx.RESULTS.event_occurred)
        | (sol.result == dfx.RESULTS.max_steps_reached)
    )
    crossed = (sol.result == dfx.RESULTS.event_occurred) & ~empty
    y_end = jax.tree_util.tree_map(lambda a, b: jnp.where(empty, b, a[-1]), sol.ys, y)
    return jnp.where(empty, t0, sol.ts[-1]), y_end, crossed, ~ok & ~empty


# ---------------------------------------------------------------------- root finding


def bracketed(root_finder):
    """The root finder used to locate a crossing inside a step.

    A plain `optx.Newton` (the default, or one a user passed for its tolerances) is
    replaced by `BracketedNewton` with the same `rtol`/`atol`: the function is
    `max_k spike_condition_k` on the step's interpolant, which has a kink wherever
    the largest condition changes hands, and on a long step (constant steps of
    0.5-1.0, or an adaptive controller's) clipped Newton iterates between the two
    branches forever (from the step end onto a slowly rising neuron's branch, whose
    Newton step leaves the step and is clipped back to the end: a 2-cycle until
    `max_steps`). Any other root finder is used as given.
    """
    if type(root_finder) is optx.Newton:
        return BracketedNewton(rtol=root_finder.rtol, atol=root_finder.atol)
    return root_finder


class _BracketState(eqx.Module):
    lower: jax.Array
    upper: jax.Array
    flip: jax.Array
    dx: jax.Array
    dx_old: jax.Array
    done: jax.Array


class BracketedNewton(optx.AbstractRootFinder):
    """Newton's method safeguarded by bisection on a sign-change bracket (scalar).

    Needs `options={"lower": a, "upper": b}` with a sign change of `fn` on `[a, b]`.
    Every evaluation shrinks the bracket to the sub-interval that keeps the sign
    change; a Newton step that would leave it, or that does not at least halve the
    step before last, is replaced by bisection ("rtsafe", Numerical Recipes 9.4).
    So it always converges to a root in `[a, b]`, quadratically near a simple one.
    Stops after a Newton step, or at a bracket, below `atol + rtol * |y|` (a
    tolerance in `y` only: the scale of `fn` does not matter), or at an exact zero.
    Differentiated like every Optimistix root finder, by the implicit function
    theorem at the root.
    """

    rtol: float
    atol: float
    norm: ClassVar[Callable] = jnp.abs

    def init(self, fn, y, args, options, f_struct, aux_struct, tags):
        dtype = f_struct.dtype
        lower = jnp.asarray(options["lower"], dtype)
        upper = jnp.asarray(options["upper"], dtype)
        f_lower, _ = fn(lower, args)
        width = jnp.abs(upper - lower)
        return _BracketState(
            lower=lower, upper=upper, flip=f_lower > 0, dx=width, dx_old=width,
            done=jnp.asarray(False),
        )

    def step(self, fn, y, args, options, state: _BracketState, tags):
        del options
        f, df, aux = jax.jvp(lambda t: fn(t, args), (y,), (jnp.ones_like(y),), has_aux=True)
        # Orient so that g < 0 on the lower side of the root and g > 0 above it.
        g = jnp.where(state.flip, -f, f)
        dg = jnp.where(state.flip, -df, df)
        lower = jnp.where(g <= 0, y, state.lower)
        upper = jnp.where(g > 0, y, state.upper)
        newton_dx = g / dg
        newton = y - newton_dx
        # A Newton step inside the bracket is taken if it at least halves the step
        # before last (else the iteration is not converging fast: bisect), or if it
        # is already below the tolerance (converged; float noise in `g` near the
        # root would otherwise trigger bisection there). Only a finite non-zero
        # derivative makes a Newton step: an infinite one would give a zero step,
        # "converged" at a point that is no root (seen with float32 under
        # `XLA_FLAGS=--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false`,
        # where the derivative of `max_k spike_condition_k` came out as inf).
        tol = self.atol + self.rtol * jnp.abs(y)
        small = jnp.abs(newton_dx) < tol
        use_newton = (
            jnp.isfinite(dg) & (dg != 0) & jnp.isfinite(newton) & (newton >= lower) & (newton <= upper)
            & ((jnp.abs(2 * newton_dx) <= state.dx_old) | small)
        )
        mid = lower + 0.5 * (upper - lower)
        new_y = jnp.where(use_newton, newton, mid)
        new_y = jnp.where(g == 0, y, new_y)  # an exact root
        new_state = _BracketState(
            lower=lower, upper=upper, flip=state.flip,
            dx=jnp.abs(new_y - y), dx_old=state.dx,
            done=(g == 0) | (use_newton & small) | (upper - lower < tol),
        )
        return new_y, new_state, aux

    def terminate(self, fn, y, args, options, state: _BracketState, tags):
        del fn, y, args, options, tags
        return state.done, optx.RESULTS.successful

    def postprocess(self, fn, y, aux, args, options, state, tags, result):
        return y, aux, {}
