"""Randman: seeded random smooth manifolds, checked against an independent evaluation of the
documented formula, with splits on shared manifolds and separable classes."""

import numpy as np
import pytest

from eventax.data import randman, randman_at, randman_splits


@pytest.fixture(scope="module")
def task():
    return randman()


def _reference(coords, labels, *, n_classes, n_units, alpha, seed, n_fourier=10, grid=None):
    """The module docstring's formula, evaluated directly (normalised over `grid`),
    plus the bound on `|d v / d x_d|` from the coefficients, per unit."""
    dim = coords.shape[1]
    a, b, c = np.random.default_rng([0, seed]).random((3, n_classes, n_units, dim, n_fourier))
    k = np.arange(1, n_fourier + 1)

    def raw(x, cls):  # x (N, D), cls (N,) -> (N, U)
        arg = 2 * np.pi * (k * b[cls] * x[:, None, :, None] + c[cls])
        return np.sum(a[cls] / k**alpha * np.sin(arg), axis=(2, 3))

    on_grid = np.concatenate([raw(grid, np.full(len(grid), cls)) for cls in range(n_classes)])
    lo, hi = on_grid.min(axis=0), on_grid.max(axis=0)
    slope = (2 * np.pi * np.sum(a * k * b / k**alpha, axis=3) / (hi - lo)[:, None]).max(axis=(0, 2))
    return (raw(coords, labels) - lo) / (hi - lo), slope


def test_shapes_dtypes_and_range(task):
    times, labels = task
    assert times.shape == (1000, 100, 1) and times.dtype == np.float64
    assert labels.shape == (1000,) and labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(labels), np.full(10, 100))
    assert not np.all(np.diff(labels) >= 0), "shuffled"
    times, labels = randman(n_classes=3, n_units=7, n_samples_per_class=40, duration=30.0, shuffle=False)
    assert times.shape == (120, 7, 1) and np.all((times >= 0.0) & (times <= 30.0))
    np.testing.assert_array_equal(labels, np.repeat([0, 1, 2], 40))


def test_matches_the_formula_in_one_dimension():
    grid = np.linspace(0, 1, 20001)[:, None]
    coords = np.random.default_rng(5).random((300, 1))
    labels = np.arange(300) % 3
    kwargs = dict(n_classes=3, n_units=6, alpha=1.5, seed=4)
    expected, slope = _reference(coords, labels, grid=grid, **kwargs)
    np.testing.assert_allclose(randman_at(coords, labels, **kwargs, duration=2.0)[:, :, 0], 2 * expected,
                               atol=1e-6)
    # Each unit spans [0, 1] over all classes, and no unit moves faster than its bound.
    line = np.linspace(0, 1, 2001)[:, None]
    along = np.stack([randman_at(line, np.full(2001, cls), **kwargs)[:, :, 0] for cls in range(3)])
    np.testing.assert_allclose(along.min(axis=(0, 1)), 0.0, atol=1e-5)
    np.testing.assert_allclose(along.max(axis=(0, 1)), 1.0, atol=1e-5)
    assert np.all(np.abs(np.diff(along, axis=1)).max(axis=(0, 1)) <= slope * 1e-3)


def test_matches_the_formula_in_two_dimensions():
    g = np.linspace(0, 1, 301)
    grid = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    coords = np.random.default_rng(6).random((50, 2))
    labels = np.arange(50) % 2
    kwargs = dict(n_classes=2, n_units=4, alpha=2.0, seed=9)
    expected, _ = _reference(coords, labels, grid=grid, **kwargs)
    np.testing.assert_allclose(randman_at(coords, labels, **kwargs)[:, :, 0], expected, atol=1e-3)


def test_samples_follow_the_documented_coordinates():
    kwargs = dict(n_classes=4, n_units=10, dim_manifold=2, seed=3)
    times, labels = randman(**kwargs, n_samples_per_class=25, shuffle=False, sample_seed=11)
    coords = np.concatenate([np.random.default_rng([1, 11, cls]).random((25, 2)) for cls in range(4)])
    kwargs.pop("dim_manifold")
    np.testing.assert_array_equal(times, randman_at(coords, labels, **kwargs))


def test_seeds():
    kwargs = dict(n_classes=4, n_units=20, n_samples_per_class=5)
    a, la = randman(**kwargs, seed=2)
    b, lb = randman(**kwargs, seed=2)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.allclose(a, randman(**kwargs, seed=3)[0])
    assert not np.allclose(a, randman(**kwargs, seed=2, sample_seed=7)[0])
    np.testing.assert_array_equal(a, randman(**kwargs, seed=2, sample_seed=3)[0])


def test_manifolds_do_not_depend_on_the_samples():
    """A class's first samples are the same points with the same spike times however many are
    drawn: neither the functions nor the normalisation may depend on the sample set."""
    few, few_labels = randman(n_samples_per_class=3, shuffle=False)
    many, many_labels = randman(n_samples_per_class=200, shuffle=False)
    for cls in range(10):
        np.testing.assert_array_equal(few[few_labels == cls], many[many_labels == cls][:3])
    shuffled, labels = randman(n_samples_per_class=200)
    order = np.lexsort(shuffled[:, :3, 0].T)
    np.testing.assert_array_equal(shuffled[order], many[np.lexsort(many[:, :3, 0].T)])


def test_splits_share_the_manifolds():
    train, val, test = randman_splits((20, 5, 5), n_classes=3, n_units=8, seed=1)
    assert train[0].shape == (60, 8, 1) and val[0].shape == test[0].shape == (15, 8, 1)
    for split, sample_seed in ((train, 2), (val, 3), (test, 4)):
        expected = randman(n_classes=3, n_units=8, n_samples_per_class=len(split[1]) // 3, seed=1,
                           sample_seed=sample_seed)
        np.testing.assert_array_equal(split[0], expected[0])
        np.testing.assert_array_equal(split[1], expected[1])
    assert not np.allclose(val[0], test[0])


def test_higher_alpha_is_smoother():
    line = np.linspace(0, 1, 501)[:, None]
    roughness = [np.abs(np.diff(randman_at(line, np.zeros(501, int), n_classes=1, n_units=30, alpha=alpha),
                                2, axis=0)).mean() for alpha in (0.5, 1.0, 2.0, 4.0)]
    assert np.all(np.diff(roughness) < 0), roughness


@pytest.mark.parametrize("seed", [0, 1])
def test_classes_are_separable(seed):
    """Nearest class mean, fitted on one split and scored on another: chance is 0.1; it
    scores about 0.97 on the standard task."""
    (x_train, y_train), (x_test, y_test) = randman_splits((100, 100), seed=seed)
    means = np.stack([x_train[y_train == cls, :, 0].mean(axis=0) for cls in range(10)])
    predicted = np.argmin(((x_test[:, None, :, 0] - means) ** 2).sum(axis=-1), axis=1)
    assert np.mean(predicted == y_test) > 0.8


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_classes": 0}, "n_classes"),
        ({"n_units": 2.0}, "n_units"),
        ({"dim_manifold": 0}, "dim_manifold"),
        ({"n_samples_per_class": 0}, "n_samples_per_class"),
        ({"n_fourier": 0}, "n_fourier"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": np.inf}, "alpha"),
        ({"duration": -1.0}, "duration"),
        ({"seed": -1}, "seed"),
        ({"seed": True}, "seed"),
        ({"sample_seed": 1.5}, "sample_seed"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        randman(**kwargs)


def test_bad_probe_and_split_arguments():
    with pytest.raises(ValueError, match="`coords`"):
        randman_at([0.5, 0.2], [0, 1])
    with pytest.raises(ValueError, match="`coords`"):
        randman_at([[1.5]], [0])
    with pytest.raises(ValueError, match="`labels`"):
        randman_at([[0.5]], [10])
    with pytest.raises(ValueError, match="`labels`"):
        randman_at([[0.5]], [0, 1])
    with pytest.raises(ValueError, match="`sizes`"):
        randman_splits(())
    with pytest.raises(ValueError, match="`sizes\\[1\\]`"):
        randman_splits((10, 0))
