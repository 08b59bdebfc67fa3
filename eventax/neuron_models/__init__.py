"""Neuron models: the `NeuronModel` contract and the built-in models."""

from .base import Constant, NeuronModel
from .li import LI
from .eif import EIF
from .izhikevich import Izhikevich, pIzhikevich
from .learnable import PLIF, with_trainable
from .lif import LIF
from .multi import MultiNeuronModel
from .qif import PQIF, QIF

__all__ = ["Constant", "LI", "LIF", "MultiNeuronModel", "NeuronModel", "PLIF", "with_trainable"]
