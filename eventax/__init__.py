"""eventax: event-driven spiking neural networks in JAX with exact spike-time gradients."""

from . import neuron_models
from .buffer import SpikeBuffer
from .evnn import EvNN, FFEvNN, SpikeRecord
from .io import load_evnn, save_evnn
from .neuron_models import LI, LIF, PLIF, Constant, MultiNeuronModel, NeuronModel, with_trainable

__version__ = "0.2.0.dev0"

__all__ = [
    "Constant",
    "EvNN",
    "FFEvNN",
    "LI",
    "LIF",
    "MultiNeuronModel",
    "NeuronModel",
    "PLIF",
    "SpikeBuffer",
    "SpikeRecord",
    "load_evnn",
    "neuron_models",
    "save_evnn",
    "with_trainable",
]
