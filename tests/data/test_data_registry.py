"""The dataset registry (data/registry.py): one table of names, the command line's choices."""
import numpy as np
import pytest

from tinygrad_cnn import data
from tinygrad_cnn.__main__ import build_parser
from tinygrad_cnn.data import DATASETS, DatasetError, ImageDataset, load_dataset


def choices_of(parser, command, option="--dataset"):
    subcommands = next(action for action in parser._actions if action.dest == "command")
    return next(action.choices for action in subcommands.choices[command]._actions if option in action.option_strings)


def test_command_line_offers_exactly_the_registered_datasets():
    parser = build_parser()
    for command in ("train", "evaluate"):
        assert list(choices_of(parser, command)) == list(DATASETS)
    assert set(DATASETS) == {"embedded", "fashion-mnist", "mnist", "cifar10", "imagefolder"}
    assert all(entry.title and entry.description for entry in DATASETS.values())


def test_embedded_by_name():
    test_set = load_dataset("embedded", train=False)
    assert isinstance(test_set, ImageDataset) and test_set.images.shape == (2000, 1, 28, 28)


def test_idx_datasets_by_name(tmp_path, mnist_files):
    images, labels = mnist_files(tmp_path, count=4, train=False)
    for name in ("mnist", "fashion-mnist"):
        dataset = load_dataset(name, tmp_path, train=False)
        np.testing.assert_array_equal(dataset.labels, labels)


@pytest.fixture
def image_folders(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    for split, count in [("train", 3), ("val", 2)]:
        for name in ("cat", "dog"):
            (tmp_path / split / name).mkdir(parents=True)
            for number in range(count):
                pixels = np.full((4, 4, 3), 40 * number, np.uint8)
                Image.fromarray(pixels).save(tmp_path / split / name / f"{number}.png")
    return tmp_path


@pytest.mark.parametrize("name", ["imagefolder", "cifar10"])
def test_image_folders_by_name(image_folders, name):
    train_set = load_dataset(name, image_folders, train=True)
    test_set = load_dataset(name, image_folders, train=False)   # val/ serves as the test split
    assert train_set.images.shape == (6, 3, 4, 4) and test_set.images.shape == (4, 3, 4, 4)
    assert train_set.classes == ["cat", "dog"]


def test_cifar10_reads_binary_batches_by_name(tmp_path, cifar_files):
    content = cifar_files(tmp_path, per_batch=2)
    np.testing.assert_array_equal(load_dataset("cifar10", tmp_path, train=False).labels, content["test_batch.bin"][1])


def test_imagefolder_needs_a_root_and_splits(tmp_path):
    with pytest.raises(DatasetError, match="--dataset imagefolder needs --data-dir"):
        load_dataset("imagefolder")
    with pytest.raises(DatasetError, match=r"has no test/ or val/ folder"):
        load_dataset("imagefolder", tmp_path, train=False)


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'; choose one of embedded, fashion-mnist"):
        load_dataset("svhn")


def test_training_module_uses_the_registry():
    from tinygrad_cnn import train
    assert train.DATASETS == tuple(data.DATASETS)


def test_figure_titles_come_from_the_registry():
    from tinygrad_cnn.__main__ import _dataset_title
    assert _dataset_title({"dataset": "embedded"}) == "Fashion-MNIST (embedded subset)"
    assert _dataset_title({"dataset": "cifar10", "data_dir": "/data/cifar-jpeg"}) == "CIFAR-10"
    assert _dataset_title({"dataset": "imagefolder", "data_dir": "/data/flowers"}) == "image folder 'flowers'"
