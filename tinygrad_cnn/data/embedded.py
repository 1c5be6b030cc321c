"""The small real Fashion-MNIST subset shipped inside the package, so examples run offline.

``embedded/`` holds 10,000 training images (1,000 per class, from the official training
file) and 2,000 test images (200 per class, from the official test file), stored as
xz-compressed IDX files and read by the same code as the full dataset. How the images
were chosen, and the licence, are in ``embedded/README.md``; the script that rebuilds the
files is ``scripts/build_embedded_dataset.py``.
"""
from pathlib import Path

from .idx import read_labelled_images
from ..utils.data import ImageDataset
from .mnist import FASHION_MNIST_CLASSES

EMBEDDED_FOLDER = Path(__file__).parent / "embedded"
EMBEDDED_FILES = {
    True: ("train-images-idx3-ubyte.xz", "train-labels-idx1-ubyte.xz"),
    False: ("t10k-images-idx3-ubyte.xz", "t10k-labels-idx1-ubyte.xz"),
}


class EmbeddedFashionMNIST(ImageDataset):
    """The embedded subset: like ``FashionMNIST``, images float32 (N, 1, 28, 28) in [0, 1],
    int64 labels, the same ten class names."""

    def __init__(self, train: bool = True):
        images_name, labels_name = EMBEDDED_FILES[train]
        self.folder = EMBEDDED_FOLDER
        self.train = train
        images, labels = read_labelled_images(self.folder / images_name, self.folder / labels_name)
        super().__init__(images, labels, FASHION_MNIST_CLASSES)


def load_embedded(train: bool = True) -> EmbeddedFashionMNIST:
    """The embedded Fashion-MNIST subset: 10,000 training or 2,000 test images."""
    return EmbeddedFashionMNIST(train)
