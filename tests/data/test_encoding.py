"""Spike encodings on hand-built inputs with known answers: latency (brighter is earlier),
Bernoulli rate (empirical rate, grid placement) and send-on-delta (steps, ramps, off-spikes)."""

import jax
import numpy as np
import pytest

import eventax as ev
from eventax.data import delta_encode, latency_encode, rate_encode


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


# --------------------------------------------------------------------------- rate_encode


def test_rate_extremes_and_grid():
    times = rate_encode([[0.0, 1.0]], n_steps=5, dt=0.5, t0=2.0)
    assert times.shape == (1, 2, 5) and times.dtype == np.float64
    assert np.all(np.isinf(times[0, 0]))
    np.testing.assert_array_equal(times[0, 1], [2.5, 3.0, 3.5, 4.0, 4.5])
    assert np.all(np.isinf(rate_encode([1.0, 0.7], 50, 1.0, max_prob=0.0)))


def test_rate_is_seeded_and_compact():
    values = np.linspace(0.0, 1.0, 30)
    a = rate_encode(values, 40, 0.1, max_prob=0.5, seed=4)
    np.testing.assert_array_equal(a, rate_encode(values, 40, 0.1, max_prob=0.5, seed=4))
    assert not np.array_equal(a, rate_encode(values, 40, 0.1, max_prob=0.5, seed=5))
    count = np.isfinite(a).sum(axis=-1)
    assert np.all(np.isfinite(a) == (np.arange(40) < count[:, None])), "spikes first, then inf"
    both = np.isfinite(a[:, 1:])
    assert np.all(a[:, 1:][both] > a[:, :-1][both]), "in time order"
    bins = a[np.isfinite(a)] / 0.1
    np.testing.assert_allclose(bins, np.round(bins), atol=1e-9)


@pytest.mark.parametrize("value, max_prob", [(0.1, 1.0), (0.5, 0.5), (0.9, 0.8), (1.0, 0.3)])
def test_rate_matches_the_probability(value, max_prob):
    """Spike count over 20 000 Bernoulli bins within 5 binomial standard deviations."""
    n = 20 * 1000
    counts = np.isfinite(rate_encode(np.full(20, value), 1000, 1.0, max_prob=max_prob, seed=1)).sum()
    p = value * max_prob
    assert abs(counts - n * p) <= 5 * np.sqrt(n * p * (1 - p))


def test_rate_spikes_land_in_their_fixed_step_bin():
    """The fixed-step mode counts the spike drawn for bin k in its step k (inputs in (t_k, t_{k+1}])."""
    dt, n_steps = 0.25, 20
    times = rate_encode([0.3, 0.7, 1.0], n_steps, dt, seed=3)
    net = ev.FFEvNN([2], 3, ev.LIF, n_steps * dt, key=jax.random.PRNGKey(0))
    counts = np.asarray(net.fixed_step(dt).input_counts(times))
    fired = np.zeros((3, n_steps))
    for channel, t in zip(*np.nonzero(np.isfinite(times))):
        fired[channel, round(times[channel, t] / dt) - 1] += 1
    np.testing.assert_array_equal(counts.T, fired)
    assert fired[2].sum() == n_steps


def test_rate_reads_images_like_latency():
    images = np.zeros((2, 3, 3), np.uint8)
    images[0, 1, 1] = 255
    times = rate_encode(images, 4, 1.0)
    assert times.shape == (2, 9, 4)
    assert np.isfinite(times).sum() == 4 and np.all(np.isfinite(times[0, 4]))


def test_rate_bad_arguments():
    for kwargs, name in [({"n_steps": 0}, "n_steps"), ({"n_steps": 2.0}, "n_steps"), ({"dt": 0.0}, "dt"),
                         ({"dt": np.nan}, "dt"), ({"max_prob": 1.5}, "max_prob"), ({"seed": -1}, "seed"),
                         ({"t0": np.inf}, "t0"), ({"values": [0.5, 1.2]}, "values")]:
        args = {"values": [0.5], "n_steps": 3, "dt": 1.0} | kwargs
        with pytest.raises(ValueError, match=f"`{name}`"):
            rate_encode(args.pop("values"), args.pop("n_steps"), args.pop("dt"), **args)


# --------------------------------------------------------------------------- delta_encode


def test_delta_step_up_and_down():
    t = np.arange(6.0)
    signal = np.array([[0.0, 0.0, 1.0, 1.0, 1.0, 1.0],    # up-step at t=2
                       [2.0, 2.0, 2.0, 0.5, 0.5, 0.5]])   # down-step at t=3
    times = delta_encode(signal, t, threshold=0.5)
    assert times.shape == (4, 1) and times.dtype == np.float64
    np.testing.assert_array_equal(times[:, 0], [2.0, np.inf, np.inf, 3.0])
    np.testing.assert_array_equal(delta_encode(signal, t, 0.5, off_spikes=False)[:, 0], [2.0, np.inf])


def test_delta_ramp_spikes_every_threshold_over_slope():
    t = np.arange(41) * 0.25  # slope 2, threshold 1: a spike every 0.5
    times = delta_encode((2.0 * t)[None], t, threshold=1.0)
    assert times.shape == (2, 20)
    np.testing.assert_array_equal(times[0], 0.5 * np.arange(1, 21))
    assert np.all(np.isinf(times[1]))
    down = delta_encode((-2.0 * t)[None], t, threshold=1.0)
    np.testing.assert_array_equal(down[1], 0.5 * np.arange(1, 21))


def test_delta_one_spike_per_sample_and_reference_moves_to_the_sample():
    t = np.arange(4.0)
    times = delta_encode([[0.0, 5.0, 5.9, 6.0]], t, threshold=1.0)  # jump of 5 thresholds: one spike
    np.testing.assert_array_equal(times, [[1.0, 3.0], [np.inf, np.inf]])


def test_delta_small_changes_are_silent_and_batches_pad():
    rng = np.random.default_rng(0)
    signal = rng.uniform(0.0, 0.4, size=(3, 2, 50))
    times = delta_encode(signal, np.arange(50.0), threshold=0.5)
    assert times.shape == (3, 4, 1) and np.all(np.isinf(times))
    signal[1, 0, 10:] += 1.0
    times = delta_encode(signal, np.arange(50.0), threshold=0.5)
    assert times.shape == (3, 4, 1) and np.isfinite(times).sum() == 1 and times[1, 0, 0] == 10.0


def test_delta_bad_arguments():
    t = np.arange(3.0)
    with pytest.raises(ValueError, match="`signal`"):
        delta_encode([0.0, 1.0, 2.0], t, 0.5)
    with pytest.raises(ValueError, match="`signal`"):
        delta_encode([[0.0, np.nan, 2.0]], t, 0.5)
    with pytest.raises(ValueError, match="`times`"):
        delta_encode([[0.0, 1.0, 2.0]], t[:2], 0.5)
    with pytest.raises(ValueError, match="`times`"):
        delta_encode([[0.0, 1.0, 2.0]], [0.0, 2.0, 1.0], 0.5)
    for bad in (0.0, -1.0, np.inf):
        with pytest.raises(ValueError, match="`threshold`"):
            delta_encode([[0.0, 1.0, 2.0]], t, bad)
