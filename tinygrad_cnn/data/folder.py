"""ImageFolder: a dataset of image files sorted into one subfolder per class.

    root/airplane/0001.png
    root/airplane/0002.jpg
    root/automobile/0001.png
    ...

The class names are the subfolder names in alphabetical order, and a class's index is its
position in that order (``class_to_idx``). Files ending in .png, .jpg or .jpeg are used;
other files are ignored. Images are decoded with Pillow, an optional dependency
(``pip install tinygrad_cnn[images]``), imported only when an image is read.

``folder[i]`` decodes one file; for small datasets ``load_all()`` decodes them all once into
an array-backed ``ImageDataset``, which the DataLoader batches much faster.
"""
from pathlib import Path

import numpy as np

from .errors import DatasetError
from ..utils.data import Dataset, ImageDataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _pillow_image_module():
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError("reading image files needs Pillow: pip install 'tinygrad_cnn[images]' "
                          "(or pip install pillow)") from error
    return Image


class ImageFolder(Dataset):
    """Images from ``root/<class name>/<file>``; ``folder[i]`` is ``(image, label)`` with the
    image float32 (C, H, W) in [0, 1] (3 channels, or 1 when ``grayscale``) after ``transform``."""

    def __init__(self, root, transform=None, grayscale: bool = False):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"ImageFolder root {self.root} is not a folder")
        self.classes = sorted(entry.name for entry in self.root.iterdir() if entry.is_dir())
        self.class_to_idx = {name: index for index, name in enumerate(self.classes)}
        self.samples = [(path, self.class_to_idx[name])
                        for name in self.classes
                        for path in sorted((self.root / name).iterdir())
                        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()]
        if not self.samples:
            raise DatasetError(f"no .png/.jpg/.jpeg files in class subfolders of {self.root}")
        self.transform = transform
        self.grayscale = grayscale

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple:
        path, label = self.samples[index]
        image = self.read_pixels(path).transpose(2, 0, 1).astype(np.float32) / np.float32(255)
        if self.transform is not None:
            image = self.transform(image)
        return image, np.int64(label)

    def read_pixels(self, path: Path) -> np.ndarray:
        """The uint8 pixels of one file as (H, W, C), the layout Pillow gives."""
        Image = _pillow_image_module()
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("L" if self.grayscale else "RGB"))
        except (OSError, ValueError, SyntaxError) as error:   # Pillow's "cannot identify", "truncated"
            raise DatasetError(f"cannot read image {path}: {error}") from error
        return pixels[:, :, None] if pixels.ndim == 2 else pixels

    def load_all(self) -> ImageDataset:
        """Decode every file into one ImageDataset: images float32 (N, C, H, W) in [0, 1].

        All images must have the same size. ``transform`` is not applied here (random
        augmentation belongs to each epoch): pass it to the DataLoader instead.
        """
        first_path = self.samples[0][0]
        first = self.read_pixels(first_path)
        # Filled in place: one uint8 array instead of N small ones stacked at the end.
        pixels = np.empty((len(self.samples), *first.shape), dtype=np.uint8)
        for index, (path, _) in enumerate(self.samples):
            image = first if index == 0 else self.read_pixels(path)
            if image.shape != first.shape:
                raise DatasetError(f"{path} is {image.shape[1]}x{image.shape[0]} but {first_path} is "
                                   f"{first.shape[1]}x{first.shape[0]}; load_all needs images of one size")
            pixels[index] = image
        labels = np.array([label for _, label in self.samples], dtype=np.int64)
        return ImageDataset(pixels.transpose(0, 3, 1, 2), labels, self.classes)
