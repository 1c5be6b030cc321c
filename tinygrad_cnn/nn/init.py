"""Weight initialisation, with the names, signatures and formulas of ``torch.nn.init``.

Every function fills its tensor in place (under ``no_grad``, so the tensor's version is bumped)
and returns it. Random values come from ``tinygrad_cnn.random.get_rng()``, the library's one
generator, and are drawn in the tensor's own dtype (float32 stays float32).

The schemes keep the variance of activations (Kaiming/He) or of activations and gradients
(Xavier/Glorot) roughly constant from layer to layer:

* ``xavier``:  std = gain * sqrt(2 / (fan_in + fan_out))
* ``kaiming``: std = gain / sqrt(fan),  fan = fan_in or fan_out (``mode``)

and a uniform distribution on [-b, b] has std b / sqrt(3), hence the sqrt(3) in the bounds.
"""
import math

import numpy as np

from ..autograd import no_grad
from ..random import get_rng
from ..tensor_class import Tensor

_LINEAR_GAIN = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The factor by which ``nonlinearity`` shrinks the standard deviation, to be compensated for.

    ``param`` is the negative slope of ``leaky_relu`` (default 0.01)."""
    if nonlinearity in _LINEAR_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple:
    """Inputs and outputs each unit is connected to: for a (out, in, kH, kW) convolution weight,
    fan_in = in * kH * kW and fan_out = out * kH * kW; for a (out, in) matrix, in and out."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, got shape {tensor.shape}")
    receptive_field = int(np.prod(tensor.shape[2:]))
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _fill(tensor: Tensor, values) -> Tensor:
    with no_grad():
        tensor.copy_(values)
    return tensor


def _uniform_sample(tensor: Tensor, low: float, high: float) -> np.ndarray:
    unit = get_rng().random(tensor.shape, dtype=_sampling_dtype(tensor))
    return low + (high - low) * unit


def _normal_sample(tensor: Tensor, mean: float, std: float) -> np.ndarray:
    return mean + std * get_rng().standard_normal(tensor.shape, dtype=_sampling_dtype(tensor))


def _sampling_dtype(tensor: Tensor):
    # NumPy's generator draws float32 or float64 directly; other dtypes are cast afterwards
    return tensor.dtype if tensor.dtype in (np.float32, np.float64) else np.float64


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with values drawn uniformly from [a, b)."""
    return _fill(tensor, _uniform_sample(tensor, a, b))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    return _fill(tensor, _normal_sample(tensor, mean, std))


def constant_(tensor: Tensor, val: float) -> Tensor:
    with no_grad():
        tensor.fill_(val)
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _kaiming_std(tensor: Tensor, a, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """He uniform: U(-b, b) with b = sqrt(3) * gain / sqrt(fan); ``a`` is the leaky_relu slope."""
    if tensor.numel() == 0:
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """He normal: N(0, std^2) with std = gain / sqrt(fan); ``a`` is the leaky_relu slope."""
    if tensor.numel() == 0:
        return tensor
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity))
