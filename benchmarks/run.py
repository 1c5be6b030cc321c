"""Speed and memory of tinygrad_cnn, measured side by side with PyTorch (when it is importable).

    python benchmarks/run.py --what-if   # the full run (a few minutes on an idle machine); rewrites RESULTS.md
    python benchmarks/run.py --quick     # a smoke run (seconds on an idle machine); leaves RESULTS.md alone
    python benchmarks/run.py --only step # one section; with --assemble later, RESULTS.md from the latest sections

What is measured, and the goal each figure is checked against (the goals live here, not in unit tests):

1. training step   one step (forward, cross-entropy, backward, Adam) at batch 64 of the seed net and of
                   the LeNet-style net, ours vs torch with the same weights, alternating the two
                   over several rounds; goal: median time ratio <= 2.0 (seed) and <= 1.25 (LeNet)
2. conv2d          forward + both gradients of a 3x3, 64 -> 64 channel convolution on 32x32 images,
                   batch 32, in GFLOP/s; goal: >= 60% of what NumPy's own float32 matmul reaches on
                   the same number of multiply-adds laid out as one GEMM
3. per-op overhead a chain of 1,000 elementwise ops on a 4x4 tensor, forward and backward; goal: <= 3x torch
4. peak memory     of the seed-net training step at batch 64; goal: <= 2x torch, and growing linearly
                   with batch size and with the number of pixels
5. what if         (--what-if) the training steps again in fresh processes with settings that must be
                   made before NumPy loads: one thread each, glibc keeping freed memory, OpenBLAS
                   choosing its kernels for itself (this machine's environment pins them to Haswell)
6. batch scaling   ms per step and per image from batch 16 to 256; goal: linear (flat ms/image)

Timing is wall-clock (``time.perf_counter``): the median over rounds, with the minimum alongside
because other processes on the machine can only ever add time. Both libraries use the same
number of threads: NumPy's BLAS its default (one per core) unless ``--threads`` is given, torch
``torch.set_num_threads`` with the same number. How busy the CPUs were before each section is
recorded: with other processes running, OpenBLAS's threads wait for time slices at every GEMM and
the figures are not comparable; run the sections one by one when the CPUs are idle.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

GOALS = {
    "seed_step_ratio": 2.0,
    "lenet_step_ratio": 1.25,
    "conv_share_of_gemm": 0.60,
    "per_op_ratio": 3.0,
    "seed_memory_ratio": 2.0,
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (< 1 min); RESULTS.md is not rewritten")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries (sets OPENBLAS_NUM_THREADS; default: the BLAS default, one per core)")
    parser.add_argument("--openblas-coretype", default=None,
                        help="force OpenBLAS's kernel family (e.g. SkylakeX for AVX-512), as the OPENBLAS_CORETYPE "
                             "variable does; 'auto' removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from the "
                             "environment, so that OpenBLAS detects the CPU itself")
    parser.add_argument("--malloc", choices=("default", "keep"), default="default",
                        help="keep: glibc keeps freed memory for reuse instead of returning it to the OS "
                             "(MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_, for both libraries)")
    parser.add_argument("--what-if", action="store_true",
                        help="with the full run: also time the training steps with one thread each, under "
                             "--malloc keep and under --openblas-coretype auto, each in a fresh process")
    parser.add_argument("--no-torch", action="store_true", help="measure ours only")
    parser.add_argument("--no-markdown", action="store_true", help="do not rewrite benchmarks/RESULTS.md")
    parser.add_argument("--assemble", action="store_true",
                        help="rewrite RESULTS.md from the latest result of each section (e.g. sections run one by "
                             "one with --only when the machine was quiet)")
    parser.add_argument("--json", default=None, help="write the results to this file (default: benchmarks/results/)")
    parser.add_argument("--only", default=None,
                        help="comma-separated subset of: step,conv,overhead,memory,what_if,scaling")
    return parser.parse_args(argv)


# glibc reads its malloc settings when the process starts: re-run this script with them set.
MALLOC_KEEP = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(2**30)}

# Thread settings must be in the environment before NumPy (and its BLAS) is loaded.
ARGS = parse_args() if __name__ == "__main__" else parse_args([])
if ARGS.malloc == "keep" and any(os.environ.get(k) != v for k, v in MALLOC_KEEP.items()):
    os.environ.update(MALLOC_KEEP)
    os.execv(sys.executable, [sys.executable, *sys.argv])
if ARGS.threads is not None:
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(ARGS.threads)
# OpenBLAS reads these when NumPy loads it; a machine's environment may pin them (this one sets
# OPENBLAS_CORETYPE=Haswell), and the report states what was in force.
OPENBLAS_SETTINGS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if ARGS.openblas_coretype == "auto":
    for variable in OPENBLAS_SETTINGS:
        os.environ.pop(variable, None)
elif ARGS.openblas_coretype:
    os.environ["OPENBLAS_CORETYPE"] = ARGS.openblas_coretype

import numpy as np  # noqa: E402

sys.path.insert(0, str(ROOT))
import tinygrad_cnn as tg  # noqa: E402
import tinygrad_cnn.nn.functional as F  # noqa: E402
from tinygrad_cnn import Tensor, memory, models, optim  # noqa: E402

try:
    if ARGS.no_torch:
        raise ImportError
    import torch
except ImportError:
    torch = None

THREADS = ARGS.threads or os.cpu_count() or 1
if torch is not None:
    torch.set_num_threads(THREADS)


# ---- timing helpers -------------------------------------------------------------------------------


def time_per_call(fn, repeat: int) -> float:
    """Seconds per call of ``fn``, averaged over ``repeat`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def settle() -> None:
    """Let the other library's worker threads go to sleep before timing. After a call, OpenBLAS's
    threads spin for up to ~0.1 s (2**28 cycles) and OpenMP's for a while too: measured right
    after the other library, a library would share the cores with those spinning threads."""
    time.sleep(0.25)


def alternate(ours, theirs, rounds: int, repeat: int, warmup: int = 2) -> dict:
    """Time ``ours`` and ``theirs`` in alternating rounds; per round the ratio ours / theirs."""
    for _ in range(warmup):
        ours()
        if theirs is not None:
            theirs()
    ours_s, theirs_s, ratios = [], [], []
    for _ in range(rounds):
        if theirs is not None:
            settle()
            theirs_s.append(time_per_call(theirs, repeat))
        settle()
        ours_s.append(time_per_call(ours, repeat))
        if theirs is not None:
            ratios.append(ours_s[-1] / theirs_s[-1])
    result = {"ours_ms": 1e3 * float(np.median(ours_s)), "ours_min_ms": 1e3 * min(ours_s)}
    if theirs is not None:
        result.update(torch_ms=1e3 * float(np.median(theirs_s)), torch_min_ms=1e3 * min(theirs_s),
                      ratio=float(np.median(ratios)), ratio_of_mins=min(ours_s) / min(theirs_s))
    return result


# ---- the two networks, in both libraries, with the same weights ----------------------------------

IMAGE = (1, 28, 28)


def torch_model(name: str, input_shape=IMAGE):
    """The torch twin of ``models.seed_net`` / ``models.lenet`` (same layers, same order)."""
    nn = torch.nn
    channels, height, width = input_shape
    if name == "seed":
        flat = 8 * ((height - 8) // 2) * ((width - 8) // 2)
        return nn.Sequential(nn.Conv2d(channels, 8, 5), nn.ReLU(), nn.Conv2d(8, 8, 5), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, 10))
    flat = 64 * (height // 4) * (width // 4)
    return nn.Sequential(nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, 10))


def make_batch(batch: int, input_shape=IMAGE, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch, *input_shape)).astype(np.float32)
    labels = rng.integers(0, 10, batch)
    return images, labels


def our_training_step(name: str, batch: int, input_shape=IMAGE):
    """A closure running one training step of our model, and the model (for weight sharing)."""
    tg.manual_seed(0)
    model = models.seed_net(input_shape) if name == "seed" else models.lenet(input_shape)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    images, labels = make_batch(batch, input_shape)
    x = Tensor(images)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        optimizer.step()
        return loss

    return step, model


def torch_training_step(name: str, batch: int, our_model=None, input_shape=IMAGE):
    model = torch_model(name, input_shape)
    if our_model is not None:  # the same starting weights, so both do exactly the same arithmetic
        with torch.no_grad():
            for theirs, ours in zip(model.parameters(), our_model.parameters(), strict=True):
                theirs.copy_(torch.from_numpy(np.array(ours.data)))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images, labels = make_batch(batch, input_shape)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def check_same_arithmetic(name: str) -> dict:
    """Before timing anything: with the same weights and batch, both libraries must agree on the
    loss over three training steps (a fast implementation that computes something else is no win)."""
    ours, model = our_training_step(name, 64)
    theirs = torch_training_step(name, 64, model)
    losses = [(float(ours().item()), float(theirs().item())) for _ in range(3)]
    worst = max(abs(a - b) / max(1e-6, abs(b)) for a, b in losses)
    return {"losses_ours_torch": losses, "max_relative_difference": worst, "agree": worst < 1e-4}


def bench_training_steps(quick: bool) -> dict:
    rounds, repeat = (3, 2) if quick else (9, 5)
    results = {}
    for name in ("seed", "lenet"):
        ours, model = our_training_step(name, 64)
        theirs = torch_training_step(name, 64, model) if torch else None
        entry = alternate(ours, theirs, rounds, repeat)
        if torch:
            entry["same_arithmetic"] = check_same_arithmetic(name)
        entry["goal_ratio"] = GOALS[f"{name}_step_ratio"]
        results[name] = entry
    return results


# ---- convolution throughput ---------------------------------------------------------------------------


def best_time(fn, repeat: int) -> float:
    fn()
    settle()
    return min(time_per_call(fn, 1) for _ in range(repeat))


def bench_conv(quick: bool) -> dict:
    n, c, o, size, k = 32, 64, 64, 32, 3
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((n, c, size, size)).astype(np.float32)
    w_np = (rng.standard_normal((o, c, k, k)) * 0.05).astype(np.float32)
    g_np = rng.standard_normal((n, o, size, size)).astype(np.float32)
    flops = 3 * 2 * n * o * c * k * k * size * size  # forward, input gradient, weight gradient
    repeat = 2 if quick else 7

    x, w = Tensor(x_np, requires_grad=True), Tensor(w_np, requires_grad=True)

    def ours():
        x.grad = w.grad = None
        F.conv2d(x, w, padding=1).backward(Tensor(g_np))

    result = {"shape": f"N={n} C={c} O={o} {size}x{size} k={k} pad=1", "gflop": flops / 1e9}
    result["ours_ms"] = 1e3 * best_time(ours, repeat)
    result["ours_gflops"] = flops / result["ours_ms"] / 1e6

    # The same multiply-adds as one GEMM, (O x C*k*k) @ (C*k*k x N*OH*OW), and per sample.
    a = rng.standard_normal((o, c * k * k)).astype(np.float32)
    b = rng.standard_normal((c * k * k, n * size * size)).astype(np.float32)
    b_one = np.ascontiguousarray(b[:, : size * size])
    result["numpy_gemm_gflops"] = 2 * a.shape[0] * a.shape[1] * b.shape[1] / best_time(lambda: a @ b, repeat) / 1e9
    result["numpy_gemm_per_sample_gflops"] = (
        2 * a.shape[0] * a.shape[1] * b_one.shape[1] / best_time(lambda: a @ b_one, repeat * 10) / 1e9
    )
    result["share_of_gemm"] = result["ours_gflops"] / result["numpy_gemm_gflops"]
    result["goal_share"] = GOALS["conv_share_of_gemm"]
    if torch:
        tx, tw = torch.from_numpy(x_np).requires_grad_(), torch.from_numpy(w_np).requires_grad_()
        tg_ = torch.from_numpy(g_np)

        def theirs():
            tx.grad = tw.grad = None
            torch.nn.functional.conv2d(tx, tw, padding=1).backward(tg_)

        result["torch_ms"] = 1e3 * best_time(theirs, repeat)
        result["torch_gflops"] = flops / result["torch_ms"] / 1e6
    return result


# ---- per-op overhead ------------------------------------------------------------------------------------

CHAIN_LENGTH = 1000


def elementwise_chain(x):
    """1,000 elementwise ops, four kinds in turn; the input is used 250 times."""
    y = x
    for _ in range(CHAIN_LENGTH // 4):
        y = (y * 1.001 + 0.5).tanh() - x
    return y.sum()


def bench_overhead(quick: bool) -> dict:
    rounds = 5 if quick else 15

    def timed(make_leaf):
        forward, backward = [], []
        for _ in range(rounds):
            x = make_leaf()
            start = time.perf_counter()
            y = elementwise_chain(x)
            middle = time.perf_counter()
            y.backward()
            forward.append(middle - start)
            backward.append(time.perf_counter() - middle)
        return 1e6 * float(np.median(forward)) / CHAIN_LENGTH, 1e6 * float(np.median(backward)) / CHAIN_LENGTH

    data = np.random.default_rng(0).random((4, 4), dtype=np.float32)
    timed(lambda: Tensor(data, requires_grad=True))  # warm-up
    fwd, bwd = timed(lambda: Tensor(data, requires_grad=True))
    result = {"ops": CHAIN_LENGTH, "ours_fwd_us_per_op": fwd, "ours_bwd_us_per_op": bwd}
    if torch:
        timed(lambda: torch.tensor(data, requires_grad=True))
        tfwd, tbwd = timed(lambda: torch.tensor(data, requires_grad=True))
        result.update(torch_fwd_us_per_op=tfwd, torch_bwd_us_per_op=tbwd,
                      ratio_fwd=fwd / tfwd, ratio_bwd=bwd / tbwd, ratio=(fwd + bwd) / (tfwd + tbwd))
    result["goal_ratio"] = GOALS["per_op_ratio"]
    return result


# ---- memory -------------------------------------------------------------------------------------------------


def our_step_peak_mb(name: str, batch: int, input_shape=IMAGE) -> float:
    """Peak of NumPy allocations during one training step, above what was allocated before it
    (tracemalloc sees NumPy's array buffers). Two steps first, so Adam's state already exists.
    The array cache (``tinygrad_cnn.memory``) is emptied first: every block the step uses is then
    allocated, and counted, during the step, together with any block it holds without using."""
    step, _ = our_training_step(name, batch, input_shape)
    step()
    step()
    memory.empty_cache()
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - before) / 2**20


def cache_free_between_steps_mb(name: str, batch: int) -> float:
    """What the array cache holds between training steps without using it: the price of its speed."""
    memory.empty_cache()
    step, _ = our_training_step(name, batch)
    step()
    step()
    stats = memory.stats()
    return (stats["cached_bytes"] - stats["in_use_bytes"]) / 2**20


def torch_step_peak_mb(name: str, batch: int, input_shape=IMAGE) -> float:
    """The same for torch, from the allocation events its profiler records with profile_memory=True:
    replayed in time order, their running sum peaks at the step's peak of tensor memory."""
    step = torch_training_step(name, batch, input_shape=input_shape)
    step()
    step()
    with quiet_stderr(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                                profile_memory=True) as profiler:
        step()
    events = sorted((e.start_ns(), e.nbytes()) for e in profiler.profiler.kineto_results.events() if e.name() == "[memory]")
    running = peak = 0
    for _, nbytes in events:
        running += nbytes
        peak = max(peak, running)
    return peak / 2**20


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


RSS_PROBE = r"""
import sys
sys.path.insert(0, {root!r}); sys.path.insert(0, {here!r})
import run
if {framework!r} == "torch":
    step = run.torch_training_step({name!r}, {batch})
else:
    step, _ = run.our_training_step({name!r}, {batch})
def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field)) / 1024
step(); step()
if {framework!r} != "torch":
    run.memory.empty_cache()  # the cache's blocks are resident already: count them again
before = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the high-water mark VmHWM to the current resident size
step()
print(status("VmHWM:") - before)
"""


def rss_delta_mb(framework: str, name: str, batch: int) -> float | None:
    """Cross-check with one method for both libraries: in a fresh process, after two warm-up steps,
    the resident-memory high-water mark during one step minus the resident size before it (Linux
    only: /proc/self/clear_refs resets the mark). It counts pages, so memory the allocator kept from
    the warm-up steps is not counted again."""
    code = RSS_PROBE.format(root=str(ROOT), here=str(HERE), framework=framework, name=name, batch=batch)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
        return float(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return None


def bench_memory(quick: bool) -> dict:
    result = {"method": (
        "ours: tracemalloc peak above the start of one training step (NumPy reports its array buffers "
        "to tracemalloc), with the array cache emptied before the step so that its blocks are counted; torch: the running sum of the allocation events of torch.profiler "
        "(profile_memory=True) over one step. Both after two warm-up steps. Cross-check: RSS high-water "
        "mark during one step minus RSS before it, in a fresh process per library (after two warm-up steps)."
    )}
    result["seed_batch64_ours_mb"] = our_step_peak_mb("seed", 64)
    if torch:
        result["seed_batch64_torch_mb"] = torch_step_peak_mb("seed", 64)
        result["ratio"] = result["seed_batch64_ours_mb"] / result["seed_batch64_torch_mb"]
        result["lenet_batch64_ours_mb"] = our_step_peak_mb("lenet", 64)
        result["lenet_batch64_torch_mb"] = torch_step_peak_mb("lenet", 64)
    result["goal_ratio"] = GOALS["seed_memory_ratio"]
    result["seed_batch64_cache_free_mb"] = cache_free_between_steps_mb("seed", 64)
    if not quick:
        result["rss_delta_mb"] = {"ours": rss_delta_mb("ours", "seed", 64)}
        if torch:
            result["rss_delta_mb"]["torch"] = rss_delta_mb("torch", "seed", 64)
    batches = (16, 64) if quick else (16, 32, 64, 128, 256)
    sizes = (28, 56) if quick else (28, 56, 112)
    with_torch = torch is not None and not quick
    result["by_batch"] = [
        {"batch": b, "ours_mb": our_step_peak_mb("seed", b), **({"torch_mb": torch_step_peak_mb("seed", b)} if with_torch else {})}
        for b in batches
    ]
    result["by_image_size"] = [
        {"size": s, "batch": 16, "ours_mb": our_step_peak_mb("seed", 16, (1, s, s)),
         **({"torch_mb": torch_step_peak_mb("seed", 16, (1, s, s))} if with_torch else {})}
        for s in sizes
    ]
    return result


# ---- batch scaling -------------------------------------------------------------------------------------------


def bench_scaling(quick: bool) -> dict:
    batches = (16, 64, 128) if quick else (16, 32, 64, 128, 256)
    rounds, repeat = (2, 1) if quick else (5, 3)
    rows = []
    for name in ("seed",) if quick else ("seed", "lenet"):
        for batch in batches:
            ours, model = our_training_step(name, batch)
            theirs = torch_training_step(name, batch, model) if torch else None
            timing = alternate(ours, theirs, rounds, repeat, warmup=1)
            row = {"net": name, "batch": batch, "ours_ms": timing["ours_ms"], "ours_ms_per_image": timing["ours_ms"] / batch}
            if torch:
                row.update(torch_ms=timing["torch_ms"], torch_ms_per_image=timing["torch_ms"] / batch, ratio=timing["ratio"])
            rows.append(row)
    return {"rows": rows}


# ---- environment ----------------------------------------------------------------------------------------------


def openblas_core() -> str:
    """The kernel family OpenBLAS picked for this CPU, as it reports it when asked to be verbose."""
    env = dict(os.environ, OPENBLAS_VERBOSE="2")
    try:
        out = subprocess.run([sys.executable, "-c", "import numpy"], capture_output=True, text=True, env=env, timeout=60)
    except subprocess.SubprocessError:
        return "unknown"
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Core:")]
    return lines[-1].split(":", 1)[1].strip() if lines else "unknown (not OpenBLAS?)"


def environment() -> dict:
    blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": f"{blas.get('name', '?')} {blas.get('version', '')}".strip(),
        "openblas_core": openblas_core(),
        "openblas_environment": ", ".join(f"{k}={os.environ[k]}" for k in OPENBLAS_SETTINGS if k in os.environ)
        or "none (OpenBLAS detects the CPU)",
        "torch": torch.__version__ if torch else None,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": THREADS,
        "threads_how": (f"OPENBLAS_NUM_THREADS={ARGS.threads}" if ARGS.threads else "NumPy BLAS default (one per core)")
        + (f"; torch.set_num_threads({THREADS})" if torch else ""),
        "malloc": "glibc keeps freed memory (" + ", ".join(f"{k}={v}" for k, v in MALLOC_KEEP.items()) + ")"
        if ARGS.malloc == "keep" else "glibc defaults",
        "load_average_before": os.getloadavg()[0],
    }


# ---- report ----------------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def format_report(r: dict) -> str:
    env, lines = r["environment"], []
    lines.append(f"Machine: {env['cpu']}, {env['cores']} cores; Python {env['python']}, NumPy {env['numpy']} "
                 f"({env['blas']}, kernels: {env['openblas_core']}; set in the environment: "
                 f"{env.get('openblas_environment', 'not recorded')}), torch {env['torch']}")
    lines.append(f"Threads: {env['threads']} ({env['threads_how']}). Malloc: {env['malloc']}.")
    runs = r.get("section_runs", {})
    if runs:
        lines.append("Sections (the CPUs should be idle before each: other processes only ever add time):")
        for key, run in runs.items():
            lines.append(f"- {key}: `{run['command']}` at {run['date']}, {run['seconds']:.0f} s; other processes used "
                         f"{run.get('others_cpu_percent', float('nan')):.0f}% of the CPUs during it "
                         f"({run['cpu_busy_percent_before']:.0f}% just before)")
    lines.append("")
    if "step" in r:
        lines.append("| training step, batch 64 | ours ms (min) | torch ms (min) | ratio: median of rounds (of minimums) | goal | |")
        lines.append("|---|---|---|---|---|---|")
        for name, e in r["step"].items():
            torch_part = f"{e['torch_ms']:.2f} ({e['torch_min_ms']:.2f})" if "torch_ms" in e else "-"
            ratio = e.get("ratio")
            ratio_part = "-" if ratio is None else f"{ratio:.2f} ({e['ratio_of_mins']:.2f})"
            lines.append(f"| {name} | {e['ours_ms']:.2f} ({e['ours_min_ms']:.2f}) | {torch_part} | "
                         f"{ratio_part} | <= {e['goal_ratio']} | "
                         f"{'-' if ratio is None else verdict(ratio <= e['goal_ratio'])} |")
        for name, e in r["step"].items():
            if "same_arithmetic" in e:
                s = e["same_arithmetic"]
                lines.append(f"- {name}: same weights and batch give the same losses over 3 steps: "
                             f"{'yes' if s['agree'] else 'NO'} (max relative difference {s['max_relative_difference']:.1e})")
        lines.append("")
    if "conv" in r:
        c = r["conv"]
        lines.append(f"conv2d forward + input grad + weight grad, {c['shape']}: {c['gflop']:.2f} GFLOP")
        lines.append("| | ms | GFLOP/s |")
        lines.append("|---|---|---|")
        lines.append(f"| ours | {c['ours_ms']:.1f} | {c['ours_gflops']:.0f} |")
        if "torch_ms" in c:
            lines.append(f"| torch | {c['torch_ms']:.1f} | {c['torch_gflops']:.0f} |")
        lines.append(f"| NumPy matmul, same multiply-adds as one GEMM (64x576 @ 576x32768) | | {c['numpy_gemm_gflops']:.0f} |")
        lines.append(f"| NumPy matmul, one sample's GEMM (64x576 @ 576x1024) | | {c['numpy_gemm_per_sample_gflops']:.0f} |")
        lines.append(f"- ours reaches {100 * c['share_of_gemm']:.0f}% of NumPy's GEMM (goal >= {100 * c['goal_share']:.0f}%): "
                     f"{verdict(c['share_of_gemm'] >= c['goal_share'])}")
        lines.append("")
    if "overhead" in r:
        o = r["overhead"]
        lines.append(f"per-op overhead, a chain of {o['ops']} elementwise ops on a 4x4 tensor (us per op):")
        lines.append("| | forward | backward |")
        lines.append("|---|---|---|")
        lines.append(f"| ours | {o['ours_fwd_us_per_op']:.2f} | {o['ours_bwd_us_per_op']:.2f} |")
        if "ratio" in o:
            lines.append(f"| torch | {o['torch_fwd_us_per_op']:.2f} | {o['torch_bwd_us_per_op']:.2f} |")
            lines.append(f"- ratio forward {o['ratio_fwd']:.2f}, backward {o['ratio_bwd']:.2f}, together {o['ratio']:.2f} "
                         f"(goal <= {o['goal_ratio']}): {verdict(o['ratio'] <= o['goal_ratio'])}")
        lines.append("")
    if "memory" in r:
        m = r["memory"]
        lines.append("peak memory of one training step")
        if "ratio" in m:
            lines.append(f"- seed net, batch 64: ours {m['seed_batch64_ours_mb']:.1f} MB, torch {m['seed_batch64_torch_mb']:.1f} MB, "
                         f"ratio {m['ratio']:.2f} (goal <= {m['goal_ratio']}): {verdict(m['ratio'] <= m['goal_ratio'])}")
            lines.append(f"- LeNet, batch 64: ours {m['lenet_batch64_ours_mb']:.1f} MB, torch {m['lenet_batch64_torch_mb']:.1f} MB")
        else:
            lines.append(f"- seed net, batch 64: ours {m['seed_batch64_ours_mb']:.1f} MB")
        if "seed_batch64_cache_free_mb" in m:
            lines.append(f"- between steps the array cache holds {m['seed_batch64_cache_free_mb']:.1f} MB of free blocks "
                         "for the next step (seed net, batch 64; `tinygrad_cnn.memory.empty_cache()` releases them)")
        if m.get("rss_delta_mb"):
            rss = m["rss_delta_mb"]
            lines.append("- cross-check, RSS high-water mark during one step minus RSS before it (fresh process): "
                         + ", ".join(f"{k} {v:.1f} MB" for k, v in rss.items() if v is not None))
        lines.append(f"- method: {m['method']}")
        lines.append("")
        lines.append("| seed net, 28x28, batch | ours MB | ours MB per image | torch MB | torch MB per image |")
        lines.append("|---|---|---|---|---|")
        for row in m["by_batch"]:
            t = f"{row['torch_mb']:.1f} | {row['torch_mb'] / row['batch']:.3f}" if "torch_mb" in row else "- | -"
            lines.append(f"| {row['batch']} | {row['ours_mb']:.1f} | {row['ours_mb'] / row['batch']:.3f} | {t} |")
        lines.append("")
        lines.append("| seed net, batch 16, image | ours MB | ours KB per pixel | torch MB | torch KB per pixel |")
        lines.append("|---|---|---|---|---|")
        for row in m["by_image_size"]:
            pixels = row["size"] ** 2
            t = f"{row['torch_mb']:.1f} | {1024 * row['torch_mb'] / pixels:.3f}" if "torch_mb" in row else "- | -"
            lines.append(f"| {row['size']}x{row['size']} | {row['ours_mb']:.1f} | {1024 * row['ours_mb'] / pixels:.3f} | {t} |")
        lines.append("")
    if r.get("what_if"):
        lines.append("what if: the training steps again, each configuration in a fresh process (ratio = median of rounds)")
        lines.append("| configuration | seed ours ms | seed torch ms | seed ratio | LeNet ours ms | LeNet torch ms | LeNet ratio |")
        lines.append("|---|---|---|---|---|---|---|")
        for label, steps in r["what_if"].items():
            if steps is None:
                lines.append(f"| {label} | failed | | | | | |")
                continue
            cells = []
            for name in ("seed", "lenet"):
                e = steps[name]
                cells += [f"{e['ours_ms']:.2f}", f"{e.get('torch_ms', float('nan')):.2f}", f"{e.get('ratio', float('nan')):.2f}"]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    if "scaling" in r:
        lines.append("training step time against batch size")
        lines.append("| net | batch | ours ms | ours ms/image | torch ms | torch ms/image | ratio |")
        lines.append("|---|---|---|---|---|---|---|")
        for row in r["scaling"]["rows"]:
            t = (f"{row['torch_ms']:.2f} | {row['torch_ms_per_image']:.3f} | {row['ratio']:.2f}" if "torch_ms" in row else "- | - | -")
            lines.append(f"| {row['net']} | {row['batch']} | {row['ours_ms']:.2f} | {row['ours_ms_per_image']:.3f} | {t} |")
        lines.append("")
    return "\n".join(lines)


BEGIN, END = "<!-- BEGIN GENERATED by benchmarks/run.py -->", "<!-- END GENERATED -->"


def write_markdown(report: str, command: str) -> Path:
    """Replace the generated block of RESULTS.md, keeping the hand-written analysis around it."""
    path = HERE / "RESULTS.md"
    block = f"{BEGIN}\nProduced by `{command}`.\n\n{report}\n{END}"
    if path.exists() and BEGIN in (text := path.read_text()) and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = f"# Benchmark results\n\n{block}\n"
    path.write_text(text)
    return path


def what_if(options: list) -> dict | None:
    """The training-step section again in a fresh process with ``options`` (settings that must be
    made before the process starts), returning its results."""
    out = HERE / "results" / f"what-if-{'-'.join(o.strip('-') for o in options)}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--only", "step", "--no-markdown", "--json", str(out), *options]
    if ARGS.threads and "--threads" not in options:
        command += ["--threads", str(ARGS.threads)]
    if ARGS.quick:
        command.append("--quick")
    print(f"[what-if {' '.join(options)}] ...", file=sys.stderr, flush=True)
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=900)
        return json.loads(out.read_text())["step"]
    except (subprocess.SubprocessError, OSError, KeyError, ValueError):
        return None


def bench_what_if(quick: bool) -> dict:
    return {
        "1 thread each (OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1))": what_if(["--threads", "1"]),
        "malloc keeps freed memory": what_if(["--malloc", "keep"]),
        "OpenBLAS picks its own kernels (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE unset)": what_if(["--openblas-coretype", "auto"]),
    }


SECTIONS = ("step", "conv", "overhead", "memory", "what_if", "scaling")


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
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    busy = (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")
    own = sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for field in ("ru_utime", "ru_stime"))
    return busy, own


def assemble(out_dir: Path) -> dict:
    """Merge the latest result of every section (``--only`` runs) into one set of results."""
    results = {}
    for key in SECTIONS:
        path = out_dir / f"latest-{key}.json"
        if path.exists():
            part = json.loads(path.read_text())
            results.setdefault("environment", part["environment"])
            results[key] = part[key]
            results.setdefault("section_runs", {})[key] = part["section_runs"][key]
    return results


def main() -> int:
    args = ARGS
    functions = {"step": bench_training_steps, "conv": bench_conv, "overhead": bench_overhead,
                 "memory": bench_memory, "what_if": bench_what_if, "scaling": bench_scaling}
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    command = "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:])
    if args.assemble:
        results = assemble(out_dir)
        report = format_report(results)
        print(report)
        if not args.no_markdown:
            print(f"wrote {write_markdown(report, command)}", file=sys.stderr)
        return 0

    chosen = args.only.split(",") if args.only else [k for k in SECTIONS if k != "what_if" or args.what_if]
    unknown = [k for k in chosen if k not in functions]
    if unknown:
        print(f"run.py: error: unknown section(s) {', '.join(unknown)}; choose from {','.join(SECTIONS)}", file=sys.stderr)
        return 2
    results = {"environment": environment(), "quick": args.quick, "section_runs": {}}
    for key in chosen:
        print(f"[{key}] ...", file=sys.stderr, flush=True)
        busy_before = cpu_busy_percent()
        load_before = os.getloadavg()[0]
        started, (busy0, own0) = time.perf_counter(), cpu_seconds()
        results[key] = functions[key](args.quick)
        seconds, (busy1, own1) = time.perf_counter() - started, cpu_seconds()
        results["section_runs"][key] = {
            "command": command, "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "seconds": seconds, "load_average_before": load_before,
            "load_average_after": os.getloadavg()[0], "cpu_busy_percent_before": busy_before,
            # CPU time other processes took during the section, as a share of all the CPUs' time
            "others_cpu_percent": max(0.0, 100 * ((busy1 - busy0) - (own1 - own0)) / (seconds * (os.cpu_count() or 1))),
        }
        print(f"[{key}] done in {seconds:.1f}s; other processes used "
              f"{results['section_runs'][key]['others_cpu_percent']:.0f}% of the CPUs", file=sys.stderr, flush=True)
        if not args.quick and not args.json:  # for --assemble
            part = {"environment": results["environment"], key: results[key],
                    "section_runs": {key: results["section_runs"][key]}}
            (out_dir / f"latest-{key}.json").write_text(json.dumps(part, indent=2))
    results["environment"]["load_average_after"] = os.getloadavg()[0]
    report = format_report(results)
    print(report)

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(args.json) if args.json else out_dir / f"{'quick-' if args.quick else ''}{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    if not args.json:
        (out_dir / ("latest-quick.json" if args.quick else "latest.json")).write_text(json.dumps(results, indent=2))
    print(f"\nwrote {path}", file=sys.stderr)
    if not args.quick and not args.no_markdown and not args.only:
        print(f"wrote {write_markdown(report, command)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
