"""The benchmark from the README runs end to end (``--quick``: one round, few repeats, the same code
paths), with PyTorch when it is installed; its workers keep their JSON contract; the report states
the host; RESULTS.md keeps every host's section. The figures are not checked here: speed goals
live in the benchmark's report, not in timed unit tests."""
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "run.py"
COMPARE = ROOT / "benchmarks" / "compare.py"


def load_run_module():
    """benchmarks/run.py as a module (importing it loads neither NumPy's BLAS settings nor torch)."""
    spec = importlib.util.spec_from_file_location("benchmark_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_worker_by_hand(*args, env=None):
    finished = subprocess.run([sys.executable, str(RUN), "--worker", *args], capture_output=True, text=True,
                              timeout=300, env=env)
    assert finished.returncode == 0, finished.stderr[-3000:]
    lines = finished.stdout.strip().splitlines()
    assert len(lines) == 1, "a worker prints exactly one line"
    return json.loads(lines[0])


def test_benchmark_quick_run_writes_every_section(tmp_path):
    results_md = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    out = tmp_path / "bench.json"
    command = [sys.executable, str(RUN), "--quick", "--json", str(out)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    results = json.loads(out.read_text())
    for section in ("step", "conv", "overhead", "memory", "scaling", "layers"):
        assert section in results, section
    env = results["environment"]
    for name in ("seed", "lenet"):
        step = results["step"][name]
        assert step["ours"]["median"] > 0
        # every measurement came from its own process, importing this checkout
        assert all(run["process"]["tinygrad_cnn"] == str(ROOT / "tinygrad_cnn") for run in step["ours_runs"])
        if env["torch"]:
            assert step["ratio"]["min"] <= step["ratio"]["median"] <= step["ratio"]["max"]
            assert {run["process"]["pid"] for run in step["ours_runs"]}.isdisjoint(
                run["process"]["pid"] for run in step["torch_runs"])
            # the two libraries start from the same weights and see the same batch
            assert step["same_arithmetic"]["agree"], step
    assert results["conv"]["share_of_gemm"]["median"] > 0
    assert results["memory"]["seed"]["ours"]["peak_mb"] > 0
    layers = results["layers"]["rows"]
    assert [(row["net"], row["layer"], row["part"]) for row in layers] == [
        (net, index, part) for net, convolutions in (("seed", (0, 2)), ("lenet", (0, 3))) for index in convolutions
        for part in ("forward", "weight gradient", "input gradient", "both gradients")
        if index or part in ("forward", "weight gradient")
    ], "every convolution of both steps, part by part; a first layer's input gradient is never needed"
    assert all(row["ours"]["median"] > 0 and ("ratio" in row) == bool(env["torch"]) for row in layers)
    if env["torch"]:
        assert env["torch_threads"] == [2] and all(run["process"]["torch_threads"] == 2
                                                   for run in results["layers"]["torch_runs"])
    assert "| seed, 2: 8x24x24, 8 -> 8 5x5 | weight gradient |" in finished.stdout
    assert env["cpu"] and env["cores"] and env["blas"] and env["blas_core"] and env["threads"] == 2
    assert set(env["flags"]) == {"avx2", "avx512f", "amx_tile"}
    if env["torch"]:
        assert env["torch_threads"] == [2], "every torch worker ran with the threads it was given"
    assert "| seed-net training step, batch 64 |" in finished.stdout
    assert f"Host: {env['cpu']}, {env['cores']} cores" in finished.stdout
    assert (ROOT / "benchmarks" / "RESULTS.md").read_text() == results_md, "--quick leaves RESULTS.md alone"


def test_worker_prints_one_json_line_with_what_its_process_saw():
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    step = run_worker_by_hand("step", "--framework", "ours", "--net", "seed", "--batch", "8", "--repeat", "2",
                              "--threads", "1", env=env)
    assert step["worker"] == "step" and step["framework"] == "ours"
    assert step["ms"] > 0 and step["min_ms"] <= step["ms"]
    assert len(step["losses"]) == 3 and all(math.isfinite(loss) for loss in step["losses"])
    assert step["process"]["environment"]["OPENBLAS_NUM_THREADS"] == "1", "the worker sets its own threads"
    assert step["process"]["tinygrad_cnn"] == str(ROOT / "tinygrad_cnn")
    assert "torch" not in step["process"], "our worker does not load torch"
    assert "handoff" not in step, "no probe unless asked"
    probed = run_worker_by_hand("step", "--framework", "ours", "--net", "seed", "--batch", "8", "--repeat", "1",
                                "--threads", "1", "--probe", "1", env=env)
    assert len(probed["handoff"]) == 2 and all(0.5 < probe < 20 for probe in probed["handoff"]), "before and after"

    blas = run_worker_by_hand("env", "--threads", "1", env=env)
    for field in ("numpy", "blas", "blas_core", "blas_threads"):
        assert field in blas, field
    if blas["blas_threads"] is not None:  # OpenBLAS found: the thread count reached it
        assert blas["blas_threads"] == 1


def test_layers_worker_times_the_kernels_our_ops_call_and_torch_the_same_convolutions():
    ours = run_worker_by_hand("layers", "--framework", "ours", "--repeat", "1", "--threads", "1")
    assert ours["worker"] == "layers" and "torch" not in ours["process"]
    later = ("forward", "weight gradient", "input gradient", "both gradients")
    assert set(ours["ms"]) == {f"{net} {index} {part}" for net, first, second in (("seed", 0, 2), ("lenet", 0, 3))
                               for index, parts in ((first, later[:2]), (second, later)) for part in parts}
    assert all(ms > 0 for ms in ours["ms"].values())
    run = load_run_module()
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(shape) for shape in ((2, 3, 7, 6), (4, 3, 3, 3), (4,)))
    g = rng.standard_normal((2, 4, 7, 6))
    calls = run.layer_calls("ours", x, w, b, g, padding=1)
    from tinygrad_cnn.kernels import reference
    from tinygrad_cnn.ops.conv import ConvGeometry
    geometry = ConvGeometry(kernel=(3, 3), padding=(1, 1))
    expected = {"forward": reference.conv2d(x, w, geometry, b),
                "weight": reference.conv2d_weight_grad(x, g, w.shape, geometry), "bias": g.sum(axis=(0, 2, 3)),
                "input": reference.conv2d_input_grad(g, w, x.shape, geometry)}
    weight_grad, bias_grad = calls["weight gradient"]()
    both = calls["both gradients"]()
    for got, name in ((calls["forward"](), "forward"), (weight_grad, "weight"), (bias_grad.ravel(), "bias"),
                      (calls["input gradient"](), "input"), (both[0], "input"), (both[1], "weight"),
                      (both[2].ravel(), "bias")):
        np.testing.assert_allclose(got, expected[name], rtol=1e-12, atol=1e-12, err_msg=name)
    if importlib.util.find_spec("torch") is None:
        return
    theirs = run.layer_calls("torch", x, w, b, g, padding=1)
    np.testing.assert_allclose(theirs["forward"]().numpy(), expected["forward"], rtol=1e-10, atol=1e-10)
    # each torch part computes what it is named for, and nothing more (a masked-out gradient is None)
    for part, wanted in (("weight gradient", (False, True, True)), ("input gradient", (True, False, False)),
                         ("both gradients", (True, True, True))):
        grads = theirs[part]()
        assert tuple(grad is not None for grad in grads) == wanted, part
        for grad, name in zip(grads, ("input", "weight", "bias")):
            if grad is not None:
                np.testing.assert_allclose(grad.numpy(), expected[name], rtol=1e-10, atol=1e-10, err_msg=f"{part}: {name}")


def test_the_layers_section_times_the_convolutions_the_training_steps_make():
    import numpy as np

    from tinygrad_cnn import Tensor, models, nn, no_grad
    run = load_run_module()
    for name, make in (("seed", models.seed_net), ("lenet", models.lenet)):
        seen, x = [], Tensor(np.zeros((64, 1, 28, 28), np.float32))
        with no_grad():
            for index, layer in enumerate(make()):
                if isinstance(layer, nn.Conv2d):  # what layer_calls computes: stride 1, square padding, a bias
                    assert layer.stride == layer.dilation == (1, 1) and layer.groups == 1 and layer.bias is not None
                    assert layer.padding[0] == layer.padding[1]
                    seen.append((index, x.shape, tuple(layer.weight.shape), layer.padding[0]))
                x = layer(x)
        assert seen == [(i, tuple(xs), tuple(ws), p) for i, xs, ws, p in run.LAYERS[name]], name


def test_torch_worker_runs_with_the_threads_it_is_given():
    pytest.importorskip("torch")
    step = run_worker_by_hand("step", "--framework", "torch", "--net", "seed", "--batch", "8", "--repeat", "1",
                              "--threads", "1")
    assert step["framework"] == "torch" and step["ms"] > 0
    assert step["process"]["torch_threads"] == 1
    ours = run_worker_by_hand("step", "--framework", "ours", "--net", "seed", "--batch", "8", "--repeat", "1")
    assert ours["losses"] == pytest.approx(step["losses"], rel=1e-4), "same weights, same batch, same losses"


def test_rounds_alternate_which_library_runs_first():
    run = load_run_module()
    calls = []
    pairs = run.alternate_processes(lambda: calls.append("a") or len(calls), lambda: calls.append("b") or len(calls), 3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert [(a, b) for a, b in pairs] == [(1, 2), (4, 3), (5, 6)], "each pair holds the a and b of its own round"
    assert run.spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}


def test_a_worker_times_at_least_repeat_calls_and_for_at_least_its_seconds():
    run = load_run_module()
    assert len(run.time_per_call(lambda: None, 5)) == 5
    times = run.time_per_call(lambda: run.time.sleep(0.01), 2, seconds=0.1)
    assert len(times) >= 8 and sum(times) >= 0.1, "calls go on until the window has passed"
    assert len(run.time_per_call(lambda: run.time.sleep(0.01), 4, seconds=0.001)) == 4, "and at least repeat of them"


def test_the_report_counts_the_processes_the_hand_off_probe_caught():
    run = load_run_module()

    def step(ms, *probes):
        return {"ms": ms, "handoff": list(probes), "losses": [1.0]}

    ours = [step(33.0, 1.0, 1.1), step(66.0, 1.0, 1.9), step(40.0, 0.9, run.HANDOFF_PENALTY)]
    theirs = [step(30.0, 1.0, 1.0), step(30.0, 1.0, 1.0), step(25.0, 1.6, 1.0)]
    entry = {"ours_runs": ours, "torch_runs": theirs}
    line = run.handoff_line("lenet", entry)
    assert "in 1 of 3 of our processes (values 0.90-1.90) and 1 of 3 of torch's processes (values 1.00-1.60)" in line
    assert "over the 1 round in which it was above in neither process, the ratio was 1.10 (1.10-1.10)" in line, \
        "round 0 only: round 1 has our caught process, round 2 torch's (ours at exactly the threshold is not caught)"
    assert "in every round it was above" in run.handoff_line("seed", {**entry, "torch_runs": [step(30.0, 2.0, 2.0)] * 3})
    no_torch = run.handoff_line("seed", {"ours_runs": ours})
    assert "in 1 of 3 of our processes" in no_torch and "torch" not in no_torch and "ratio" not in no_torch
    assert run.handoff_line("seed", {"ours_runs": [{"ms": 1.0}]}) is None, "results from before the probe"
    assert run.handoff_line("seed", {"ours_runs": []}) is None

    spread = run.spread([a["ms"] / b["ms"] for a, b in zip(ours, theirs)])
    results = {"environment": {"cpu": "x", "cores": 2, "flags": {}, "openblas_environment": {}, "torch": None,
                               "python": "3", "numpy": "2", "blas": "b", "blas_core": "c", "blas_threads": 2,
                               "threads": 2, "malloc": "m"},
               "step": {net: {"ours": run.spread([r["ms"] for r in ours]), "torch": run.spread([r["ms"] for r in theirs]),
                              "ratio": spread, "goal_ratio": 1.25, **entry} for net in ("seed", "lenet")}}
    assert line in run.format_report(results), "the report carries the line"


def test_worker_environment_is_a_copy_with_the_threads_set():
    run = load_run_module()
    before = dict(os.environ)
    env = run.child_environment(3, {"OPENBLAS_CORETYPE": None, "MALLOC_TRIM_THRESHOLD_": "1"})
    assert dict(os.environ) == before, "the parent's environment is left alone"
    assert all(env[variable] == "3" for variable in run.THREAD_VARIABLES)
    assert "OPENBLAS_CORETYPE" not in env and env["MALLOC_TRIM_THRESHOLD_"] == "1"


def test_results_keep_one_section_per_host(tmp_path):
    run = load_run_module()
    path = tmp_path / "RESULTS.md"
    path.write_text(f"# Benchmark results\n\nintro\n\n{run.HOSTS_END}\n\n## Analysis\nby hand\n")
    run.write_markdown("amd figures 1", "cmd", "AMD EPYC, 2 cores", path)
    run.write_markdown("intel figures", "cmd", "Intel Xeon, 2 cores", path)
    run.write_markdown("amd figures 2", "cmd", "AMD EPYC, 2 cores", path)
    text = path.read_text()
    assert "amd figures 2" in text and "amd figures 1" not in text, "a host's section is rewritten"
    assert "intel figures" in text, "other hosts' sections stay"
    assert text.count("## AMD EPYC, 2 cores") == 1 and text.count("## Intel Xeon, 2 cores") == 1
    assert text.index("intel figures") < text.index(run.HOSTS_END) < text.index("by hand")
    assert text.startswith("# Benchmark results\n\nintro")


def test_results_file_has_a_section_per_host_and_the_goals_of_issue_15():
    run = load_run_module()
    assert run.GOALS == {"seed_step_ratio": 1.5, "lenet_step_ratio": 1.25, "conv_share_of_gemm": 0.80,
                         "per_op_ratio": 2.0, "seed_memory_ratio": 1.5}
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    assert run.HOSTS_END in text
    begin, end = run.markers("AMD EPYC, 2 cores")
    assert begin in text and end in text


def test_benchmark_rejects_an_unknown_section():
    finished = subprocess.run([sys.executable, str(RUN), "--only", "nope", "--no-torch"],
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2
    assert "unknown section(s) nope" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_compare_times_two_trees_and_refuses_a_tree_without_the_package(tmp_path):
    finished = subprocess.run([sys.executable, str(COMPARE), str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 1 and "Traceback" not in finished.stderr
    assert "holds no tinygrad_cnn/__init__.py" in finished.stderr

    out = tmp_path / "compare.json"
    finished = subprocess.run([sys.executable, str(COMPARE), str(ROOT), "--quick", "--threads", "1", "--json", str(out)],
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"seed step, batch 64", "LeNet step, batch 64", "conv2d 3x3 64->64 fwd+bwd"}
    for entry in results.values():
        assert entry["ratio"]["median"] > 0 and entry["ratio"]["n"] == 1
    assert results["seed step, batch 64"]["losses_max_relative_difference"] == 0.0, "the same tree, the same losses"


def test_report_states_the_host_blas_and_threads():
    run = load_run_module()
    bench = run.Bench(run.parse_args(["--no-torch", "--threads", "1"]))
    env = run.environment(bench)
    assert env["cpu"] and env["cores"] >= 1 and env["threads"] == 1
    assert set(env["flags"]) == {"avx2", "avx512f", "amx_tile"}
    assert env["numpy"] and env["blas"] and env["blas_core"]
    if env["blas_threads"] is not None:
        assert env["blas_threads"] == 1, "the worker's BLAS runs with the threads it was given"
    text = "\n".join(run.format_environment({**env, "torch_threads": []}))
    for fact in (env["cpu"], f"{env['cores']} cores", env["blas"], env["blas_core"], "avx512f", "Threads: 1 per library",
                 "OPENBLAS_* variables in force"):
        assert fact in text, fact
