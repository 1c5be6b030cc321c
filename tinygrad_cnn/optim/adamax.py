"""Adamax, as ``torch.optim.Adamax`` (Kingma & Ba 2015, section 7.1).

Adam with the infinity norm in place of the root mean square: the step is divided by a decaying
maximum of |g| instead of the root of a running average of g^2, which needs no bias correction
(it does not start biased towards 0 the way an average of zeros does).
"""
import numpy as np

from .optimizer import Optimizer, check_hyperparameters, count_step, decay_weights, lerp_


class Adamax(Optimizer):
    """For each parameter p with gradient g, at step t = 1, 2, ...:

        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        u = max(beta2 * u, |g| + eps)
        p = p - lr / (1 - beta1**t) * m / u
    """

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 *, maximize: bool = False):
        check_hyperparameters("Adamax", lr=lr, eps=eps, weight_decay=weight_decay)
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"Adamax: betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize))

    def _update(self, param, grad, group, state):
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        step = count_step(state, param, "exp_avg", "exp_inf")
        grad = decay_weights(param, grad, lr, weight_decay)
        m, u = state["exp_avg"], state["exp_inf"]
        lerp_(m, grad, 1 - beta1)
        np.maximum(u * beta2, np.abs(grad) + eps, out=u)
        param.sub_(lr / (1 - beta1**step) * m / u)
