"""Data-parallel training over MPI: the process group, its collectives, and the sampler.

Several copies of one program (ranks) run side by side, started by ``mpiexec -n N python ...``.
Each rank holds the whole model and trains on its own share of every batch; after backward the
ranks average their gradients (``all_reduce``), so every rank takes the same optimizer step and
the copies stay identical. ``nn.parallel.DistributedDataParallel`` does that averaging during
backward; this module holds what it is built on, with ``torch.distributed``'s names:

- ``init_process_group()``: join the MPI world (needs the ``distributed`` extra: mpi4py, and an
  MPI such as the ``mpich`` wheel, which brings ``mpiexec``);
- ``get_rank()``, ``get_world_size()``, ``barrier()``;
- ``all_reduce(tensor, op)`` and ``broadcast(tensor, src)``, in place on the tensor's array, and
  with ``async_op=True`` a ``Work`` handle whose ``wait()`` finishes the exchange;

(``tinygrad_cnn.utils.data.DistributedSampler``, at torch's path, says which samples of a dataset
are this rank's in each epoch.)

A rank that dies must not leave the others waiting forever in a collective. ``mpiexec`` ends the
whole job when a rank is killed; a Python exception that nothing catches on one rank is reported
with the rank's number and then aborts every rank (``MPI_Abort``), as ``python -m mpi4py`` does.
"""
from __future__ import annotations

import sys
import time
import traceback

import numpy as np

ABORT_DELAY_SECONDS = 0.5  # see _abort_job
_INSTALL_HINT = 'pip install "tinygrad_cnn[distributed]" (mpi4py, and the mpich wheel for mpiexec)'


class ReduceOp:
    """How ``all_reduce`` combines the ranks' values (torch.distributed.ReduceOp's names)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


class _World:
    comm = None  # the MPI communicator once init_process_group() has run
    previous_excepthook = None


def is_available() -> bool:
    """Whether mpi4py can be imported (the ``distributed`` extra is installed)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        raise RuntimeError(f"tinygrad_cnn.distributed needs mpi4py: {_INSTALL_HINT}") from None
    return MPI


def launched_by_mpi() -> bool:
    """Whether this process was started by an MPI launcher (mpiexec/mpirun) with more than one rank,
    judged from the launcher's environment variables, so without importing MPI."""
    import os

    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "PMIX_SIZE"):
        value = os.environ.get(name)
        if value is not None and value.isdigit() and int(value) > 1:
            return True
    return False


def init_process_group(backend: str = "mpi", **unused) -> None:
    """Join the MPI world: every process started by ``mpiexec`` becomes one rank. Run alone (no
    ``mpiexec``) it is a world of one rank, so the same program runs either way. Calling it twice
    is an error, as in torch."""
    if backend != "mpi":
        raise ValueError(f"init_process_group: backend {backend!r} is not available; tinygrad_cnn runs on 'mpi'")
    if _World.comm is not None:
        raise RuntimeError("init_process_group: the default process group is already initialized")
    MPI = _mpi()
    _World.comm = MPI.COMM_WORLD
    if _World.comm.Get_size() > 1:
        # An exception no rank catches would leave the others waiting in their next collective:
        # report it with the rank's number, then end every rank.
        _World.previous_excepthook = sys.excepthook
        sys.excepthook = _abort_on_uncaught_exception


def _abort_on_uncaught_exception(kind, value, tb) -> None:
    rank, size = _World.comm.Get_rank(), _World.comm.Get_size()
    if issubclass(kind, KeyboardInterrupt):
        message = "interrupted"
    else:
        message = "".join(traceback.format_exception(kind, value, tb)).rstrip()
    sys.stderr.write(f"rank {rank} of {size} stopped: {message}\nrank {rank}: aborting every rank of the job\n")
    sys.stderr.flush()
    _abort_job(1)


def _abort_job(code: int) -> None:
    """End every rank of the job (MPI_Abort) with ``code``, once what this rank wrote has had a
    moment to reach the launcher: it forwards each rank's output through a pipe and, on an abort,
    may tear the job down before reading what is left there (an empty stderr, seen twice in the
    test suite's runs under load)."""
    time.sleep(ABORT_DELAY_SECONDS)
    _world().Abort(code)


def is_initialized() -> bool:
    return _World.comm is not None


def destroy_process_group() -> None:
    """Leave the process group (MPI itself is finalized when the process exits)."""
    if _World.previous_excepthook is not None:
        sys.excepthook, _World.previous_excepthook = _World.previous_excepthook, None
    _World.comm = None


def _world():
    if _World.comm is None:
        raise RuntimeError("the default process group is not initialized: call "
                           "tinygrad_cnn.distributed.init_process_group() first")
    return _World.comm


def get_rank() -> int:
    return _world().Get_rank()


def get_world_size() -> int:
    return _world().Get_size()


def barrier() -> None:
    _world().Barrier()


class Work:
    """A collective under way (``async_op=True``): ``wait()`` blocks until it is done and writes the
    result into the tensor."""

    def __init__(self, request, finish=None):
        self._request, self._finish, self._done = request, finish, False

    def is_completed(self) -> bool:
        if not self._done and self._request.Test():
            self._complete()
        return self._done

    def wait(self) -> bool:
        if not self._done:
            self._request.Wait()
            self._complete()
        return True

    def _complete(self) -> None:
        self._done = True
        if self._finish is not None:
            self._finish()


def _array_of(tensor, op: str) -> np.ndarray:
    array = tensor if isinstance(tensor, np.ndarray) else getattr(tensor, "data", None)
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{op}: expected a Tensor or a NumPy array, got {type(tensor).__name__}")
    if not array.flags.c_contiguous or not array.flags.writeable:
        raise ValueError(f"{op}: the tensor must be contiguous and writable (it is changed in place)")
    return array


def _mpi_op(op: str):
    MPI = _mpi()
    table = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
             ReduceOp.MIN: MPI.MIN, ReduceOp.MAX: MPI.MAX}
    if op not in table:
        raise ValueError(f"all_reduce: unknown op {op!r}; use one of ReduceOp.SUM, AVG, PRODUCT, MIN, MAX")
    return table[op]


def all_reduce(tensor, op: str = ReduceOp.SUM, async_op: bool = False):
    """Combine ``tensor`` over every rank (sum by default) and leave the result in it, on every rank."""
    comm, array = _world(), _array_of(tensor, "all_reduce")
    mpi_op = _mpi_op(op)
    size = comm.Get_size()

    def finish():
        if op == ReduceOp.AVG:
            array[...] = received / array.dtype.type(size)
        else:
            array[...] = received

    received = np.empty_like(array)
    if async_op:
        return Work(comm.Iallreduce(array, received, op=mpi_op), finish)
    comm.Allreduce(array, received, op=mpi_op)
    finish()
    return None


def broadcast(tensor, src: int = 0, async_op: bool = False):
    """Copy rank ``src``'s ``tensor`` into ``tensor`` on every other rank."""
    comm, array = _world(), _array_of(tensor, "broadcast")
    if not 0 <= src < comm.Get_size():
        raise ValueError(f"broadcast: src {src} is not a rank of a world of {comm.Get_size()}")
    if async_op:
        return Work(comm.Ibcast(array, root=src))
    comm.Bcast(array, root=src)
    return None
