"""Reading one image file as the network wants it: float32 (C, H, W) with values in [0, 1].

This is the one place that decodes pictures: ``ImageFolder`` and the command line's
``predict`` both call ``read_image``. Files are decoded with Pillow, an optional dependency
(``pip install tinygrad_cnn[images]``) imported only when a picture is read; ``.npy`` arrays
are read with NumPy alone.

How each Pillow mode becomes values in [0, 1]:

    1                        {0, 1}: black is 0, white is 1
    L, P, RGB, RGBA, CMYK,   8 bits per channel: converted by Pillow to L (grey) or RGB, then / 255.
    LA, PA, YCbCr, ...       Alpha is dropped, not composited (as torchvision's ImageFolder does).
    I;16, I;16B, I;16L       16-bit unsigned (16-bit PNG and TIFF greys): / 65535
    I                        32-bit signed integers. Pillow gives 16-bit greys this mode in some
                             formats and versions, so values are taken as 16-bit: / 65535. A file
                             with values outside 0..65535 is refused rather than clipped.
    F                        32-bit float: taken as already scaled, clipped to [0, 1]; NaN or
                             infinite values are refused.

High-bit greys are scaled by NumPy, never by Pillow's ``convert("L")``, which clips 16-bit
values at 255 instead of scaling them (a 16-bit 32768 would read as 1.0). Grey to RGB repeats
the channel; RGB to grey uses the ITU-R 601 weights (0.299, 0.587, 0.114) of Pillow's "L".

Memory is bounded before decoding: Pillow reads only the header when a file is opened, so an
image of more than ``max_pixels`` pixels (default ``MAX_IMAGE_PIXELS``, 50 million: a
50-megapixel photo still reads, and decoding it as RGB float32 takes 600 MB) is refused with a
``DatasetError`` before any pixel is decoded. The limit is raised per call (``max_pixels=``) or
for a whole program, command line included, with the environment variable
``TINYGRAD_CNN_MAX_IMAGE_PIXELS``. Pillow's own decompression-bomb check
(``PIL.Image.MAX_IMAGE_PIXELS``, twice that is an error) still applies on top. ``.npy`` files are
checked the same way: their header's shape against the limit and the file's length.
"""
import os
from pathlib import Path

import numpy as np

from ..environment import EnvironmentVariableError
from .errors import DatasetError

MAX_IMAGE_PIXELS = 50_000_000
MAX_PIXELS_ENV_VAR = "TINYGRAD_CNN_MAX_IMAGE_PIXELS"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")

GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)   # ITU-R 601, as Pillow's "L"
SIXTEEN_BIT_MAX = 65535


def pillow_image_module():
    """``PIL.Image``, or an ImportError saying how to install Pillow."""
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError("reading image files needs Pillow: pip install 'tinygrad_cnn[images]' "
                          "(or pip install pillow)") from error
    return Image


def pixel_limit(max_pixels: int | None = None) -> int:
    """``max_pixels``, else ``$TINYGRAD_CNN_MAX_IMAGE_PIXELS``, else ``MAX_IMAGE_PIXELS``."""
    if max_pixels is not None:
        return max_pixels
    text = os.environ.get(MAX_PIXELS_ENV_VAR)
    if text is None:
        return MAX_IMAGE_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise EnvironmentVariableError(f"{MAX_PIXELS_ENV_VAR}={text!r} is not a positive whole number of pixels; "
                                       f"set it to e.g. 100000000, or unset it for the default {MAX_IMAGE_PIXELS:,}")
    return value


def check_pixel_count(path: Path, width: int, height: int, max_pixels: int | None = None) -> None:
    limit = pixel_limit(max_pixels)
    if width * height > limit:
        raise DatasetError(f"{path} is {width}x{height} = {width * height:,} pixels, more than the limit of "
                           f"{limit:,}; if the file is genuine, raise the limit with max_pixels= or "
                           f"the environment variable {MAX_PIXELS_ENV_VAR}")


# ---- decoding -----------------------------------------------------------------------------


def read_image(path, channels: int = 3, size: tuple[int, int] | None = None,
               max_pixels: int | None = None) -> np.ndarray:
    """The image in ``path`` as float32 (channels, H, W) in [0, 1].

    ``channels`` is 1 (grey) or 3 (RGB); ``size=(height, width)`` resizes (bilinear). A picture
    file is decoded with Pillow; a ``.npy`` file holds an array (H, W), (H, W, C) or (C, H, W),
    integers in 0-255 or floats in [0, 1]. Anything unreadable raises DatasetError naming the file.
    """
    if channels not in (1, 3):
        raise ValueError(f"read_image gives 1 (grey) or 3 (RGB) channels, not {channels}")
    path = Path(path)
    if path.suffix.lower() == ".npy":
        image = _as_channels(read_array_image(path, max_pixels), channels)
    else:
        image = read_picture(path, channels, max_pixels)
    if size is not None and image.shape[1:] != tuple(size):
        image = resize(image, *size)
    return image


def read_picture(path: Path, channels: int = 3, max_pixels: int | None = None) -> np.ndarray:
    """A picture file decoded by Pillow as float32 (channels, H, W) in [0, 1] (rules above)."""
    Image = pillow_image_module()
    try:
        with Image.open(path) as picture:
            check_pixel_count(path, *picture.size, max_pixels)
            pixels = _scaled_pixels(picture, channels, path)
    except Image.DecompressionBombError as error:
        raise DatasetError(f"{path} is refused by Pillow's decompression-bomb check: {error}") from error
    except EnvironmentVariableError:
        raise  # a bad setting, not a bad image
    except (OSError, ValueError, SyntaxError, EOFError) as error:   # "cannot identify", "truncated"
        raise DatasetError(f"cannot read image {path}: {error}") from error
    return pixels.transpose(2, 0, 1) if pixels.ndim == 3 else pixels[None]


def _scaled_pixels(picture, channels: int, path: Path) -> np.ndarray:
    """float32 (H, W) or (H, W, 3) in [0, 1] from an open Pillow image."""
    mode = picture.mode
    if mode.startswith("I;16"):
        grey = np.asarray(picture).astype(np.float32) / SIXTEEN_BIT_MAX
    elif mode == "I":
        values = np.asarray(picture)
        if values.size and (values.min() < 0 or values.max() > SIXTEEN_BIT_MAX):
            raise DatasetError(f"{path} holds 32-bit integer values from {values.min()} to {values.max()}; "
                               f"integer greys are read as 16-bit (0..{SIXTEEN_BIT_MAX}): convert the file "
                               "to 8 or 16 bits, or to a float image scaled to [0, 1]")
        grey = values.astype(np.float32) / SIXTEEN_BIT_MAX
    elif mode == "F":
        values = np.asarray(picture, dtype=np.float32)
        if not np.isfinite(values).all():
            raise DatasetError(f"{path} is a float image with NaN or infinite values")
        grey = np.clip(values, 0, 1)
    else:
        pixels = np.asarray(picture.convert("L" if channels == 1 else "RGB"))
        return pixels.astype(np.float32) / np.float32(255)
    return grey if channels == 1 else np.repeat(grey[:, :, None], 3, axis=2)


def read_array_image(path: Path, max_pixels: int | None = None) -> np.ndarray:
    """A ``.npy`` array as float32 (C, H, W): integers divided by 255, floats as they are.

    The array is memory-mapped first, so a header claiming more data than the file holds, or
    more pixels than the limit, is refused before anything is read."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DatasetError(f"cannot read {path} as a .npy array: {error}") from error
    while array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3 and array.shape[-1] in (1, 3, 4) and array.shape[0] not in (1, 3):
        array = array.transpose(2, 0, 1)  # (H, W, C) as image libraries store it
    elif array.ndim != 3:
        raise DatasetError(f"{path}: a .npy image must be (H, W), (H, W, C) or (C, H, W), "
                           f"got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DatasetError(f"{path}: a .npy image holds integers or floats, not {array.dtype}")
    check_pixel_count(path, array.shape[2], array.shape[1], max_pixels)
    integers = np.issubdtype(array.dtype, np.integer)
    array = np.array(array[:3], dtype=np.float32)   # read now, from the mapped file
    if not np.isfinite(array).all():
        raise DatasetError(f"{path} holds NaN or infinite values")
    scale = 255 if integers or (array.size and array.max() > 1.0) else 1
    return array / np.float32(scale)


# ---- channels and size --------------------------------------------------------------------


def _as_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """(C, H, W) with C = ``channels``: grey repeated to RGB, RGB weighted to grey."""
    if image.shape[0] == channels:
        return image
    if channels == 1:
        return np.tensordot(GREY_WEIGHTS, image[:3], axes=1)[None] if image.shape[0] >= 3 else image[:1]
    return np.repeat(image[:1], channels, axis=0)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """float32 (C, H, W) resized to (C, height, width): bilinear with Pillow when it is there,
    nearest neighbour otherwise."""
    try:
        Image = pillow_image_module()
    except ImportError:
        rows = (np.arange(height) * image.shape[1] / height).astype(int)
        cols = (np.arange(width) * image.shape[2] / width).astype(int)
        return image[:, rows][:, :, cols]
    return np.stack([np.asarray(Image.fromarray(channel, mode="F").resize((width, height), Image.BILINEAR))
                     for channel in image.astype(np.float32)])
