"""NAdam, as ``torch.optim.NAdam`` (Dozat 2016): Adam with Nesterov momentum.

Adam steps along the running average m of the gradients; NAdam looks one step ahead, stepping
along a mix of the current gradient and the *next* average, with the momentum coefficient mu_t
warming up over the first steps (``momentum_decay``). ``decoupled_weight_decay=True`` shrinks the
parameter directly, as AdamW does, instead of adding ``weight_decay * p`` to the gradient.

The running product M_t is kept as a Python float (float64). torch keeps it in its default dtype,
float32 unless changed, even for float64 parameters: its steps then differ from these by about
1e-8 relative; with ``torch.set_default_dtype(torch.float64)`` they agree to rounding.
"""
import numpy as np

from .optimizer import Optimizer, check_hyperparameters, count_step, decay_weights, lerp_


class NAdam(Optimizer):
    """For each parameter p with gradient g, at step t = 1, 2, ...:

        g = g + weight_decay * p          (or, decoupled, p = p * (1 - lr * weight_decay))
        mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        M_t = mu_1 * ... * mu_t
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        d = sqrt(v / (1 - beta2**t)) + eps
        p = p - lr * (1 - mu_t) / (1 - M_t) * g / d - lr * mu_{t+1} / (1 - M_t * mu_{t+1}) * m / d
    """

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, *, maximize: bool = False):
        check_hyperparameters("NAdam", lr=lr, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay)
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"NAdam: betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def _update(self, param, grad, group, state):
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        momentum_decay = float(group["momentum_decay"])
        step = count_step(state, param, "exp_avg", "exp_avg_sq")
        if step == 1:
            state["mu_product"] = 1.0
        m, v = state["exp_avg"], state["exp_avg_sq"]
        grad = decay_weights(param, grad, lr, weight_decay, group.get("decoupled_weight_decay", False))
        mu = beta1 * (1 - 0.5 * 0.96 ** (step * momentum_decay))
        mu_next = beta1 * (1 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
        state["mu_product"] *= mu
        mu_product = state["mu_product"]
        lerp_(m, grad, 1 - beta1)
        v *= beta2
        v += (1 - beta2) * grad * grad
        denominator = np.sqrt(v / (1 - beta2**step)) + eps
        param.sub_(lr * (1 - mu) / (1 - mu_product) * grad / denominator)
        param.sub_(lr * mu_next / (1 - mu_product * mu_next) * m / denominator)
