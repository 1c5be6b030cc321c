"""The ``torch.*`` functions on tensors: ``tg.max(x, 1)``, ``tg.cat([a, b])``, ``tg.einsum(...)``.

Each is the Tensor method of the same name with the tensor as first argument (so the rules live
in one place, tensor_class.py), and accepts a NumPy array or a number where a Tensor is expected.
``einsum`` and ``matmul(out=)`` have no method and are written here.
"""
from __future__ import annotations

import builtins

import numpy as np

from .ops import einsum as EIN
from .tensor_class import (  # noqa: F401 - re-exported: the functions that were already module-level
    Tensor, _as_tensor, concatenate, maximum, minimum, stack, where,
)

cat = concat = concatenate


def _t(x) -> Tensor:
    return _as_tensor(x)


# ---- reductions and sorting ---------------------------------------------------------------------------


def sum(input, dim=None, keepdim=False, dtype=None):  # noqa: A001 - torch's name
    return _t(input).sum(dim, keepdim, dtype)


def mean(input, dim=None, keepdim=False, dtype=None):
    return _t(input).mean(dim, keepdim, dtype)


def prod(input, dim=None, keepdim=False, dtype=None):
    return _t(input).prod(dim, keepdim, dtype)


def max(input, dim=None, keepdim=False):  # noqa: A001
    """The largest element; ``max(x, dim)`` the pair ``(values, indices)``; ``max(x, y)`` the elementwise maximum."""
    return _t(input).max(dim, keepdim)


def min(input, dim=None, keepdim=False):  # noqa: A001
    return _t(input).min(dim, keepdim)


def amax(input, dim=None, keepdim=False):
    return _t(input).amax(dim, keepdim)


def amin(input, dim=None, keepdim=False):
    return _t(input).amin(dim, keepdim)


def argmax(input, dim=None, keepdim=False):
    return _t(input).argmax(dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    return _t(input).argmin(dim, keepdim)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return _t(input).var(dim, unbiased, keepdim, correction=correction)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return _t(input).std(dim, unbiased, keepdim, correction=correction)


def logsumexp(input, dim=None, keepdim=False):
    return _t(input).logsumexp(dim, keepdim)


def cumsum(input, dim, dtype=None):
    return _t(input).cumsum(dim, dtype)


def norm(input, p="fro", dim=None, keepdim=False):
    return _t(input).norm(p, dim, keepdim)


def all(input, dim=None, keepdim=False):  # noqa: A001
    return _t(input).all(dim, keepdim)


def any(input, dim=None, keepdim=False):  # noqa: A001
    return _t(input).any(dim, keepdim)


def sort(input, dim=-1, descending=False, stable=False):
    return _t(input).sort(dim, descending, stable)


def argsort(input, dim=-1, descending=False, stable=False):
    return _t(input).argsort(dim, descending, stable)


def topk(input, k, dim=-1, largest=True, sorted=True):  # noqa: A002
    return _t(input).topk(k, dim, largest, sorted)


# ---- elementwise ---------------------------------------------------------------------------------------


def abs(input):  # noqa: A001
    return _t(input).abs()


def exp(input):
    return _t(input).exp()


def log(input):
    return _t(input).log()


def sqrt(input):
    return _t(input).sqrt()


def sin(input):
    return _t(input).sin()


def cos(input):
    return _t(input).cos()


def tanh(input):
    return _t(input).tanh()


def sigmoid(input):
    return _t(input).sigmoid()


def relu(input):
    return _t(input).relu()


def _into(out, result, op: str):
    """``result``, also written into ``out`` when given (torch's ``out=``: same shape, in place)."""
    if out is None:
        return result
    if out.shape != result.shape:
        raise ValueError(f"{op}: out= has shape {out.shape}, the result has shape {result.shape}")
    return out.copy_(result)


def add(input, other, alpha=1, *, out=None):
    return _into(out, _t(input).add(other, alpha), "add")


def sub(input, other, alpha=1, *, out=None):
    return _into(out, _t(input).sub(other, alpha), "sub")


def mul(input, other, *, out=None):
    return _into(out, _t(input) * other, "mul")


def div(input, other, *, out=None):
    return _into(out, _t(input) / other, "div")


def softmax(input, dim=None, dtype=None):
    from .nn import functional as F

    x = _t(input) if dtype is None else _t(input).astype(dtype)
    return F.softmax(x, dim=-1 if dim is None else dim)


def log_softmax(input, dim=None, dtype=None):
    from .nn import functional as F

    x = _t(input) if dtype is None else _t(input).astype(dtype)
    return F.log_softmax(x, dim=-1 if dim is None else dim)


def neg(input):
    return -_t(input)


def pow(input, exponent):  # noqa: A001
    return _t(input) ** exponent


def clamp(input, min=None, max=None):  # noqa: A002
    return _t(input).clamp(min, max)


clip = clamp


def eq(input, other):
    return _t(input).eq(other)


def ne(input, other):
    return _t(input).ne(other)


def lt(input, other):
    return _t(input).lt(other)


def le(input, other):
    return _t(input).le(other)


def gt(input, other):
    return _t(input).gt(other)


def ge(input, other):
    return _t(input).ge(other)


def equal(input, other) -> bool:
    return _t(input).equal(other)


def allclose(input, other, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
    return bool(np.allclose(_t(input).data, _t(other).data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def isnan(input):
    return _t(input).isnan()


def masked_fill(input, mask, value):
    return _t(input).masked_fill(mask, value)


# ---- movement and indexing ---------------------------------------------------------------------------


def reshape(input, shape):
    return _t(input).reshape(shape)


def flatten(input, start_dim=0, end_dim=-1):
    return _t(input).flatten(start_dim, end_dim)


def squeeze(input, dim=None):
    return _t(input).squeeze(dim)


def unsqueeze(input, dim):
    return _t(input).unsqueeze(dim)


def transpose(input, dim0, dim1):
    return _t(input).transpose(dim0, dim1)


def permute(input, dims):
    return _t(input).permute(dims)


def t(input):
    return _t(input).t()


def flip(input, dims):
    return _t(input).flip(dims)


def roll(input, shifts, dims=None):
    return _t(input).roll(shifts, dims)


def split(tensor, split_size_or_sections, dim=0):
    return _t(tensor).split(split_size_or_sections, dim)


def chunk(input, chunks, dim=0):
    return _t(input).chunk(chunks, dim)


def unbind(input, dim=0):
    return _t(input).unbind(dim)


def narrow(input, dim, start, length):
    return _t(input).narrow(dim, start, length)


def gather(input, dim, index):
    return _t(input).gather(dim, index)


def scatter(input, dim, index, src=None, *, value=None):
    return _t(input).scatter(dim, index, src, value=value)


def scatter_add(input, dim, index, src):
    return _t(input).scatter_add(dim, index, src)


def index_select(input, dim, index):
    return _t(input).index_select(dim, index)


def numel(input) -> int:
    return _t(input).numel()


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


# ---- products -------------------------------------------------------------------------------------------


def matmul(input, other, *, out=None):
    """The matrix product (NumPy/torch ``matmul`` rules for 1-D and batched operands). With ``out=``
    the result is also written into that tensor, which must have the result's shape."""
    return _into(out, _t(input).matmul(other), "matmul")


mm = matmul
bmm = matmul


def einsum(equation: str, *operands):
    """Einstein summation, as ``torch.einsum``: ``einsum("bij,bjk->bik", a, b)``; operands may also
    be given as one list. ``...`` stands for broadcast dimensions; without ``->`` the output has
    the letters that appear once, in alphabetical order."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    operands = [_t(x) for x in operands]
    explicit, sizes = EIN.explicit_equation(equation.replace(" ", ""), [x.shape for x in operands])
    inputs = explicit.split("->")[0].split(",")
    # size-1 dimensions broadcast against the letter's size in other operands (NumPy's einsum would refuse)
    operands = [x.expand(*(sizes[c] for c in letters)) if x.shape != tuple(sizes[c] for c in letters) else x
                for x, letters in zip(operands, inputs)]
    return EIN.Einsum.apply(explicit, *operands)


def floor(input):
    return _t(input).floor()


def ceil(input):
    return _t(input).ceil()


def round(input, decimals=0):  # noqa: A001
    return _t(input).round(decimals)


def sign(input):
    return _t(input).sign()


def remainder(input, other):
    return _t(input).remainder(other)


def floor_divide(input, other):
    return _t(input).floor_divide(other)


def diag(input, diagonal=0):
    """A 1-D tensor as the ``diagonal``-th diagonal of a square matrix (zeros elsewhere), or a 2-D
    tensor's ``diagonal``-th diagonal as a 1-D tensor, as ``torch.diag``. Differentiable both ways."""
    from .ops.movement import IndexAdd

    x = _t(input)
    if x.ndim == 1:
        n = x.shape[0] + builtins.abs(diagonal)
        steps = np.arange(x.shape[0])
        return IndexAdd.apply(x, (steps + builtins.max(-diagonal, 0), steps + builtins.max(diagonal, 0)), (n, n))
    if x.ndim == 2:
        rows, cols = x.shape
        length = builtins.max(0, builtins.min(rows + builtins.min(diagonal, 0), cols - builtins.max(diagonal, 0)))
        steps = np.arange(length)
        return x[steps + builtins.max(-diagonal, 0), steps + builtins.max(diagonal, 0)]
    raise ValueError(f"diag: expected a 1-D or 2-D tensor, got shape {x.shape}")


# ---- more of torch's everyday functions (the Tensor methods of the same names) -------------------------


def square(input):
    return _t(input).square()


def reciprocal(input):
    return _t(input).reciprocal()


def rsqrt(input):
    return _t(input).rsqrt()


def erf(input):
    return _t(input).erf()


def log1p(input):
    return _t(input).log1p()


def expm1(input):
    return _t(input).expm1()


def isinf(input):
    return _t(input).isinf()


def isfinite(input):
    return _t(input).isfinite()


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return _t(input).isclose(other, rtol, atol, equal_nan)


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    return _t(input).nan_to_num(nan, posinf, neginf)


def clamp_min(input, min):  # noqa: A002
    return _t(input).clamp_min(min)


def clamp_max(input, max):  # noqa: A002
    return _t(input).clamp_max(max)


def lerp(input, end, weight):
    return _t(input).lerp(end, weight)


def logical_and(input, other):
    return _t(input).logical_and(other)


def logical_or(input, other):
    return _t(input).logical_or(other)


def logical_xor(input, other):
    return _t(input).logical_xor(other)


def logical_not(input):
    return _t(input).logical_not()


def count_nonzero(input, dim=None):
    return _t(input).count_nonzero(dim)


def tril(input, diagonal=0):
    return _t(input).tril(diagonal)


def triu(input, diagonal=0):
    return _t(input).triu(diagonal)


def outer(input, vec2):
    return _t(input).outer(vec2)


ger = outer


def dot(input, other):
    """The inner product of two 1-D tensors of the same length, as ``torch.dot`` (the method
    ``Tensor.dot`` stays NumPy's, the matrix product, which torch's refuses for 2-D operands)."""
    input, other = _t(input), _t(other)
    if input.ndim != 1 or other.ndim != 1 or input.shape != other.shape:
        raise ValueError(f"dot: expected two 1-D tensors of the same length, got shapes {input.shape} and {other.shape}")
    return (input * other).sum()


def inner(input, other):
    return _t(input).inner(other)


def trace(input):
    return _t(input).trace()


def cumprod(input, dim, dtype=None):
    return _t(input).cumprod(dim, dtype)


def diff(input, n=1, dim=-1, prepend=None, append=None):
    return _t(input).diff(n, dim, prepend, append)


def repeat_interleave(input, repeats, dim=None, *, output_size=None):
    return _t(input).repeat_interleave(repeats, dim, output_size=output_size)


def tile(input, dims):
    return _t(input).tile(dims)


def broadcast_to(input, size):
    return _t(input).broadcast_to(size)


def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids from 1-D tensors, as ``torch.meshgrid``: with ``indexing="ij"`` output k
    varies along dimension k; with ``"xy"`` (NumPy's default) the first two dimensions are swapped,
    so for two inputs the grids have shape ``(len(y), len(x))``. Each grid is a broadcast view of its
    input, so gradients sum back over the copies."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    tensors = [_t(x) for x in tensors]
    for x in tensors:
        if x.ndim > 1:
            raise ValueError(f"meshgrid: expected 0-D or 1-D tensors, got shape {x.shape}")
    tensors = [x.reshape(-1) for x in tensors]
    positions = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1:
        positions[0], positions[1] = 1, 0
    shape = [0] * len(tensors)
    for x, p in zip(tensors, positions):
        shape[p] = x.shape[0]
    return tuple(x.reshape(*(-1 if d == p else 1 for d in range(len(shape)))).expand(*shape)
                 for x, p in zip(tensors, positions))
