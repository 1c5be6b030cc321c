"""Product primitive: ``Prod``, the product of the elements along one dimension."""
import numpy as np

from ..autograd import Function
from ..kernels import active
from .batching import reduction


class Prod(Function):
    """y = Π_j x_j along ``dim``
    dL/dx_i = g · Π_{j ≠ i} x_j
    JVP: dy = Σ_i dx_i · Π_{j ≠ i} x_j
    vmap: the same op one axis further along

    The product of the others is taken directly (not as ``y / x_i``), so it is right where some
    ``x_i`` is zero: it is the product over a square of copies of ``x`` whose diagonal is set to 1."""

    vmap = reduction  # batching rule (ops/batching.py): the same op one axis further

    @staticmethod
    def forward(ctx, x, dim, keepdim=False):
        ctx.save_for_backward(x)
        ctx.dim, ctx.keepdim = dim, keepdim
        return active().prod(x, dim, keepdim)

    @staticmethod
    def backward(ctx, grad):
        return (grad if ctx.keepdim else grad.unsqueeze(ctx.dim)) * _product_of_the_others(ctx), None, None

    @staticmethod
    def jvp(ctx, t, _dim, _keepdim=None):
        return (t * _product_of_the_others(ctx)).sum(dim=ctx.dim, keepdim=ctx.keepdim)


def _product_of_the_others(ctx):
    """For each x_i, the product of the other elements along ``dim``, in Tensor ops (differentiable)."""
    (x,) = ctx.saved_tensors
    dim, n = ctx.dim, x.shape[ctx.dim]
    # copies[..., i, j, ...] = x_j, with 1 where i == j; its product over j is prod_{j != i} x_j
    square = x.unsqueeze(dim).expand(*x.shape[:dim], n, *x.shape[dim:])
    diagonal = np.eye(n, dtype=bool).reshape((n, n) + (1,) * (x.ndim - dim - 1))
    return square.masked_fill(diagonal, 1).prod(dim + 1)
