"""IDX parsing (the MNIST / Fashion-MNIST file format) and the MNIST-style datasets."""
import gzip
import struct

import numpy as np
import pytest

from tinygrad_cnn.data import MNIST, DatasetError, FashionMNIST
from tinygrad_cnn.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, read_labelled_images, write_idx
from tinygrad_cnn.data.mnist import FASHION_MNIST_CLASSES


def test_reads_official_layout_written_by_hand(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = struct.pack(">IIII", 2051, 2, 3, 4)
    (tmp_path / "images.gz").write_bytes(gzip.compress(header + images.tobytes()))
    (tmp_path / "labels.gz").write_bytes(gzip.compress(struct.pack(">II", 2049, 2) + bytes([7, 3])))

    np.testing.assert_array_equal(read_idx(tmp_path / "images.gz", IMAGES_MAGIC), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels.gz", LABELS_MAGIC), [7, 3])


@pytest.mark.parametrize("suffix", [".gz", ".xz", ""])
def test_write_idx_round_trip_and_is_deterministic(tmp_path, suffix):
    array = np.random.default_rng(1).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    first, second = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    write_idx(first, array)
    write_idx(second, array)
    assert first.read_bytes() == second.read_bytes()
    np.testing.assert_array_equal(read_idx(first, IMAGES_MAGIC), array)


def test_write_idx_matches_hand_written_bytes(tmp_path, idx_bytes):
    labels = np.array([1, 2, 3], dtype=np.uint8)
    write_idx(tmp_path / "labels", labels)
    assert (tmp_path / "labels").read_bytes() == idx_bytes(labels)


def test_mnist_split_loads_as_float_nchw(tmp_path, mnist_files):
    images, labels = mnist_files(tmp_path, count=6, seed=3, train=False)
    dataset = FashionMNIST(root=tmp_path, train=False)
    assert dataset.images.shape == (6, 1, 28, 28) and dataset.images.dtype == np.float32
    assert dataset.labels.dtype == np.int64
    np.testing.assert_allclose(dataset.images[:, 0], images / 255, rtol=1e-6)
    np.testing.assert_array_equal(dataset.labels, labels)
    assert dataset.classes == list(FASHION_MNIST_CLASSES)
    image, label = dataset[4]
    assert image.shape == (1, 28, 28) and label == labels[4]
    assert len(dataset) == 6


def test_mnist_reads_train_split_only_when_asked(tmp_path, mnist_files):
    train_images, _ = mnist_files(tmp_path, count=5, seed=1, train=True)
    mnist_files(tmp_path, count=2, seed=2, train=False)
    dataset = MNIST(root=tmp_path, train=True)
    assert len(dataset) == 5 and dataset.classes[3] == "3"
    np.testing.assert_allclose(dataset.images[:, 0] * 255, train_images, atol=1e-4)


def test_wrong_magic_names_file_and_expected_value(tmp_path, mnist_files, idx_bytes):
    mnist_files(tmp_path)
    labels_path = tmp_path / "train-labels-idx1-ubyte.gz"
    labels_path.write_bytes(gzip.compress(idx_bytes(np.zeros(6), magic=2051)))
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte\.gz.*magic number 2051, expected 2049"):
        FashionMNIST(root=tmp_path)


def test_truncated_content_reports_expected_and_actual_size(tmp_path, mnist_files, idx_bytes):
    images, _ = mnist_files(tmp_path, count=6)
    content = idx_bytes(images)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(content[:-100]))
    expected, actual = 16 + 6 * 28 * 28, 16 + 6 * 28 * 28 - 100
    with pytest.raises(DatasetError, match=rf"train-images-idx3-ubyte\.gz is truncated.*{expected}.*{actual}"):
        FashionMNIST(root=tmp_path)


def test_cut_gzip_stream_is_a_dataset_error_naming_the_file(tmp_path, mnist_files):
    mnist_files(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz is damaged or truncated"):
        FashionMNIST(root=tmp_path)


def test_label_count_mismatch(tmp_path, mnist_files, idx_bytes):
    mnist_files(tmp_path, count=6)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(5))))
    with pytest.raises(DatasetError, match="6 images but .* 5 labels"):
        FashionMNIST(root=tmp_path)


def test_read_labelled_images_adds_channel_axis(tmp_path, mnist_files):
    images, labels = mnist_files(tmp_path, count=3)
    read_images, read_labels = read_labelled_images(tmp_path / "train-images-idx3-ubyte.gz",
                                                    tmp_path / "train-labels-idx1-ubyte.gz")
    assert read_images.shape == (3, 1, 28, 28) and read_images.dtype == np.uint8
    np.testing.assert_array_equal(read_labels, labels)
