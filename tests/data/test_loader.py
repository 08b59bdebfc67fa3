"""Batches: every epoch is a seeded permutation, reproducible and resumable."""

import jax
import numpy as np
import pytest

from eventax.data import Batches

N = 23


@pytest.fixture(scope="module")
def data():
    x = np.arange(N * 2, dtype=np.float32).reshape(N, 2)
    return x, np.arange(N)


def _ys(batches, e, start=0):
    return [np.asarray(y) for _, y in batches.epoch(e, start)]


def test_epoch_is_a_permutation_in_the_documented_order(data):
    x, y = data
    batches = Batches(x, y, batch_size=5, seed=3, drop_last=False)
    assert batches.n_batches == len(batches) == 5
    got = [(np.asarray(xb), np.asarray(yb)) for xb, yb in batches.epoch(2)]
    assert [len(yb) for _, yb in got] == [5, 5, 5, 5, 3]
    order = np.concatenate([yb for _, yb in got])
    np.testing.assert_array_equal(np.sort(order), y)
    expected = jax.random.permutation(jax.random.fold_in(jax.random.PRNGKey(3), 2), N)
    np.testing.assert_array_equal(order, expected)
    np.testing.assert_array_equal(np.concatenate([xb for xb, _ in got]), x[order])


def test_drop_last_keeps_only_full_batches(data):
    batches = Batches(*data, batch_size=5, seed=0)
    assert batches.n_batches == 4
    ys = _ys(batches, 0)
    assert [len(b) for b in ys] == [5] * 4
    assert len(np.unique(np.concatenate(ys))) == 20


def test_same_seed_and_epoch_same_order_and_resume(data):
    a, b = Batches(*data, 4, 11), Batches(*data, 4, 11)
    np.testing.assert_array_equal(np.concatenate(_ys(a, 5)), np.concatenate(_ys(b, 5)))
    resumed = _ys(b, 5, start=2)
    np.testing.assert_array_equal(np.concatenate(resumed), np.concatenate(_ys(a, 5)[2:]))
    assert not np.array_equal(a.order(5), a.order(6))
    assert not np.array_equal(a.order(5), Batches(*data, 4, 12).order(5))


def test_pytree_targets(data):
    x, y = data
    batches = Batches(x, (y, 2 * y), 6, 0)
    for _, (labels, doubled) in batches.epoch(0):
        np.testing.assert_array_equal(np.asarray(doubled), 2 * np.asarray(labels))


@pytest.mark.parametrize("size", [0, N + 1, 2.5, True])
def test_batch_size_validation(data, size):
    with pytest.raises(ValueError, match="`batch_size`"):
        Batches(*data, size, 0)


def test_mismatched_lengths_and_bad_epoch(data):
    x, y = data
    with pytest.raises(ValueError, match="leading sample axis"):
        Batches(x, y[:-1], 4, 0)
    with pytest.raises(ValueError, match="`e`"):
        Batches(x, y, 4, 0).order(-1)
