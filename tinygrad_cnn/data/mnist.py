"""MNIST and Fashion-MNIST: 28x28 grey images in 10 classes, read from the official IDX files.

Both datasets are published as the same four gzip files; ``train=True`` reads the 60,000
training images, ``train=False`` the 10,000 test images:

    train-images-idx3-ubyte.gz   train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz    t10k-labels-idx1-ubyte.gz

Where the files are looked for is explained in ``locations.py``; Fashion-MNIST is also found
where Debian's ``dataset-fashion-mnist`` package puts it. The checksums used for
``download=True`` are the published MD5s of the files on the mirrors (the ones torchvision
checks), and their sizes cap what a download may receive. Files found locally are not checked
against them (Debian recompresses the same content, for example), but their headers and
lengths are validated by ``idx.py``.

A loaded dataset is an ``ImageDataset``: ``images`` float32 (N, 1, 28, 28) in [0, 1],
``labels`` int64 (N,), ``classes`` the ten class names.
"""
from .download import download_from_mirrors
from .errors import DatasetError
from .idx import read_labelled_images
from ..utils.data import ImageDataset
from .locations import DatasetSource, find_or_download

SPLIT_FILES = {
    True: ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    False: ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

MNIST_SOURCE = DatasetSource(
    name="MNIST",
    folder="mnist",
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",),
    md5={
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    sizes={
        "train-images-idx3-ubyte.gz": 9_912_422,
        "train-labels-idx1-ubyte.gz": 28_881,
        "t10k-images-idx3-ubyte.gz": 1_648_877,
        "t10k-labels-idx1-ubyte.gz": 4_542,
    },
)

FASHION_MNIST_SOURCE = DatasetSource(
    name="Fashion-MNIST",
    folder="fashion-mnist",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    md5={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    sizes={
        "train-images-idx3-ubyte.gz": 26_421_880,
        "train-labels-idx1-ubyte.gz": 29_515,
        "t10k-images-idx3-ubyte.gz": 4_422_102,
        "t10k-labels-idx1-ubyte.gz": 5_148,
    },
    system_folders=(("/usr/share/datasets/fashion-mnist", "Debian package dataset-fashion-mnist"),),
    install_hint="install Debian's package: apt-get install dataset-fashion-mnist",
)

MNIST_CLASSES = tuple(str(digit) for digit in range(10))
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


class IdxImageDataset(ImageDataset):
    """A dataset published as the four MNIST-style IDX files; subclasses name the source."""

    source: DatasetSource
    class_names: tuple[str, ...]

    def __init__(self, root=None, train: bool = True, download: bool = False, mirrors=None):
        required = list(SPLIT_FILES[train])

        def fetch(folder):
            for filename in required:
                download_from_mirrors(self.source, filename, folder, mirrors)

        self.folder = find_or_download(self.source, required, root, download, fetch)
        self.train = train
        images, labels = read_labelled_images(self.folder / required[0], self.folder / required[1])
        if labels.max() >= len(self.class_names):
            raise DatasetError(f"{self.folder / required[1]} has label {labels.max()}; {self.source.name} labels "
                               f"are 0-{len(self.class_names) - 1}, so this is not its labels file")
        super().__init__(images, labels, self.class_names)


class MNIST(IdxImageDataset):
    """Handwritten digits 0-9 (LeCun et al.)."""

    source = MNIST_SOURCE
    class_names = MNIST_CLASSES


class FashionMNIST(IdxImageDataset):
    """Zalando's article images (Xiao et al. 2017), a harder drop-in replacement for MNIST."""

    source = FASHION_MNIST_SOURCE
    class_names = FASHION_MNIST_CLASSES
