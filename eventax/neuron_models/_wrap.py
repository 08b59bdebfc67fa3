"""Machinery shared by the model wrappers `Refractory` and `AMOS`.

A wrapper `W(model_cls)` returns a subclass of `model_cls` (so the learnable
arrays stay where they were: `net.neuron_model.weights`) whose state is
`(inner_state, extra)`. Its methods call the wrapped model's methods on a
*base view*: the same field values seen as a `model_cls` instance, so that a
wrapped model whose methods call each other (`self.spike_condition(...)` inside
`dynamics`, say) still receives its own state layout.

Wrappers are class builders (`_built.py`): `Refractory(LIF) is Refractory(LIF)`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool

from ._built import built_class
from .base import NeuronModel
from .multi import MultiNeuronModel

# The spike condition of a neuron that must not spike. Far below any value an
# active neuron's condition takes, so a silenced neuron is never the argmax of
# the engine's event function `max_k cond_k` (whose root Newton's method finds)
# while another neuron is near threshold; finite, so that arithmetic on it
# (surrogate gradients, zero cotangents) stays finite.
SILENT = -1e30


def check_wrappable(wrapper: str, model_cls) -> None:
    """Raise `ValueError` unless `model_cls` is a `NeuronModel` class that can be wrapped."""
    if not (inspect.isclass(model_cls) and issubclass(model_cls, NeuronModel)):
        raise ValueError(f"`{wrapper}(model_cls)` takes a NeuronModel class; got {model_cls!r}.")
    if issubclass(model_cls, MultiNeuronModel):
        raise ValueError(
            f"`{wrapper}` cannot wrap a MultiNeuronModel (its state is not per neuron); wrap "
            f"its sub-models instead: `neuron_models=[{wrapper}(LIF), ...]`."
        )


def wrapper_class(wrapper: Callable, model_cls: type, name: str, build: Callable[[], dict]) -> type:
    """The cached subclass `name` of `model_cls` with the namespace `build()`.

    `build` returns methods that close over `model_cls` (rather than a mixin
    class, which would make `AMOS(AMOS(LIF))` an impossible MRO).
    """
    return built_class(wrapper, (model_cls,), model_cls, name, build)


def base_view(module: NeuronModel, base_cls: type) -> NeuronModel:
    """`module` as an instance of its base class `base_cls`, sharing the field values."""
    view = object.__new__(base_cls)
    for field in dataclasses.fields(base_cls):
        object.__setattr__(view, field.name, getattr(module, field.name))
    return view


def n_neurons_arg(args: tuple, kwargs: dict[str, Any]) -> int:
    """`n_neurons` from a model constructor call `cls(key, n_neurons, ...)`."""
    if "n_neurons" in kwargs:
        return int(kwargs["n_neurons"])
    if len(args) > 1:
        return int(args[1])
    raise ValueError("Pass `n_neurons` to the wrapped model (EvNN does so).")


def per_neuron(mask: Bool[Array, " neurons"], leaf: Array) -> Bool[Array, "..."]:
    """`mask` broadcastable against `leaf` along its leading (neuron) axis."""
    return mask.reshape(mask.shape + (1,) * (jnp.ndim(leaf) - 1))


def select(mask: Bool[Array, " neurons"], on_true, on_false):
    """Per neuron: `on_true` where `mask`, else `on_false` (same pytree structure)."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(per_neuron(mask, a), a, b), on_true, on_false)


def check_state_layout(wrapper: str, state, n_neurons: int) -> None:
    """Raise `ValueError` unless every leaf of `state` has leading axis `n_neurons`."""
    for leaf in jax.tree_util.tree_leaves(state):
        if jnp.ndim(leaf) == 0 or jnp.shape(leaf)[0] != n_neurons:
            raise ValueError(
                f"`{wrapper}` needs a state whose leaves have leading axis n_neurons="
                f"{n_neurons}; the wrapped model's `init_state` gave a leaf of shape "
                f"{jnp.shape(leaf)}."
            )
