"""The kernels: the NumPy code that computes each primitive's forward, in two sets with one list
of names (``KERNEL_NAMES``).

- ``reference.py``: every kernel in plain NumPy, a few lines each (``sliding_window_view``,
  ``einsum``, ``np.where``). Read these to see what a kernel computes.
- ``fast.py``: the set used by default, gathered from the modules that make kernels fast:
  ``conv_gemm.py`` (convolution as im2col and chunked matrix products), ``conv_banded.py`` (a small
  layer's convolution as a product with a banded matrix), ``pooling.py`` (max-pooling by a
  tournament, scatter and gather by kernel offset), ``masks.py`` (bit-exact ``keep_where`` and
  ``relu``), ``reductions.py`` (sums over leading and trailing axes as products with ones),
  ``copies.py`` (copies, padding), ``memory.py`` (the cache the fast kernels take their arrays
  from) and ``tuning.py`` (where two methods compete, the one timed faster on this machine, kept
  in a file).

The ops (``tinygrad_cnn/ops/``) hold the math and call kernels by name on the active set:
``active().conv2d(x, w, geometry, bias)``. Which set is active is chosen per thread:

    TINYGRAD_CNN_KERNELS=reference python -m tinygrad_cnn train ...   # the default for every thread
    with tinygrad_cnn.kernels.use("reference"):                       # this thread, this block
        ...

A thread starts on the set named by ``TINYGRAD_CNN_KERNELS`` (``fast`` when unset), whatever
another thread chose with ``use``, as grad mode does.

Adding a primitive's kernel: write it in ``reference.py`` (plain, a few lines) and add its name to
``KERNEL_NAMES``; if a faster version pays, write it in a fast module (or a new one) and import it
in ``fast.py``, else import the reference one there; add its twin test to
``tests/kernels/test_twins.py``; and call it from the op's ``forward`` as ``active().name(...)``.
``tests/kernels/test_twins.py`` checks that both sets define every name.

``python -m tinygrad_cnn.kernels`` prints this thread's set and how the fast kernels compute each
convolution of the built-in nets (the GEMM layout chosen for its shape, ``conv_gemm.plan``).
"""
import contextlib
import os
import threading

from ..environment import EnvironmentVariableError
from . import fast, reference

KERNEL_NAMES = (
    "elementwise", "matmul", "sigmoid", "erf", "relu", "relu_mask", "keep_where",
    "conv2d", "conv2d_input_grad", "conv2d_weight_grad",
    "max_pool2d", "window_scatter", "window_gather",
    "gather", "scatter_add", "sin", "cos", "sum_axes", "cumsum", "prod", "einsum",
)
SETS = {"fast": fast, "reference": reference}
ENVIRONMENT_VARIABLE = "TINYGRAD_CNN_KERNELS"


def _named(name, where: str, error=ValueError):
    if name not in SETS:
        raise error(f"{where}: unknown kernel set {name!r}; expected one of {', '.join(map(repr, SETS))}")
    return SETS[name]


_active = threading.local()  # .kernels: the set this thread chose, once it has chosen or looked


def _from_environment():
    """The set named by ``TINYGRAD_CNN_KERNELS`` (read at a thread's first op, so a bad value is
    reported where it is used, not when the package is imported)."""
    return _named(os.environ.get(ENVIRONMENT_VARIABLE, "fast"), ENVIRONMENT_VARIABLE, EnvironmentVariableError)


def active():
    """The kernel set (a module: ``fast`` or ``reference``) this thread's ops run on."""
    try:
        return _active.kernels
    except AttributeError:  # this thread's first op
        _active.kernels = _from_environment()
        return _active.kernels


@contextlib.contextmanager
def use(name: str):
    """Run this thread's ops on the kernel set ``name`` ("fast" or "reference") inside the block."""
    chosen = _named(name, "tinygrad_cnn.kernels.use")
    previous = active()
    _active.kernels = chosen
    try:
        yield chosen
    finally:
        _active.kernels = previous
