"""Heterogeneous populations: several neuron models in one network."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .base import NeuronModel


class MultiNeuronModel(NeuronModel):
    """Neuron `j` behaves as `neuron_models[neuron_type_ids[j]]`.

    Each sub-model is built for its own neurons with the columns of `wmask` that
    belong to them; its presynaptic rows stay global (all neurons, then inputs),
    so a sub-model sees the same `from_idx` as the network. The state is a tuple
    of the sub-models' states; `observe` pads channels with zeros to the widest
    sub-model. Learnable arrays are those of the sub-models
    (`model.submodels[s].weights`, ...).
    """

    submodels: tuple[NeuronModel, ...]
    members: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    n_neurons: int = eqx.field(static=True)

    def __init__(
        self,
        key: PRNGKeyArray,
        n_neurons: int,
        in_size: int,
        wmask,
        *,
        neuron_models: Sequence[type[NeuronModel]],
        neuron_type_ids,
        neuron_model_kwargs: Sequence[Mapping[str, Any]] | None = None,
        dtype=jnp.float32,
    ):
        self.dtype = dtype
        kwargs = list(neuron_model_kwargs or [{} for _ in neuron_models])
        if len(kwargs) != len(neuron_models):
            raise ValueError(
                f"`neuron_model_kwargs` has {len(kwargs)} entries for {len(neuron_models)} models."
            )
        ids = np.asarray(neuron_type_ids)
        if ids.shape != (n_neurons,) or ids.min() < 0 or ids.max() >= len(neuron_models):
            raise ValueError(
                f"`neuron_type_ids` must have shape ({n_neurons},) with values in "
                f"[0, {len(neuron_models)}); got shape {ids.shape}."
            )
        wmask = np.asarray(wmask)
        members, subs = [], []
        for s, (cls, kw) in enumerate(zip(neuron_models, kwargs)):
            idx = np.flatnonzero(ids == s)
            if idx.size == 0:
                raise ValueError(f"`neuron_type_ids` assigns no neuron to neuron_models[{s}].")
            members.append(tuple(int(i) for i in idx))
            subs.append(
                cls(
                    key=jax.random.fold_in(key, s), n_neurons=len(idx),
                    in_size=wmask.shape[0] - len(idx), wmask=wmask[:, idx], dtype=dtype, **kw,
                )
            )
        self.submodels, self.members, self.n_neurons = tuple(subs), tuple(members), n_neurons

    def _scatter(self, parts, fill=0.0):
        out = None
        for idx, part in zip(self.members, parts):
            if out is None:
                out = jnp.full((self.n_neurons,) + part.shape[1:], fill, part.dtype)
            out = out.at[np.asarray(idx, int)].set(part)
        return out

    def init_state(self, n_neurons: int) -> tuple:
        return tuple(m.init_state(len(idx)) for m, idx in zip(self.submodels, self.members))

    def dynamics(self, t, y: tuple, args: Any) -> tuple:
        return tuple(m.dynamics(t, ys, args) for m, ys in zip(self.submodels, y))

    def spike_condition(self, t, y: tuple) -> Float[Array, " neurons"]:
        return self._scatter([m.spike_condition(t, ys) for m, ys in zip(self.submodels, y)])

    def input_spike(
        self, y: tuple, from_idx: Int[Array, ""], to_idx: Int[Array, " targets"],
        valid_mask: Bool[Array, " targets"],
    ) -> tuple:
        out = []
        for s, (m, ys, idx) in enumerate(zip(self.submodels, y, self.members)):
            local = np.full(self.n_neurons, len(idx), int)
            local[np.asarray(idx, int)] = np.arange(len(idx))
            local_to = jnp.asarray(local)[to_idx]
            mine = valid_mask & (local_to < len(idx))
            out.append(m.input_spike(ys, from_idx, jnp.minimum(local_to, len(idx) - 1), mine))
        return tuple(out)

    def input_spikes(self, y: tuple, counts: Float[Array, " pre"], wmask: Bool[Array, "pre neurons"]) -> tuple:
        """Each sub-model delivers to its own members (columns of `wmask`)."""
        return tuple(
            m.input_spikes(ys, counts, wmask[:, np.asarray(idx, int)])
            for m, ys, idx in zip(self.submodels, y, self.members)
        )

    def reset_spiked(self, y: tuple, spike_mask: Bool[Array, " neurons"]) -> tuple:
        return tuple(
            m.reset_spiked(ys, spike_mask[np.asarray(idx, int)])
            for m, ys, idx in zip(self.submodels, y, self.members)
        )

    def state_matrix(self, y: tuple) -> Float[Array, "neurons channels"]:
        """Each sub-model's rows at its members' indices, zero-padded to the widest."""
        parts = [m.state_matrix(ys) for m, ys in zip(self.submodels, y)]
        width = max(p.shape[1] for p in parts)
        return self._scatter([jnp.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in parts])

    def with_state_matrix(self, y: tuple, m: Float[Array, "neurons channels"]) -> tuple:
        out = []
        for sub, ys, idx in zip(self.submodels, y, self.members):
            width = sub.state_matrix(ys).shape[1]
            out.append(sub.with_state_matrix(ys, m[np.asarray(idx, int), :width]))
        return tuple(out)

    @property
    def network_defaults(self) -> dict[str, Any]:
        """The sub-models' network defaults where they all agree, else none."""
        return agreed_defaults(self.submodels)

    def subset(self, neurons, n_neurons: int, n_pre: int) -> NeuronModel | None:
        """The sub-model restricted to `neurons` if they are all of one kind, else `None`."""
        for sub, idx in zip(self.submodels, self.members):
            local = np.flatnonzero(np.isin(np.asarray(idx), neurons))
            if len(local) == len(neurons):
                return sub.subset(local, len(idx), n_pre)
        return None

    def observe(self, y: tuple) -> Float[Array, "neurons channels"]:
        obs = [m.observe(ys) for m, ys in zip(self.submodels, y)]
        width = max(o.shape[1] for o in obs)
        return self._scatter([jnp.pad(o, ((0, 0), (0, width - o.shape[1]))) for o in obs])


def agreed_defaults(models) -> dict[str, Any]:
    """`network_defaults` shared by every model (classes or instances); where they
    differ only in that some take adaptive steps with the same solver, those adaptive
    settings (they keep every model's spike times accurate); else `{}`. Models that
    agree on all but the engine get `engine="auto"`."""
    found = [dict(m.network_defaults) for m in models]
    if not found or not all(found):
        return {}
    if len({d.get("engine") for d in found}) > 1:
        found = [{**d, "engine": "auto"} for d in found]
    if all(d == found[0] for d in found):
        return found[0]
    adaptive = [d for d in found if "stepsize_controller" in d]
    same_solver = all(d.get("solver") == found[0].get("solver") for d in found)
    if adaptive and same_solver and all(d == adaptive[0] for d in adaptive):
        return adaptive[0]
    return {}
