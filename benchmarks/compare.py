"""Our library at two source trees, timed in alternating fresh processes: "no speed lost" before
and after a change.

    python benchmarks/compare.py 5d4f469                 # this checkout against a git revision of it
    python benchmarks/compare.py /path/to/other/checkout # ... against another checkout
    python benchmarks/compare.py OLD --base NEW          # two revisions or checkouts
    python benchmarks/compare.py OLD --quick             # a smoke run: one round, few repeats

Each figure comes from the workers of ``benchmarks/run.py`` (the training steps of the seed and
LeNet-style nets at batch 64, and the 3x3 64 -> 64 convolution's forward and backward), run in
fresh processes that import tinygrad_cnn from one tree or the other. Round k runs the base tree
first and the other second, the reverse on odd rounds; the report gives each tree's median time
and the median and range of the per-round ratios base / other (below 1: the base is faster).
The worker code is this checkout's, so both trees are driven the same way; each worker reports
where it imported tinygrad_cnn from, and that is checked. A git revision is exported with
``git archive`` into a temporary directory (the repository and its worktrees are not touched).
"""
from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (benchmarks/run.py: the workers and the alternation)


class TreeError(ValueError):
    pass


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", help="a directory holding tinygrad_cnn/, or a git revision of this repository")
    parser.add_argument("--base", default=str(run.ROOT),
                        help="the tree compared against OTHER (a directory or a git revision; default: this checkout)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of alternating processes (default 7, --quick 1)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads in every worker (default 2)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: one round, few repeats")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    return parser.parse_args(argv)


def source_tree(spec: str, scratch: Path) -> Path:
    """The directory to import tinygrad_cnn from: ``spec`` itself if it is a directory, else the git
    revision ``spec`` of this repository exported into ``scratch``."""
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "tinygrad_cnn" / "__init__.py").is_file():
            raise TreeError(f"{spec} holds no tinygrad_cnn/__init__.py: give a checkout of this project")
        return path.resolve()
    try:
        found = subprocess.run(["git", "-C", str(run.ROOT), "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"],
                               capture_output=True, text=True)
    except OSError:  # no git
        raise TreeError(f"{spec} is not a directory, and git is not available to read it as a revision") from None
    if found.returncode != 0:
        raise TreeError(f"{spec} is neither a directory nor a git revision of {run.ROOT}")
    commit = found.stdout.strip()
    target = scratch / commit[:12]
    if target.is_dir():  # the base and the other are the same revision
        return target
    target.mkdir()
    archive = target / "tree.tar"
    with open(archive, "wb") as out:
        exported = subprocess.run(["git", "-C", str(run.ROOT), "archive", "--format=tar", commit], stdout=out,
                                  stderr=subprocess.PIPE, text=True)
    if exported.returncode != 0:
        raise TreeError(f"git archive {spec} failed: {exported.stderr.strip()}")
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    archive.unlink()
    if not (target / "tinygrad_cnn" / "__init__.py").is_file():
        raise TreeError(f"revision {spec} holds no tinygrad_cnn/__init__.py")
    return target


def measure(kind: str, tree: Path, threads: int, **options) -> dict:
    """One worker of ours in a fresh process importing tinygrad_cnn from ``tree``."""
    result = run.run_worker(kind, "ours", threads, tree=tree, **options)
    imported = Path(result["process"]["tinygrad_cnn"])
    if imported != (tree / "tinygrad_cnn").resolve():
        raise run.WorkerFailed(f"a worker meant for {tree} imported tinygrad_cnn from {imported}")
    return result


def compare_trees(base: Path, other: Path, rounds: int, threads: int, quick: bool) -> dict:
    window = 0 if quick else run.MEASURE_SECONDS  # as run.py's step section: a few seconds per process
    cases = {
        "seed step, batch 64": ("step", {"net": "seed", "batch": 64, "repeat": 3 if quick else 10, "seconds": window}),
        "LeNet step, batch 64": ("step", {"net": "lenet", "batch": 64, "repeat": 3 if quick else 10,
                                          "seconds": window}),
        "conv2d 3x3 64->64 fwd+bwd": ("conv", {"repeat": 2 if quick else 7}),
    }
    results = {}
    for label, (kind, options) in cases.items():
        print(f"[{label}] ...", file=sys.stderr, flush=True)
        pairs = run.alternate_processes(lambda: measure(kind, base, threads, **options),
                                        lambda: measure(kind, other, threads, **options), rounds)
        entry = {"base_ms": run.spread([a["ms"] for a, _ in pairs]), "other_ms": run.spread([b["ms"] for _, b in pairs]),
                 "ratio": run.spread([a["ms"] / b["ms"] for a, b in pairs])}
        if kind == "step":  # informative: a change of summation order may move the last digits
            losses = zip(pairs[0][0]["losses"], pairs[0][1]["losses"])
            entry["losses_max_relative_difference"] = max(abs(a - b) / max(1e-6, abs(b)) for a, b in losses)
        results[label] = entry
    return results


def format_report(results: dict, base_spec: str, other_spec: str, threads: int) -> str:
    lines = [f"base: {base_spec}; other: {other_spec}; {threads} threads; ratio = base / other "
             "(median of the per-round ratios, range in brackets; below 1: the base is faster)", "",
             "| figure | base ms | other ms | ratio | rounds |", "|---|---|---|---|---|"]
    for label, e in results.items():
        r = e["ratio"]
        lines.append(f"| {label} | {e['base_ms']['median']:.2f} | {e['other_ms']['median']:.2f} | "
                     f"{r['median']:.3f} ({r['min']:.3f}-{r['max']:.3f}) | {r['n']} |")
    for label, e in results.items():
        if "losses_max_relative_difference" in e:
            lines.append(f"- {label}: losses of the first three steps differ by at most "
                         f"{e['losses_max_relative_difference']:.1e} (relative)")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads < 1 or (args.rounds is not None and args.rounds < 1):
        print("compare.py: error: --threads and --rounds must be at least 1", file=sys.stderr)
        return 2
    rounds = args.rounds or (1 if args.quick else 7)
    with tempfile.TemporaryDirectory(prefix="tinygrad_cnn-compare-") as scratch:
        try:
            base, other = source_tree(args.base, Path(scratch)), source_tree(args.other, Path(scratch))
            results = compare_trees(base, other, rounds, args.threads, args.quick)
        except (TreeError, run.WorkerFailed) as error:
            print(f"compare.py: error: {error}", file=sys.stderr)
            return 1
    report = format_report(results, args.base, args.other, args.threads)
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "date": datetime.datetime.now().isoformat(timespec="seconds"), "base": args.base, "other": args.other,
            "threads": args.threads, "rounds": rounds, "host": run.host_key(run.cpu()), "results": results,
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
