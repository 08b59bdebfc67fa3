"""Delayed XOR: labels are the XOR of the values the channels carry; timing follows the rule."""

import numpy as np
import pytest

from eventax.data import XOR_TEST, XOR_TRAIN, XOR_VALIDATION, delayed_xor


@pytest.fixture(scope="module")
def trials():
    return delayed_xor(400, 7)


def _values(spike_times, m=3):
    """Value of each input event, read back from which channel group spiked in its slot."""
    fired = np.isfinite(spike_times)
    values = []
    for k in range(2):
        zero = fired[:, :m, k].all(axis=1) & ~fired[:, m:, k].any(axis=1)
        one = fired[:, m:2 * m, k].all(axis=1) & ~fired[:, :m, k].any(axis=1) & ~fired[:, 2 * m:, k].any(axis=1)
        assert np.all(zero ^ one), "each input event must drive exactly one value group"
        values.append(one.astype(np.int64))
    return np.stack(values, axis=1)


def test_shapes_and_dtypes(trials):
    spikes, labels, cues = trials
    assert spikes.shape == (400, 9, 3) and spikes.dtype == np.float64
    assert labels.shape == (400,) and labels.dtype == np.int64
    assert cues.shape == (400,) and cues.dtype == np.float64


def test_labels_are_xor_of_the_values(trials):
    spikes, labels, _ = trials
    values = _values(spikes)
    np.testing.assert_array_equal(labels, values[:, 0] ^ values[:, 1])
    assert 0.4 < labels.mean() < 0.6 and 0.4 < values.mean() < 0.6
    # the cue drives only the cue channels, in the last slot; nine spikes per trial
    assert np.isfinite(spikes[:, 6:, 2]).all() and not np.isfinite(spikes[:, :6, 2]).any()
    assert not np.isfinite(spikes[:, 6:, :2]).any()
    np.testing.assert_array_equal(np.isfinite(spikes).sum(axis=(1, 2)), 9)


def test_timing(trials):
    spikes, _, cues = trials
    jitter = 0.5
    finite = spikes[np.isfinite(spikes)]
    assert finite.min() >= 0.0 and finite.max() < 30.0
    first = np.where(np.isfinite(spikes[:, :6, 0]), spikes[:, :6, 0], np.nan)
    second = np.where(np.isfinite(spikes[:, :6, 1]), spikes[:, :6, 1], np.nan)
    assert np.all(np.abs(np.nanmax(first, 1) - 1.0) <= jitter) and np.all(np.abs(np.nanmin(first, 1) - 1.0) <= jitter)
    lo, hi = np.nanmin(second, 1), np.nanmax(second, 1)
    assert np.all(hi - lo <= 2 * jitter) and np.all(lo >= 2.0 - jitter) and np.all(hi <= 10.0 + jitter)
    assert np.all(np.abs(spikes[:, 6:, 2] - cues[:, None]) <= jitter)
    # the cue comes at least 5 after the second input (whose spikes lie within jitter of it)
    assert np.all(cues - (hi - jitter) >= 5.0 - 1e-12) and np.all(cues <= 25.0)
    assert np.ptp(cues) > 10.0  # spread over its window, not fixed


def test_jitter_is_clipped_into_the_trial():
    spikes, _, _ = delayed_xor(200, 0, t_max=6.0, first_time=0.0, second_window=(0.5, 1.0),
                               cue_window=(0.5, 6.0 - 1e-9), jitter=1.0)
    finite = spikes[np.isfinite(spikes)]
    assert finite.min() == 0.0 and finite.max() < 6.0


def test_seeded_reproducibility():
    a = delayed_xor(50, 3)
    b = delayed_xor(50, 3)
    c = delayed_xor(50, 4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_standard_splits_are_distinct():
    assert (XOR_TRAIN["size"], XOR_VALIDATION["size"], XOR_TEST["size"]) == (5000, 1000, 1000)
    assert len({XOR_TRAIN["seed"], XOR_VALIDATION["seed"], XOR_TEST["seed"]}) == 3


def test_spikes_per_event_sets_the_channel_groups():
    spikes, labels, _ = delayed_xor(30, 1, spikes_per_event=2)
    assert spikes.shape == (30, 6, 3)
    values = _values(spikes, m=2)
    np.testing.assert_array_equal(labels, values[:, 0] ^ values[:, 1])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"size": -1}, "size"),
        ({"seed": 1.5}, "seed"),
        ({"spikes_per_event": 0}, "spikes_per_event"),
        ({"jitter": -0.1}, "jitter"),
        ({"first_time": 2.0}, "first_time"),
        ({"second_window": (10.0, 2.0)}, "second_window"),
        ({"second_window": (2.0,)}, "second_window"),
        ({"cue_window": (20.0, 25.0)}, "cue_window"),
        ({"cue_window": (5.0, 30.0)}, "cue_window"),
        ({"t_max": float("nan")}, "t_max"),
    ],
)
def test_bad_arguments(kwargs, name):
    args = {"size": 4, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=f"`{name}"):
        delayed_xor(**args)
