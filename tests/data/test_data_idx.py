"""IDX parsing (the MNIST / Fashion-MNIST file format) and the MNIST-style datasets."""
import gzip
import lzma
import math
import re
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_cnn.data import MNIST, DatasetError, FashionMNIST
from tinygrad_cnn.data import idx
from tinygrad_cnn.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, read_labelled_images, write_idx
from tinygrad_cnn.data.mnist import FASHION_MNIST_CLASSES

from .conftest import measure_traced_peak as measure_peak   # a function: fixtures and @given do not mix


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


# ---- hostile files: headers that lie, bombs, overflows -----------------------------------------
# Memory is measured with tracemalloc, which sees every Python and NumPy allocation, so reading a
# whole decompressed bomb (as a plain ``file.read()`` would) cannot pass unnoticed.

MB = 1 << 20
ZEROS_MEMBER_BYTES = 64 * MB


@pytest.fixture(scope="module")
def zeros_gzip_member():
    """One gzip member holding 64 MiB of zeros (about 64 KB). Concatenated gzip members are one
    valid gzip file, so a bomb of any size is these bytes repeated."""
    return gzip.compress(bytes(ZEROS_MEMBER_BYTES), mtime=0)


def images_header(count, rows=28, columns=28):
    return struct.pack(">IIII", IMAGES_MAGIC, count, rows, columns)


@pytest.fixture
def refused_with_small_peak(traced_peak):
    """``refused_with_small_peak(path, pattern)``: read_idx raises a DatasetError matching
    ``pattern`` with a tracemalloc peak under 4 MiB; returns the peak."""
    def check(path, pattern, limit_bytes=4 * MB, **options):
        peak, error = traced_peak(lambda: read_idx(path, IMAGES_MAGIC, **options))
        assert isinstance(error, DatasetError), error
        assert re.search(pattern, str(error)), str(error)
        assert peak < limit_bytes, f"peak {peak / MB:.1f} MiB"
        print(f"peak {peak / 1024:.0f} KiB: {error}")
        return peak
    return check


def test_gzip_bomb_claiming_four_million_images_is_refused_at_the_header(tmp_path, zeros_gzip_member,
                                                                       refused_with_small_peak):
    # A 13.7 MB .gz that really holds 13 GB: the header claims 4,000,000 images (3.1 GB).
    path = tmp_path / "bomb-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(images_header(4_000_000), mtime=0) + zeros_gzip_member * 210)
    assert 13 * MB < path.stat().st_size < 14 * MB
    refused_with_small_peak(path, r"3,136,000,016 bytes, more than the limit of 1,073,741,824")


def test_header_claiming_more_than_the_gzip_can_hold_is_refused_before_reading(tmp_path, refused_with_small_peak):
    path = tmp_path / "lying.gz"
    images = np.random.default_rng(0).integers(0, 256, size=(100, 28, 28), dtype=np.uint8)
    path.write_bytes(gzip.compress(images_header(1_000_000) + images.tobytes()))
    refused_with_small_peak(path, r"cannot hold more than")


def test_header_claiming_more_than_the_stream_holds_costs_only_what_it_holds(tmp_path, refused_with_small_peak):
    # Plausible for its size (random bytes do not compress), but 1,000 images where 1,000,000 are
    # claimed: refused when the stream ends, having held the 0.8 MB that were there, not 784 MB.
    rng = np.random.default_rng(0)
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(images_header(1_000_000) + rng.bytes(1000 * 784), compresslevel=0))
    refused_with_small_peak(path, r"truncated: header says shape \(1000000, 28, 28\), so expected "
                                  r"784000016 bytes \(decompressed\), found 784016")


def test_stream_longer_than_its_header_stops_at_the_first_extra_byte(tmp_path, zeros_gzip_member,
                                                                     refused_with_small_peak):
    path = tmp_path / "long.gz"   # 10 images claimed, 1 GiB of zeros behind them
    path.write_bytes(gzip.compress(images_header(10) + bytes(10 * 784), mtime=0) + zeros_gzip_member * 16)
    refused_with_small_peak(path, r"longer than its header says.*expected 7856 bytes")


def test_xz_bomb_longer_than_its_header_is_refused(tmp_path, refused_with_small_peak):
    member = lzma.compress(bytes(16 * MB), preset=0)   # concatenated .xz streams are one file too
    path = tmp_path / "long.xz"
    path.write_bytes(lzma.compress(images_header(10) + bytes(10 * 784), preset=0) + member * 32)
    refused_with_small_peak(path, r"longer than its header says")


def test_uncompressed_file_shorter_than_its_header_is_refused_before_reading(tmp_path, refused_with_small_peak):
    path = tmp_path / "plain-idx3-ubyte"
    path.write_bytes(images_header(500_000) + bytes(784))
    refused_with_small_peak(path, r"a file of 800 bytes cannot hold more than 800")


def test_dimension_product_cannot_overflow(tmp_path, refused_with_small_peak):
    # (2^32 - 1)^3 wraps around in 64-bit integers; as Python integers it is simply too large.
    path = tmp_path / "overflow.gz"
    path.write_bytes(gzip.compress(struct.pack(">IIII", IMAGES_MAGIC, *[2**32 - 1] * 3)))
    refused_with_small_peak(path, rf"{(2**32 - 1) ** 3 + 16:,} bytes, more than the limit")


def test_limit_can_be_raised_for_a_genuine_file(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    path = tmp_path / "small.gz"
    path.write_bytes(gzip.compress(images_header(3) + images.tobytes()))
    with pytest.raises(DatasetError, match="more than the limit of 1,000 bytes"):
        read_idx(path, IMAGES_MAGIC, max_bytes=1000)
    np.testing.assert_array_equal(read_idx(path, IMAGES_MAGIC, max_bytes=10_000), images)


def test_honest_read_costs_about_the_content(tmp_path, traced_peak):
    images = np.random.default_rng(2).integers(0, 256, size=(4000, 28, 28), dtype=np.uint8)
    path = tmp_path / "honest.gz"
    path.write_bytes(gzip.compress(images_header(4000) + images.tobytes(), compresslevel=1))
    result = []
    peak, error = traced_peak(lambda: result.append(read_idx(path, IMAGES_MAGIC)))
    assert error is None
    np.testing.assert_array_equal(result[0], images)
    # The measure sees the content itself (so it would see a bomb), and little beyond it.
    assert images.nbytes < peak < 2.5 * images.nbytes, f"peak {peak / MB:.1f} MiB for {images.nbytes / MB:.1f} MiB"


def test_header_cut_inside_the_sizes(tmp_path):
    path = tmp_path / "cut"
    path.write_bytes(struct.pack(">II", IMAGES_MAGIC, 5))
    with pytest.raises(DatasetError, match="truncated: its header needs 16 bytes, the file has 8"):
        read_idx(path, IMAGES_MAGIC)


def test_empty_file_and_zero_images(tmp_path, mnist_files):
    (tmp_path / "empty.gz").write_bytes(gzip.compress(b""))
    with pytest.raises(DatasetError, match="only 0 bytes"):
        read_idx(tmp_path / "empty.gz", IMAGES_MAGIC)
    mnist_files(tmp_path, count=0)
    with pytest.raises(DatasetError, match=r"holds no images.*\(0, 28, 28\)"):
        FashionMNIST(root=tmp_path)


def test_not_a_gzip_file(tmp_path):
    (tmp_path / "fake.gz").write_bytes(b"this is plain text, not gzip")
    with pytest.raises(DatasetError, match=r"fake\.gz is damaged or truncated"):
        read_idx(tmp_path / "fake.gz", IMAGES_MAGIC)


def test_label_beyond_the_classes_names_the_file(tmp_path, mnist_files, idx_bytes):
    mnist_files(tmp_path, count=3)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.array([1, 200, 3]))))
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte\.gz has label 200; MNIST labels are 0-9"):
        MNIST(root=tmp_path)


# ---- the property behind the cases above ------------------------------------------------------

@settings(max_examples=40)
@given(sizes=st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 12), min_size=1, max_size=3),
       extra=st.integers(-3000, 3000), suffix=st.sampled_from(["", ".gz", ".xz"]))
def test_any_header_gives_its_exact_content_or_a_dataset_error_at_bounded_cost(tmp_path_factory, sizes,
                                                                               extra, suffix):
    """Whatever a header claims and whatever the file holds: the values when the two agree, a
    DatasetError otherwise, and never more memory than a small constant plus what the file holds."""
    claimed = math.prod(sizes)
    held = max(0, min(claimed, 5000) + extra) if claimed <= 5000 else max(0, 5000 + extra)
    values = np.random.default_rng(held).integers(0, 256, held, dtype=np.uint8).tobytes()
    content = struct.pack(f">I{len(sizes)}I", 0x0800 + len(sizes), *sizes) + values
    path = tmp_path_factory.mktemp("idx") / f"file{suffix}"
    # xz at preset 0: its decoder allocates the 256 KiB dictionary the header names, whatever the size.
    compress = {"": bytes, ".gz": gzip.compress, ".xz": lambda data: lzma.compress(data, preset=0)}[suffix]
    path.write_bytes(compress(content))
    result = []
    peak, error = measure_peak(lambda: result.append(read_idx(path, 0x0800 + len(sizes))))
    if held == claimed:
        assert error is None, error
        assert result[0].shape == tuple(sizes) and result[0].tobytes() == values
    else:
        assert isinstance(error, DatasetError), error
    # 4 MiB of slack: tracemalloc also counts other threads of the test run (servers of other
    # tests winding down). A reader that allocated what a header claims fails this for any claim
    # above it; the bombs above check the tight bounds.
    assert peak < 4 * 1024 * 1024 + 3 * held


def test_xz_decoder_memory_is_capped(tmp_path, monkeypatch, traced_peak):
    # preset 6 names an 8 MiB dictionary; with the cap at 1 MiB the decoder must refuse it
    # instead of allocating it (a forged header may name 1.5 GiB).
    path = tmp_path / "labels.xz"
    path.write_bytes(lzma.compress(struct.pack(">II", LABELS_MAGIC, 3) + bytes([1, 2, 3]), preset=6))
    np.testing.assert_array_equal(read_idx(path, LABELS_MAGIC), [1, 2, 3])
    monkeypatch.setattr(idx, "XZ_MEMORY_LIMIT", 1 << 20)
    peak, error = traced_peak(lambda: read_idx(path, LABELS_MAGIC))
    assert isinstance(error, DatasetError) and "labels.xz is damaged" in str(error) and "limit" in str(error)
    assert peak < 1 << 20


def test_xz_streams_may_be_concatenated_but_not_followed_by_garbage(tmp_path):
    content = struct.pack(">II", LABELS_MAGIC, 4) + bytes([1, 2, 3, 4])
    path = tmp_path / "labels.xz"
    path.write_bytes(lzma.compress(content[:5]) + lzma.compress(content[5:]))
    np.testing.assert_array_equal(read_idx(path, LABELS_MAGIC), [1, 2, 3, 4])
    path.write_bytes(lzma.compress(content) + b"garbage!")
    with pytest.raises(DatasetError, match=r"labels\.xz is damaged"):
        read_idx(path, LABELS_MAGIC)
