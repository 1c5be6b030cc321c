"""Movement primitives: they rearrange, select or pad elements without arithmetic.

They come in pairs that undo each other, and each one's backward is its partner:
reshape/reshape, permute/inverse permute, expand/sum, pad/slice, gather (``GetItem``)/scatter-add
(``IndexAdd``), concatenate/slices.
"""
import numpy as np

from ..autograd import Function
from .batching import materialize, pad_rank, shift_axis, without_ellipsis


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


def _zeros_like_array(a):
    """A zero tangent for an input that has none (a Tensor or an array)."""
    from ..tensor_class import Tensor

    data = a.data if isinstance(a, Tensor) else np.asarray(a)
    return Tensor(np.zeros(data.shape, dtype=data.dtype))


class Reshape(Function):
    """y = x with the same elements, in row-major order, seen as ``shape``
    dL/dx = g reshaped to x's shape
    JVP: dy = dx reshaped
    vmap: reshaped to (B, *shape)"""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(*ctx.input_shape), None

    @staticmethod
    def jvp(ctx, t, _):
        return Reshape.apply(t, ctx.output_shape)

    @staticmethod
    def vmap(info, in_dims, x, shape):
        return Reshape.apply(x, (x.shape[0], *shape)), 0


class Permute(Function):
    """y = x with its axes reordered: y.shape[i] = x.shape[axes[i]]
    dL/dx = g with the inverse permutation
    JVP: dy = dx with its axes permuted
    vmap: the axes one further, the batch's first"""

    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, grad):
        return grad.permute(*np.argsort(ctx.axes)), None

    @staticmethod
    def jvp(ctx, t, _):
        return Permute.apply(t, ctx.axes)

    @staticmethod
    def vmap(info, in_dims, x, axes):
        return Permute.apply(x, (0, *(a + 1 for a in axes))), 0


class Expand(Function):
    """y = x repeated along its axes of length 1 (and new leading axes) up to ``shape``
    dL/dx = g summed over the repeated axes (``sum_to_shape``)
    JVP: dy = dx broadcast to ``shape``
    vmap: expanded to (B, *shape), a sample's new dimensions after the batch's"""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return np.broadcast_to(x, shape)  # a read-only view: no copy

    @staticmethod
    def backward(ctx, grad):
        return sum_to_shape(grad, ctx.input_shape), None

    @staticmethod
    def jvp(ctx, t, _):
        return Expand.apply(t, ctx.output_shape)

    @staticmethod
    def vmap(info, in_dims, x, shape):
        x = pad_rank(x, len(shape))  # new leading dimensions of a sample go after the batch's
        return Expand.apply(x, (x.shape[0], *shape)), 0


class Pad(Function):
    """y = x surrounded by ``value``: ``pad_width`` is NumPy's ((before, after), ...) per axis
    dL/dx = g with the padding sliced off
    JVP: dy = dx surrounded by zeros
    vmap: the batch dimension not padded"""

    @staticmethod
    def forward(ctx, x, pad_width, value=0):
        ctx.inner = tuple(slice(before, before + n) for (before, _), n in zip(pad_width, x.shape))
        ctx.pad_width = pad_width
        return np.pad(x, pad_width, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.inner], None, None

    @staticmethod
    def jvp(ctx, t, _pad_width, _value=None):
        return Pad.apply(t, ctx.pad_width, 0)  # the padding is constant

    @staticmethod
    def vmap(info, in_dims, x, pad_width, value=0):
        return Pad.apply(x, ((0, 0), *pad_width), value), 0


def _is_advanced(index) -> bool:
    """Advanced (integer-array or boolean) indexing may select an element twice; basic cannot."""
    return any(isinstance(i, (np.ndarray, list)) for i in index)


class GetItem(Function):
    """y = x[index], basic or advanced indexing (NumPy semantics)
    dL/dx = IndexAdd(g, index): zeros with g added at the selected positions
    JVP: dy = dx[index]
    vmap: the index applied with the batch dimension moved last"""

    @staticmethod
    def forward(ctx, x, index):
        ctx.input_shape = x.shape
        ctx.index = index
        return np.asarray(x[index])

    @staticmethod
    def backward(ctx, grad):
        return IndexAdd.apply(grad, ctx.index, ctx.input_shape), None

    @staticmethod
    def jvp(ctx, t, _):
        return GetItem.apply(t, ctx.index)

    @staticmethod
    def vmap(info, in_dims, x, index):
        # With the batch dimension last, the sample's index applies to the leading dimensions as it
        # is, and NumPy keeps an unindexed trailing dimension last, wherever advanced indexing puts
        # the indexed ones.
        moved = Permute.apply(x, (*range(1, x.ndim), 0))
        return GetItem.apply(moved, without_ellipsis(index, x.ndim - 1)), -1


class IndexAdd(Function):
    """y = zeros of ``shape``, with v[k] added at index[k] (repeated indices accumulate)
    dL/dv = g[index] (GetItem)
    JVP: dy = zeros of ``shape``, plus dv added at ``index``
    vmap: the index applied with the batch dimension moved last"""

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

    @staticmethod
    def jvp(ctx, t, _index, _shape):
        return IndexAdd.apply(t, ctx.index, ctx.output_shape)

    @staticmethod
    def vmap(info, in_dims, values, index, shape):
        moved = Permute.apply(values, (*range(1, values.ndim), 0))  # batch last, as in GetItem's rule
        return IndexAdd.apply(moved, without_ellipsis(index, len(shape)), (*shape, info.batch_size)), -1


class Concatenate(Function):
    """y = x₁, x₂, … joined along ``axis``
    dL/dxₖ = the slice of g where xₖ was put
    JVP: dy = the tangents joined along ``axis`` (zeros for an input without one)
    vmap: joined one axis further along, an unbatched input repeated"""

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

    @staticmethod
    def jvp(ctx, _axis, *tangents):
        pieces = [t if t is not None else _zeros_like_array(a) for t, a in zip(tangents, ctx._jvp_args[1:])]
        return Concatenate.apply(ctx.axis, *pieces)

    @staticmethod
    def vmap(info, in_dims, axis, *arrays):
        arrays = [materialize(a, d, info.batch_size) for a, d in zip(arrays, in_dims[1:])]
        return Concatenate.apply(shift_axis(axis, arrays[0].ndim - 1), *arrays), 0

