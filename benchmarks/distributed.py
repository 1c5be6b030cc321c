"""Throughput of the training command with more processes: 1 process x 2 BLAS threads against
2 MPI ranks x 1 thread each, on the same machine, for the seed and the LeNet-style nets.

    python benchmarks/distributed.py [--rounds 3] [--nets seed,lenet] [--ranks 1,2]

Each measurement is one run of ``python -m tinygrad_cnn train`` on the embedded Fashion-MNIST
subset (one epoch of 10,000 images, batch 64, no figures) in fresh processes, reading the training
images per second from its ``metrics.json`` (the epoch's training time only: loading and
evaluation excluded). Configurations alternate within each round; the report gives the median
and range over rounds and the ratio to one process. One process uses as many BLAS threads as
there are cores, each of R ranks cores/R (at least 1), set in the child's environment only.
Goal (issue 16): >= 1.3x for 2 ranks on a 2-core machine, both nets.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 1.3


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def images_per_second(net: str, ranks: int, out: Path) -> float:
    cores = os.cpu_count() or 1
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(max(1, cores // ranks)), PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "tinygrad_cnn", "train", "--model", net, "--epochs", "1", "--batch-size", "64",
               "--no-figures", "--no-progress", "--out", str(out)]
    if ranks > 1:
        command = [mpiexec(), "-n", str(ranks)] + command
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"benchmarks/distributed.py: the run failed:\n{done.stderr[-2000:]}")
    return json.loads((out / "metrics.json").read_text())["history"]["images_per_second"][0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nets", default="seed,lenet")
    parser.add_argument("--ranks", default="1,2", help="comma-separated rank counts; 1 is the baseline")
    args = parser.parse_args(argv)
    counts = [int(r) for r in args.ranks.split(",")]
    if any(r > 1 for r in counts) and mpiexec() is None:
        raise SystemExit('benchmarks/distributed.py: mpiexec not found; pip install -e ".[distributed]"')
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for round_number in range(args.rounds):
            order = counts if round_number % 2 == 0 else counts[::-1]  # alternate which runs first
            for net in args.nets.split(","):
                for ranks in order:
                    out = Path(scratch) / f"{net}-{ranks}-{round_number}"
                    results.setdefault((net, ranks), []).append(images_per_second(net, ranks, out))
    print(f"training command throughput, images/s (median and range of {args.rounds} rounds); "
          f"{cpu_model()}, {os.cpu_count()} cores")
    print(f"{'net':6} {'ranks x threads':>16} {'images/s':>10} {'range':>16} {'vs 1 process':>13}")
    table = {}
    for net in args.nets.split(","):
        base = statistics.median(results[(net, 1)]) if (net, 1) in results else None
        for ranks in counts:
            values = results[(net, ranks)]
            median = statistics.median(values)
            threads = max(1, (os.cpu_count() or 1) // ranks)
            ratio = median / base if base else float("nan")
            verdict = "" if ranks == 1 or ranks != 2 else (" (goal >= 1.3: met)" if ratio >= GOAL else " (goal >= 1.3: MISSED)")
            print(f"{net:6} {f'{ranks} x {threads}':>16} {median:10.0f} {f'{min(values):.0f}-{max(values):.0f}':>16} "
                  f"{ratio:12.2f}x{verdict}")
            table[f"{net}/{ranks}"] = {"median": median, "values": values, "ratio": ratio}
    print(json.dumps(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
