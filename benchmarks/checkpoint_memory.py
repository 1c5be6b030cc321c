"""Peak memory and time of a training step of a deep CNN, with and without activation checkpointing.

    python benchmarks/checkpoint_memory.py [--depth 12] [--batch 32] [--repeat 5]

The net: a stem convolution, then ``depth`` blocks of three (conv 3x3, 16 -> 16 channels, relu)
layers on 32x32 images, global average pooling and a dense layer. "checkpointed" wraps each block in
``tinygrad_cnn.utils.checkpoint.checkpoint``, so the block keeps its input instead of the inputs and
masks of its three layers. Peak memory is the peak of NumPy's allocations
during one forward + backward (tracemalloc sees NumPy's buffers), above what was allocated before
it, with the array cache emptied first so that every block the step uses is counted. Time is the
median of ``--repeat`` steps. Both ways give the same gradients, bit for bit (checked here).
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinygrad_cnn as tg  # noqa: E402
import tinygrad_cnn.nn as nn  # noqa: E402
import tinygrad_cnn.nn.functional as F  # noqa: E402
from tinygrad_cnn.utils.checkpoint import checkpoint  # noqa: E402

try:  # the array cache (moved into kernels/ with the kernel split)
    from tinygrad_cnn.kernels import memory  # noqa: E402
except ImportError:  # pragma: no cover
    from tinygrad_cnn import memory  # noqa: E402


class DeepCNN(nn.Module):
    def __init__(self, depth: int, channels: int = 16):
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(*[layer for _ in range(3) for layer in (nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())])
            for _ in range(depth))
        self.head = nn.Linear(channels, 10)
        self.checkpointed = False

    def forward(self, x):
        x = F.relu(self.stem(x))
        for block in self.blocks:
            x = checkpoint(block, x) if self.checkpointed else block(x)
        return self.head(x.mean(axis=(2, 3)))


def step(model, images, labels):
    model.zero_grad()
    F.cross_entropy(model(images), labels).backward()


def peak_mb(model, images, labels) -> float:
    step(model, images, labels)
    memory.empty_cache()
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    step(model, images, labels)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - before) / 2**20


def seconds(model, images, labels, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step(model, images, labels)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=6, help="blocks of three conv layers")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    tg.manual_seed(0)
    model = DeepCNN(args.depth)
    rng = np.random.default_rng(0)
    images = tg.Tensor(rng.standard_normal((args.batch, 3, 32, 32)).astype(np.float32))
    labels = tg.Tensor(rng.integers(0, 10, args.batch))
    grads = {}
    rows = []
    for checkpointed in (False, True):
        model.checkpointed = checkpointed
        step(model, images, labels)
        grads[checkpointed] = [p.grad.data.copy() for p in model.parameters()]
        rows.append((checkpointed, peak_mb(model, images, labels), seconds(model, images, labels, args.repeat)))
    same = all(np.array_equal(a, b) for a, b in zip(grads[False], grads[True]))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    print(f"deep CNN: stem + {args.depth} blocks of 3 x (conv 3x3 16->16, relu), 32x32 images, batch {args.batch}; {cpu}")
    print(f"{'':14} {'peak MB':>8} {'ms/step':>8}")
    for checkpointed, mb, s in rows:
        print(f"{'checkpointed' if checkpointed else 'plain':14} {mb:8.1f} {s * 1000:8.1f}")
    (_, plain_mb, plain_s), (_, ck_mb, ck_s) = rows
    print(f"checkpointing: {ck_mb / plain_mb:.2f}x the memory, {ck_s / plain_s:.2f}x the time; "
          f"gradients {'identical, bit for bit' if same else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
