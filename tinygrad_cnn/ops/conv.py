"""2-D convolution as three primitives that are each other's gradients.

``y = conv2d(x, w)`` is linear in ``x`` and in ``w``, so its two gradients are again linear maps:

* ``Conv2dInputGrad(g, w)``  = dL/dx, the transposed convolution of the output gradient ``g``;
* ``Conv2dWeightGrad(x, g)`` = dL/dw, the correlation of the input with ``g``.

Differentiating those gives back members of the same set (see each ``backward``), which is what
makes second derivatives through a CNN exact.

All three are one matrix product (GEMM) around an im2col view. ``im2col`` copies the sliding
windows of the padded input into columns of shape (groups, C/groups * kh * kw, N * OH * OW), so a
convolution is ``weights (groups, O/groups, K) @ columns``; ``col2im`` is its adjoint, adding the
columns back onto the input, with a Python loop over the kh * kw kernel offsets only.
"""
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

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
    out = np.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
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


def im2col(x: np.ndarray, geometry: ConvGeometry, out_hw) -> np.ndarray:
    """Columns (G, C/G * kh * kw, N * OH * OW) of the padded input's windows (one copy)."""
    n, c = x.shape[:2]
    g = geometry.groups
    windows = sliding_windows(pad_spatial(x, geometry.padding), geometry, out_hw)
    windows = windows.reshape(n, g, c // g, *geometry.kernel, *out_hw)
    return windows.transpose(1, 2, 3, 4, 0, 5, 6).reshape(g, (c // g) * geometry.kernel[0] * geometry.kernel[1], -1)


def col2im(columns: np.ndarray, x_shape, geometry: ConvGeometry, out_hw) -> np.ndarray:
    """Adjoint of ``im2col``: add every column entry back onto the input position it came from."""
    n, c, h, w = x_shape
    g = geometry.groups
    kh, kw = geometry.kernel
    ph, pw = geometry.padding
    # (G, C/G, kh, kw, N, OH, OW) -> per offset a (N, C, OH, OW) view
    columns = columns.reshape(g, c // g, kh, kw, n, *out_hw)
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=columns.dtype)
    for k, rows, cols in geometry.offset_slices(out_hw):
        i, j = divmod(k, kw)
        padded[:, :, rows, cols] += columns[:, :, i, j].transpose(2, 0, 1, 3, 4).reshape(n, c, *out_hw)
    return crop_spatial(padded, geometry.padding)


def to_matrix(y: np.ndarray, groups: int) -> np.ndarray:
    """(N, O, OH, OW) -> (G, O/G, N * OH * OW), the layout of a GEMM result."""
    n, o = y.shape[:2]
    return y.reshape(n, groups, o // groups, -1).transpose(1, 2, 0, 3).reshape(groups, o // groups, -1)


def from_matrix(y: np.ndarray, n: int, out_hw) -> np.ndarray:
    """(G, O/G, N * OH * OW) -> (N, O, OH, OW), contiguous."""
    g, og = y.shape[:2]
    y = y.reshape(g, og, n, out_hw[0] * out_hw[1]).transpose(2, 0, 1, 3)
    return np.ascontiguousarray(y).reshape(n, g * og, *out_hw)


def weight_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """(O, C/G, kh, kw) -> (G, O/G, C/G * kh * kw)."""
    return w.reshape(groups, w.shape[0] // groups, -1)


class Conv2d(Function):
    """y[n, o] = sum over c, i, j of w[o, c, i, j] * x_padded[n, c, s*oh + d*i, s*ow + d*j]."""

    @staticmethod
    def forward(ctx, x, w, geometry):
        ctx.geometry = geometry
        ctx.save_for_backward(x, w)
        out_hw = geometry.output_size(*x.shape[2:])
        columns = im2col(x, geometry, out_hw)
        return from_matrix(weight_matrix(w, geometry.groups) @ columns, x.shape[0], out_hw)

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
        out_hw = grad_out.shape[2:]
        w_t = weight_matrix(w, geometry.groups).transpose(0, 2, 1)
        columns = w_t @ to_matrix(grad_out, geometry.groups)
        return col2im(columns, x_shape, geometry, out_hw)

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
        out_hw = grad_out.shape[2:]
        columns = im2col(x, geometry, out_hw)
        return (to_matrix(grad_out, geometry.groups) @ columns.transpose(0, 2, 1)).reshape(w_shape)

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
