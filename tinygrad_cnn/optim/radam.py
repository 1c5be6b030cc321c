"""RAdam, as ``torch.optim.RAdam`` (Liu et al. 2020): Adam with its adaptive step rectified.

In the first steps Adam's second-moment estimate rests on a few gradients, and its variance makes
the adaptive step size erratic (why Adam is often warmed up). RAdam measures that with the length
rho_t of the simple moving average the exponential one approximates: while rho_t <= 5 it steps
like SGD with momentum (no division by sqrt(v)), after that by Adam's step times a rectification
r_t that grows to 1.
"""
import math

import numpy as np

from .optimizer import Optimizer, check_hyperparameters, count_step, decay_weights, lerp_


class RAdam(Optimizer):
    """For each parameter p with gradient g, at step t = 1, 2, ...:

        g = g + weight_decay * p          (or, decoupled, p = p * (1 - lr * weight_decay))
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)
        if rho_t > 5:
            r_t = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))
            p = p - lr * m_hat * r_t * sqrt(1 - beta2**t) / (sqrt(v) + eps)
        else:
            p = p - lr * m_hat
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False):
        check_hyperparameters("RAdam", lr=lr, eps=eps, weight_decay=weight_decay)
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"RAdam: betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay, maximize=maximize))

    def _update(self, param, grad, group, state):
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        step = count_step(state, param, "exp_avg", "exp_avg_sq")
        m, v = state["exp_avg"], state["exp_avg_sq"]
        grad = decay_weights(param, grad, lr, weight_decay, group.get("decoupled_weight_decay", False))
        lerp_(m, grad, 1 - beta1)
        v *= beta2
        v += (1 - beta2) * grad * grad
        bias_correction2 = 1 - beta2**step
        corrected_m = m / (1 - beta1**step)
        rho_inf = 2 / (1 - beta2) - 1
        rho = rho_inf - 2 * step * beta2**step / bias_correction2
        if rho > 5:
            rectification = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            adaptive = math.sqrt(bias_correction2) / (np.sqrt(v) + eps)
            param.sub_(corrected_m * lr * adaptive * rectification)
        else:
            param.sub_(corrected_m * lr)
