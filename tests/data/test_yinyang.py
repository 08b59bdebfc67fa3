"""The Yin-Yang generator reproduces the published splits; the spike encoding is as documented."""

import numpy as np
import pytest

from eventax.data import TEST, TRAIN, VALIDATION, yin_yang, yin_yang_class, yin_yang_spikes


@pytest.fixture(scope="module")
def train():
    return yin_yang(**TRAIN)


def test_train_sanity_figures(train):
    features, labels = train
    assert features.shape == (5000, 4) and features.dtype == np.float64
    assert labels.shape == (5000,) and np.issubdtype(labels.dtype, np.integer)
    np.testing.assert_array_equal(np.bincount(labels), [1681, 1702, 1617])
    np.testing.assert_allclose(features[0, :2], [0.680308, 0.450499], atol=1e-6)
    assert labels[0] == 2


def test_defaults_are_the_training_split(train):
    features, labels = yin_yang()
    np.testing.assert_array_equal(features, train[0])
    np.testing.assert_array_equal(labels, train[1])


def test_features_are_mirrored_points_in_the_circle(train):
    features, labels = train
    x, y = features[:, 0], features[:, 1]
    np.testing.assert_array_equal(features[:, 2], 1.0 - x)
    np.testing.assert_array_equal(features[:, 3], 1.0 - y)
    assert np.all(np.hypot(x - 0.5, y - 0.5) <= 0.5)
    assert [yin_yang_class(a, b) for a, b in features[:50, :2]] == labels[:50].tolist()


def test_validation_and_test_splits_exist_and_differ(train):
    val_x, val_y = yin_yang(**VALIDATION)
    test_x, test_y = yin_yang(**TEST)
    assert val_x.shape == test_x.shape == (1000, 4)
    assert val_y.shape == test_y.shape == (1000,)
    assert not np.array_equal(val_x, test_x)
    assert not np.array_equal(val_x, train[0][:1000])
    assert not np.array_equal(test_x, train[0][:1000])
    for labels in (val_y, test_y):
        assert set(np.unique(labels)) == {0, 1, 2}


def test_same_seed_same_data():
    a, la = yin_yang(size=20, seed=3)
    b, lb = yin_yang(size=20, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)


def test_spike_encoding_shape_and_values(train):
    features = train[0][:7]
    spikes = yin_yang_spikes(features, t_max=30.0)
    assert spikes.shape == (7, 5, 1)
    np.testing.assert_allclose(spikes[:, :4, 0], features * 30.0)
    np.testing.assert_array_equal(spikes[:, 4, 0], 0.0)
    assert np.all((spikes >= 0.0) & (spikes <= 30.0))
    np.testing.assert_allclose(yin_yang_spikes(features, t_max=2.0), spikes / 15.0)


def test_spike_encoding_rejects_wrong_shape():
    with pytest.raises(ValueError, match="shape"):
        yin_yang_spikes(np.zeros((3, 5)))
