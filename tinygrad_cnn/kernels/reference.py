"""The reference kernels: every kernel in plain NumPy, a few lines each, to be checked by hand.

No caching allocator, no chunking, no bit tricks: each result is a fresh NumPy array computed the
most direct way. ``TINYGRAD_CNN_KERNELS=reference`` (or ``with tinygrad_cnn.kernels.use("reference")``)
runs every op on these, and ``tests/kernels/test_twins.py`` checks each fast kernel against its
twin here.

Shapes: images are (N, C, H, W), convolution weights (O, C/groups, kh, kw). ``geometry`` is an
``ops.conv.ConvGeometry``: kernel, stride, padding and dilation as (height, width) pairs, and groups.
"""
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# ---- elementwise ----------------------------------------------------------------------------------


def elementwise(fn, *operands, dtype=None):
    """``fn(*operands)`` for a NumPy ufunc ``fn`` (add, exp, maximum, ...). ``dtype`` is a hint for
    the fast twin, which allocates the result itself; NumPy picks the same type here."""
    return fn(*operands)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.matmul(a, b)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), written so that ``exp`` only ever sees a number <= 0 (no overflow):
    exp(x) / (1 + exp(x)) for negative x."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function elementwise, in x's dtype. NumPy has none: Python's ``math.erf`` (accurate
    to double precision) one element at a time, about 0.17 microseconds an element."""
    return np.asarray(np.frompyfunc(math.erf, 1, 1)(x), dtype=x.dtype)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)  # NaN stays NaN, as in torch


def relu_mask(y: np.ndarray) -> np.ndarray:
    """Where relu's gradient passes, from its output ``y``: wherever ``y`` is not <= 0 (so NaN passes,
    as in torch)."""
    return np.asarray(np.logical_not(y <= 0))


def keep_where(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The values where ``mask`` is True, 0 elsewhere (even where the value is inf or NaN)."""
    return np.where(mask, values, values.dtype.type(0))


# ---- windows --------------------------------------------------------------------------------------


def windows(x: np.ndarray, geometry, fill=0) -> np.ndarray:
    """Every window of ``x`` padded with ``fill``: a view of shape (N, C, OH, OW, kh, kw), where
    ``windows[n, c, oh, ow, i, j] = x_padded[n, c, s*oh + d*i, s*ow + d*j]``."""
    (ph, pw), (kh, kw), (sh, sw), (dh, dw) = geometry.padding, geometry.kernel, geometry.stride, geometry.dilation
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    # all windows of the kernel's full reach (d*(k-1) + 1), then every s-th corner and every d-th tap
    spans = sliding_window_view(padded, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    return spans[:, :, ::sh, ::sw, ::dh, ::dw]


# ---- convolution ------------------------------------------------------------------------------------


def conv2d(x: np.ndarray, w: np.ndarray, geometry, bias=None) -> np.ndarray:
    """y[n, o, oh, ow] = bias[o] + sum over c, i, j of w[o, c, i, j] * windows(x)[n, c, oh, ow, i, j],
    with c running over the input channels of o's group."""
    n, c, g, o = x.shape[0], x.shape[1], geometry.groups, w.shape[0]
    win = windows(x, geometry)
    oh, ow, kh, kw = win.shape[2:]
    win = win.reshape(n, g, c // g, oh, ow, kh, kw)
    y = np.einsum("ngchwij,gocij->ngohw", win, w.reshape(g, o // g, c // g, kh, kw), optimize=True)
    y = y.reshape(n, o, oh, ow)
    return y if bias is None else y + bias.reshape(o, 1, 1)


def conv2d_weight_grad(x: np.ndarray, grad_out: np.ndarray, w_shape, geometry) -> np.ndarray:
    """dL/dw[o, c, i, j] = sum over n, oh, ow of grad_out[n, o, oh, ow] * windows(x)[n, c, oh, ow, i, j]."""
    n, c, g, o = x.shape[0], x.shape[1], geometry.groups, w_shape[0]
    win = windows(x, geometry)
    oh, ow, kh, kw = win.shape[2:]
    win = win.reshape(n, g, c // g, oh, ow, kh, kw)
    dw = np.einsum("ngchwij,ngohw->gocij", win, grad_out.reshape(n, g, o // g, oh, ow), optimize=True)
    return dw.reshape(w_shape)


def conv2d_input_grad(grad_out: np.ndarray, w: np.ndarray, x_shape, geometry) -> np.ndarray:
    """dL/dx: every output's gradient sent back along each kernel tap (i, j) to the input position
    that tap read, times the tap's weight; the padding's share is dropped."""
    n, c, h, wd = x_shape
    g, o, (ph, pw) = geometry.groups, w.shape[0], geometry.padding
    oh, ow = grad_out.shape[2:]
    grads = grad_out.reshape(n, g, o // g, oh, ow)
    weights = w.reshape(g, o // g, c // g, *w.shape[2:])
    dx = np.zeros((n, g, c // g, h + 2 * ph, wd + 2 * pw), np.result_type(grad_out, w))
    # geometry.offset_slices: for each tap k = i*kw + j, the padded positions it read, one per output
    for k, rows, cols in geometry.offset_slices((oh, ow)):
        i, j = divmod(k, w.shape[3])
        dx[..., rows, cols] += np.einsum("ngohw,goc->ngchw", grads, weights[..., i, j])
    return dx.reshape(n, c, h + 2 * ph, wd + 2 * pw)[:, :, ph : ph + h, pw : pw + wd]


# ---- max pooling ------------------------------------------------------------------------------------


def max_pool2d(x: np.ndarray, geometry) -> tuple:
    """The maximum of each window, and which tap k = i * kw + j it came from (``argmax``): the first
    of tied maxima, and the last NaN of a window that holds one (as torch). Padding is -inf: it never
    wins."""
    win = windows(x, geometry, fill=-np.inf)
    win = win.reshape(*win.shape[:4], win.shape[4] * win.shape[5])  # (N, C, OH, OW, kh * kw)
    is_nan = np.isnan(win)
    last_nan = win.shape[-1] - 1 - np.argmax(is_nan[..., ::-1], axis=-1)
    argmax = np.where(is_nan.any(axis=-1), last_nan, np.argmax(win, axis=-1))
    return np.max(win, axis=-1), argmax


def window_scatter(grad: np.ndarray, argmax: np.ndarray, input_shape, geometry) -> np.ndarray:
    """Zeros of ``input_shape``, plus each value of ``grad`` (N, C, OH, OW) at the input position its
    window's tap ``argmax`` read (summed where windows overlap)."""
    n, c, h, w = input_shape
    ph, pw = geometry.padding
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), grad.dtype)
    for k, rows, cols in geometry.offset_slices(grad.shape[2:]):  # tap k's positions, one per output
        padded[:, :, rows, cols] += np.where(argmax == k, grad, 0)
    return padded[:, :, ph : ph + h, pw : pw + w]


def window_gather(x: np.ndarray, argmax: np.ndarray, geometry) -> np.ndarray:
    """For each window of ``x`` (zero padding), the value at its tap ``argmax``."""
    win = windows(x, geometry)
    win = win.reshape(*win.shape[:4], win.shape[4] * win.shape[5])
    return np.take_along_axis(win, argmax[..., None].astype(np.intp), axis=-1)[..., 0]


# ---- indexing along one dimension, sums, scans, products, einsum (ops/indexing, reduce, scan, product, einsum) ----


def scatter_positions(dim: int, index: np.ndarray) -> tuple:
    """The full NumPy index of a gather/scatter: ``index`` along ``dim``, the element's own
    coordinate (a broadcasting ``arange``) along every other dimension."""
    positions = list(np.indices(index.shape, sparse=True))
    positions[dim] = index
    return tuple(positions)


def gather(x: np.ndarray, dim: int, index: np.ndarray) -> np.ndarray:
    """``out[i][j][k] = x[index[i][j][k]][j][k]`` for ``dim == 0`` (and likewise for other dims)."""
    return x[scatter_positions(dim, index)]


def scatter_add(base: np.ndarray, dim: int, index: np.ndarray, src: np.ndarray) -> np.ndarray:
    """A copy of ``base`` with ``out[index[i][j][k]][j][k] += src[i][j][k]`` (``dim == 0``);
    repeated indices accumulate. Only the part of ``src`` the shape of ``index`` is used, as in torch."""
    out = np.array(base, copy=True)
    np.add.at(out, scatter_positions(dim, index), src[tuple(slice(0, n) for n in index.shape)])
    return out


def sin(x: np.ndarray) -> np.ndarray:
    return np.sin(x)


def cos(x: np.ndarray) -> np.ndarray:
    return np.cos(x)


def sum_axes(x: np.ndarray, axis) -> np.ndarray:
    """The sum over ``axis`` (None: every axis), the summed axes kept with length 1."""
    return np.sum(x, axis=axis, keepdims=True)


def cumsum(x: np.ndarray, dim: int) -> np.ndarray:
    return np.cumsum(x, axis=dim)


def prod(x: np.ndarray, dim: int, keepdim: bool) -> np.ndarray:
    return np.prod(x, axis=dim, keepdims=keepdim)


def einsum(equation: str, *operands: np.ndarray) -> np.ndarray:
    return np.einsum(equation, *operands, optimize=len(operands) > 2)
