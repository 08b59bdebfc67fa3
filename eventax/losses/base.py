"""The `Loss` contract: how a classification loss simulates one sample and scores it."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from .._checks import check_values
from ..simulation import Simulation

if TYPE_CHECKING:
    from ..evnn import EvNN


def cross_entropy(logits: Float[Array, " n_out"], label: Int[ArrayLike, ""]) -> Float[Array, ""]:
    """Softmax cross-entropy of one sample: `logsumexp(logits) - logits[label]`.

    A `label` outside `[0, n_out)` is an error (a `ValueError` outside `jit`),
    not a silently clamped index."""
    n = logits.shape[-1]
    label = jnp.asarray(label)
    msg = f"`label` must be a class index in [0, {n}), one per output neuron; got one outside it."
    label = check_values(label, (label < 0) | (label >= n), msg)
    return jax.nn.logsumexp(logits) - logits[label]


class Loss(eqx.Module):
    """Abstract per-sample classification loss on one simulation.

    A loss decides what a trial must record and turns the record into a score.
    Subclasses implement:

    - `simulate(net, x, max_spikes=0)`: run `net.run(x, ...)` asking for exactly
      what `logits` and `penalty` read; `max_spikes > 0` also logs every spike
      (for regularisers and metrics).
    - `logits(sim)`: `(n_out,)`, finite, higher = more likely the class.
    - `penalty(sim, label)` (optional, default 0): the loss's own terms beyond
      the cross-entropy.

    Then `loss(sim, label) = cross_entropy(logits(sim), label) + penalty(sim, label)`
    and `predict(sim) = argmax(logits(sim))` (ties go to the lowest index).
    Every method is per sample and safe under `jax.vmap`, `jax.jit` and `jax.grad`;
    a trainer typically writes

        sim = loss.simulate(net, x)
        value = loss(sim, label) + sum(r(sim) for r in regularisers)

    inside a function that it `vmap`s over the batch and differentiates with
    respect to `net`. Hyperparameters are static fields.
    """

    @abc.abstractmethod
    def simulate(
        self, net: EvNN, x: Float[Array, "in_size K"], max_spikes: int = 0
    ) -> Simulation:
        """Simulate one sample, recording what this loss needs."""

    @abc.abstractmethod
    def logits(self, sim: Simulation) -> Float[Array, " n_out"]:
        """Class scores of one simulated sample (finite; higher = more likely)."""

    def penalty(self, sim: Simulation, label: Int[ArrayLike, ""]) -> Float[Array, ""]:
        """Terms of this loss beyond the cross-entropy (default: none)."""
        return jnp.zeros((), jnp.result_type(sim.first_spikes.dtype, jnp.float32))

    def predict(self, sim: Simulation) -> Int[Array, ""]:
        """The predicted class: `argmax` of the logits (ties -> lowest index)."""
        logits = self.logits(sim)
        return jnp.argmax(jnp.where(jnp.isnan(logits), -jnp.inf, logits))

    def __call__(self, sim: Simulation, label: Int[ArrayLike, ""]) -> Float[Array, ""]:
        """Loss of one sample: cross-entropy of the logits plus `penalty`."""
        return cross_entropy(self.logits(sim), label) + self.penalty(sim, label)
