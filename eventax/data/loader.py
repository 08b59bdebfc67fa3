"""Minibatches on device, shuffled per epoch from a seed so that a resumed run sees the same batches."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int


class Batches:
    """Shuffled minibatches of `(x, y)`, kept on device.

    Epoch `e` visits the samples in the order
    `jax.random.permutation(jax.random.fold_in(jax.random.PRNGKey(seed), e), n)`, cut into
    consecutive batches of `batch_size`; with `drop_last` the incomplete last batch is
    skipped, otherwise it is yielded smaller. `x` and `y` are arrays (or pytrees of
    arrays) sharing the leading sample axis; they are moved to device once.
    """

    def __init__(self, x: Any, y: Any, batch_size: int, seed: int, drop_last: bool = True):
        self.x = jax.tree.map(jnp.asarray, x)
        self.y = jax.tree.map(jnp.asarray, y)
        lengths = {a.shape[0] if a.ndim else None for a in jax.tree.leaves((self.x, self.y))}
        if len(lengths) != 1 or None in lengths:
            raise ValueError(
                f"`x` and `y` must share one leading sample axis; got lengths {sorted(map(str, lengths))}."
            )
        (self.n_samples,) = lengths
        check_int("seed", seed, 0)
        is_int = isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, bool)
        if not (is_int and 1 <= batch_size <= self.n_samples):
            raise ValueError(
                f"`batch_size` must be an integer in 1..{self.n_samples} (the sample count); got {batch_size!r}."
            )
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)

    @property
    def n_batches(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.n_samples, self.batch_size)
        return full + (rest > 0 and not self.drop_last)

    def __len__(self) -> int:
        return self.n_batches

    def order(self, e: int) -> jax.Array:
        """The sample order of epoch `e`: a permutation of `0..n-1`."""
        check_int("e", e, 0)
        key = jax.random.fold_in(jax.random.PRNGKey(self.seed), e)
        return jax.random.permutation(key, self.n_samples)

    def epoch(self, e: int, start: int = 0) -> Iterator[tuple[Any, Any]]:
        """Yield the `(x_batch, y_batch)` of epoch `e`, from batch `start` on (to resume mid-epoch)."""
        check_int("start", start, 0)
        order = self.order(e)
        for i in range(start, self.n_batches):
            first = i * self.batch_size
            size = min(self.batch_size, self.n_samples - first)
            yield _batch((self.x, self.y), order, first, size)


@functools.partial(jax.jit, static_argnums=3)
def _batch(tree, order, first, size):
    """Rows `order[first:first + size]` of every leaf; one compile per batch size."""
    idx = jax.lax.dynamic_slice_in_dim(order, first, size)
    return jax.tree.map(lambda a: jnp.take(a, idx, axis=0), tree)
