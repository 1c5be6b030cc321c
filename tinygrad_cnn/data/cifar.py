"""CIFAR-10: 32x32 colour photos in 10 classes, read from the official *binary* version.

The archive ``cifar-10-binary.tar.gz`` unpacks to ``cifar-10-batches-bin/`` holding
``data_batch_1.bin`` ... ``data_batch_5.bin`` (10,000 training images each),
``test_batch.bin`` (10,000 test images) and ``batches.meta.txt`` (the class names, one a
line). Each batch file is a sequence of 3,073-byte records: one label byte (0-9), then
3,072 pixel bytes, the 1,024 red values of the 32x32 image row by row, then green, then
blue, which is exactly the (C, H, W) layout the network wants.

Files are looked for as ``<place>/cifar-10-batches-bin/...`` in the places listed in
``locations.py``. ``download=True`` fetches the archive (checking its published MD5),
keeps it next to the batches, and unpacks only the files above.
"""
import shutil
import tarfile
from pathlib import Path

import numpy as np

from .download import download_from_mirrors, writing_atomically
from .errors import DatasetError
from ..utils.data import ImageDataset
from .locations import DatasetSource, find_or_download

ARCHIVE = "cifar-10-binary.tar.gz"
BATCHES_FOLDER = "cifar-10-batches-bin"
SPLIT_FILES = {True: tuple(f"data_batch_{number}.bin" for number in range(1, 6)),
               False: ("test_batch.bin",)}
META_FILE = "batches.meta.txt"
IMAGE_SHAPE = (3, 32, 32)
RECORD_BYTES = 1 + int(np.prod(IMAGE_SHAPE))
NUM_CLASSES = 10
RECORDS_PER_BATCH = 10_000
MAX_META_BYTES = 4096   # the official batches.meta.txt has 61 bytes

CIFAR10_SOURCE = DatasetSource(
    name="CIFAR-10",
    folder="cifar-10",
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    md5={ARCHIVE: "c32a1d4ab5d03f1284b67883e8d87530"},
    sizes={ARCHIVE: 170_052_171},
)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 3, 32, 32) and labels uint8 (N,) from one binary batch file."""
    size = Path(path).stat().st_size
    if size == 0 or size % RECORD_BYTES:
        raise DatasetError(
            f"{path} has {size} bytes, which is not a whole number of {RECORD_BYTES}-byte records "
            f"(1 label byte + {RECORD_BYTES - 1} pixel bytes): {size // RECORD_BYTES} records and "
            f"{size % RECORD_BYTES} bytes left over. The file is truncated or not a CIFAR-10 "
            f"binary batch (an official batch has 10000 records, {10000 * RECORD_BYTES} bytes).")
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0]
    if labels.max() >= NUM_CLASSES:
        raise DatasetError(f"{path} has label {labels.max()}; CIFAR-10 labels are 0-9, "
                           f"so this is not a CIFAR-10 binary batch")
    return records[:, 1:].reshape(-1, *IMAGE_SHAPE), labels


def read_class_names(path: Path) -> list[str]:
    with open(path, "rb") as file:
        content = file.read(MAX_META_BYTES + 1)
    if len(content) > MAX_META_BYTES:
        raise DatasetError(f"{path} is larger than {MAX_META_BYTES} bytes; batches.meta.txt lists "
                           f"{NUM_CLASSES} class names, one a line")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path} is not text ({error}); batches.meta.txt lists {NUM_CLASSES} class "
                           "names, one a line") from error
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) != NUM_CLASSES:
        raise DatasetError(f"{path} lists {len(names)} class names, expected {NUM_CLASSES}")
    return names


def extract_batches(archive: Path, folder: Path) -> None:
    """Unpack only the known batch and meta files of ``archive`` into ``folder``.

    Members are chosen by exact name, so a tampered archive cannot write anywhere else, and each
    may be no larger than the official file (``largest_member``), so it cannot fill the disk.
    """
    wanted = {f"{BATCHES_FOLDER}/{name}" for name in (*SPLIT_FILES[True], *SPLIT_FILES[False], META_FILE)}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    if member.size > largest_member(member.name):
                        raise DatasetError(f"{archive} holds {member.name} of {member.size:,} bytes, more than "
                                           f"the {largest_member(member.name):,} of the official file; "
                                           "it is not cifar-10-binary.tar.gz")
                    with tar.extractfile(member) as source, \
                            writing_atomically(Path(folder) / member.name) as target:
                        shutil.copyfileobj(source, target)
                    wanted.discard(member.name)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DatasetError(f"cannot unpack {archive}: {error}") from error
    if wanted:
        raise DatasetError(f"{archive} lacks {sorted(wanted)}; is it cifar-10-binary.tar.gz?")


def largest_member(name: str) -> int:
    """The size of the official file ``name`` of the archive: a batch or the class names."""
    return MAX_META_BYTES if name.endswith(META_FILE) else RECORDS_PER_BATCH * RECORD_BYTES


class CIFAR10(ImageDataset):
    """CIFAR-10 (Krizhevsky 2009): images float32 (N, 3, 32, 32) in [0, 1], int64 labels,
    ``classes`` from batches.meta.txt (airplane, automobile, ..., truck)."""

    source = CIFAR10_SOURCE

    def __init__(self, root=None, train: bool = True, download: bool = False, mirrors=None):
        batch_names = SPLIT_FILES[train]
        required = [f"{BATCHES_FOLDER}/{name}" for name in (*batch_names, META_FILE)]

        def fetch(folder):
            archive = download_from_mirrors(self.source, ARCHIVE, folder, mirrors)
            extract_batches(archive, folder)

        self.folder = find_or_download(self.source, required, root, download, fetch)
        self.train = train
        batches = [read_batch(self.folder / BATCHES_FOLDER / name) for name in batch_names]
        images = np.concatenate([images for images, _ in batches])
        labels = np.concatenate([labels for _, labels in batches])
        super().__init__(images, labels, read_class_names(self.folder / BATCHES_FOLDER / META_FILE))
