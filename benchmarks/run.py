"""Speed and memory of tinygrad_cnn, measured side by side with PyTorch (when it is installed).

    python benchmarks/run.py              # the full run (minutes on an idle machine); writes this host's
                                          # section of RESULTS.md
    python benchmarks/run.py --quick      # a smoke run: one round, few repeats; RESULTS.md untouched
    python benchmarks/run.py --only step  # one section; later --assemble writes RESULTS.md from the latest
    python benchmarks/run.py --what-if    # also the training steps under other process settings
    python benchmarks/compare.py OTHER    # our library at two source trees (before/after a refactor)

How it measures. Each library runs in fresh processes of its own, one measurement per process: both
keep thread pools (OpenBLAS under NumPy, OpenMP in torch) whose threads spin for a while after each
parallel region, so in a shared process whichever library runs second pays for the other's spinning
(torch's seed step measured 27-29 ms that way on an Intel host, 8.6 ms in a process of its own). A
comparison runs in rounds: round k starts a fresh process for ours and then one for torch, in the
reverse order on odd rounds, and each round gives one ratio ours / torch. The report gives the
median and the range (min-max) of those ratios, and each library's median time. A training-step or
per-op worker times calls for at least ``MEASURE_SECONDS`` (a small VM's speed moves in phases of
seconds; see there). The training-step section's workers also run the hand-off probe before and
after their steps (``handoff_probe``: whether BLAS's second thread was slow to read what the first
had just written), and the report counts the processes it caught.

Both libraries get the same number of threads (``--threads``, default 2), set in each worker's own
environment before NumPy or torch is loaded (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS,
and ``torch.set_num_threads`` in the torch worker). This process only orchestrates: it loads neither
library and changes neither its own environment nor the user's.

A worker is this file run with ``--worker``, e.g.

    python benchmarks/run.py --worker step --framework ours --net seed --batch 64 --threads 2

and prints one JSON line: the worker kind, the framework, its measurements and, under ``process``,
what the process saw (thread settings, where tinygrad_cnn was imported from, torch's thread count).

What is measured, and the goal each figure is checked against (the goals live here, not in unit tests):

1. training step   one step (forward, cross-entropy, backward, Adam) at batch 64 of the seed net and of
                   the LeNet-style net, both libraries from the same weights on the same batch (their
                   first three losses must agree); goal: ratio <= 1.5 (seed) and <= 1.25 (LeNet)
2. conv2d          forward + both gradients of a 3x3, 64 -> 64 channel convolution on 32x32 images,
                   batch 32, in GFLOP/s; goal: >= 80% of what NumPy's own float32 matmul reaches, in
                   the same process, on the same multiply-adds laid out as one GEMM
3. per-op overhead a chain of 1,000 elementwise ops on a 4x4 tensor, forward and backward; goal: <= 2x torch
4. peak memory     of the seed-net training step at batch 64, each library in its own process; goal:
                   <= 1.5x torch, and growing linearly with batch size and with the number of pixels
5. what if         (--what-if) the training steps again with settings made before a process starts:
                   one thread each, glibc keeping freed memory, OpenBLAS's kernel choice the other way
                   (unset if the environment pins OPENBLAS_CORETYPE, else pinned to Haswell's AVX2
                   kernels). These now go into the workers' environment only: the parent no longer
                   re-executes itself with them, and no longer re-runs a whole section in one process.
6. batch scaling   ms per step and per image from batch 16 to 256; goal: linear (flat ms/image)
7. layers          each convolution of the two training steps alone, part by part (forward, weight and
                   bias gradient, input gradient, both gradients), as the step calls it: where a step's
                   gap to torch is. No goal of its own: it is the profile the step goals are read by

RESULTS.md keeps one generated section per host kind (CPU model and core count): a full run
rewrites the section of the host it ran on and keeps the others. ``--openblas-coretype``, ``--malloc``
and ``--threads`` apply to every worker of a run; ``--what-if`` varies them for the training steps.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

GOALS = {
    "seed_step_ratio": 1.5,
    "lenet_step_ratio": 1.25,
    "conv_share_of_gemm": 0.80,
    "per_op_ratio": 2.0,
    "seed_memory_ratio": 1.5,
}

SECTIONS = ("step", "conv", "overhead", "memory", "what_if", "scaling", "layers")
WORKERS = ("env", "step", "conv", "overhead", "memory", "layers")
FRAMEWORKS = ("ours", "torch")
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# OpenBLAS reads these when NumPy loads it; a machine's environment may pin them, and the report
# states what was in force.
OPENBLAS_SETTINGS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# Our own settings (e.g. a kernel switch) are read from variables with this prefix; the report lists them.
OUR_PREFIX = "TINYGRAD_CNN_"
# glibc reads its malloc settings when a process starts.
MALLOC_KEEP = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(2**30)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run; RESULTS.md is not rewritten")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for each library, set in each worker's environment (default 2)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of alternating processes per comparison (default 7, --quick 1)")
    parser.add_argument("--openblas-coretype", default=None,
                        help="the workers' OpenBLAS kernel family (e.g. SkylakeX, Haswell), as OPENBLAS_CORETYPE "
                             "sets it; 'auto' removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from the workers' "
                             "environment, so that OpenBLAS detects the CPU itself")
    parser.add_argument("--malloc", choices=("default", "keep"), default="default",
                        help="keep: glibc in the workers keeps freed memory for reuse instead of returning it "
                             "to the OS (MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_)")
    parser.add_argument("--what-if", action="store_true",
                        help="also time the training steps with one thread each, with glibc keeping freed "
                             "memory, and with OpenBLAS's kernel choice the other way")
    parser.add_argument("--no-torch", action="store_true", help="measure ours only")
    parser.add_argument("--no-markdown", action="store_true", help="do not rewrite benchmarks/RESULTS.md")
    parser.add_argument("--assemble", action="store_true",
                        help="rewrite this host's section of RESULTS.md from the latest result of each section "
                             "(e.g. sections run one by one with --only when the machine was quiet)")
    parser.add_argument("--json", default=None, help="write the results to this file (default: benchmarks/results/)")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of: {','.join(SECTIONS)}")
    worker = parser.add_argument_group("worker (one measurement in this process, one JSON line out)")
    worker.add_argument("--worker", choices=WORKERS, default=None)
    worker.add_argument("--framework", choices=FRAMEWORKS, default="ours")
    worker.add_argument("--net", choices=("seed", "lenet"), default="seed")
    worker.add_argument("--batch", type=int, default=64)
    worker.add_argument("--size", type=int, default=28, help="image height and width")
    worker.add_argument("--repeat", type=int, default=10, help="timed calls in the process (at least)")
    worker.add_argument("--probe", type=int, choices=(0, 1), default=0,
                        help="1: a training-step worker also runs the hand-off probe before and after its steps")
    worker.add_argument("--seconds", type=float, default=0.0,
                        help="time calls for at least this long (training steps, per-op overhead)")
    worker.add_argument("--tree", default=str(ROOT), help="the source tree to import tinygrad_cnn from")
    return parser.parse_args(argv)


# ==== the workers: one measurement in a fresh process ================================================
#
# NumPy, tinygrad_cnn and torch are imported inside these functions, in the worker process only.


# Each worker of the training-step and per-op sections times calls for at least this long. The
# speed of a small cloud VM moves in phases of a few seconds that no counter shows (AMD EPYC host,
# 2 vCPUs, no steal time reported): one process of our LeNet step ran at 33-35 ms for six seconds,
# another at 57-79 ms, and one switched from ~40 to ~65 ms halfway, on idle CPUs. Twenty steps
# (under a second) sample one phase, so a round's ratio was one phase against another (0.99-2.94
# in one run of five rounds); a few seconds per process sample several.
MEASURE_SECONDS = 3.0


def time_per_call(fn, repeat: int, seconds: float = 0.0) -> list:
    """Seconds taken by each of at least ``repeat`` back-to-back calls of ``fn``, called until
    ``seconds`` have passed as well."""
    times = []
    end = time.perf_counter() + seconds
    while len(times) < repeat or time.perf_counter() < end:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def make_batch(batch: int, input_shape):
    import numpy as np
    rng = np.random.default_rng(0)
    return rng.standard_normal((batch, *input_shape)).astype(np.float32), rng.integers(0, 10, batch)


def our_model(name: str, input_shape):
    import tinygrad_cnn as tg
    from tinygrad_cnn import models
    tg.manual_seed(0)
    return models.seed_net(input_shape) if name == "seed" else models.lenet(input_shape)


def our_training_step(name: str, batch: int, input_shape):
    """A closure running one training step of our model; returns the loss as a float."""
    import tinygrad_cnn.nn.functional as F
    from tinygrad_cnn import Tensor, optim
    model = our_model(name, input_shape)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    images, labels = make_batch(batch, input_shape)
    x = Tensor(images)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        optimizer.step()
        return float(loss.item())

    return step


def torch_model(name: str, input_shape):
    """The torch twin of ``models.seed_net`` / ``models.lenet`` (same layers, same order), starting
    from our model's weights, so that both libraries do the same arithmetic."""
    import numpy as np
    import torch
    nn = torch.nn
    channels, height, width = input_shape
    if name == "seed":
        flat = 8 * ((height - 8) // 2) * ((width - 8) // 2)
        model = nn.Sequential(nn.Conv2d(channels, 8, 5), nn.ReLU(), nn.Conv2d(8, 8, 5), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, 10))
    else:
        flat = 64 * (height // 4) * (width // 4)
        model = nn.Sequential(nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, 10))
    with torch.no_grad():
        for theirs, ours in zip(model.parameters(), our_model(name, input_shape).parameters(), strict=True):
            theirs.copy_(torch.from_numpy(np.array(ours.data)))
    return model


def torch_training_step(name: str, batch: int, input_shape):
    import torch
    model = torch_model(name, input_shape)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images, labels = make_batch(batch, input_shape)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return float(loss.item())

    return step


def training_step(args):
    make = our_training_step if args.framework == "ours" else torch_training_step
    return make(args.net, args.batch, (1, args.size, args.size))


def worker_step(args) -> dict:
    """Milliseconds per training step. The first three steps warm up (Adam's state, the array
    cache) and their losses are reported: the parent checks that both libraries agree on them.
    With ``--probe 1`` the hand-off probe runs before and after the timed steps (``handoff_probe``)."""
    if args.probe:
        before = handoff_probe()
        time.sleep(0.2)  # OpenBLAS's worker thread spins ~0.1 s after the probe's last GEMM: let it stop first
    step = training_step(args)
    losses = [step() for _ in range(3)]
    times = time_per_call(step, args.repeat, args.seconds)
    result = {"ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times), "steps": len(times), "losses": losses}
    tuning = importlib.import_module("tinygrad_cnn.kernels.tuning") if args.framework == "ours" and \
        importlib.util.find_spec("tinygrad_cnn.kernels.tuning") else None  # None in a tree from before it (compare.py)
    if tuning is not None:  # the methods timed on this host and kept, as they were in force
        result["kernel_choices"] = {"file": str(tuning.path()), "mode": tuning.mode(),
                                    "methods": {question: entry["method"] for question, entry in tuning.choices().items()}}
    if args.probe:
        result["handoff"] = [before, handoff_probe()]
    return result


# The hand-off probe. On the AMD EPYC host (2 vCPUs) some processes of our LeNet step ran at about
# twice their usual time, and a process could change state midway; torch's processes in between were
# slowed much less. In those processes the step's GEMMs and copies, each timed alone on fresh arrays
# of their sizes, were only ~1.2x slower; what had slowed down was NumPy's two-thread GEMM reading
# an operand that the calling thread had just written, as it reads the im2col columns: 8 x (copy 2
# MB into B, then W @ B) took 8.2-9.1 ms against 3.5-4.4 in other processes, 8 x (copy elsewhere,
# then W @ B) 4.4-4.8. That fits BLAS's second thread running on a core that shares no cache with
# the first (the host places vCPUs; a process cannot see where). The probe is that measurement, the
# ratio of the two loops: about 1 usually, about 2 in that state; above ``HANDOFF_PENALTY`` a
# process counts as caught. In round 7's runs (RESULTS.md) it caught every process of our LeNet step
# that ran at 55 ms or more, and some that were not slow, so the report uses it to read the range of
# a comparison by; the goals are judged on every round.
HANDOFF_PENALTY = 1.5


def handoff_probe(repeat: int = 15) -> float:
    """Time of 8 x (copy 2 MB into B; W @ B) over 8 x (copy 2 MB elsewhere; W @ B), medians of
    ``repeat`` alternations; the shapes of a chunk of LeNet's second layer (64 x 288 @ 288 x 1792)."""
    import numpy as np
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((64, 288), dtype=np.float32), rng.standard_normal((288, 1792), dtype=np.float32)
    source, elsewhere, out = b.copy(), np.empty_like(b), np.empty((64, 1792), np.float32)

    def loop(target):
        start = time.perf_counter()
        for _ in range(8):
            np.copyto(target, source)
            np.matmul(w, b, out=out)
        return time.perf_counter() - start

    fresh, old = [], []
    for _ in range(repeat + 1):  # the first of each is a warm-up
        fresh.append(loop(b))
        np.matmul(w, b, out=out)  # both threads read B, which the fresh loop has just written, before
        old.append(loop(elsewhere))  # the old loop starts: it times only GEMMs on a B they have read
    return statistics.median(fresh[1:]) / statistics.median(old[1:])


CONV = {"n": 32, "c": 64, "o": 64, "size": 32, "k": 3}
CONV_FLOP = 3 * 2 * CONV["n"] * CONV["o"] * CONV["c"] * CONV["k"] ** 2 * CONV["size"] ** 2  # fwd, both grads


def best_ms(fn, repeat: int) -> float:
    fn()
    return 1e3 * min(time_per_call(fn, repeat))


def worker_conv(args) -> dict:
    """Forward and both gradients of the 3x3, 64 -> 64 convolution (best of ``repeat``); for ours
    also NumPy's own matmul on the same multiply-adds as one GEMM, in the same process."""
    import numpy as np
    n, c, o, size, k = (CONV[key] for key in ("n", "c", "o", "size", "k"))
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((n, c, size, size)).astype(np.float32)
    w_np = (rng.standard_normal((o, c, k, k)) * 0.05).astype(np.float32)
    g_np = rng.standard_normal((n, o, size, size)).astype(np.float32)
    if args.framework == "torch":
        import torch
        x, w, g = torch.from_numpy(x_np).requires_grad_(), torch.from_numpy(w_np).requires_grad_(), torch.from_numpy(g_np)

        def conv():
            x.grad = w.grad = None
            torch.nn.functional.conv2d(x, w, padding=1).backward(g)

        ms = best_ms(conv, args.repeat)
        return {"ms": ms, "gflops": CONV_FLOP / ms / 1e6}

    import tinygrad_cnn.nn.functional as F
    from tinygrad_cnn import Tensor
    x, w, g = Tensor(x_np, requires_grad=True), Tensor(w_np, requires_grad=True), Tensor(g_np)

    def conv():
        x.grad = w.grad = None
        F.conv2d(x, w, padding=1).backward(g)

    ms = best_ms(conv, args.repeat)
    # The same multiply-adds as one GEMM, (O x C*k*k) @ (C*k*k x N*OH*OW), and one sample's share.
    a = rng.standard_normal((o, c * k * k)).astype(np.float32)
    b = rng.standard_normal((c * k * k, n * size * size)).astype(np.float32)
    b_one = np.ascontiguousarray(b[:, : size * size])
    gemm_ms = best_ms(lambda: a @ b, args.repeat)
    gemm_one_ms = best_ms(lambda: a @ b_one, args.repeat * 10)
    return {"ms": ms, "gflops": CONV_FLOP / ms / 1e6,
            "numpy_gemm_gflops": 2 * o * c * k * k * b.shape[1] / gemm_ms / 1e6,
            "numpy_gemm_per_sample_gflops": 2 * o * c * k * k * b_one.shape[1] / gemm_one_ms / 1e6}


# The convolutions of the two training steps (batch 64, 28 x 28 images), as the steps call them:
# net -> (index in the model, input shape, weight shape, padding), first layer first. A first layer
# needs no input gradient.
LAYERS = {"seed": ((0, (64, 1, 28, 28), (8, 1, 5, 5), 0), (2, (64, 8, 24, 24), (8, 8, 5, 5), 0)),
          "lenet": ((0, (64, 1, 28, 28), (32, 1, 3, 3), 1), (3, (64, 32, 14, 14), (64, 32, 3, 3), 1))}
# A part of a convolution. "both gradients" is what a step computes past the first layer: ours as its
# two kernels in turn (the step's two ops), torch's as one ``convolution_backward`` call, as its step
# makes it (timing torch's two gradients apart would charge it twice for what the call shares).
LAYER_PARTS = ("forward", "weight gradient", "input gradient", "both gradients")
FIRST_LAYER_PARTS = ("forward", "weight gradient")
# Each part is timed for this long in each process: ten parts a process, seven rounds of two
# processes. Shorter than a step's window (``MEASURE_SECONDS``): this section is the profile the step
# goals are read by, not a goal, and its per-round ranges show what the host's phases did to it.
LAYER_SECONDS = 0.5


def layer_calls(framework: str, x, w, b, g, padding: int) -> dict:
    """{part: a call computing it} for one convolution (``LAYER_PARTS``): the forward with its bias,
    the weight gradient with the bias's, the input gradient, and both. Ours through the kernels our
    ops call (``tinygrad_cnn.kernels.active()``: Conv2d, Conv2dWeightGrad plus the bias's Sum,
    Conv2dInputGrad), torch's through ``conv2d`` and ``aten.convolution_backward``, whose output mask
    picks the gradients."""
    if framework == "torch":
        import torch
        x, w, b, g = (torch.from_numpy(a) for a in (x, w, b, g))
        backward = torch.ops.aten.convolution_backward

        def gradients(mask):
            return lambda: backward(g, x, w, [w.shape[0]], [1, 1], [padding] * 2, [1, 1], False, [0, 0], 1, mask)

        return {"forward": lambda: torch.nn.functional.conv2d(x, w, b, padding=padding),
                "weight gradient": gradients([False, True, True]), "input gradient": gradients([True, False, False]),
                "both gradients": gradients([True, True, True])}
    from tinygrad_cnn.kernels import active
    from tinygrad_cnn.ops.conv import ConvGeometry
    kernels, geometry = active(), ConvGeometry(kernel=w.shape[2:], padding=(padding, padding))

    def weight_gradient():
        return kernels.conv2d_weight_grad(x, g, w.shape, geometry), kernels.sum_axes(g, (0, 2, 3))

    def input_gradient():
        return kernels.conv2d_input_grad(g, w, x.shape, geometry)

    return {"forward": lambda: kernels.conv2d(x, w, geometry, b), "weight gradient": weight_gradient,
            "input gradient": input_gradient, "both gradients": lambda: (input_gradient(), *weight_gradient())}


def worker_layers(args) -> dict:
    """Milliseconds (median of at least ``repeat`` calls, made for at least ``seconds``) of each part
    of each convolution in ``LAYERS``, after two warm-up calls (our first call of a shape may time its
    methods, ``kernels/tuning.py``)."""
    import numpy as np
    rng = np.random.default_rng(0)
    ms = {}
    for net, layers in LAYERS.items():
        for position, (index, x_shape, w_shape, padding) in enumerate(layers):
            x = rng.standard_normal(x_shape, dtype=np.float32)
            w = rng.standard_normal(w_shape, dtype=np.float32) * 0.1
            b = rng.standard_normal(w_shape[0], dtype=np.float32) * 0.1
            out_hw = [size + 2 * padding - k + 1 for size, k in zip(x_shape[2:], w_shape[2:])]
            g = rng.standard_normal((x_shape[0], w_shape[0], *out_hw), dtype=np.float32)
            for part, call in layer_calls(args.framework, x, w, b, g, padding).items():
                if position == 0 and part not in FIRST_LAYER_PARTS:
                    continue
                call()
                call()
                ms[f"{net} {index} {part}"] = 1e3 * statistics.median(time_per_call(call, args.repeat, args.seconds))
    return {"ms": ms}


CHAIN_LENGTH = 1000


def elementwise_chain(x):
    """1,000 elementwise ops, four kinds in turn; the input is used 250 times."""
    y = x
    for _ in range(CHAIN_LENGTH // 4):
        y = (y * 1.001 + 0.5).tanh() - x
    return y.sum()


def worker_overhead(args) -> dict:
    """Microseconds per op of the chain, forward and backward (medians over at least ``repeat``
    chains, made for at least ``seconds``)."""
    import numpy as np
    data = np.random.default_rng(0).random((4, 4), dtype=np.float32)
    if args.framework == "torch":
        import torch

        def make_leaf():
            return torch.tensor(data, requires_grad=True)
    else:
        from tinygrad_cnn import Tensor

        def make_leaf():
            return Tensor(data, requires_grad=True)

    forward, backward = [], []
    end = time.perf_counter() + args.seconds
    chain = 0
    while chain < args.repeat + 2 or time.perf_counter() < end:  # the first two warm up
        chain += 1
        x = make_leaf()
        start = time.perf_counter()
        y = elementwise_chain(x)
        middle = time.perf_counter()
        y.backward()
        if chain > 2:
            forward.append(middle - start)
            backward.append(time.perf_counter() - middle)
    fwd, bwd = (1e6 * statistics.median(t) / CHAIN_LENGTH for t in (forward, backward))
    return {"fwd_us_per_op": fwd, "bwd_us_per_op": bwd, "us_per_op": fwd + bwd}


def array_cache():
    """Our caching allocator's module (tinygrad_cnn.kernels.memory, formerly tinygrad_cnn.memory),
    or None for a tree without one."""
    for name in ("tinygrad_cnn.kernels.memory", "tinygrad_cnn.memory"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def resident_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field)) / 1024


def rss_step_mb(step) -> float | None:
    """Resident-memory high-water mark during one step minus the resident size before it (Linux:
    /proc/self/clear_refs resets the mark). It counts pages, so memory the allocator kept from
    earlier steps is not counted again."""
    try:
        before = resident_mb("VmRSS:")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        step()
        return resident_mb("VmHWM:") - before
    except (OSError, StopIteration):
        return None


def torch_peak_mb(step) -> float:
    """Peak tensor memory of one call of ``step``, from the allocation events torch's profiler
    records with profile_memory=True: replayed in time order, their running sum peaks there."""
    import torch
    with quiet_stderr(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                                profile_memory=True) as profiler:
        step()
    events = sorted((e.start_ns(), e.nbytes()) for e in profiler.profiler.kineto_results.events() if e.name() == "[memory]")
    running = peak = 0
    for _, nbytes in events:
        running += nbytes
        peak = max(peak, running)
    return peak / 2**20


def our_peak_mb(step, cache) -> float:
    """Peak of NumPy allocations during one step above what was allocated before it (tracemalloc
    sees NumPy's array buffers). The array cache is emptied first: every block the step uses is
    then allocated, and counted, during the step, together with any block it holds without using."""
    import tracemalloc
    if cache is not None:
        cache.empty_cache()
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - before) / 2**20


MEMORY_METHOD = (
    "each library in a fresh process of its own, after two warm-up steps. Ours: tracemalloc peak above the "
    "start of one training step (NumPy reports its array buffers to tracemalloc), with the array cache emptied "
    "before the step so that its blocks are counted; torch: the running sum of the allocation events of "
    "torch.profiler (profile_memory=True) over one step. Cross-check with one method for both: the RSS "
    "high-water mark during a step minus the RSS before it."
)


def worker_memory(args) -> dict:
    step = training_step(args)
    step()
    step()
    cache = array_cache() if args.framework == "ours" else None
    if cache is not None:
        cache.empty_cache()  # the cache's blocks are resident already: let the cross-check count them again
    result = {"rss_delta_mb": rss_step_mb(step)}
    if args.framework == "torch":
        result["peak_mb"] = torch_peak_mb(step)
        return result
    result["peak_mb"] = our_peak_mb(step, cache)
    if cache is not None and hasattr(cache, "stats"):
        step()
        stats = cache.stats()
        result["cache_free_mb"] = (stats["cached_bytes"] - stats["in_use_bytes"]) / 2**20
    return result


class quiet_stderr:
    """Silence file descriptor 2 (the profiler's C++ logging) for the duration of a block."""

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc):
        os.dup2(self.saved, 2)
        os.close(self.saved)
        return False


def openblas_function(name: str):
    """A function of NumPy's OpenBLAS, found with ctypes in the libraries mapped into this process,
    under the prefix and suffix its symbols carry (scipy-openblas64 builds: ``scipy_openblas_..._64_``);
    None when there is no OpenBLAS."""
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
    except OSError:
        return None
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("", ""), ("scipy_", "64_"), ("scipy_", ""), ("", "64_")):
            if hasattr(library, f"{prefix}{name}{suffix}"):
                return getattr(library, f"{prefix}{name}{suffix}")
    return None


def worker_env(args) -> dict:
    """What a worker's NumPy runs on: its version, BLAS, kernel choice and thread count."""
    import ctypes

    import numpy as np
    blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    result = {"numpy": np.__version__, "blas": f"{blas.get('name', '?')} {blas.get('version', '')}".strip(),
              "blas_core": "unknown (not OpenBLAS?)", "blas_threads": None, "threadpoolctl": False}
    try:
        import threadpoolctl
        for info in threadpoolctl.threadpool_info():
            if info.get("user_api") == "blas":
                result.update(blas_core=info.get("architecture") or result["blas_core"],
                              blas_threads=info.get("num_threads"), threadpoolctl=True)
                break
    except ImportError:
        pass
    if not result["threadpoolctl"]:
        corename, threads = openblas_function("openblas_get_corename"), openblas_function("openblas_get_num_threads")
        if corename is not None and threads is not None:
            corename.restype = ctypes.c_char_p
            result.update(blas_core=corename().decode(), blas_threads=int(threads()))
    if args.framework == "torch":
        import torch
        result.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return result


def process_info(args) -> dict:
    info = {"pid": os.getpid(), "threads": args.threads,
            "environment": {k: v for k, v in os.environ.items()
                            if k in (*THREAD_VARIABLES, *OPENBLAS_SETTINGS, *MALLOC_KEEP) or k.startswith(OUR_PREFIX)}}
    if "tinygrad_cnn" in sys.modules:
        info["tinygrad_cnn"] = str(Path(sys.modules["tinygrad_cnn"].__file__).resolve().parent)
    if "torch" in sys.modules:
        info.update(torch=sys.modules["torch"].__version__, torch_threads=sys.modules["torch"].get_num_threads())
    return info


def worker_main(args) -> int:
    """Run one measurement in this (fresh) process and print it as one JSON line."""
    # Thread counts must be in the environment before NumPy and torch load their thread pools. The
    # parent puts them in this process's environment; a worker started by hand sets its own (this
    # process's only: the shell that started it keeps its settings).
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(args.threads)
    sys.path.insert(0, str(Path(args.tree).resolve()))
    if args.framework == "torch":
        import torch
        torch.set_num_threads(args.threads)
    measure = {"env": worker_env, "step": worker_step, "conv": worker_conv,
               "overhead": worker_overhead, "memory": worker_memory, "layers": worker_layers}[args.worker]
    result = {"worker": args.worker, "framework": args.framework, **measure(args), "process": process_info(args)}
    print(json.dumps(result), flush=True)
    return 0


# ==== the parent: fresh processes, alternating =======================================================


class WorkerFailed(RuntimeError):
    pass


def child_environment(threads: int, settings: dict) -> dict:
    """A copy of this process's environment for a worker: the thread counts, plus ``settings``
    (a value of None removes the variable). This process's own environment is left as it is."""
    env = dict(os.environ)
    env.update({variable: str(threads) for variable in THREAD_VARIABLES})
    for key, value in settings.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_worker(kind: str, framework: str, threads: int, settings: dict | None = None, tree: Path | str = ROOT,
               **options) -> dict:
    """Start a fresh worker process, return its JSON line."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--framework", framework,
               "--threads", str(threads), "--tree", str(tree)]
    for key, value in options.items():
        command += [f"--{key}", str(value)]
    try:
        finished = subprocess.run(command, capture_output=True, text=True, timeout=900,
                                  env=child_environment(threads, settings or {}))
    except subprocess.TimeoutExpired:
        raise WorkerFailed(f"the {kind} worker for {framework} did not finish in 900 s") from None
    lines = finished.stdout.strip().splitlines()
    if finished.returncode != 0 or not lines:
        last = (finished.stderr.strip().splitlines() or ["no output"])[-1]
        raise WorkerFailed(f"the {kind} worker for {framework} ({' '.join(command[2:])}) failed: {last}")
    return json.loads(lines[-1])


def alternate_processes(measure_a, measure_b, rounds: int) -> list:
    """Pairs (a, b) of results, one pair per round, each from fresh processes: a first on even
    rounds, b first on odd ones, so that neither always runs right after the other."""
    pairs = []
    for k in range(rounds):
        if k % 2 == 0:
            a = measure_a()
            b = measure_b()
        else:
            b = measure_b()
            a = measure_a()
        pairs.append((a, b))
    return pairs


def spread(values) -> dict:
    """Median and range of a list of figures."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def compare(kind: str, key: str, rounds: int, threads: int, settings: dict, with_torch: bool, **options) -> dict:
    """``key`` of the ``kind`` worker for ours and torch in alternating fresh processes: each library's
    median, and the median and range of the per-round ratios ours / torch."""
    def ours():
        return run_worker(kind, "ours", threads, settings, **options)

    def theirs():
        return run_worker(kind, "torch", threads, settings, **options)

    if not with_torch:
        runs = [ours() for _ in range(rounds)]
        return {"ours": spread([r[key] for r in runs]), "ours_runs": runs}
    pairs = alternate_processes(ours, theirs, rounds)
    return {"ours": spread([a[key] for a, _ in pairs]), "torch": spread([b[key] for _, b in pairs]),
            "ratio": spread([a[key] / b[key] for a, b in pairs]),
            "ours_runs": [a for a, _ in pairs], "torch_runs": [b for _, b in pairs]}


def same_arithmetic(entry: dict) -> dict:
    """Both libraries started from the same weights on the same batch: their first losses must agree
    (a fast implementation that computes something else is no win)."""
    ours, theirs = entry["ours_runs"][0]["losses"], entry["torch_runs"][0]["losses"]
    worst = max(abs(a - b) / max(1e-6, abs(b)) for a, b in zip(ours, theirs))
    return {"losses_ours_torch": list(zip(ours, theirs)), "max_relative_difference": worst, "agree": worst < 1e-4}


class Bench:
    """The sections of a run, with its settings: rounds, threads, the workers' extra environment."""

    def __init__(self, args):
        self.quick, self.threads, self.with_torch = args.quick, args.threads, not args.no_torch and torch_installed()
        self.rounds = args.rounds or (1 if args.quick else 7)
        self.settings = {}
        if args.malloc == "keep":
            self.settings.update(MALLOC_KEEP)
        if args.openblas_coretype == "auto":
            self.settings.update(dict.fromkeys(OPENBLAS_SETTINGS))
        elif args.openblas_coretype:
            self.settings["OPENBLAS_CORETYPE"] = args.openblas_coretype

    def steps(self, threads=None, settings=None, rounds=None, probe=False) -> dict:
        results = {}
        for name in ("seed", "lenet"):
            entry = compare("step", "ms", rounds or self.rounds, threads or self.threads,
                            self.settings if settings is None else settings, self.with_torch,
                            net=name, batch=64, repeat=3 if self.quick else 20, probe=int(probe),
                            seconds=0 if self.quick else MEASURE_SECONDS)
            if self.with_torch:
                entry["same_arithmetic"] = same_arithmetic(entry)
            entry["goal_ratio"] = GOALS[f"{name}_step_ratio"]
            results[name] = entry
        return results

    def step(self) -> dict:
        return self.steps(probe=True)

    def conv(self) -> dict:
        entry = compare("conv", "ms", 1 if self.quick else self.rounds, self.threads, self.settings, self.with_torch,
                        repeat=2 if self.quick else 7)
        runs = entry["ours_runs"]
        entry.update(shape="N={n} C={c} O={o} {size}x{size} k={k} pad=1".format(**CONV), gflop=CONV_FLOP / 1e9,
                     ours_gflops=spread([r["gflops"] for r in runs]),
                     numpy_gemm_gflops=spread([r["numpy_gemm_gflops"] for r in runs]),
                     numpy_gemm_per_sample_gflops=spread([r["numpy_gemm_per_sample_gflops"] for r in runs]),
                     share_of_gemm=spread([r["gflops"] / r["numpy_gemm_gflops"] for r in runs]),
                     goal_share=GOALS["conv_share_of_gemm"])
        if self.with_torch:
            entry["torch_gflops"] = spread([r["gflops"] for r in entry["torch_runs"]])
        return entry

    def overhead(self) -> dict:
        entry = compare("overhead", "us_per_op", 1 if self.quick else self.rounds, self.threads, self.settings,
                        self.with_torch, repeat=3 if self.quick else 15, seconds=0 if self.quick else MEASURE_SECONDS)
        entry.update(ops=CHAIN_LENGTH, goal_ratio=GOALS["per_op_ratio"])
        for side in ("ours", "torch") if self.with_torch else ("ours",):
            for part in ("fwd", "bwd"):
                entry[f"{side}_{part}"] = spread([r[f"{part}_us_per_op"] for r in entry[f"{side}_runs"]])
        return entry

    def memory(self) -> dict:
        measured = {}

        def measure(framework, net="seed", batch=64, size=28):
            """One fresh process per configuration (the tables share some, e.g. seed at batch 64)."""
            key = (framework, net, batch, size)
            if key not in measured:
                measured[key] = run_worker("memory", framework, self.threads, self.settings,
                                           net=net, batch=batch, size=size)
            return measured[key]

        frameworks = ("ours", "torch") if self.with_torch else ("ours",)
        result = {"method": MEMORY_METHOD, "goal_ratio": GOALS["seed_memory_ratio"]}
        for net in ("seed",) if self.quick else ("seed", "lenet"):
            result[net] = {framework: measure(framework, net) for framework in frameworks}
        if self.with_torch:
            result["ratio"] = result["seed"]["ours"]["peak_mb"] / result["seed"]["torch"]["peak_mb"]
        batches = (16, 64) if self.quick else (16, 32, 64, 128, 256)
        sizes = (28, 56) if self.quick else (28, 56, 112)
        by = frameworks if not self.quick else ("ours",)
        result["by_batch"] = [{"batch": b, **{f: measure(f, batch=b)["peak_mb"] for f in by}} for b in batches]
        result["by_image_size"] = [{"size": s, "batch": 16, **{f: measure(f, batch=16, size=s)["peak_mb"] for f in by}}
                                   for s in sizes]
        return result

    def what_if(self) -> dict:
        """The training steps with settings that must be made before a process starts."""
        workers = child_environment(self.threads, self.settings)
        coretype_set = any(k in workers for k in OPENBLAS_SETTINGS)  # then the other way is: unset
        kernels = (("OpenBLAS picks its own kernels (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE unset)",
                    dict.fromkeys(OPENBLAS_SETTINGS)) if coretype_set else
                   ("OpenBLAS held to its AVX2 kernels (OPENBLAS_CORETYPE=Haswell)", {"OPENBLAS_CORETYPE": "Haswell"}))
        configurations = {
            "1 thread each": (1, self.settings),
            "glibc keeps freed memory (" + ", ".join(f"{k}={v}" for k, v in MALLOC_KEEP.items()) + ")":
                (self.threads, {**self.settings, **MALLOC_KEEP}),
            kernels[0]: (self.threads, {**self.settings, **kernels[1]}),
        }
        rounds = 1 if self.quick else max(3, self.rounds // 2)
        return {label: self.steps(threads, settings, rounds) for label, (threads, settings) in configurations.items()}

    def scaling(self) -> dict:
        batches = (16, 32) if self.quick else (16, 32, 64, 128, 256)
        rounds = 1 if self.quick else 3
        rows = []
        for name in ("seed",) if self.quick else ("seed", "lenet"):
            for batch in batches:
                entry = compare("step", "ms", rounds, self.threads, self.settings, self.with_torch,
                                net=name, batch=batch, repeat=2 if self.quick else 5)
                row = {"net": name, "batch": batch, "ours_ms": entry["ours"]["median"]}
                if self.with_torch:
                    row.update(torch_ms=entry["torch"]["median"], ratio=entry["ratio"]["median"])
                rows.append(row)
        return {"rows": rows}

    def layers(self) -> dict:
        """Each convolution of the steps, part by part, ours and torch's in alternating fresh processes."""
        options = dict(repeat=2 if self.quick else 15, seconds=0 if self.quick else LAYER_SECONDS)

        def measure(framework):
            return lambda: run_worker("layers", framework, self.threads, self.settings, **options)

        rounds = 1 if self.quick else self.rounds
        pairs = (alternate_processes(measure("ours"), measure("torch"), rounds) if self.with_torch
                 else [(measure("ours")(), None) for _ in range(rounds)])
        rows = []
        for net, layers in LAYERS.items():
            for index, x_shape, w_shape, padding in layers:
                for part in LAYER_PARTS:
                    key = f"{net} {index} {part}"
                    if key not in pairs[0][0]["ms"]:
                        continue
                    row = {"net": net, "layer": index, "input": list(x_shape), "weights": list(w_shape),
                           "padding": padding, "part": part, "ours": spread([a["ms"][key] for a, _ in pairs])}
                    if self.with_torch:
                        row.update(torch=spread([b["ms"][key] for _, b in pairs]),
                                   ratio=spread([a["ms"][key] / b["ms"][key] for a, b in pairs]))
                    rows.append(row)
        result = {"rows": rows, "ours_runs": [a for a, _ in pairs]}
        if self.with_torch:
            result["torch_runs"] = [b for _, b in pairs]
        return result


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


# ---- environment ------------------------------------------------------------------------------------

CPU_FLAGS = ("avx2", "avx512f", "amx_tile")


def cpu() -> dict:
    """CPU model, core count and the flags that decide which GEMM kernels can run (/proc/cpuinfo)."""
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model is None:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    model = model or platform.processor() or "unknown CPU"
    return {"cpu": model, "cores": os.cpu_count(), "flags": {flag: flag in flags for flag in CPU_FLAGS}}


def host_key(env: dict) -> str:
    """The host kind a result belongs to: CPU model and core count."""
    return f"{env['cpu']}, {env['cores']} cores"


def environment(bench: Bench) -> dict:
    env = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "python": platform.python_version(),
           **cpu(), "threads": bench.threads, "load_average_before": os.getloadavg()[0]}
    workers = child_environment(bench.threads, bench.settings)
    env["openblas_environment"] = {k: workers[k] for k in sorted(workers)
                                   if k.startswith("OPENBLAS_") and k not in THREAD_VARIABLES}
    env["tinygrad_cnn_environment"] = {k: workers[k] for k in sorted(workers) if k.startswith(OUR_PREFIX)}
    env["malloc"] = ("glibc keeps freed memory (" + ", ".join(f"{k}={v}" for k, v in MALLOC_KEEP.items()) + ")"
                     if all(workers.get(k) == v for k, v in MALLOC_KEEP.items()) else "glibc defaults")
    ours = run_worker("env", "ours", bench.threads, bench.settings)
    env.update({k: ours[k] for k in ("numpy", "blas", "blas_core", "blas_threads", "threadpoolctl")})
    # torch's version without loading it here; its thread count as each torch worker reports it
    env["torch"] = importlib.metadata.version("torch") if bench.with_torch else None
    return env


def torch_threads_seen(results) -> list:
    """The thread counts torch's workers reported (one value when all went as set)."""
    seen = set()

    def walk(value):
        if isinstance(value, dict):
            if "torch_threads" in value and isinstance(value["torch_threads"], int):
                seen.add(value["torch_threads"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(results)
    return sorted(seen)


# ---- report -------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def ratio_cell(s: dict, percent: bool = False) -> str:
    if percent:
        return f"{100 * s['median']:.0f}% ({100 * s['min']:.0f}-{100 * s['max']:.0f}%)"
    return f"{s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})"


def format_environment(env: dict) -> list:
    flags = ", ".join(f"{flag} {'yes' if present else 'no'}" for flag, present in env["flags"].items())
    openblas = ", ".join(f"{k}={v}" for k, v in env["openblas_environment"].items()) or "none (OpenBLAS detects the CPU)"
    threads = " or ".join(map(str, env.get("torch_threads") or [])) or "?"
    torch = f"torch {env['torch']} ({threads} threads)" if env["torch"] else "torch not measured"
    return [
        f"Host: {env['cpu']}, {env['cores']} cores; CPU flags: {flags}.",
        f"Python {env['python']}, NumPy {env['numpy']} with {env['blas']} (kernels: {env['blas_core']}, "
        f"{env['blas_threads']} threads; OPENBLAS_* variables in force besides the thread count: {openblas}); {torch}.",
        f"Threads: {env['threads']} per library (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS in each "
        f"worker's environment; torch.set_num_threads({env['threads']})). Malloc: {env['malloc']}. "
        f"{OUR_PREFIX}* variables in force: "
        + (", ".join(f"{k}={v}" for k, v in env.get("tinygrad_cnn_environment", {}).items()) or "none") + ".",
        "Method: one library per fresh process; round k runs ours then torch (torch then ours on odd rounds); "
        "a ratio is the median of the per-round ratios ours / torch, with their range (min-max).",
    ]


def summary_rows(r: dict) -> list:
    """Every figure against its goal, one row each."""
    rows = []
    for name, label in (("seed", "seed-net training step, batch 64"), ("lenet", "LeNet-style training step, batch 64")):
        if "step" in r:
            e = r["step"][name]
            torch_cell = f"{e['torch']['median']:.2f} ms" if "ratio" in e else "-"
            ratio = ratio_cell(e["ratio"]) if "ratio" in e else "-"
            ok = "-" if "ratio" not in e else verdict(e["ratio"]["median"] <= e["goal_ratio"])
            rows.append(f"| {label} | {e['ours']['median']:.2f} ms | {torch_cell} | {ratio} | <= {e['goal_ratio']} | {ok} |")
    if "conv" in r:
        c = r["conv"]
        rows.append(f"| conv2d 3x3 64->64 fwd+bwd, share of NumPy's GEMM GFLOP/s | {c['ours_gflops']['median']:.0f} "
                    f"GFLOP/s (GEMM {c['numpy_gemm_gflops']['median']:.0f}) | "
                    + (f"{c['torch_gflops']['median']:.0f} GFLOP/s" if "torch_gflops" in c else "-")
                    + f" | {ratio_cell(c['share_of_gemm'], percent=True)} | >= {100 * c['goal_share']:.0f}% | "
                    f"{verdict(c['share_of_gemm']['median'] >= c['goal_share'])} |")
    if "overhead" in r:
        o = r["overhead"]
        rows.append(f"| per-op overhead, forward + backward | {o['ours']['median']:.2f} us/op | "
                    + (f"{o['torch']['median']:.2f} us/op | {ratio_cell(o['ratio'])} | <= {o['goal_ratio']} | "
                       f"{verdict(o['ratio']['median'] <= o['goal_ratio'])} |" if "ratio" in o
                       else f"- | - | <= {o['goal_ratio']} | - |"))
    if "memory" in r:
        m = r["memory"]
        seed = m["seed"]
        rows.append(f"| peak memory, seed-net step, batch 64 | {seed['ours']['peak_mb']:.1f} MB | "
                    + (f"{seed['torch']['peak_mb']:.1f} MB | {m['ratio']:.2f} | <= {m['goal_ratio']} | "
                       f"{verdict(m['ratio'] <= m['goal_ratio'])} |" if "ratio" in m
                       else f"- | - | <= {m['goal_ratio']} | - |"))
    return rows


def handoff_line(name: str, e: dict) -> str | None:
    """How many processes of a training-step comparison the hand-off probe caught (``handoff_probe``),
    and the ratio over the rounds in which it caught neither; None for results without the probe."""
    sides = [("our", e["ours_runs"])] + ([("torch's", e["torch_runs"])] if "torch_runs" in e else [])
    if not all(runs and all("handoff" in run for run in runs) for _, runs in sides):
        return None

    def caught(run) -> bool:
        return max(run["handoff"]) > HANDOFF_PENALTY

    counts = [f"{sum(map(caught, runs))} of {len(runs)} of {who} processes (values "
              f"{min(min(r['handoff']) for r in runs):.2f}-{max(max(r['handoff']) for r in runs):.2f})"
              for who, runs in sides]
    line = (f"- {name}: the hand-off probe (`handoff_probe` in run.py) was above {HANDOFF_PENALTY}, before or after "
            "the steps, in " + " and ".join(counts))
    if "torch_runs" in e:
        clear = [a["ms"] / b["ms"] for a, b in zip(e["ours_runs"], e["torch_runs"]) if not caught(a) and not caught(b)]
        rounds = f"{len(clear)} round{'s' if len(clear) != 1 else ''}"
        line += (f"; over the {rounds} in which it was above in neither process, the ratio was {ratio_cell(spread(clear))}"
                 " (for reading the range; the goal is judged on every round)" if clear else
                 "; in every round it was above in one process or both")
    return line


def kernel_choices_line(name: str, e: dict) -> str | None:
    """Which method each small convolution of our step took, as the last of our processes saw the
    choices file (``kernels/tuning.py``): timed on this host by the first process that needed them."""
    seen = [run["kernel_choices"] for run in e.get("ours_runs", []) if "kernel_choices" in run]
    if not seen:
        return None
    last = seen[-1]
    if last["mode"] == "fixed":
        return f"- {name}: kernel choices: none timed (TINYGRAD_CNN_TUNING=fixed), every layer by the fixed rules"
    counts = collections.Counter(last["methods"].values())
    taken = ", ".join(f"{method} {counts[method]}" for method in sorted(counts)) or "none yet"
    return (f"- {name}: kernel choices timed on this host and its thread settings, kept in `{last['file']}` "
            f"(`python -m tinygrad_cnn.kernels` lists them): {taken}")


def format_report(r: dict) -> str:
    lines = format_environment(r["environment"])
    runs = r.get("section_runs", {})
    if runs:
        lines.append("Sections (the CPUs should be idle during each: other processes only ever add time):")
        for key, run in runs.items():
            lines.append(f"- {key}: `{run['command']}` at {run['date']}, {run['seconds']:.0f} s; other processes used "
                         f"{run['others_cpu_percent']:.0f}% of the CPUs during it ({run['cpu_busy_percent_before']:.0f}% "
                         "just before)")
    lines.append("")
    rows = summary_rows(r)
    if rows:
        lines += ["| figure | ours | torch | ratio: median (range) | goal | |", "|---|---|---|---|---|---|", *rows, ""]
    if "step" in r:
        for name, e in r["step"].items():
            lines.append(f"- {name}, rounds: {e['ours']['n']}; ours {e['ours']['min']:.2f}-{e['ours']['max']:.2f} ms"
                         + (f", torch {e['torch']['min']:.2f}-{e['torch']['max']:.2f} ms" if "torch" in e else ""))
            probes = handoff_line(name, e)
            if probes:
                lines.append(probes)
            choices = kernel_choices_line(name, e)
            if choices:
                lines.append(choices)
            if "same_arithmetic" in e:
                s = e["same_arithmetic"]
                lines.append(f"- {name}: same weights and batch give the same losses over 3 steps: "
                             f"{'yes' if s['agree'] else 'NO'} (max relative difference {s['max_relative_difference']:.1e})")
        lines.append("")
    if "conv" in r:
        c = r["conv"]
        lines += [f"conv2d forward + input grad + weight grad, {c['shape']}: {c['gflop']:.2f} GFLOP "
                  f"(medians over {c['ours']['n']} process(es) per library)",
                  "| | ms | GFLOP/s |", "|---|---|---|",
                  f"| ours | {c['ours']['median']:.1f} | {c['ours_gflops']['median']:.0f} |"]
        if "torch" in c:
            lines.append(f"| torch | {c['torch']['median']:.1f} | {c['torch_gflops']['median']:.0f} |")
        lines += [f"| NumPy matmul, the same multiply-adds as one GEMM (64x576 @ 576x32768), in our process | | "
                  f"{c['numpy_gemm_gflops']['median']:.0f} |",
                  f"| NumPy matmul, one sample's GEMM (64x576 @ 576x1024) | | {c['numpy_gemm_per_sample_gflops']['median']:.0f} |"]
        if "ratio" in c:
            lines.append(f"- time ours / torch: {ratio_cell(c['ratio'])}")
        lines.append("")
    if "overhead" in r:
        o = r["overhead"]
        lines += [f"per-op overhead, a chain of {o['ops']} elementwise ops on a 4x4 tensor (us per op, medians):",
                  "| | forward | backward |", "|---|---|---|",
                  f"| ours | {o['ours_fwd']['median']:.2f} | {o['ours_bwd']['median']:.2f} |"]
        if "torch_fwd" in o:
            lines.append(f"| torch | {o['torch_fwd']['median']:.2f} | {o['torch_bwd']['median']:.2f} |")
        lines.append("")
    if "memory" in r:
        m = r["memory"]
        lines.append("peak memory of one training step, batch 64")
        for net in ("seed", "lenet"):
            if net in m:
                parts = [f"{f} {v['peak_mb']:.1f} MB (RSS cross-check "
                         + ("n/a" if v["rss_delta_mb"] is None else f"{v['rss_delta_mb']:.1f} MB") + ")"
                         for f, v in m[net].items()]
                lines.append(f"- {net}: " + ", ".join(parts))
        if "cache_free_mb" in m["seed"]["ours"]:
            lines.append(f"- between steps our array cache holds {m['seed']['ours']['cache_free_mb']:.1f} MB of free "
                         "blocks for the next step (seed net; `empty_cache()` releases them)")
        lines += [f"- method: {m['method']}", "",
                  "| seed net, 28x28, batch | ours MB | ours MB per image | torch MB | torch MB per image |",
                  "|---|---|---|---|---|"]
        for row in m["by_batch"]:
            t = f"{row['torch']:.1f} | {row['torch'] / row['batch']:.3f}" if "torch" in row else "- | -"
            lines.append(f"| {row['batch']} | {row['ours']:.1f} | {row['ours'] / row['batch']:.3f} | {t} |")
        lines += ["", "| seed net, batch 16, image | ours MB | ours KB per pixel | torch MB | torch KB per pixel |",
                  "|---|---|---|---|---|"]
        for row in m["by_image_size"]:
            pixels = row["size"] ** 2
            t = f"{row['torch']:.1f} | {1024 * row['torch'] / pixels:.3f}" if "torch" in row else "- | -"
            lines.append(f"| {row['size']}x{row['size']} | {row['ours']:.1f} | {1024 * row['ours'] / pixels:.3f} | {t} |")
        lines.append("")
    if r.get("what_if"):
        lines += ["what if: the training steps again, with settings made before the workers start",
                  "| configuration | seed ours ms | seed torch ms | seed ratio | LeNet ours ms | LeNet torch ms | LeNet ratio |",
                  "|---|---|---|---|---|---|---|"]
        for label, steps in r["what_if"].items():
            cells = []
            for name in ("seed", "lenet"):
                e = steps[name]
                cells += [f"{e['ours']['median']:.2f}", f"{e['torch']['median']:.2f}" if "torch" in e else "-",
                          ratio_cell(e["ratio"]) if "ratio" in e else "-"]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    if "scaling" in r:
        lines += ["training step time against batch size (medians)",
                  "| net | batch | ours ms | ours ms/image | torch ms | torch ms/image | ratio |",
                  "|---|---|---|---|---|---|---|"]
        for row in r["scaling"]["rows"]:
            t = (f"{row['torch_ms']:.2f} | {row['torch_ms'] / row['batch']:.3f} | {row['ratio']:.2f}"
                 if "torch_ms" in row else "- | - | -")
            lines.append(f"| {row['net']} | {row['batch']} | {row['ours_ms']:.2f} | {row['ours_ms'] / row['batch']:.3f} | {t} |")
        lines.append("")
    if "layers" in r:
        lines += format_layers(r["layers"]["rows"], r.get("step"))
    return "\n".join(lines)


def format_layers(rows: list, step: dict | None) -> list:
    """The layers section: a row per part of each convolution, and per net the parts a step computes
    (forward, and both gradients or, for a first layer, the weight gradient) added up, against the
    training step's difference when the step section ran."""
    lines = ["each convolution of the training steps alone, batch 64 (medians over the rounds of each process's "
             "median; the weight gradient includes the bias's; both gradients: ours as two kernels, torch's as "
             "one call, as each step computes them)",
             "| net, layer: input, weights | part | ours ms | torch ms | ratio: median (range) |",
             "|---|---|---|---|---|"]
    for row in rows:
        (_, c, h, w), (o, _, kh, kw) = row["input"], row["weights"]
        name = f"{row['net']}, {row['layer']}: {c}x{h}x{w}, {c} -> {o} {kh}x{kw}"
        name += f" pad {row['padding']}" if row["padding"] else ""
        torch = f"{row['torch']['median']:.2f} | {ratio_cell(row['ratio'])}" if "torch" in row else "- | -"
        lines.append(f"| {name} | {row['part']} | {row['ours']['median']:.2f} | {torch} |")
    for net in dict.fromkeys(row["net"] for row in rows):
        layers = {}
        for row in rows:
            if row["net"] == net:
                layers.setdefault(row["layer"], {})[row["part"]] = row
        in_step = [parts["forward"] for parts in layers.values()] + \
                  [parts.get("both gradients", parts["weight gradient"]) for parts in layers.values()]
        ours = sum(row["ours"]["median"] for row in in_step)
        line = f"- {net}: the convolutions' parts a step computes add up to {ours:.2f} ms in ours"
        if all("torch" in row for row in in_step):
            theirs = sum(row["torch"]["median"] for row in in_step)
            line += f", {theirs:.2f} in torch's, a difference of {ours - theirs:.2f} ms"
            if step and "torch" in step.get(net, {}):
                whole = step[net]["ours"]["median"] - step[net]["torch"]["median"]
                line += f"; the whole step's (step section) is {whole:.2f} ms"
        lines.append(line)
    return [*lines, ""]


def markers(key: str) -> tuple:
    return f"<!-- BEGIN GENERATED by benchmarks/run.py, host: {key} -->", f"<!-- END GENERATED, host: {key} -->"


HOSTS_END = "<!-- END OF HOST SECTIONS -->"


def write_markdown(report: str, command: str, key: str, path: Path = HERE / "RESULTS.md") -> Path:
    """Replace this host's generated section of RESULTS.md, or add one; the other hosts' sections and
    the hand-written text around them stay."""
    begin, end = markers(key)
    block = f"{begin}\n## {key}\n\nProduced by `{command}`.\n\n{report}\n{end}"
    text = path.read_text() if path.exists() else f"# Benchmark results\n\n{HOSTS_END}\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    elif HOSTS_END in text:
        head, rest = text.split(HOSTS_END, 1)
        text = head + block + "\n\n" + HOSTS_END + rest
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
    return path


# ---- orchestration -------------------------------------------------------------------------------------


def cpu_busy_percent(seconds: float = 1.0) -> float:
    """How busy the CPUs were over the last ``seconds`` (all processes), from /proc/stat."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values) - values[3] - values[4], sum(values)  # busy (not idle, not iowait), total
    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
        return 100.0 * (busy1 - busy0) / max(1, total1 - total0)
    except OSError:
        return float("nan")


def cpu_seconds() -> tuple:
    """(seconds all CPUs were busy since boot, CPU seconds used by this process and its children)."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        busy = (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")
    except OSError:
        busy = float("nan")
    own = sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for field in ("ru_utime", "ru_stime"))
    return busy, own


def assemble(out_dir: Path, key: str) -> dict:
    """Merge the latest result of every section run on this host kind into one set of results."""
    results = {}
    for section in SECTIONS:
        path = out_dir / f"latest-{section}.json"
        if path.exists():
            part = json.loads(path.read_text())
            if host_key(part["environment"]) != key:
                continue
            results.setdefault("environment", part["environment"])
            results[section] = part[section]
            results.setdefault("section_runs", {})[section] = part["section_runs"][section]
    return results


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    if args.threads < 1:
        print("run.py: error: --threads must be at least 1", file=sys.stderr)
        return 2
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    command = "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:])
    if args.assemble:
        key = host_key(cpu())
        results = assemble(out_dir, key)
        if "environment" not in results:
            print(f"run.py: error: no section results for this host ({key}) in {out_dir}; run sections with --only "
                  "first", file=sys.stderr)
            return 2
        report = format_report(results)
        print(report)
        if not args.no_markdown:
            print(f"wrote {write_markdown(report, command, key)}", file=sys.stderr)
        return 0

    chosen = args.only.split(",") if args.only else [k for k in SECTIONS if k != "what_if" or args.what_if]
    unknown = [k for k in chosen if k not in SECTIONS]
    if unknown:
        print(f"run.py: error: unknown section(s) {', '.join(unknown)}; choose from {','.join(SECTIONS)}", file=sys.stderr)
        return 2
    bench = Bench(args)
    try:
        results = {"environment": environment(bench), "quick": args.quick, "section_runs": {}}
        for section in chosen:
            print(f"[{section}] ...", file=sys.stderr, flush=True)
            busy_before = cpu_busy_percent(0.2 if args.quick else 1.0)
            started, (busy0, own0) = time.perf_counter(), cpu_seconds()
            results[section] = getattr(bench, section)()
            seconds, (busy1, own1) = time.perf_counter() - started, cpu_seconds()
            results["section_runs"][section] = {
                "command": command, "date": datetime.datetime.now().isoformat(timespec="seconds"),
                "seconds": seconds, "cpu_busy_percent_before": busy_before,
                # CPU time other processes took during the section, as a share of all the CPUs' time
                "others_cpu_percent": max(0.0, 100 * ((busy1 - busy0) - (own1 - own0)) / (seconds * (os.cpu_count() or 1))),
            }
            print(f"[{section}] done in {seconds:.1f}s; other processes used "
                  f"{results['section_runs'][section]['others_cpu_percent']:.0f}% of the CPUs", file=sys.stderr, flush=True)
            results["environment"]["torch_threads"] = torch_threads_seen(results)
            if not args.quick and not args.json:  # for --assemble
                part = {"environment": results["environment"], section: results[section],
                        "section_runs": {section: results["section_runs"][section]}}
                (out_dir / f"latest-{section}.json").write_text(json.dumps(part, indent=2))
    except WorkerFailed as error:
        print(f"run.py: error: {error}", file=sys.stderr)
        return 1
    report = format_report(results)
    print(report)

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(args.json) if args.json else out_dir / f"{'quick-' if args.quick else ''}{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    if not args.json:
        (out_dir / ("latest-quick.json" if args.quick else "latest.json")).write_text(json.dumps(results, indent=2))
    print(f"\nwrote {path}", file=sys.stderr)
    if not args.quick and not args.no_markdown and not args.only:
        print(f"wrote {write_markdown(report, command, host_key(results['environment']))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
