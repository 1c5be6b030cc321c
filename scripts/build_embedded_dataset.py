"""Build the Fashion-MNIST subset embedded in tinygrad_cnn/data/embedded/ from the official files.

    python scripts/build_embedded_dataset.py [--source /usr/share/datasets/fashion-mnist]

Takes, for each of the ten classes, the first 1,000 images of that class in the official
training file and the first 200 of that class in the official test file, keeps them in their
original order, and writes them as xz-compressed IDX files. Nothing random is involved and
the compression is deterministic, so every run writes the same bytes. The official files come
from Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist) or from
FashionMNIST(download=True).
"""
import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

# Lets the script run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tinygrad_cnn.data.embedded import EMBEDDED_FILES, EMBEDDED_FOLDER
from tinygrad_cnn.data.idx import read_labelled_images, write_idx
from tinygrad_cnn.data.mnist import SPLIT_FILES

PER_CLASS = {True: 1000, False: 200}   # training / test images kept per class


def first_of_each_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first ``per_class`` samples of every class, in file order."""
    chosen = [np.flatnonzero(labels == label)[:per_class] for label in np.unique(labels)]
    if any(len(indices) < per_class for indices in chosen):
        raise SystemExit(f"some class has fewer than {per_class} samples")
    return np.sort(np.concatenate(chosen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path("/usr/share/datasets/fashion-mnist"),
                        help="folder holding the four official .gz files")
    parser.add_argument("--output", type=Path, default=EMBEDDED_FOLDER)
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        official_images, official_labels = SPLIT_FILES[train]
        images, labels = read_labelled_images(args.source / official_images, args.source / official_labels)
        indices = first_of_each_class(labels, PER_CLASS[train])
        images_name, labels_name = EMBEDDED_FILES[train]
        write_idx(args.output / images_name, images[indices, 0])   # IDX images are (N, rows, cols)
        write_idx(args.output / labels_name, labels[indices])
        split = "train" if train else "test"
        print(f"{split}: {len(indices)} images, {PER_CLASS[train]} per class, "
              f"official indices {indices[0]} to {indices[-1]}")
        for name in (images_name, labels_name):
            path = args.output / name
            print(f"  {name}: {path.stat().st_size} bytes, md5 {hashlib.md5(path.read_bytes()).hexdigest()}")

if __name__ == "__main__":
    main()
