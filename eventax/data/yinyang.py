"""The Yin-Yang dataset (Kriener, Göltz & Petrovici, 2022) and its spike encoding.

Generation rule (reproduces the published splits bit for bit):

- radii `R = 0.5` (big circle) and `r = 0.1` (dots); RNG `numpy.random.RandomState(seed)`;
- per sample, in order: a goal class `randint(3)`; then repeat: `x, y = rand(2) * 2R`,
  reject if the distance to `(R, R)` exceeds `R`, otherwise accept only if the point's
  class equals the goal (a rejected point keeps the same goal);
- features `(x, y, 1 - x, 1 - y)`.

Standard splits: train `size=5000, seed=42`; validation `size=1000, seed=41`;
test `size=1000, seed=40`.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_int
from .dataset import SPLITS, Dataset, Split, register

R_BIG = 0.5
R_SMALL = 0.1

TRAIN = {"size": 5000, "seed": 42}
VALIDATION = {"size": 1000, "seed": 41}
TEST = {"size": 1000, "seed": 40}


def yin_yang(size: int = 5000, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Yin-Yang samples: features `(size, 4)` float64 `(x, y, 1-x, 1-y)`, labels `(size,)`.

    Labels: 0 yin, 1 yang, 2 dots. Classes are balanced by rejection sampling
    towards a goal class drawn with `randint(3)` before each sample.
    """
    check_int("size", size, 0)
    rng = np.random.RandomState(seed)
    features = np.empty((size, 4), np.float64)
    labels = np.empty((size,), np.int64)
    for n in range(size):
        goal = rng.randint(3)
        x, y = _sample_of_class(rng, goal)
        features[n] = (x, y, 1.0 - x, 1.0 - y)
        labels[n] = goal
    return features, labels


def yin_yang_spikes(features, t_max: float = 30.0) -> np.ndarray:
    """Latency encoding `(size, 5, 1)`: channel times `[x, y, 1-x, 1-y, 0] * t_max`.

    The fifth channel is a bias input that always spikes at time 0.
    """
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[1] != 4:
        raise ValueError(f"`features` must have shape (size, 4); got {features.shape}.")
    bias = np.zeros((features.shape[0], 1), np.float64)
    return (np.concatenate([features, bias], axis=1) * t_max)[:, :, None]


def yin_yang_class(x: float, y: float) -> int:
    """Class of a point inside the big circle: 0 yin, 1 yang, 2 dots."""
    d_right = np.sqrt((x - 1.5 * R_BIG) ** 2 + (y - R_BIG) ** 2)
    d_left = np.sqrt((x - 0.5 * R_BIG) ** 2 + (y - R_BIG) ** 2)
    if d_right < R_SMALL or d_left < R_SMALL:
        return 2
    is_yang = (
        d_right <= R_SMALL
        or R_SMALL < d_left <= 0.5 * R_BIG
        or (y > R_BIG and d_right > 0.5 * R_BIG)
    )
    return int(is_yang)


def _sample_of_class(rng: np.random.RandomState, goal: int) -> tuple[float, float]:
    """Draw points until one lies in the big circle and has class `goal`."""
    while True:
        x, y = rng.rand(2) * 2.0 * R_BIG
        if np.sqrt((x - R_BIG) ** 2 + (y - R_BIG) ** 2) > R_BIG:
            continue
        if yin_yang_class(x, y) == goal:
            return x, y


# The input channel that carries the bias spike (`yin_yang_spikes`' fifth channel).
BIAS_CHANNEL = 4


@register("yinyang")
def load(cfg, sizes) -> Dataset:
    """The standard splits (or their first `sizes[k]` samples), encoded by
    `yin_yang_spikes` over `cfg.t_max`, the bias spike at `cfg.bias_time`."""
    splits = {}
    for k, std in zip(SPLITS, (TRAIN, VALIDATION, TEST)):
        features, labels = yin_yang(size=sizes[k] or std["size"], seed=std["seed"])
        x = yin_yang_spikes(features, cfg.t_max)
        x[:, BIAS_CHANNEL, 0] = cfg.bias_time
        splits[k] = Split(x, labels)
    return Dataset(**splits, n_classes=3)
