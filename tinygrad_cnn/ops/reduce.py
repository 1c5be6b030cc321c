"""Reduction primitives: ``Sum`` and ``Max``. Mean, min and var are composed from them in tensor.py.

Both compute with ``keepdims=True`` first, so the backward only has to reshape the gradient to
that shape and expand it back over the reduced axes.
"""
import numpy as np

from ..autograd import Function
from ..kernels import active
from .batching import reduction
from .elementwise import constant_in


def _drop_axes(kept: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    return kept if keepdims else np.squeeze(kept, axis=axis)


class Sum(Function):
    """y = Σ x over ``axis``
    dL/dx = g, repeated over the summed axes
    JVP: dy = Σ dx over ``axis``
    vmap: the same op one axis further along"""

    vmap = reduction  # batching rule (ops/batching.py): the same op one axis further

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        kept = active().sum_axes(x, axis)
        ctx.input_shape, ctx.kept_shape, ctx.axis, ctx.keepdims = x.shape, kept.shape, axis, keepdims
        return _drop_axes(kept, axis, keepdims)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(*ctx.kept_shape).expand(*ctx.input_shape)

    @staticmethod
    def jvp(ctx, t):
        return Sum.apply(t, axis=ctx.axis, keepdims=ctx.keepdims)


class Max(Function):
    """y = max x over ``axis``
    dL/dx = g / (number of maxima) at each maximum, else 0
    JVP: dy = Σ dx · [x is a maximum] / (number of maxima) over ``axis``
    vmap: the same op one axis further along

    Tied maxima share the gradient equally (as torch's ``amax``)."""

    vmap = reduction  # batching rule (ops/batching.py): the same op one axis further

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        kept = np.max(x, axis=axis, keepdims=True)
        ctx.input_shape, ctx.kept_shape, ctx.axis, ctx.keepdims = x.shape, kept.shape, axis, keepdims
        if any(ctx.needs_input_grad):
            is_max = x == kept
            ctx.share = is_max / np.sum(is_max, axis=axis, keepdims=True, dtype=x.dtype)
        return _drop_axes(kept, axis, keepdims)

    @staticmethod
    def backward(ctx, grad):
        return constant_in(grad.reshape(*ctx.kept_shape).expand(*ctx.input_shape) * ctx.share, ctx, 0)

    @staticmethod
    def jvp(ctx, t):
        return Sum.apply(constant_in(t * ctx.share, ctx, 0), axis=ctx.axis, keepdims=ctx.keepdims)
