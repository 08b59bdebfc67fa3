"""Learnable time constants for any model, and the built-in learnable variants.

One mechanism, not a class per model: `with_trainable(model_cls, names)`. `PLIF`,
`PQIF` and `PIzhikevich` (eventax 0.1.0's `pIzhikevich`) are its calls for the
built-in models.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._built import built_class, class_builder
from .base import NeuronModel
from .izhikevich import Izhikevich
from .lif import LIF
from .qif import QIF


@class_builder
def with_trainable(model_cls: type[NeuronModel], names: Sequence[str], name: str | None = None) -> type[NeuronModel]:
    """`model_cls` with the parameters `names` trainable by default.

    Every built-in model takes `trainable=(...)`: the named scalar or per-neuron
    parameters become per-neuron arrays that `jax.grad` and optimisers reach.
    This returns a subclass (made once per arguments) whose default for
    `trainable` is `names`, e.g. `PLIF = with_trainable(LIF, LIF.time_constants, "PLIF")`.
    """
    defaults = (names,) if isinstance(names, str) else tuple(names)
    name = name or f"Trainable{model_cls.__name__}"

    def namespace():
        def __init__(self, *args, trainable=defaults, **kwargs):
            model_cls.__init__(self, *args, trainable=trainable, **kwargs)

        return {"__init__": __init__}

    return built_class(with_trainable, (model_cls, defaults, name), model_cls, name, namespace)


PLIF = with_trainable(LIF, LIF.time_constants, "PLIF")
PLIF.__doc__ = "`LIF` with learnable `tsyn` and `tmem` (per neuron)."
PQIF = with_trainable(QIF, QIF.time_constants, "PQIF")
PQIF.__doc__ = "`QIF` with learnable `tsyn` and `tmem` (per neuron)."
PIzhikevich = with_trainable(Izhikevich, Izhikevich.time_constants, "PIzhikevich")
PIzhikevich.__doc__ = "`Izhikevich` with learnable `tau_syn` and recovery rate `a` (per neuron)."
pIzhikevich = PIzhikevich  # (the name in eventax 0.1.0)
