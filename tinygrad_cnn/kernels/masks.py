"""Fast mask kernels: ``keep_where``, ``relu`` and ``relu_mask``, bit for bit the same as their
reference twins (``np.where(mask, values, 0)``, ``np.maximum(x, 0)`` and ``not (y <= 0)`` in
``reference.py``), only faster.

``keep_where`` multiplies each value's bits, read as an integer, by the mask's 1 or 0 instead of
selecting with ``np.where``; ``relu`` compares against a cached row of zeros instead of the scalar
0; ``relu_mask`` makes one pass (``y != 0``) where the plain kernel makes two. All three write into
arrays from the cache (``memory.py``).
"""
import numpy as np

from . import memory


def keep_where(mask: np.ndarray, values: np.ndarray, out=None) -> np.ndarray:
    """``np.where(mask, values, 0)`` in ``values``' shape, bit for bit (inf and NaN included), at the
    speed of a multiplication: each value's bits, read as an integer, are multiplied by the mask's
    1 or 0. (``np.where`` on a random mask is some ten times slower; ``values * mask`` in floating
    point would turn a blocked inf into a NaN.)"""
    if values.itemsize not in (1, 2, 4, 8):  # no integer of that width (float128): plain where
        if out is None:
            return np.where(mask, values, values.dtype.type(0))
        np.copyto(out, np.where(mask, values, values.dtype.type(0)))
        return out
    as_int = np.dtype(f"i{values.itemsize}")
    out = memory.empty(values.shape, values.dtype) if out is None else out
    np.multiply(values.view(as_int), mask.view(np.int8), out=out.view(as_int))
    return out


# NumPy's maximum against a scalar misses its vectorised loop: np.maximum(x, 0) runs some 2.5x
# slower than against an array of zeros. So relu takes its zeros from a row of them (it stays in
# the L2 cache), with x seen as rows of that length. Rows of 4096 ran 1.5x slower than rows of
# 8192 or more (NumPy 2.4: 0.35 against 0.22 ms on LeNet's first activation, 6.4 MB).
_ZEROS = 16384


def relu(x: np.ndarray) -> np.ndarray:
    """``np.maximum(x, 0)``, bit for bit (NaN propagates as in torch), into a cached array."""
    if x.dtype.kind != "f" or x.size < _ZEROS or not x.flags.c_contiguous:
        return memory.ufunc(np.maximum, x, 0)
    out = memory.empty(x.shape, x.dtype)
    zeros = memory.constant_row(0, _ZEROS, x.dtype)
    flat, flat_out = x.reshape(-1), out.reshape(-1)
    whole = x.size - x.size % _ZEROS
    np.maximum(flat[:whole].reshape(-1, _ZEROS), zeros, out=flat_out[:whole].reshape(-1, _ZEROS))
    np.maximum(flat[whole:], zeros[: x.size - whole], out=flat_out[whole:])
    return out


def relu_mask(y: np.ndarray) -> np.ndarray:
    """Where relu's gradient passes, from its output ``y``: where ``y`` is not <= 0 (NaN included, as
    torch), as a bool array (or a 0-d one). ``y`` is relu's output, so no value of it is below 0 (a
    NaN aside): "not <= 0" is "!= 0" there, one comparison instead of a comparison and a negation."""
    return np.asarray(memory.ufunc(np.not_equal, y, 0, dtype=bool))  # 0-d: a scalar
