"""Elementwise primitives: unary math, binary arithmetic with NumPy broadcasting, selection.

Each docstring opens with the forward and the gradient (``g`` is dL/dy, the gradient arriving from
above). Each backward is written with Tensor operations (``grad * y``), so it is recorded when
``create_graph=True``. Binary ops share ``BinaryOp``, which sums each gradient back to its input's
shape with ``sum_to_shape``, the backward of broadcasting: each binary op states only its two
partial derivatives.

Piecewise-linear ops (relu, abs, clip, maximum) have a gradient whose slope in x is constant
between the kinks. When that gradient is recorded (``create_graph=True``), ``constant_in`` ties it to
x with a zero derivative, so that differentiating it again with respect to x gives zeros (as torch
does for relu) rather than "does not require grad".
"""
import numpy as np

from ..autograd import Function, InputEdge, is_grad_enabled
from ..kernels import active
from .batching import broadcast_operands, elementwise, materialize
from .movement import sum_to_shape

# ---- selection ----------------------------------------------------------------------------------


class KeepWhere(Function):
    """y = x where mask, else 0
    dL/dx = g where mask, else 0
    JVP: dy = dx where mask, else 0
    vmap: the same op, a per-sample mask lined up after the batch's dimension

    ``mask`` is a constant boolean array that broadcasts to ``x``: the gradient of ops that pass
    some values through and block the rest (relu, clamp, where). A blocked value gives 0 even when
    it is inf or NaN, as in torch; ``x * mask`` would give NaN there."""

    @staticmethod
    def forward(ctx, x, mask):
        if np.broadcast_shapes(np.shape(mask), x.shape) != x.shape:
            raise ValueError(f"KeepWhere: mask of shape {np.shape(mask)} does not broadcast to the values' shape {x.shape}")
        ctx.mask = mask
        return active().keep_where(mask, x)

    @staticmethod
    def backward(ctx, grad):
        return KeepWhere.apply(grad, ctx.mask), None  # linear in x, with the same mask

    @staticmethod
    def jvp(ctx, t, _):
        return KeepWhere.apply(t, ctx.mask)

    @staticmethod
    def vmap(info, in_dims, x, mask):
        if in_dims[1] is not None:  # a mask per sample: every sample of x gets its own
            x = materialize(x, in_dims[0], info.batch_size)
            x, mask = broadcast_operands((0, 0), (x, mask), (0, 1))
        return KeepWhere.apply(x, mask), 0


class LocallyConstant(Function):
    """y = v, where v does not change with x near the point where it was computed
    dL/dv = g
    dL/dx = 0
    JVP: dy = dv
    vmap: v, batched as v is

    The gradient of a piecewise-linear op at x is such a v: this ties it to x in the graph, so a
    second derivative with respect to x is zeros (away from the kinks, where it is defined)."""

    @staticmethod
    def forward(ctx, v, x):
        ctx.x_shape, ctx.x_dtype = x.shape, x.dtype
        return v.view()  # a view: an in-place change to either is seen by both version counters

    @staticmethod
    def backward(ctx, grad):
        return grad, np.zeros(ctx.x_shape, ctx.x_dtype) if ctx.needs_input_grad[1] else None

    @staticmethod
    def jvp(ctx, tv, _tx):
        return tv

    @staticmethod
    def vmap(info, in_dims, v, x):
        return LocallyConstant.apply(v, x), in_dims[0]  # y is v; x only ties it to the graph


def constant_in(grad_input, ctx, index: int):
    """``grad_input``, the gradient ``ctx``'s op sends to its input ``index``, tied to that input by
    ``LocallyConstant`` when the gradient is being recorded (``create_graph=True``), else as it is."""
    if not is_grad_enabled() or getattr(ctx, "inputs", None) is None:
        return grad_input  # a first-order backward, or a JVP of an op not in the graph: nothing to tie
    x = ctx.inputs[index]
    if isinstance(x, InputEdge):  # x's value was not kept: its place in the graph is all we need
        from ..tensor_class import Tensor
        x = Tensor._from_op(np.broadcast_to(np.zeros((), x.dtype), x.shape), x.requires_grad, x.grad_fn)
    return LocallyConstant.apply(grad_input, x)


# ---- unary --------------------------------------------------------------------------------------


class Neg(Function):
    """y = −x
    dL/dx = −g
    JVP: dy = −dx
    vmap: the same op on the batch"""

    vmap = elementwise  # batching rule (ops/batching.py): the same op on the batch, operands lined up

    @staticmethod
    def forward(ctx, x):
        return active().elementwise(np.negative, x)

    @staticmethod
    def backward(ctx, grad):
        return -grad

    @staticmethod
    def jvp(ctx, t):
        return -t


class Exp(Function):
    """y = exp x
    dL/dx = g · y
    JVP: dy = dx · y
    vmap: the same op on the batch"""

    vmap = elementwise  # batching rule (ops/batching.py): the same op on the batch, operands lined up

    @staticmethod
    def forward(ctx, x):
        out = active().elementwise(np.exp, x)
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
    """y = ln x
    dL/dx = g / x
    JVP: dy = dx / x
    vmap: the same op on the batch"""

    vmap = elementwise  # batching rule (ops/batching.py): the same op on the batch, operands lined up

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return active().elementwise(np.log, x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        return t / x


class Sqrt(Function):
    """y = √x
    dL/dx = g / (2y)
    JVP: dy = dx / (2 y)
    vmap: the same op on the batch"""

    vmap = elementwise  # batching rule (ops/batching.py): the same op on the batch, operands lined up

    @staticmethod
    def forward(ctx, x):
        out = active().elementwise(np.sqrt, x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (out * 2)

    @staticmethod
    def jvp(ctx, t):
        (out,) = ctx.saved_tensors
        return t / (out * 2)


class Tanh(Function):
    """y = tanh x
    dL/dx = g · (1 − y²)
    JVP: dy = dx · (1 − y²)
    vmap: the same op on the batch

    Both rules are one ``TanhGrad`` op, as torch's are one ``tanh_backward``."""

    vmap = elementwise  # batching rule (ops/batching.py): the same op on the batch, operands lined up

    @staticmethod
    def forward(ctx, x):
        out = active().elementwise(np.tanh, x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return TanhGrad.apply(grad, out)

    @staticmethod
    def jvp(ctx, t):
        (out,) = ctx.saved_tensors
        return TanhGrad.apply(t, out)


class Sigmoid(Function):
    """y = 1 / (1 + exp(−x))
    dL/dx = g · y · (1 − y)
    JVP: dy = dx · y · (1 − y)
    vmap: the same op on the batch"""

    vmap = elementwise  # batching rule (ops/batching.py): the same op on the batch, operands lined up

    @staticmethod
    def forward(ctx, x):
        out = active().sigmoid(x)
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


class Relu(Function):
    """y = max(x, 0)
    dL/dx = g where x > 0, else 0
    JVP: dy = dx where x > 0, else 0
    vmap: the same op on the batch"""

    vmap = elementwise  # batching rule (ops/batching.py): the same op on the batch, operands lined up

    @staticmethod
    def forward(ctx, x):
        kernels = active()
        out = kernels.relu(x)
        if ctx.needs_input_grad[0]:
            # backward needs only where the gradient passes: a byte per value instead of the
            # output's four, and the output itself can be freed once the next op is done with it
            ctx.positive = kernels.relu_mask(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        return constant_in(KeepWhere.apply(grad, ctx.positive), ctx, 0)  # relu'' = 0 away from the kink

    @staticmethod
    def jvp(ctx, t):
        return constant_in(KeepWhere.apply(t, ctx.positive), ctx, 0)


class Abs(Function):
    """y = |x|
    dL/dx = g · sign x
    JVP: dy = dx · sign x
    vmap: the same op on the batch"""

    vmap = elementwise  # batching rule (ops/batching.py): the same op on the batch, operands lined up

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return constant_in(grad * np.sign(x.data), ctx, 0)

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        return constant_in(t * np.sign(x.data), ctx, 0)


class Cast(Function):
    """y = x converted to ``dtype``
    dL/dx = g converted to x's dtype
    JVP: dy = dx converted to ``dtype``
    vmap: the same op on the batch"""

    vmap = elementwise  # batching rule (ops/batching.py): the same op on the batch, operands lined up

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
    """y = min(max(x, low), high)
    dL/dx = g where low ≤ x ≤ high, else 0
    JVP: dy = dx where low ≤ x ≤ high, else 0
    vmap: the same op on the batch

    The slope is 1 at the bounds themselves, as torch.clamp's."""

    vmap = elementwise  # batching rule (ops/batching.py): the same op on the batch, operands lined up

    @staticmethod
    def forward(ctx, x, low, high):
        ctx.inside = (x >= (-np.inf if low is None else low)) & (x <= (np.inf if high is None else high))
        return np.clip(x, low, high)

    @staticmethod
    def backward(ctx, grad):
        return constant_in(KeepWhere.apply(grad, ctx.inside), ctx, 0), None, None

    @staticmethod
    def jvp(ctx, t, _low, _high):
        return constant_in(KeepWhere.apply(t, ctx.inside), ctx, 0)


# ---- binary (NumPy broadcasting) ----------------------------------------------------------------


def _expand_to(t, shape):
    """A tangent broadcast to the output's shape: the JVP of broadcasting, as ``sum_to_shape`` is its VJP."""
    return t if t.shape == tuple(shape) else t.expand(*shape)


def _sum_of(terms):
    """The sum of a linear map's terms, None standing for an input without tangent."""
    terms = [t for t in terms if t is not None]
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def broadcasting(op: str, fn, *operands):
    """``fn(*operands)`` with NumPy broadcasting; shapes that cannot broadcast raise an error naming
    ``op``. The shapes are only examined after NumPy refuses, so the common path costs nothing."""
    try:
        return active().elementwise(fn, *operands) if isinstance(fn, np.ufunc) else fn(*operands)
    except ValueError:
        shapes = [np.shape(a) for a in operands]
        try:
            np.broadcast_shapes(*shapes)
        except ValueError:
            listed = " and ".join(str(s) for s in shapes)
            raise ValueError(f"{op}: shapes {listed} cannot be broadcast together") from None
        raise


class BinaryOp(Function):
    """z = x ∘ y, with x and y broadcast against each other.

    A subclass states its ``forward`` and its two partial derivatives, each already multiplied by
    the incoming gradient g (``grad_x``, ``grad_y``), at the broadcast shape. This base computes only
    the ones ``needs_input_grad`` asks for, and sums each back to its input's shape."""

    vmap = elementwise  # batching rule (ops/batching.py): the same op on the batch, operands lined up

    @classmethod
    def backward(cls, ctx, grad):
        # An input that needs a gradient is a Tensor (or the edge to one), which knows its shape:
        # read here rather than saved by forward, as most binary ops run in a backward pass where
        # nothing asks.
        x, y = ctx.inputs
        needs_x, needs_y = ctx.needs_input_grad
        grad_x = cls.grad_x(ctx, grad) if needs_x else None
        grad_y = cls.grad_y(ctx, grad) if needs_y else None
        # summed only where broadcasting stretched the input: most binary ops broadcast nothing, and
        # the check here saves a call per gradient (a Mul's backward to one input: 38,800
        # instructions instead of 40,400, cachegrind)
        if grad_x is not None and grad_x.shape != x.shape:
            grad_x = sum_to_shape(grad_x, x.shape)
        if grad_y is not None and grad_y.shape != y.shape:
            grad_y = sum_to_shape(grad_y, y.shape)
        return grad_x, grad_y

    @classmethod
    def jvp(cls, ctx, tx, ty):
        # each partial derivative of an elementwise op is diagonal, so it multiplies a tangent exactly
        # as it multiplies a gradient: grad_x and grad_y serve both modes
        shape = ctx.output_shape
        return _sum_of([cls.grad_x(ctx, _expand_to(tx, shape)) if tx is not None else None,
                        cls.grad_y(ctx, _expand_to(ty, shape)) if ty is not None else None])


class Add(BinaryOp):
    """z = x + y
    dL/dx = g
    dL/dy = g
    JVP: dz = dx + dy
    vmap: the same op, each batched operand's dimensions lined up after the batch's"""

    @staticmethod
    def forward(ctx, x, y):
        return broadcasting("add", np.add, x, y)

    @staticmethod
    def grad_x(ctx, grad):
        return grad

    @staticmethod
    def grad_y(ctx, grad):
        return grad


class Sub(BinaryOp):
    """z = x − y
    dL/dx = g
    dL/dy = −g
    JVP: dz = dx − dy
    vmap: the same op, each batched operand's dimensions lined up after the batch's"""

    @staticmethod
    def forward(ctx, x, y):
        return broadcasting("sub", np.subtract, x, y)

    @staticmethod
    def grad_x(ctx, grad):
        return grad

    @staticmethod
    def grad_y(ctx, grad):
        return -grad


class Mul(BinaryOp):
    """z = x · y
    dL/dx = g · y
    dL/dy = g · x
    JVP: dz = dx · y + x · dy
    vmap: the same op, each batched operand's dimensions lined up after the batch's"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return broadcasting("mul", np.multiply, x, y)

    @staticmethod
    def grad_x(ctx, grad):
        return grad * ctx.saved_tensors[1]

    @staticmethod
    def grad_y(ctx, grad):
        return grad * ctx.saved_tensors[0]


class Div(BinaryOp):
    """z = x / y
    dL/dx = g / y
    dL/dy = −g · x / y²
    JVP: dz = dx / y − x · dy / y²
    vmap: the same op, each batched operand's dimensions lined up after the batch's"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return broadcasting("div", np.true_divide, x, y)

    @staticmethod
    def grad_x(ctx, grad):
        return grad / ctx.saved_tensors[1]

    @staticmethod
    def grad_y(ctx, grad):
        x, y = ctx.saved_tensors
        return -grad * x / (y * y)


class Pow(BinaryOp):
    """z = x ** y
    dL/dx = g · y · x ** (y − 1)
    dL/dy = g · z · ln x
    JVP: dz = dx · y · x ** (y − 1) + dy · z · ln x
    vmap: the same op, each batched operand's dimensions lined up after the batch's"""

    @staticmethod
    def forward(ctx, x, y):
        out = broadcasting("pow", np.power, x, y)
        ctx.save_for_backward(x, y, out)
        return out

    @staticmethod
    def grad_x(ctx, grad):
        x, y, _ = ctx.saved_tensors
        return grad * y * x ** (y - 1)

    @staticmethod
    def grad_y(ctx, grad):
        x, _, out = ctx.saved_tensors
        return grad * out * _log(x)


def _log(x):
    if hasattr(x, "log"):
        return x.log()
    # a constant base (2 ** t): a number's log stays a Python float, so float32 stays float32
    return float(np.log(x)) if np.ndim(x) == 0 else np.log(x)


class Maximum(BinaryOp):
    """z = max(x, y)
    dL/dx = g · ([x > y] + ½ [x = y])
    dL/dy = g · ([x < y] + ½ [x = y])
    JVP: dz = dx · ([x > y] + ½ [x = y]) + dy · ([x < y] + ½ [x = y])
    vmap: the same op, each batched operand's dimensions lined up after the batch's

    At a tie each side gets half the gradient, as torch.maximum's."""

    @staticmethod
    def forward(ctx, x, y):
        out = broadcasting("maximum", np.maximum, x, y)
        dtype = out.dtype
        ctx.x_share = (x > y).astype(dtype) + (x == y).astype(dtype) * dtype.type(0.5)
        return out

    @staticmethod
    def grad_x(ctx, grad):
        return constant_in(grad * ctx.x_share, ctx, 0)

    @staticmethod
    def grad_y(ctx, grad):
        return constant_in(grad * (1 - ctx.x_share), ctx, 1)


class TanhGrad(BinaryOp):
    """z = g · (1 − y²), tanh's gradient (y = tanh x, g the gradient arriving at y)
    dL/dg = g' · (1 − y²)
    dL/dy = −2 · g' · g · y
    JVP: dz = dg · (1 − y²) − 2 · g · y · dy
    vmap: the same op, each batched operand's dimensions lined up after the batch's

    One op where ``g * (1 - y * y)`` would be three: in the backward pass of small tensors each op
    costs about the same whatever it computes (4x4 values: 3 to 4 us, of which NumPy takes under
    1), so tanh's backward took three times its share. The same three NumPy operations in the same
    order, so the values are those of the composed form, bit for bit."""

    @staticmethod
    def forward(ctx, g, y):
        ctx.save_for_backward(g, y)
        ew = active().elementwise
        return ew(np.multiply, g, ew(np.subtract, 1, ew(np.multiply, y, y)))

    @staticmethod
    def grad_x(ctx, grad):  # with respect to g, the first operand
        return TanhGrad.apply(grad, ctx.saved_tensors[1])

    @staticmethod
    def grad_y(ctx, grad):  # with respect to y
        g, y = ctx.saved_tensors
        return grad * g * y * -2


class Where(Function):
    """z = x where c, else y
    dL/dx = g where c, else 0
    dL/dy = g where not c, else 0
    JVP: dz = dx where c, else dy
    vmap: the same op, each batched operand's dimensions lined up after the batch's

    The condition c is a constant boolean array."""

    vmap = elementwise  # batching rule (ops/batching.py): the same op on the batch, operands lined up

    @staticmethod
    def forward(ctx, condition, x, y):
        ctx.condition = np.asarray(condition, dtype=bool)
        return broadcasting("where", np.where, ctx.condition, x, y)

    @staticmethod
    def backward(ctx, grad):
        _, x, y = ctx.inputs  # as in BinaryOp.backward, those that need a gradient know their shapes
        _, needs_x, needs_y = ctx.needs_input_grad
        return (
            None,
            sum_to_shape(KeepWhere.apply(grad, ctx.condition), x.shape) if needs_x else None,
            sum_to_shape(KeepWhere.apply(grad, ~ctx.condition), y.shape) if needs_y else None,
        )

    @staticmethod
    def jvp(ctx, _, tx, ty):
        shape = ctx.output_shape
        terms = [KeepWhere.apply(_expand_to(tx, shape), ctx.condition) if tx is not None else None,
                 KeepWhere.apply(_expand_to(ty, shape), ~ctx.condition) if ty is not None else None]
        return _sum_of(terms)
