"""Datasets held in memory, and the DataLoader that cuts a dataset into batches of Tensors.

A dataset is anything with ``len(dataset)`` and ``dataset[i]`` returning a tuple of arrays,
for example ``(image, label)``. Datasets that keep every sample in NumPy arrays say so by
exposing them as ``dataset.arrays``; the DataLoader then builds a batch with one
fancy-indexing operation per array instead of a Python loop over samples, which is what
makes an epoch over tens of thousands of images cheap. ``TensorDataset``, ``ImageDataset``
and every built-in dataset (MNIST, Fashion-MNIST, CIFAR-10) are array-backed.
"""
import math
from abc import ABC, abstractmethod

import numpy as np

from ..random import get_rng


def as_array(value) -> np.ndarray:
    """The NumPy array behind ``value``: arrays pass through, our Tensors give their ``.data``."""
    # Checked first because ndarray has a `.data` attribute too (a raw memory buffer).
    if isinstance(value, np.ndarray):
        return value
    data = getattr(value, "data", None)
    if isinstance(data, np.ndarray):
        return data
    return np.asarray(value)


class Dataset(ABC):
    """A sized collection of samples; ``dataset[i]`` is a tuple such as ``(image, label)``."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of samples."""

    @abstractmethod
    def __getitem__(self, index: int) -> tuple:
        """Sample number ``index`` as a tuple of arrays or scalars."""


class TensorDataset(Dataset):
    """Samples are the rows of equally long arrays: ``dataset[i] == (a[i], b[i], ...)``.

    Accepts NumPy arrays or Tensors (anything with an ndarray ``.data``); stores the arrays,
    without copying, in ``self.arrays``.
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = tuple(as_array(array) for array in arrays)
        if any(array.ndim == 0 for array in self.arrays):
            raise ValueError("TensorDataset arrays need a first (sample) dimension, got a scalar")
        lengths = [len(array) for array in self.arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"TensorDataset arrays must all have the same length, got lengths {lengths}")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: int) -> tuple:
        return tuple(array[index] for array in self.arrays)


class ImageDataset(TensorDataset):
    """Labelled images in memory, the common shape of every built-in dataset.

    ``images``: float32 (N, C, H, W) with values in [0, 1] (uint8 input is divided by 255).
    ``labels``: int64 (N,), each an index into ``classes`` (the class names).
    ``dataset[i]`` is ``(image (C, H, W), label)``.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
        if images.dtype == np.uint8:
            # A C-ordered copy even if `images` is a transposed view: later gathers and
            # convolutions are faster on contiguous memory.
            images = np.ascontiguousarray(images, dtype=np.float32)
            images /= 255
        elif images.dtype != np.float32:
            raise ValueError(f"images must be uint8 or float32, got {images.dtype}")
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} of shape {labels.shape}")
        self.classes = list(classes)
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError(f"labels must lie in [0, {len(self.classes)}), "
                             f"got values from {labels.min()} to {labels.max()}")
        super().__init__(images, labels.astype(np.int64))

    @property
    def images(self) -> np.ndarray:
        return self.arrays[0]

    def subset(self, index) -> "ImageDataset":
        """The images and labels selected by ``index`` (a slice or integer array), same classes."""
        return ImageDataset(self.images[index], self.labels[index], self.classes)

    @property
    def labels(self) -> np.ndarray:
        return self.arrays[1]

    def __repr__(self) -> str:
        channels, height, width = self.images.shape[1:]
        return (f"{type(self).__name__}({len(self)} images of {channels}x{height}x{width}, "
                f"{len(self.classes)} classes)")


class DataLoader:
    """Iterate over a dataset in batches: each step yields a tuple of Tensors, one per field.

    For image datasets a batch is ``(images, labels)``: float32 (B, C, H, W) and int64 (B,).
    ``len(loader)`` is the number of batches per epoch; the last one is smaller unless
    ``drop_last`` is set, in which case it is skipped.

    Shuffling draws a new permutation every epoch. With ``seed`` the loader owns a generator
    seeded once, so its sequence of epochs is the same on every run whatever else draws
    random numbers. Without ``seed`` the order comes from the library generator
    (``tinygrad_cnn.random.get_rng()``), so ``manual_seed`` makes a whole run repeat.

    A dataset exposing ``arrays`` is batched by indexing those arrays directly, so its
    ``__getitem__`` is not called; any other dataset is read sample by sample and stacked.

    ``transform`` (see ``transforms.py``) is applied to each batch of the first field
    (the images) after it is gathered, so augmentation runs vectorised on the whole batch.
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None, transform=None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.transform = transform
        self._own_rng = None if seed is None else np.random.default_rng(seed)

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.dataset) // self.batch_size
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self):
        # Imported here so that the data package can be used (and tested) on its own.
        from ..tensor_class import Tensor

        order = self._epoch_order()
        for batch_number in range(len(self)):
            indices = order[batch_number * self.batch_size:(batch_number + 1) * self.batch_size]
            fields = self._gather(indices)
            if self.transform is not None:
                fields = (self.transform(fields[0]),) + fields[1:]
            yield tuple(Tensor(field) for field in fields)

    def _epoch_order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.dataset))
        # The library generator is looked up every epoch (not stored) so that a
        # manual_seed() called after the loader was built still takes effect.
        rng = self._own_rng if self._own_rng is not None else get_rng()
        return rng.permutation(len(self.dataset))

    def _gather(self, indices: np.ndarray) -> tuple:
        arrays = getattr(self.dataset, "arrays", None)
        if arrays is not None:
            return tuple(array[indices] for array in arrays)
        samples = [self.dataset[int(index)] for index in indices]
        return tuple(np.stack([as_array(value) for value in field]) for field in zip(*samples))
