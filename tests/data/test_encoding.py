"""Latency encoding: brighter inputs spike earlier, zeros stay silent, out-of-range values raise."""

import numpy as np
import pytest

from eventax.data import latency_encode


def test_hand_built_values():
    times = latency_encode([[1.0, 0.5, 0.0, 0.25]], t_max=10.0)
    assert times.shape == (1, 4, 1) and times.dtype == np.float64
    np.testing.assert_array_equal(times[0, :, 0], [0.0, 5.0, np.inf, 7.5])


def test_window_and_zero_handling():
    values = np.array([1.0, 0.5, 0.0])
    np.testing.assert_array_equal(latency_encode(values, 10.0, t_min=2.0)[:, 0], [2.0, 6.0, np.inf])
    np.testing.assert_array_equal(latency_encode(values, 10.0, zero_is_silent=False)[:, 0], [0.0, 5.0, 10.0])


def test_brighter_is_earlier():
    values = np.linspace(0.01, 1.0, 50)
    times = latency_encode(values, 30.0)[:, 0]
    assert np.all(np.diff(times) < 0)


def test_uint8_images_are_scaled_and_flattened():
    images = np.zeros((2, 3, 3), np.uint8)
    images[0, 0, 0], images[0, 2, 1], images[1, 1, 2] = 255, 51, 102
    times = latency_encode(images, t_max=10.0)
    assert times.shape == (2, 9, 1)
    assert times[0, 0, 0] == 0.0
    np.testing.assert_allclose([times[0, 7, 0], times[1, 5, 0]], [8.0, 6.0])
    assert np.isfinite(times).sum() == 3
    assert latency_encode(images[0], 10.0).shape == (9, 1)


@pytest.mark.parametrize("bad", [1.5, -0.1, np.nan])
def test_values_outside_unit_interval_raise(bad):
    with pytest.raises(ValueError, match="`values`"):
        latency_encode([0.2, bad], 10.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="`t_max`"):
        latency_encode([0.5], 1.0, t_min=1.0)
    with pytest.raises(ValueError, match="`t_max`"):
        latency_encode([0.5], np.inf)
    with pytest.raises(ValueError, match="`values`"):
        latency_encode(np.zeros(5, np.uint8), 10.0)
    with pytest.raises(ValueError, match="`values`"):
        latency_encode(0.5, 10.0)
