"""Training: configs -> datasets, networks, losses; the loop, metrics, checkpoints, sweeps."""

from ..data import load_dataset
from .build import build_loss, build_network, build_optimiser, neuron_class
from .checkpoint import load_checkpoint, save_checkpoint
from .evaluate import evaluate_run
from .metrics import evaluate
from .parallel import DataParallel, initialize_distributed
from .sweep import sweep
from .trainer import finish, make_train_step, read_history, train, train_seeds

__all__ = [
    "DataParallel",
    "build_loss",
    "build_network",
    "build_optimiser",
    "evaluate",
    "evaluate_run",
    "finish",
    "initialize_distributed",
    "load_checkpoint",
    "load_dataset",
    "make_train_step",
    "neuron_class",
    "read_history",
    "save_checkpoint",
    "sweep",
    "train",
    "train_seeds",
]
