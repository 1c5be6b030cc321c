"""Gradient utilities used around ``backward()`` and ``optimizer.step()``."""
import math

import numpy as np

from ..autograd import no_grad
from ..tensor_class import Tensor


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
