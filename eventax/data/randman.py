"""Randman (Zenke & Vogels, 2021): random smooth manifolds as a spike-time classification task.

Each class `c` is a random smooth manifold of intrinsic dimension `D = dim_manifold` embedded
in `n_units` dimensions. Unit `u` of class `c` at manifold coordinates `x` in `[0, 1)^D` is

    s_cu(x) = sum_d f_cud(x_d),    f_cud(x) = sum_{k=1}^{K} a_k sin(2 pi (k b_k x + c_k)) / k^alpha

with `a_k, b_k, c_k ~ U[0, 1)` drawn per `(c, u, d, k)` and `K = n_fourier`; larger `alpha`
damps the high frequencies, so the manifold is smoother. Each unit is normalised to [0, 1]
by the range of `s_cu` over the whole cube and over all classes,

    v_u = (s_cu(x) - min_{c', x'} s_c'u(x')) / (max_{c', x'} s_c'u(x') - min_{c', x'} s_c'u(x')),

found per 1-D function on a dense grid refined around its extremes (a sum over `d` has its
extremes where each term has; values are clipped into [0, 1] against the search's error,
below 1e-6). The range depends only on the manifolds, never on the samples
drawn, so every split maps the same coordinates to the same spike times. A unit spikes once,
at `t = v_u * duration` (time to first spike; the paper's standard task has one spike per unit),
in the network's input layout `(n_units, 1)` per sample.

Randomness: the manifolds come from `numpy.random.default_rng([0, seed])` (draws `a, b, c`
of shape `(3, n_classes, n_units, D, K)`, so `alpha` only reshapes the spectrum); class `c`'s
coordinates from `default_rng([1, sample_seed, c])`, uniform in `[0, 1)^D`, so the first
samples of a class do not depend on how many are drawn; the shuffle from
`default_rng([2, sample_seed])`. Train/validation/test splits of one task share `seed` and
differ in `sample_seed`; `randman_splits` draws them.

Published defaults (the paper's standard task): 10 classes, 100 units, `D = 1`, `alpha = 2`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .._checks import check_int
from ..config import ConfigError
from .dataset import SPLITS, Dataset, Split, register

_GRID_PER_FREQUENCY = 64  # grid points per unit of the highest frequency `K`
_REFINE_POINTS = 33  # points of the local grid around a coarse extreme


def randman(
    n_classes: int = 10,
    n_units: int = 100,
    dim_manifold: int = 1,
    alpha: float = 2.0,
    n_samples_per_class: int = 100,
    duration: float = 1.0,
    seed: int = 0,
    shuffle: bool = True,
    *,
    sample_seed: int | None = None,
    n_fourier: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Randman samples: spike times `(N, n_units, 1)` float64 in `[0, duration]`, labels `(N,)`.

    `N = n_classes * n_samples_per_class`, every class equally often; without `shuffle`
    the samples are grouped by class (class 0 first). `seed` picks the manifolds,
    `sample_seed` (default `seed + 1`) the points on them; the rule is in the module docstring.
    """
    check_int("n_samples_per_class", n_samples_per_class, 1)
    check_int("seed", seed, 0)
    sample_seed = seed + 1 if sample_seed is None else sample_seed
    check_int("sample_seed", sample_seed, 0)
    manifold = _Manifold(n_classes, n_units, dim_manifold, alpha, n_fourier, seed)
    return manifold.sample(n_samples_per_class, sample_seed, _check_positive("duration", duration), shuffle)


def randman_splits(
    sizes: Sequence[int],
    *,
    n_classes: int = 10,
    n_units: int = 100,
    dim_manifold: int = 1,
    alpha: float = 2.0,
    duration: float = 1.0,
    seed: int = 0,
    shuffle: bool = True,
    n_fourier: int = 10,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Splits of one Randman task: `[(spike_times, labels), ...]`, one per entry of `sizes`.

    `sizes` are samples per class, e.g. `(800, 100, 100)` for train/validation/test.
    All splits lie on the same manifolds (`seed`); split `i` uses `sample_seed = seed + 1 + i`,
    so split 0 equals `randman(..., n_samples_per_class=sizes[0], seed=seed)`.
    """
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) == 0:
        raise ValueError(f"`sizes` must be a non-empty sequence of samples per class; got {sizes!r}.")
    for i, size in enumerate(sizes):
        check_int(f"sizes[{i}]", size, 1)
    duration = _check_positive("duration", duration)
    manifold = _Manifold(n_classes, n_units, dim_manifold, alpha, n_fourier, seed)
    return [manifold.sample(size, seed + 1 + i, duration, shuffle) for i, size in enumerate(sizes)]


def randman_at(
    coords,
    labels,
    *,
    n_classes: int = 10,
    n_units: int = 100,
    alpha: float = 2.0,
    duration: float = 1.0,
    seed: int = 0,
    n_fourier: int = 10,
) -> np.ndarray:
    """Spike times `(N, n_units, 1)` of the points `coords` `(N, D)` in `[0, 1]^D` on the
    manifolds of classes `labels` `(N,)`; `D = dim_manifold` is read from `coords`.

    The same map `randman` samples from (same `seed` and shape arguments), for probing
    the manifolds at chosen coordinates, e.g. along a line.
    """
    coords = np.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] < 1 or coords.dtype.kind not in "biuf":
        raise ValueError(f"`coords` must be real numbers of shape (N, dim_manifold); got {coords.shape}"
                         f" {coords.dtype}.")
    coords = coords.astype(np.float64)
    if not np.all((coords >= 0.0) & (coords <= 1.0)):
        raise ValueError("`coords` must lie in [0, 1] (no NaN).")
    labels = np.asarray(labels)
    check_int("n_classes", n_classes, 1)
    if labels.shape != coords.shape[:1] or labels.dtype.kind not in "iu":
        raise ValueError(f"`labels` must be integers of shape ({coords.shape[0]},); got {labels.shape}"
                         f" {labels.dtype}.")
    if labels.size and not (labels.min() >= 0 and labels.max() < n_classes):
        raise ValueError(f"`labels` must lie in [0, n_classes) = [0, {n_classes}).")
    manifold = _Manifold(n_classes, n_units, coords.shape[1], alpha, n_fourier, seed)
    return manifold.times(coords, labels, _check_positive("duration", duration))


class _Manifold:
    """The random functions of all classes and the per-unit normalisation."""

    def __init__(self, n_classes, n_units, dim_manifold, alpha, n_fourier, seed):
        for name, value in (("n_classes", n_classes), ("n_units", n_units),
                            ("dim_manifold", dim_manifold), ("n_fourier", n_fourier)):
            check_int(name, value, 1)
        check_int("seed", seed, 0)
        alpha = _check_positive("alpha", alpha)
        k = np.arange(1, n_fourier + 1, dtype=np.float64)
        a, b, c = np.random.default_rng([0, seed]).random((3, n_classes, n_units, dim_manifold, n_fourier))
        self.amp = a / k**alpha  # (C, U, D, K)
        self.freq = k * b
        self.phase = c
        self.dim = dim_manifold
        self.n_classes = n_classes
        lo, hi = self._extremes()  # (C, U, D)
        self.lo = lo.sum(axis=2).min(axis=0)  # (U,)
        self.hi = hi.sum(axis=2).max(axis=0)

    def _series(self, c, x):
        """`f_cud(x)` for `x` broadcastable to `(..., U, D)`."""
        arg = self.freq[c] * x[..., None] + self.phase[c]
        return np.sum(self.amp[c] * np.sin(2.0 * np.pi * arg), axis=-1)

    def _extremes(self):
        """Min and max of each 1-D function over [0, 1]: a coarse grid, then a fine one
        around the coarse extreme (the extreme sits within one coarse step of it)."""
        n_grid = _GRID_PER_FREQUENCY * self.amp.shape[-1] + 1
        grid = np.linspace(0.0, 1.0, n_grid)
        step = grid[1]
        offsets = np.linspace(-step, step, _REFINE_POINTS)[:, None, None]
        lo, hi = np.empty(self.amp.shape[:3]), np.empty(self.amp.shape[:3])
        for c in range(self.n_classes):
            coarse = self._series(c, grid[:, None, None])  # (G, U, D)
            for out, pick, reduce in ((lo, np.argmin, np.min), (hi, np.argmax, np.max)):
                near = np.clip(grid[pick(coarse, axis=0)] + offsets, 0.0, 1.0)  # (R, U, D)
                out[c] = reduce(self._series(c, near), axis=0)
        return lo, hi

    def times(self, coords, labels, duration):
        values = np.empty((coords.shape[0], self.lo.shape[0]))
        for c in np.unique(labels):
            rows = labels == c
            values[rows] = self._series(c, coords[rows][:, None, :]).sum(axis=-1)
        unit = np.clip((values - self.lo) / (self.hi - self.lo), 0.0, 1.0)
        return (unit * duration)[:, :, None]

    def sample(self, n_per_class, sample_seed, duration, shuffle):
        coords = np.concatenate([np.random.default_rng([1, sample_seed, c]).random((n_per_class, self.dim))
                                 for c in range(self.n_classes)])
        labels = np.repeat(np.arange(self.n_classes, dtype=np.int64), n_per_class)
        if shuffle:
            order = np.random.default_rng([2, sample_seed]).permutation(labels.size)
            coords, labels = coords[order], labels[order]
        return self.times(coords, labels, duration), labels


def _check_positive(name, value) -> float:
    is_real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (is_real and math.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a finite number > 0; got {value!r}.")
    return float(value)


# Samples per class of the standard splits (train, validation, test).
STANDARD_PER_CLASS = (200, 50, 50)


@register("randman")
def load(cfg, sizes) -> Dataset:
    """`randman_splits` with `sizes[k]` samples per class (0: `STANDARD_PER_CLASS`),
    spike times in `[0, cfg.t_max]`, the generator's keywords from `cfg.params`."""
    per_class = [sizes[k] or std for k, std in zip(SPLITS, STANDARD_PER_CLASS)]
    try:
        parts = randman_splits(per_class, duration=cfg.t_max, **cfg.params)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"`data.params` (randman): {e}") from e
    splits = {k: Split(*part) for k, part in zip(SPLITS, parts)}
    return Dataset(**splits, n_classes=int(splits["train"].y.max()) + 1)
