"""Data: the built-in datasets read from their official files, and batch transforms.

    transforms.py  Normalize, RandomCrop, RandomHorizontalFlip, Compose, ToFloat (whole batches)
    mnist.py       MNIST, FashionMNIST (official IDX files; format in idx.py)
    cifar.py       CIFAR10 (official binary version)
    folder.py      ImageFolder (one subfolder of PNG/JPEG files per class; needs Pillow)
    embedded.py    load_embedded(): a real Fashion-MNIST subset shipped in the package
    locations.py   where dataset files are looked for ($TINYGRAD_CNN_DATA, user cache, ...)
    download.py    checksum-verified, atomic downloads
    errors.py      DatasetError, raised for every missing, damaged or unreadable file

``Dataset``, ``TensorDataset``, ``ImageDataset`` and ``DataLoader`` live in
``tinygrad_cnn.utils.data`` (torch's path); they are re-exported here because every dataset
above is an ``ImageDataset`` and is used with a ``DataLoader``.
"""
from . import transforms
from .cifar import CIFAR10
from .embedded import EmbeddedFashionMNIST, load_embedded
from .errors import DatasetError
from .folder import ImageFolder
from .locations import DATA_ENV_VAR
from .mnist import MNIST, FashionMNIST
from ..utils.data import DataLoader, Dataset, ImageDataset, TensorDataset

__all__ = [
    "CIFAR10", "DATA_ENV_VAR", "DataLoader", "Dataset", "DatasetError", "EmbeddedFashionMNIST",
    "FashionMNIST", "ImageDataset", "ImageFolder", "MNIST", "TensorDataset", "load_embedded",
    "transforms",
]
