"""Image transforms that work on a whole batch at once.

Every transform takes images shaped (N, C, H, W) and returns a new array in the same
layout, computed with vectorised NumPy (no loop over images); a single image (C, H, W) is
accepted too and treated as a batch of one. Pass a transform to
``DataLoader(..., transform=...)`` and it runs on each batch of images as it is gathered.

Random transforms make one independent choice per image of the batch (flip it or not,
where to crop it). They draw from the generator given as ``rng``, or else from the library
generator at call time, so ``tinygrad_cnn.random.manual_seed`` makes augmentation repeat.

The usual CIFAR-10 training augmentation:

    Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), Normalize(mean, std)])
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..random import get_rng


class Transform:
    """Base class: a subclass implements ``apply`` for an (N, C, H, W) batch."""

    def __call__(self, images) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim == 3:
            return self.apply(images[None])[0]
        if images.ndim != 4:
            raise ValueError(f"{type(self).__name__} expects (N, C, H, W) or (C, H, W) images, "
                             f"got shape {images.shape}")
        return self.apply(images)

    def apply(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _generator(rng: np.random.Generator | None) -> np.random.Generator:
    # Looked up at call time, not at construction, so manual_seed() after building still counts.
    return rng if rng is not None else get_rng()


class Compose:
    """Apply transforms one after the other."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, images) -> np.ndarray:
        for transform in self.transforms:
            images = transform(images)
        return images


class ToFloat(Transform):
    """uint8 pixels in [0, 255] to float32 in [0, 1] (or another ``scale``)."""

    def __init__(self, scale: float = 1 / 255):
        self.scale = np.float32(scale)

    def apply(self, batch: np.ndarray) -> np.ndarray:
        return batch.astype(np.float32) * self.scale


class Normalize(Transform):
    """Per channel: ``(image - mean[c]) / std[c]``; ``mean`` and ``std`` have one value per channel
    (or a single value for all channels)."""

    def __init__(self, mean, std):
        # Shaped (C, 1, 1) so they broadcast over (N, C, H, W) along the channel axis.
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
        if np.any(self.std <= 0):
            raise ValueError(f"std must be positive, got {std}")

    def apply(self, batch: np.ndarray) -> np.ndarray:
        channels = batch.shape[1]
        if len(self.mean) not in (1, channels) or len(self.std) not in (1, channels):
            raise ValueError(f"Normalize has {len(self.mean)} means and {len(self.std)} stds "
                             f"for images with {channels} channels")
        return ((batch - self.mean) / self.std).astype(np.float32)


class RandomHorizontalFlip(Transform):
    """Mirror each image left to right with probability ``p``."""

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None):
        self.p = p
        self.rng = rng

    def apply(self, batch: np.ndarray) -> np.ndarray:
        flip = _generator(self.rng).random(len(batch)) < self.p
        flipped = batch.copy()
        flipped[flip] = batch[flip][..., ::-1]
        return flipped


class RandomCrop(Transform):
    """Cut a random ``size`` window out of each image, after zero-padding every side by ``padding``.

    ``size`` is an int (square) or ``(height, width)``. With ``padding=4`` and ``size=32`` on
    32x32 images this shifts each image by up to 4 pixels, filling the gap with zeros.
    """

    def __init__(self, size, padding: int = 0, rng: np.random.Generator | None = None):
        self.height, self.width = (size, size) if isinstance(size, int) else size
        self.padding = padding
        self.rng = rng

    def apply(self, batch: np.ndarray) -> np.ndarray:
        pad = self.padding
        padded = np.pad(batch, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        count, _, padded_height, padded_width = padded.shape
        if self.height > padded_height or self.width > padded_width:
            raise ValueError(f"crop {self.height}x{self.width} is larger than the padded "
                             f"images ({padded_height}x{padded_width})")
        rng = _generator(self.rng)
        tops = rng.integers(0, padded_height - self.height + 1, size=count)
        lefts = rng.integers(0, padded_width - self.width + 1, size=count)
        # Every possible crop of every image as a view, shape (N, C, rows, cols, height, width);
        # indexing picks crop (tops[n], lefts[n]) of image n, giving (N, C, height, width).
        crops = sliding_window_view(padded, (self.height, self.width), axis=(2, 3))
        return crops[np.arange(count), :, tops, lefts]
