"""Trigonometric primitives: ``Sin`` and ``Cos``, each other's derivative."""

from ..autograd import Function
from ..kernels import active
from .batching import elementwise


class Sin(Function):
    """y = sin x
    dL/dx = g · cos x
    JVP: dy = dx · cos x
    vmap: the same op on the batch"""

    vmap = elementwise  # batching rule (ops/batching.py): the same op on the batch

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return active().sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * Cos.apply(x)

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        return t * Cos.apply(x)


class Cos(Function):
    """y = cos x
    dL/dx = −g · sin x
    JVP: dy = −dx · sin x
    vmap: the same op on the batch"""

    vmap = elementwise  # batching rule (ops/batching.py): the same op on the batch

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return active().cos(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return -(grad * Sin.apply(x))

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        return -(t * Sin.apply(x))
