"""TensorDataset, ImageDataset and the DataLoader: batching, shuffling, determinism."""
import numpy as np
import pytest

from tinygrad_cnn.data import DataLoader, Dataset, ImageDataset, TensorDataset
from tinygrad_cnn.random import manual_seed
from tinygrad_cnn.tensor_class import Tensor


class Wrapped:
    """Stands for any object carrying its values in an ndarray ``.data`` (like our Tensor)."""
    def __init__(self, data):
        self.data = data


class PerItemDataset(Dataset):
    """Not array-backed: the loader has to fetch samples one by one."""
    def __init__(self, count):
        self.count = count

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        return np.full((1, 2, 2), index, dtype=np.float32), index


def numbered_dataset(count=10):
    images = np.arange(count, dtype=np.float32).reshape(count, 1, 1, 1) * np.ones((1, 1, 2, 2), np.float32)
    return TensorDataset(images, np.arange(count, dtype=np.int64))


def label_order(loader):
    return np.concatenate([labels.data for _, labels in loader])


def test_tensor_dataset_indexing_and_length():
    dataset = TensorDataset(np.arange(6).reshape(3, 2), Wrapped(np.array([7, 8, 9])))
    assert len(dataset) == 3
    row, label = dataset[1]
    assert row.tolist() == [2, 3] and label == 8


def test_tensor_dataset_accepts_our_tensors():
    dataset = TensorDataset(Tensor(np.ones((4, 3), np.float32)), Tensor(np.arange(4)))
    assert isinstance(dataset.arrays[0], np.ndarray) and len(dataset) == 4


def test_tensor_dataset_rejects_unequal_lengths():
    with pytest.raises(ValueError, match=r"same length.*\[3, 2\]"):
        TensorDataset(np.zeros(3), np.zeros(2))


def test_dataset_is_abstract():
    with pytest.raises(TypeError):
        Dataset()


def test_image_dataset_scales_uint8_and_checks_labels():
    dataset = ImageDataset(np.full((2, 1, 2, 2), 255, np.uint8), np.array([0, 1], np.uint8), ["a", "b"])
    assert dataset.images.dtype == np.float32 and dataset.images.max() == 1.0
    assert dataset.labels.dtype == np.int64
    with pytest.raises(ValueError, match="labels must lie in"):
        ImageDataset(np.zeros((1, 1, 2, 2), np.float32), np.array([2]), ["a", "b"])


def test_batches_are_tensors_with_the_right_dtypes_and_sizes():
    loader = DataLoader(numbered_dataset(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 == len(batches)
    assert [images.data.shape for images, _ in batches] == [(4, 1, 2, 2), (4, 1, 2, 2), (2, 1, 2, 2)]
    images, labels = batches[0]
    assert isinstance(images, Tensor) and isinstance(labels, Tensor)
    assert images.data.dtype == np.float32 and labels.data.dtype == np.int64
    assert label_order(loader).tolist() == list(range(10))
    np.testing.assert_array_equal(batches[2][0].data[:, 0, 0, 0], [8, 9])


def test_drop_last_skips_the_short_batch():
    loader = DataLoader(numbered_dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert label_order(loader).tolist() == list(range(8))


def test_seeded_shuffle_is_repeatable_and_new_each_epoch():
    first = DataLoader(numbered_dataset(50), batch_size=8, shuffle=True, seed=3)
    second = DataLoader(numbered_dataset(50), batch_size=8, shuffle=True, seed=3)
    epoch_one, epoch_two = label_order(first), label_order(first)
    assert sorted(epoch_one.tolist()) == list(range(50))
    assert epoch_one.tolist() != list(range(50))
    assert epoch_one.tolist() != epoch_two.tolist()
    assert label_order(second).tolist() == epoch_one.tolist()
    assert label_order(second).tolist() == epoch_two.tolist()


def test_seeded_loader_ignores_the_library_generator():
    loader = DataLoader(numbered_dataset(30), batch_size=8, shuffle=True, seed=5)
    manual_seed(0)
    order = label_order(loader)
    loader_again = DataLoader(numbered_dataset(30), batch_size=8, shuffle=True, seed=5)
    manual_seed(123)
    assert label_order(loader_again).tolist() == order.tolist()


def test_unseeded_shuffle_follows_manual_seed():
    loader = DataLoader(numbered_dataset(30), batch_size=7, shuffle=True)
    manual_seed(42)
    first = label_order(loader)
    manual_seed(42)
    assert label_order(loader).tolist() == first.tolist()
    manual_seed(43)
    assert label_order(loader).tolist() != first.tolist()


def test_images_and_labels_stay_paired_when_shuffled():
    for images, labels in DataLoader(numbered_dataset(20), batch_size=6, shuffle=True, seed=0):
        np.testing.assert_array_equal(images.data[:, 0, 1, 1], labels.data)


def test_per_item_dataset_is_stacked_like_an_array_dataset():
    per_item = list(DataLoader(PerItemDataset(5), batch_size=2, shuffle=True, seed=9))
    arrays = list(DataLoader(numbered_dataset(5), batch_size=2, shuffle=True, seed=9))
    for (item_images, item_labels), (array_images, array_labels) in zip(per_item, arrays):
        np.testing.assert_array_equal(item_images.data[:, 0, 0, 0], array_images.data[:, 0, 0, 0])
        np.testing.assert_array_equal(item_labels.data, array_labels.data)
    assert per_item[0][0].data.shape == (2, 1, 2, 2)


def test_transform_is_applied_to_the_image_batch_only():
    loader = DataLoader(numbered_dataset(4), batch_size=4, transform=lambda images: images * 10)
    images, labels = next(iter(loader))
    assert images.data[:, 0, 0, 0].tolist() == [0, 10, 20, 30]
    assert labels.data.tolist() == [0, 1, 2, 3]


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError):
        DataLoader(numbered_dataset(), batch_size=0)


def test_image_dataset_subset_keeps_images_labels_and_classes():
    from tinygrad_cnn.data import ImageDataset

    images = np.arange(5 * 4, dtype=np.float32).reshape(5, 1, 2, 2) / 20
    dataset = ImageDataset(images, np.array([0, 1, 2, 1, 0]), ["a", "b", "c"])
    part = dataset.subset(slice(1, 4))
    assert len(part) == 3 and part.classes == ["a", "b", "c"]
    np.testing.assert_array_equal(part.labels, [1, 2, 1])
    np.testing.assert_array_equal(part.images, images[1:4])
    np.testing.assert_array_equal(dataset.subset(np.array([4, 0])).labels, [0, 0])
