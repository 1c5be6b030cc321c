"""Memory over a long training run, and backward through very deep graphs.

    python benchmarks/memory_and_depth.py            # both tables (about a minute)
    python benchmarks/memory_and_depth.py --steps 300 --depths 25000 50000

1. Memory: a small CNN (two convolutions, max-pools, dropout, a dense layer) trained with SGD
   and momentum for ``--steps`` steps under ``tracemalloc``, which sees NumPy's arrays too.
   Prints the traced memory after selected steps, the part of it in blocks of 1 KiB or more
   (the arrays), and the peak. If every graph is released after backward, the arrays stay
   exactly level from step 1 (parameters and momentum buffers), and the total levels off once
   Python's free lists and NumPy's small-allocation cache have filled (a few hundred steps).

2. Depth: backward through a chain of N elementwise ops for N in ``--depths``. The walk is
   iterative (no recursion limit) and visits each node once, so the time per op should stay
   roughly constant, i.e. the total time grows linearly with N.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tinygrad_cnn as tg  # noqa: E402
import tinygrad_cnn.nn.functional as F  # noqa: E402
from tinygrad_cnn import Tensor, nn, optim  # noqa: E402


def small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(8 * 4 * 4, 10),
    )


def large_block_bytes(snapshot: tracemalloc.Snapshot, threshold: int = 1024) -> int:
    """Traced bytes in blocks of at least ``threshold`` bytes: the arrays. Small blocks include
    Python's free lists (up to 2,000 spare tuples of each length) and NumPy's cache of small
    allocations, which fill up over the first few hundred steps and then stay level."""
    return sum(trace.size for trace in snapshot.traces if trace.size >= threshold)


def training_memory(steps: int, report_at) -> tuple[dict, int, list]:
    """Train ``small_cnn`` on random 16x16 images. Returns {step: (traced bytes, bytes in blocks
    of 1 KiB or more)}, the peak traced bytes, and the first and last losses."""
    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((64, 1, 16, 16)).astype(np.float32)
    labels = rng.integers(0, 10, 64)
    model = small_cnn()
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    gc.collect()
    tracemalloc.start()
    figures, losses = {}, [None, None]  # the first and last loss: nothing here grows with the steps
    try:
        for step in range(1, steps + 1):
            batch = slice((step * 16) % 64, (step * 16) % 64 + 16)
            loss = F.cross_entropy(model(Tensor(images[batch])), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses[1] = loss.item()
            losses[0] = losses[1] if losses[0] is None else losses[0]
            del loss
            if step in report_at:
                current = tracemalloc.get_traced_memory()[0]
                figures[step] = (current, large_block_bytes(tracemalloc.take_snapshot()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return figures, peak, losses


def chain_backward_seconds(depth: int) -> tuple[float, float]:
    """Build y = (x * 1 + 0) * 1 + 0 ... (``depth`` ops) and time forward and backward."""
    x = Tensor(np.ones(4, np.float32), requires_grad=True)
    start = time.perf_counter()
    y = x
    for i in range(depth):
        y = y * 1.0 if i % 2 == 0 else y + 0.0
    built = time.perf_counter()
    y.sum().backward()
    done = time.perf_counter()
    assert np.array_equal(x.grad.data, np.ones(4, np.float32)), "wrong gradient through the chain"
    return built - start, done - built


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--depths", type=int, nargs="*", default=[25_000, 50_000, 100_000, 200_000])
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs per depth")
    args = parser.parse_args(argv)

    report_at = sorted({s for s in (1, 10, 100, 250, 500, 750, args.steps) if s <= args.steps})
    start = time.perf_counter()
    figures, peak, losses = training_memory(args.steps, set(report_at))
    seconds = time.perf_counter() - start
    print(f"Memory: small CNN, batch 16 of 1x16x16, SGD with momentum, {args.steps} steps ({seconds:.1f} s)")
    print(f"{'after step':>12} {'traced KiB':>12} {'vs step 10':>12} {'in blocks >= 1 KiB':>20}")
    reference = figures.get(10, figures[report_at[0]])[0]
    for step in report_at:
        current, large = figures[step]
        print(f"{step:>12} {current / 1024:>12.1f} {(current - reference) / 1024:>+12.1f} {large / 1024:>20.1f}")
    print(f"{'peak':>12} {peak / 1024:>12.1f}")
    print(f"loss: first {losses[0]:.4f}, last {losses[-1]:.4f}")
    print()

    print(f"Depth: backward through a chain of N elementwise ops (alternating mul and add), best of {args.repeat}")
    print(f"{'N':>10} {'forward s':>10} {'backward s':>11} {'backward us/op':>15}")
    for depth in args.depths:
        forward, backward = min(chain_backward_seconds(depth) for _ in range(args.repeat))
        print(f"{depth:>10} {forward:>10.3f} {backward:>11.3f} {backward / depth * 1e6:>15.2f}")


if __name__ == "__main__":
    main()
