"""Downloads from a real HTTP server on 127.0.0.1: verified, atomic, nothing half-written."""
import dataclasses
import gzip
import hashlib
import io
import tarfile

import numpy as np
import pytest

from tinygrad_cnn.data import CIFAR10, DatasetError, FashionMNIST
from tinygrad_cnn.data.download import download_file, download_from_mirrors
from tinygrad_cnn.data.mnist import FASHION_MNIST_SOURCE


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def served_fashion(http_server, monkeypatch, idx_bytes):
    """The four Fashion-MNIST files, generated, served, and their MD5s put in the source."""
    rng = np.random.default_rng(0)
    files = {}
    for prefix, count in [("train", 8), ("t10k", 4)]:
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count, dtype=np.uint8)
        files[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes(images), mtime=0)
        files[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(labels), mtime=0)
    for name, data in files.items():
        http_server.files["/" + name] = data
    source = dataclasses.replace(FASHION_MNIST_SOURCE, md5={name: md5(data) for name, data in files.items()},
                                 mirrors=(http_server.url,), system_folders=())
    monkeypatch.setattr(FashionMNIST, "source", source)
    return files


def test_dataset_download_succeeds_and_leaves_only_the_files(tmp_path, served_fashion, http_server):
    dataset = FashionMNIST(root=tmp_path / "fm", train=False, download=True)
    assert len(dataset) == 4
    assert sorted(path.name for path in (tmp_path / "fm").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert (tmp_path / "fm" / "t10k-images-idx3-ubyte.gz").read_bytes() == served_fashion["t10k-images-idx3-ubyte.gz"]
    # A second construction finds the files and asks the server for nothing.
    asked = len(http_server.requests)
    FashionMNIST(root=tmp_path / "fm", train=False, download=True)
    assert len(http_server.requests) == asked


def test_download_goes_to_user_cache_without_root(tmp_path, served_fashion):
    dataset = FashionMNIST(train=True, download=True)
    assert dataset.folder == tmp_path / "xdg-cache" / "tinygrad_cnn" / "fashion-mnist"
    assert len(dataset) == 8


def test_mirrors_argument_overrides_the_source(tmp_path, served_fashion, http_server, monkeypatch):
    unreachable = dataclasses.replace(FashionMNIST.source, mirrors=("http://127.0.0.1:9/",))
    monkeypatch.setattr(FashionMNIST, "source", unreachable)
    dataset = FashionMNIST(root=tmp_path, train=False, download=True, mirrors=[http_server.url])
    assert len(dataset) == 4


def test_checksum_mismatch_leaves_no_file(tmp_path, http_server):
    http_server.files["/data.gz"] = b"some bytes"
    with pytest.raises(DatasetError, match="checksum mismatch.*expected MD5 0{32}"):
        download_file(http_server.url + "data.gz", tmp_path / "data.gz", "0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_http_404_leaves_no_file(tmp_path, http_server):
    with pytest.raises(DatasetError, match="404"):
        download_file(http_server.url + "missing.gz", tmp_path / "missing.gz", "0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_connection_dropped_mid_transfer_leaves_no_file(tmp_path, http_server):
    body = bytes(range(256)) * 100
    http_server.files["/big.gz"] = body
    http_server.dropped.add("/big.gz")
    with pytest.raises(DatasetError, match=f"interrupted: received {len(body) // 2} of {len(body)} bytes"):
        download_file(http_server.url + "big.gz", tmp_path / "big.gz", md5(body))
    assert list(tmp_path.iterdir()) == []


def test_failed_dataset_download_keeps_the_folder_clean_and_explains(tmp_path, served_fashion, http_server):
    http_server.dropped.add("/train-labels-idx1-ubyte.gz")
    with pytest.raises(DatasetError) as error:
        FashionMNIST(root=tmp_path, download=True)
    message = str(error.value)
    assert "Download failed" in message and "interrupted" in message and str(tmp_path) in message
    # The images file arrived whole before the labels failed; no partial labels file, no temp file.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["train-images-idx3-ubyte.gz"]


def test_next_mirror_is_tried_after_a_failure(tmp_path, http_server):
    http_server.files["/second/f.gz"] = b"payload"
    source = dataclasses.replace(FASHION_MNIST_SOURCE, md5={"f.gz": md5(b"payload")})
    path = download_from_mirrors(source, "f.gz", tmp_path,
                                 mirrors=[http_server.url + "first", http_server.url + "second/"])
    assert path.read_bytes() == b"payload"
    assert http_server.requests == ["/first/f.gz", "/second/f.gz"]


def test_corrupt_local_copy_is_replaced(tmp_path, http_server):
    http_server.files["/f.gz"] = b"payload"
    (tmp_path / "f.gz").write_bytes(b"payl")   # e.g. left by another tool
    source = dataclasses.replace(FASHION_MNIST_SOURCE, md5={"f.gz": md5(b"payload")}, mirrors=(http_server.url,))
    download_from_mirrors(source, "f.gz", tmp_path)
    assert (tmp_path / "f.gz").read_bytes() == b"payload"


def test_cifar_download_fetches_and_unpacks_the_archive(tmp_path, http_server, monkeypatch, cifar_bytes):
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        members = {f"data_batch_{n}.bin": 2 for n in range(1, 6)} | {"test_batch.bin": 3}
        for name, count in members.items():
            records = cifar_bytes(rng.integers(0, 256, (count, 3, 32, 32)), rng.integers(0, 10, count))
            add_member(tar, f"cifar-10-batches-bin/{name}", records)
        add_member(tar, "cifar-10-batches-bin/batches.meta.txt", "\n".join("abcdefghij").encode())
    archive = buffer.getvalue()
    http_server.files["/cifar-10-binary.tar.gz"] = archive
    monkeypatch.setattr(CIFAR10, "source", dataclasses.replace(
        CIFAR10.source, md5={"cifar-10-binary.tar.gz": md5(archive)}, mirrors=(http_server.url,)))

    dataset = CIFAR10(root=tmp_path, train=False, download=True)
    assert len(dataset) == 3 and dataset.classes == list("abcdefghij")
    assert len(CIFAR10(root=tmp_path, train=True)) == 10
    assert (tmp_path / "cifar-10-binary.tar.gz").read_bytes() == archive


def add_member(tar, name, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
