"""Gradient and parameter utilities used around ``backward()`` and ``optimizer.step()``, at
torch's paths (``torch.nn.utils.clip_grad_norm_`` ...).

- ``clip_grad_norm_``: scale all gradients together so their joint norm is at most a bound
- ``clip_grad_value_``: clamp every gradient coordinate into [-bound, bound]
- ``parameters_to_vector`` / ``vector_to_parameters``: all parameters as one flat vector and back
- ``zero_grads``: forget the gradients (``Module.zero_grad``, ``Optimizer.zero_grad``)
"""
import math

import numpy as np

from ..autograd import no_grad
from ..tensor_class import Tensor, concatenate


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients in place so that their joint norm is at most ``max_norm``; as torch.

    The joint norm is the ``norm_type`` norm of all gradients concatenated into one vector
    (``inf`` for the largest absolute value). When it exceeds ``max_norm``, every gradient is
    multiplied by max_norm / (norm + 1e-6). Returns the norm *before* clipping, as a scalar Tensor.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    norm_type = float(norm_type)
    if not grads:
        return Tensor(np.array(0.0, dtype=np.float32))
    dtype = grads[0].dtype
    # the norm of the per-tensor norms equals the norm of everything concatenated
    per_tensor = np.array([np.linalg.norm(g.data.ravel(), ord=norm_type) for g in grads], dtype=dtype)
    total = np.linalg.norm(per_tensor, ord=norm_type).astype(dtype)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}, so they cannot be "
            "clipped; pass error_if_nonfinite=False to scale them anyway"
        )
    scale = min(max_norm / (float(total) + 1e-6), 1.0)
    if scale < 1.0 or math.isnan(scale):
        with no_grad():
            for g in grads:
                g.mul_(scale)
    return Tensor(total)


def zero_grads(parameters, set_to_none: bool = True) -> None:
    """Forget the gradients: set ``.grad`` to None (torch's default, and cheaper) or fill it with
    zeros. What ``Module.zero_grad`` and ``Optimizer.zero_grad`` do."""
    for p in parameters:
        if p.grad is None:
            continue
        if set_to_none:
            p.grad = None
        else:
            with no_grad():
                p.grad = p.grad.detach()  # a gradient made with create_graph=True leaves its graph
                p.grad.zero_()


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient coordinate into [-clip_value, clip_value], in place; as torch.

    Unlike ``clip_grad_norm_`` this changes the direction of the gradient: each coordinate is
    clipped on its own.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    clip_value = float(clip_value)
    with no_grad():
        for p in parameters:
            if p.grad is not None:
                p.grad.copy_(np.clip(p.grad.data, -clip_value, clip_value))


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and joined into one 1-D Tensor, in order; as torch, the result
    is part of the graph, so a loss computed from it has gradients for the parameters."""
    return concatenate([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of the 1-D Tensor ``vec`` into the parameters, in order (the inverse
    of ``parameters_to_vector``). As torch, each parameter's ``.data`` becomes a view of ``vec``."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected vec to be a Tensor, got {type(vec).__name__}")
    parameters = list(parameters)
    needed = sum(p.data.size for p in parameters)
    if vec.ndim != 1 or vec.data.size != needed:
        raise ValueError(f"vector_to_parameters: vec has shape {vec.shape}, but the parameters need a 1-D "
                         f"vector of {needed} values")
    start = 0
    for p in parameters:
        p.data = vec.data[start:start + p.data.size].reshape(p.shape)
        start += p.data.size
