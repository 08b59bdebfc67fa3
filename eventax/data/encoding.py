"""Spike encodings of analogue data in the network's input layout `(..., channels, K)`.

- `latency_encode`: one spike per channel, brighter inputs earlier;
- `rate_encode`: Bernoulli spikes on a time grid, probability per bin proportional to the value;
- `delta_encode`: send-on-delta events of a sampled signal, on (up) and off (down) channels.

Unused slots hold `inf` (no spike); each channel's spikes come first, in time order.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import check_int


def latency_encode(values, t_max: float, *, t_min: float = 0.0, zero_is_silent: bool = True) -> np.ndarray:
    """One spike per channel at `t_min + (1 - v) * (t_max - t_min)` for intensity `v` in [0, 1].

    `values` has the channels on its last axis; the result `(..., channels, 1)` float64 is
    the network's `(in_size, K)` input layout with `K = 1` per sample. A zero value gives
    `inf` (no spike) when `zero_is_silent`, otherwise a spike at `t_max`.

    A `uint8` array is read as images `(..., H, W)`: divided by 255 and flattened to
    `H * W` channels, so MNIST `(N, 28, 28)` becomes `(N, 784, 1)`.
    """
    for name, t in (("t_max", t_max), ("t_min", t_min)):
        _check_finite(name, t)
    if not t_max > t_min:
        raise ValueError(f"`t_max` must be greater than `t_min`; got t_max={t_max}, t_min={t_min}.")
    v = _unit_values(values)
    times = t_min + (1.0 - v) * (t_max - t_min)
    if zero_is_silent:
        times = np.where(v == 0.0, np.inf, times)
    return times[..., None]


def rate_encode(values, n_steps: int, dt: float, *, max_prob: float = 1.0, seed: int = 0,
                t0: float = 0.0) -> np.ndarray:
    """Bernoulli rate code: in each bin `k = 0..n_steps-1` a channel with value `v` in [0, 1]
    spikes with probability `p = v * max_prob`, at the bin's end `t0 + (k + 1) dt`.

    Expected count `n_steps * p`, i.e. a rate `p / dt`. The bin end is the time the
    fixed-step mode delivers the spike in, as it counts inputs in `(t_{k-1}, t_k]`
    with `t_k = t0 + k dt`. Result `(..., channels, n_steps)` float64, each channel's
    spikes in time order and `inf` after them. `values` are read as in `latency_encode`
    (uint8 images are scaled and flattened). RNG `numpy.random.default_rng(seed)`, one
    uniform draw per `(..., channel, bin)`.
    """
    check_int("n_steps", n_steps, 1)
    if not _check_finite("dt", dt) > 0:
        raise ValueError(f"`dt` must be > 0; got {dt!r}.")
    if not 0.0 <= _check_finite("max_prob", max_prob) <= 1.0:
        raise ValueError(f"`max_prob` (spike probability per bin at value 1) must lie in [0, 1]; got {max_prob!r}.")
    _check_finite("t0", t0)
    check_int("seed", seed, 0)
    p = _unit_values(values) * max_prob
    fired = np.random.default_rng(seed).random(p.shape + (n_steps,)) < p[..., None]
    bin_ends = t0 + np.arange(1, n_steps + 1) * dt
    return _compact(np.where(fired, bin_ends, np.inf), n_steps)


def delta_encode(signal, times, threshold: float, *, off_spikes: bool = True) -> np.ndarray:
    """Send-on-delta events of a sampled signal: a spike when `|x(t_i) - ref| >= threshold`.

    `signal` `(..., channels, n_samples)` is sampled at `times` `(n_samples,)` (strictly
    increasing). Per channel, `ref` starts at the first sample; at each later sample with
    `x - ref >= threshold` the channel emits one "on" spike at that sample's time, with
    `x - ref <= -threshold` one "off" spike, and either way `ref` moves to `x` (one spike per
    sample, however large the jump). With `off_spikes` the result has `2 * channels`
    channels, the on-channels first, then the off-channels; without, only the on-channels
    (the same on-spikes). Result `(..., channels or 2 * channels, K)` float64, each channel's
    spikes in time order and `inf` after them; `K` is the most spikes any channel has (at least 1).
    """
    x = np.asarray(signal)
    if x.dtype.kind not in "biuf" or x.ndim < 2 or x.shape[-1] < 1:
        raise ValueError(
            f"`signal` must be real numbers of shape (..., channels, n_samples); got shape {x.shape},"
            f" dtype {x.dtype}."
        )
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("`signal` must be finite (no NaN or inf).")
    t = np.asarray(times)
    if t.dtype.kind not in "biuf" or t.shape != x.shape[-1:]:
        raise ValueError(f"`times` must be real numbers of shape (n_samples,) = ({x.shape[-1]},); got {t.shape}.")
    t = t.astype(np.float64)
    if not (np.all(np.isfinite(t)) and np.all(np.diff(t) > 0)):
        raise ValueError("`times` must be finite and strictly increasing.")
    if not _check_finite("threshold", threshold) > 0:
        raise ValueError(f"`threshold` must be > 0; got {threshold!r}.")

    on = np.zeros(x.shape, bool)
    off = np.zeros(x.shape, bool)
    ref = x[..., 0].copy()
    for i in range(1, x.shape[-1]):
        change = x[..., i] - ref
        on[..., i] = change >= threshold
        off[..., i] = change <= -threshold
        ref = np.where(on[..., i] | off[..., i], x[..., i], ref)
    fired = np.concatenate([on, off], axis=-2) if off_spikes else on
    width = max(1, int(fired.sum(axis=-1).max(initial=0)))
    return _compact(np.where(fired, t, np.inf), width)


def _unit_values(values) -> np.ndarray:
    """`values` as float64 in [0, 1], channels last; uint8 images `(..., H, W)` scaled and flattened."""
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
    return v


def _compact(times: np.ndarray, width: int) -> np.ndarray:
    """Each row's finite times first, in order, then `inf`; the last axis cut to `width`."""
    return np.sort(times, axis=-1)[..., :width]


def _check_finite(name, value) -> float:
    is_real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (is_real and math.isfinite(value)):
        raise ValueError(f"`{name}` must be a finite number; got {value!r}.")
    return float(value)
