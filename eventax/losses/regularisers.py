"""Spike-count regularisation: keep neurons' activity within bounds."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ..simulation import Simulation, SpikeRecord

if TYPE_CHECKING:
    from ..evnn import EvNN

_SCOPES = ("neuron", "population")


def spike_counts(spikes: SpikeRecord, n_neurons: int) -> Int[Array, " n_neurons"]:
    """Exact number of logged spikes of each neuron (no gradient; for metrics).

    A slot counts if it is among the first `n_spikes`, names a neuron (>= 0) and
    has a finite time, so setting times to `inf` drops spikes from the count.
    """
    n_slots = spikes.neurons.shape[0]
    valid = (jnp.arange(n_slots) < spikes.n_spikes) & (spikes.neurons >= 0) & jnp.isfinite(spikes.times)
    idx = jnp.where(valid, spikes.neurons, n_neurons)  # out of range: dropped
    return jnp.zeros((n_neurons,), jnp.int32).at[idx].add(1, mode="drop")


class ActivityRegulariser(eqx.Module):
    r"""Penalty on spike counts outside `[lower, upper]`.

        R = strength * mean_j( relu(c_j - upper)^2 + relu(lower - c_j)^2 )

    `scope="neuron"`: `c_j` is the count of each selected neuron and the mean runs
    over them; `scope="population"`: a single `c`, the mean count of the selected
    neurons. `neurons`: `"hidden"` (all but the network's outputs), `"all"`, or a
    sequence of neuron indices. `"hidden"` and `"all"` need the network's sizes:
    pass `net=` here, or build the regulariser first (e.g. from a config) and
    call `bind(net)` before use (only the indices are kept, not the network).

    Exact event gradients see a spike count as piecewise constant, so counts are
    soft: spike `k` (time `t_k`) of a trial that stopped at `T = sim.t_stop` adds

        sigmoid((T - t_k) / edge)

    (1 well inside the window, 1/2 at its end). The gradient therefore moves spike
    times that lie within a few `edge` of the window's end: later (out of the
    window) when a count is above `upper`, earlier (into it) when below `lower`.
    Spikes far inside the window feel almost no pressure, and a silent neuron,
    or one whose missing spikes would come after `T`, gets no gradient at all
    from the lower bound: there is no spike time to move. `T` itself is not
    differentiated. Needs the spike log: simulate with `max_spikes > 0`.
    All fields are static hyperparameters.
    """

    strength: float = eqx.field(static=True)
    lower: float = eqx.field(static=True)
    upper: float = eqx.field(static=True)
    scope: str = eqx.field(static=True)
    neurons: str | tuple[int, ...] = eqx.field(static=True)
    indices: tuple[int, ...] | None = eqx.field(static=True)
    edge: float = eqx.field(static=True)

    def __init__(
        self,
        strength: float,
        *,
        lower: float = 0.0,
        upper: float = math.inf,
        scope: str = "neuron",
        neurons="hidden",
        net: EvNN | None = None,
        edge: float = 0.5,
    ):
        if not strength >= 0:
            raise ValueError(f"`strength` must be >= 0; got {strength}.")
        if not (0 <= lower <= upper):
            raise ValueError(f"Need 0 <= `lower` <= `upper`; got lower={lower}, upper={upper}.")
        if scope not in _SCOPES:
            raise ValueError(f"`scope` must be one of {_SCOPES}; got {scope!r}.")
        if not edge > 0:
            raise ValueError(f"`edge` must be positive (a time); got {edge}.")
        self.strength, self.lower, self.upper = float(strength), float(lower), float(upper)
        self.scope, self.edge = scope, float(edge)
        if isinstance(neurons, str):
            if neurons not in ("hidden", "all"):
                raise ValueError(f"`neurons` must be 'hidden', 'all' or indices; got {neurons!r}.")
            self.neurons = neurons
            self.indices = None if net is None else _named(neurons, net)
        else:
            self.neurons = self.indices = _indices(neurons, net)

    def bind(self, net: EvNN) -> ActivityRegulariser:
        """This regulariser with `neurons` resolved for `net` (`"hidden"`, `"all"`)."""
        return ActivityRegulariser(
            self.strength, lower=self.lower, upper=self.upper, scope=self.scope,
            neurons=self.neurons, net=net, edge=self.edge,
        )

    def soft_counts(self, sim: Simulation) -> Float[Array, " selected"]:
        """Differentiable spike counts of the selected neurons (see class docstring)."""
        if self.indices is None:
            raise ValueError(
                f"ActivityRegulariser(neurons={self.neurons!r}) does not know the network: "
                "construct it with `net=` or call `.bind(net)` first."
            )
        record = _spikes(sim)
        n_slots = record.times.shape[0]
        t_stop = jax.lax.stop_gradient(sim.t_stop)
        valid = (jnp.arange(n_slots) < record.n_spikes) & (record.neurons >= 0)
        t = jnp.where(valid, record.times, t_stop)  # no inf enters the sigmoid
        weight = jnp.where(valid, jax.nn.sigmoid((t_stop - t) / self.edge), 0.0)
        mine = record.neurons[:, None] == jnp.asarray(self.indices, record.neurons.dtype)[None, :]
        return weight @ mine.astype(weight.dtype)

    def __call__(self, sim: Simulation) -> Float[Array, ""]:
        c = self.soft_counts(sim)
        if self.scope == "population":
            c = jnp.mean(c, keepdims=True)
        excess = jnp.zeros_like(c)
        if math.isfinite(self.upper):
            excess = excess + jax.nn.relu(c - self.upper) ** 2
        if self.lower > 0:
            excess = excess + jax.nn.relu(self.lower - c) ** 2
        return self.strength * jnp.mean(excess)


def _spikes(sim: Simulation) -> SpikeRecord:
    if sim.spikes is None:
        raise ValueError(
            "ActivityRegulariser needs the spike log: simulate with `max_spikes` > 0 "
            "(e.g. `loss.simulate(net, x, max_spikes=...)`)."
        )
    return sim.spikes


def _named(neurons: str, net) -> tuple[int, ...]:
    outputs = set(net.output_indices) if neurons == "hidden" else set()
    idx = tuple(i for i in range(net.n_neurons) if i not in outputs)
    if not idx:
        raise ValueError(f"`neurons={neurons!r}` selects no neuron of this network.")
    return idx


def _indices(neurons, net) -> tuple[int, ...]:
    idx = tuple(int(i) for i in np.atleast_1d(np.asarray(neurons)))
    if not idx or min(idx) < 0 or (net is not None and max(idx) >= net.n_neurons):
        bound = "" if net is None else f" < n_neurons={net.n_neurons}"
        raise ValueError(f"`neurons` must be non-empty indices >= 0{bound}; got {neurons!r}.")
    return idx
