"""The event loop shared by every forward function of `EvNN`.

One loop iteration:
1. integrate from `t` to the next scheduled time (earliest pending spike
   arrival, next observation time, or the end of the trial), stopping early at
   the first upward zero crossing of any neuron's spike condition, or after
   `segment_max_steps` solver steps (the next iteration continues from there);
2. if a neuron crossed: reset it and queue its spike;
3. deliver the earliest pending arrival if it is due now (a zero-delay spike of
   step 2 is delivered in the same iteration);
4. neurons that an input lifted to `spike_condition >= 0` spike now.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PyTree

from ._engine import AbstractEngine
from ._loop import saved_while_loop
from ._segment import segment
from .buffer import SpikeBuffer
from .simulation import Outcome, Recorders

if TYPE_CHECKING:
    from .evnn import EvNN


# Iterations of the outer event loop saved one by one for reverse-mode AD; later ones
# are recomputed from checkpoints (`saved_while_loop`).
_DEFAULT_SAVED = 64


class LoopCarry(eqx.Module):
    """Loop carry: the simulation state plus what has been recorded so far."""

    t: Float[Array, ""]
    y: PyTree[Array]
    buffer: SpikeBuffer
    n_events: Int[Array, ""]
    overflow: Bool[Array, ""]
    failed: Bool[Array, ""]
    first_spike: Float[Array, " neurons"]
    observations: Float[Array, "n_times n_out channels"]
    obs_done: Bool[Array, " n_times"]
    trains: Float[Array, "n_out train"]
    train_count: Int[Array, " n_out"]
    log_times: Float[Array, " log"]
    log_neurons: Int[Array, " log"]
    log_count: Int[Array, ""]


class EventLoop(AbstractEngine):
    """The general engine: one loop over the events of the whole network (any
    connectivity, delays, any Diffrax solver, controller and adjoint)."""

    def can_run(self, net: EvNN) -> bool:
        return True

    def run(self, net: EvNN, in_spike_times, recorders: Recorders, t_end=None) -> Outcome:
        c = simulate(net, in_spike_times, recorders, t_end)
        return Outcome(c.t, c.first_spike, c.observations, c.trains, c.log_times, c.log_neurons, c.log_count)


def simulate(net: EvNN, in_spike_times, recorders: Recorders, t_end=None) -> LoopCarry:
    """Run one trial; raise (inside jit: at run time) if it could not finish."""
    dtype = net.dtype
    t_end = jnp.asarray(net.max_solver_time if t_end is None else t_end, dtype)
    carry = _init_carry(net, in_spike_times, recorders)
    outs = jnp.asarray(net.output_indices)

    def running(c: LoopCarry):
        go = (c.t < t_end) & (c.n_events < net.max_event_steps) & ~c.overflow & ~c.failed
        return go & ~_stopped_early(c, recorders, outs)

    def body(c: LoopCarry) -> LoopCarry:
        return _iteration(net, c, recorders, t_end, outs)

    bound = _max_iterations(net, recorders)
    carry = saved_while_loop(
        running, body, carry, max_steps=bound, saved=net.checkpoints or min(bound, _DEFAULT_SAVED)
    )
    return _raise_if_unfinished(net, carry, t_end, recorders, outs)


def _iteration(net: EvNN, c: LoopCarry, recorders: Recorders, t_end, outs) -> LoopCarry:
    model = net.neuron_model
    n = net.n_neurons
    _, t_arrival = c.buffer.next()
    t_obs = jnp.min(jnp.where(c.obs_done, jnp.inf, _obs_times(recorders, net.dtype)), initial=jnp.inf)
    # (an observation tied with an arrival takes the derivative: it is made first, and
    # the arrival keeps its own through `late` below; a tied `minimum` would split it)
    t_stop = jnp.minimum(t_arrival, t_end)
    t_stop = jnp.maximum(jnp.where(t_obs <= t_stop, t_obs, t_stop), c.t)
    t, y, event, failed = segment(net, c.y, c.t, t_stop)

    # (the left limit: a crossing at an observation time is observed before its reset)
    obs_hit = (_obs_times(recorders, net.dtype) <= t) & ~c.obs_done
    observed = model.observe(y)[outs]
    observations = jnp.where(obs_hit[:, None, None], observed[None], c.observations)

    # A neuron crossed its threshold: the one with the largest condition. Each
    # spike happens at its own time `t + shift` (equal to `t` in value): its own
    # crossing, or the arrival that lifted it, so that tied events (simultaneous
    # arrivals, tied delays, simultaneous crossings) each keep their own derivative.
    cond = model.spike_condition(t, y)
    crossed = event & (jnp.arange(n) == jnp.argmax(cond))
    own = _own_crossing(model, t, y, crossed)
    y = _at_shifted_times(model, t, y, own, lambda y: model.reset_spiked(y, crossed))
    buffer, overflow1 = c.buffer.push(crossed, _delayed(net, t + own, jnp.arange(n, dtype=jnp.int32)))

    # Deliver the earliest pending arrival if it is due.
    row, t_arrival = buffer.next()
    due = t_arrival <= t
    arriving = jnp.broadcast_to(buffer.times[row], (n,))
    buffer, hit = buffer.pop(row, t_arrival, due)
    source = buffer.source[row]
    valid = jnp.broadcast_to(hit, (n,)) & jnp.asarray(net.wmask.value)[source]
    late = jnp.where(valid, arriving - t, 0.0)
    y = _at_shifted_times(model, t, y, late, lambda y: model.input_spike(y, source, jnp.arange(n), valid))

    # Neurons that the delivery lifted above threshold spike at once; the others
    # at or above it got there by the flow, tied with this iteration's crossing.
    lifted = model.spike_condition(t, y) >= 0
    tied = _own_crossing(model, t, y, lifted & ~valid)
    shift = jnp.where(valid, late, tied)
    y = _at_shifted_times(model, t, y, shift, lambda y: model.reset_spiked(y, lifted))
    buffer, overflow2 = buffer.push(lifted, _delayed(net, t + shift, jnp.arange(n, dtype=jnp.int32)))

    spiked = crossed | lifted
    return _record(
        c,
        recorders,
        outs,
        t=t,
        t_spike=t + jnp.where(crossed, own, shift),
        y=y,
        buffer=buffer,
        spiked=spiked,
        n_events=c.n_events + (event | due | jnp.any(lifted)).astype(jnp.int32),
        overflow=c.overflow | overflow1 | overflow2,
        failed=c.failed | failed,
        observations=observations,
        obs_done=c.obs_done | obs_hit,
    )


def _own_crossing(model, t, y, which):
    """Per neuron, `shift` (zero in value) such that `t + shift` has the derivative
    of the neuron's own threshold crossing, `-(d condition) / (d condition / dt)`
    (implicit function theorem), where `which`; zero elsewhere. `y` is the state at
    `t`, with its derivative along the trajectory."""
    f = model.dynamics(t, y, None)
    cond, slope = jax.jvp(lambda tt, yy: model.spike_condition(tt, yy), (t, y), (jnp.ones_like(t), f))
    slope = jax.lax.stop_gradient(jnp.where(which & (slope > 0), slope, 1.0))
    return jnp.where(which, -(cond - jax.lax.stop_gradient(cond)) / slope, 0.0)


def _at_shifted_times(model, t, y, shift, jump):
    """The state at `t` after `jump` happened at the times `t + shift` (per neuron;
    `shift` is zero in value), to first order in `shift`:
    `jump(y + f(y) shift) - f(jump(...)) shift` (the flow before and after the jump)."""
    def moved(y, sign):  # (in the per-neuron view of the state)
        f = model.state_matrix(model.dynamics(t, y, None))
        return model.with_state_matrix(y, model.state_matrix(y) + sign * f * shift[:, None].astype(f.dtype))

    return moved(jump(moved(y, 1.0)), -1.0)


def _delayed(net: EvNN, t, sources) -> Float[Array, "rows width"]:
    """`t + axonal delay (+ synaptic delay to each target, inf where unconnected)`."""
    t = t[:, None]
    if net.axonal_delays is not None:
        t = t + _nonnegative(net.axonal_delays[sources])[:, None]
    if net.delays is not None:
        connected = jnp.asarray(net.wmask.value)[sources]
        t = jnp.where(connected, t + _nonnegative(net.delays[sources]), jnp.inf)
    return t


def _nonnegative(d):
    """Delays below 0 act as 0; the gradient at exactly 0 is the right derivative (1)."""
    return jnp.where(d >= 0, d, 0.0)


def _init_carry(net: EvNN, in_spike_times, recorders: Recorders) -> LoopCarry:
    dtype, n = net.dtype, net.n_neurons
    in_size, k = in_spike_times.shape
    sources = jnp.repeat(jnp.arange(n, n + in_size, dtype=jnp.int32), k)
    arrivals = _delayed(net, in_spike_times.reshape(-1), sources)
    width = n if net.delays is not None else 1
    buffer = SpikeBuffer.create(in_size * k + net.buffer_capacity, width, arrivals, sources)
    y0 = net.neuron_model.init_state(n)
    n_out = len(net.output_indices)
    channels = net.neuron_model.observe(y0).shape[-1]
    n_obs = 0 if recorders.obs_times is None else recorders.obs_times.shape[0]
    return LoopCarry(
        t=jnp.asarray(net.t0, dtype),
        y=y0,
        buffer=buffer,
        n_events=jnp.asarray(0, jnp.int32),
        overflow=jnp.asarray(False),
        failed=jnp.asarray(False),
        first_spike=jnp.full((n,), jnp.inf, dtype),
        observations=jnp.zeros((n_obs, n_out, channels), dtype),
        obs_done=jnp.zeros((n_obs,), bool),
        trains=jnp.full((n_out, recorders.train_length), jnp.inf, dtype),
        train_count=jnp.zeros((n_out,), jnp.int32),
        log_times=jnp.full((recorders.log_length,), jnp.inf, dtype),
        log_neurons=jnp.full((recorders.log_length,), -1, jnp.int32),
        log_count=jnp.asarray(0, jnp.int32),
    )


def _record(c: LoopCarry, recorders: Recorders, outs, *, t, t_spike, spiked, **updates) -> LoopCarry:
    first_spike = jnp.where(spiked & jnp.isinf(c.first_spike), t_spike, c.first_spike)
    trains, train_count = c.trains, c.train_count
    if recorders.train_length:
        out_spiked = spiked[outs]
        slot = jnp.where(out_spiked, train_count, recorders.train_length)
        trains = trains.at[jnp.arange(len(outs)), slot].set(t_spike[outs], mode="drop")
        train_count = train_count + out_spiked.astype(jnp.int32)
    log_times, log_neurons, log_count = c.log_times, c.log_neurons, c.log_count
    if recorders.log_length:
        pos = jnp.where(spiked, log_count + jnp.cumsum(spiked) - 1, recorders.log_length)
        log_times = log_times.at[pos].set(t_spike, mode="drop")
        log_neurons = log_neurons.at[pos].set(jnp.arange(spiked.shape[0], dtype=jnp.int32), mode="drop")
        log_count = log_count + jnp.sum(spiked, dtype=jnp.int32)
    return LoopCarry(
        t=t,
        first_spike=first_spike,
        trains=trains,
        train_count=train_count,
        log_times=log_times,
        log_neurons=log_neurons,
        log_count=log_count,
        **updates,
    )


def _obs_times(recorders: Recorders, dtype):
    return jnp.zeros((0,), dtype) if recorders.obs_times is None else recorders.obs_times


def _stopped_early(c: LoopCarry, recorders: Recorders, outs):
    """Every requested recording is complete (all outputs spiked, all times observed)."""
    stops = []
    if recorders.stop_at_first_output:
        stops.append(jnp.all(jnp.isfinite(c.first_spike[outs])))
    if recorders.obs_times is not None:
        stops.append(jnp.all(c.obs_done))
    return jnp.all(jnp.stack(stops)) if stops else jnp.asarray(False)


def _max_iterations(net: EvNN, recorders: Recorders) -> int:
    """Static bound on loop iterations: events + observations + continuations."""
    n_obs = 0 if recorders.obs_times is None else recorders.obs_times.shape[0]
    stops = net.max_event_steps + n_obs
    steps = math.ceil((net.max_solver_time - net.t0) / net.solver_stepsize)
    continuations = math.ceil((steps + stops) / net.segment_max_steps) + 2
    if not isinstance(net.stepsize_controller, dfx.ConstantStepSize):
        continuations += stops
    return stops + continuations


def _raise_if_unfinished(net: EvNN, c: LoopCarry, t_end, recorders: Recorders, outs) -> LoopCarry:
    finished = (c.t >= t_end) | _stopped_early(c, recorders, outs)
    c = eqx.error_if(
        c, c.overflow,
        f"Spike buffer overflow: more than buffer_capacity={net.buffer_capacity} spikes "
        "were in flight at once. Increase `buffer_capacity`.",
    )
    c = eqx.error_if(
        c, c.failed,
        "The ODE solver or the spike-time root finder failed in a segment. Check the "
        "model's dynamics for blow-ups, or loosen the root finder's tolerances.",
    )
    c = eqx.error_if(
        c, ~finished & (c.n_events >= net.max_event_steps),
        f"Ran out of max_event_steps={net.max_event_steps} (spikes + deliveries) before "
        "the end of the trial. Increase `max_event_steps`.",
    )
    c = eqx.error_if(
        c, ~finished,
        "Ran out of solver segments before the end of the trial (adaptive step sizes "
        "smaller than `solver_stepsize`). Increase `segment_max_steps`.",
    )
    if recorders.log_length:
        c = eqx.error_if(
            c, c.log_count > recorders.log_length,
            f"More than max_spikes={recorders.log_length} spikes occurred; increase `max_spikes`.",
        )
    return c
