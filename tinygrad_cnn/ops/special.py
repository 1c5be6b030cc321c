"""Special functions as primitives: ``Erf``, the error function (for the exact GELU).

    erf(x)    = 2 / sqrt(pi) * integral from 0 to x of exp(-t^2) dt
    erf'(x)   = 2 / sqrt(pi) * exp(-x^2)

The derivative is written with Tensor ops (``exp``, ``*``), so every higher derivative comes from
the graph. erf cannot be composed from the other primitives, hence a primitive of its own.

NumPy has no erf, so the kernel applies Python's ``math.erf`` (accurate to double precision) to
one element at a time: about 0.17 microseconds an element on the test machine, some fifty times
a ufunc's cost, so the exact GELU is the slow one (``approximate="tanh"`` is not). A vectorised
approximation is the place to improve, checked against this kernel; one tried here (a series
below 2.5, a continued fraction above, about 100 array passes) was accurate but no faster.
"""
import math

import numpy as np

from ..autograd import Function

_ERF_OF_EACH = np.frompyfunc(math.erf, 1, 1)
_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)


def erf(x: np.ndarray) -> np.ndarray:
    """erf elementwise, in ``x``'s dtype."""
    return np.asarray(_ERF_OF_EACH(x), dtype=x.dtype)


class Erf(Function):
    """y = erf(x); dL/dx = g * 2 / sqrt(pi) * exp(-x^2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return erf(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (-(x * x)).exp() * _TWO_OVER_SQRT_PI
