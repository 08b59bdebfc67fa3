"""Per-step objectives: the loss a learning rule can see while the trial runs."""

from __future__ import annotations

import abc
from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from ..losses.base import cross_entropy


class Grid(NamedTuple):
    """The time grid `t_k = t0 + k dt`, `k = 1 .. n_steps` (static numbers)."""

    t0: float
    dt: float
    n_steps: int

    @property
    def times(self) -> np.ndarray:
        return self.t0 + self.dt * np.arange(1, self.n_steps + 1)


class StepLoss(eqx.Module):
    """Abstract loss that is a sum over the time grid, `L = sum_k l(o_k, t_k, label)`.

    `o_k = observe(y_k^-)[outputs]`, `(n_out, channels)`, is what the output
    neurons show at grid time `t_k` (before a reset). A loss of this form is
    what online rules need: its gradient is a sum of per-step terms. Subclasses
    implement `logits(o)` (class scores at one step) and `weight(t)` (how much
    step `t` counts); then `l(o, t, label) = weight(t) * cross_entropy(logits(o), label)`
    and the prediction is `argmax_c sum_k weight(t_k) logits(o_k)[c]`.
    """

    @abc.abstractmethod
    def logits(self, o: Float[Array, "n_out channels"]) -> Float[Array, " n_out"]:
        """Class scores of one step's observation."""

    @abc.abstractmethod
    def weight(self, t: Float[Array, ""], grid: Grid) -> Float[Array, ""]:
        """Weight of grid time `t` on `grid`."""

    def __call__(
        self, o: Float[Array, "n_out channels"], t: Float[Array, ""], grid: Grid, label: Int[ArrayLike, ""]
    ) -> Float[Array, ""]:
        return self.weight(t, grid) * cross_entropy(self.logits(o), label)


class ReadoutCrossEntropy(StepLoss):
    """Cross-entropy at every step of the window `[t_start, t_end]`, averaged:

        L = (1/K_w) sum_{t_k in window} CE(scale * o_k[:, channel], label)

    with `K_w` the number of grid points in the window (`None`: the grid's ends).
    On leaky-integrator outputs (`channel = 0`, the membrane) this is the
    per-step readout loss of the e-prop and RFLO papers.
    """

    channel: int = eqx.field(static=True, default=0)
    t_start: float | None = eqx.field(static=True, default=None)
    t_end: float | None = eqx.field(static=True, default=None)
    scale: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        if self.channel < 0:
            raise ValueError(f"`channel` must be >= 0; got {self.channel}.")
        if not self.scale > 0:
            raise ValueError(f"`scale` must be positive; got {self.scale}.")
        if self.t_start is not None and self.t_end is not None and not self.t_end >= self.t_start:
            raise ValueError(f"`t_end` ({self.t_end}) must be >= `t_start` ({self.t_start}).")

    def logits(self, o):
        return self.scale * o[:, self.channel]

    def weight(self, t, grid):
        count = max(int(np.sum(self._inside(grid.times))), 1)  # static: no per-step work over the grid
        return self._inside(t).astype(jnp.result_type(t)) / count

    def _inside(self, t):
        # grid times carry float rounding (k * dt); a window end on the grid counts as inside
        lo = -np.inf if self.t_start is None else self.t_start - 1e-6 * max(1.0, abs(self.t_start))
        hi = np.inf if self.t_end is None else self.t_end + 1e-6 * max(1.0, abs(self.t_end))
        return (t >= lo) & (t <= hi)
