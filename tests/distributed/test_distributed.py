"""Data-parallel training over MPI: real ``mpiexec`` jobs of 2 and 3 ranks (``mpi_programs.py``),
checked against one process; the sampler and the process group's errors in this process."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.distributed as dist
from tinygrad_cnn.utils.data import DistributedSampler

from . import mpi_programs as programs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def mpiexec():
    pytest.importorskip("mpi4py")
    beside_python = Path(sys.executable).parent / "mpiexec"
    found = str(beside_python) if beside_python.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("mpiexec not found (pip install mpich)")
    return found


def run_job(ranks: int, *arguments, timeout: float = 120):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]), OPENBLAS_NUM_THREADS="1")
    command = [mpiexec(), "-n", str(ranks), sys.executable, str(HERE / "mpi_programs.py"), *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def one_process_reference(initial: dict, dtype, accumulate: int = 1) -> dict:
    """The same training in this process, on the whole batch, from rank 0's initial weights."""
    net = programs.cast(programs.SmallCNN(), dtype)
    net.load_state_dict(initial)
    programs.train(net, net.parameters(), rank=0, world=1, dtype=np.dtype(dtype), accumulate=accumulate)
    return programs.weights(net)


def job_weights(tmp_path, ranks, dtype, accumulate=1):
    out = tmp_path / f"weights-{ranks}-{dtype}-{accumulate}.npz"
    finished = run_job(ranks, "equivalence", out, dtype, accumulate)
    assert finished.returncode == 0, finished.stderr[-3000:]
    with np.load(out) as saved:
        split = {kind: {k.split(".", 1)[1]: saved[k] for k in saved.files if k.startswith(kind + ".")}
                 for kind in ("initial", "final")}
    return split["initial"], split["final"]


# After 5 SGD steps with momentum the ranks' sum of per-share means and one process's mean over the
# whole batch differ only in the order of floating-point additions.
TOLERANCE = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=2e-5, atol=1e-6)}


@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_ranks_train_like_one_process_at_the_global_batch(tmp_path, ranks, dtype):
    initial, final = job_weights(tmp_path, ranks, dtype)
    expected = one_process_reference(initial, dtype)
    for name in expected:
        assert not np.array_equal(final[name], initial[name]), f"{name} did not train"
        np.testing.assert_allclose(final[name], expected[name], err_msg=name, **TOLERANCE[dtype])


def test_no_sync_accumulates_then_averages_everything(tmp_path):
    initial, final = job_weights(tmp_path, 2, "float64", accumulate=2)
    expected = one_process_reference(initial, "float64", accumulate=2)
    for name in expected:
        np.testing.assert_allclose(final[name], expected[name], err_msg=name, **TOLERANCE["float64"])


def test_the_same_job_gives_the_same_bits(tmp_path):
    runs = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        runs.append(job_weights(tmp_path / name, 2, "float32")[1])
    first, second = runs
    for name in first:
        assert np.array_equal(first[name], second[name]), name


@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_failing_rank_ends_the_job_promptly(how):
    start = time.perf_counter()
    finished = run_job(2, "die", how, timeout=60)
    seconds = time.perf_counter() - start
    assert finished.returncode != 0
    assert "rank 0 finished" not in finished.stdout  # rank 0 did not go on alone, nor hang
    assert seconds < 30, f"the job took {seconds:.0f} s to end"
    if how == "raise":
        assert "rank 1 of 2 stopped" in finished.stderr and "a bug on rank 1" in finished.stderr
        assert "aborting every rank" in finished.stderr


# ---- the sampler (no MPI needed: num_replicas and rank given) -------------------------------------


@pytest.mark.parametrize("n, replicas", [(10, 2), (10, 3), (7, 4), (3, 5), (12, 1)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_sampler_covers_every_sample_once_per_epoch(n, replicas, shuffle):
    shares = [list(DistributedSampler(range(n), replicas, r, shuffle=shuffle, seed=3)) for r in range(replicas)]
    assert all(len(s) == -(-n // replicas) for s in shares)
    everything = [i for s in shares for i in s]
    assert set(everything) == set(range(n))
    padding = len(everything) - n  # only the padding repeats, and only from the epoch's start
    assert padding < replicas
    counts = np.bincount(everything, minlength=n)
    assert (counts >= 1).all() and counts.sum() == n + padding


def test_sampler_drop_last_drops_the_tail_instead_of_padding():
    shares = [list(DistributedSampler(range(10), 3, r, shuffle=False, drop_last=True)) for r in range(3)]
    assert shares == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]


def test_sampler_set_epoch_reshuffles_the_same_way_on_every_rank():
    samplers = [DistributedSampler(range(20), 2, r, shuffle=True, seed=5) for r in range(2)]
    epoch0 = [list(s) for s in samplers]
    for s in samplers:
        s.set_epoch(1)
    epoch1 = [list(s) for s in samplers]
    assert epoch0 != epoch1
    for epoch in (epoch0, epoch1):
        assert sorted(epoch[0] + epoch[1]) == list(range(20))  # disjoint and complete: same order on both ranks
    again = DistributedSampler(range(20), 2, 0, shuffle=True, seed=5)
    again.set_epoch(1)
    assert list(again) == epoch1[0]


def test_sampler_lengths_match_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    for n in range(1, 14):
        for replicas in (1, 2, 3, 4):
            for drop_last in (False, True):
                for rank in range(replicas):
                    ours = list(DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last))
                    theirs = list(TorchSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last))
                    assert ours == theirs, (n, replicas, rank, drop_last)


def test_sampler_refuses_a_rank_outside_the_world():
    with pytest.raises(ValueError, match="invalid rank 2"):
        DistributedSampler(range(4), num_replicas=2, rank=2)


# ---- the process group in this process ---------------------------------------------------------


def test_collectives_before_init_name_the_fix():
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.get_rank()


def test_missing_mpi4py_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py now raises ImportError
    assert not dist.is_available()
    with pytest.raises(RuntimeError, match=r"tinygrad_cnn\[distributed\]"):
        dist.init_process_group()


def test_a_world_of_one_without_mpiexec():
    pytest.importorskip("mpi4py")
    dist.init_process_group()
    try:
        assert (dist.get_rank(), dist.get_world_size()) == (0, 1)
        t = tg.Tensor(np.arange(4.0))
        dist.all_reduce(t, dist.ReduceOp.AVG)
        np.testing.assert_array_equal(t.data, np.arange(4.0))
        with pytest.raises(RuntimeError, match="already initialized"):
            dist.init_process_group()
    finally:
        dist.destroy_process_group()


def test_the_data_loader_reads_a_ranks_share_through_the_sampler():
    from tinygrad_cnn.utils.data import DataLoader, TensorDataset

    dataset = TensorDataset(np.arange(10.0).reshape(10, 1), np.arange(10))
    shares = []
    for rank in range(3):
        sampler = DistributedSampler(dataset, num_replicas=3, rank=rank, shuffle=True, seed=1)
        sampler.set_epoch(2)
        labels = [int(v) for _, batch in DataLoader(dataset, batch_size=2, sampler=sampler) for v in batch.data]
        assert labels == list(sampler)
        shares.append(labels)
    assert sum(len(share) for share in shares) == 12  # 10 samples, padded to 4 per rank
    assert set(v for share in shares for v in share) == set(range(10))
