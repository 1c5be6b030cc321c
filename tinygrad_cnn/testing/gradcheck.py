"""Numerical gradient checks: compare the graph's gradients with central differences in float64.

``gradcheck`` checks first derivatives, ``gradgradcheck`` second derivatives (the gradient of the
backward pass itself). Both draw a fixed random vector ``v`` for each output and compare, element by
element of every input, the analytic vector-Jacobian product ``v . dy/dx`` with
``(v . f(x + eps) - v . f(x - eps)) / (2 eps)``. A mismatch raises ``GradcheckError`` naming the
input, the element, and both values.
"""
import numpy as np

from ..autograd import grad
from ..tensor import Tensor


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with the numerical one."""


def _as_outputs(result) -> tuple:
    outputs = (result,) if isinstance(result, Tensor) else tuple(result)
    for out in outputs:
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: the function must return Tensors, got {type(out).__name__}")
    return outputs


def _float64_copies(inputs) -> tuple:
    """Float64 copies of the inputs (so the check can nudge them), keeping requires_grad."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    copies = []
    for x in inputs:
        if isinstance(x, Tensor) and x.dtype.kind == "f":
            copies.append(Tensor(np.array(x.data, dtype=np.float64), requires_grad=x.requires_grad))
        else:
            copies.append(x)
    return tuple(copies)


def _projected(outputs, directions) -> float:
    return float(sum(np.sum(o.data * v) for o, v in zip(outputs, directions)))


def _check(fn, inputs, names, eps, atol, rtol) -> bool:
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
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

    for i, g in zip(checked, analytic):
        x = inputs[i].data
        g = np.zeros_like(x) if g is None else g.data
        for index in np.ndindex(x.shape):
            original = x[index]
            x[index] = original + eps
            plus = _projected(_as_outputs(fn(*inputs)), directions)
            x[index] = original - eps
            minus = _projected(_as_outputs(fn(*inputs)), directions)
            x[index] = original
            numeric = (plus - minus) / (2 * eps)
            if not abs(g[index] - numeric) <= atol + rtol * abs(numeric):
                raise GradcheckError(
                    f"{names(i)} (shape {x.shape}), element {index}: analytic gradient {g[index]:.8g}, "
                    f"numerical {numeric:.8g} (difference {g[index] - numeric:.3g}; atol={atol}, rtol={rtol}, "
                    f"eps={eps})"
                )
    return True


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3) -> bool:
    """Check first derivatives of ``fn(*inputs)`` with respect to every input with requires_grad.

    Inputs are copied to float64. Returns True, or raises ``GradcheckError`` that names the input,
    the element index, and the analytic and numerical values.
    """
    return _check(fn, _float64_copies(inputs), lambda i: f"gradcheck: input {i}", eps, atol, rtol)


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3) -> bool:
    """Check second derivatives: gradcheck of the map (inputs, v) -> v . d fn / d inputs, computed
    with ``create_graph=True``. ``grad_outputs`` (one per output) defaults to fixed random tensors;
    they are checked as inputs too, since the backward must be linear in them."""
    inputs = _float64_copies(inputs)
    n = len(inputs)
    differentiable = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if grad_outputs is None:
        rng = np.random.default_rng(1)
        grad_outputs = [
            Tensor(rng.standard_normal(o.shape), requires_grad=True) for o in _as_outputs(fn(*inputs)) if o.requires_grad
        ]
    grad_outputs = _float64_copies([Tensor(g.data if isinstance(g, Tensor) else g, requires_grad=True) for g in grad_outputs])

    def first_derivatives(*args):
        xs, vs = args[:n], args[n:]
        outputs = [o for o in _as_outputs(fn(*xs)) if o.requires_grad]
        grads = grad(outputs, [xs[i] for i in differentiable], grad_outputs=list(vs), create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    def names(i):
        return f"gradgradcheck: input {i}" if i < n else f"gradgradcheck: grad_outputs[{i - n}]"

    return _check(first_derivatives, (*inputs, *grad_outputs), names, eps, atol, rtol)
