"""The training command under ``mpiexec``: the same run as one process (up to summation order),
only rank 0 writes and speaks, a signal stops every rank at the same batch and ``--resume`` under
``mpiexec`` continues bit for bit, an expected error ends every rank with one line."""
import os
import signal
import subprocess
import sys
import time

import numpy as np

from .test_distributed import ROOT, mpiexec

TRAIN = ["-m", "tinygrad_cnn", "train", "--limit", "512", "--no-figures", "--no-progress", "--batch-size", "64"]


def environment():
    return dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")


def train(ranks, *arguments, timeout=300):
    command = ([mpiexec(), "-n", str(ranks)] if ranks else []) + [sys.executable, *TRAIN, *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment())


def weights(folder):
    with np.load(folder / "model.npz") as saved:
        return {name: saved[name] for name in saved.files}


def test_two_ranks_train_as_one_process_and_only_rank_0_writes(tmp_path):
    alone, pair = tmp_path / "alone", tmp_path / "pair"
    assert train(0, "--epochs", "2", "--out", alone).returncode == 0
    done = train(2, "--epochs", "2", "--out", pair)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "running on 2 MPI ranks" in done.stdout
    assert done.stdout.count("test accuracy") == 1 + 2  # two epoch lines and the final one, from rank 0 only
    expected, found = weights(alone), weights(pair)
    for name in expected:  # float32 Adam steps: the two sums of per-rank halves differ in the last bits only
        np.testing.assert_allclose(found[name], expected[name], rtol=1e-4, atol=1e-5, err_msg=name)
    assert sorted(p.name for p in pair.iterdir()) == sorted(p.name for p in alone.iterdir())
    assert '"world_size": 2' in (pair / "config.json").read_text()
    assert not list(tmp_path.glob("*/*.partial"))


def test_a_signal_stops_every_rank_and_resume_continues_bit_for_bit(tmp_path):
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert train(2, "--epochs", "3", "--out", whole).returncode == 0
    command = [mpiexec(), "-n", "2", sys.executable, *TRAIN, "--epochs", "3", "--out", str(stopped)]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment())
    deadline = time.monotonic() + 120
    while not (stopped / "checkpoint.npz").exists() and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.05)
    job.send_signal(signal.SIGINT)
    _, err = job.communicate(timeout=120)
    assert job.returncode != 0
    assert "continue it with: mpiexec -n 2 python -m tinygrad_cnn train --resume" in err
    assert err.count("training stopped") == 1  # rank 0 speaks for the run
    resumed = subprocess.run([mpiexec(), "-n", "2", sys.executable, "-m", "tinygrad_cnn", "train", "--resume", str(stopped),
                              "--no-progress"], capture_output=True, text=True, timeout=300, env=environment())
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected, found = weights(whole), weights(stopped)
    assert all(np.array_equal(found[name], expected[name]) for name in expected)


def test_an_expected_error_ends_every_rank_with_one_line(tmp_path):
    out = tmp_path / "taken"
    assert train(0, "--epochs", "1", "--out", out).returncode == 0
    start = time.monotonic()
    done = train(2, "--epochs", "1", "--out", out, timeout=120)  # an existing run, without --force
    assert done.returncode != 0 and time.monotonic() - start < 60
    assert "already holds a run" in done.stderr and "Traceback" not in done.stderr


def test_evaluation_under_ranks_uses_rank_0s_batch_norm_statistics(tmp_path):
    """Each rank updates its BatchNorm running statistics from its own share; the per-epoch
    evaluation (shared between ranks) must use rank 0's, as the final one (rank 0 alone) does."""
    done = train(2, "--epochs", "1", "--batch-size", "63", "--batch-norm", "--out", tmp_path / "bn")
    assert done.returncode == 0, done.stderr[-2000:]
    epoch_line = next(line for line in done.stdout.splitlines() if line.startswith("epoch 1/1"))
    final_line = next(line for line in done.stdout.splitlines() if line.startswith("test accuracy"))
    assert epoch_line.split("test accuracy ")[1].split("%")[0] == final_line.split("test accuracy ")[1].split("%")[0]
