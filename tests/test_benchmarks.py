"""The benchmark command from the README runs end to end (``--quick``: fewer rounds, same code
paths), with PyTorch when it is installed. Its figures are not checked here: speed goals live in
the benchmark's report, not in timed unit tests."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_quick_run_writes_every_section(tmp_path):
    out = tmp_path / "bench.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json", str(out)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    results = json.loads(out.read_text())
    for section in ("step", "conv", "overhead", "memory", "scaling"):
        assert section in results, section
    for name in ("seed", "lenet"):
        step = results["step"][name]
        assert step["ours_ms"] > 0
        if results["environment"]["torch"]:
            # the two libraries start from the same weights and see the same batch
            assert step["same_arithmetic"]["agree"], step
    assert "training step, batch 64" in finished.stdout
    assert results["environment"]["openblas_environment"]


def test_benchmark_rejects_an_unknown_section():
    finished = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--only", "nope", "--no-torch"],
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode != 0
    if "KeyError" in finished.stderr:
        pytest.fail("an unknown section should be refused with a clear message, not a KeyError")
