"""Small float32 tensors of ones for the error tests: a parameter (requires grad) or a constant."""
import numpy as np

from tinygrad_cnn import Tensor


def param(*shape, value=1.0):
    return Tensor(np.full(shape, value, dtype=np.float32), requires_grad=True)


def const(*shape, value=1.0):
    return Tensor(np.full(shape, value, dtype=np.float32))
