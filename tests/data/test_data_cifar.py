"""CIFAR-10 binary batches: record layout, validation, unpacking the archive."""
import io
import tarfile

import numpy as np
import pytest

from tinygrad_cnn.data import CIFAR10, DatasetError
from tinygrad_cnn.data.cifar import extract_batches, read_batch


def test_train_split_concatenates_the_five_batches_in_order(tmp_path, cifar_files):
    content = cifar_files(tmp_path, per_batch=3)
    dataset = CIFAR10(root=tmp_path, train=True)
    expected_images = np.concatenate([content[f"data_batch_{n}.bin"][0] for n in range(1, 6)])
    expected_labels = np.concatenate([content[f"data_batch_{n}.bin"][1] for n in range(1, 6)])
    assert dataset.images.shape == (15, 3, 32, 32) and dataset.images.dtype == np.float32
    np.testing.assert_allclose(dataset.images * 255, expected_images, atol=1e-4)
    np.testing.assert_array_equal(dataset.labels, expected_labels)
    assert dataset.labels.dtype == np.int64
    assert dataset.classes[0] == "airplane" and dataset.classes[-1] == "truck"


def test_record_is_label_then_red_green_blue_planes(tmp_path):
    record = bytes([7]) + bytes([10] * 1024) + bytes([20] * 1024) + bytes([30] * 1024)
    (tmp_path / "one.bin").write_bytes(record)
    images, labels = read_batch(tmp_path / "one.bin")
    assert labels.tolist() == [7]
    assert images.shape == (1, 3, 32, 32)
    assert images[0, 0].max() == 10 and images[0, 1].min() == 20 and images[0, 2, 31, 31] == 30


def test_test_split(tmp_path, cifar_files):
    content = cifar_files(tmp_path, per_batch=4)
    dataset = CIFAR10(root=tmp_path, train=False)
    np.testing.assert_array_equal(dataset.labels, content["test_batch.bin"][1])


def test_truncated_record_is_reported_with_sizes(tmp_path, cifar_files):
    cifar_files(tmp_path, per_batch=3)
    path = tmp_path / "cifar-10-batches-bin" / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetError, match=r"data_batch_2\.bin has 9209 bytes.*3073-byte records"):
        CIFAR10(root=tmp_path)


def test_label_out_of_range(tmp_path):
    (tmp_path / "bad.bin").write_bytes(bytes([12]) + bytes(3072))
    with pytest.raises(DatasetError, match="label 12"):
        read_batch(tmp_path / "bad.bin")


def test_wrong_number_of_class_names(tmp_path, cifar_files):
    cifar_files(tmp_path)
    (tmp_path / "cifar-10-batches-bin" / "batches.meta.txt").write_text("cat\ndog\n")
    with pytest.raises(DatasetError, match="2 class names, expected 10"):
        CIFAR10(root=tmp_path, train=False)


def make_archive(source_folder, extra_member=None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source_folder / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
        if extra_member is not None:
            data = b"should never be written"
            info = tarfile.TarInfo(extra_member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_extract_batches_takes_only_known_members(tmp_path, cifar_files):
    cifar_files(tmp_path / "source")
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(make_archive(tmp_path / "source", extra_member="../escaped.txt"))
    extract_batches(archive, tmp_path / "out")
    extracted = sorted(path.name for path in (tmp_path / "out" / "cifar-10-batches-bin").iterdir())
    assert extracted == ["batches.meta.txt", "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                         "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"]
    assert not (tmp_path / "escaped.txt").exists()


def test_extract_rejects_archive_without_batches(tmp_path):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz"):
        pass
    with pytest.raises(DatasetError, match="lacks"):
        extract_batches(archive, tmp_path / "out")


# ---- hostile files ----------------------------------------------------------------------------


class Zeros(io.RawIOBase):
    """A file object of ``size`` zero bytes that never holds them all in memory."""

    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, buffer):
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def test_archive_member_larger_than_the_official_file_is_refused_before_writing(tmp_path, traced_peak):
    # A tar bomb: data_batch_1.bin of 40 MB (compressing to 40 KB) where the official file has 30.7 MB.
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo("cifar-10-batches-bin/data_batch_1.bin")
        info.size = 40_000_000
        tar.addfile(info, Zeros(info.size))
    peak, error = traced_peak(lambda: extract_batches(archive, tmp_path / "out"))
    assert isinstance(error, DatasetError)
    assert "data_batch_1.bin of 40,000,000 bytes, more than the 30,730,000 of the official file" in str(error)
    assert peak < 1 << 20
    assert not (tmp_path / "out" / "cifar-10-batches-bin" / "data_batch_1.bin").exists()


def test_member_that_is_a_link_is_not_followed(tmp_path):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(DatasetError, match="lacks"):
        extract_batches(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "cifar-10-batches-bin" / "test_batch.bin").exists()


def test_truncated_archive(tmp_path, cifar_files):
    cifar_files(tmp_path / "source")
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(make_archive(tmp_path / "source")[:5000])
    with pytest.raises(DatasetError, match=r"cannot unpack .*cifar-10-binary\.tar\.gz"):
        extract_batches(archive, tmp_path / "out")


@pytest.mark.parametrize("content, pattern", [
    (b"", r"has 0 bytes"),
    (bytes(3072), r"has 3072 bytes, which is not a whole number of 3073-byte records"),
    (bytes([10]) + bytes(3072), r"label 10"),
])
def test_batch_of_wrong_size_or_content(tmp_path, content, pattern):
    (tmp_path / "batch.bin").write_bytes(content)
    with pytest.raises(DatasetError, match=pattern):
        read_batch(tmp_path / "batch.bin")


@pytest.mark.parametrize("content, pattern", [
    (b"\xff\xfe not text", "is not text"),
    (b"cat\n" * 2000, "larger than 4096 bytes"),
])
def test_class_names_file_that_is_not_a_short_list(tmp_path, cifar_files, content, pattern):
    cifar_files(tmp_path)
    (tmp_path / "cifar-10-batches-bin" / "batches.meta.txt").write_bytes(content)
    with pytest.raises(DatasetError, match=pattern):
        CIFAR10(root=tmp_path, train=False)
