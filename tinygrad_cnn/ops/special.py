"""Special functions as primitives: ``Erf``, the error function (for the exact GELU).

    erf(x)    = 2 / sqrt(pi) * integral from 0 to x of exp(-t^2) dt
    erf'(x)   = 2 / sqrt(pi) * exp(-x^2)

The derivative is written with Tensor ops (``exp``, ``*``), so every higher derivative comes from
the graph. erf cannot be composed from the other primitives, hence a primitive of its own.

``forward`` calls the kernel ``erf`` (``kernels/reference.py``): NumPy has none, so it applies
Python's ``math.erf`` one element at a time, some fifty times a ufunc's cost, which makes the exact
GELU the slow one (``approximate="tanh"`` is not). A vectorised approximation is the place to
improve, checked against that kernel; one tried (a series below 2.5, a continued fraction above,
about 100 array passes) was accurate but no faster.
"""
import math

from ..autograd import Function
from ..kernels import active
from .batching import elementwise

_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)


class Erf(Function):
    """y = erf x
    dL/dx = g · 2/√π · exp(−x²)
    JVP: dy = dx · 2/√π · exp(−x²)
    vmap: the same op on the batch"""

    vmap = elementwise  # batching rule (ops/batching.py): the same op on the batch

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return active().erf(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (-(x * x)).exp() * _TWO_OVER_SQRT_PI

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        return t * (-(x * x)).exp() * _TWO_OVER_SQRT_PI
