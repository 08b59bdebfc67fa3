"""Neuron models: the `NeuronModel` contract, the built-in models and the wrappers."""

from .alif import ALIF
from .amos import AMOS
from .base import Constant, NeuronModel
from .delta import DeltaLI, DeltaLIF
from .dendritic import Dendritic, DendriticNeuron
from .egru import EGRU
from .eif import EIF
from .izhikevich import Izhikevich
from .learnable import PLIF, PQIF, PIzhikevich, pIzhikevich, with_trainable
from .li import LI
from .lif import LIF
from ._params import SynapseInit
from .multi import MultiNeuronModel
from .qif import QIF
from .refractory import Refractory, RefractoryState

__all__ = [
    "ALIF",
    "AMOS",
    "Constant",
    "DeltaLI",
    "DeltaLIF",
    "Dendritic",
    "DendriticNeuron",
    "EGRU",
    "EIF",
    "Izhikevich",
    "LI",
    "LIF",
    "MultiNeuronModel",
    "NeuronModel",
    "PIzhikevich",
    "PLIF",
    "PQIF",
    "QIF",
    "Refractory",
    "RefractoryState",
    "SynapseInit",
    "pIzhikevich",
    "with_trainable",
]
