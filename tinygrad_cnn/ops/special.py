"""Special functions as primitives: ``Erf``, the error function (for the exact GELU).

    erf(x)    = 2 / sqrt(pi) * integral from 0 to x of exp(-t^2) dt
    erf'(x)   = 2 / sqrt(pi) * exp(-x^2)

The derivative is written with Tensor ops (``exp``, ``*``), so every higher derivative comes from
the graph. erf cannot be composed from the other primitives, hence a primitive of its own.

NumPy has no erf, so the kernel applies Python's ``math.erf`` (accurate to double precision) to
one element at a time: about 0.1 microseconds an element, slow next to a ufunc but a small part
of a layer that also convolves. A vectorised rational approximation would be faster and is a
place to improve later, checked against this one.
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
