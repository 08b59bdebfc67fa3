"""`eventax.data.load_dataset`: the registry of loaders by config name."""

import numpy as np
import pytest

from eventax.config import ConfigError, DataConfig
from eventax.data import Dataset, Split, load_dataset, register
from eventax.data.dataset import _LOADERS


def test_a_registered_loader_serves_its_config_name():
    """A user's loader, registered under a new name, gets the config and the sizes."""
    seen = {}

    @register("two-blobs")
    def load(cfg, sizes):
        seen.update(sizes)
        split = Split(np.full((sizes["train"] or 4, 2, 1), cfg.t_max), np.zeros(sizes["train"] or 4, int))
        return Dataset(split, split, split, n_classes=2)

    try:
        data = load_dataset(DataConfig(name="two-blobs", t_max=7.0, train_size=3, val_size=0))
    finally:
        del _LOADERS["two-blobs"]
    assert seen == {"train": 3, "validation": 0, "test": 0}
    assert data.train.x.shape == (3, 2, 1) and np.all(data.train.x == 7.0) and data.n_classes == 2


def test_unknown_name_lists_the_registered_ones():
    with pytest.raises(ConfigError, match="`data.name` must be 'mnist' or 'randman' or 'xor' or 'yinyang'; got 'yinyan'"):
        load_dataset(DataConfig(name="yinyan"))


@pytest.mark.parametrize("key", ["train_size", "val_size", "test_size"])
def test_negative_sizes_are_refused(key):
    with pytest.raises(ConfigError, match=f"`data.{key}` must be >= 0; got -1"):
        load_dataset(DataConfig(**{key: -1}))


def test_yinyang_bias_spike_at_its_time():
    data = load_dataset(DataConfig(name="yinyang", t_max=30.0, bias_time=2.5, train_size=5, val_size=3, test_size=2))
    assert [len(s.y) for s in (data.train, data.validation, data.test)] == [5, 3, 2]
    assert data.train.x.shape == (5, 5, 1) and np.all(data.train.x[:, 4, 0] == 2.5)
    assert data.n_classes == 3 and data.start_channels is None


def test_xor_readout_starts_at_the_cue_channels():
    data = load_dataset(DataConfig(name="xor", train_size=6, val_size=2, test_size=2))
    assert data.start_channels == (6, 7, 8) and data.n_classes == 2
    # the cue channels spike once per trial, after both inputs
    cue = data.train.x[:, 6:9]
    assert np.all(np.isfinite(cue).sum(axis=(1, 2)) == 3)
    inputs = np.where(np.isfinite(data.train.x[:, :6]), data.train.x[:, :6], -np.inf)
    assert np.all(np.nanmin(np.where(np.isfinite(cue), cue, np.inf), axis=(1, 2)) > inputs.max(axis=(1, 2)))


def test_randman_standard_sizes_are_per_class():
    data = load_dataset(DataConfig(name="randman", t_max=1.0, params={"n_classes": 3, "n_units": 5, "seed": 1}))
    assert [len(s.y) for s in (data.train, data.validation, data.test)] == [600, 150, 150]
    with pytest.raises(ConfigError, match="`data.params` \\(randman\\)"):
        load_dataset(DataConfig(name="randman", params={"colour": 1}))
