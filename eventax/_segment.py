"""Integrating one inter-event segment and locating the first spike in it.

`segment(net, y, t0, t1)` integrates the neuron ODE from `t0` towards `t1`,
stopping at the first upward zero crossing of `max_k spike_condition_k`, or after
`net.segment_max_steps` solver steps. It returns `(t, y, crossed, failed)`.

Two implementations share that contract:

- constant step sizes with the default adjoint take a lean loop over the Diffrax
  solver's own `step`, then root-find the crossing on the solver's dense
  interpolant of the crossing step (`optimistix.root_find`, differentiated by
  the implicit function theorem). Per step it carries only what the next step
  and the final root find need, which makes it about twice as fast as a general
  `diffeqsolve` with an `Event` (measured in `experiments/benchmark.py`);
- anything else (adaptive controllers, a user-chosen adjoint) goes through
  `diffrax.diffeqsolve` with a `diffrax.Event`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import diffrax as dfx
import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import optimistix as optx

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
        y1, _, _, state, result = solver.step(terms, s.t, t_next, s.y, None, s.solver_state, False)
        return _Step(
            n=s.n + 1, t_prev=s.t, y_prev=s.y, t=t_next, y=y1, solver_state=state,
            crossed=_crossing(model, t_next, y1) > 0,
            failed=s.failed | (result != dfx.RESULTS.successful),
        )

    def running(s: _Step):
        return (s.n < net.segment_max_steps) & (s.t < t1) & ~s.crossed & ~s.failed

    init = _Step(
        n=jnp.asarray(0, jnp.int32), t_prev=t0, y_prev=y0, t=t0, y=y0,
        solver_state=solver.init(terms, t0, t0 + dt, y0, None),
        crossed=jnp.asarray(False), failed=jnp.asarray(False),
    )
    s = eqxi.while_loop(
        running, step, init, max_steps=net.segment_max_steps, kind="checkpointed",
        checkpoints=net.segment_max_steps,
    )
    t_root, y_root, root_failed = _locate(net, terms, s)
    t = jnp.where(s.crossed, t_root, s.t)
    y = jax.tree_util.tree_map(lambda a, b: jnp.where(s.crossed, a, b), y_root, s.y)
    return t, y, s.crossed, s.failed | (s.crossed & root_failed)


def _locate(net: EvNN, terms, s: _Step):
    """Root of the crossing on the dense interpolant of the last step `[t_prev, t]`."""
    model, solver = net.neuron_model, net.solver
    # Recompute the last step for its dense output (cheaper than carrying it).
    state = solver.init(terms, s.t_prev, s.t, s.y_prev, None)
    _, _, dense, _, _ = solver.step(terms, s.t_prev, s.t, s.y_prev, None, state, False)
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
        fn, net.root_finder, t_hi, args=args, options={"lower": s.t_prev, "upper": t_hi},
        throw=False,
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
        net.solver,
        t0,
        jnp.where(empty, t0 + dt, t1),
        dt,
        y,
        saveat=dfx.SaveAt(t1=True),
        stepsize_controller=net.stepsize_controller,
        event=dfx.Event(_event_fn(model), net.root_finder, direction=True),
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
