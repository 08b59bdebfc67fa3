"""Neuron models: the `NeuronModel` contract and the built-in models."""

from .base import Constant, NeuronModel
from .li import LI
from .lif import LIF
from .multi import MultiNeuronModel

__all__ = ["Constant", "LI", "LIF", "MultiNeuronModel", "NeuronModel"]
