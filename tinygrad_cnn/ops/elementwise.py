"""Elementwise primitives: unary math, binary arithmetic with NumPy broadcasting, selection.

Each backward is written with Tensor operations (``grad * y``), so it is recorded when
``create_graph=True``. Binary ops sum the gradient back to each input's shape with
``sum_to_shape``, the backward of broadcasting.
"""
import numpy as np

from .. import memory
from ..autograd import Function
from .movement import sum_to_shape


def keep_where(mask: np.ndarray, values: np.ndarray, out=None) -> np.ndarray:
    """``np.where(mask, values, 0)`` in ``values``' shape, bit for bit (inf and NaN included), at the
    speed of a multiplication: each value's bits, read as an integer, are multiplied by the mask's
    1 or 0. (``np.where`` on a random mask is some ten times slower; ``values * mask`` in floating
    point would turn a blocked inf into a NaN.)"""
    if values.itemsize not in (1, 2, 4, 8):  # no integer of that width (float128): plain where
        if out is None:
            return np.where(mask, values, values.dtype.type(0))
        np.copyto(out, np.where(mask, values, values.dtype.type(0)))
        return out
    as_int = np.dtype(f"i{values.itemsize}")
    out = memory.empty(values.shape, values.dtype) if out is None else out
    np.multiply(values.view(as_int), mask.view(np.int8), out=out.view(as_int))
    return out


class KeepWhere(Function):
    """``where(mask, x, 0)`` for a constant boolean ``mask`` that broadcasts to ``x``: the gradient of
    ops that pass some values through and block the rest (relu, clamp, where). A blocked value
    gives 0 even when it is inf or NaN, as in torch; ``x * mask`` would give NaN there."""

    @staticmethod
    def forward(ctx, x, mask):
        if np.broadcast_shapes(np.shape(mask), x.shape) != x.shape:
            raise ValueError(f"KeepWhere: mask of shape {np.shape(mask)} does not broadcast to the values' shape {x.shape}")
        ctx.mask = mask
        return keep_where(mask, x)

    @staticmethod
    def backward(ctx, grad):
        return KeepWhere.apply(grad, ctx.mask), None  # linear in x, with the same mask

    @staticmethod
    def jvp(ctx, t, _):
        return KeepWhere.apply(t, ctx.mask)


# ---- unary --------------------------------------------------------------------------------------


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return memory.ufunc(np.negative, x)

    @staticmethod
    def backward(ctx, grad):
        return -grad

    @staticmethod
    def jvp(ctx, t):
        return -t


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        out = memory.ufunc(np.exp, x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out

    @staticmethod
    def jvp(ctx, t):
        (out,) = ctx.saved_tensors
        return t * out


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return memory.ufunc(np.log, x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        return t / x


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        out = memory.ufunc(np.sqrt, x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (out * 2)  # d sqrt(x) = 1 / (2 sqrt(x))

    @staticmethod
    def jvp(ctx, t):
        (out,) = ctx.saved_tensors
        return t / (out * 2)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        out = memory.ufunc(np.tanh, x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)

    @staticmethod
    def jvp(ctx, t):
        (out,) = ctx.saved_tensors
        return t * (1 - out * out)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        # exp of a non-positive number only, so no overflow for large |x|
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)

    @staticmethod
    def jvp(ctx, t):
        (out,) = ctx.saved_tensors
        return t * out * (1 - out)


# NumPy's maximum against a scalar misses its vectorised loop: np.maximum(x, 0) runs some 2.5x
# slower than against an array of zeros. So relu takes its zeros from a small array (it stays in
# the L1 cache), with x seen as rows of that length.
_ZEROS = 4096


def _relu(x: np.ndarray) -> np.ndarray:
    """``np.maximum(x, 0)``, bit for bit (NaN propagates as in torch), into a cached array."""
    if x.dtype.kind != "f" or x.size < _ZEROS or not x.flags.c_contiguous:
        return memory.ufunc(np.maximum, x, 0)
    out = memory.empty(x.shape, x.dtype)
    zeros = np.zeros(_ZEROS, x.dtype)
    flat, flat_out = x.reshape(-1), out.reshape(-1)
    whole = x.size - x.size % _ZEROS
    np.maximum(flat[:whole].reshape(-1, _ZEROS), zeros, out=flat_out[:whole].reshape(-1, _ZEROS))
    np.maximum(flat[whole:], zeros[: x.size - whole], out=flat_out[whole:])
    return out


class Relu(Function):
    @staticmethod
    def forward(ctx, x):
        out = _relu(x)
        if ctx.needs_input_grad[0]:
            # backward needs only where the gradient passes: a byte per value instead of the
            # output's four, and the output itself can be freed once the next op is done with it.
            # It passes where the output is not <= 0, NaN included, as in torch.
            blocked = np.asarray(memory.ufunc(np.less_equal, out, 0, dtype=bool))  # 0-d: a scalar
            ctx.positive = np.logical_not(blocked, out=blocked)
        return out

    @staticmethod
    def backward(ctx, grad):
        return KeepWhere.apply(grad, ctx.positive)  # the mask is a constant: relu'' = 0 away from the kink

    @staticmethod
    def jvp(ctx, t):
        return KeepWhere.apply(t, ctx.positive)


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * np.sign(x.data)

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        return t * np.sign(x.data)


class Cast(Function):
    """Change dtype; the gradient is cast back to the input's dtype."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.input_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.input_dtype), None

    @staticmethod
    def jvp(ctx, t, _):
        return t.astype(ctx.output_dtype)


class Clip(Function):
    @staticmethod
    def forward(ctx, x, low, high):
        ctx.inside = (x >= (-np.inf if low is None else low)) & (x <= (np.inf if high is None else high))
        return np.clip(x, low, high)

    @staticmethod
    def backward(ctx, grad):
        return KeepWhere.apply(grad, ctx.inside), None, None  # slope 1 inside [low, high], as torch.clamp

    @staticmethod
    def jvp(ctx, t, _low, _high):
        return KeepWhere.apply(t, ctx.inside)


# ---- binary (NumPy broadcasting) ----------------------------------------------------------------


def broadcasting(op: str, fn, *operands):
    """``fn(*operands)`` with NumPy broadcasting; shapes that cannot broadcast raise an error naming
    ``op``. The shapes are only examined after NumPy refuses, so the common path costs nothing."""
    try:
        return memory.ufunc(fn, *operands) if isinstance(fn, np.ufunc) else fn(*operands)
    except ValueError:
        shapes = [np.shape(a) for a in operands]
        try:
            np.broadcast_shapes(*shapes)
        except ValueError:
            listed = " and ".join(str(s) for s in shapes)
            raise ValueError(f"{op}: shapes {listed} cannot be broadcast together") from None
        raise


class Add(Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.shapes = np.shape(x), np.shape(y)
        return broadcasting("add", np.add, x, y)

    @staticmethod
    def backward(ctx, grad):
        x_shape, y_shape = ctx.shapes
        needs_x, needs_y = ctx.needs_input_grad
        return (
            sum_to_shape(grad, x_shape) if needs_x else None,
            sum_to_shape(grad, y_shape) if needs_y else None,
        )

    @staticmethod
    def jvp(ctx, tx, ty):
        return _broadcast_sum(ctx, tx, ty)


class Sub(Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.shapes = np.shape(x), np.shape(y)
        return broadcasting("sub", np.subtract, x, y)

    @staticmethod
    def backward(ctx, grad):
        x_shape, y_shape = ctx.shapes
        needs_x, needs_y = ctx.needs_input_grad
        return (
            sum_to_shape(grad, x_shape) if needs_x else None,
            sum_to_shape(-grad, y_shape) if needs_y else None,
        )

    @staticmethod
    def jvp(ctx, tx, ty):
        return _broadcast_sum(ctx, tx, None if ty is None else -ty)


class Mul(Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return broadcasting("mul", np.multiply, x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        needs_x, needs_y = ctx.needs_input_grad
        return (
            sum_to_shape(grad * y, np.shape(x)) if needs_x else None,
            sum_to_shape(grad * x, np.shape(y)) if needs_y else None,
        )

    @staticmethod
    def jvp(ctx, tx, ty):
        x, y = ctx.saved_tensors
        return _broadcast_sum(ctx, None if tx is None else tx * y, None if ty is None else x * ty)


class Div(Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return broadcasting("div", np.true_divide, x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        needs_x, needs_y = ctx.needs_input_grad
        return (
            sum_to_shape(grad / y, np.shape(x)) if needs_x else None,
            sum_to_shape(-grad * x / (y * y), np.shape(y)) if needs_y else None,  # d(x/y)/dy = -x/y^2
        )

    @staticmethod
    def jvp(ctx, tx, ty):
        x, y = ctx.saved_tensors
        return _broadcast_sum(ctx, None if tx is None else tx / y, None if ty is None else -ty * x / (y * y))


class Pow(Function):
    @staticmethod
    def forward(ctx, x, y):
        out = broadcasting("pow", np.power, x, y)
        ctx.save_for_backward(x, y, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, y, out = ctx.saved_tensors
        needs_x, needs_y = ctx.needs_input_grad
        return (
            sum_to_shape(grad * y * x ** (y - 1), np.shape(x)) if needs_x else None,
            sum_to_shape(grad * out * _log(x), np.shape(y)) if needs_y else None,  # d x^y/dy = x^y ln x
        )

    @staticmethod
    def jvp(ctx, tx, ty):
        x, y, out = ctx.saved_tensors
        return _broadcast_sum(ctx, None if tx is None else tx * y * x ** (y - 1), None if ty is None else ty * out * _log(x))


def _expand_to(t, shape):
    """A tangent broadcast to the output's shape (the JVP of broadcasting)."""
    return t if t.shape == tuple(shape) else t.expand(*shape)


def _broadcast_sum(ctx, tx, ty):
    """The output tangent of a binary op from its two terms, each None or broadcastable to the
    output's shape: the JVP counterpart of ``sum_to_shape``."""
    terms = [_expand_to(t, ctx.output_shape) for t in (tx, ty) if t is not None]
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def _log(x):
    if hasattr(x, "log"):
        return x.log()
    # a constant base (2 ** t): a number's log stays a Python float, so float32 stays float32
    return float(np.log(x)) if np.ndim(x) == 0 else np.log(x)


class Maximum(Function):
    """Elementwise max; at a tie each side gets half the gradient (as torch.maximum)."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.shapes = np.shape(x), np.shape(y)
        out = broadcasting("maximum", np.maximum, x, y)
        dtype = out.dtype
        ctx.x_share = (x > y).astype(dtype) + (x == y).astype(dtype) * dtype.type(0.5)
        return out

    @staticmethod
    def backward(ctx, grad):
        x_shape, y_shape = ctx.shapes
        needs_x, needs_y = ctx.needs_input_grad
        return (
            sum_to_shape(grad * ctx.x_share, x_shape) if needs_x else None,
            sum_to_shape(grad * (1 - ctx.x_share), y_shape) if needs_y else None,
        )

    @staticmethod
    def jvp(ctx, tx, ty):
        return _broadcast_sum(ctx, None if tx is None else tx * ctx.x_share, None if ty is None else ty * (1 - ctx.x_share))


class Where(Function):
    """``where(condition, x, y)``; the condition is a constant boolean array."""

    @staticmethod
    def forward(ctx, condition, x, y):
        ctx.condition = np.asarray(condition, dtype=bool)
        ctx.shapes = np.shape(x), np.shape(y)
        return broadcasting("where", np.where, ctx.condition, x, y)

    @staticmethod
    def backward(ctx, grad):
        x_shape, y_shape = ctx.shapes
        _, needs_x, needs_y = ctx.needs_input_grad
        return (
            None,
            sum_to_shape(KeepWhere.apply(grad, ctx.condition), x_shape) if needs_x else None,
            sum_to_shape(KeepWhere.apply(grad, ~ctx.condition), y_shape) if needs_y else None,
        )

    @staticmethod
    def jvp(ctx, _, tx, ty):
        shape = ctx.output_shape
        return _broadcast_sum(ctx, None if tx is None else KeepWhere.apply(_expand_to(tx, shape), ctx.condition),
                              None if ty is None else KeepWhere.apply(_expand_to(ty, shape), ~ctx.condition))
