"""Add an op with ``tinygrad_cnn.Function`` and prove its gradient with the testing kit.

softplus(x) = log(1 + e^x), written stably as max(x, 0) + log(1 + e^-|x|). Its derivative is
sigmoid(x). The backward is written with Tensor operations (``x.sigmoid()`` on the saved input,
not on ``x.data``), so it is itself differentiable and the second-order check passes too.

Run it:  python examples/custom_op.py        (checks the op on a handful of random inputs)
Or test: python -m pytest examples/custom_op.py
The testing kit draws inputs with Hypothesis: install it with  pip install -e ".[testing]"
"""
import sys

import numpy as np

try:
    from hypothesis import given, settings
except ImportError:  # the kit's strategies need it; say so instead of a traceback
    sys.exit('examples/custom_op.py needs Hypothesis for the testing kit: pip install -e ".[testing]"')

from tinygrad_cnn import Function
from tinygrad_cnn.testing import check_dtype_preserved, check_gradients
from tinygrad_cnn.testing.strategies import tensors


class Softplus(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x.sigmoid()  # d softplus / dx = sigmoid(x)


def softplus(x):
    return Softplus.apply(x)


@settings(max_examples=10, deadline=None)
@given(x=tensors())  # shapes and values drawn by Hypothesis
def test_softplus_gradients(x):
    check_gradients(softplus, x)  # first and second derivatives vs. central differences
    check_dtype_preserved(softplus, x)  # float32 in, float32 out


if __name__ == "__main__":
    test_softplus_gradients()
    print("softplus: first and second derivatives match central differences on 10 random inputs")
