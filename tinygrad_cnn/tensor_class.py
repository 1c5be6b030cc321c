"""The ``Tensor``: a NumPy array that remembers how it was computed.

Every method here either calls one primitive's ``apply`` (see ``ops/``) or composes a few of
them (``mean`` is a sum and a division, ``softmax`` lives in ``nn.functional``), so the graph
recorded for backward only ever contains primitives.

Dtypes follow NumPy: Python scalars and lists become float32, arrays keep their dtype, and a
Python number in arithmetic takes the tensor's dtype (float32 stays float32).
"""
from __future__ import annotations

import math
import numbers
import weakref

import numpy as np

from . import autograd
from .ops import elementwise as E
from .ops import matmul as M
from .ops import movement as MV
from .ops import reduce as R
from .random import get_rng

_NUMERIC_KINDS = "biuf"


def _to_array(data, dtype) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        array = data if dtype is None else data.astype(dtype, copy=False)
    elif isinstance(data, np.generic):
        array = np.asarray(data, dtype=dtype)
    elif isinstance(data, (numbers.Number, list, tuple)):
        array = _python_data_to_array(data, np.float32 if dtype is None else dtype)
    else:
        raise TypeError(
            f"Tensor data must be a number, a (nested) list of numbers or a NumPy array, not {type(data).__name__}"
        )
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"Tensor data must be numeric, got an array of dtype {array.dtype}")
    return array


def _python_data_to_array(data, dtype) -> np.ndarray:
    """A Python number or nested list as an array of ``dtype``. Converting straight to a float dtype,
    NumPy would parse strings ("1.5") and turn None into NaN: both are refused instead."""
    try:
        array = np.asarray(data)
    except ValueError as error:  # ragged nesting
        raise _python_data_error(data, error) from None
    if array.dtype.kind in _NUMERIC_KINDS:
        return array.astype(dtype, copy=False)
    _check_leaves_are_numbers(data)  # strings, None, complex, dicts ... raise a TypeError here
    try:  # what is left: objects NumPy converts one by one, such as 0-d Tensors or huge ints
        return np.asarray(data, dtype=dtype)
    except (ValueError, TypeError) as error:
        raise _python_data_error(data, error) from None


def _check_leaves_are_numbers(data) -> None:
    """Walk nested lists/tuples (iteratively) and raise a TypeError at the first leaf that is not a
    real number, a NumPy array or a Tensor."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif not isinstance(item, (numbers.Real, np.ndarray, Tensor)):
            raise TypeError(f"Tensor data must contain only real numbers, found {type(item).__name__} {item!r:.40}")


def _python_data_error(data, error) -> Exception:
    """The error to raise when NumPy cannot convert a Python number or nested list."""
    _check_leaves_are_numbers(data)  # a string, None, complex, dict, ... raises a TypeError here
    return ValueError(f"Tensor data must be a rectangular (nested) list of numbers; NumPy says: {error}")


def _shape_args(shape) -> tuple:
    """Accept both ``t.reshape(2, 3)`` and ``t.reshape((2, 3))``, as NumPy and torch do."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _normalize_index(index):
    index = index if isinstance(index, tuple) else (index,)
    return tuple(i.data if isinstance(i, Tensor) else i for i in index)


class Tensor:
    """A multi-dimensional array with reverse-mode automatic differentiation."""

    # _version_counter: a one-element list counting in-place changes, shared by every Tensor that
    # views the same memory (reshape, transpose, slices, detach), as torch does.
    __slots__ = ("data", "requires_grad", "grad", "grad_fn", "name", "_version_counter", "_hooks", "__weakref__")
    __array_ufunc__ = None  # make `ndarray * Tensor` call Tensor.__rmul__ instead of NumPy's loop

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _to_array(data, dtype)
        self.grad = None
        self.grad_fn = None
        self.name = None
        self._version_counter = [0]
        self._hooks = None
        self.requires_grad = False
        self.requires_grad_(requires_grad)

    @classmethod
    def _from_op(cls, data: np.ndarray, requires_grad: bool, grad_fn) -> Tensor:
        """Wrap an op's result without re-validating it (the hot path of every op)."""
        t = cls.__new__(cls)
        t.data, t.requires_grad, t.grad_fn = data, requires_grad, grad_fn
        t.grad = t.name = t._hooks = None
        t._version_counter = [0]
        return t

    # ---- attributes ---------------------------------------------------------------------------

    @property
    def _version(self) -> int:
        return self._version_counter[0]

    @_version.setter
    def _version(self, value: int) -> None:
        self._version_counter[0] = value

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def detach(self) -> Tensor:
        """The same data, cut from the graph (an in-place change to one is seen by the other)."""
        out = Tensor._from_op(self.data, False, None)
        out._version_counter = self._version_counter
        return out

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require gradients, this one has dtype {self.dtype}; "
                "convert it first, e.g. Tensor(x, dtype=np.float32)"
            )
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad can only be turned off on leaf tensors; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        extra = ""
        if self.dtype != np.float32:
            extra += f", dtype={self.dtype}"
        if self.grad_fn is not None:
            extra += f", grad_fn=<{type(self.grad_fn).__name__}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    __hash__ = object.__hash__  # == is elementwise, so identity hashing is kept explicitly

    # ---- autograd -----------------------------------------------------------------------------

    def backward(self, gradient=None, retain_graph=None, create_graph=False) -> None:
        """Accumulate the gradient of this tensor into ``.grad`` of every leaf it depends on.

        ``gradient`` is required unless the tensor has a single element. ``retain_graph`` defaults
        to ``create_graph`` as in PyTorch; without it the graph is freed as backward walks it.
        """
        autograd.backward(self, gradient, retain_graph, create_graph)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when the gradient with respect to this tensor is computed; a return
        value other than None replaces the gradient. Returns a handle with ``remove()``."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            if not hasattr(self.grad_fn, "output_hooks"):
                self.grad_fn.output_hooks = []
            hooks = self.grad_fn.output_hooks
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on a non-leaf tensor too (leaves always keep it). As in PyTorch it is the
        gradient after every hook, whenever they were registered; calling it twice changes nothing."""
        if self.grad_fn is None:
            return
        # A weak reference: the node must not keep its output alive (backward stores the gradient
        # only if the user still holds the tensor).
        self.grad_fn.retained_output = weakref.ref(self)

    # ---- in-place updates (for optimizers and initialisation, outside the graph) --------------

    def _check_inplace(self, op: str) -> None:
        if autograd.is_grad_enabled() and self.requires_grad:
            kind = "a leaf tensor that requires grad" if self.grad_fn is None else "a tensor that is part of the graph"
            raise RuntimeError(
                f"{op}: in-place operation on {kind} while grad mode is on. Wrap parameter updates in "
                "`with no_grad():`, or write the out-of-place form (x = x + y)."
            )

    def _inplace(self, op: str, ufunc, other) -> Tensor:
        self._check_inplace(op)
        other = other.data if isinstance(other, Tensor) else other
        try:
            ufunc(self.data, other, out=self.data, casting="same_kind")
        except (ValueError, TypeError) as error:
            raise _inplace_error(op, self, other, error) from None
        self._version += 1
        return self

    def add_(self, other, alpha=1):
        return self._inplace("add_", np.add, other if alpha == 1 else _data(other) * alpha)

    def sub_(self, other, alpha=1):
        return self._inplace("sub_", np.subtract, other if alpha == 1 else _data(other) * alpha)

    def mul_(self, other):
        return self._inplace("mul_", np.multiply, other)

    def div_(self, other):
        return self._inplace("div_", np.true_divide, other)

    def copy_(self, src):
        self._check_inplace("copy_")
        try:
            np.copyto(self.data, _data(src), casting="same_kind")
        except (ValueError, TypeError) as error:
            raise _inplace_error("copy_", self, _data(src), error) from None
        self._version += 1
        return self

    def fill_(self, value):
        self._check_inplace("fill_")
        self.data.fill(value)
        self._version += 1
        return self

    def zero_(self):
        return self.fill_(0)

    __iadd__, __isub__, __imul__, __itruediv__ = add_, sub_, mul_, div_

    def __setitem__(self, index, value) -> None:
        self._check_inplace("__setitem__")
        index = _normalize_index(index)
        value = _data(value)
        try:
            self.data[index] = value
        except ValueError:
            selected = np.shape(self.data[index])
            if np.shape(value) != selected:
                raise ValueError(f"__setitem__: a value of shape {np.shape(value)} cannot be assigned to the "
                                 f"{selected} elements selected from a tensor of shape {self.shape}") from None
            raise
        self._version += 1

    # ---- arithmetic ---------------------------------------------------------------------------

    def __add__(self, other):
        return E.Add.apply(self, _operand(other))

    def __radd__(self, other):
        return E.Add.apply(_operand(other), self)

    def __sub__(self, other):
        return E.Sub.apply(self, _operand(other))

    def __rsub__(self, other):
        return E.Sub.apply(_operand(other), self)

    def __mul__(self, other):
        return E.Mul.apply(self, _operand(other))

    def __rmul__(self, other):
        return E.Mul.apply(_operand(other), self)

    def __truediv__(self, other):
        return E.Div.apply(self, _operand(other))

    def __rtruediv__(self, other):
        return E.Div.apply(_operand(other), self)

    def __pow__(self, other):
        return E.Pow.apply(self, _operand(other))

    def __rpow__(self, other):
        return E.Pow.apply(_operand(other), self)

    def __matmul__(self, other):
        return self.matmul(other)

    def __rmatmul__(self, other):
        return Tensor(other).matmul(self) if not isinstance(other, Tensor) else other.matmul(self)

    def __neg__(self):
        return E.Neg.apply(self)

    def __pos__(self):
        return self

    # comparisons give boolean tensors outside the graph
    def __lt__(self, other):
        return Tensor(self.data < _data(other))

    def __le__(self, other):
        return Tensor(self.data <= _data(other))

    def __gt__(self, other):
        return Tensor(self.data > _data(other))

    def __ge__(self, other):
        return Tensor(self.data >= _data(other))

    def __eq__(self, other):
        return Tensor(self.data == _data(other))

    def __ne__(self, other):
        return Tensor(self.data != _data(other))

    # ---- elementwise math ---------------------------------------------------------------------

    def exp(self):
        return E.Exp.apply(self)

    def log(self):
        return E.Log.apply(self)

    def sqrt(self):
        return E.Sqrt.apply(self)

    def tanh(self):
        return E.Tanh.apply(self)

    def sigmoid(self):
        return E.Sigmoid.apply(self)

    def relu(self):
        return E.Relu.apply(self)

    def abs(self):
        return E.Abs.apply(self)

    def clip(self, min=None, max=None):
        if min is None and max is None:
            raise ValueError("clip: at least one of min and max must be given")
        return E.Clip.apply(self, min, max)

    clamp = clip

    def astype(self, dtype):
        dtype = np.dtype(dtype)
        return self if dtype == self.dtype else E.Cast.apply(self, dtype)

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    # ---- reductions (NumPy names: axis, keepdims) -----------------------------------------------

    def sum(self, axis=None, keepdims=False):
        return R.Sum.apply(self, axis=_axis("sum", axis, self.ndim), keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return R.Max.apply(self, axis=_axis("max", axis, self.ndim), keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return -((-self).max(axis=_axis("min", axis, self.ndim), keepdims=keepdims))

    def mean(self, axis=None, keepdims=False):
        axis = _axis("mean", axis, self.ndim)
        return self.sum(axis=axis, keepdims=keepdims) / _reduced_count(self.shape, axis)

    def var(self, axis=None, keepdims=False, ddof=0):
        """Variance with NumPy's default ``ddof=0`` (torch's default is the unbiased ``ddof=1``)."""
        axis = _axis("var", axis, self.ndim)
        centered = self - self.mean(axis=axis, keepdims=True)
        count = _reduced_count(self.shape, axis)
        return (centered * centered).sum(axis=axis, keepdims=keepdims) / (count - ddof)

    def std(self, axis=None, keepdims=False, ddof=0):
        return self.var(axis=axis, keepdims=keepdims, ddof=ddof).sqrt()

    def argmax(self, axis=None):
        return Tensor(np.argmax(self.data, axis=None if axis is None else check_axis("argmax", axis, self.ndim)))

    def argmin(self, axis=None):
        return Tensor(np.argmin(self.data, axis=None if axis is None else check_axis("argmin", axis, self.ndim)))

    # ---- movement (NumPy semantics) -------------------------------------------------------------

    def reshape(self, *shape):
        shape = _shape_args(shape)
        try:
            new_shape = _infer_shape(self.shape, shape)
        except ValueError as error:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {self.shape} into {shape} ({error})") from None
        if new_shape == self.shape:
            return self
        return MV.Reshape.apply(self, new_shape)

    view = reshape

    def permute(self, *axes):
        axes = _shape_args(axes)
        if len(axes) != self.ndim or not all(isinstance(a, (int, np.integer)) and -self.ndim <= a < self.ndim for a in axes) \
                or sorted(a % self.ndim for a in axes) != list(range(self.ndim)):
            raise ValueError(f"permute: {axes} is not a permutation of the {self.ndim} axes of a tensor of shape {self.shape}")
        axes = tuple(int(a) % self.ndim for a in axes)
        return self if axes == tuple(range(self.ndim)) else MV.Permute.apply(self, axes)

    def transpose(self, *axes):
        """NumPy semantics: no argument reverses the axes, otherwise ``axes`` is a permutation."""
        axes = _shape_args(axes)
        return self.permute(*(axes or range(self.ndim - 1, -1, -1)))

    @property
    def T(self):
        return self.transpose()

    def swapaxes(self, axis1, axis2):
        axis1, axis2 = check_axis("swapaxes", axis1, self.ndim), check_axis("swapaxes", axis2, self.ndim)
        axes = list(range(self.ndim))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return self.permute(*axes)

    def flatten(self, start_axis=0, end_axis=-1):
        start, end = (check_axis("flatten", a, max(self.ndim, 1)) for a in (start_axis, end_axis))
        if self.ndim == 0:
            return self.reshape(1)
        if start > end:
            raise ValueError(f"flatten: start_axis {start_axis} comes after end_axis {end_axis} for shape {self.shape}")
        return self.reshape(*self.shape[:start], -1, *self.shape[end + 1 :])

    def squeeze(self, axis=None):
        if axis is None:
            return self.reshape(*(n for n in self.shape if n != 1))
        axes = {check_axis("squeeze", a, self.ndim) for a in (axis if isinstance(axis, tuple) else (axis,))}
        for a in axes:
            if self.shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} of shape {self.shape} has size {self.shape[a]}, not 1")
        return self.reshape(*(n for i, n in enumerate(self.shape) if i not in axes))

    def unsqueeze(self, axis):
        axis = check_axis("unsqueeze", axis, self.ndim + 1)
        return self.reshape(*self.shape[:axis], 1, *self.shape[axis:])

    def expand(self, *shape):
        shape = _shape_args(shape)
        # torch convention: -1 keeps the existing size
        lead = len(shape) - self.ndim
        shape = tuple(self.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
        try:
            np.broadcast_shapes(self.shape, shape)
            if np.broadcast_shapes(self.shape, shape) != shape:
                raise ValueError
        except ValueError:
            raise ValueError(f"expand: a tensor of shape {self.shape} cannot be expanded to {shape}") from None
        return self if shape == self.shape else MV.Expand.apply(self, shape)

    broadcast_to = expand

    def pad(self, pad_width, value=0.0):
        """NumPy-style constant padding: ``pad_width`` is an int, a (before, after) pair, or one
        pair per axis."""
        pad_width = tuple(tuple(int(v) for v in p) for p in np.broadcast_to(np.asarray(pad_width, dtype=int), (self.ndim, 2)))
        if any(v < 0 for p in pad_width for v in p):
            raise ValueError(f"pad: padding must be non-negative, got {pad_width}")
        return MV.Pad.apply(self, pad_width, value)

    def __getitem__(self, index):
        return MV.GetItem.apply(self, _normalize_index(index))

    # ---- matrix product -------------------------------------------------------------------------

    def matmul(self, other):
        """NumPy ``matmul``: 1-D operands are promoted to a matrix and the extra axis removed."""
        other = other if isinstance(other, Tensor) else Tensor(other)
        if self.ndim == 0 or other.ndim == 0:
            raise ValueError(f"matmul: both operands need at least one dimension, got shapes {self.shape} and {other.shape}")
        if self.ndim == 1 or other.ndim == 1:  # say it with the shapes the caller passed
            inner_b = other.shape[0] if other.ndim == 1 else other.shape[-2]
            if self.shape[-1] != inner_b:
                which = "its only dimension" if other.ndim == 1 else "the second-to-last"
                raise ValueError(f"matmul: shapes {self.shape} and {other.shape} do not match: the last dimension of "
                                 f"the first ({self.shape[-1]}) must equal {which} of the second ({inner_b})")
        a = self.reshape(1, -1) if self.ndim == 1 else self
        b = other.reshape(-1, 1) if other.ndim == 1 else other
        out = M.MatMul.apply(a, b)
        if self.ndim == 1:
            out = out.squeeze(-2)
        if other.ndim == 1:
            out = out.squeeze(-1)
        return out

    dot = matmul

    # ---- convenience -----------------------------------------------------------------------------

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class _HookHandle:
    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _inplace_error(op: str, target: Tensor, value, error: Exception) -> Exception:
    kind = TypeError if isinstance(error, TypeError) else ValueError
    return kind(
        f"{op}: cannot write a value of shape {np.shape(value)} into a tensor of shape {target.shape} "
        f"and dtype {target.dtype} in place ({error})"
    )


def _data(x):
    return x.data if isinstance(x, Tensor) else x


_FAST_OPERAND_TYPES = (Tensor, float, int, np.ndarray)


def _operand(x):
    """Tensors pass through; Python numbers stay numbers (so NumPy keeps the tensor's dtype);
    lists and arrays become constant arrays."""
    if type(x) in _FAST_OPERAND_TYPES:  # the hot path: skips the slow ABC check of numbers.Number
        return x
    if isinstance(x, (Tensor, numbers.Number, np.ndarray)):
        return x
    if isinstance(x, np.generic):
        return np.asarray(x)
    return _to_array(x, None)


AxisError = getattr(np, "exceptions", np).AxisError  # a ValueError and an IndexError, as in NumPy


def check_axis(op: str, axis, ndim: int) -> int:
    """``axis`` as a non-negative index into ``ndim`` axes; out of range raises an AxisError naming
    ``op`` (instead of wrapping around, which ``axis % ndim`` would do)."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: an axis must be an integer, got {axis!r}")
    if ndim == 0:
        raise AxisError(f"{op}: axis {axis} is out of range: a 0-d tensor has no axes")
    if not -ndim <= axis < ndim:
        raise AxisError(f"{op}: axis {axis} is out of range for {ndim} dimensions (valid: {-ndim} to {ndim - 1})")
    return int(axis) % ndim


def _axis(op: str, axis, ndim: int):
    """A reduction's ``axis`` argument (None, an int or a sequence of ints), each checked."""
    if axis is None:
        return None
    if isinstance(axis, (int, np.integer)):
        return check_axis(op, axis, ndim)
    axes = tuple(check_axis(op, a, ndim) for a in axis)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: axis {tuple(axis)} names an axis twice")
    return axes


def _reduced_count(shape, axis) -> int:
    """How many elements a reduction over ``axis`` combines into each result."""
    if axis is None:
        return math.prod(shape)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else axis
    return math.prod(shape[a] for a in axes)


def _infer_shape(old_shape, new_shape) -> tuple:
    size = math.prod(old_shape)  # math.prod: np.prod costs microseconds on a short tuple
    unknown = [i for i, n in enumerate(new_shape) if n == -1]
    if len(unknown) > 1:
        raise ValueError("only one dimension can be -1")
    known = math.prod(n for n in new_shape if n != -1)
    shape = list(new_shape)
    if unknown:
        if known == 0 or size % known:
            raise ValueError(f"{size} elements do not divide into {new_shape}")
        shape[unknown[0]] = size // known
    if math.prod(shape) != size:
        raise ValueError(f"{size} elements cannot take shape {tuple(new_shape)}")
    return tuple(int(n) for n in shape)


# ---- functions on tensors (NumPy names) -------------------------------------------------------


def maximum(x, y) -> Tensor:
    return E.Maximum.apply(_operand(x), _operand(y))


def minimum(x, y) -> Tensor:
    return -maximum(-_as_tensor(x), -_as_tensor(y))


def where(condition, x, y) -> Tensor:
    return E.Where.apply(_data(condition), _operand(x), _operand(y))


def concatenate(tensors, axis=0) -> Tensor:
    tensors = [_as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concatenate: need at least one tensor")
    first = tensors[0]
    if first.ndim == 0 or any(t.ndim != first.ndim for t in tensors):
        raise ValueError(f"concatenate: tensors need the same number of dimensions (at least 1), got shapes "
                         f"{[t.shape for t in tensors]}")
    axis = check_axis("concatenate", axis, first.ndim)
    if any(t.shape[:axis] + t.shape[axis + 1 :] != first.shape[:axis] + first.shape[axis + 1 :] for t in tensors):
        raise ValueError(f"concatenate: shapes must match except along axis {axis}, got {[t.shape for t in tensors]}")
    return MV.Concatenate.apply(axis, *tensors)


def stack(tensors, axis=0) -> Tensor:
    tensors = [_as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: need at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    axis = check_axis("stack", axis, tensors[0].ndim + 1)
    return concatenate([t.unsqueeze(axis) for t in tensors], axis=axis)


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


# ---- factories (float32 unless told otherwise; random ones draw from the library's generator) --------


def zeros(*shape, dtype=np.float32, requires_grad=False) -> Tensor:
    return Tensor(np.zeros(_shape_args(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=np.float32, requires_grad=False) -> Tensor:
    return Tensor(np.ones(_shape_args(shape), dtype=dtype), requires_grad=requires_grad)


def full(shape, fill_value, dtype=np.float32, requires_grad=False) -> Tensor:
    return Tensor(np.full(shape, fill_value, dtype=dtype), requires_grad=requires_grad)


def zeros_like(t: Tensor, requires_grad=False) -> Tensor:
    return Tensor(np.zeros_like(_data(t)), requires_grad=requires_grad)


def ones_like(t: Tensor, requires_grad=False) -> Tensor:
    return Tensor(np.ones_like(_data(t)), requires_grad=requires_grad)


def arange(*args, dtype=None) -> Tensor:
    return Tensor(np.arange(*args, dtype=dtype))


def eye(n, m=None, dtype=np.float32) -> Tensor:
    return Tensor(np.eye(n, m, dtype=dtype))


def randn(*shape, dtype=np.float32, requires_grad=False) -> Tensor:
    return Tensor(get_rng().standard_normal(_shape_args(shape), dtype=dtype), requires_grad=requires_grad)


def rand(*shape, dtype=np.float32, requires_grad=False) -> Tensor:
    return Tensor(get_rng().random(_shape_args(shape), dtype=dtype), requires_grad=requires_grad)
