"""2-D convolution as three primitives that are each other's gradients.

``y = conv2d(x, w)`` is linear in ``x`` and in ``w``, so its two gradients are again linear maps:

* ``Conv2dInputGrad(g, w)``  = dL/dx, the transposed convolution of the output gradient ``g``;
* ``Conv2dWeightGrad(x, g)`` = dL/dw, the correlation of the input with ``g``.

Differentiating those gives back members of the same set (see each ``backward``), which is what
makes second derivatives through a CNN exact.

All three are matrix products (GEMMs) around im2col. ``Im2col`` copies the windows of the padded
input into columns, one per output position: for a chunk of n samples a stack of matrices
(n, groups, C/groups * kh * kw, positions). A convolution is then ``weights (groups, O/groups, K)
@ columns``, which lands directly in NCHW order, and the weight gradient is ``grad @ columns.T``
summed over the samples. The batch goes through a few samples at a time (``sample_chunks``): the
columns hold kh * kw copies of the input, and chunks keep them small enough to stay in the CPU
cache and out of the peak memory of a training step.

The transposed convolution (``Conv2dInputGrad``) with stride 1 is itself a correlation: of the
output gradient padded by dilation * (kernel - 1) - padding, with the kernel flipped and its input
and output channels swapped. With larger strides it multiplies by the transposed weights and adds
the columns back onto the input (col2im), with a Python loop over the kh * kw kernel offsets only.
"""
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import memory
from ..autograd import Function


@dataclass(frozen=True)
class ConvGeometry:
    """Hyperparameters of a 2-D sliding window, each a (height, width) pair."""

    kernel: tuple
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1

    def output_size(self, height: int, width: int) -> tuple:
        return tuple(
            (n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, k, s, p, d in zip((height, width), self.kernel, self.stride, self.padding, self.dilation)
        )

    def offset_slices(self, out_hw):
        """For each kernel offset (i, j): the slices of the *padded* input that offset sees for
        every output position. Shared by col2im and pooling."""
        (sh, sw), (dh, dw), (oh, ow) = self.stride, self.dilation, out_hw
        for i in range(self.kernel[0]):
            for j in range(self.kernel[1]):
                yield (
                    i * self.kernel[1] + j,
                    slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                    slice(j * dw, j * dw + sw * (ow - 1) + 1, sw),
                )


def pad_spatial(x: np.ndarray, padding, value=0) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    out = memory.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def crop_spatial(x: np.ndarray, padding) -> np.ndarray:
    ph, pw = padding
    return x[:, :, ph : x.shape[2] - ph, pw : x.shape[3] - pw]


def sliding_windows(x_padded: np.ndarray, geometry: ConvGeometry, out_hw) -> np.ndarray:
    """A read-only view (N, C, kh, kw, OH, OW) of every window, without copying."""
    sn, sc, sh, sw = x_padded.strides
    (kh, kw), (st_h, st_w), (dh, dw) = geometry.kernel, geometry.stride, geometry.dilation
    n, c = x_padded.shape[:2]
    return as_strided(
        x_padded,
        shape=(n, c, kh, kw, *out_hw),
        strides=(sn, sc, sh * dh, sw * dw, sh * st_h, sw * st_w),
        writeable=False,
    )


# Bytes of im2col columns per chunk of samples: enough for BLAS to run at full speed, few enough to
# stay in the L2/L3 cache. Measured on 2 cores: anything from 256 KB to 8 MB is within a few percent,
# while a whole batch of 64 at once is 20-50% slower and holds kh * kw copies of the input.
COLUMN_CHUNK_BYTES = 2 << 20


def sample_chunks(n: int, bytes_per_sample: int) -> list:
    """Slices of the batch axis, each with as many samples as fit in ``COLUMN_CHUNK_BYTES``."""
    step = max(1, COLUMN_CHUNK_BYTES // max(1, bytes_per_sample))
    return [slice(start, min(n, start + step)) for start in range(0, n, step)]


class Im2col:
    """The windows of one (N, C, H, W) input, copied into GEMM columns a chunk of samples at a time.

    Output positions are the columns' last axis. In general they are the OH * OW window corners,
    and every window row is a short strided slice of the input. With stride 1 and ``wide_rows`` the
    positions are instead taken along whole rows of the padded input (width Wp): kernel offset
    (i, j) then sees one contiguous run of (OH - 1) * Wp + OW values starting at i*dh*Wp + j*dw,
    so the copy is a plain memory copy. The price is Wp - OW extra positions per row, which
    straddle the image edge: they are computed and dropped by ``to_image``.
    """

    def __init__(self, x: np.ndarray, geometry: ConvGeometry, out_hw, wide_rows: bool):
        n, c = x.shape[:2]
        (kh, kw), (dh, dw) = geometry.kernel, geometry.dilation
        padded = pad_spatial(x, geometry.padding)
        self.out_hw, self.groups, self.row = tuple(out_hw), geometry.groups, out_hw[1]
        if wide_rows and geometry.stride == (1, 1) and padded.shape[3] <= 2 * out_hw[1]:
            padded = np.ascontiguousarray(padded)
            sn, sc, s_row, s_col = padded.strides
            self.row = padded.shape[3]
            length = (out_hw[0] - 1) * self.row + out_hw[1]
            self.windows = as_strided(
                padded, shape=(n, c, kh, kw, length), strides=(sn, sc, s_row * dh, s_col * dw, s_col), writeable=False
            )
        else:
            self.windows = sliding_windows(padded, geometry, out_hw)
        self.positions = int(np.prod(self.windows.shape[4:]))
        self.chunks = sample_chunks(n, c * kh * kw * self.positions * x.itemsize)

    def columns(self, chunk: slice) -> np.ndarray:
        """(n, groups, C/groups * kh * kw, positions) for the samples in ``chunk`` (one copy)."""
        windows = self.windows[chunk]
        rows = windows.shape[1] * windows.shape[2] * windows.shape[3] // self.groups
        columns = memory.empty((windows.shape[0], self.groups, rows, self.positions), windows.dtype)
        np.copyto(columns.reshape(windows.shape), windows)
        return columns

    def output_buffer(self, n: int, out_channels: int, dtype) -> np.ndarray:
        """Room for (n, groups, O/groups, OH * row): GEMM results go into ``[..., :positions]``."""
        return memory.empty((n, self.groups, out_channels // self.groups, self.out_hw[0] * self.row), dtype)

    def to_image(self, out: np.ndarray) -> np.ndarray:
        """An ``output_buffer`` as (N, O, OH, OW), dropping the positions outside the image."""
        out = out.reshape(out.shape[0], out.shape[1] * out.shape[2], self.out_hw[0], self.row)
        return out if self.row == self.out_hw[1] else memory.copy(out[..., : self.out_hw[1]])

    def from_image(self, y: np.ndarray) -> np.ndarray:
        """(N, O, OH, OW) -> (N, groups, O/groups, positions), zeros at the dropped positions."""
        n, o = y.shape[:2]
        if self.row != self.out_hw[1]:
            wide = memory.zeros((n, o, self.out_hw[0], self.row), y.dtype)
            wide[..., : self.out_hw[1]] = y
            y = wide
        return y.reshape(n, self.groups, o // self.groups, self.out_hw[0] * self.row)[..., : self.positions]


def _wide_rows(w_shape, groups: int) -> bool:
    """Whole-row columns pay when the columns (C/G * kh * kw rows) outweigh the output rows."""
    return w_shape[1] * w_shape[2] * w_shape[3] > w_shape[0] // groups


def conv2d_forward(x: np.ndarray, w: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """(N, C, H, W) correlated with (O, C/G, kh, kw) -> (N, O, OH, OW)."""
    n, o, g = x.shape[0], w.shape[0], geometry.groups
    im2col = Im2col(x, geometry, geometry.output_size(*x.shape[2:]), _wide_rows(w.shape, g))
    weights = w.reshape(g, o // g, -1)
    out = im2col.output_buffer(n, o, np.result_type(x, w))
    for chunk in im2col.chunks:
        np.matmul(weights, im2col.columns(chunk), out=out[chunk, ..., : im2col.positions])
    return im2col.to_image(out)


def conv2d_weight_grad(x: np.ndarray, grad_out: np.ndarray, w_shape, geometry: ConvGeometry) -> np.ndarray:
    """dL/dw = sum over samples and positions of grad_out times the input's columns."""
    g = geometry.groups
    im2col = Im2col(x, geometry, grad_out.shape[2:], _wide_rows(w_shape, g))
    grad_rows = im2col.from_image(grad_out)
    total = np.zeros((g, w_shape[0] // g, int(np.prod(w_shape[1:]))), dtype=np.result_type(x, grad_out))
    for chunk in im2col.chunks:
        total += memory.matmul(grad_rows[chunk], im2col.columns(chunk).swapaxes(-1, -2)).sum(axis=0)
    return total.reshape(w_shape)


def conv2d_input_grad(grad_out: np.ndarray, w: np.ndarray, x_shape, geometry: ConvGeometry) -> np.ndarray:
    """dL/dx, the transposed convolution of ``grad_out``."""
    # With stride 1 it is a correlation (below), whose columns have O/G * kh * kw rows; col2im's
    # have C/G * kh * kw, then kh * kw strided passes to add them up: the correlation is faster
    # unless the output has many more channels than the input (as in a first layer).
    if geometry.stride == (1, 1) and w.shape[0] <= 2 * x_shape[1]:
        # dx[h] = sum_i w[i] g[h + p - d*i]: a correlation of g padded by d*(k-1) - p (a crop where
        # that is negative) with the flipped kernel, input and output channels swapped per group.
        reach = [d * (k - 1) for d, k in zip(geometry.dilation, geometry.kernel)]
        pad = [r - p for r, p in zip(reach, geometry.padding)]
        crop_h, crop_w = (max(0, -q) for q in pad)
        grad_out = grad_out[:, :, crop_h : grad_out.shape[2] - crop_h, crop_w : grad_out.shape[3] - crop_w]
        transposed = ConvGeometry(geometry.kernel, (1, 1), tuple(max(0, q) for q in pad), geometry.dilation, geometry.groups)
        return conv2d_forward(grad_out, flipped_transpose(w, geometry.groups), transposed)
    # col2im: the columns w.T @ grad_out, each added back onto the input position it was copied from
    n, c, h, w_ = x_shape
    g, o = geometry.groups, w.shape[0]
    kh, kw = geometry.kernel
    (ph, pw), out_hw = geometry.padding, grad_out.shape[2:]
    weights_t = w.reshape(g, o // g, -1).swapaxes(1, 2)
    grad_rows = grad_out.reshape(n, g, o // g, out_hw[0] * out_hw[1])
    padded = memory.zeros((n, c, h + 2 * ph, w_ + 2 * pw), np.result_type(grad_out, w))
    for chunk in sample_chunks(n, c * kh * kw * grad_rows.shape[3] * padded.itemsize):
        columns = memory.matmul(weights_t, grad_rows[chunk]).reshape(-1, c, kh, kw, *out_hw)
        for k, rows, cols in geometry.offset_slices(out_hw):
            padded[chunk, :, rows, cols] += columns[:, :, k // kw, k % kw]
    return crop_spatial(padded, geometry.padding)


def flipped_transpose(w: np.ndarray, groups: int) -> np.ndarray:
    """(O, C/G, kh, kw) -> (C, O/G, kh, kw), each kernel rotated by 180 degrees: the weights of the
    transposed convolution."""
    o, cg, kh, kw = w.shape
    flipped = w.reshape(groups, o // groups, cg, kh, kw)[:, :, :, ::-1, ::-1]
    return np.ascontiguousarray(flipped.transpose(0, 2, 1, 3, 4)).reshape(groups * cg, o // groups, kh, kw)


class Conv2d(Function):
    """y[n, o] = sum over c, i, j of w[o, c, i, j] * x_padded[n, c, s*oh + d*i, s*ow + d*j]."""

    @staticmethod
    def forward(ctx, x, w, geometry):
        ctx.geometry = geometry
        ctx.save_for_backward(x, w)
        return conv2d_forward(x, w, geometry)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        needs_x, needs_w, _ = ctx.needs_input_grad
        return (
            Conv2dInputGrad.apply(grad, w, x.shape, ctx.geometry) if needs_x else None,
            Conv2dWeightGrad.apply(x, grad, w.shape, ctx.geometry) if needs_w else None,
            None,
        )


class Conv2dInputGrad(Function):
    """dL/dx of a convolution: ``w``'s transpose applied to the output gradient, then col2im."""

    @staticmethod
    def forward(ctx, grad_out, w, x_shape, geometry):
        ctx.geometry = geometry
        ctx.save_for_backward(grad_out, w)
        return conv2d_input_grad(grad_out, w, x_shape, geometry)

    @staticmethod
    def backward(ctx, grad):
        # <Conv2dInputGrad(g, w), v> = <g, conv2d(v, w)>: linear in g and in w
        grad_out, w = ctx.saved_tensors
        needs_g, needs_w, _, _ = ctx.needs_input_grad
        return (
            Conv2d.apply(grad, w, ctx.geometry) if needs_g else None,
            Conv2dWeightGrad.apply(grad, grad_out, w.shape, ctx.geometry) if needs_w else None,
            None,
            None,
        )


class Conv2dWeightGrad(Function):
    """dL/dw of a convolution: the output gradient times the input's columns, summed over the batch."""

    @staticmethod
    def forward(ctx, x, grad_out, w_shape, geometry):
        ctx.geometry = geometry
        ctx.save_for_backward(x, grad_out)
        return conv2d_weight_grad(x, grad_out, w_shape, geometry)

    @staticmethod
    def backward(ctx, grad):
        # <Conv2dWeightGrad(x, g), v> = <g, conv2d(x, v)>: linear in x and in g
        x, grad_out = ctx.saved_tensors
        needs_x, needs_g, _, _ = ctx.needs_input_grad
        return (
            Conv2dInputGrad.apply(grad_out, grad, x.shape, ctx.geometry) if needs_x else None,
            Conv2d.apply(x, grad, ctx.geometry) if needs_g else None,
            None,
            None,
        )
