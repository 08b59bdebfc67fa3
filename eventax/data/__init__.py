"""Datasets, spike encodings and on-device batching (no downloads at import time)."""

from .dataset import Dataset, Split, load_dataset, register
from .encoding import delta_encode, latency_encode, rate_encode
from .loader import Batches
from .mnist import MNIST_SPLITS, mnist, read_idx
from .randman import randman, randman_at, randman_splits
from .xor import XOR_TEST, XOR_TRAIN, XOR_VALIDATION, delayed_xor
from .yinyang import TEST, TRAIN, VALIDATION, yin_yang, yin_yang_class, yin_yang_spikes

__all__ = [
    "MNIST_SPLITS", "TEST", "TRAIN", "VALIDATION", "XOR_TEST", "XOR_TRAIN", "XOR_VALIDATION",
    "Batches", "Dataset", "Split", "delayed_xor", "delta_encode", "latency_encode", "load_dataset", "mnist", "randman", "randman_at",
    "randman_splits", "rate_encode", "read_idx", "register",
    "yin_yang", "yin_yang_class", "yin_yang_spikes",
]
