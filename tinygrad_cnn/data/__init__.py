"""Data: the built-in datasets read from their official files, and batch transforms.

    transforms.py  Normalize, RandomCrop, RandomHorizontalFlip, Compose, ToFloat (whole batches)
    mnist.py       MNIST, FashionMNIST (official IDX files; format in idx.py)
    cifar.py       CIFAR10 (official binary version)
    folder.py      ImageFolder (one subfolder of image files per class; needs Pillow)
    images.py      read_image(): one image file as float32 (C, H, W) in [0, 1], every Pillow mode
    embedded.py    load_embedded(): a real Fashion-MNIST subset shipped in the package
    locations.py   where dataset files are looked for ($TINYGRAD_CNN_DATA, user cache, ...)
    registry.py    DATASETS: the datasets known by name (the CLI's --dataset), load_dataset()
    download.py    checksum-verified, atomic, size-capped and time-limited downloads
    errors.py      DatasetError, raised for every missing, damaged or unreadable file

``Dataset``, ``TensorDataset``, ``ImageDataset`` and ``DataLoader`` live in
``tinygrad_cnn.utils.data`` (torch's path); they are re-exported here because every dataset
above is an ``ImageDataset`` and is used with a ``DataLoader``.
"""
from . import images, transforms
from .cifar import CIFAR10
from .embedded import EmbeddedFashionMNIST, load_embedded
from .errors import DatasetError
from .folder import ImageFolder
from .locations import DATA_ENV_VAR
from .mnist import MNIST, FashionMNIST
from .registry import DATASETS, load_dataset
from ..utils.data import DataLoader, Dataset, ImageDataset, TensorDataset

__all__ = [
    "CIFAR10", "DATASETS", "DATA_ENV_VAR", "DataLoader", "Dataset", "DatasetError", "EmbeddedFashionMNIST",
    "FashionMNIST", "ImageDataset", "ImageFolder", "MNIST", "TensorDataset", "images", "load_dataset",
    "load_embedded", "transforms",
]
