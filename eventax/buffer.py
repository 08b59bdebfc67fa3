"""The spike buffer: the queue of spikes that are on their way to their targets."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int


class SpikeBuffer(eqx.Module):
    """Pending spikes, one row each: its source and its arrival time(s).

    `times[r, j]` is when the spike in row `r` reaches postsynaptic neuron `j`
    (`inf`: delivered, or nothing there). Without per-synapse delays all
    targets share one arrival time and `times` has a single column, which
    broadcasts over targets. A row whose times are all `inf` is free.
    """

    times: Float[Array, "capacity width"]
    source: Int[Array, " capacity"]

    @classmethod
    def create(cls, capacity: int, width: int, times, source) -> SpikeBuffer:
        """A buffer of `capacity` rows whose first rows hold `times`/`source`."""
        n = times.shape[0]
        pad_t = jnp.full((capacity - n, width), jnp.inf, times.dtype)
        pad_s = jnp.zeros((capacity - n,), jnp.int32)
        times = jnp.broadcast_to(times.reshape(n, -1), (n, width))
        return cls(jnp.concatenate([times, pad_t]), jnp.concatenate([source.astype(jnp.int32), pad_s]))

    def next(self) -> tuple[Int[Array, ""], Float[Array, ""]]:
        """Row and time of the earliest pending arrival (`inf` when empty)."""
        row_min = jnp.min(self.times, axis=1)
        row = jnp.argmin(row_min)
        return row, row_min[row]

    def pop(self, row, t, deliver: Bool[Array, ""]) -> tuple[SpikeBuffer, Bool[Array, " width"]]:
        """Remove row `row`'s arrivals at time `t` (if `deliver`); return which targets get them."""
        hit = (self.times[row] == t) & deliver
        times = self.times.at[row].set(jnp.where(hit, jnp.inf, self.times[row]))
        return SpikeBuffer(times, self.source), hit

    def push(self, mask: Bool[Array, " n"], arrivals: Float[Array, "n width"]):
        """Add one row per masked sender; returns the buffer and an overflow flag.

        The k-th sender (in index order) takes the k-th free row; no sorting.
        """
        n = mask.shape[0]
        free = jnp.all(jnp.isinf(self.times), axis=1)
        free_rank = jnp.cumsum(free, dtype=jnp.int32) - 1
        sender_rank = jnp.cumsum(mask, dtype=jnp.int32) - 1
        n_senders = sender_rank[-1] + 1
        sender_by_rank = jnp.zeros((n,), jnp.int32).at[jnp.where(mask, sender_rank, n)].set(
            jnp.arange(n, dtype=jnp.int32), mode="drop"
        )
        take = free & (free_rank < n_senders)
        who = sender_by_rank[jnp.clip(free_rank, 0, n - 1)]
        times = jnp.where(take[:, None], arrivals[who], self.times)
        source = jnp.where(take, who, self.source)
        overflow = n_senders > free_rank[-1] + 1
        return SpikeBuffer(times, source), overflow
