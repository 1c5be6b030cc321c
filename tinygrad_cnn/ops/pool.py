"""Max-pooling as a primitive, and the scatter/gather pair its derivatives are made of.

``MaxPool2d`` keeps, for every output, which kernel offset held the maximum (``argmax``). Its
gradient sends each output gradient back to that one input position: a scatter
(``WindowScatter``). A scatter is linear, and its gradient reads the values at the same
positions: a gather (``WindowGather``), whose gradient is the scatter again. With the argmax fixed
the second derivative of max-pooling with respect to its input is zero, as it should be away
from ties.

Every loop runs over kernel offsets only, each step touching whole (N, C, OH, OW) arrays.
Average pooling needs no primitive: it is a depthwise convolution with constant weights
(``nn.functional.avg_pool2d``).
"""
import numpy as np

from ..autograd import Function
from .conv import ConvGeometry, crop_spatial, pad_spatial


def _argmax_dtype(geometry: ConvGeometry):
    return np.min_scalar_type(geometry.kernel[0] * geometry.kernel[1] - 1)


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, geometry):
        out_hw = geometry.output_size(*x.shape[2:])
        padded = pad_spatial(x, geometry.padding, value=-np.inf)  # padding never wins
        best = argmax = None
        for k, rows, cols in geometry.offset_slices(out_hw):
            candidate = padded[:, :, rows, cols]
            if best is None:
                best = candidate.copy()
                argmax = np.zeros(best.shape, dtype=_argmax_dtype(geometry))
                continue
            larger = candidate > best  # strict: the first of tied maxima wins, as in torch
            np.copyto(best, candidate, where=larger)
            argmax[larger] = k
        ctx.geometry, ctx.argmax, ctx.input_shape = geometry, argmax, x.shape
        return best

    @staticmethod
    def backward(ctx, grad):
        return WindowScatter.apply(grad, ctx.argmax, ctx.input_shape, ctx.geometry), None


class WindowScatter(Function):
    """Add each value of ``grad`` (N, C, OH, OW) to the input position its window's ``argmax`` names."""

    @staticmethod
    def forward(ctx, grad, argmax, input_shape, geometry):
        ctx.argmax, ctx.geometry = argmax, geometry
        n, c, h, w = input_shape
        ph, pw = geometry.padding
        padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=grad.dtype)
        for k, rows, cols in geometry.offset_slices(grad.shape[2:]):
            padded[:, :, rows, cols] += np.where(argmax == k, grad, 0)
        return crop_spatial(padded, geometry.padding)

    @staticmethod
    def backward(ctx, grad):
        return WindowGather.apply(grad, ctx.argmax, ctx.geometry), None, None, None


class WindowGather(Function):
    """Read, for each window, the input value at the position its ``argmax`` names."""

    @staticmethod
    def forward(ctx, x, argmax, geometry):
        ctx.argmax, ctx.geometry, ctx.input_shape = argmax, geometry, x.shape
        padded = pad_spatial(x, geometry.padding)
        out = np.zeros(argmax.shape, dtype=x.dtype)
        for k, rows, cols in geometry.offset_slices(argmax.shape[2:]):
            np.copyto(out, padded[:, :, rows, cols], where=argmax == k)
        return out

    @staticmethod
    def backward(ctx, grad):
        return WindowScatter.apply(grad, ctx.argmax, ctx.input_shape, ctx.geometry), None, None
