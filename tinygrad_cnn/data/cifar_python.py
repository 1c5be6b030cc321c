"""CIFAR-10's Python version (``cifar-10-batches-py``, what torchvision downloads), read safely.

Its batches are pickled dictionaries: ``b"data"``, a uint8 array of shape (N, 3072) (each row one
image's red, green and blue planes of 32x32), and ``b"labels"``, a list of N ints. Unpickling an
arbitrary file can run any code it names, so these files are read with an unpickler that builds
only what such a batch holds (dicts, lists, bytes, numbers and NumPy arrays of plain dtypes) and
refuses every other object with a ``DatasetError``. A file larger than the official batch is
refused before it is read.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from .errors import DatasetError

FOLDER = "cifar-10-batches-py"
SPLIT_FILES = {True: tuple(f"data_batch_{number}" for number in range(1, 6)), False: ("test_batch",)}
META_FILE = "batches.meta"
MAX_BATCH_BYTES = 32 << 20  # an official batch is 31,035,704 bytes
MAX_META_BYTES = 1 << 16

# What a CIFAR batch needs to be rebuilt: NumPy's array and dtype constructors (their module moved
# from numpy.core to numpy._core in NumPy 2), and the codec Python 2 pickles use for byte strings.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def __init__(self, file, path: Path):
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise DatasetError(f"{self.path} asks to build {module}.{name}, which a CIFAR-10 batch never holds: "
                               "not read (a pickle can run code); use the official files")
        return super().find_class(module, name)


def _unpickle(path: Path, limit: int) -> dict:
    size = path.stat().st_size
    if size > limit:
        raise DatasetError(f"{path} has {size:,} bytes, more than a CIFAR-10 batch ({limit:,} at most): not read")
    try:
        with open(path, "rb") as f:
            entry = _BatchUnpickler(io.BytesIO(f.read()), path).load()
    except DatasetError:
        raise
    except Exception as error:  # noqa: BLE001 - any damage in the file is reported the same way
        raise DatasetError(f"{path} is not a readable CIFAR-10 batch ({type(error).__name__}: {error})") from None
    if not isinstance(entry, dict):
        raise DatasetError(f"{path} holds a {type(entry).__name__}, not a CIFAR-10 batch dictionary")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in entry.items()}


def read_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 32, 32, 3) and labels int64 (N,) of one batch file."""
    entry = _unpickle(path, MAX_BATCH_BYTES)
    images, labels = entry.get("data"), entry.get("labels")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3072:
        raise DatasetError(f"{path}: 'data' must be a uint8 array of shape (N, 3072)")
    labels = np.asarray(labels)
    if labels.shape != (len(images),) or labels.dtype.kind not in "iu" or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise DatasetError(f"{path}: 'labels' must be {len(images)} class numbers from 0 to 9")
    return images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype(np.int64)


def read_python_split(folder: Path, train: bool) -> tuple[np.ndarray, np.ndarray, list]:
    """The training or test split of a ``cifar-10-batches-py`` folder, with the class names."""
    missing = [name for name in SPLIT_FILES[train] if not (folder / name).is_file()]
    if missing:
        raise DatasetError(f"{folder} lacks {', '.join(missing)} of CIFAR-10's Python version")
    parts = [read_python_batch(folder / name) for name in SPLIT_FILES[train]]
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    if (folder / META_FILE).is_file():
        names = _unpickle(folder / META_FILE, MAX_META_BYTES).get("label_names")
        if isinstance(names, list) and len(names) == 10:
            classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), classes
