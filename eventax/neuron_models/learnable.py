"""Learnable time constants for any model: one mechanism, not a class per model."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .base import NeuronModel
from .lif import LIF


def with_trainable(model_cls: type[NeuronModel], names: Sequence[str], name: str | None = None):
    """`model_cls` with the parameters `names` trainable by default.

    Every built-in model takes `trainable=(...)`: the named scalar or per-neuron
    parameters become per-neuron arrays that `jax.grad` and optimisers reach.
    This returns a subclass whose default for `trainable` is `names`, e.g.
    `PLIF = with_trainable(LIF, LIF.time_constants, "PLIF")`.
    """
    defaults = tuple(names)

    def __init__(self, *args, trainable=defaults, **kwargs):
        model_cls.__init__(self, *args, trainable=trainable, **kwargs)

    name = name or f"Trainable{model_cls.__name__}"
    module = sys._getframe(1).f_globals.get("__name__", __name__)
    cls = type(model_cls)(name, (model_cls,), {"__init__": __init__, "__module__": module})
    cls.__qualname__ = name
    return cls


PLIF = with_trainable(LIF, LIF.time_constants, "PLIF")
PLIF.__doc__ = "`LIF` with learnable `tsyn` and `tmem` (per neuron)."
