"""Scan primitive: ``Cumsum``, the running sum along one dimension."""

from ..autograd import Function
from ..kernels import active
from .batching import reduction


class Cumsum(Function):
    """y_i = Σ_{j ≤ i} x_j along ``dim``
    dL/dx_j = Σ_{i ≥ j} g_i: the running sum taken from the other end, flip(cumsum(flip(g)))
    JVP: dy = cumsum(dx)
    vmap: the same op one axis further along"""

    vmap = reduction  # batching rule (ops/batching.py): the same op one axis further

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        return active().cumsum(x, dim)

    @staticmethod
    def backward(ctx, grad):
        return grad.flip(ctx.dim).cumsum(ctx.dim).flip(ctx.dim), None

    @staticmethod
    def jvp(ctx, t, _dim):
        return Cumsum.apply(t, ctx.dim)
