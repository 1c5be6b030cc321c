"""The functional API (``import tinygrad_cnn.nn.functional as F``), with PyTorch's semantics.

Convolution and max-pooling call their primitives after checking the arguments; everything else
is composed from Tensor operations, so its gradient comes from the graph.
"""
import numpy as np

from ..ops.conv import Conv2d, ConvGeometry
from ..ops.pool import MaxPool2d
from ..random import get_rng
from ..tensor_class import Tensor, check_axis, where

# ---- argument checking for sliding windows ------------------------------------------------------


def _pair(value, name: str, op: str) -> tuple:
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return tuple(int(v) for v in pair)


def _check_input(x: Tensor, op: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{op}: input must be 4-D (N, C, H, W), got shape {x.shape}")
    if 0 in x.shape[1:]:
        raise ValueError(f"{op}: input of shape {x.shape} is empty; only the batch size N may be 0")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating-point tensor, got dtype {x.dtype}")


def _window_geometry(op, x_shape, kernel, stride, padding, dilation, groups=1) -> ConvGeometry:
    geometry = ConvGeometry(
        kernel=_pair(kernel, "kernel_size", op),
        stride=_pair(stride, "stride", op),
        padding=_pair(padding, "padding", op),
        dilation=_pair(dilation, "dilation", op),
        groups=groups,
    )
    for name in ("kernel", "stride", "dilation"):
        if min(getattr(geometry, name)) < 1:
            raise ValueError(f"{op}: {name} must be at least 1, got {getattr(geometry, name)}")
    if min(geometry.padding) < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {geometry.padding}")
    padded = tuple(n + 2 * p for n, p in zip(x_shape[2:], geometry.padding))
    reach = tuple(d * (k - 1) + 1 for d, k in zip(geometry.dilation, geometry.kernel))
    if any(r > n for r, n in zip(reach, padded)):
        raise ValueError(
            f"{op}: kernel of size {geometry.kernel} (dilation {geometry.dilation}, so it spans {reach}) is "
            f"larger than the padded input {padded} (input {x_shape[2:]}, padding {geometry.padding})"
        )
    return geometry


_PADDING_MODES = ("valid", "same")


def _check_padding_mode(op: str, padding: str, stride) -> None:
    """Shared with ``nn.Conv2d``, which refuses a bad string when it is built, as torch does."""
    if padding not in _PADDING_MODES:
        raise ValueError(f"{op}: padding must be an int, a pair of ints or one of {_PADDING_MODES}, got {padding!r}")
    if padding == "same" and any(s > 1 for s in _pair(stride, "stride", op)):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions, got stride {stride!r}")


def _same_padding(op: str, x: Tensor, kernel, dilation) -> tuple:
    """torch's padding="same": per axis dilation * (kernel - 1) in total, half of it before and the
    rest after. The geometry only holds symmetric padding, so an odd total's extra row or column
    is padded onto the input here, where its gradient comes from the graph. Returns the input and
    the symmetric padding for the convolution."""
    totals = [d * (k - 1) for d, k in zip(_pair(dilation, "dilation", op), kernel)]
    extra_after = [t % 2 for t in totals]
    if any(extra_after):
        x = x.pad(((0, 0), (0, 0), (0, extra_after[0]), (0, extra_after[1])))
    return x, tuple(t // 2 for t in totals)


# ---- convolution and pooling --------------------------------------------------------------------


def conv2d(x: Tensor, weight: Tensor, bias: Tensor = None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D cross-correlation of NCHW input with OIHW weights, as ``torch.nn.functional.conv2d``.

    ``padding`` is an int, a pair, or torch's ``"valid"`` (none) or ``"same"`` (output as large as
    the input; stride 1 only)."""
    op = "conv2d"
    _check_input(x, op)
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor, got {type(weight).__name__}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D (out_channels, in_channels/groups, kH, kW), got shape {weight.shape}")
    if weight.shape[0] == 0 or weight.shape[1] == 0:
        raise ValueError(f"{op}: weight of shape {weight.shape} has no channels")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{op}: groups must be at least 1, got {groups}")
    channels, out_channels = x.shape[1], weight.shape[0]
    if channels % groups or out_channels % groups:
        raise ValueError(
            f"{op}: groups={groups} must divide both the input channels ({channels}) and the output "
            f"channels ({out_channels})"
        )
    if weight.shape[1] * groups != channels:
        raise ValueError(
            f"{op}: input has {channels} channels (shape {x.shape}) but weight of shape {weight.shape} with "
            f"groups={groups} expects {weight.shape[1] * groups}"
        )
    if x.dtype != weight.dtype:
        raise TypeError(f"{op}: input dtype {x.dtype} and weight dtype {weight.dtype} differ")
    if isinstance(padding, str):
        _check_padding_mode(op, padding, stride)
        x, padding = _same_padding(op, x, weight.shape[2:], dilation) if padding == "same" else (x, 0)
    if bias is not None:
        if not isinstance(bias, Tensor):
            raise TypeError(f"{op}: bias must be a Tensor or None, got {type(bias).__name__}")
        if bias.shape != (out_channels,):
            raise ValueError(f"{op}: bias must have shape ({out_channels},), got {bias.shape}")
        if bias.dtype != weight.dtype:
            raise TypeError(f"{op}: bias dtype {bias.dtype} and weight dtype {weight.dtype} differ")
    geometry = _window_geometry(op, x.shape, weight.shape[2:], stride, padding, dilation, int(groups))
    return Conv2d.apply(x, weight, bias, geometry)  # the bias is added as the output is written


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1) -> Tensor:
    """Max over sliding windows; padding counts as -inf. ``stride`` defaults to ``kernel_size``."""
    op = "max_pool2d"
    _check_input(x, op)
    geometry = _window_geometry(op, x.shape, kernel_size, kernel_size if stride is None else stride, padding, dilation)
    _check_pool_padding(op, geometry)
    return MaxPool2d.apply(x, geometry)


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """Mean over sliding windows, zero padding included in the count (torch's default).

    Composed as a depthwise convolution with constant weights 1 / (kH * kW), so it inherits the
    convolution's gradients of every order.
    """
    op = "avg_pool2d"
    _check_input(x, op)
    geometry = _window_geometry(op, x.shape, kernel_size, kernel_size if stride is None else stride, padding, 1)
    _check_pool_padding(op, geometry)
    n, c, h, w = x.shape
    kh, kw = geometry.kernel
    weight = Tensor(np.full((1, 1, kh, kw), 1.0 / (kh * kw), dtype=x.dtype))
    out = Conv2d.apply(x.reshape(n * c, 1, h, w), weight, None, geometry)
    return out.reshape(n, c, *out.shape[2:])


def _check_pool_padding(op: str, geometry: ConvGeometry) -> None:
    if any(p > k // 2 for p, k in zip(geometry.padding, geometry.kernel)):
        raise ValueError(
            f"{op}: padding {geometry.padding} must be at most half the kernel size {geometry.kernel} "
            "(otherwise a window could hold nothing but padding)"
        )


# ---- activations ----------------------------------------------------------------------------------


def relu(x: Tensor) -> Tensor:
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return where(x.data > 0, x, x * negative_slope)


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    # log softmax(x) = x - m - log sum exp(x - m) for any constant m; m = max keeps exp from overflowing
    axis = check_axis("log_softmax", axis, x.ndim)
    shifted = x - x.data.max(axis=axis, keepdims=True)
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    axis = check_axis("softmax", axis, x.ndim)
    shifted = (x - x.data.max(axis=axis, keepdims=True)).exp()
    return shifted / shifted.sum(axis=axis, keepdims=True)


# ---- losses -------------------------------------------------------------------------------------------

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _one_hot_targets(target, n_classes: int, dtype, op: str) -> np.ndarray:
    labels = target.data if isinstance(target, Tensor) else np.asarray(target)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{op}: targets must be integer class indices, got dtype {labels.dtype}")
    if labels.ndim != 1:
        raise ValueError(f"{op}: targets must be 1-D (N,), got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        bad = labels[(labels < 0) | (labels >= n_classes)]
        raise ValueError(f"{op}: target {int(bad[0])} is out of range for {n_classes} classes (valid: 0..{n_classes - 1})")
    one_hot = np.zeros((labels.size, n_classes), dtype=dtype)
    one_hot[np.arange(labels.size), labels] = 1
    return one_hot


def nll_loss(log_probs: Tensor, target, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of integer targets given (N, C) log-probabilities."""
    return _nll_loss(log_probs, target, reduction, "nll_loss")


def _nll_loss(log_probs: Tensor, target, reduction: str, op: str) -> Tensor:
    """``nll_loss`` with errors reported under the name of the public function that was called."""
    if log_probs.ndim != 2:
        raise ValueError(f"{op}: input must be (N, C), got shape {log_probs.shape}")
    one_hot = _one_hot_targets(target, log_probs.shape[1], log_probs.dtype, op)
    if one_hot.shape[0] != log_probs.shape[0]:
        raise ValueError(f"{op}: {log_probs.shape[0]} rows of input but {one_hot.shape[0]} targets")
    # a one-hot product instead of indexing: no scatter in the backward
    return _reduce(-(log_probs * one_hot).sum(axis=1), reduction, op)


def cross_entropy(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of (N, C) logits against integer class targets (N,)."""
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be (N, C), got shape {logits.shape}")
    return _nll_loss(log_softmax(logits, axis=1), target, reduction, "cross_entropy")


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    target_shape = np.shape(target.data if isinstance(target, Tensor) else target)
    if target_shape != input.shape:
        raise ValueError(f"mse_loss: input shape {input.shape} and target shape {target_shape} differ")
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


# ---- layers as functions ---------------------------------------------------------------------------


def linear(x: Tensor, weight: Tensor, bias: Tensor = None) -> Tensor:
    """x @ weight.T + bias, with weight of shape (out_features, in_features) as in torch."""
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} has {x.shape[-1]} features, weight {weight.shape} expects {weight.shape[1]}")
    out = x @ weight.T
    return out if bias is None else out + bias


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (inverted dropout)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be between 0 and 1, got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    keep = get_rng().random(x.shape, dtype=np.float32) >= p
    return x * (keep.astype(x.dtype) / x.dtype.type(1 - p))
