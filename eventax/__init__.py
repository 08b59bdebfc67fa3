"""eventax: event-driven spiking neural networks in JAX with exact spike-time gradients."""

from . import analysis, losses, neuron_models, rules, surrogates
from .buffer import SpikeBuffer
from .evnn import EvNN, FFEvNN
from .fixed_step import FixedStepNN
from .io import load_evnn, save_evnn
from .losses import ActivityRegulariser, Loss, StateLoss, TTFSLoss
from .neuron_models import *  # noqa: F403  (the models and wrappers are the public API)
from .neuron_models import __all__ as _models
from .rules import train_online
from ._network import SimulationError
from .simulation import Simulation, SpikeRecord

__version__ = "0.2.0.dev0"

__all__ = ["EvNN", "FFEvNN", "Simulation", "SpikeBuffer", "SpikeRecord", "load_evnn", "neuron_models", "save_evnn"]
__all__ += ["FixedStepNN", "SimulationError", "analysis", "rules", "surrogates", "train_online"]
__all__ += ["ActivityRegulariser", "Loss", "StateLoss", "TTFSLoss", "losses"]
__all__ += _models
