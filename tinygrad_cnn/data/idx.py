"""The IDX file format of MNIST and Fashion-MNIST: reading (validated) and writing.

An IDX file is a small big-endian header followed by the raw values, row-major:

    bytes 0-1   zero
    byte  2     type of the values: 0x08 = unsigned byte (the only type these datasets use)
    byte  3     number of dimensions d
    next 4*d    the size of each dimension, as big-endian uint32
    then        prod(sizes) values

Read as one big-endian integer, the first four bytes are the "magic number": 2051
(0x00000803) for image files, three dimensions (count, rows, columns), and 2049
(0x00000801) for label files, one dimension (count). The official files are gzip
compressed (``.gz``); the subset embedded in this package uses xz (``.xz``), which is
smaller for the same content. Uncompressed files are read as they are.

Reading never trusts the header with memory. The header is read first from the (decompressing)
stream, and the size it claims is checked before anything is allocated: against ``max_bytes``
(default ``MAX_IDX_BYTES``, 1 GiB, twice the largest IDX file published, EMNIST's 550 MB), and
against what the file could hold at all (its own length when uncompressed; 1032 bytes per
compressed byte for gzip, deflate's largest ratio). Then the values are read in chunks into a
buffer that grows with what actually arrives, so a file that claims millions of images but
holds a few costs only what it holds, and the read stops at the first byte past the claimed
size. Dimensions are multiplied as Python integers, which cannot overflow. An xz decoder
allocates the dictionary its file's header names (up to 1.5 GiB), so xz files are decoded with a
memory limit (``XZ_MEMORY_LIMIT``, 96 MiB: ``xz -9``, which the embedded files use, needs 65).
"""
import gzip
import lzma
import math
import struct
from pathlib import Path

import numpy as np

from .errors import DatasetError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
UNSIGNED_BYTE = 0x08

MAX_IDX_BYTES = 1 << 30
CHUNK_BYTES = 1 << 20
DEFLATE_MAX_RATIO = 1032   # a 258-byte match coded in 2 bits: 258 * 8 / 2
XZ_MEMORY_LIMIT = 96 << 20
COMPRESSED_CHUNK_BYTES = 64 << 10


class XzReader:
    """``read(n)`` of the decompressed content of an .xz file (concatenated streams too), with
    the decoder's memory capped at ``XZ_MEMORY_LIMIT``: ``lzma.open`` offers no such cap."""

    def __init__(self, path, mode="rb"):
        self._file = open(path, "rb")
        self._decoder = self._new_decoder()

    @staticmethod
    def _new_decoder():
        return lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=XZ_MEMORY_LIMIT)

    def read(self, size: int) -> bytes:
        """``size`` bytes, fewer only at the end of the content."""
        parts, missing = [], size
        while missing and (values := self._read_some(missing)):
            parts.append(values)
            missing -= len(values)
        return b"".join(parts)

    def _read_some(self, size: int) -> bytes:
        while True:
            if self._decoder.eof:   # the end of one stream: another may follow
                compressed = self._decoder.unused_data or self._file.read(COMPRESSED_CHUNK_BYTES)
                if not compressed:
                    return b""
                self._decoder = self._new_decoder()
            elif self._decoder.needs_input:
                compressed = self._file.read(COMPRESSED_CHUNK_BYTES)
                if not compressed:
                    raise EOFError("the xz stream ends before its end marker")
            else:
                compressed = b""
            values = self._decoder.decompress(compressed, max_length=size)
            if values:
                return values

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self._file.close()


_OPENERS = {".gz": gzip.open, ".xz": XzReader}


def read_idx(path: Path, expected_magic: int, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """The uint8 array stored in IDX file ``path``, after checking the magic number, that the
    claimed size is plausible, and that the (decompressed) content is exactly that long."""
    suffix = Path(path).suffix
    try:
        with _OPENERS.get(suffix, open)(path, "rb") as stream:
            shape = _read_header(stream, path, expected_magic)
            header_bytes = 4 + 4 * len(shape)
            claimed = math.prod(shape)
            _check_plausible(path, shape, header_bytes + claimed, max_bytes, suffix)
            values = _read_exactly(stream, claimed, path, shape, header_bytes)
    except FileNotFoundError:
        raise
    except (OSError, EOFError, lzma.LZMAError) as error:
        raise DatasetError(f"{path} is damaged or truncated and cannot be decompressed: {error}") from error
    return np.frombuffer(values, dtype=np.uint8).reshape(shape)


def _read_header(stream, path: Path, expected_magic: int) -> tuple[int, ...]:
    start = stream.read(4)
    if len(start) < 4:
        raise DatasetError(f"{path} has only {len(start)} bytes: too short for an IDX header")
    magic = int.from_bytes(start, "big")
    if magic != expected_magic:
        kind = "images" if expected_magic == IMAGES_MAGIC else "labels"
        raise DatasetError(f"{path} has magic number {magic}, expected {expected_magic} "
                           f"(IDX {kind}); is it the right file?")
    dimensions = start[3]
    sizes = stream.read(4 * dimensions)
    if len(sizes) < 4 * dimensions:
        raise DatasetError(f"{path} is truncated: its header needs {4 + 4 * dimensions} bytes, "
                           f"the file has {4 + len(sizes)}")
    return struct.unpack(f">{dimensions}I", sizes)


def _check_plausible(path: Path, shape, claimed_bytes: int, max_bytes: int, suffix: str) -> None:
    """Refuse, before allocating, a header claiming more than the limit or the file could hold."""
    if claimed_bytes > max_bytes:
        raise DatasetError(f"{path}: header says shape {shape}, {claimed_bytes:,} bytes, more than the "
                           f"limit of {max_bytes:,} bytes for an IDX file; if the file is genuine, "
                           "pass a larger max_bytes")
    if suffix == ".xz":   # LZMA has no small fixed ratio bound: the streaming read is the check
        return
    file_bytes = Path(path).stat().st_size
    most = DEFLATE_MAX_RATIO * file_bytes if suffix == ".gz" else file_bytes
    if claimed_bytes > most:
        raise DatasetError(f"{path}: header says shape {shape}, {claimed_bytes:,} bytes, but a file of "
                           f"{file_bytes:,} bytes{' (gzip)' if suffix == '.gz' else ''} cannot hold more "
                           f"than {most:,}; the file is truncated or its header is wrong")


def _read_exactly(stream, count: int, path: Path, shape, header_bytes: int) -> bytearray:
    """``count`` bytes from ``stream`` read chunk by chunk, refusing a shorter or longer stream."""
    values = bytearray()
    while len(values) < count:
        chunk = stream.read(min(CHUNK_BYTES, count - len(values)))
        if not chunk:
            raise DatasetError(f"{path} is truncated: header says shape {shape}, so expected "
                               f"{header_bytes + count} bytes (decompressed), found {header_bytes + len(values)}")
        values += chunk
    if stream.read(1):
        raise DatasetError(f"{path} is longer than its header says: header says shape {shape}, so "
                           f"expected {header_bytes + count} bytes (decompressed), found more")
    return values


def read_labelled_images(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 1, rows, columns) and labels uint8 (N,) from a pair of IDX files."""
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) == 0:
        raise DatasetError(f"{images_path} holds no images (its header says shape {images.shape})")
    if len(images) != len(labels):
        raise DatasetError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                           f"{len(labels)} labels; the two files must come from the same split")
    return images[:, None, :, :], labels


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file, compressed according to the suffix of ``path``.

    Compression is byte-for-byte deterministic (gzip with no timestamp or file name), so the
    same array always gives the same file.
    """
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"IDX files written here hold uint8 values, got {array.dtype}")
    header = bytes([0, 0, UNSIGNED_BYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    content = header + array.tobytes()
    suffix = Path(path).suffix
    with open(path, "wb") as file:
        if suffix == ".gz":
            with gzip.GzipFile(filename="", mode="wb", fileobj=file, mtime=0) as compressed:
                compressed.write(content)
        elif suffix == ".xz":
            file.write(lzma.compress(content, preset=9))
        else:
            file.write(content)
