"""What a simulation is asked to record, what an engine returns, and what `run` returns.

These types depend on nothing else in the package: the losses, the training
code and every engine share them without importing a network or an engine.

- `Recorders` (static request) → an engine's `run` → `Outcome` (per trial);
- a network's `run` turns the `Outcome` into a `Simulation` (outputs only),
  with every spike as a `SpikeRecord` when asked for.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
from jaxtyping import Array, Float, Int


class SpikeRecord(NamedTuple):
    """All spikes of a trial in time order; unused slots hold `inf` / `-1`."""

    times: Float[Array, " max_spikes"]
    neurons: Int[Array, " max_spikes"]
    n_spikes: Int[Array, ""]


class Simulation(NamedTuple):
    """What one `run` of a network recorded.

    `first_spikes`: first spike time of each output neuron (`inf`: none);
    `states`: observed output states at the requested times, `(n_out, n_times, channels)`
    (`None` if no times were asked for); `spikes`: every spike in time order (`None`
    unless `max_spikes` was given); `t_stop`: when the simulation ended (the last
    output's first spike under `stop_at_first_output`, else the end of the trial);
    `trains`: each output's first `train_length` spike times, `inf`-padded (`None`
    unless `train_length` was given).
    """

    first_spikes: Float[Array, " n_out"]
    states: Float[Array, "n_out n_times channels"] | None
    spikes: SpikeRecord | None
    t_stop: Float[Array, ""]
    trains: Float[Array, "n_out train_length"] | None = None


class Recorders(eqx.Module):
    """What a trial must record (all static but the observation times).

    `stop_at_first_output`: the trial may end once every output has spiked and
    every observation is made; `obs_times`: observe the outputs at these times;
    `train_length`: keep each output's first spike times; `log_length`: log
    every spike of every neuron (an error if more occur).
    """

    stop_at_first_output: bool = eqx.field(static=True, default=False)
    obs_times: Array | None = None
    train_length: int = eqx.field(static=True, default=0)
    log_length: int = eqx.field(static=True, default=0)


class Outcome(NamedTuple):
    """One trial as an engine returns it (all neurons; the network selects its outputs)."""

    t: Float[Array, ""]
    first_spike: Float[Array, " neurons"]
    observations: Float[Array, "n_times n_out channels"]
    trains: Float[Array, "n_out train"]
    log_times: Float[Array, " log"]
    log_neurons: Int[Array, " log"]
    log_count: Int[Array, ""]
