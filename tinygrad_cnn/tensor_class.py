"""The ``Tensor``: a NumPy array that remembers how it was computed.

Every method here either calls one primitive's ``apply`` (see ``ops/``) or composes a few of
them (``mean`` is a sum and a division, ``max(dim)`` an argmax and a gather, ``softmax`` lives
in ``nn.functional``), so the graph recorded for backward only ever contains primitives.

The methods speak PyTorch: ``size()`` is a method, ``max(dim)`` returns values and indices,
``var`` is unbiased, ``transpose(d0, d1)`` swaps two dimensions, and every dimension argument is
``dim=``/``keepdim=``. NumPy spellings that do not conflict are accepted too (``axis=`` and
``keepdims=``, ``.shape``, ``.ndim``, ``.T``, ``astype``, ``swapaxes``); ``.data`` is the NumPy array.

Dtypes: the ``Tensor(data)`` constructor is torch's ``torch.Tensor``: Python numbers and lists
become float32, NumPy arrays keep their dtype. ``tinygrad_cnn.tensor(data)`` (in creation.py)
follows ``torch.tensor``: Python ints give int64, bools bool, floats float32. A Python number in
arithmetic takes the tensor's dtype (float32 stays float32).
"""
from __future__ import annotations

import builtins
import math
import numbers
import operator
import weakref
from typing import NamedTuple

import numpy as np

from . import autograd
from .modes import _vmap_depth
from .ops import elementwise as E
from .ops import indexing as IX
from .ops import matmul as M
from .ops import movement as MV
from .ops import product as P
from .ops import reduce as R
from .ops import scan as SC
from .ops import trigonometric as TR
from .kernels.reference import scatter_positions

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


class device:
    """Where a tensor's data lives: always the CPU (NumPy). ``device("cpu") == "cpu"`` is true, so
    code written for torch that compares or passes devices keeps working."""

    __slots__ = ("type", "index")

    def __init__(self, type="cpu", index=None):  # noqa: A002 - torch's parameter name
        type = str(type)
        if type.split(":")[0] != "cpu":
            raise RuntimeError(f"device {type!r}: tinygrad_cnn runs on the CPU only (NumPy); use 'cpu'")
        self.type, self.index = "cpu", index

    def __eq__(self, other):
        return isinstance(other, (device, str)) and str(other).split(":")[0] == "cpu"

    __hash__ = object.__hash__

    def __str__(self):
        return "cpu"

    def __repr__(self):
        return "device(type='cpu')"


Device = device  # for the methods below, whose ``device`` parameter hides the class
CPU = device("cpu")


class ValuesIndices(NamedTuple):
    """What ``max(dim)``, ``min(dim)``, ``sort`` and ``topk`` return, as torch's ``return_types``:
    unpack it (``values, indices = x.max(1)``) or read ``.values`` and ``.indices``."""

    values: "Tensor"
    indices: "Tensor"


def _normalize_index(index):
    index = index if isinstance(index, tuple) else (index,)
    return tuple(i.data if isinstance(i, Tensor) else i for i in index)


class Tensor:
    """A multi-dimensional array with reverse-mode automatic differentiation."""

    # _version_counter: a one-element list counting in-place changes, shared by every Tensor that
    # views the same memory (reshape, transpose, slices, detach), as torch does.
    # _tangents: forward mode's tangents, {level: Tensor} (see forward_ad.py), or None.
    # _post_accumulate_hooks: called after backward writes .grad (register_post_accumulate_grad_hook).
    __slots__ = ("data", "requires_grad", "grad", "grad_fn", "name", "_version_counter", "_hooks", "_tangents",
                 "_post_accumulate_hooks", "__weakref__")
    __array_ufunc__ = None  # make `ndarray * Tensor` call Tensor.__rmul__ instead of NumPy's loop

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _to_array(data, dtype)
        self.grad = None
        self.grad_fn = None
        self.name = None
        self._version_counter = [0]
        self._hooks = self._tangents = self._post_accumulate_hooks = None
        self.requires_grad = False
        self.requires_grad_(requires_grad)

    @classmethod
    def _from_op(cls, data: np.ndarray, requires_grad: bool, grad_fn) -> Tensor:
        """Wrap an op's result without re-validating it (the hot path of every op)."""
        t = cls.__new__(cls)
        t.data, t.requires_grad, t.grad_fn = data, requires_grad, grad_fn
        t.grad = t.name = t._hooks = t._tangents = t._post_accumulate_hooks = None
        t._version_counter = [0]
        return t

    # ---- attributes ---------------------------------------------------------------------------

    @property
    def _version(self) -> int:
        return self._version_counter[0]

    @_version.setter
    def _version(self, value: int) -> None:
        self._version_counter[0] = value

    # The array's own attributes, read through a C getter rather than a Python function: the engine
    # reads shapes on every op of a backward pass, and this costs about 950 instructions a read
    # instead of 1,300 (cachegrind). (A BatchedTensor defines its own, one sample's.)
    shape = property(operator.attrgetter("data.shape"), doc="The shape, a tuple (as torch's ``.shape``).")
    ndim = property(operator.attrgetter("data.ndim"), doc="The number of dimensions.")
    dtype = property(operator.attrgetter("data.dtype"), doc="The NumPy dtype of the values.")

    def size(self, dim=None):
        """The shape, or with ``dim`` the length of that dimension (torch: ``size`` is a method;
        ``numel()`` counts the elements)."""
        return self.data.shape if dim is None else self.data.shape[check_axis("size", dim, self.ndim)]

    def numel(self) -> int:
        return self.data.size

    def dim(self) -> int:
        return self.data.ndim

    ndimension = dim

    @property
    def device(self) -> device:
        return CPU

    @property
    def is_cuda(self) -> bool:
        return False

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    def element_size(self) -> int:
        return self.data.itemsize

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        """The NumPy array itself (shared memory, as torch's ``numpy()``)."""
        return self.data

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """So ``np.asarray(t)``, matplotlib and any NumPy function accept a Tensor (NumPy 2's
        protocol: ``copy=False`` must not copy, ``copy=True`` must)."""
        if copy is False and dtype is not None and np.dtype(dtype) != self.dtype:
            raise ValueError(f"__array__: a tensor of dtype {self.dtype} cannot become {np.dtype(dtype)} without a copy")
        array = self.data if dtype is None else self.data.astype(dtype, copy=False)
        return array.copy() if copy and array is self.data else array

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def contiguous(self) -> Tensor:
        """Itself: every op here gives an array NumPy can use as it is (torch code calls this before ``view``)."""
        return self

    def is_contiguous(self) -> bool:
        return True

    # new tensors with this one's dtype, as torch's ``new_*`` methods
    def new_zeros(self, *size, dtype=None, requires_grad=False) -> Tensor:
        return Tensor(np.zeros(_shape_args(size), dtype=self.dtype if dtype is None else dtype), requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, requires_grad=False) -> Tensor:
        return Tensor(np.ones(_shape_args(size), dtype=self.dtype if dtype is None else dtype), requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, requires_grad=False) -> Tensor:
        return Tensor(np.full(size, fill_value, dtype=self.dtype if dtype is None else dtype), requires_grad=requires_grad)

    def new_tensor(self, data, dtype=None, requires_grad=False) -> Tensor:
        return Tensor(np.array(_data(data), dtype=self.dtype if dtype is None else dtype), requires_grad=requires_grad)

    def clone(self) -> Tensor:
        """A copy of the data that stays in the graph (the gradient flows back unchanged)."""
        return E.Cast.apply(self, self.dtype) if self.requires_grad else Tensor._from_op(self.data.copy(), False, None)

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

    def __index__(self) -> int:
        """A 0-d (or one-element) integer tensor can index a list or a range, as in torch."""
        if self.data.dtype.kind not in "iub" or self.data.size != 1:
            raise TypeError(f"only one-element integer tensors can be used as an index, not shape {self.shape} "
                            f"of dtype {self.dtype}")
        return int(self.data.item())

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
            if self.grad_fn.output_hooks is None:
                self.grad_fn.output_hooks = []
            hooks = self.grad_fn.output_hooks
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` on this leaf each time backward has accumulated a gradient into its
        ``.grad`` (for example to exchange it with other processes, or to step an optimizer per
        parameter). Returns a handle with ``remove()``."""
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks can only be registered on leaf tensors")
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self._post_accumulate_hooks is None:
            self._post_accumulate_hooks = []
        self._post_accumulate_hooks.append(hook)
        return _HookHandle(self._post_accumulate_hooks, hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on a non-leaf tensor too (leaves always keep it). As in PyTorch it is the
        gradient after every hook, whenever they were registered; calling it twice changes nothing."""
        if self.grad_fn is None:
            return
        # A weak reference: the node must not keep its output alive (backward stores the gradient
        # only if the user still holds the tensor).
        self.grad_fn.retained_output = weakref.ref(self)

    # ---- in-place updates (for optimizers and initialisation, outside the graph) --------------

    def _check_inplace(self, op: str, *values) -> None:
        if any(_batched(v) for v in values):  # inside vmap: each sample's values, one tensor to hold them
            raise RuntimeError(f"vmap: {op} is an in-place write of values that differ per sample into a tensor "
                               "the samples share; write the out-of-place form (y = y + x, y = where(mask, v, y))")
        if autograd.is_grad_enabled() and self.requires_grad:
            kind = "a leaf tensor that requires grad" if self.grad_fn is None else "a tensor that is part of the graph"
            raise RuntimeError(
                f"{op}: in-place operation on {kind} while grad mode is on. Wrap parameter updates in "
                "`with no_grad():`, or write the out-of-place form (x = x + y)."
            )

    def _inplace(self, op: str, ufunc, other) -> Tensor:
        self._check_inplace(op, other)
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
        self._check_inplace("copy_", src)
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
        self._check_inplace("__setitem__", value, *(index if isinstance(index, tuple) else (index,)))
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

    def remainder(self, other):
        """``self - other * floor(self / other)``: the sign of ``other``, as Python's and torch's ``%``.
        Integers stay integers (outside the graph); for floats the gradient is 1 for ``self`` and
        ``-floor(self / other)`` for ``other``, as in torch."""
        if self.dtype.kind in "iu" and _dtype_kind(other) in "iu":
            return _values_of(np.remainder, self, other)
        return self - other * (self / other).floor()

    def __rmod__(self, other):
        return _as_tensor(other, self.dtype if _dtype_kind(other) == "f" else None).remainder(self)

    def floor_divide(self, other):
        """``floor(self / other)`` (torch's ``//``): integers for integers; for floats a step
        function, whose gradient is zero."""
        if self.dtype.kind in "iu" and _dtype_kind(other) in "iu":
            return _values_of(np.floor_divide, self, other)
        return (self / other).floor()

    def __rfloordiv__(self, other):
        return _as_tensor(other).floor_divide(self)

    __mod__, __floordiv__ = remainder, floor_divide

    def __matmul__(self, other):
        return self.matmul(other)

    def __rmatmul__(self, other):
        return Tensor(other).matmul(self) if not isinstance(other, Tensor) else other.matmul(self)

    def __neg__(self):
        return E.Neg.apply(self)

    def __pos__(self):
        return self

    # torch's method names for the operators
    def add(self, other, alpha=1):
        return self + (other if alpha == 1 else _operand(other) * alpha)

    def sub(self, other, alpha=1):
        return self - (other if alpha == 1 else _operand(other) * alpha)

    def mul(self, other):
        return self * other

    def div(self, other):
        return self / other

    def neg(self):
        return -self

    multiply, divide, true_divide, subtract, negative = mul, div, div, sub, neg

    def __abs__(self):
        return self.abs()

    def pow(self, exponent):
        return self ** exponent

    # comparisons give boolean tensors outside the graph
    def __lt__(self, other):
        return _values_of(np.less, self, other)

    def __le__(self, other):
        return _values_of(np.less_equal, self, other)

    def __gt__(self, other):
        return _values_of(np.greater, self, other)

    def __ge__(self, other):
        return _values_of(np.greater_equal, self, other)

    def __eq__(self, other):
        return _values_of(np.equal, self, other)

    def __ne__(self, other):
        return _values_of(np.not_equal, self, other)

    # logical (bool) and bitwise (integer) operators, outside the graph as comparisons are
    def _bitwise(self, ufunc, other, op: str):
        other_dtype = other.dtype if isinstance(other, Tensor) else np.asarray(other).dtype
        if self.dtype.kind not in "biu" or other_dtype.kind not in "biu":
            raise TypeError(f"{op}: only bool and integer tensors, got {self.dtype} and {other_dtype}")
        return _values_of(ufunc, self, other)

    def __and__(self, other):
        return self._bitwise(np.bitwise_and, other, "&")

    def __or__(self, other):
        return self._bitwise(np.bitwise_or, other, "|")

    def __xor__(self, other):
        return self._bitwise(np.bitwise_xor, other, "^")

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __invert__(self):
        if self.dtype.kind not in "biu":
            raise TypeError(f"~: only bool and integer tensors, got {self.dtype}")
        return _values_of(np.invert, self)

    def logical_not(self):
        return _values_of(np.logical_not, self)

    lt, le, gt, ge, eq, ne = __lt__, __le__, __gt__, __ge__, __eq__, __ne__
    less, less_equal, greater, greater_equal, not_equal = lt, le, gt, ge, ne

    def equal(self, other) -> bool:
        """True when both have the same shape and the same elements (one Python bool, as torch)."""
        return self.shape == np.shape(_data(other)) and builtins.bool(np.all(self.data == _data(other)))

    def isnan(self):
        return _values_of(np.isnan, self)

    def isfinite(self):
        return _values_of(np.isfinite, self)

    # ---- elementwise math ---------------------------------------------------------------------

    def _step(self, fn):
        """``fn`` of the values, a step function (floor, ceil, round, sign): constant between its
        jumps, so its gradient is zero, as torch's (and the result stays in the graph)."""
        values = _values_of(fn, self)
        return E.LocallyConstant.apply(values.astype(self.dtype), self) if self.requires_grad else values

    def floor(self):
        return self._step(np.floor) if self.dtype.kind == "f" else self

    def ceil(self):
        return self._step(np.ceil) if self.dtype.kind == "f" else self

    def trunc(self):
        return self._step(np.trunc) if self.dtype.kind == "f" else self

    def round(self, decimals: int = 0):
        """Halves to even, as torch and NumPy."""
        return self._step(lambda a: np.round(a, decimals)) if self.dtype.kind == "f" else self

    def sign(self):
        return self._step(np.sign)

    def exp(self):
        return E.Exp.apply(self._floating())

    def log(self):
        return E.Log.apply(self._floating())

    def sqrt(self):
        return E.Sqrt.apply(self._floating())

    def tanh(self):
        return E.Tanh.apply(self._floating())

    def sigmoid(self):
        return E.Sigmoid.apply(self._floating())

    def relu(self):
        return E.Relu.apply(self)

    def abs(self):
        return E.Abs.apply(self)

    absolute = abs

    def sin(self):
        return TR.Sin.apply(self._floating())

    def _floating(self):
        """Itself, or for an integer or bool tensor a float32 copy: float math on integers gives
        torch's default float dtype (NumPy would compute in float64, or in the integers)."""
        return self if self.dtype.kind in "fc" else self.astype(np.float32)

    def softmax(self, dim):
        from .nn import functional as F  # nn is built on the Tensor, so it is imported when first used

        return F.softmax(self, dim)

    def log_softmax(self, dim):
        from .nn import functional as F

        return F.log_softmax(self, dim)

    def cos(self):
        return TR.Cos.apply(self._floating())

    def clamp(self, min=None, max=None):
        """Limit the values to ``[min, max]``; the bounds are numbers or tensors (then elementwise,
        as ``maximum``/``minimum``). The gradient passes where the value was inside the bounds."""
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        if isinstance(min, (Tensor, np.ndarray)) or isinstance(max, (Tensor, np.ndarray)):
            out = self if min is None else maximum(self, min)
            return out if max is None else minimum(out, max)
        return E.Clip.apply(self, min, max)

    clip = clamp

    # ---- dtype and device conversions (torch's names; astype is NumPy's) -----------------------

    def astype(self, dtype):
        dtype = np.dtype(dtype)
        return self if dtype == self.dtype else E.Cast.apply(self, dtype)

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def half(self):
        return self.astype(np.float16)

    def long(self):
        return self.astype(np.int64)

    def int(self):
        return self.astype(np.int32)

    def short(self):
        return self.astype(np.int16)

    def byte(self):
        return self.astype(np.uint8)

    def bool(self):
        return self.astype(np.bool_)

    def type_as(self, other):
        return self.astype(other.dtype if isinstance(other, Tensor) else np.asarray(other).dtype)

    def to(self, *args, dtype=None, device=None, copy=False, non_blocking=False):
        """torch's ``to``: a dtype (``t.to(tg.float64)``), a device (``"cpu"``, ``tg.device("cpu")``;
        anything else raises) or another tensor (take its dtype)."""
        dtype = to_arguments(args, dtype, device)
        out = self if dtype is None else self.astype(dtype)
        return out.clone() if copy and out is self else out

    def cpu(self):
        return self

    def cuda(self, *args, **kwargs):
        raise RuntimeError("cuda(): tinygrad_cnn runs on the CPU only (NumPy); drop .cuda() or use .to('cpu')")

    # ---- reductions (torch names dim/keepdim; NumPy's axis/keepdims accepted) -------------------

    def sum(self, dim=None, keepdim=None, dtype=None, *, axis=None, keepdims=None):
        """Sum over ``dim`` (an int, a tuple, or None for all). Integers and bools sum to int64, as torch."""
        dim, keepdim = _dim_args("sum", self.ndim, dim, axis, keepdim, keepdims)
        x = self._reduction_input(dtype)
        return R.Sum.apply(x, axis=dim, keepdims=keepdim)

    def _reduction_input(self, dtype):
        """What a sum-like reduction runs on: cast to ``dtype`` when given, integers and bools widened
        to int64 (as torch, so a count of booleans does not overflow)."""
        if dtype is not None:
            return self.astype(dtype)
        return self.astype(np.int64) if self.dtype.kind in "biu" else self

    def mean(self, dim=None, keepdim=None, dtype=None, *, axis=None, keepdims=None):
        dim, keepdim = _dim_args("mean", self.ndim, dim, axis, keepdim, keepdims)
        if dtype is None and self.dtype.kind != "f":
            raise TypeError(f"mean: needs a floating-point tensor, got dtype {self.dtype}; convert it with .float() "
                            "or pass dtype=")
        return self.sum(dim, keepdim, dtype) / _reduced_count(self.shape, dim)

    def amax(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        """The largest values over ``dim`` (all dims by default); tied maxima share the gradient."""
        dim, keepdim = _dim_args("amax", self.ndim, dim, axis, keepdim, keepdims)
        return R.Max.apply(self, axis=dim, keepdims=keepdim)

    def amin(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        dim, keepdim = _dim_args("amin", self.ndim, dim, axis, keepdim, keepdims)
        return -((-self).amax(dim, keepdim))

    def max(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        """torch's ``max``: without ``dim`` the largest element (a 0-d tensor); with ``dim``, the
        pair ``(values, indices)`` along it (the gradient goes to the element the index names);
        with a tensor, the elementwise ``maximum``."""
        if isinstance(dim, (Tensor, np.ndarray)):
            return maximum(self, dim)
        return self._extreme("max", dim, keepdim, axis, keepdims)

    def min(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        if isinstance(dim, (Tensor, np.ndarray)):
            return minimum(self, dim)
        return self._extreme("min", dim, keepdim, axis, keepdims)

    def _extreme(self, op: str, dim, keepdim, axis, keepdims):
        dim, keepdim = _dim_args(op, self.ndim, dim, axis, keepdim, keepdims, single=True)
        if dim is None:
            return self.amax() if op == "max" else self.amin()
        indices = _values_of(_ARG_EXTREMES[op], self, axis=dim, keepdims=True)
        values = self.gather(dim, indices)
        if not keepdim:
            values, indices = values.squeeze(dim), indices.squeeze(dim)
        return ValuesIndices(values, indices)

    def argmax(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        dim, keepdim = _dim_args("argmax", self.ndim, dim, axis, keepdim, keepdims, single=True)
        return _values_of(_ARG_EXTREMES["max"], self, axis=dim, keepdims=keepdim)

    def argmin(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        dim, keepdim = _dim_args("argmin", self.ndim, dim, axis, keepdim, keepdims, single=True)
        return _values_of(_ARG_EXTREMES["min"], self, axis=dim, keepdims=keepdim)

    def var(self, dim=None, unbiased=None, keepdim=None, *, correction=None, axis=None, keepdims=None, ddof=None):
        """Variance, unbiased by default as in torch: the squared deviations are divided by
        ``N - correction`` with ``correction=1``. ``unbiased=False``, ``correction=0`` (torch) or
        ``ddof=0`` (NumPy) give the biased ``1/N`` estimate."""
        if isinstance(dim, builtins.bool):  # torch's var(unbiased) form
            dim, unbiased = None, dim
        dim, keepdim = _dim_args("var", self.ndim, dim, axis, keepdim, keepdims)
        given = [v for v in (unbiased, correction, ddof) if v is not None]
        if len(given) > 1:
            raise TypeError("var: give at most one of unbiased=, correction= and ddof=")
        correction = int(given[0]) if given else 1  # unbiased=True is correction 1, False is 0
        centered = self - self.mean(dim, keepdim=True)
        return (centered * centered).sum(dim, keepdim) / (_reduced_count(self.shape, dim) - correction)

    def std(self, dim=None, unbiased=None, keepdim=None, *, correction=None, axis=None, keepdims=None, ddof=None):
        """Standard deviation, unbiased by default (see ``var``)."""
        return self.var(dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims, ddof=ddof).sqrt()

    def prod(self, dim=None, keepdim=None, dtype=None, *, axis=None, keepdims=None):
        dim, keepdim = _dim_args("prod", self.ndim, dim, axis, keepdim, keepdims, single=True)
        x = self._reduction_input(dtype)
        if dim is None:
            return P.Prod.apply(x.reshape(-1), 0, False)
        return P.Prod.apply(x, dim, keepdim)

    def cumsum(self, dim, dtype=None, *, axis=None):
        dim, _ = _dim_args("cumsum", self.ndim, dim, axis, None, None, single=True)
        if dim is None:
            raise TypeError("cumsum: needs dim (the dimension to run along)")
        return SC.Cumsum.apply(self._reduction_input(dtype), dim)

    def logsumexp(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        """``log(sum(exp(x)))`` over ``dim``, computed as ``m + log(sum(exp(x - m)))`` with ``m`` the
        (constant) maximum, so large values do not overflow."""
        dim, keepdim = _dim_args("logsumexp", self.ndim, dim, axis, keepdim, keepdims)
        shift = self.detach().amax(dim, keepdim=True)
        shift = where(shift.isfinite(), shift, 0.0)  # all -inf: log(0) = -inf, not nan
        out = (self - shift).exp().sum(dim, keepdim=True).log() + shift
        return out if keepdim else out.squeeze(dim if dim is not None else tuple(range(self.ndim)))

    def norm(self, p="fro", dim=None, keepdim=None, *, axis=None, keepdims=None):
        """The vector p-norm over ``dim`` (all elements by default): ``p=2`` and ``"fro"`` are
        ``sqrt(sum(x^2))``, ``p=1`` ``sum(|x|)``, ``inf``/``-inf`` the largest/smallest ``|x|``,
        ``p=0`` the count of non-zeros, any other ``p`` ``sum(|x|^p)^(1/p)``."""
        dim, keepdim = _dim_args("norm", self.ndim, dim, axis, keepdim, keepdims)
        if p in ("fro", 2):
            return (self * self).sum(dim, keepdim).sqrt()
        if isinstance(p, str):
            raise ValueError(f"norm: p={p!r} is not supported; use 2, 'fro', 1, inf, -inf, 0 or another number")
        if p == 1:
            return self.abs().sum(dim, keepdim)
        if p == math.inf:
            return self.abs().amax(dim, keepdim)
        if p == -math.inf:
            return self.abs().amin(dim, keepdim)
        if p == 0:
            return (self != 0).sum(dim, keepdim).astype(self.dtype)
        return (self.abs() ** p).sum(dim, keepdim) ** (1.0 / p)

    def all(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        dim, keepdim = _dim_args("all", self.ndim, dim, axis, keepdim, keepdims)
        return _values_of(np.all, self, axis=dim, keepdims=keepdim)

    def any(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        dim, keepdim = _dim_args("any", self.ndim, dim, axis, keepdim, keepdims)
        return _values_of(np.any, self, axis=dim, keepdims=keepdim)

    # ---- more of torch's everyday ops, composed from the ones above ---------------------------------
    # Masks come from comparisons of tensors or from shapes alone, never from reading values, so
    # each stays differentiable (and runs under vmap) the way its parts do.

    def square(self):
        return self * self

    def reciprocal(self):
        return 1.0 / self._floating()

    def rsqrt(self):
        return 1.0 / self._floating().sqrt()

    def erf(self):
        from .ops.special import Erf

        return Erf.apply(self._floating())

    def log1p(self):
        """log(1 + x), accurate for small x: there 1 + x would round away x's low digits, so for
        |x| < 1e-2 the series x - x^2/2 + x^3/3 - ... (to x^8: the next term is below a float64's
        last digit) stands in."""
        x = self._floating()
        return x._series_near_zero_or((0.0, 1.0, -1 / 2, 1 / 3, -1 / 4, 1 / 5, -1 / 6, 1 / 7, -1 / 8), lambda: (x + 1.0).log())

    def expm1(self):
        """exp(x) - 1, accurate for small x by its series x + x^2/2! + ... (|x| < 1e-2), as log1p."""
        x = self._floating()
        return x._series_near_zero_or((0.0, 1.0, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040, 1 / 40320), lambda: x.exp() - 1.0)

    def _series_near_zero_or(self, coefficients, otherwise):
        """The power series sum(c_k x^k) where |x| < 1e-2, else ``otherwise()``. Both sides are
        computed everywhere and finite there, so the unused side's zero gradient stays 0."""
        series = coefficients[-1]
        for c in reversed(coefficients[:-1]):
            series = series * self + c
        return where(self.abs() < 1e-2, series, otherwise())

    def isinf(self):
        return _values_of(np.isinf, self)

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return _values_of(lambda a, b: np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan), self, other)

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        """NaN, +inf and -inf replaced by ``nan``, ``posinf`` and ``neginf`` (the infinities by
        default by the dtype's largest and lowest finite values). The gradient passes where the
        value was kept and is 0 where it was replaced, as torch's."""
        if self.dtype.kind not in "fc":
            return self
        finfo = np.finfo(self.dtype)
        posinf = finfo.max if posinf is None else posinf
        neginf = finfo.min if neginf is None else neginf
        out = where(self.isnan(), float(nan), self)
        out = where(self == math.inf, float(posinf), out)
        return where(self == -math.inf, float(neginf), out)

    def clamp_min(self, min):  # noqa: A002 - torch's parameter name
        return self.clamp(min=min)

    def clamp_max(self, max):  # noqa: A002
        return self.clamp(max=max)

    def lerp(self, end, weight):
        """self + weight * (end - self); ``weight`` a number or a tensor."""
        return self + (_as_tensor(end) - self) * weight

    def logical_and(self, other):
        return _values_of(np.logical_and, self, other)

    def logical_or(self, other):
        return _values_of(np.logical_or, self, other)

    def logical_xor(self, other):
        return _values_of(np.logical_xor, self, other)

    def count_nonzero(self, dim=None):
        """How many elements are not zero, over ``dim`` (an int or a tuple; all by default), as int64."""
        axis = None if dim is None else (tuple(check_axis("count_nonzero", d, self.ndim) for d in dim)
                                         if isinstance(dim, (tuple, list)) else check_axis("count_nonzero", dim, self.ndim))
        return _values_of(lambda a, axis, keepdims: np.asarray(np.count_nonzero(a, axis=axis), dtype=np.int64),
                          self, axis=axis)

    def tril(self, diagonal=0):
        """The lower triangle of the last two dimensions: elements on and below the ``diagonal``-th
        diagonal kept, the rest 0. The mask depends on the shape only."""
        return self._triangle("tril", diagonal, lower=True)

    def triu(self, diagonal=0):
        """The upper triangle of the last two dimensions: on and above the ``diagonal``-th diagonal."""
        return self._triangle("triu", diagonal, lower=False)

    def _triangle(self, op: str, diagonal: int, lower: bool):
        if self.ndim < 2:
            raise ValueError(f"{op}: expected a tensor of at least 2 dimensions, got shape {self.shape}")
        rows, cols = self.shape[-2:]
        keep = np.tri(rows, cols, diagonal, dtype=bool) if lower else ~np.tri(rows, cols, diagonal - 1, dtype=bool)
        return where(keep, self, 0)

    def outer(self, vec2):
        """The outer product of two 1-D tensors: ``out[i, j] = self[i] * vec2[j]``."""
        vec2 = _as_tensor(vec2)
        if self.ndim != 1 or vec2.ndim != 1:
            raise ValueError(f"outer: expected two 1-D tensors, got shapes {self.shape} and {vec2.shape}")
        return self.reshape(-1, 1) * vec2.reshape(1, -1)

    ger = outer

    def inner(self, other):
        """Sums of products over the last dimension of both: the result has shape
        ``self.shape[:-1] + other.shape[:-1]`` (a 0-d operand multiplies)."""
        other = _as_tensor(other)
        if self.ndim == 0 or other.ndim == 0:
            return self * other
        if self.shape[-1] != other.shape[-1]:
            raise ValueError(f"inner: the last dimensions differ, got shapes {self.shape} and {other.shape}")
        lined_up = self.reshape(*self.shape[:-1], *(1,) * (other.ndim - 1), self.shape[-1])
        return (lined_up * other).sum(-1)

    def trace(self):
        """The sum of a 2-D tensor's main diagonal."""
        if self.ndim != 2:
            raise ValueError(f"trace: expected a 2-D tensor, got shape {self.shape}")
        steps = np.arange(builtins.min(self.shape))
        return self[steps, steps].sum()

    def cumprod(self, dim, dtype=None):
        """Running products along ``dim``: each the previous one times the next element. Written
        as that loop (not exp of a cumulative sum of logs), so zeros and negative values are exact
        and every element's gradient is the product of the others before it."""
        x = self if dtype is None else self.astype(dtype)
        dim = check_axis("cumprod", dim, x.ndim) if x.ndim else 0
        if x.ndim == 0:
            return x * 1
        products = [x.narrow(dim, 0, 1)]
        for k in range(1, x.shape[dim]):
            products.append(products[-1] * x.narrow(dim, k, 1))
        return concatenate(products, dim)

    def diff(self, n=1, dim=-1, prepend=None, append=None):
        """The ``n``-th forward difference along ``dim``: ``out[i] = x[i + 1] - x[i]``, repeated ``n``
        times, after ``prepend`` and ``append`` are joined to the ends."""
        if self.ndim == 0:
            raise ValueError("diff: expected a tensor of at least 1 dimension, got a 0-d tensor")
        dim = check_axis("diff", dim, self.ndim)
        x = concatenate([t for t in (prepend, self, append) if t is not None], dim)
        for _ in range(n):
            length = x.shape[dim]
            if length == 0:
                break
            x = x.narrow(dim, 1, length - 1) - x.narrow(dim, 0, length - 1)
        return x

    def repeat_interleave(self, repeats, dim=None, *, output_size=None):
        """Each element repeated ``repeats`` times along ``dim`` (the flattened tensor when None):
        ``[a, b]`` with 2 gives ``[a, a, b, b]``. ``repeats`` an int, or one count per element."""
        x, dim = (self.reshape(-1), 0) if dim is None else (self, check_axis("repeat_interleave", dim, self.ndim))
        if isinstance(repeats, (Tensor, np.ndarray, list, tuple)) and np.ndim(_data(repeats)) > 0:
            counts = np.asarray(_data(repeats), dtype=np.int64)
            if counts.shape != (x.shape[dim],) or (counts < 0).any():
                raise ValueError(f"repeat_interleave: repeats must hold one non-negative count per element along "
                                 f"dim ({x.shape[dim]}), got {counts.tolist()}")
            return x.index_select(dim, Tensor(np.repeat(np.arange(x.shape[dim]), counts)))
        repeats = int(_data(repeats))
        if repeats < 0:
            raise ValueError(f"repeat_interleave: repeats must be non-negative, got {repeats}")
        spread = x.unsqueeze(dim + 1).expand(*x.shape[: dim + 1], repeats, *x.shape[dim + 1:])
        return spread.reshape(*x.shape[:dim], x.shape[dim] * repeats, *x.shape[dim + 1:])

    def tile(self, *dims):
        """torch's ``tile``: ``repeat`` with missing leading counts taken as 1."""
        dims = _shape_args(dims)
        return self.repeat(*(1,) * (self.ndim - len(dims)), *dims)

    # ---- sorting ----------------------------------------------------------------------------------

    def argsort(self, dim=-1, descending=False, stable=False):
        """Indices that sort along ``dim``; always stable (ties keep their order, also descending)."""
        dim = check_axis("argsort", dim, max(self.ndim, 1))
        if self.ndim == 0:
            return Tensor(np.zeros((), np.int64))
        return _values_of(_SORTERS[bool(descending)], self, axis=dim)

    def sort(self, dim=-1, descending=False, stable=False):
        """``(values, indices)`` sorted along ``dim``; the gradient of each value goes back to the
        element it came from."""
        indices = self.argsort(dim, descending)
        if self.ndim == 0:
            return ValuesIndices(self, indices)
        return ValuesIndices(self.gather(dim, indices), indices)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """The ``k`` largest (or smallest) ``(values, indices)`` along ``dim``, largest first."""
        dim = check_axis("topk", dim, max(self.ndim, 1))
        if not 0 <= k <= (self.shape[dim] if self.ndim else 1):
            raise ValueError(f"topk: k={k} is out of range for dimension {dim} of shape {self.shape}")
        indices = self.argsort(dim, descending=largest)
        if self.ndim == 0:
            return ValuesIndices(self, indices)
        indices = indices[(slice(None),) * dim + (slice(0, k),)]
        return ValuesIndices(self.gather(dim, indices), indices)

    # ---- indexing along one dimension ---------------------------------------------------------

    def gather(self, dim, index):
        """``out[i][j] = self[index[i][j]][j]`` for ``dim=0`` (torch's gather)."""
        dim, index = self._dim_and_index("gather", dim, index)
        return IX.Gather.apply(self, dim, index)

    def scatter_add(self, dim, index, src):
        """A copy of ``self`` with ``src`` added at ``index`` along ``dim``; repeated indices accumulate."""
        dim, index = self._dim_and_index("scatter_add", dim, index)
        return IX.ScatterAdd.apply(self, dim, index, _as_tensor(src, self.dtype))

    def scatter(self, dim, index, src=None, *, value=None):
        """A copy of ``self`` with ``src`` (a tensor, or the number ``value``) written at ``index``
        along ``dim``; at a repeated index the last write wins."""
        if _vmap_depth.get() and any(_batched(t) for t in (self, index, src)):  # the last writes differ per sample
            return _batching().loop_over_batch(lambda x, i, s: x.scatter(dim, i, s, value=value), self, index, src,
                                               what="scatter")
        dim, index = self._dim_and_index("scatter", dim, index)
        if src is None and value is None:
            raise TypeError("scatter: give src (a tensor) or value (a number)")
        if not isinstance(src, (Tensor, np.ndarray, list)):
            src = np.full(index.shape, src if value is None else value, dtype=self.dtype)
        flat = np.ravel_multi_index(scatter_positions(dim, index), self.shape).ravel()
        written = np.zeros(self.numel(), dtype=bool)
        written[flat] = True
        kept = self.masked_fill(written.reshape(self.shape), 0)
        # a place written twice takes the last write, as torch does on the CPU (it documents the
        # order as unspecified), so adding the last write of each place into the cleared places is
        # the scatter
        last = np.zeros(index.size, dtype=bool)
        last[flat.size - 1 - np.unique(flat[::-1], return_index=True)[1]] = True
        src = _as_tensor(src, self.dtype)[tuple(slice(0, n) for n in index.shape)]
        return IX.ScatterAdd.apply(kept, dim, index, src.masked_fill(~last.reshape(index.shape), 0))

    def scatter_(self, dim, index, src=None, *, value=None):
        return self._write_in_place("scatter_", self.detach().scatter(dim, index, src, value=value))

    def scatter_add_(self, dim, index, src):
        return self._write_in_place("scatter_add_", self.detach().scatter_add(dim, index, _data(src)))

    def _write_in_place(self, op: str, result):
        self._check_inplace(op, result)
        self.data[...] = result.data
        self._version += 1
        return self

    def _dim_and_index(self, op: str, dim, index):
        dim = check_axis(op, dim, max(self.ndim, 1))
        batched = _vmap_depth.get() and _batched(index)  # an index per sample, inside vmap
        index = index if batched else np.asarray(_data(index))
        if index.dtype.kind not in "iu":
            raise TypeError(f"{op}: index must be an integer tensor, got dtype {index.dtype}")
        if index.ndim != self.ndim:
            raise ValueError(f"{op}: index must have as many dimensions as the tensor ({self.ndim}), got shape {index.shape}")
        n = self.shape[dim] if self.ndim else 1
        values = _batching().physical_values(index) if batched else index
        if values.size and (values.min() < -n or values.max() >= n):
            raise IndexError(f"{op}: index out of range for dimension {dim} of size {n}")
        return dim, _values_of(np.remainder, index, max(n, 1)) if batched else index % max(n, 1)

    def index_select(self, dim, index):
        """The slices ``index`` (1-D integers) along ``dim``: ``x.index_select(0, i)`` is ``x[i]``."""
        dim = check_axis("index_select", dim, max(self.ndim, 1))
        # a Tensor index stays one: inside vmap it may hold each sample's indices
        index = index.reshape(-1) if isinstance(index, Tensor) else np.asarray(index).reshape(-1)
        return self[(slice(None),) * dim + (index,)]

    def masked_fill(self, mask, value):
        """``value`` where ``mask`` (a boolean tensor broadcasting to this one) is true."""
        mask = mask if isinstance(mask, Tensor) else np.asarray(mask)
        if mask.dtype != np.bool_:
            raise TypeError(f"masked_fill: mask must be a boolean tensor, got dtype {mask.dtype}")
        return where(mask, _operand(value) if isinstance(value, Tensor) else self.dtype.type(value), self)

    def where(self, condition, other):
        """torch's ``x.where(condition, y)``: ``x`` where ``condition`` is true, else ``y``."""
        return where(condition, self, other)

    # ---- movement ------------------------------------------------------------------------------

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

    def transpose(self, dim0, dim1):
        """torch's ``transpose``: swap two dimensions (``permute`` reorders all of them)."""
        dim0, dim1 = check_axis("transpose", dim0, self.ndim), check_axis("transpose", dim1, self.ndim)
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return self.permute(*axes)

    swapaxes = swapdims = transpose

    def t(self):
        """The transpose of a matrix (a 0-d or 1-D tensor comes back unchanged), as torch."""
        if self.ndim > 2:
            raise ValueError(f"t: needs a tensor of at most 2 dimensions, got shape {self.shape}; use transpose(d0, d1)")
        return self if self.ndim < 2 else self.transpose(0, 1)

    @property
    def T(self):
        """All dimensions reversed."""
        return self.permute(*range(self.ndim - 1, -1, -1))

    @property
    def mT(self):
        """The last two dimensions swapped (a batch of matrices transposed)."""
        return self.transpose(-2, -1)

    def movedim(self, source, destination):
        """The dimensions ``source`` (an int or a tuple) moved to positions ``destination``, the
        others keeping their order (torch's ``movedim``, NumPy's ``moveaxis``)."""
        source = (source,) if isinstance(source, (int, np.integer)) else tuple(source)
        destination = (destination,) if isinstance(destination, (int, np.integer)) else tuple(destination)
        if len(source) != len(destination):
            raise ValueError(f"movedim: {len(source)} source dimension(s) but {len(destination)} destination(s)")
        source = [check_axis("movedim", d, self.ndim) for d in source]
        destination = [check_axis("movedim", d, self.ndim) for d in destination]
        if len(set(source)) != len(source) or len(set(destination)) != len(destination):
            raise ValueError("movedim: repeated dimensions")
        order = [d for d in range(self.ndim) if d not in source]
        for dest, src in sorted(zip(destination, source)):
            order.insert(dest, src)
        return self.permute(*order)

    moveaxis = movedim

    def flatten(self, start_dim=0, end_dim=-1):
        start, end = (check_axis("flatten", a, max(self.ndim, 1)) for a in (start_dim, end_dim))
        if self.ndim == 0:
            return self.reshape(1)
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {self.shape}")
        return self.reshape(*self.shape[:start], -1, *self.shape[end + 1 :])

    def squeeze(self, dim=None, *, axis=None):
        dim, _ = _dim_args("squeeze", self.ndim, dim, axis, None, None)
        if dim is None:
            return self.reshape(*(n for n in self.shape if n != 1))
        dims = set(dim) if isinstance(dim, tuple) else {dim}
        # torch leaves a dimension whose size is not 1 alone (NumPy would raise)
        return self.reshape(*(n for i, n in enumerate(self.shape) if not (i in dims and n == 1)))

    def unsqueeze(self, dim=None, *, axis=None):
        dim = _dim_or_axis("unsqueeze", dim, axis)
        if dim is None:
            raise TypeError("unsqueeze: needs dim (where the new dimension of size 1 goes)")
        dim = check_axis("unsqueeze", dim, self.ndim + 1)
        return self.reshape(*self.shape[:dim], 1, *self.shape[dim:])

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
        if _vmap_depth.get():  # inside vmap the index may hold a tensor of indices per sample
            return _batching().getitem(self, index)
        return MV.GetItem.apply(self, _normalize_index(index))

    def view_as(self, other):
        return self.reshape(*(other.shape if isinstance(other, Tensor) else np.shape(other)))

    reshape_as = view_as

    def expand_as(self, other):
        return self.expand(*(other.shape if isinstance(other, Tensor) else np.shape(other)))

    def flip(self, *dims):
        """Reverse the order along ``dims`` (a reversed slice, so the gradient is flipped back)."""
        dims = {check_axis("flip", d, self.ndim) for d in _shape_args(dims)}
        return self[tuple(slice(None, None, -1) if d in dims else slice(None) for d in range(self.ndim))]

    def roll(self, shifts, dims=None):
        """Shift the elements along ``dims`` cyclically: what falls off one end comes back at the other.
        Without ``dims`` the flattened tensor is rolled, as in torch."""
        if dims is None:
            return self.reshape(-1).roll(shifts, 0).reshape(*self.shape)
        shifts, dims = (shifts,) if isinstance(shifts, int) else tuple(shifts), (dims,) if isinstance(dims, int) else tuple(dims)
        if len(shifts) != len(dims):
            raise ValueError(f"roll: {len(shifts)} shifts for {len(dims)} dims; give one shift per dim")
        out = self
        for shift, dim in zip(shifts, dims):
            dim = check_axis("roll", dim, self.ndim)
            n = self.shape[dim]
            cut = n - shift % n if n else 0
            if cut % n:
                head, tail = out.split([cut, n - cut], dim)
                out = concatenate([tail, head], dim)
        return out

    def repeat(self, *sizes):
        """Tile the tensor ``sizes[d]`` times along each dimension (torch's ``repeat``, NumPy's ``tile``):
        a broadcast over a new axis in front of each dimension, merged into it."""
        sizes = _shape_args(sizes)
        if len(sizes) < self.ndim:
            raise ValueError(f"repeat: give at least one size per dimension ({self.ndim}), got {sizes}")
        x = self.reshape(*(1,) * (len(sizes) - self.ndim), *self.shape)
        interleaved = [n for pair in zip((1,) * x.ndim, x.shape) for n in pair]
        tiled = [n for pair in zip(sizes, x.shape) for n in pair]
        return x.reshape(*interleaved).expand(*tiled).reshape(*(r * n for r, n in zip(sizes, x.shape)))

    def split(self, split_size_or_sections, dim=0):
        """Pieces along ``dim``: of ``split_size`` each (the last may be shorter), or of the listed sizes."""
        dim = check_axis("split", dim, self.ndim)
        n = self.shape[dim]
        if isinstance(split_size_or_sections, (int, np.integer)):
            if split_size_or_sections <= 0:
                raise ValueError(f"split: split_size must be positive, got {split_size_or_sections}")
            sizes = [min(split_size_or_sections, n - start) for start in range(0, n, split_size_or_sections)] or [0]
        else:
            sizes = [int(k) for k in split_size_or_sections]
            if builtins.sum(sizes) != n or builtins.min(sizes, default=0) < 0:
                raise ValueError(f"split: sizes {sizes} do not add up to the {n} elements of dimension {dim}")
        starts = np.cumsum([0] + sizes[:-1])
        return tuple(self[(slice(None),) * dim + (slice(int(a), int(a) + k),)] for a, k in zip(starts, sizes))

    def chunk(self, chunks, dim=0):
        """``chunks`` pieces (or fewer) along ``dim``, each of ``ceil(size / chunks)`` elements but the last."""
        if chunks <= 0:
            raise ValueError(f"chunk: chunks must be positive, got {chunks}")
        n = self.shape[check_axis("chunk", dim, self.ndim)]
        return self.split(max(-(-n // chunks), 1), dim)

    def unbind(self, dim=0):
        return tuple(t.squeeze(dim) for t in self.split(1, dim))

    def select(self, dim, index):
        """The slice at ``index`` along ``dim``, that dimension removed (torch's ``select``)."""
        dim = check_axis("select", dim, self.ndim)
        return self[(slice(None),) * dim + (index,)]

    def narrow(self, dim, start, length):
        dim = check_axis("narrow", dim, self.ndim)
        return self[(slice(None),) * dim + (slice(start, start + length),)]

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
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
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


def _values_of(fn, *operands, axis="elementwise", keepdims=False) -> Tensor:
    """``fn`` of the operands' values, a Tensor outside the graph (comparisons, argmax, any):
    ``fn`` broadcasts the operands, or with ``axis`` reduces the first along it. Inside vmap the
    operands may hold a batch, which ``batching.values`` handles."""
    if _vmap_depth.get():
        from .batching import values

        return values(fn, *operands, axis=axis, keepdims=keepdims)
    arrays = [_data(o) for o in operands]
    if axis == "elementwise":
        return Tensor(fn(*arrays))
    return Tensor(fn(arrays[0], axis=axis, keepdims=keepdims))


def _dtype_kind(x) -> str:
    return x.dtype.kind if isinstance(x, (Tensor, np.ndarray)) else np.asarray(x).dtype.kind


def _batching():
    from . import batching

    return batching


def _batched(x) -> bool:
    return isinstance(x, _batching().BatchedTensor)


def _arg_extreme(find):
    def located(a, axis=None, keepdims=False):
        return find(a, axis=axis, keepdims=keepdims).astype(np.int64)

    return located


_ARG_EXTREMES = {"max": _arg_extreme(np.argmax), "min": _arg_extreme(np.argmin)}


def _sorter(descending: bool):
    def order(a, axis, keepdims=False):
        if descending:  # sort the negation, so ties stay in their original order
            a = -(a.astype(np.int64) if a.dtype.kind in "bu" else a)
        return np.argsort(a, axis=axis, kind="stable").astype(np.int64)

    return order


_SORTERS = {False: _sorter(False), True: _sorter(True)}


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


def _dim_args(op: str, ndim: int, dim, axis, keepdim, keepdims, single: bool = False):
    """The ``(dim, keepdim)`` of a reduction, from torch's names or NumPy's aliases (giving both
    spellings of one argument is an error). ``dim`` comes back checked: None, an int, or a tuple."""
    if keepdim is not None and keepdims is not None:
        raise TypeError(f"{op}: give keepdim= or its NumPy alias keepdims=, not both")
    dim = _dim_or_axis(op, dim, axis)
    keepdim = builtins.bool(keepdims if keepdim is None else keepdim)
    if single and dim is not None and not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be one integer, got {dim!r}")
    return _axis(op, dim, ndim), keepdim


def _dim_or_axis(op: str, dim, axis, default=None):
    """One dimension argument given as torch's ``dim=`` or NumPy's ``axis=`` (not both)."""
    if dim is not None and axis is not None:
        raise TypeError(f"{op}: give dim= or its NumPy alias axis=, not both")
    return default if dim is None and axis is None else axis if dim is None else dim


def to_arguments(args, dtype=None, device=None):
    """The dtype that ``tensor.to(*args)`` or ``module.to(*args)`` asks for (None: keep it); each of
    ``args`` is a dtype, a device or a tensor (its dtype). A device must be the CPU (else it raises)."""
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype
        elif isinstance(arg, Device) or (isinstance(arg, str) and not _is_dtype_name(arg)):
            device = arg
        else:
            dtype = arg
    if device is not None:
        Device(device)  # raises for anything but the CPU
    return dtype


def _is_dtype_name(value) -> bool:
    """A string naming a NumPy dtype ("float64"), as opposed to a device ("cpu")."""
    if not isinstance(value, str):
        return False
    try:
        np.dtype(value)
    except TypeError:
        return False
    return True


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
    return E.Where.apply(condition, _operand(x), _operand(y))  # a Tensor condition stays one: vmap batches it


def concatenate(tensors, dim=None, *, axis=None) -> Tensor:
    """Join tensors along an existing dimension (torch's ``cat``); their other sizes must match."""
    dim = _dim_or_axis("cat", dim, axis, default=0)
    tensors = [_as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: need at least one tensor")
    first = tensors[0]
    if first.ndim == 0 or any(t.ndim != first.ndim for t in tensors):
        raise ValueError(f"cat: tensors need the same number of dimensions (at least 1), got shapes "
                         f"{[t.shape for t in tensors]}")
    dim = check_axis("cat", dim, first.ndim)
    if any(t.shape[:dim] + t.shape[dim + 1 :] != first.shape[:dim] + first.shape[dim + 1 :] for t in tensors):
        raise ValueError(f"cat: shapes must match except along dimension {dim}, got {[t.shape for t in tensors]}")
    return MV.Concatenate.apply(dim, *tensors)


def stack(tensors, dim=None, *, axis=None) -> Tensor:
    """Join same-shaped tensors along a new dimension ``dim``."""
    dim = _dim_or_axis("stack", dim, axis, default=0)
    tensors = [_as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: need at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    dim = check_axis("stack", dim, tensors[0].ndim + 1)
    return concatenate([t.unsqueeze(dim) for t in tensors], dim)


def _as_tensor(x, dtype=None) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x, dtype=dtype)
