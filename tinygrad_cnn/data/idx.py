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
"""
import gzip
import lzma
import struct
from pathlib import Path

import numpy as np

from .errors import DatasetError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
UNSIGNED_BYTE = 0x08

_OPENERS = {".gz": gzip.open, ".xz": lzma.open}


def read_file_bytes(path: Path) -> bytes:
    """The (decompressed) content of ``path``; a damaged archive raises DatasetError."""
    opener = _OPENERS.get(Path(path).suffix, open)
    try:
        with opener(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        raise
    except (OSError, EOFError, lzma.LZMAError) as error:
        raise DatasetError(f"{path} is damaged or truncated and cannot be decompressed: {error}") from error


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """The uint8 array stored in IDX file ``path``, after checking the magic number and that
    the file length matches the sizes in its header."""
    content = read_file_bytes(path)
    if len(content) < 4:
        raise DatasetError(f"{path} has only {len(content)} bytes: too short for an IDX header")
    magic = int.from_bytes(content[:4], "big")
    if magic != expected_magic:
        kind = "images" if expected_magic == IMAGES_MAGIC else "labels"
        raise DatasetError(f"{path} has magic number {magic}, expected {expected_magic} "
                           f"(IDX {kind}); is it the right file?")
    dimensions = content[3]
    header_bytes = 4 + 4 * dimensions
    if len(content) < header_bytes:
        raise DatasetError(f"{path} is truncated: its header needs {header_bytes} bytes, "
                           f"the file has {len(content)}")
    shape = struct.unpack(f">{dimensions}I", content[4:header_bytes])
    expected_bytes = header_bytes + int(np.prod(shape))
    if len(content) != expected_bytes:
        problem = "truncated" if len(content) < expected_bytes else "longer than its header says"
        raise DatasetError(f"{path} is {problem}: header says shape {shape}, so expected "
                           f"{expected_bytes} bytes (decompressed), found {len(content)}")
    return np.frombuffer(content, dtype=np.uint8, offset=header_bytes).reshape(shape)


def read_labelled_images(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 1, rows, columns) and labels uint8 (N,) from a pair of IDX files."""
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
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
