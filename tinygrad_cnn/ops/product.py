"""Product primitive: ``Prod``, the product of the elements along one dimension."""
import numpy as np

from ..autograd import Function


def prod(x: np.ndarray, dim: int, keepdim: bool) -> np.ndarray:
    return np.prod(x, axis=dim, keepdims=keepdim)


class Prod(Function):
    """``y = prod_j x_j`` along ``dim``; ``dL/dx_i = dL/dy * prod_{j != i} x_j``.

    The product of the others is taken directly (not as ``y / x_i``), so it is right where some
    ``x_i`` is zero: it is the product over a square of copies of ``x`` whose diagonal is set to 1."""

    @staticmethod
    def forward(ctx, x, dim, keepdim=False):
        ctx.save_for_backward(x)
        ctx.dim, ctx.keepdim = dim, keepdim
        return prod(x, dim, keepdim)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        dim, n = ctx.dim, x.shape[ctx.dim]
        # copies[..., i, j, ...] = x_j, with 1 where i == j; its product over j is prod_{j != i} x_j
        square = x.unsqueeze(dim).expand(*x.shape[:dim], n, *x.shape[dim:])
        diagonal = np.eye(n, dtype=bool).reshape((n, n) + (1,) * (x.ndim - dim - 1))
        others = square.masked_fill(diagonal, 1).prod(dim + 1)
        return (grad if ctx.keepdim else grad.unsqueeze(dim)) * others, None, None
