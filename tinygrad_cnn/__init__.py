"""tinygrad_cnn: a NumPy-only reverse-mode autodiff library for convolutional networks."""
from . import autograd  # first: the engine, then the Tensor it builds
from .autograd import (
    AnomalyError,
    Function,
    detect_anomaly,
    enable_grad,
    grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from .random import manual_seed
from .tensor_class import (
    Tensor, arange, concatenate, eye, full, maximum, minimum, ones, ones_like, rand, randn, stack, where, zeros,
    zeros_like,
)
from .testing.gradcheck import GradcheckError, gradcheck, gradgradcheck
from . import memory
from . import nn
from . import optim
from . import viz
from .explain import explain
from .serialization import load, save

__version__ = "0.1.0"

__all__ = [
    "AnomalyError", "Function", "GradcheckError", "Tensor", "concatenate", "detect_anomaly", "enable_grad",
    "grad", "gradcheck", "gradgradcheck", "is_grad_enabled", "manual_seed", "maximum", "minimum", "nn",
    "no_grad", "set_grad_enabled", "stack", "where", "zeros", "ones", "full", "zeros_like", "ones_like", "arange",
    "eye", "randn", "rand", "optim", "save", "load", "viz", "explain", "memory",
]
