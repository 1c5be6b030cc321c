"""Adam and AdamW, as ``torch.optim.Adam`` / ``torch.optim.AdamW``.

Both keep running averages of the gradient (m, first moment) and of its square (v, second
moment), and step by m / sqrt(v) per coordinate, corrected for the zeros m and v start from. They
differ only in weight decay: Adam adds ``weight_decay * p`` to the gradient (so it passes through
the moment estimates), AdamW shrinks the parameter directly ("decoupled" weight decay).

``amsgrad=True`` (Reddi et al. 2018) divides by the largest v seen so far instead of the current
one, so a coordinate's step size can only shrink: a rare large gradient is not forgotten.
"""
import math

import numpy as np

from ..kernels import memory
from .optimizer import Optimizer, count_step, decay_weights, in_chunks


class Adam(Optimizer):
    """For each parameter p with gradient g, at step t = 1, 2, ...:

        g = g + weight_decay * p                  (Adam; AdamW instead does p = p * (1 - lr * weight_decay))
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                     (amsgrad only; v_max then replaces v below)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """

    decoupled_weight_decay = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 amsgrad: bool = False, *, maximize: bool = False):
        name = type(self).__name__
        if lr < 0:
            raise ValueError(f"{name}: invalid learning rate {lr}")
        if eps < 0:
            raise ValueError(f"{name}: invalid eps {eps}")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"{name}: betas must be in [0, 1), got {betas}")
        if weight_decay < 0:
            raise ValueError(f"{name}: invalid weight_decay {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _update(self, param, grad, group, state):
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        step = count_step(state, param, "exp_avg", "exp_avg_sq")
        m, v = state["exp_avg"], state["exp_avg_sq"]
        grad = decay_weights(param, grad, lr, weight_decay, self.decoupled_weight_decay)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        amsgrad = group.get("amsgrad", False)
        v_max = state.setdefault("max_exp_avg_sq", np.zeros_like(param.data)) if amsgrad else v
        # Every update is done in place, through one scratch array that ends up holding the step: a
        # parameter-sized temporary per arithmetic step would cost more than the arithmetic on a
        # large layer. It runs over pieces that stay in cache (``in_chunks``).
        update = memory.empty(m.shape, m.dtype)
        for m, v, v_max, g, scratch in in_chunks(m, v, v_max, grad, update):
            # m = beta1 * m + (1 - beta1) * g, written as torch's lerp: m += (1 - beta1) * (g - m)
            m += np.multiply(np.subtract(g, m, out=scratch), 1 - beta1, out=scratch)
            v *= beta2
            v += np.multiply(np.multiply(g, 1 - beta2, out=scratch), g, out=scratch)
            if amsgrad:
                v = np.maximum(v_max, v, out=v_max)
            denominator = np.sqrt(v, out=scratch)
            denominator /= math.sqrt(bias_correction2)
            denominator += eps
            np.multiply(np.divide(m, denominator, out=scratch), lr / bias_correction1, out=scratch)
        param.sub_(update)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p = p * (1 - lr * weight_decay)
    before the Adam step, instead of adding weight_decay * p to the gradient."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
