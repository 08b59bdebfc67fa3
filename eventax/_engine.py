"""The contract every simulator of an `EvNN` meets."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

import equinox as eqx
from jaxtyping import Array, Float

from .simulation import Outcome, Recorders

if TYPE_CHECKING:
    from .evnn import EvNN


class AbstractEngine(eqx.Module):
    """Simulates one trial of an `EvNN`.

    `run(net, in_spike_times, recorders, t_end)`: inputs `(in_size, K)` already
    validated (`inf`: no spike), the trial from `net.t0` to `t_end` (default
    `net.max_solver_time`; earlier under `recorders.stop_at_first_output`), recording
    what `recorders` asks. Returns the `Outcome` of every neuron; a trial that cannot
    finish within the network's budgets raises (inside `jit`: at run time, with
    the same message). Spike times and their gradients are exact up to the
    network's solver and root-finder tolerances.

    `can_run(net)`: whether this engine simulates `net` at all.
    """

    @abc.abstractmethod
    def can_run(self, net: EvNN) -> bool:
        """Whether `net` is within this engine's reach."""

    @abc.abstractmethod
    def run(
        self, net: EvNN, in_spike_times: Float[Array, "in_size K"], recorders: Recorders, t_end=None
    ) -> Outcome:
        """One trial (see the class docstring)."""
