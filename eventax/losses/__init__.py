"""Classification losses and activity regularisers, each a per-sample Equinox module."""

from .base import Loss, cross_entropy
from .regularisers import ActivityRegulariser, spike_counts
from .state import StateLoss
from .ttfs import TTFSLoss

__all__ = ["ActivityRegulariser", "Loss", "StateLoss", "TTFSLoss", "cross_entropy", "spike_counts"]
