"""``make_grid``: a batch of images tiled into one picture, as ``torchvision.utils.make_grid``."""
from __future__ import annotations

import math

import numpy as np

from ..tensor_class import Tensor


def _as_batch(tensor) -> np.ndarray:
    """(B, C, H, W) pixels from a Tensor or list of Tensors (C, H, W), a (C, H, W) or an (H, W) image;
    one channel becomes three, so that every grid is an RGB image (torchvision's rule)."""
    if isinstance(tensor, (list, tuple)):
        pixels = np.stack([t.data if isinstance(t, Tensor) else np.asarray(t) for t in tensor])
    else:
        pixels = tensor.data if isinstance(tensor, Tensor) else np.asarray(tensor)
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.ndim == 3:
        pixels = np.concatenate([pixels] * 3) if pixels.shape[0] == 1 else pixels
        pixels = pixels[None]
    if pixels.ndim != 4:
        raise ValueError(f"make_grid: expected images (B, C, H, W), (C, H, W) or (H, W), got shape {pixels.shape}")
    if pixels.shape[1] == 1:
        pixels = np.concatenate([pixels] * 3, axis=1)
    return pixels


def _scaled_to_unit(pixels: np.ndarray, value_range) -> np.ndarray:
    """Clamp to [low, high] (the given range, or the images' own min and max) and map it to [0, 1]."""
    low, high = (pixels.min(), pixels.max()) if value_range is None else value_range
    return (np.clip(pixels, low, high) - low) / max(high - low, 1e-5)


def make_grid(tensor, nrow: int = 8, padding: int = 2, normalize: bool = False, value_range=None,
              scale_each: bool = False, pad_value: float = 0.0) -> Tensor:
    """Tile B images into a grid of ``nrow`` per row (the last row may be partial), each surrounded
    by ``padding`` pixels of ``pad_value``; returns a Tensor (C, rows * (H + padding) + padding,
    nrow * (W + padding) + padding), single-channel images repeated to three channels.

    ``normalize`` maps ``value_range`` (default: the min and max of all the images, or of each
    image with ``scale_each``) to [0, 1], clamping outside it. A single image is returned without
    padding, as in torchvision.
    """
    if value_range is not None and not (isinstance(value_range, (tuple, list)) and len(value_range) == 2):
        raise ValueError(f"make_grid: value_range must be a (min, max) pair, got {value_range!r}")
    pixels = _as_batch(tensor)
    if normalize:
        pixels = pixels.astype(np.result_type(pixels.dtype, np.float32))
        if scale_each:
            pixels = np.stack([_scaled_to_unit(image, value_range) for image in pixels])
        else:
            pixels = _scaled_to_unit(pixels, value_range)
    if len(pixels) == 1:
        return Tensor(pixels[0].copy())
    count, channels, height, width = pixels.shape
    columns = min(nrow, count)
    rows = math.ceil(count / columns)
    cell_height, cell_width = height + padding, width + padding
    grid = np.full((channels, rows * cell_height + padding, columns * cell_width + padding), pad_value,
                   dtype=pixels.dtype)
    for k, image in enumerate(pixels):
        row, column = divmod(k, columns)
        top, left = row * cell_height + padding, column * cell_width + padding
        grid[:, top:top + height, left:left + width] = image
    return Tensor(grid)
