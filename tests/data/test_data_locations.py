"""Where dataset files are looked for: root > $TINYGRAD_CNN_DATA > user cache > system folder."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn.data import DatasetError, FashionMNIST
from tinygrad_cnn.data.locations import download_folder, find_folder, user_cache_folder
from tinygrad_cnn.data.mnist import FASHION_MNIST_SOURCE

REQUIRED = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Four candidate folders; the system folder replaces Debian's for the test."""
    folders = {
        "root": tmp_path / "root",
        "env": tmp_path / "env" / "fashion-mnist",
        "cache": tmp_path / "xdg-cache" / "tinygrad_cnn" / "fashion-mnist",
        "system": tmp_path / "usr-share" / "fashion-mnist",
    }
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path / "env"))
    source = dataclasses.replace(FASHION_MNIST_SOURCE, system_folders=((str(folders["system"]), "test system folder"),))
    monkeypatch.setattr(FashionMNIST, "source", source)
    return folders, source


def test_each_place_is_used_in_order(places, mnist_files):
    folders, source = places
    for count, name in enumerate(["system", "cache", "env", "root"], start=2):
        mnist_files(folders[name], count=count)   # a different image count tells the places apart
    for count, name in [(5, "root"), (4, "env"), (3, "cache"), (2, "system")]:
        assert find_folder(source, REQUIRED, root=folders["root"]) == folders[name]
        assert len(FashionMNIST(root=folders["root"])) == count
        for path in folders[name].iterdir():
            path.unlink()


def test_a_place_missing_one_file_is_skipped(places, mnist_files):
    folders, source = places
    mnist_files(folders["env"], count=2)
    mnist_files(folders["cache"], count=3)
    (folders["env"] / REQUIRED[1]).unlink()
    assert find_folder(source, REQUIRED) == folders["cache"]


def test_not_found_error_lists_every_place_and_every_remedy(places, tmp_path):
    folders, _ = places
    with pytest.raises(DatasetError) as error:
        FashionMNIST(root=folders["root"])
    message = str(error.value)
    for folder in folders.values():
        assert str(folder) in message
    assert "download=True" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/" in message
    assert "train-images-idx3-ubyte.gz" in message


def test_unset_environment_variable_is_named_in_the_error(monkeypatch, tmp_path):
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    source = dataclasses.replace(FASHION_MNIST_SOURCE, system_folders=())
    monkeypatch.setattr(FashionMNIST, "source", source)
    with pytest.raises(DatasetError, match="TINYGRAD_CNN_DATA is not set"):
        FashionMNIST()


def test_cache_defaults_to_home_dot_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert user_cache_folder() == tmp_path / ".cache" / "tinygrad_cnn"


def test_download_folder_prefers_root_then_env_then_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    assert download_folder(FASHION_MNIST_SOURCE) == tmp_path / "xdg-cache" / "tinygrad_cnn" / "fashion-mnist"
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path / "shared"))
    assert download_folder(FASHION_MNIST_SOURCE) == tmp_path / "shared" / "fashion-mnist"
    assert download_folder(FASHION_MNIST_SOURCE, root=tmp_path / "mine") == tmp_path / "mine"


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").is_file(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_debian_package_folder_is_found():
    dataset = FashionMNIST(train=False)
    assert dataset.folder == Path("/usr/share/datasets/fashion-mnist")
    assert len(dataset) == 10000
    assert np.bincount(dataset.labels).tolist() == [1000] * 10
