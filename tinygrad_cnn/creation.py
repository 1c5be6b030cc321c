"""Creating tensors, with torch's names and dtype rules.

``tensor(data)`` infers the dtype as ``torch.tensor`` does: Python ints give int64, bools bool,
floats float32 (the default float type); a NumPy array or a Tensor keeps its dtype. The shaped
factories (``zeros``, ``ones``, ``empty``, ``rand``, ...) take the size as ``zeros(2, 3)`` or
``zeros((2, 3))`` and give float32 unless ``dtype=`` says otherwise; ``arange`` gives int64 when
every bound is an integer. Random factories draw from the library's generator (``manual_seed``).
"""
from __future__ import annotations

import builtins
import numbers

import numpy as np

from .random import get_rng
from .tensor_class import Tensor, _data, _shape_args, device

DEFAULT_FLOAT = np.float32


def _dtype(dtype, default=DEFAULT_FLOAT):
    return np.dtype(default if dtype is None else dtype)


def _check_device(where):
    if where is not None:
        device(where)  # raises for anything but the CPU


def _leaf(array: np.ndarray, requires_grad: bool) -> Tensor:
    return Tensor(array, requires_grad=requires_grad)


# ---- from data --------------------------------------------------------------------------------------


def _python_dtype(data):
    """torch.tensor's rule for Python data: all bools -> bool, all ints (or bools) -> int64, else float32."""
    stack, kinds = [data], set()
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, (Tensor, np.ndarray, np.generic)):
            kinds.add(np.asarray(_data(item)).dtype.kind)
        elif isinstance(item, builtins.bool):
            kinds.add("b")
        elif isinstance(item, numbers.Integral):
            kinds.add("i")
        else:
            kinds.add("f")
    if kinds <= {"b"} and kinds:
        return np.bool_
    if kinds <= {"b", "i", "u"} and kinds:
        return np.int64
    return DEFAULT_FLOAT


def tensor(data, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of ``data`` (a number, a nested list, a NumPy array or a Tensor);
    the dtype as ``torch.tensor`` infers it, unless ``dtype=`` is given."""
    _check_device(device)
    if isinstance(data, (Tensor, np.ndarray, np.generic)):
        array = np.array(_data(data), dtype=dtype, copy=True)
    else:
        array = Tensor(data, dtype=_python_dtype(data) if dtype is None else dtype).data
    return Tensor(array, requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a tensor, sharing memory with it when it already is an array of that dtype."""
    _check_device(device)
    if isinstance(data, Tensor):
        return data if dtype is None or np.dtype(dtype) == data.dtype else data.astype(dtype)
    if isinstance(data, np.ndarray):
        return Tensor(data if dtype is None else data.astype(dtype, copy=False))
    return tensor(data, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``array``: a change to one is seen in the other."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a NumPy array, got {type(array).__name__}")
    return Tensor(array)


# ---- shaped factories -------------------------------------------------------------------------------


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    _check_device(device)
    return _leaf(np.zeros(_shape_args(size), dtype=_dtype(dtype)), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    _check_device(device)
    return _leaf(np.ones(_shape_args(size), dtype=_dtype(dtype)), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uninitialised memory, as torch (write it before you read it)."""
    _check_device(device)
    return _leaf(np.empty(_shape_args(size), dtype=_dtype(dtype)), requires_grad)


def _fill_dtype(fill_value):
    if isinstance(fill_value, builtins.bool):
        return np.bool_
    return np.int64 if isinstance(fill_value, numbers.Integral) else DEFAULT_FLOAT


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``size`` filled with ``fill_value``; the dtype follows the value (int -> int64, as torch)."""
    _check_device(device)
    size = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
    return _leaf(np.full(size, _data(fill_value), dtype=_dtype(dtype, _fill_dtype(fill_value))), requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    _check_device(device)
    return _leaf(np.eye(n, m, dtype=_dtype(dtype)), requires_grad)


def _like_dtype(like, dtype):
    if dtype is not None:
        return np.dtype(dtype)
    return like.dtype if isinstance(like, Tensor) else np.asarray(like).dtype


def _shape_of(like) -> tuple:
    # a Tensor's own shape, not its array's: inside vmap a tensor's array is the whole batch
    return like.shape if isinstance(like, Tensor) else np.shape(like)


def zeros_like(input, dtype=None, device=None, requires_grad=False) -> Tensor:  # noqa: A002 - torch's name
    return zeros(_shape_of(input), dtype=_like_dtype(input, dtype), device=device, requires_grad=requires_grad)


def ones_like(input, dtype=None, device=None, requires_grad=False) -> Tensor:  # noqa: A002
    return ones(_shape_of(input), dtype=_like_dtype(input, dtype), device=device, requires_grad=requires_grad)


def empty_like(input, dtype=None, device=None, requires_grad=False) -> Tensor:  # noqa: A002
    return empty(_shape_of(input), dtype=_like_dtype(input, dtype), device=device, requires_grad=requires_grad)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:  # noqa: A002
    return full(_shape_of(input), fill_value, dtype=_like_dtype(input, dtype), device=device,
                requires_grad=requires_grad)


# ---- ranges -----------------------------------------------------------------------------------------


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``[start, end)`` in steps of ``step`` (``arange(n)`` counts from 0). int64 when every bound
    is an integer, else float32, as torch."""
    _check_device(device)
    if end is None:
        start, end = 0, start
    bounds = [_data(v) for v in (start, end, step)]
    integral = all(isinstance(v, numbers.Integral) or (isinstance(v, np.ndarray) and v.dtype.kind in "iub")
                   for v in bounds)
    default = np.int64 if integral else DEFAULT_FLOAT
    # computed in float64 / int64, then cast: float32 steps would drift from torch's values
    values = np.arange(*bounds, dtype=np.int64 if integral else np.float64)
    return _leaf(values.astype(_dtype(dtype, default)), requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included."""
    _check_device(device)
    return _leaf(np.linspace(_data(start), _data(end), int(steps)).astype(_dtype(dtype)), requires_grad)


# ---- random -----------------------------------------------------------------------------------------


def _float_dtype(op: str, dtype):
    dtype = _dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating-point dtype, got {dtype}")
    return dtype


def _draw(op: str, draw, size, dtype) -> np.ndarray:
    """``draw(size)`` from the generator in ``dtype`` (NumPy draws float32 and float64 directly;
    other float types are drawn in float32 and cast)."""
    dtype = _float_dtype(op, dtype)
    if dtype in (np.float32, np.float64):
        return draw(_shape_args(size), dtype=dtype)
    return draw(_shape_args(size), dtype=np.float32).astype(dtype)


def _sampled(op: str, sample, shape: tuple, requires_grad: bool) -> Tensor:
    """``sample(shape)``, or inside vmap what its ``randomness`` asks for: refused, one draw for the
    batch, or one per sample (``batching.draw``)."""
    from . import batching

    values = batching.draw(sample, shape, op)
    return values if isinstance(values, Tensor) else _leaf(values, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform on ``[0, 1)``."""
    _check_device(device)
    return _sampled("rand", lambda shape: _draw("rand", get_rng().random, shape, dtype), _shape_args(size), requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal."""
    _check_device(device)
    return _sampled("randn", lambda shape: _draw("randn", get_rng().standard_normal, shape, dtype), _shape_args(size),
                    requires_grad)


def randint(low, high=None, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Integers uniform on ``[low, high)`` (``randint(high, size)`` starts at 0); int64 by default."""
    _check_device(device)
    if size is None:  # torch's randint(high, size)
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint: needs a size, e.g. randint(0, 10, (3,))")
    size = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
    return _sampled("randint", lambda shape: get_rng().integers(low, high, shape).astype(_dtype(dtype, np.int64)), size,
                    requires_grad)


def rand_like(input, dtype=None, device=None, requires_grad=False) -> Tensor:  # noqa: A002
    return rand(_shape_of(input), dtype=_like_dtype(input, dtype), device=device, requires_grad=requires_grad)


def randn_like(input, dtype=None, device=None, requires_grad=False) -> Tensor:  # noqa: A002
    return randn(_shape_of(input), dtype=_like_dtype(input, dtype), device=device, requires_grad=requires_grad)


def randint_like(input, low=0, high=None, dtype=None, device=None, requires_grad=False) -> Tensor:  # noqa: A002
    if high is None:  # torch's randint_like(input, high)
        low, high = 0, low
    return randint(low, high, _shape_of(input), dtype=_like_dtype(input, dtype), device=device,
                   requires_grad=requires_grad)


def randperm(n, dtype=None, device=None, requires_grad=False) -> Tensor:
    _check_device(device)

    def permutations(shape):  # one permutation, or under vmap one per sample (a row each)
        if len(shape) == 1:
            return get_rng().permutation(n).astype(_dtype(dtype, np.int64))
        return get_rng().permuted(np.broadcast_to(np.arange(n), shape), axis=-1).astype(_dtype(dtype, np.int64))

    return _sampled("randperm", permutations, (n,), requires_grad)
