"""PyTorch programs (``examples/from_pytorch/``) run on tinygrad_cnn with only their import lines
rewritten, mechanically, by ``tinygrad_cnn.porting``; each on small data laid out as torchvision
lays it out. The three blitz programs that need no torchvision also run on PyTorch itself where
it is installed: they are PyTorch programs, not programs written for this library."""
import gzip
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn.porting import rewrite_imports

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ROOT / "examples" / "from_pytorch"


def test_rewrite_touches_import_lines_only():
    source = (
        "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\nfrom torch import nn, optim\n"
        "from torch.optim.lr_scheduler import StepLR\nimport torchvision\nimport torchvision.transforms as transforms\n"
        "from torchvision import datasets, transforms\nimport torch.utils.data\nimport numpy as np, torch  # both\n"
        "x = torch.tensor([1])  # import torch in a comment stays\n    import torch\n"
    )
    assert rewrite_imports(source) == (
        "import tinygrad_cnn as torch\nimport tinygrad_cnn.nn as nn\nimport tinygrad_cnn.nn.functional as F\n"
        "from tinygrad_cnn import nn, optim\nfrom tinygrad_cnn.optim.lr_scheduler import StepLR\n"
        "import tinygrad_cnn.vision as torchvision\nimport tinygrad_cnn.vision.transforms as transforms\n"
        "from tinygrad_cnn.vision import datasets, transforms\nimport tinygrad_cnn.utils.data, tinygrad_cnn as torch\n"
        "import numpy as np, tinygrad_cnn as torch  # both\nx = torch.tensor([1])  # import torch in a comment stays\n"
        "    import tinygrad_cnn as torch\n"
    )


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file as the MNIST distribution has it: magic (0, 0, type 0x08, ndim), big-endian sizes, bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def small_mnist(root: Path, train: int = 128, test: int = 64) -> None:
    """root/MNIST/raw with the four official file names: digits drawn as bright blocks whose
    position depends on the label, so that a network can learn something in one epoch."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", train), ("t10k", test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for i, label in enumerate(labels):
            images[i, 2 + 2 * label : 8 + 2 * label, 4:24] = 255
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", labels)


def small_cifar10(root: Path, per_batch: int = 8, test: int = 12) -> None:
    """root/cifar-10-batches-py as the official python version: pickled dicts of uint8 rows."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    batches = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in batches:
        n = test if name == "test_batch" else per_batch
        entry = {b"batch_label": name.encode(), b"labels": [int(v) for v in rng.integers(0, 10, n)],
                 b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": per_batch, b"num_vis": 3072}, f)


def run_ported(program: str, *arguments, cwd: Path, timeout: float = 300):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    command = [sys.executable, "-m", "tinygrad_cnn.porting", str(PROGRAMS / program), *arguments]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    assert finished.returncode == 0, finished.stderr[-4000:]
    return finished.stdout


def test_mnist_example(tmp_path):
    small_mnist(tmp_path / "data")
    (tmp_path / "work").mkdir()  # the example reads ../data
    out = run_ported("mnist_main.py", "--epochs", "2", "--batch-size", "32", "--test-batch-size", "50",
                     "--log-interval", "2", "--save-model", cwd=tmp_path / "work")
    assert "Train Epoch: 2" in out and "Test set: Average loss" in out
    correct = [int(line.split("Accuracy: ")[1].split("/")[0]) for line in out.splitlines() if "Accuracy: " in line]
    assert correct[-1] > 64 * 0.3, out  # it learned: chance is 10%
    assert (tmp_path / "work" / "mnist_cnn.pt").exists()


def test_blitz_cifar10_classifier(tmp_path):
    small_cifar10(tmp_path / "data")
    out = run_ported("blitz_4_cifar10.py", "--epochs", "1", cwd=tmp_path)
    assert "Finished Training" in out and "Accuracy of the network on the 12 test images" in out
    assert (tmp_path / "cifar_net.pth").exists()


@pytest.mark.parametrize("program", ["blitz_1_tensors.py", "blitz_2_autograd.py", "blitz_3_neural_networks.py"])
def test_blitz_programs(tmp_path, program):
    out = run_ported(program, cwd=tmp_path)
    assert out.rstrip().endswith("done")


@pytest.mark.parametrize("program", ["blitz_1_tensors.py", "blitz_2_autograd.py", "blitz_3_neural_networks.py"])
def test_blitz_programs_are_pytorch_programs(tmp_path, program):
    pytest.importorskip("torch")
    finished = subprocess.run([sys.executable, str(PROGRAMS / program)], capture_output=True, text=True,
                              timeout=300, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
