"""Numerical gradient checks: compare the graph's gradients with central differences in float64.

``gradcheck`` checks first derivatives, ``gradgradcheck`` second derivatives (the gradient of the
backward pass itself), ``check_gradients`` runs both. Each draws a fixed random vector ``v`` per
output and compares, element by element of every input, the analytic vector-Jacobian product
``v . dy/dx`` with the central difference ``(v . f(x + eps) - v . f(x - eps)) / (2 eps)``.
A mismatch raises ``GradcheckError`` naming the input, the element, and both values.

``check_jvp`` does the same for forward mode: the JVP ``J v`` along a fixed random direction ``v``
against ``(f(x + eps v) - f(x - eps v)) / (2 eps)``. ``check_vjp_jvp_consistency`` checks the two
modes against each other without finite differences: ``<u, J v>`` (forward) must equal
``<J^T u, v>`` (reverse) for random ``u`` and ``v``, which catches a wrong rule in either mode to
rounding precision.

``check_dtype_preserved`` is the other half of an op's contract: float32 in, float32 out, for the
result and for its gradients of first and second order.
"""
import numpy as np

from .. import forward_ad
from ..autograd import grad, no_grad
from ..tensor_class import Tensor


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with the numerical one."""


def _as_outputs(result) -> tuple:
    outputs = (result,) if isinstance(result, Tensor) else tuple(result)
    for out in outputs:
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: the function must return Tensors, got {type(out).__name__}")
    return outputs


def _is_float_tensor(x) -> bool:
    return isinstance(x, Tensor) and x.dtype.kind == "f"


def _copies(inputs, dtype) -> tuple:
    """Copies of the float Tensor inputs in ``dtype`` (so a check can nudge them), keeping
    requires_grad; other inputs (integer targets, hyperparameters) pass through."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    return tuple(_copy(x, dtype) if _is_float_tensor(x) else x for x in inputs)


def _copy(x: Tensor, dtype) -> Tensor:
    copy = Tensor(np.array(x.data, dtype=dtype), requires_grad=x.requires_grad)
    copy.name = x.name  # error messages name the input the way the caller did
    return copy


def _input_name(inputs, i: int) -> str:
    name = getattr(inputs[i], "name", None)
    return f"input {i}" + (f" ({name!r})" if name else "")


def _projected(outputs, directions) -> float:
    return float(sum(np.sum(o.data * v) for o, v in zip(outputs, directions)))


def _numerical_gradient(evaluate, x: np.ndarray, eps: float) -> np.ndarray:
    """d evaluate() / d x by central differences, nudging ``x`` in place one element at a time."""
    numeric = np.empty(x.shape)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + eps
        plus = evaluate()
        x[index] = original - eps
        minus = evaluate()
        x[index] = original
        numeric[index] = (plus - minus) / (2 * eps)
    return numeric


def _check(fn, inputs, label, names, eps, atol, rtol, numeric_needs_graph) -> bool:
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError(f"{label}: no input has requires_grad=True, so there is nothing to check")
    outputs = _as_outputs(fn(*inputs))
    rng = np.random.default_rng(0)
    directions = [rng.standard_normal(o.shape) for o in outputs]
    differentiable = [(o, Tensor(v)) for o, v in zip(outputs, directions) if o.requires_grad]
    if differentiable:
        analytic = grad(
            [o for o, _ in differentiable],
            [inputs[i] for i in checked],
            grad_outputs=[v for _, v in differentiable],
            allow_unused=True,
        )
    else:
        analytic = (None,) * len(checked)

    def evaluate():
        if numeric_needs_graph:
            return _projected(_as_outputs(fn(*inputs)), directions)
        with no_grad():  # a forward pass only: no graph to record
            return _projected(_as_outputs(fn(*inputs)), directions)

    for i, g in zip(checked, analytic):
        x = inputs[i].data
        g = np.zeros(x.shape) if g is None else g.data
        if g.shape != x.shape:
            raise GradcheckError(f"{label}: {names(i)} has shape {x.shape} but its analytic gradient has shape {g.shape}")
        numeric = _numerical_gradient(evaluate, x, eps)
        wrong = ~(np.abs(g - numeric) <= atol + rtol * np.abs(numeric))  # NaN counts as wrong
        if wrong.any():
            index = tuple(int(k) for k in np.argwhere(wrong)[0])
            raise GradcheckError(
                f"{label}: {names(i)} (shape {x.shape}), element {index}: analytic {g[index]:.8g}, "
                f"numerical {numeric[index]:.8g} (difference {g[index] - numeric[index]:.3g}; "
                f"{int(wrong.sum())} of {x.size} elements disagree; atol={atol}, rtol={rtol}, eps={eps})"
            )
    return True


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3) -> bool:
    """Check first derivatives of ``fn(*inputs)`` with respect to every input with requires_grad.

    Inputs are copied to float64. Returns True, or raises ``GradcheckError`` that names the input,
    the element index, and the analytic and numerical values.
    """
    inputs = _copies(inputs, np.float64)
    return _check(fn, inputs, "gradcheck", lambda i: _input_name(inputs, i), eps, atol, rtol, numeric_needs_graph=False)


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3) -> bool:
    """Check second derivatives: gradcheck of the map (inputs, v) -> v . d fn / d inputs, computed
    with ``create_graph=True``. ``grad_outputs`` (one per differentiable output) defaults to fixed
    random tensors; they are checked as inputs too, since the backward must be linear in them."""
    inputs = _copies(inputs, np.float64)
    n = len(inputs)
    differentiable = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if grad_outputs is None:
        rng = np.random.default_rng(1)
        grad_outputs = [rng.standard_normal(o.shape) for o in _as_outputs(fn(*inputs)) if o.requires_grad]
    grad_outputs = [Tensor(np.array(g.data if isinstance(g, Tensor) else g, dtype=np.float64), requires_grad=True)
                    for g in grad_outputs]

    def first_derivatives(*args):
        xs, vs = args[:n], args[n:]
        outputs = [o for o in _as_outputs(fn(*xs)) if o.requires_grad]
        grads = grad(outputs, [xs[i] for i in differentiable], grad_outputs=list(vs), create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    def names(i):
        return _input_name(inputs, i) if i < n else f"grad_outputs[{i - n}]"

    return _check(first_derivatives, (*inputs, *grad_outputs), "gradgradcheck", names, eps, atol, rtol,
                  numeric_needs_graph=True)


def _differentiable(inputs) -> list:
    return [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]


def _jvp(fn, inputs, checked, directions):
    """The outputs of ``fn(*inputs)`` and their tangents along ``directions`` (one per checked input)."""
    with forward_ad.dual_level() as level:
        duals = list(inputs)
        for i, v in zip(checked, directions):
            duals[i] = forward_ad.make_dual(inputs[i], Tensor(v))
        outputs = _as_outputs(fn(*duals))
        tangents = [forward_ad.unpack_dual(o, level=level).tangent for o in outputs]
    return outputs, [np.zeros(o.shape) if t is None else t.data for o, t in zip(outputs, tangents)]


def check_jvp(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3) -> bool:
    """Check forward mode: the JVP of ``fn(*inputs)`` along a fixed random direction for every
    input with requires_grad, against central differences along that direction, in float64.
    Raises ``GradcheckError`` naming the output and element that disagree."""
    inputs = _copies(inputs, np.float64)
    checked = _differentiable(inputs)
    if not checked:
        raise ValueError("check_jvp: no input has requires_grad=True, so there is nothing to check")
    rng = np.random.default_rng(2)
    directions = [rng.standard_normal(inputs[i].shape) for i in checked]
    outputs, analytic = _jvp(fn, inputs, checked, directions)

    def nudged(sign):
        moved = list(inputs)  # still requiring grad: fn may itself take gradients (forward over reverse)
        for i, v in zip(checked, directions):
            moved[i] = Tensor(inputs[i].data + sign * eps * v, requires_grad=True)
        return [o.data for o in _as_outputs(fn(*moved))]

    plus, minus = nudged(1), nudged(-1)
    for k, (t, p, m) in enumerate(zip(analytic, plus, minus)):
        if not np.issubdtype(np.asarray(p).dtype, np.floating):
            continue  # an integer output (indices) has no tangent
        numeric = (np.asarray(p, dtype=np.float64) - m) / (2 * eps)
        if t.shape != numeric.shape:
            raise GradcheckError(f"check_jvp: output {k} has shape {numeric.shape} but its tangent has shape {t.shape}")
        wrong = ~(np.abs(t - numeric) <= atol + rtol * np.abs(numeric))
        if wrong.any():
            index = tuple(int(j) for j in np.argwhere(wrong)[0])
            raise GradcheckError(
                f"check_jvp: output {k} (shape {numeric.shape}), element {index}: forward-mode tangent "
                f"{t[index]:.8g}, numerical {numeric[index]:.8g} ({int(wrong.sum())} of {t.size} elements "
                f"disagree; atol={atol}, rtol={rtol}, eps={eps})"
            )
    return True


def check_vjp_jvp_consistency(fn, *inputs, atol=1e-9, rtol=1e-7) -> bool:
    """Check that forward and reverse mode agree: ``<u, J v> = <J^T u, v>`` for fixed random ``u``
    (one per output) and ``v`` (one per input with requires_grad), in float64 and without finite
    differences, so the tolerance is close to rounding. Raises ``GradcheckError`` with both sides."""
    inputs = _copies(inputs, np.float64)
    checked = _differentiable(inputs)
    if not checked:
        raise ValueError("check_vjp_jvp_consistency: no input has requires_grad=True, so there is nothing to check")
    rng = np.random.default_rng(3)
    directions = [rng.standard_normal(inputs[i].shape) for i in checked]
    outputs, tangents = _jvp(fn, inputs, checked, directions)
    cotangents = [rng.standard_normal(o.shape) for o in outputs]
    forward = sum(float(np.sum(u * t)) for u, t in zip(cotangents, tangents))
    outputs = _as_outputs(fn(*inputs))
    live = [(o, Tensor(u)) for o, u in zip(outputs, cotangents) if o.requires_grad]
    reverse = 0.0
    if live:
        grads = grad([o for o, _ in live], [inputs[i] for i in checked], grad_outputs=[u for _, u in live],
                     allow_unused=True)
        reverse = sum(float(np.sum(g.data * v)) for g, v in zip(grads, directions) if g is not None)
    if not abs(forward - reverse) <= atol + rtol * max(abs(forward), abs(reverse)):
        raise GradcheckError(
            f"check_vjp_jvp_consistency: <u, J v> = {forward:.12g} by forward mode but <J^T u, v> = "
            f"{reverse:.12g} by reverse mode (difference {forward - reverse:.3g}; atol={atol}, rtol={rtol})"
        )
    return True


def _first_derivatives(fn, inputs):
    """The map (inputs, v) -> v . d fn / d inputs (reverse mode, differentiable again) and its
    arguments: what ``gradgradcheck`` checks, and what forward-over-reverse differentiates."""
    n = len(inputs)
    differentiable = _differentiable(inputs)
    rng = np.random.default_rng(1)
    vs = [Tensor(rng.standard_normal(o.shape), requires_grad=True) for o in _as_outputs(fn(*inputs)) if o.requires_grad]

    def first(*args):
        xs, us = args[:n], args[n:]
        outputs = [o for o in _as_outputs(fn(*xs)) if o.requires_grad]
        grads = grad(outputs, [xs[i] for i in differentiable], grad_outputs=list(us), create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return first, (*inputs, *vs)


def check_gradients(fn, *inputs, order=2, modes=("rev",), eps=1e-6, atol=1e-5, rtol=1e-3) -> bool:
    """Check the derivatives of ``fn(*inputs)`` up to ``order`` (1 or 2) in each of ``modes``:

    - ``"rev"``: ``gradcheck``, and for order 2 ``gradgradcheck`` (reverse over reverse);
    - ``"fwd"``: ``check_jvp`` and ``check_vjp_jvp_consistency``, and for order 2 the same checks of
      the gradient map (forward over reverse: what ``hessian`` and ``hvp`` compute).

    Returns True or raises ``GradcheckError`` naming the input or output and element that disagree.
    """
    if order not in (1, 2):
        raise ValueError(f"check_gradients: order must be 1 or 2, got {order!r}")
    unknown = set(modes) - {"rev", "fwd"}
    if unknown or not modes:
        raise ValueError(f"check_gradients: modes must be a non-empty tuple of 'rev' and 'fwd', got {modes!r}")
    if "rev" in modes:
        gradcheck(fn, inputs, eps=eps, atol=atol, rtol=rtol)
        if order == 2:
            gradgradcheck(fn, inputs, eps=eps, atol=atol, rtol=rtol)
    if "fwd" in modes:
        check_jvp(fn, *inputs, eps=eps, atol=atol, rtol=rtol)
        check_vjp_jvp_consistency(fn, *inputs)
        if order == 2:
            first, arguments = _first_derivatives(fn, _copies(inputs, np.float64))
            if first(*arguments):  # a function linear in its inputs has nothing more to check
                check_jvp(first, *arguments, eps=eps, atol=atol, rtol=rtol)
                check_vjp_jvp_consistency(first, *arguments)
    return True


def check_dtype_preserved(fn, *inputs, dtype=np.float32, order=2) -> bool:
    """Run ``fn`` on ``dtype`` copies of the float inputs and check that every floating-point
    output, every gradient with respect to the inputs, and (``order=2``) every second-order
    gradient has that dtype. Raises ``AssertionError`` naming what changed dtype."""
    inputs = _copies(inputs, dtype)
    dtype = np.dtype(dtype)
    outputs = _as_outputs(fn(*inputs))
    for k, out in enumerate(outputs):
        if out.dtype.kind == "f" and out.dtype != dtype:
            raise AssertionError(f"output {k} has dtype {out.dtype}, inputs were {dtype}")
    wrt = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    differentiable = [o for o in outputs if o.requires_grad]
    if not wrt or not differentiable:
        return True
    ones = [Tensor(np.ones(o.shape, dtype=dtype)) for o in differentiable]
    grads = grad(differentiable, wrt, grad_outputs=ones, create_graph=order == 2, allow_unused=True)
    for k, g in enumerate(grads):
        if g is not None and g.dtype != dtype:
            raise AssertionError(f"the gradient with respect to input {k} has dtype {g.dtype}, inputs were {dtype}")
    second = [g for g in grads if g is not None and g.requires_grad]
    if order == 2 and second:
        grads2 = grad([g.sum() for g in second], wrt, allow_unused=True)
        for k, g in enumerate(grads2):
            if g is not None and g.dtype != dtype:
                raise AssertionError(f"the second-order gradient with respect to input {k} has dtype {g.dtype}, inputs were {dtype}")
    return True
