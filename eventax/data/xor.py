"""Delayed-memory XOR (Eventax paper, Sec. IV-E): hold two binary inputs, answer their XOR at a cue.

A trial lasts `t_max` and has three events:

- the first input at `first_time`;
- the second input at a time drawn uniformly from `second_window`;
- the cue at a time drawn uniformly from `[second + cue_window[0], cue_window[1]]`, i.e.
  `cue_window = (least delay after the second input, latest cue time)`.

Each input's value is a fair coin. With `m = spikes_per_event`, channels `0..m-1` carry
value 0, `m..2m-1` value 1 and `2m..3m-1` the cue: an event makes each of its `m` channels
spike once, at the event time plus uniform jitter in `[-jitter, jitter]`, clipped into
`[0, t_max)`. Slot `k` of a channel holds its spike from event `k` (first, second, cue),
`inf` where it got none. Label: 1 when the two values differ, 0 when equal.

Defaults fit a 30-unit trial: first input at 1, second in [2, 10], cue in [second + 5, 25],
jitter 0.5. RNG `numpy.random.default_rng(seed)`, drawn in this order: values `(size, 2)`,
second times `(size,)`, cue fractions `(size,)`, jitter `(size, 3, m)`.

Standard splits: train `size=5000, seed=1000`; validation `size=1000, seed=1001`;
test `size=1000, seed=1002`.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import check_int
from .dataset import SPLITS, Dataset, Split, register

XOR_TRAIN = {"size": 5000, "seed": 1000}
XOR_VALIDATION = {"size": 1000, "seed": 1001}
XOR_TEST = {"size": 1000, "seed": 1002}


def delayed_xor(
    size: int,
    seed: int,
    *,
    t_max: float = 30.0,
    first_time: float = 1.0,
    second_window: tuple[float, float] = (2.0, 10.0),
    cue_window: tuple[float, float] = (5.0, 25.0),
    jitter: float = 0.5,
    spikes_per_event: int = 3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Delayed-XOR trials: spike times `(size, 3m, 3)`, labels `(size,)`, cue times `(size,)`.

    `m = spikes_per_event` (9 channels by default). Cue times are the cue events'
    un-jittered times; the rule, layout and defaults are in the module docstring.
    """
    check_int("size", size, 0)
    check_int("seed", seed, 0)
    check_int("spikes_per_event", spikes_per_event, 1)
    t_max, first_time, jitter = (_check_float(n, v) for n, v in
                                 (("t_max", t_max), ("first_time", first_time), ("jitter", jitter)))
    second_lo, second_hi = _check_window("second_window", second_window)
    cue_delay, cue_last = _check_window("cue_window", cue_window, ordered=False)
    if not 0.0 <= first_time < second_lo:
        raise ValueError(
            f"`first_time` must lie in [0, second_window[0]) = [0, {second_lo}); got {first_time}."
        )
    if cue_delay < 0.0 or second_hi + cue_delay > cue_last:
        raise ValueError(
            "`cue_window` = (delay, latest) must have delay >= 0 and second_window[1] + delay <= latest;"
            f" got {cue_window} with second_window={second_window}."
        )
    if not cue_last < t_max:
        raise ValueError(f"`cue_window[1]` must be before `t_max`={t_max}; got {cue_last}.")
    if jitter < 0.0:
        raise ValueError(f"`jitter` must be non-negative; got {jitter}.")

    m = spikes_per_event
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2, size=(size, 2))
    second = rng.uniform(second_lo, second_hi, size=size)
    cue_earliest = second + cue_delay
    cue = cue_earliest + rng.uniform(size=size) * (cue_last - cue_earliest)
    noise = rng.uniform(-jitter, jitter, size=(size, 3, m))

    events = np.stack([np.full(size, first_time), second, cue], axis=1)
    times = np.clip(events[:, :, None] + noise, 0.0, np.nextafter(t_max, -np.inf))
    spike_times = np.full((size, 3 * m, 3), np.inf)
    rows = np.arange(size)[:, None]
    group = np.concatenate([values, np.full((size, 1), 2)], axis=1)  # channel group per event
    for k in range(3):
        spike_times[rows, group[:, k, None] * m + np.arange(m), k] = times[:, k]
    labels = (values[:, 0] != values[:, 1]).astype(np.int64)
    return spike_times, labels, cue


def _check_float(name, value) -> float:
    is_real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (is_real and math.isfinite(value)):
        raise ValueError(f"`{name}` must be a finite number; got {value!r}.")
    return float(value)


def _check_window(name, window, ordered=True) -> tuple[float, float]:
    try:
        lo, hi = window
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a pair of numbers; got {window!r}.") from None
    lo, hi = _check_float(f"{name}[0]", lo), _check_float(f"{name}[1]", hi)
    if ordered and not 0.0 <= lo <= hi:
        raise ValueError(f"`{name}` must satisfy 0 <= {name}[0] <= {name}[1]; got {window!r}.")
    return lo, hi


@register("xor")
def load(cfg, sizes) -> Dataset:
    """The standard splits (or their first `sizes[k]` trials) of `t_max = cfg.t_max`; a
    readout starts at the cue (channels `2m..3m-1`, `m = 3`)."""
    splits = {}
    for k, std in zip(SPLITS, (XOR_TRAIN, XOR_VALIDATION, XOR_TEST)):
        x, labels, _ = delayed_xor(sizes[k] or std["size"], std["seed"], t_max=cfg.t_max)
        splits[k] = Split(x, labels)
    m = x.shape[1] // 3
    return Dataset(**splits, n_classes=2, start_channels=tuple(range(2 * m, 3 * m)))
