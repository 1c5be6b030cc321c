"""Per-sample image transforms with torchvision's names and behaviour (``torchvision.transforms``).

They take one image at a time, as the datasets of ``tinygrad_cnn.vision.datasets`` give it: a
PIL image, until ``ToTensor`` turns it into a float Tensor (C, H, W) in [0, 1]; after that the
geometric transforms work on Tensors too (any leading dimensions, the last two being H and W).

    Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), ToTensor(),
             Normalize((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261))])

Random choices come from the library generator (``tinygrad_cnn.manual_seed`` repeats them), where
torchvision draws from torch's. Resizing uses Pillow, as torchvision does for PIL images.

These run once per sample, in Python: the way to write a torchvision program. For speed on the
built-in array datasets, ``tinygrad_cnn.data.transforms`` has batch versions of the augmentations
that the DataLoader applies to a whole batch at once (what the command-line trainer uses).
"""
from __future__ import annotations

import enum
import numbers

import numpy as np

from ..random import get_rng
from ..tensor_class import Tensor

try:
    from PIL import Image
except ImportError:  # pragma: no cover - Pillow is optional; only PIL inputs and Resize need it
    Image = None


def _is_pil(image) -> bool:
    return Image is not None and isinstance(image, Image.Image)


def _pillow():
    if Image is None:
        raise ImportError("this transform needs Pillow: pip install 'tinygrad_cnn[images]' (or pip install pillow)")
    return Image


def _pixels_of(name: str, image) -> np.ndarray:
    """The array behind a PIL image (H, W[, C]) or a Tensor (..., H, W); anything else is refused."""
    if _is_pil(image):
        return np.asarray(image)
    if isinstance(image, Tensor):
        if image.ndim < 2:
            raise ValueError(f"{name}: a Tensor image needs at least 2 dimensions (..., H, W), got shape {image.shape}")
        return image.data
    raise TypeError(f"{name}: the image should be a PIL Image or a Tensor, got {type(image).__name__}")


def _like(image, pixels: np.ndarray):
    """``pixels`` in the kind of ``image``: a PIL image of the same mode, or a Tensor."""
    if _is_pil(image):
        # Pillow infers the mode from the array: uint8 (H, W) is "L", (H, W, 3) "RGB", float32 "F"
        return Image.fromarray(np.ascontiguousarray(pixels))
    return Tensor(np.ascontiguousarray(pixels))


def _height_width(image) -> tuple[int, int]:
    if _is_pil(image):
        return image.height, image.width
    return tuple(_pixels_of("transform", image).shape[-2:])


def _spatial_axes(image) -> tuple[int, int]:
    """The axes of height and width: 0 and 1 for PIL pixels (H, W[, C]), the last two for Tensors."""
    return (0, 1) if _is_pil(image) else (-2, -1)


def _size_pair(name: str, size) -> tuple[int, int]:
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    if isinstance(size, (list, tuple)) and len(size) == 1:
        return int(size[0]), int(size[0])
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ValueError(f"{name}: size must be an int or a (height, width) pair, got {size!r}")


class Compose:
    """Apply the transforms one after the other."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image):
        for transform in self.transforms:
            image = transform(image)
        return image

    def __repr__(self) -> str:
        return "Compose(\n" + "".join(f"    {t!r}\n" for t in self.transforms) + ")"


class Lambda:
    """Apply a user function."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Lambda: expected a callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, image):
        return self.lambd(image)


class ToTensor:
    """A PIL image or a NumPy array (H, W, C) or (H, W) to a Tensor (C, H, W).

    uint8 pixels (PIL modes L, RGB, ..., or a uint8 array) are divided by 255 into float32 in
    [0, 1]; other dtypes keep their values and dtype, as in torchvision (a mode "F" image stays
    float32, an int32 array int32). A binary (mode "1") image becomes 0.0 and 1.0."""

    def __call__(self, pic) -> Tensor:
        if _is_pil(pic):
            pixels = np.asarray(pic)
            if pic.mode == "1":
                pixels = pixels.astype(np.uint8) * 255
        elif isinstance(pic, np.ndarray):
            pixels = pic
        else:
            raise TypeError(f"ToTensor: expected a PIL Image or a NumPy array (H, W[, C]), got {type(pic).__name__}")
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if pixels.ndim != 3:
            raise ValueError(f"ToTensor: expected an image (H, W) or (H, W, C), got shape {pixels.shape}")
        chw = np.ascontiguousarray(pixels.transpose(2, 0, 1))
        if chw.dtype == np.uint8:
            return Tensor(chw.astype(np.float32) / np.float32(255))
        return Tensor(chw)


class Normalize:
    """Per channel of a Tensor image (..., C, H, W): ``(image - mean[c]) / std[c]``."""

    def __init__(self, mean, std, inplace: bool = False):
        self.mean, self.std, self.inplace = mean, std, inplace
        if np.any(np.asarray(std, dtype=np.float64) == 0):
            raise ValueError(f"Normalize: std contains a zero, which would divide by zero: {std}")

    def __call__(self, tensor: Tensor) -> Tensor:
        if not isinstance(tensor, Tensor):
            raise TypeError(f"Normalize: expected a Tensor image (apply ToTensor first), got {type(tensor).__name__}")
        if tensor.ndim < 3 or tensor.dtype.kind != "f":
            raise ValueError(f"Normalize: expected a float Tensor (..., C, H, W), "
                             f"got {tensor.dtype} of shape {tensor.shape}")
        # (C, 1, 1) broadcasts over H and W; one value, or one per channel, as in torchvision
        mean = np.asarray(self.mean, dtype=tensor.dtype).reshape(-1, 1, 1)
        std = np.asarray(self.std, dtype=tensor.dtype).reshape(-1, 1, 1)
        channels = tensor.shape[-3]
        if len(mean) not in (1, channels) or len(std) not in (1, channels):
            raise ValueError(f"Normalize: {len(mean)} means and {len(std)} stds for an image of {channels} channels")
        if self.inplace:
            tensor.data -= mean
            tensor.data /= std
            return tensor
        return Tensor((tensor.data - mean) / std)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class RandomHorizontalFlip:
    """Mirror the image left to right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, image):
        pixels = _pixels_of("RandomHorizontalFlip", image)
        if get_rng().random() < self.p:
            return _like(image, np.flip(pixels, axis=_spatial_axes(image)[1]))
        return image


_PADDING_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}


def _padding_ltrb(padding) -> tuple[int, int, int, int]:
    """torchvision's padding argument as (left, top, right, bottom): one number for every side,
    (left/right, top/bottom), or all four."""
    if isinstance(padding, numbers.Integral):
        return (int(padding),) * 4
    padding = tuple(int(p) for p in padding)
    if len(padding) == 1:
        return padding * 4
    if len(padding) == 2:
        return padding[0], padding[1], padding[0], padding[1]
    if len(padding) == 4:
        return padding
    raise ValueError(f"padding must be an int or a sequence of 1, 2 or 4 ints, got {padding!r}")


def pad(image, padding, fill=0, padding_mode: str = "constant"):
    """Pad the sides of a PIL image or Tensor; ``padding`` as torchvision's (see ``_padding_ltrb``).
    ``fill`` is one value, or one per channel (such as an RGB colour), for ``padding_mode="constant"``."""
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {sorted(_PADDING_MODES)}, got {padding_mode!r}")
    left, top, right, bottom = _padding_ltrb(padding)
    pixels = _pixels_of("pad", image)
    widths = [(0, 0)] * pixels.ndim
    height_axis, width_axis = (axis % pixels.ndim for axis in _spatial_axes(image))
    widths[height_axis], widths[width_axis] = (top, bottom), (left, right)
    if padding_mode != "constant":
        return _like(image, np.pad(pixels, widths, mode=_PADDING_MODES[padding_mode]))
    if isinstance(fill, numbers.Number):
        return _like(image, np.pad(pixels, widths, constant_values=fill))
    # One value per channel: fill the whole padded array channel by channel, then put the image back.
    channel_axis = pixels.ndim - 1 if _is_pil(image) else pixels.ndim - 3
    if pixels.ndim < 3 or pixels.shape[channel_axis] != len(fill):
        raise ValueError(f"pad: {len(fill)} fill values for an image of shape {pixels.shape}; give one value, "
                         "or one per channel")
    padded = np.empty([size + before + after for size, (before, after) in zip(pixels.shape, widths)], pixels.dtype)
    per_channel = [1] * pixels.ndim
    per_channel[channel_axis] = -1
    padded[...] = np.asarray(fill, dtype=pixels.dtype).reshape(per_channel)
    inside = [slice(before, before + size) for size, (before, _) in zip(pixels.shape, widths)]
    padded[tuple(inside)] = pixels
    return _like(image, padded)


def crop(image, top: int, left: int, height: int, width: int):
    """The ``height`` x ``width`` window whose top-left pixel is (top, left)."""
    pixels = _pixels_of("crop", image)
    if _is_pil(image):
        return _like(image, pixels[top:top + height, left:left + width])
    return _like(image, pixels[..., top:top + height, left:left + width])


class RandomCrop:
    """Cut a ``size`` window at a uniformly random place, after padding (``padding``: one number,
    (left/right, top/bottom) or (left, top, right, bottom); ``pad_if_needed`` pads an image
    smaller than ``size``), filling with ``fill`` (one value, or one per channel) or by
    ``padding_mode`` ("edge", "reflect", "symmetric"), as torchvision."""

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill=0, padding_mode: str = "constant"):
        self.size = _size_pair("RandomCrop", size)
        self.padding, self.pad_if_needed, self.fill, self.padding_mode = padding, pad_if_needed, fill, padding_mode

    def __call__(self, image):
        if self.padding is not None:
            image = pad(image, self.padding, self.fill, self.padding_mode)
        crop_height, crop_width = self.size
        height, width = _height_width(image)
        if self.pad_if_needed and width < crop_width:
            image = pad(image, (crop_width - width, 0), self.fill, self.padding_mode)
        if self.pad_if_needed and height < crop_height:
            image = pad(image, (0, crop_height - height), self.fill, self.padding_mode)
        height, width = _height_width(image)
        if height < crop_height or width < crop_width:
            raise ValueError(f"RandomCrop: crop size {self.size} is larger than the (padded) image, {height}x{width}")
        rng = get_rng()
        top = int(rng.integers(0, height - crop_height + 1))
        left = int(rng.integers(0, width - crop_width + 1))
        return crop(image, top, left, crop_height, crop_width)


class CenterCrop:
    """Cut the central ``size`` window (rounding the offsets as torchvision); an image smaller
    than ``size`` is first padded with zeros on every side."""

    def __init__(self, size):
        self.size = _size_pair("CenterCrop", size)

    def __call__(self, image):
        crop_height, crop_width = self.size
        height, width = _height_width(image)
        if crop_height > height or crop_width > width:
            image = pad(image, ((crop_width - width) // 2 if crop_width > width else 0,
                                (crop_height - height) // 2 if crop_height > height else 0,
                                (crop_width - width + 1) // 2 if crop_width > width else 0,
                                (crop_height - height + 1) // 2 if crop_height > height else 0))
            height, width = _height_width(image)
        top = int(round((height - crop_height) / 2.0))
        left = int(round((width - crop_width) / 2.0))
        return crop(image, top, left, crop_height, crop_width)


class InterpolationMode(enum.Enum):
    """How ``Resize`` computes new pixels (torchvision's enum)."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


def _pil_filter(interpolation):
    Image = _pillow()
    mode = InterpolationMode(interpolation.value if isinstance(interpolation, InterpolationMode) else interpolation)
    return {InterpolationMode.NEAREST: Image.Resampling.NEAREST, InterpolationMode.BILINEAR: Image.Resampling.BILINEAR,
            InterpolationMode.BICUBIC: Image.Resampling.BICUBIC}[mode]


def resized_size(height: int, width: int, size, max_size: int | None = None) -> tuple[int, int]:
    """torchvision's output size: a (height, width) pair as given; one number for the shorter
    side, the longer one scaled to keep the aspect ratio (rounded down), then capped at ``max_size``."""
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    requested = int(size[0] if isinstance(size, (list, tuple)) else size)
    short, long = min(height, width), max(height, width)
    new_short, new_long = requested, int(requested * long / short)
    if max_size is not None:
        if max_size <= requested:
            raise ValueError(f"Resize: max_size ({max_size}) must be larger than the requested size ({requested})")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_long, new_short) if width <= height else (new_short, new_long)


class Resize:
    """Resize to ``size``: (height, width), or one number for the shorter side keeping the aspect
    ratio. Done by Pillow, as torchvision does for PIL images (bilinear by default, antialiased
    when shrinking); a Tensor is resized channel by channel as float32 images, which is what
    torchvision's antialiased Tensor path is designed to match."""

    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, max_size: int | None = None, antialias=True):
        self.size, self.max_size, self.antialias = size, max_size, antialias
        self.interpolation = interpolation
        _pil_filter(interpolation)   # refuse an unknown mode now, not at the first image

    def __call__(self, image):
        height, width = _height_width(image)
        new_height, new_width = resized_size(height, width, self.size, self.max_size)
        resample = _pil_filter(self.interpolation)
        if _is_pil(image):
            return image.resize((new_width, new_height), resample)
        pixels = _pixels_of("Resize", image)
        planes = pixels.reshape(-1, height, width).astype(np.float32)
        Image = _pillow()
        resized = [np.asarray(Image.fromarray(plane).resize((new_width, new_height), resample))
                   for plane in planes]
        out = np.stack(resized).reshape(*pixels.shape[:-2], new_height, new_width)
        if pixels.dtype == np.uint8:
            out = np.clip(np.round(out), 0, 255)
        return Tensor(out.astype(pixels.dtype))
