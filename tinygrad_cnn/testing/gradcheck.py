"""Numerical gradient checks: compare the graph's gradients with central differences in float64.

``gradcheck`` checks first derivatives, ``gradgradcheck`` second derivatives (the gradient of the
backward pass itself), ``check_gradients`` every order up to ``order``. Each draws a fixed random
vector ``v`` per output and compares, element by element of every input, the analytic
vector-Jacobian product ``v . dy/dx`` with the central difference
``(v . f(x + eps) - v . f(x - eps)) / (2 eps)``. A mismatch raises ``GradcheckError`` naming the
check (and so the order), the input, the element, and both values.

Higher orders need no new kind of check, only a new function to check. The *derivative map* of
``f`` is ``(x, u) -> u . df/dx``: one backward pass with ``create_graph=True`` and a fixed random
cotangent ``u`` per output, itself a function of tensors whose derivatives the graph can give
again (its arguments include ``u``, since a backward must be linear in it too). Taking the
derivative map of the derivative map k - 1 times gives a function whose first derivatives are the
k-th derivatives of ``f``: order k is the first-order check of that map. Only one level of finite
differences is ever taken, so order 4 is as precise as order 1.

``check_jvp`` does the same for forward mode: the JVP ``J v`` along a fixed random direction ``v``
against ``(f(x + eps v) - f(x - eps v)) / (2 eps)``. ``check_vjp_jvp_consistency`` checks the two
modes against each other without finite differences: ``<u, J v>`` (forward) must equal
``<J^T u, v>`` (reverse) for random ``u`` and ``v``, which catches a wrong rule in either mode to
rounding precision. At order k both run on the (k-1)-th derivative map: forward over reverse, what
``func.hessian`` and ``func.hvp`` compute at order 2.

``check_dtype_preserved`` is the other half of an op's contract: float32 in, float32 out, for the
result and for its gradients of first and second order.
"""
from typing import Callable, NamedTuple

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


def _differentiable(inputs) -> list:
    return [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]


def _projected(outputs, directions) -> float:
    return float(sum(np.sum(o.data * v) for o, v in zip(outputs, directions)))


# ---- derivative maps: the k-th derivatives of f are the first derivatives of a function -------------


class _Map(NamedTuple):
    """A function to check and the arguments to check it at: ``f`` itself (``order`` 1: its first
    derivatives are checked) or a derivative map of it (``order`` k: its first derivatives are the
    k-th derivatives of ``f``), with the names that error messages give to its arguments and outputs."""

    fn: Callable
    arguments: tuple
    names: tuple  # one per argument
    output_name: Callable  # output index -> its name
    order: int


def _function_to_check(fn, inputs) -> _Map:
    return _Map(fn, inputs, tuple(_input_name(inputs, i) for i in range(len(inputs))), lambda k: f"output {k}", 1)


def _derivative_map(previous: _Map, rng, cotangents=None) -> _Map:
    """The derivative map of ``previous.fn``: ``(arguments, u) -> u . d fn / d arguments``, one
    backward pass with ``create_graph=True`` so that it can be differentiated again, returning one
    gradient per differentiable argument (zeros where an argument does not reach the outputs).
    ``u`` holds one cotangent per output that requires grad: ``cotangents``, or fixed random ones
    drawn from ``rng``; they become arguments that require grad, since the map is linear in them."""
    fn, arguments, count = previous.fn, previous.arguments, len(previous.arguments)
    wrt = _differentiable(arguments)
    if cotangents is None:
        cotangents = [rng.standard_normal(o.shape) for o in _as_outputs(fn(*arguments)) if o.requires_grad]
    cotangents = tuple(Tensor(np.array(u.data if isinstance(u, Tensor) else u, dtype=np.float64), requires_grad=True)
                       for u in cotangents)

    def derivative(*args):
        xs, us = args[:count], args[count:]
        outputs = [o for o in _as_outputs(fn(*xs)) if o.requires_grad]
        grads = grad(outputs, [xs[i] for i in wrt], grad_outputs=list(us), create_graph=True, allow_unused=True)
        return tuple(Tensor(np.zeros(xs[i].shape, xs[i].dtype)) if g is None else g for i, g in zip(wrt, grads))

    # the first backward pass's cotangents keep gradgradcheck's historical name
    suffix = "" if previous.order == 1 else f" of backward pass {previous.order}"
    names = previous.names + tuple(f"grad_outputs[{m}]{suffix}" for m in range(len(cotangents)))

    def output_name(m: int) -> str:
        return f"output {m} (the derivative with respect to {previous.names[wrt[m]]})"

    return _Map(derivative, arguments + cotangents, names, output_name, previous.order + 1)


def _label(check: str, order: int) -> str:
    """How a check names itself: ``gradcheck``, ``gradgradcheck`` and ``check_jvp`` as ever at
    their own orders, ``order-3 gradcheck``, ``order-2 check_jvp`` above them."""
    if check == "gradcheck" and order == 2:
        return "gradgradcheck"
    return check if order == 1 else f"order-{order} {check}"


# ---- reverse mode ----------------------------------------------------------------------------------------


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


def _check(checked_map: _Map, label, eps, atol, rtol) -> bool:
    """Reverse mode's first derivatives of ``checked_map.fn`` against central differences."""
    fn, inputs, names = checked_map.fn, checked_map.arguments, checked_map.names
    numeric_needs_graph = checked_map.order > 1  # a derivative map runs backward inside
    checked = _differentiable(inputs)
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
            raise GradcheckError(f"{label}: {names[i]} has shape {x.shape} but its analytic gradient has shape {g.shape}")
        numeric = _numerical_gradient(evaluate, x, eps)
        wrong = ~(np.abs(g - numeric) <= atol + rtol * np.abs(numeric))  # NaN counts as wrong
        if wrong.any():
            index = tuple(int(k) for k in np.argwhere(wrong)[0])
            raise GradcheckError(
                f"{label}: {names[i]} (shape {x.shape}), element {index}: analytic {g[index]:.8g}, "
                f"numerical {numeric[index]:.8g} (difference {g[index] - numeric[index]:.3g}; "
                f"{int(wrong.sum())} of {x.size} elements disagree; atol={atol}, rtol={rtol}, eps={eps})"
            )
    return True


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3) -> bool:
    """Check first derivatives of ``fn(*inputs)`` with respect to every input with requires_grad.

    Inputs are copied to float64. Returns True, or raises ``GradcheckError`` that names the input,
    the element index, and the analytic and numerical values.
    """
    return _check(_function_to_check(fn, _copies(inputs, np.float64)), "gradcheck", eps, atol, rtol)


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3) -> bool:
    """Check second derivatives: gradcheck of the map (inputs, v) -> v . d fn / d inputs, computed
    with ``create_graph=True``. ``grad_outputs`` (one per differentiable output) defaults to fixed
    random tensors; they are checked as inputs too, since the backward must be linear in them."""
    function = _function_to_check(fn, _copies(inputs, np.float64))
    first = _derivative_map(function, np.random.default_rng(1), grad_outputs)
    return _check(first, "gradgradcheck", eps, atol, rtol)


# ---- forward mode ----------------------------------------------------------------------------------------


def _jvp(fn, inputs, checked, directions):
    """The outputs of ``fn(*inputs)`` and their tangents along ``directions`` (one per checked input)."""
    with forward_ad.dual_level() as level:
        duals = list(inputs)
        for i, v in zip(checked, directions):
            duals[i] = forward_ad.make_dual(inputs[i], Tensor(v))
        outputs = _as_outputs(fn(*duals))
        tangents = [forward_ad.unpack_dual(o, level=level).tangent for o in outputs]
    return outputs, [np.zeros(o.shape) if t is None else t.data for o, t in zip(outputs, tangents)]


def _check_jvp(checked_map: _Map, label, eps, atol, rtol) -> bool:
    inputs = _copies(checked_map.arguments, np.float64)
    fn = checked_map.fn
    checked = _differentiable(inputs)
    if not checked:
        raise ValueError(f"{label}: no input has requires_grad=True, so there is nothing to check")
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
        name = checked_map.output_name(k)
        if t.shape != numeric.shape:
            raise GradcheckError(f"{label}: {name} has shape {numeric.shape} but its tangent has shape {t.shape}")
        wrong = ~(np.abs(t - numeric) <= atol + rtol * np.abs(numeric))
        if wrong.any():
            index = tuple(int(j) for j in np.argwhere(wrong)[0])
            raise GradcheckError(
                f"{label}: {name} (shape {numeric.shape}), element {index}: forward-mode tangent "
                f"{t[index]:.8g}, numerical {numeric[index]:.8g} ({int(wrong.sum())} of {t.size} elements "
                f"disagree; atol={atol}, rtol={rtol}, eps={eps})"
            )
    return True


def check_jvp(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3) -> bool:
    """Check forward mode: the JVP of ``fn(*inputs)`` along a fixed random direction for every
    input with requires_grad, against central differences along that direction, in float64.
    Raises ``GradcheckError`` naming the output and element that disagree."""
    return _check_jvp(_function_to_check(fn, _copies(inputs, np.float64)), "check_jvp", eps, atol, rtol)


def _check_consistency(checked_map: _Map, label, atol, rtol) -> bool:
    inputs = _copies(checked_map.arguments, np.float64)
    fn = checked_map.fn
    checked = _differentiable(inputs)
    if not checked:
        raise ValueError(f"{label}: no input has requires_grad=True, so there is nothing to check")
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
            f"{label}: <u, J v> = {forward:.12g} by forward mode but <J^T u, v> = "
            f"{reverse:.12g} by reverse mode (difference {forward - reverse:.3g}; atol={atol}, rtol={rtol})"
        )
    return True


def check_vjp_jvp_consistency(fn, *inputs, atol=1e-9, rtol=1e-7) -> bool:
    """Check that forward and reverse mode agree: ``<u, J v> = <J^T u, v>`` for fixed random ``u``
    (one per output) and ``v`` (one per input with requires_grad), in float64 and without finite
    differences, so the tolerance is close to rounding. Raises ``GradcheckError`` with both sides."""
    return _check_consistency(_function_to_check(fn, _copies(inputs, np.float64)), "check_vjp_jvp_consistency",
                              atol, rtol)


# ---- every order, both modes -------------------------------------------------------------------------------


def check_gradients(fn, *inputs, order=2, modes=("rev",), eps=1e-6, atol=1e-5, rtol=1e-3) -> bool:
    """Check the derivatives of ``fn(*inputs)`` of every order from 1 to ``order`` (any whole
    number >= 1) in each of ``modes``. Order k checks the first derivatives of the (k-1)-th
    derivative map (see the module docstring; order 1 checks ``fn`` itself):

    - ``"rev"``: ``gradcheck`` of it, reverse mode k times over (order 2 is ``gradgradcheck``);
    - ``"fwd"``: ``check_jvp`` and ``check_vjp_jvp_consistency`` of it, forward mode over k - 1
      reverse passes (order 2 is what ``hessian`` and ``hvp`` compute).

    Orders are checked from the lowest, so the first error is at the lowest order that is wrong.
    Returns True or raises ``GradcheckError`` whose message starts with the check and its order
    (``order-3 gradcheck: ...``) and names the input or output and element that disagree.
    """
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"check_gradients: order must be a whole number >= 1, got {order!r}")
    unknown = set(modes) - {"rev", "fwd"}
    if unknown or not modes:
        raise ValueError(f"check_gradients: modes must be a non-empty tuple of 'rev' and 'fwd', got {modes!r}")
    checked_map = _function_to_check(fn, _copies(inputs, np.float64))
    rng = np.random.default_rng(1)  # the cotangents of every backward pass, drawn in turn
    for k in range(1, order + 1):
        if k > 1:
            checked_map = _derivative_map(checked_map, rng)
        if "rev" in modes:
            _check(checked_map, _label("gradcheck", k), eps, atol, rtol)
        if "fwd" in modes:
            _check_jvp(checked_map, _label("check_jvp", k), eps, atol, rtol)
            _check_consistency(checked_map, _label("check_vjp_jvp_consistency", k), atol=1e-9, rtol=1e-7)
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
