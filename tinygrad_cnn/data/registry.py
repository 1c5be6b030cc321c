"""The datasets known by name, in one table like the model zoo's ``MODELS``: the command line's
``--dataset`` choices are its keys, and ``load_dataset(name, ...)`` is the one dispatch.

    embedded       the Fashion-MNIST subset shipped in the package (embedded.py)
    fashion-mnist  Fashion-MNIST from the official IDX files (mnist.py)
    mnist          MNIST from the official IDX files (mnist.py)
    cifar10        CIFAR-10 from the official binary batches (cifar.py), or from image folders
    imagefolder    root/train/<class>/<image> and root/test/<class>/<image> (folder.py)

Every loader returns an ``ImageDataset`` (images float32 (N, C, H, W) in [0, 1]) for the
training or the test split. A new dataset is one entry here.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .cifar import CIFAR10
from .embedded import load_embedded
from .errors import DatasetError
from .folder import ImageFolder
from ..utils.data import ImageDataset
from .mnist import MNIST, FashionMNIST


@dataclass(frozen=True)
class DatasetEntry:
    """How to load one named dataset, and how to name it to a reader."""

    load: Callable[..., ImageDataset]   # load(root, train, download)
    title: str                          # for figures and messages, e.g. "Fashion-MNIST"
    description: str                    # for the command line's help


def load_image_folders(root, train: bool, download: bool = False, name: str = "imagefolder") -> ImageDataset:
    """``root/train/<class>/*`` or ``root/test/<class>/*`` (``val/`` is accepted for the test
    split), decoded into memory. ``download`` is ignored: there is nothing to fetch."""
    if root is None:
        raise DatasetError(f"--dataset {name} needs --data-dir: a folder with train/ and test/ "
                           "subfolders, each holding one folder of images per class")
    root = Path(root)
    names = ("train",) if train else ("test", "val")
    for split in names:
        if (root / split).is_dir():
            return ImageFolder(root / split).load_all()
    raise DatasetError(f"{root} has no {' or '.join(n + '/' for n in names)} folder "
                       "(expected root/train/<class>/<image> and root/test/<class>/<image>)")


def _load_cifar10(root, train: bool, download: bool = False) -> ImageDataset:
    if root is not None and (Path(root) / "train").is_dir():   # CIFAR-10 saved as image folders
        return load_image_folders(root, train, download, name="cifar10")
    return CIFAR10(root, train=train, download=download)


DATASETS = {
    "embedded": DatasetEntry(
        lambda root, train, download: load_embedded(train), "Fashion-MNIST (embedded subset)",
        "10,000/2,000 Fashion-MNIST images shipped in the package"),
    "fashion-mnist": DatasetEntry(
        lambda root, train, download: FashionMNIST(root, train=train, download=download), "Fashion-MNIST",
        "the official Fashion-MNIST IDX files"),
    "mnist": DatasetEntry(
        lambda root, train, download: MNIST(root, train=train, download=download), "MNIST",
        "the official MNIST IDX files"),
    "cifar10": DatasetEntry(
        _load_cifar10, "CIFAR-10",
        "the binary batches, or image folders laid out as for imagefolder"),
    "imagefolder": DatasetEntry(
        load_image_folders, "image folders",
        "DATA_DIR/train/<class>/*.png|jpg and DATA_DIR/test/<class>/..."),
}


def load_dataset(name: str, root=None, train: bool = True, download: bool = False) -> ImageDataset:
    """The training or test split of the dataset called ``name`` in ``DATASETS``."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name].load(root, train, download)
