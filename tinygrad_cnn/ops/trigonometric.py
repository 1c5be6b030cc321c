"""Trigonometric primitives: ``Sin`` and ``Cos``, each other's derivative."""
import numpy as np

from ..autograd import Function


class Sin(Function):
    """``y = sin(x)``; ``dL/dx = dL/dy * cos(x)``."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * Cos.apply(x)


class Cos(Function):
    """``y = cos(x)``; ``dL/dx = -dL/dy * sin(x)``."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cos(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return -(grad * Sin.apply(x))
