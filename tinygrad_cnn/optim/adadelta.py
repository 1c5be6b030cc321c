"""Adadelta, as ``torch.optim.Adadelta`` (Zeiler 2012).

It keeps two running averages per coordinate: of the squared gradients, and of the squared
updates it made. The step is the gradient scaled by rms(past updates) / rms(gradients), a ratio
with the units of the parameter, so the method needs no learning rate of its own; torch still
multiplies the update by ``lr`` (default 1.0), and so does this one.
"""
import numpy as np

from .optimizer import Optimizer, check_hyperparameters, count_step, decay_weights


class Adadelta(Optimizer):
    """For each parameter p with gradient g:

        g = g + weight_decay * p
        v = rho * v + (1 - rho) * g * g
        d = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * d * d
        p = p - lr * d
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0, *,
                 maximize: bool = False):
        check_hyperparameters("Adadelta", lr=lr, eps=eps, weight_decay=weight_decay)
        if not 0 <= rho <= 1:
            raise ValueError(f"Adadelta: rho must be in [0, 1], got {rho}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))

    def _update(self, param, grad, group, state):
        lr, rho, eps = float(group["lr"]), float(group["rho"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        count_step(state, param, "square_avg", "acc_delta")
        grad = decay_weights(param, grad, lr, weight_decay)
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg *= rho
        square_avg += (1 - rho) * grad * grad
        delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * grad
        acc_delta *= rho
        acc_delta += (1 - rho) * delta * delta
        param.sub_(lr * delta)
