"""Movement primitives: they rearrange, select or pad elements without arithmetic.

They come in pairs that undo each other, and each one's backward is its partner:
reshape/reshape, permute/inverse permute, expand/sum, pad/slice, gather (``GetItem``)/scatter-add
(``IndexAdd``), concatenate/slices.
"""
import numpy as np

from ..autograd import Function


def sum_to_shape(grad, shape):
    """Sum ``grad`` over the axes that broadcasting stretched, so it gets ``shape`` back: the
    backward of NumPy broadcasting, shared by every binary op and by ``Expand``."""
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    stretched = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    return grad.sum(axis=stretched, keepdims=True).reshape(*shape)


class Reshape(Function):
    """y = x with the same elements, in row-major order, seen as ``shape``
    dL/dx = g reshaped to x's shape"""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(*ctx.input_shape), None


class Permute(Function):
    """y = x with its axes reordered: y.shape[i] = x.shape[axes[i]]
    dL/dx = g with the inverse permutation"""

    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, grad):
        return grad.permute(*np.argsort(ctx.axes)), None


class Expand(Function):
    """y = x repeated along its axes of length 1 (and new leading axes) up to ``shape``
    dL/dx = g summed over the repeated axes (``sum_to_shape``)"""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return np.broadcast_to(x, shape)  # a read-only view: no copy

    @staticmethod
    def backward(ctx, grad):
        return sum_to_shape(grad, ctx.input_shape), None


class Pad(Function):
    """y = x surrounded by ``value``: ``pad_width`` is NumPy's ((before, after), ...) per axis
    dL/dx = g with the padding sliced off"""

    @staticmethod
    def forward(ctx, x, pad_width, value=0):
        ctx.inner = tuple(slice(before, before + n) for (before, _), n in zip(pad_width, x.shape))
        return np.pad(x, pad_width, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.inner], None, None


def _is_advanced(index) -> bool:
    """Advanced (integer-array or boolean) indexing may select an element twice; basic cannot."""
    return any(isinstance(i, (np.ndarray, list)) for i in index)


class GetItem(Function):
    """y = x[index], basic or advanced indexing (NumPy semantics)
    dL/dx = IndexAdd(g, index): zeros with g added at the selected positions"""

    @staticmethod
    def forward(ctx, x, index):
        ctx.input_shape = x.shape
        ctx.index = index
        return np.asarray(x[index])

    @staticmethod
    def backward(ctx, grad):
        return IndexAdd.apply(grad, ctx.index, ctx.input_shape), None


class IndexAdd(Function):
    """y = zeros of ``shape``, with v[k] added at index[k] (repeated indices accumulate)
    dL/dv = g[index] (GetItem)"""

    @staticmethod
    def forward(ctx, values, index, shape):
        ctx.index = index
        out = np.zeros(shape, dtype=values.dtype)
        if _is_advanced(index):
            np.add.at(out, index, values)
        else:
            out[index] = values
        return out

    @staticmethod
    def backward(ctx, grad):
        return GetItem.apply(grad, ctx.index), None, None


class Concatenate(Function):
    """y = x₁, x₂, … joined along ``axis``
    dL/dxₖ = the slice of g where xₖ was put"""

    @staticmethod
    def forward(ctx, axis, *arrays):
        ctx.axis = axis
        ctx.bounds = np.cumsum([0] + [a.shape[axis] for a in arrays])
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        axis = ctx.axis % grad.ndim
        pieces = []
        for start, stop, needed in zip(ctx.bounds[:-1], ctx.bounds[1:], ctx.needs_input_grad[1:]):
            index = (slice(None),) * axis + (slice(int(start), int(stop)),)
            pieces.append(grad[index] if needed else None)
        return (None, *pieces)
