"""At most one spike per neuron and trial, for any neuron model: `AMOS(model_cls)`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PyTree

from ._built import class_builder
from ._wrap import SILENT, base_view, check_state_layout, check_wrappable, select, wrapper_class
from .base import NeuronModel


@class_builder
def AMOS(model_cls: type[NeuronModel]) -> type[NeuronModel]:
    r"""`model_cls` whose neurons spike at most once per trial ("at most one spike").

    Returns a subclass of `model_cls` (cached: `AMOS(LIF) is AMOS(LIF)`) with the
    same constructor arguments and learnable arrays (`net.neuron_model.weights`).
    Until its first spike a neuron is exactly a `model_cls` neuron, so first
    spike times are those of the unwrapped model (given the same inputs). The
    spike resets it as `model_cls` does and then silences it for the rest of
    the trial: its state is held (`dynamics` is zero), input spikes are ignored
    and later threshold crossings cannot happen.

    State: `(inner, spiked)`, `inner` the wrapped model's state and `spiked`
    `(n_neurons,)` equal to 0 before and 1 after the neuron's spike
    (`d spiked/dt = 0`; the reset sets it).

        d inner/dt = [spiked = 0] f(inner),
        spike_condition = cond(inner)  if spiked = 0,  else -1e30.

    Holding the state, rather than letting it run past threshold without a
    reset, keeps models whose membrane diverges without a reset (QIF, EIF,
    Izhikevich) finite, and adaptive step controllers see no error from
    silenced neurons. The
    silenced condition is a constant far below any active neuron's, so a
    silenced neuron is never the argmax of the engine's event function
    `max_k cond_k` while another neuron nears threshold (the root finder sees
    only active neurons), yet finite, so arithmetic on it stays finite.
    `observe` reports the wrapped model's channels (held after the spike).

    Composes with other wrappers (`AMOS(Refractory(LIF))`) and user models; needs
    a state whose leaves have leading axis `n_neurons` (wrap the sub-models of a
    `MultiNeuronModel`, not the `MultiNeuronModel`).
    """
    check_wrappable("AMOS", model_cls)
    name = f"AMOS{model_cls.__name__}"
    return wrapper_class(AMOS, model_cls, name, lambda: _methods(model_cls))


def _methods(base: type[NeuronModel]) -> dict[str, Any]:
    """The namespace of `AMOS(base)`; `base`'s methods run on a base view."""

    def init_state(self, n_neurons: int) -> tuple[PyTree[Array], Float[Array, " neurons"]]:
        inner = base_view(self, base).init_state(n_neurons)
        check_state_layout("AMOS", inner, n_neurons)
        return inner, jnp.zeros((n_neurons,), self.dtype)

    def dynamics(self, t, y, args: Any):
        inner, spiked = y
        f = base_view(self, base).dynamics(t, inner, args)
        f = select(spiked > 0, jax.tree_util.tree_map(jnp.zeros_like, f), f)
        return f, jnp.zeros_like(spiked)

    def spike_condition(self, t, y) -> Float[Array, " neurons"]:
        inner, spiked = y
        cond = base_view(self, base).spike_condition(t, inner)
        return jnp.where(spiked > 0, jnp.asarray(SILENT, cond.dtype), cond)

    def input_spike(
        self,
        y,
        from_idx: Int[Array, ""],
        to_idx: Int[Array, " targets"],
        valid_mask: Bool[Array, " targets"],
    ):
        inner, spiked = y
        live = valid_mask & (spiked[to_idx] == 0)
        return base_view(self, base).input_spike(inner, from_idx, to_idx, live), spiked

    def input_spikes(self, y, counts, wmask):
        inner, spiked = y
        live = wmask & (spiked == 0)[None, :]
        return base_view(self, base).input_spikes(inner, counts, live), spiked

    def reset_spiked(self, y, spike_mask: Bool[Array, " neurons"]):
        inner, spiked = y
        inner = base_view(self, base).reset_spiked(inner, spike_mask)
        return inner, jnp.where(spike_mask, jnp.ones_like(spiked), spiked)

    def observe(self, y) -> Float[Array, "neurons channels"]:
        return base_view(self, base).observe(y[0])

    return {
        "__doc__": f"`{base.__name__}` that spikes at most once per trial; see `AMOS`.",
        "init_state": init_state,
        "dynamics": dynamics,
        "spike_condition": spike_condition,
        "input_spike": input_spike,
        "input_spikes": input_spikes,
        "reset_spiked": reset_spiked,
        "observe": observe,
    }
