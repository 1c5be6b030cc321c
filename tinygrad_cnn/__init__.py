"""tinygrad_cnn: a NumPy-only reverse-mode autodiff library for convolutional networks.

The top-level names follow ``torch``: ``tg.tensor``, ``tg.zeros``, ``tg.cat``, ``tg.max``,
``tg.float32``, ``tg.no_grad`` ... so a PyTorch program runs with ``import tinygrad_cnn as torch``.
"""
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
from .random import manual_seed, seed
from .tensor_class import Tensor, ValuesIndices, device
from .creation import (
    arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, linspace, ones, ones_like, rand,
    rand_like, randint, randint_like, randn, randn_like, randperm, tensor, zeros, zeros_like,
)
from .functions import (
    abs, add, all, allclose, amax, amin, any, argmax, argmin, argsort, bmm, cat, ceil, chunk, clamp, clip, concat,
    concatenate, cos, cumsum, diag, div, einsum, eq, equal, exp, flatten, flip, floor, floor_divide, gather, ge, gt,
    index_select, is_tensor, isnan, le, log, logsumexp, lt, masked_fill, matmul, max, maximum, mean, min, minimum, mm,
    mul, narrow, ne, neg, norm, numel, permute, pow, prod, relu, remainder, reshape, roll, round, scatter,
    scatter_add, sigmoid, sign, sin, log_softmax, softmax, sort, split,
    sqrt, squeeze, stack, std, sub, sum, t, tanh, topk, transpose, unbind, unsqueeze, var, where,
)
from .functions import (
    broadcast_to, clamp_max, clamp_min, count_nonzero, cumprod, diff, dot, erf, expm1, ger, inner, isclose, isfinite,
    isinf, lerp, log1p, logical_and, logical_not, logical_or, logical_xor, meshgrid, nan_to_num, outer, reciprocal,
    repeat_interleave, rsqrt, square, tile, trace, tril, triu,
)
from .dtypes import (
    bool_, double, float16, float32, float64, get_default_dtype, half, int8, int16, int32, int64, long, short, uint8,
)
from . import dtypes as _dtypes
from .testing.gradcheck import GradcheckError, gradcheck, gradgradcheck
from . import cuda
from . import forward_ad
from . import func
from . import kernels
from . import memory
from . import nn
from . import optim
from . import utils
from . import viz
from .explain import explain, explain_jvp
from .serialization import load, save

# torch's dtype names that shadow Python builtins inside this package's namespace only
float, int, bool = _dtypes.float, _dtypes.int, _dtypes.bool  # noqa: A001

__version__ = "0.1.0"

# names that would shadow Python builtins (max, sum, float, bool, ...) are attributes only, left out
# of __all__, so ``from tinygrad_cnn import *`` does not replace the builtins
__all__ = [
    "AnomalyError", "Function", "GradcheckError", "Tensor", "ValuesIndices", "device", "detect_anomaly",
    "enable_grad", "grad", "gradcheck", "gradgradcheck", "is_grad_enabled", "manual_seed", "seed", "no_grad",
    "set_grad_enabled", "cuda", "nn", "optim", "save", "load", "viz", "explain", "explain_jvp", "memory", "func",
    "forward_ad",
    "kernels", "utils",
    # creation
    "arange", "as_tensor", "empty", "empty_like", "eye", "from_numpy", "full", "full_like", "linspace", "ones",
    "ones_like", "rand", "rand_like", "randint", "randint_like", "randn", "randn_like", "randperm", "tensor",
    "zeros", "zeros_like",
    # functions on tensors
    "add", "allclose", "amax", "amin", "argmax", "argmin", "argsort", "bmm", "cat", "chunk", "clamp", "clip",
    "concat", "concatenate", "cos", "cumsum", "div", "einsum", "eq", "equal", "exp", "flatten", "flip", "gather",
    "ge", "gt", "index_select", "is_tensor", "isnan", "le", "log", "logsumexp", "lt", "masked_fill", "matmul",
    "maximum", "mean", "minimum", "mm", "mul", "narrow", "ne", "neg", "norm", "numel", "permute", "prod", "relu",
    "reshape", "roll", "scatter", "scatter_add", "sigmoid", "sin", "sort", "split", "sqrt", "squeeze", "stack",
    "std", "sub", "t", "tanh", "topk", "transpose", "unbind", "unsqueeze", "var", "where", "softmax", "log_softmax",
    "ceil", "diag", "floor", "floor_divide", "remainder", "sign",
    "broadcast_to", "clamp_max", "clamp_min", "count_nonzero", "cumprod", "diff", "dot", "erf", "expm1", "ger",
    "inner", "isclose", "isfinite", "isinf", "lerp", "log1p", "logical_and", "logical_not", "logical_or",
    "logical_xor", "meshgrid", "nan_to_num", "outer", "reciprocal", "repeat_interleave", "rsqrt", "square", "tile",
    "trace", "tril", "triu",
    # dtypes
    "bool_", "double", "float16", "float32", "float64", "get_default_dtype", "half", "int8",
    "int16", "int32", "int64", "long", "short", "uint8",
]
