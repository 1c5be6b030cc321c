"""The switch between kernel sets: ``TINYGRAD_CNN_KERNELS`` for every thread, ``kernels.use`` for one
thread and one block, and a one-line error for a value that names no set (and for a
``TINYGRAD_CNN_CACHE_MB`` that is not a number of megabytes)."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor, kernels
from tinygrad_cnn.kernels import fast, reference


def run_python(code: str, **environment) -> subprocess.CompletedProcess:
    env = {**os.environ, **environment}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def counting_calls(monkeypatch, kernel_set, name: str) -> list:
    """Replace ``kernel_set.name`` by a wrapper that records the thread of each call."""
    calls, original = [], getattr(kernel_set, name)

    def counted(*args, **kwargs):
        calls.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(kernel_set, name, counted)
    return calls


def the_other_set():
    """The set ``use`` switches to in these tests: not the one this run started on (which
    TINYGRAD_CNN_KERNELS may have chosen), as (name, module)."""
    return ("reference", reference) if kernels.active() is fast else ("fast", fast)


def test_use_runs_this_thread_on_the_chosen_kernels_and_no_other(monkeypatch):
    default, (name, other) = kernels.active(), the_other_set()
    chosen_calls = counting_calls(monkeypatch, other, "conv2d")
    default_calls = counting_calls(monkeypatch, default, "conv2d")
    x, w = Tensor(np.ones((1, 1, 4, 4))), Tensor(np.ones((1, 1, 3, 3)))
    started, release, seen_by_other = threading.Event(), threading.Event(), []

    def other_thread():
        started.set()
        release.wait(10)
        seen_by_other.append(kernels.active())
        F.conv2d(x, w)

    thread = threading.Thread(target=other_thread)
    thread.start()
    started.wait(10)
    with kernels.use(name) as chosen:
        assert chosen is other and kernels.active() is other
        release.set()
        thread.join(10)
        y = F.conv2d(x, w)
    assert kernels.active() is default
    assert seen_by_other == [default]
    assert chosen_calls == [threading.get_ident()] and default_calls == [thread.ident]
    np.testing.assert_array_equal(y.data, np.full((1, 1, 2, 2), 9.0))


def test_use_restores_the_previous_set_after_an_error():
    default, (name, _) = kernels.active(), the_other_set()
    with pytest.raises(KeyError):
        with kernels.use(name):
            raise KeyError("inside")
    assert kernels.active() is default


def test_use_refuses_an_unknown_set_in_one_line():
    with pytest.raises(ValueError, match=r"^tinygrad_cnn.kernels.use: unknown kernel set 'quick'; expected one of 'fast', 'reference'$"):
        with kernels.use("quick"):
            pass


def test_the_environment_variable_chooses_the_set_of_every_thread():
    code = (
        "import threading; from tinygrad_cnn import kernels\n"
        "seen = []; t = threading.Thread(target=lambda: seen.append(kernels.active().__name__)); t.start(); t.join()\n"
        "print(kernels.active().__name__, seen[0])"
    )
    done = run_python(code, TINYGRAD_CNN_KERNELS="reference")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["tinygrad_cnn.kernels.reference"] * 2


@pytest.mark.parametrize("variable, value, expected", [
    ("TINYGRAD_CNN_KERNELS", "refrence", "TINYGRAD_CNN_KERNELS: unknown kernel set 'refrence'; expected one of 'fast', 'reference'"),
    ("TINYGRAD_CNN_CACHE_MB", "abc", "TINYGRAD_CNN_CACHE_MB='abc': expected a whole number of megabytes (0 or more), e.g. 1024"),
    ("TINYGRAD_CNN_CACHE_MB", "-5", "TINYGRAD_CNN_CACHE_MB='-5': expected a whole number of megabytes (0 or more), e.g. 1024"),
])
def test_a_bad_environment_value_is_named_in_one_line(variable, value, expected, tmp_path):
    """Read where it is used, not at import: the package imports, the first op that needs the value
    raises an EnvironmentVariableError naming it, and the command line reports it in one line. The
    cache is the fast kernels' (the reference ones allocate plainly), so they run on the fast set
    whatever set this test session runs on."""
    environment = {"TINYGRAD_CNN_KERNELS": "fast", variable: value}
    done = run_python("import tinygrad_cnn", **environment)
    assert done.returncode == 0, done.stderr
    done = run_python("import tinygrad_cnn as tg; tg.randn(300, 300) @ tg.randn(300, 300)", **environment)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == "tinygrad_cnn.environment.EnvironmentVariableError: " + expected
    command = [sys.executable, "-m", "tinygrad_cnn", "train", "--epochs", "1", "--limit", "64", "--no-figures",
               "--no-progress", "--out", str(tmp_path / "run")]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **environment}, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()  # refused before any run folder was made
    assert done.stderr.strip().splitlines()[-1] == "error: " + expected
