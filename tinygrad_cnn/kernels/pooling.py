"""Fast pooling kernels: ``max_pool2d`` (the maxima and, for each, the kernel offset it came from),
``window_scatter`` and ``window_gather``. They speed up their twins in ``reference.py`` (a max and
an argmax over a window view; a loop over kernel offsets) with the same results, bit for bit.

Every loop runs over kernel offsets only, each step touching whole (N, C, OH, OW) arrays, into
arrays from the cache (``memory.py``). 2x2 windows with stride 2, the common case, take a
tournament of their own; the argmax avoids masked assignments (ten times slower) by arithmetic on
the comparison results.
"""
import numpy as np

from . import memory
from .copies import crop_spatial, pad_spatial
from .masks import keep_where


def _argmax_dtype(geometry):
    return np.min_scalar_type(geometry.kernel[0] * geometry.kernel[1] - 1)


def _max_of_2x2(x: np.ndarray, out_hw) -> tuple:
    """Max-pooling with 2x2 windows and stride 2, as a tournament: each window's top pair, its
    bottom pair, then the two winners. The four corners of every window are first copied into four
    contiguous arrays, since NumPy compares two stride-2 views some eight times slower than
    contiguous ones; one strided copy each and contiguous work after that is faster than the
    general loop below. Same maxima and the same argmax (ties and all) as that loop.

    Tried and left out: splitting the windows' top rows from their bottom rows first, by one copy
    of whole image rows (each seen as a void element), then left from right by 1-D copies. Alone
    it laid the corners out faster (0.58 -> 0.38 ms at (64, 64, 14, 14), 0.78 -> 0.69 ms at
    (64, 32, 28, 28)), but it moves the input twice, and inside LeNet's training step the pooling
    was no faster (min of 40 steps, four alternations)."""
    (oh, ow), q_shape = out_hw, (*x.shape[:2], *out_hw)
    corners = memory.empty((2, 2, *q_shape), x.dtype)
    for i in range(2):
        for j in range(2):
            np.copyto(corners[i, j], x[:, :, i : 2 * oh : 2, j : 2 * ow : 2])
    (a, b), (c, d) = corners
    # each comparison is strict, so the earlier of two tied values wins: row-major order, as torch
    right_top, right_bottom, lower = (memory.empty(q_shape, np.uint8) for _ in range(3))
    np.greater(b, a, out=right_top.view(bool))
    np.greater(d, c, out=right_bottom.view(bool))
    np.maximum(a, b, out=a)
    np.maximum(c, d, out=c)
    np.greater(c, a, out=lower.view(bool))
    best = memory.ufunc(np.maximum, a, c)
    # argmax = 2 + right_bottom where the bottom pair won, else right_top; with bit operations,
    # since a masked assignment is ten times slower: right_top ^ ((right_top ^ (right_bottom | 2)) & -lower)
    np.bitwise_or(right_bottom, 2, out=right_bottom)
    np.bitwise_xor(right_bottom, right_top, out=right_bottom)
    np.bitwise_and(right_bottom, np.negative(lower, out=lower), out=right_bottom)
    return best, np.bitwise_xor(right_top, right_bottom, out=right_top)


def _max_of_windows(padded: np.ndarray, geometry, out_hw) -> tuple:
    """Any window: one pass over the outputs per kernel offset, keeping the running maximum and
    the offset it came from."""
    best = argmax = larger = None
    for k, rows, cols in geometry.offset_slices(out_hw):
        candidate = padded[:, :, rows, cols]
        if best is None:
            best = memory.copy(candidate)
            argmax = memory.zeros(best.shape, _argmax_dtype(geometry))
            larger = memory.empty(best.shape, argmax.dtype)
            continue
        np.greater(candidate, best, out=larger)  # strict: the first of tied maxima wins, as in torch
        np.maximum(best, candidate, out=best)  # NaN propagates, as in torch
        # offsets come in increasing order, so a new winner's k exceeds the argmax so far:
        # a maximum instead of a masked assignment, which is ten times slower
        np.maximum(argmax, np.multiply(larger, k, out=larger), out=argmax)
    return best, argmax


def max_pool2d(x: np.ndarray, geometry) -> tuple:
    """The maximum of each window of ``x`` (N, C, H, W), and the kernel offset i * kw + j it came
    from: the first of tied maxima, the last NaN where a window holds one (as torch)."""
    out_hw = geometry.output_size(*x.shape[2:])
    padded = pad_spatial(x, geometry.padding, value=-np.inf)  # padding never wins
    if geometry.kernel == geometry.stride == (2, 2) and geometry.dilation == (1, 1) and geometry.padding == (0, 0):
        best, argmax = _max_of_2x2(x, out_hw)
    else:
        best, argmax = _max_of_windows(padded, geometry, out_hw)
    if np.isnan(best).any():  # rare: point each NaN output at the last NaN of its window, as torch
        for k, rows, cols in geometry.offset_slices(out_hw):
            np.copyto(argmax, k, where=np.isnan(padded[:, :, rows, cols]))
    return best, argmax


def window_scatter(grad: np.ndarray, argmax: np.ndarray, input_shape, geometry) -> np.ndarray:
    """Zeros of ``input_shape`` with each value of ``grad`` (N, C, OH, OW) added at the input position
    its window's ``argmax`` names."""
    n, c, h, w = input_shape
    ph, pw = geometry.padding
    disjoint = all(s >= d * (k - 1) + 1 for s, d, k in zip(geometry.stride, geometry.dilation, geometry.kernel))
    # Windows that tile the input exactly (as a 2x2 pool with stride 2 on an even size) write every
    # position below, so the zero fill can be skipped.
    tiled = disjoint and geometry.padding == (0, 0) and geometry.dilation == (1, 1) and \
        geometry.stride == geometry.kernel and tuple(o * k for o, k in zip(grad.shape[2:], geometry.kernel)) == (h, w)
    padded = (memory.empty if tiled else memory.zeros)((n, c, h + 2 * ph, w + 2 * pw), grad.dtype)
    for k, rows, cols in geometry.offset_slices(grad.shape[2:]):
        if disjoint:  # windows do not overlap: each input position receives one value at most
            keep_where(memory.ufunc(np.equal, argmax, k, dtype=bool), grad, out=padded[:, :, rows, cols])
        else:
            padded[:, :, rows, cols] += keep_where(memory.ufunc(np.equal, argmax, k, dtype=bool), grad)
    return crop_spatial(padded, geometry.padding)


def window_gather(x: np.ndarray, argmax: np.ndarray, geometry) -> np.ndarray:
    """For each window of ``x``, the value at the position its ``argmax`` names."""
    padded = pad_spatial(x, geometry.padding)
    out = memory.zeros(argmax.shape, x.dtype)
    for k, rows, cols in geometry.offset_slices(argmax.shape[2:]):
        np.copyto(out, padded[:, :, rows, cols], where=argmax == k)
    return out
