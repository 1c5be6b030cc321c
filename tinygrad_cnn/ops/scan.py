"""Scan primitive: ``Cumsum``, the running sum along one dimension."""
import numpy as np

from ..autograd import Function


def cumsum(x: np.ndarray, dim: int) -> np.ndarray:
    return np.cumsum(x, axis=dim)


class Cumsum(Function):
    """``y_i = sum_{j <= i} x_j`` along ``dim``; ``dL/dx_j = sum_{i >= j} dL/dy_i``, the running sum
    taken from the other end: ``flip(cumsum(flip(dL/dy)))``."""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        return cumsum(x, dim)

    @staticmethod
    def backward(ctx, grad):
        return grad.flip(ctx.dim).cumsum(ctx.dim).flip(ctx.dim), None
