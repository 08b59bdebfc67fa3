"""Latency (time-to-first-spike) encoding of intensities: brighter inputs spike earlier."""

from __future__ import annotations

import math

import numpy as np


def latency_encode(values, t_max: float, *, t_min: float = 0.0, zero_is_silent: bool = True) -> np.ndarray:
    """One spike per channel at `t_min + (1 - v) * (t_max - t_min)` for intensity `v` in [0, 1].

    `values` has the channels on its last axis; the result `(..., channels, 1)` float64 is
    the network's `(in_size, K)` input layout with `K = 1` per sample. A zero value gives
    `inf` (no spike) when `zero_is_silent`, otherwise a spike at `t_max`.

    A `uint8` array is read as images `(..., H, W)`: divided by 255 and flattened to
    `H * W` channels, so MNIST `(N, 28, 28)` becomes `(N, 784, 1)`.
    """
    for name, t in (("t_max", t_max), ("t_min", t_min)):
        if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)) or not math.isfinite(t):
            raise ValueError(f"`{name}` must be a finite number; got {t!r}.")
    if not t_max > t_min:
        raise ValueError(f"`t_max` must be greater than `t_min`; got t_max={t_max}, t_min={t_min}.")
    values = np.asarray(values)
    if values.dtype == np.uint8:
        if values.ndim < 2:
            raise ValueError(f"uint8 `values` are images (..., H, W); got shape {values.shape}.")
        values = values.reshape(*values.shape[:-2], -1) / 255.0
    if values.dtype.kind not in "biuf":
        raise ValueError(f"`values` must be real numbers in [0, 1]; got dtype {values.dtype}.")
    if values.ndim < 1:
        raise ValueError("`values` must have a channel axis (last); got a scalar.")
    v = values.astype(np.float64)
    bad = ~((v >= 0.0) & (v <= 1.0))  # also catches NaN
    if np.any(bad):
        raise ValueError(
            f"`values` must lie in [0, 1] (uint8 images are scaled by 1/255); {int(bad.sum())} entries"
            f" are outside it or NaN, e.g. {float(v[bad].flat[0])}."
        )
    times = t_min + (1.0 - v) * (t_max - t_min)
    if zero_is_silent:
        times = np.where(v == 0.0, np.inf, times)
    return times[..., None]
