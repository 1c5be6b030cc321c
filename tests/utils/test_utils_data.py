"""tinygrad_cnn.utils.data: datasets, samplers, default_collate and the DataLoader (batching,
shuffling, determinism, torch's arguments), compared with torch.utils.data where torch is installed."""
from collections import OrderedDict, namedtuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn.utils.data import (
    BatchSampler, ConcatDataset, DataLoader, Dataset, ImageDataset, IterableDataset, RandomSampler, SequentialSampler,
    Subset, SubsetRandomSampler, TensorDataset, WeightedRandomSampler, default_collate, get_worker_info, random_split,
)
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


def test_dataset_base_needs_getitem_and_adds_as_torch():
    with pytest.raises(NotImplementedError, match="__getitem__"):
        Dataset()[0]
    joined = numbered_dataset(3) + PerItemDataset(2)
    assert isinstance(joined, ConcatDataset) and len(joined) == 5
    assert joined[2][1] == 2 and joined[3][1] == 0 and joined[-1][1] == 1
    with pytest.raises(IndexError):
        joined[-6]


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
    images = np.arange(5 * 4, dtype=np.float32).reshape(5, 1, 2, 2) / 20
    dataset = ImageDataset(images, np.array([0, 1, 2, 1, 0]), ["a", "b", "c"])
    part = dataset.subset(slice(1, 4))
    assert len(part) == 3 and part.classes == ["a", "b", "c"]
    np.testing.assert_array_equal(part.labels, [1, 2, 1])
    np.testing.assert_array_equal(part.images, images[1:4])
    np.testing.assert_array_equal(dataset.subset(np.array([4, 0])).labels, [0, 0])


# ---- torch's arguments and collation ----------------------------------------------------------------

Point = namedtuple("Point", "x y")


class DictDataset(Dataset):
    """Samples as dicts mixing arrays, Python numbers, strings and NumPy scalars."""
    def __len__(self):
        return 5

    def __getitem__(self, index):
        return {"image": np.full((2, 3), index, dtype=np.float32), "label": index, "weight": index / 2,
                "name": f"item{index}", "flag": index % 2 == 0, "small": np.int16(index)}


def test_default_collate_follows_torchs_rules():
    batch = default_collate([(np.zeros(2, np.float32), 1, 0.5, True, np.float32(2)),
                             (np.ones(2, np.float32), 2, 1.5, False, np.float32(3))])
    assert isinstance(batch, list) and len(batch) == 5   # a tuple sample gives a list, as in torch
    assert [field.dtype for field in batch] == [np.float32, np.int64, np.float64, np.bool_, np.float32]
    np.testing.assert_array_equal(batch[0].data, [[0, 0], [1, 1]])
    assert batch[1].data.tolist() == [1, 2] and batch[2].data.tolist() == [0.5, 1.5]
    points = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(points, Point) and points.x.data.tolist() == [1, 3] and points.y.dtype == np.float64
    ordered = default_collate([OrderedDict(b=1, a="x"), OrderedDict(b=2, a="y")])
    assert isinstance(ordered, OrderedDict) and list(ordered) == ["b", "a"] and ordered["a"] == ["x", "y"]
    assert [t.data.tolist() for t in default_collate([[1, 2], [3, 4]])] == [[1, 3], [2, 4]]
    with pytest.raises(TypeError, match="default_collate.*object"):
        default_collate([object()])
    with pytest.raises(TypeError, match="<U1"):
        default_collate([np.array(["a"])])
    with pytest.raises(RuntimeError, match="same length"):
        default_collate([[1, 2], [3]])


def test_default_collate_gives_torchs_dtypes_and_values():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate
    samples = [DictDataset()[i] for i in range(3)]
    ours, theirs = default_collate(samples), torch_collate(samples)
    assert list(ours) == list(theirs)
    for key in ours:
        if isinstance(theirs[key], torch.Tensor):
            assert ours[key].data.dtype == theirs[key].numpy().dtype, key
            np.testing.assert_array_equal(ours[key].data, theirs[key].numpy())
        else:
            assert ours[key] == theirs[key]


def test_dict_samples_are_batched_into_a_dict():
    loader = DataLoader(DictDataset(), batch_size=2)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert batches[0]["image"].shape == (2, 2, 3) and batches[0]["label"].data.tolist() == [0, 1]
    assert batches[2]["name"] == ["item4"] and batches[1]["flag"].data.tolist() == [True, False]


def test_fast_path_gives_the_same_batches_as_collating_samples_one_by_one():
    dataset = numbered_dataset(10)
    fast = list(DataLoader(dataset, batch_size=4, shuffle=True, seed=1))
    per_sample = list(DataLoader(dataset, batch_size=4, shuffle=True, seed=1, collate_fn=default_collate))
    for (a_images, a_labels), (b_images, b_labels) in zip(fast, per_sample):
        assert a_images.dtype == b_images.dtype and a_labels.dtype == b_labels.dtype
        np.testing.assert_array_equal(a_images.data, b_images.data)
        np.testing.assert_array_equal(a_labels.data, b_labels.data)


def test_fast_path_does_not_call_getitem():
    class Counting(TensorDataset):
        calls = 0

        def __getitem__(self, index):
            Counting.calls += 1
            return super().__getitem__(index)

    list(DataLoader(Counting(np.zeros((9, 2)), np.arange(9)), batch_size=4, shuffle=True))
    assert Counting.calls == 0


def test_collate_fn_receives_the_list_of_samples():
    seen = []
    loader = DataLoader(numbered_dataset(5), batch_size=2, collate_fn=lambda samples: seen.append(samples) or len(samples))
    assert list(loader) == [2, 2, 1]
    assert [int(label) for _, label in seen[0]] == [0, 1]


def test_num_workers_and_pin_memory_are_accepted_and_change_nothing():
    plain = list(DataLoader(DictDataset(), batch_size=2, shuffle=True, seed=4))
    workers = list(DataLoader(DictDataset(), batch_size=2, shuffle=True, seed=4, num_workers=2, pin_memory=True,
                              persistent_workers=True, prefetch_factor=2, worker_init_fn=lambda worker: 1 / 0))
    assert [b["label"].data.tolist() for b in workers] == [b["label"].data.tolist() for b in plain]
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(DictDataset(), num_workers=-1)


def test_samplers_and_batch_samplers():
    dataset = numbered_dataset(10)
    order = label_order(DataLoader(dataset, batch_size=3, sampler=SubsetRandomSampler([7, 1, 4],
                                                                                       np.random.default_rng(0))))
    assert sorted(order.tolist()) == [1, 4, 7]
    batches = [[9, 0], [5], [2, 2, 2]]
    loader = DataLoader(dataset, batch_sampler=batches)
    assert [labels.data.tolist() for _, labels in loader] == batches and len(loader) == 3
    assert list(BatchSampler(SequentialSampler(range(5)), 2, drop_last=True)) == [[0, 1], [2, 3]]
    assert len(BatchSampler(SequentialSampler(range(5)), 2, drop_last=False)) == 3
    drawn = list(RandomSampler(range(4), replacement=True, num_samples=50, generator=np.random.default_rng(0)))
    assert len(drawn) == 50 and set(drawn) <= {0, 1, 2, 3}
    longer = list(RandomSampler(range(4), num_samples=10, generator=np.random.default_rng(0)))
    assert sorted(longer[:4]) == [0, 1, 2, 3] and len(longer) == 10
    weighted = list(WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 200, generator=np.random.default_rng(0)))
    assert set(weighted) == {1, 3} and 100 < weighted.count(3) < 190
    for bad in (dict(shuffle=True, sampler=[0, 1]), dict(batch_sampler=batches, batch_size=2),
                dict(batch_sampler=batches, drop_last=True), dict(batch_size=None, drop_last=True)):
        with pytest.raises(ValueError):
            DataLoader(dataset, **bad)


def test_batch_size_none_yields_converted_samples():
    samples = list(DataLoader(numbered_dataset(3), batch_size=None))
    assert len(samples) == 3 and samples[1][0].shape == (1, 2, 2) and int(samples[1][1].item()) == 1


def test_iterable_dataset_is_batched_in_stream_order():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(7))

    assert [b.data.tolist() for b in DataLoader(Stream(), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.data.tolist() for b in DataLoader(Stream(), batch_size=3, drop_last=True)] == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ValueError, match="IterableDataset"):
        DataLoader(Stream(), shuffle=True)

    class ShardedStream(IterableDataset):
        """Splits its work between workers as torch's documentation shows; here there are none."""
        def __iter__(self):
            info = get_worker_info()
            return iter(range(5) if info is None else range(info.id, 5, info.num_workers))

    assert [b.data.tolist() for b in DataLoader(ShardedStream(), batch_size=5, num_workers=2)] == [[0, 1, 2, 3, 4]]


def test_subset_and_random_split():
    dataset = numbered_dataset(10)
    part = Subset(dataset, [3, 8])
    assert len(part) == 2 and part[1][1] == 8
    first, second = random_split(dataset, [7, 3], generator=np.random.default_rng(0))
    labels = sorted(int(first[i][1]) for i in range(7)) + sorted(int(second[i][1]) for i in range(3))
    assert sorted(labels) == list(range(10)) and len(first) == 7 and len(second) == 3
    assert [len(s) for s in random_split(dataset, [0.5, 0.3, 0.2])] == [5, 3, 2]
    assert [len(s) for s in random_split(range(11), [0.5, 0.5])] == [6, 5]   # the extra one goes first, as torch
    with pytest.raises(ValueError, match="sum to"):
        random_split(dataset, [5, 4])


def test_transform_applies_to_collated_batches_too():
    loader = DataLoader(PerItemDataset(4), batch_size=4, transform=lambda images: images + 100)
    images, labels = next(iter(loader))
    assert images.data[:, 0, 0, 0].tolist() == [100, 101, 102, 103] and labels.data.tolist() == [0, 1, 2, 3]


def test_tensor_dataset_rows_of_tensors_are_tensors():
    dataset = TensorDataset(Tensor(np.ones((4, 3), np.float32)), np.arange(4))
    row, label = dataset[2]
    assert isinstance(row, Tensor) and isinstance(label, np.integer)
    assert len(dataset.tensors) == 2 and isinstance(dataset.tensors[1], Tensor)


@given(length=st.integers(0, 30), batch_size=st.integers(1, 8), shuffle=st.booleans(), drop_last=st.booleans(),
       seed=st.integers(0, 2**16))
def test_every_sample_once_per_epoch_in_batches_of_the_promised_sizes(length, batch_size, shuffle, drop_last, seed):
    dataset = numbered_dataset(length)
    fast = DataLoader(dataset, batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed)
    per_sample = DataLoader(dataset, batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed,
                            collate_fn=default_collate)
    fast_batches, per_sample_batches = list(fast), list(per_sample)
    full, rest = divmod(length, batch_size)
    expected_sizes = [batch_size] * full + ([rest] if rest and not drop_last else [])
    assert len(fast) == len(per_sample) == len(fast_batches) == len(expected_sizes)
    assert [len(labels.data) for _, labels in fast_batches] == expected_sizes
    labels = np.concatenate([labels.data for _, labels in fast_batches]) if fast_batches else np.array([], int)
    assert len(set(labels.tolist())) == len(labels) and set(labels.tolist()) <= set(range(length))
    if not shuffle:
        assert labels.tolist() == list(range(len(labels)))
    for (images, labels), (images_again, labels_again) in zip(fast_batches, per_sample_batches):
        np.testing.assert_array_equal(labels.data, labels_again.data)
        np.testing.assert_array_equal(images.data, images_again.data)
        np.testing.assert_array_equal(images.data[:, 0, 0, 0], labels.data)   # still paired
