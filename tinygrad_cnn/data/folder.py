"""ImageFolder: a dataset of image files sorted into one subfolder per class.

    root/airplane/0001.png
    root/airplane/0002.jpg
    root/automobile/0001.png
    ...

The class names are the subfolder names in alphabetical order, and a class's index is its
position in that order (``class_to_idx``). Files with a picture suffix (``IMAGE_SUFFIXES``:
.png, .jpg, .jpeg, .bmp, .gif, .tif, .tiff, .webp, .pgm, .ppm) are used; other files are
ignored. Each file is decoded by ``images.read_image`` (Pillow, every mode scaled to [0, 1],
sizes bounded by a pixel limit).

``folder[i]`` decodes one file; for small datasets ``load_all()`` decodes them all once into
an array-backed ``ImageDataset``, which the DataLoader batches much faster.
"""
import math
from pathlib import Path

import numpy as np

from .errors import DatasetError
from ..utils.data import Dataset, ImageDataset
from .images import IMAGE_SUFFIXES, read_image

MAX_LOAD_BYTES = 8 << 30   # what load_all may allocate: CIFAR-10 as image folders takes 0.7 GiB


class ImageFolder(Dataset):
    """Images from ``root/<class name>/<file>``; ``folder[i]`` is ``(image, label)`` with the
    image float32 (C, H, W) in [0, 1] (3 channels, or 1 when ``grayscale``) after ``transform``.
    ``max_pixels`` overrides the pixel limit of ``images.read_image``."""

    def __init__(self, root, transform=None, grayscale: bool = False, max_pixels: int | None = None):
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
            raise DatasetError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in class subfolders of {self.root}")
        self.transform = transform
        self.grayscale = grayscale
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple:
        path, label = self.samples[index]
        image = self.read(path)
        if self.transform is not None:
            image = self.transform(image)
        return image, np.int64(label)

    def read(self, path: Path) -> np.ndarray:
        """One file as float32 (C, H, W) in [0, 1]."""
        return read_image(path, channels=1 if self.grayscale else 3, max_pixels=self.max_pixels)

    def load_all(self, max_bytes: int = MAX_LOAD_BYTES) -> ImageDataset:
        """Decode every file into one ImageDataset: images float32 (N, C, H, W) in [0, 1].

        All images must have the same size, and together they may take at most ``max_bytes``
        (checked from the first image, before the others are decoded: small files of plain
        colour can hold large images). ``transform`` is not applied here (random augmentation
        belongs to each epoch): pass it to the DataLoader instead.
        """
        first_path = self.samples[0][0]
        first = self.read(first_path)
        shape = (len(self.samples), *first.shape)
        needed = math.prod(shape) * np.dtype(np.float32).itemsize
        if needed > max_bytes:
            raise DatasetError(f"{len(self.samples):,} images of {first.shape[2]}x{first.shape[1]} in {self.root} "
                               f"need {needed / 2**30:.1f} GiB as float32, more than the {max_bytes / 2**30:.1f} GiB "
                               "load_all allows: read them one at a time with folder[i], or pass a larger max_bytes")
        images = np.empty(shape, dtype=np.float32)   # filled in place, not N small arrays stacked
        for index, (path, _) in enumerate(self.samples):
            image = first if index == 0 else self.read(path)
            if image.shape != first.shape:
                raise DatasetError(f"{path} is {image.shape[2]}x{image.shape[1]} but {first_path} is "
                                   f"{first.shape[2]}x{first.shape[1]}; load_all needs images of one size")
            images[index] = image
        labels = np.array([label for _, label in self.samples], dtype=np.int64)
        return ImageDataset(images, labels, self.classes)
