"""Downloads from a real HTTP server on 127.0.0.1: verified, atomic, nothing half-written."""
import dataclasses
import gzip
import hashlib
import io
import socket
import tarfile
import threading
import time

import numpy as np
import pytest

from tinygrad_cnn.data import CIFAR10, DatasetError, FashionMNIST
from tinygrad_cnn.data.download import deadline_for, download_file, download_from_mirrors
from tinygrad_cnn.data.mnist import FASHION_MNIST_SOURCE, MNIST_SOURCE


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
                                 sizes={name: len(data) for name, data in files.items()},
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


# ---- size caps and the deadline: hostile servers ----------------------------------------------
# Peak memory is measured with tracemalloc (Python and NumPy allocations, socket buffers included).

MB = 1 << 20


def test_server_sending_more_than_the_file_is_cut_off(tmp_path, http_server, traced_peak):
    http_server.endless.add("/endless.gz")   # no Content-Length, zeros for ever
    peak, error = traced_peak(lambda: download_file(http_server.url + "endless.gz", tmp_path / "f.gz",
                                                    "0" * 32, size=2 * MB, deadline_seconds=20))
    assert isinstance(error, DatasetError), error
    assert "cut off: the server sent more than the 2,097,152 bytes the file has" in str(error)
    assert peak < 4 * MB, f"peak {peak / MB:.1f} MiB"
    print(f"endless server: peak {peak / 1024:.0f} KiB")
    assert list(tmp_path.iterdir()) == []


def test_announced_length_above_the_file_size_is_refused_before_reading(tmp_path, http_server, traced_peak):
    http_server.files["/big.gz"] = bytes(1000)
    http_server.announced["/big.gz"] = 10**12
    peak, error = traced_peak(lambda: download_file(http_server.url + "big.gz", tmp_path / "f.gz",
                                                    md5(bytes(1000)), size=1000))
    assert isinstance(error, DatasetError) and "announces 1,000,000,000,000 bytes, but the file has 1,000" in str(error)
    assert peak < 1 * MB
    assert list(tmp_path.iterdir()) == []


def test_a_body_of_exactly_the_expected_size_passes(tmp_path, http_server):
    http_server.files["/f.gz"] = b"x" * 5000
    download_file(http_server.url + "f.gz", tmp_path / "f.gz", md5(b"x" * 5000), size=5000)
    assert (tmp_path / "f.gz").read_bytes() == b"x" * 5000


@pytest.mark.parametrize("trickle_seconds", [0.05, 10.0], ids=["one-byte-at-a-time", "silent"])
def test_slow_server_is_stopped_by_the_deadline(tmp_path, http_server, trickle_seconds):
    # 0.05 s a byte: 1,000 body bytes would take a minute, and each read is well within any
    # socket timeout; a silent server sends nothing at all after accepting the connection.
    http_server.trickled.add("/slow.gz")
    http_server.trickle_seconds = trickle_seconds
    started = time.monotonic()
    with pytest.raises(DatasetError, match=r"slow\.gz stopped after the deadline of 1 s"):
        download_file(http_server.url + "slow.gz", tmp_path / "slow.gz", "0" * 32, size=1000,
                      deadline_seconds=1.0)
    assert time.monotonic() - started < 3
    assert list(tmp_path.iterdir()) == []


def test_dataset_download_passes_the_deadline_to_each_mirror(tmp_path, http_server):
    http_server.trickled.add("/slow/f.gz")
    http_server.files["/fast/f.gz"] = b"payload"
    source = dataclasses.replace(FASHION_MNIST_SOURCE, md5={"f.gz": md5(b"payload")}, sizes={"f.gz": 7})
    started = time.monotonic()
    path = download_from_mirrors(source, "f.gz", tmp_path, mirrors=[http_server.url + "slow", http_server.url + "fast"],
                                 deadline_seconds=0.5)
    assert path.read_bytes() == b"payload" and time.monotonic() - started < 3


def test_official_sources_list_the_size_of_every_file():
    for source in (FASHION_MNIST_SOURCE, MNIST_SOURCE, CIFAR10.source):
        assert set(source.sizes) == set(source.md5)
    assert deadline_for(CIFAR10.source.sizes["cifar-10-binary.tar.gz"]) > 3000   # an hour at 50 kB/s


def test_https_goes_through_the_same_deadline_handlers(tmp_path, http_server):
    # The local server speaks plain HTTP, so the TLS handshake fails: what matters is that the
    # HTTPS handler (with its context options) opens connections through the watched path.
    https_url = http_server.url.replace("http://", "https://") + "f.gz"
    with pytest.raises(DatasetError, match=r"download of https://127\.0\.0\.1:\d+/f\.gz failed: .*SSL"):
        download_file(https_url, tmp_path / "f.gz", "0" * 32, size=10, deadline_seconds=5)
    assert list(tmp_path.iterdir()) == []


def test_deadline_covers_a_stalled_tls_handshake(tmp_path):
    # A TCP server that accepts and says nothing, so the TLS handshake waits for its reply. The
    # socket timeout is set past the deadline (2 s here), so stopping at 1 s is the deadline's doing.
    listener = socket.create_server(("127.0.0.1", 0))
    accepted, done = [], threading.Event()

    def accept_and_hold():
        connection, _ = listener.accept()
        accepted.append(connection)
        done.wait(10)
        connection.close()

    holder = threading.Thread(target=accept_and_hold, daemon=True)
    holder.start()
    started = time.monotonic()
    try:
        with pytest.raises(DatasetError, match="stopped after the deadline of 1 s"):
            download_file(f"https://127.0.0.1:{listener.getsockname()[1]}/f.gz", tmp_path / "f.gz", "0" * 32,
                          size=10, deadline_seconds=1.0)
        assert time.monotonic() - started < 1.8 and accepted
    finally:
        done.set()
        holder.join(5)
        listener.close()
