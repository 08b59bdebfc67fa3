"""The forward functions of every network, written once on top of its `run`."""

from __future__ import annotations

import abc
import types
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._checks import VALUE_CHECKS, check_int, check_values
from .simulation import Simulation, SpikeRecord


class SimulationError(RuntimeError):
    """A simulation could not finish as asked (a budget such as `max_event_steps` ran
    out, more spikes than `max_spikes`, ...): raised with the check's message alone
    when a forward function is called from outside `jit` (a bad input value, such as a
    NaN spike time, is a `ValueError` there). Inside `jit` the same message comes in
    Equinox's runtime error."""


def check_message(error: Exception) -> str | None:
    """The message of the `eqx.error_if` check behind `error`, if it is one."""
    text = str(error)
    marker = "EquinoxRuntimeError: "
    if marker not in text:
        return None
    return text.split(marker, 1)[1].split("\n\n---", 1)[0].strip()


class BoundForward(eqx.Module):
    """`network.method` for a forward function: callable, a pytree (the network is its
    child, as with Equinox's own bound methods) and hashable by the network's identity,
    so that `jax.jit(net.ttfs)` works as it does for a plain Python object's method
    (the network's arrays then enter the program as constants).

    A call runs the function compiled (`eqx.filter_jit`: once per network structure and
    static arguments), so that an eager `net.ttfs(x)` is one program, not thousands of
    dispatched operations; inside a user's `jit`, `grad` or `vmap` it is inlined."""

    func: Callable = eqx.field(static=True)
    network: eqx.Module
    compiled: Callable = eqx.field(static=True)

    def __call__(self, *args, **kwargs) -> Any:
        try:
            return self.compiled(self.network, *args, **kwargs)
        except RuntimeError as e:  # (called from outside `jit`: a check inside failed)
            message = check_message(e)
            if message is None:
                raise
            raise (ValueError if message in VALUE_CHECKS else SimulationError)(message) from None

    def __hash__(self) -> int:
        return hash((self.func, id(self.network)))

    def __eq__(self, other) -> bool:
        return type(other) is BoundForward and other.func is self.func and other.network is self.network

    @property
    def __wrapped__(self):  # (for `inspect.signature`: the method without `self`)
        return types.MethodType(self.func, self.network)

    @property
    def __name__(self) -> str:
        return self.func.__name__


class forward:
    """Decorator of a network's forward function: `net.f` is a `BoundForward`."""

    def __init__(self, func: Callable):
        self.func, self.compiled = func, eqx.filter_jit(func)
        self.__doc__, self.__name__, self.__wrapped__ = func.__doc__, func.__name__, func

    def __get__(self, network, owner=None):
        return self.func if network is None else BoundForward(self.func, network, self.compiled)


class AbstractNetwork(eqx.Module):
    """A spiking network that simulates one trial per call of `run`.

    Contract: `run(in_spike_times, *, obs_times, max_spikes, stop_at_first_output,
    until, train_length) -> Simulation` simulates one trial of input spikes
    `(in_size, K)` (`inf`: no spike) from `t0` and records what is asked:

    - `obs_times`: the output states there (`Simulation.states`);
    - `max_spikes > 0`: every spike (`Simulation.spikes`; an error if more occur);
    - `train_length > 0`: each output's first spike times (`Simulation.trains`);
    - the trial ends at `until`, else at the last of `obs_times`, else at
      `max_solver_time`; with `stop_at_first_output` it may end once every output
      has spiked and every observation is made.

    The attributes below describe the network; `ttfs`, `state_at_t`,
    `spikes_until_t` and `record` are defined here from `run`.
    """

    n_neurons: eqx.AbstractVar[int]
    in_size: eqx.AbstractVar[int]
    output_indices: eqx.AbstractVar[tuple[int, ...]]
    t0: eqx.AbstractVar[float]
    max_solver_time: eqx.AbstractVar[float]
    max_event_steps: eqx.AbstractVar[int]
    output_no_spike_value: eqx.AbstractVar[float]
    dtype: eqx.AbstractVar[object]

    @abc.abstractmethod
    def run(
        self,
        in_spike_times: Float[Array, "in_size K"],
        *,
        obs_times: Float[Array, " n_times"] | None = None,
        max_spikes: int = 0,
        stop_at_first_output: bool = False,
        until: float | None = None,
        train_length: int = 0,
    ) -> Simulation:
        """One trial, recording what is asked (see the class docstring)."""

    @property
    def n_outputs(self) -> int:
        return len(self.output_indices)

    @forward
    def ttfs(self, in_spike_times: Float[Array, "in_size K"]) -> Float[Array, " n_out"]:
        """First spike time of each output neuron (`output_no_spike_value` if none)."""
        first = self.run(in_spike_times, stop_at_first_output=True).first_spikes
        return jnp.where(jnp.isinf(first), self.output_no_spike_value, first)

    @forward
    def state_at_t(
        self, in_spike_times: Float[Array, "in_size K"], comp_times: Float[Array, " n_times"]
    ) -> Float[Array, "n_out n_times channels"]:
        """Observed state of the output neurons at `comp_times` (left limits at events)."""
        return self.run(in_spike_times, obs_times=self._times("comp_times", comp_times)).states

    @forward
    def spikes_until_t(
        self, in_spike_times: Float[Array, "in_size K"], final_time: float, max_spikes: int = 100
    ) -> Float[Array, "n_out max_spikes"]:
        """The first `max_spikes` spike times of each output neuron up to `final_time`."""
        check_int("max_spikes", max_spikes, 1)
        final_time = self._times("final_time", final_time).reshape(())
        trains = self.run(in_spike_times, until=final_time, train_length=max_spikes).trains
        return jnp.where(jnp.isinf(trains), self.output_no_spike_value, trains)

    @forward
    def record(self, in_spike_times: Float[Array, "in_size K"], max_spikes: int | None = None) -> SpikeRecord:
        """Every spike of every neuron until `max_solver_time`, in time order (an
        error if more than `max_spikes`, default `max_event_steps`)."""
        max_spikes = self.max_event_steps if max_spikes is None else max_spikes
        check_int("max_spikes", max_spikes, 1)
        return self.run(in_spike_times, max_spikes=max_spikes).spikes

    # ------------------------------------------------------------------ validation

    def _inputs(self, in_spike_times) -> Array:
        x = jnp.asarray(in_spike_times)
        if x.ndim != 2 or x.shape[0] != self.in_size:
            raise ValueError(
                f"`in_spike_times` must have shape (in_size={self.in_size}, K); got {x.shape}."
                " Use `jax.vmap` for a batch."
            )
        if not jnp.issubdtype(x.dtype, jnp.floating) and not jnp.issubdtype(x.dtype, jnp.integer):
            raise ValueError(f"`in_spike_times` must be real-valued; got dtype {x.dtype}.")
        x = x.astype(self.dtype)
        bad = jnp.isnan(x) | (x < self.t0)
        msg = f"`in_spike_times` must not contain NaN or times before t0={self.t0} (use inf for 'no spike')."
        return check_values(x, bad, msg)

    def _times(self, name, times) -> Array:
        t = jnp.atleast_1d(jnp.asarray(times, self.dtype))
        if t.ndim != 1 or t.shape[0] == 0:
            raise ValueError(f"`{name}` must be a scalar or a non-empty 1-D array; got shape {t.shape}.")
        bad = ~jnp.isfinite(t) | (t < self.t0) | (t > self.max_solver_time)
        msg = f"`{name}` must be finite and within [t0, max_solver_time] = [{self.t0}, {self.max_solver_time}]."
        return check_values(t, bad, msg)
