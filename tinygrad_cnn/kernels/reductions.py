"""The fast ``sum_axes``: a sum over leading and trailing axes as products with a row of ones.

``np.sum`` runs on one core, and over several axes (a convolution's bias gradient sums its output
gradient over axes 0, 2 and 3) well below memory speed: it adds along the short last axis, one run
at a time. Seen as a matrix, the same sum is a matrix-vector product with ones, which BLAS runs at
memory speed on every core it has: for a C-contiguous x whose summed axes are a leading run
(R1 of them together) and a trailing one (R2), x is (R1, A, R2) and

    sum = ones(R1) @ (x.reshape(R1 * A, R2) @ ones(R2)).reshape(R1, A)

Measured (Intel Xeon, 2 threads, float32): LeNet's bias gradients, (64, 32, 28, 28) and
(64, 64, 14, 14) over (0, 2, 3), 0.39 and 0.31 ms with ``np.sum`` against 0.11 and 0.06 alone; the
seed net's, (64, 8, 24, 24) and (64, 8, 20, 20), 0.08 against 0.03 and 0.02. Inside LeNet's
training step (eight alternations of 20 steps in one process, medians) the ``Sum`` op took 0.88
against 0.37 ms a step, and the step 33.2 against 32.3 ms.

The order of the additions differs from ``np.sum``'s, so the results agree to rounding, not bit for
bit. Over a leading axis both add one row after another; over a trailing run NumPy adds pairwise,
which stays the more accurate over long runs, so a run longer than ``LONGEST_RUN`` stays with
NumPy (a million numbers of [0.5, 1.5): relative error 8e-8 with NumPy against 3e-7 for BLAS; 65536
numbers: 2e-8 against 5e-8). Other dtypes, other layouts and other sets of axes use ``np.sum``.
"""
import math
import operator

import numpy as np

from . import memory

LONGEST_RUN = 1 << 16
# Below this many numbers np.sum is as fast, and sorting out the axes here costs more than it saves
# (a (64, 10) sum over its last axis: 22 against 46 us inside LeNet's training step).
SMALLEST = 1 << 12

def _axes(axis, ndim: int):
    """``axis`` (None, an integer or a tuple of them, negative counting from the end) as sorted
    non-negative axes; None where ``np.sum`` would refuse it (out of range, repeated, not an
    integer, a list), so that ``np.sum`` raises its own error."""
    if axis is None:
        return tuple(range(ndim))
    try:
        given = [operator.index(a) for a in (axis if isinstance(axis, tuple) else (axis,))]
    except TypeError:
        return None
    axes = sorted(a % ndim for a in given if -ndim <= a < ndim)
    return tuple(axes) if len(axes) == len(given) == len(set(axes)) else None


def sum_axes(x: np.ndarray, axis) -> np.ndarray:
    """``np.sum(x, axis=axis, keepdims=True)``, to rounding."""
    if x.size < SMALLEST or x.ndim == 0 or x.dtype not in (np.float32, np.float64) or not x.flags.c_contiguous:
        return np.sum(x, axis=axis, keepdims=True)
    axes = _axes(axis, x.ndim)
    if axes is None:
        return np.sum(x, axis=axis, keepdims=True)
    lead = next((i for i in range(x.ndim) if i not in axes), x.ndim)  # the leading run of summed axes
    trail = x.ndim - max((i + 1 for i in range(x.ndim) if i not in axes), default=0)
    if lead == x.ndim:  # every axis: one trailing run
        lead = 0
    r1, r2 = math.prod(x.shape[:lead]), math.prod(x.shape[x.ndim - trail :])
    if lead + trail != len(axes) or r2 > LONGEST_RUN or r1 * r2 <= 1 or x.size == 0:
        return np.sum(x, axis=axis, keepdims=True)
    kept_shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    sums = x.reshape(-1, r2) @ memory.constant_row(1, r2, x.dtype) if r2 > 1 else x.reshape(-1)
    if r1 > 1:
        sums = memory.constant_row(1, r1, x.dtype) @ sums.reshape(r1, -1)
    return sums.reshape(kept_shape)
