"""The Fashion-MNIST subset shipped in the package."""
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn.data import EmbeddedFashionMNIST, ImageDataset, load_embedded
from tinygrad_cnn.data.embedded import EMBEDDED_FOLDER
from tinygrad_cnn.data.mnist import FASHION_MNIST_CLASSES

OFFICIAL_FOLDER = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def train_split():
    return load_embedded(train=True)


@pytest.fixture(scope="module")
def test_split():
    return load_embedded(train=False)


def test_shapes_dtypes_and_range(train_split, test_split):
    assert isinstance(train_split, EmbeddedFashionMNIST) and isinstance(train_split, ImageDataset)
    assert train_split.images.shape == (10000, 1, 28, 28) and test_split.images.shape == (2000, 1, 28, 28)
    for split in (train_split, test_split):
        assert split.images.dtype == np.float32 and split.labels.dtype == np.int64
        assert split.images.min() == 0.0 and split.images.max() == 1.0
        assert split.classes == list(FASHION_MNIST_CLASSES)


def test_classes_are_balanced(train_split, test_split):
    assert np.bincount(train_split.labels, minlength=10).tolist() == [1000] * 10
    assert np.bincount(test_split.labels, minlength=10).tolist() == [200] * 10


def test_images_are_real_and_distinct(train_split):
    # Fashion-MNIST's mean pixel is about 0.286; random or blank data would not be.
    assert 0.25 < float(train_split.images.mean()) < 0.32
    flat = train_split.images[:500].reshape(500, -1)
    assert len(np.unique(flat, axis=0)) == 500


def test_files_fit_the_size_budget_and_carry_a_licence():
    data_bytes = sum(path.stat().st_size for path in EMBEDDED_FOLDER.glob("*.xz"))
    assert data_bytes < 5_000_000
    assert "MIT" in (EMBEDDED_FOLDER / "LICENSE").read_text()


@pytest.mark.skipif(not (OFFICIAL_FOLDER / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="official Fashion-MNIST files (apt-get install dataset-fashion-mnist) not here")
def test_test_split_is_the_first_200_of_each_class_of_the_official_test_file(test_split):
    from tinygrad_cnn.data import FashionMNIST
    official = FashionMNIST(root=OFFICIAL_FOLDER, train=False)
    chosen = np.sort(np.concatenate([np.flatnonzero(official.labels == c)[:200] for c in range(10)]))
    np.testing.assert_array_equal(test_split.images, official.images[chosen])
    np.testing.assert_array_equal(test_split.labels, official.labels[chosen])
