"""Datasets shaped like ``torchvision.datasets``: ``dataset[i]`` is one ``(image, label)`` sample.

    MNIST(root, train=True, transform=None, target_transform=None, download=False)
    FashionMNIST(...)    CIFAR10(...)    ImageFolder(root, transform=None, target_transform=None)

As in torchvision the image is a PIL image (mode "L" for MNIST and Fashion-MNIST, "RGB" for
CIFAR-10 and image folders) and the label a Python int; ``transform`` is applied to the image
(usually ending in ``ToTensor()``), ``target_transform`` to the label. Without Pillow the image
is the uint8 NumPy array (H, W) or (H, W, 3), which ``ToTensor`` accepts as well.

The files are read by ``tinygrad_cnn.data`` (the IDX, CIFAR and image readers, their checks
and downloads); these classes only arrange them as torchvision does. ``root`` is laid out as
torchvision lays it out where the formats allow:

- MNIST: ``root/MNIST/raw/train-images-idx3-ubyte.gz`` ... (the four official files);
  Fashion-MNIST likewise under ``root/FashionMNIST/raw/``. A folder downloaded by torchvision
  is read as it is.
- CIFAR-10: ``root/cifar-10-batches-py/``, the Python version torchvision downloads, read with
  an unpickler that builds only what a batch holds (``data/cifar_python.py``: a pickle could
  otherwise run code); else ``root/cifar-10-batches-bin/``, the binary version of the same
  images, which ``download=True`` fetches.

When the files are not under ``root``, the other places of ``tinygrad_cnn.data`` (the
``$TINYGRAD_CNN_DATA`` folder, the user cache, system packages) are searched too, and
``download=True`` downloads into ``root``.

For training at speed on the built-in datasets, ``tinygrad_cnn.data.MNIST`` and friends hold
the whole split in one array that the DataLoader gathers batches from without a per-sample step.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import data
from ..data import cifar_python
from ..utils.data import Dataset

try:
    from PIL import Image
except ImportError:  # pragma: no cover - Pillow is optional; the images stay NumPy arrays
    Image = None


class VisionDataset(Dataset):
    """Images and integer labels (``targets``), served one sample at a time. Subclasses keep the
    images in ``data`` (uint8, (N, H, W) or (N, H, W, 3)) or override ``image(index)``."""

    def __init__(self, root, transform=None, target_transform=None):
        self.root = None if root is None else Path(root).expanduser()
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return len(self.targets)

    def image(self, index: int):
        """Image number ``index`` before ``transform``: a PIL image, or the array without Pillow."""
        return Image.fromarray(self.data[index]) if Image is not None else self.data[index]

    def __getitem__(self, index: int) -> tuple:
        image, target = self.image(index), int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    @property
    def class_to_idx(self) -> dict:
        return {name: index for index, name in enumerate(self.classes)}

    def __repr__(self) -> str:
        split = "" if not hasattr(self, "train") else f", split {'train' if self.train else 'test'}"
        return f"Dataset {type(self).__name__}: {len(self)} samples{split}, root {self.root}"


def _pixels_from(dataset: data.ImageDataset) -> np.ndarray:
    """The uint8 pixels behind a float32 [0, 1] ImageDataset, as (N, H, W) or (N, H, W, C).

    The readers give uint8 divided by 255 in float32; multiplying back and rounding recovers
    every value exactly."""
    pixels = np.rint(dataset.images * np.float32(255)).astype(np.uint8)
    return pixels[:, 0] if pixels.shape[1] == 1 else np.ascontiguousarray(pixels.transpose(0, 2, 3, 1))


class MNIST(VisionDataset):
    """Handwritten digits: 28x28 grey images ("L"), labels 0-9. ``data`` is the uint8 (N, 28, 28)
    array and ``targets`` the int64 labels (NumPy arrays where torchvision has tensors)."""

    reader = data.MNIST
    folder_name = "MNIST"
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
               "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root, train: bool = True, transform=None, target_transform=None, download: bool = False):
        super().__init__(root, transform, target_transform)
        self.train = train
        raw = None if self.root is None else self.root / self.folder_name / "raw"
        loaded = self.reader(root=raw, train=train, download=download)
        self.data, self.targets = _pixels_from(loaded), loaded.labels


class FashionMNIST(MNIST):
    """Zalando's article images, 28x28 grey, in torchvision's layout ``root/FashionMNIST/raw/``."""

    reader = data.FashionMNIST
    folder_name = "FashionMNIST"
    classes = list(data.mnist.FASHION_MNIST_CLASSES)


class CIFAR10(VisionDataset):
    """32x32 colour photos ("RGB") in 10 classes. ``data`` is uint8 (N, 32, 32, 3) as in
    torchvision, ``targets`` the int64 labels, ``classes`` the names from the dataset's meta file."""

    def __init__(self, root, train: bool = True, transform=None, target_transform=None, download: bool = False):
        super().__init__(root, transform, target_transform)
        self.train = train
        python_version = None if self.root is None else self.root / cifar_python.FOLDER
        if python_version is not None and python_version.is_dir():  # torchvision's own download
            self.data, self.targets, self.classes = cifar_python.read_python_split(python_version, train)
            return
        loaded = data.CIFAR10(root=self.root, train=train, download=download)
        self.data, self.targets, self.classes = _pixels_from(loaded), loaded.labels, list(loaded.classes)


class ImageFolder(VisionDataset):
    """Images in ``root/<class name>/<file>``, decoded when indexed into RGB PIL images (or by
    ``loader(path)`` if given). ``classes``, ``class_to_idx``, ``samples`` (path, label) and
    ``targets`` as in torchvision; the files that count are those ``tinygrad_cnn.data.ImageFolder``
    reads (``tinygrad_cnn.data.images.IMAGE_SUFFIXES``)."""

    def __init__(self, root, transform=None, target_transform=None, loader=None):
        super().__init__(root, transform, target_transform)
        self.folder = data.ImageFolder(self.root)
        self.classes, self.samples = list(self.folder.classes), [(str(p), label) for p, label in self.folder.samples]
        self.imgs, self.targets = self.samples, [label for _, label in self.samples]
        self.loader = loader

    def image(self, index: int):
        path = self.samples[index][0]
        if self.loader is not None:
            return self.loader(path)
        # decoded as every image of the library is (bounded, every Pillow mode scaled to [0, 1]), then
        # back to 8 bits, which an 8-bit file round-trips exactly: torchvision's RGB PIL image
        pixels = self.folder.read(Path(path)).transpose(1, 2, 0)
        return Image.fromarray(np.rint(pixels * 255).astype(np.uint8))
