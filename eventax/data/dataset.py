"""A dataset as a run uses it, and the registry that loads one by its config's name.

Each dataset module registers a loader, `@register("name") def load(cfg, sizes) ->
Dataset`, which owns that dataset's facts (its standard splits, its encoding into input
spikes, which channels start a trial's readout). `load_dataset(cfg)` checks the sizes
and calls the loader of `cfg.name`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..config import ConfigError

if TYPE_CHECKING:
    from ..config import DataConfig

SPLITS = ("train", "validation", "test")


class Split(NamedTuple):
    """Input spike times `x` `(n, in_size, K)` and integer labels `y` `(n,)`."""

    x: np.ndarray
    y: np.ndarray


class Dataset(NamedTuple):
    """The three splits, the number of classes, and the input channels whose first
    spike starts a state readout's window (`None`: the trial's start)."""

    train: Split
    validation: Split
    test: Split
    n_classes: int
    start_channels: tuple[int, ...] | None = None


# `sizes` maps each of `SPLITS` to its requested size (0: the standard split's).
Loader = Callable[["DataConfig", dict[str, int]], Dataset]
_LOADERS: dict[str, Loader] = {}


def register(name: str) -> Callable[[Loader], Loader]:
    """Register a dataset loader under `name` (the config's `data.name`)."""

    def add(loader: Loader) -> Loader:
        _LOADERS[name] = loader
        return loader

    return add


def load_dataset(cfg: DataConfig) -> Dataset:
    """The three splits of `cfg.name`, encoded as input spike times."""
    sizes = {"train": cfg.train_size, "validation": cfg.val_size, "test": cfg.test_size}
    for split, key in zip(SPLITS, ("train_size", "val_size", "test_size")):
        if sizes[split] < 0:
            raise ConfigError(f"`data.{key}` must be >= 0; got {sizes[split]}.")
    if cfg.name not in _LOADERS:
        names = " or ".join(repr(n) for n in sorted(_LOADERS))
        raise ConfigError(f"`data.name` must be {names}; got {cfg.name!r}.")
    return _LOADERS[cfg.name](cfg, sizes)
