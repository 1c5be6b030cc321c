"""The hyperparameters of sliding windows, checked in one place for layers and functions alike.

``nn.Conv2d(3, 8, 5, stride=2)`` and ``F.conv2d(x, w, stride=2)`` accept the same spellings (an
int, or one int per spatial axis) and refuse the same mistakes with the same one-line message;
the layer checks when it is built, the function when it is called, both through ``ints`` here.
``default_stride`` is torch's rule for pooling: a stride left out (``None``) is the kernel size.
``window_geometry`` turns the checked values into the ``ConvGeometry`` the primitives take.
"""
import numpy as np

from ..ops.conv import ConvGeometry
from ..tensor_class import Tensor


def ints(value, n: int, name: str, op: str) -> tuple:
    """``value`` (an int, or a tuple or list of ``n`` ints) as a tuple of ``n`` ints; a TypeError
    naming ``op`` and ``name`` otherwise."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(values) != n or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        kind = {1: "an int", 2: "an int or a pair of ints"}.get(n, f"an int or a tuple of {n} ints")
        raise TypeError(f"{op}: {name} must be {kind}, got {value!r}")
    return tuple(int(v) for v in values)


def pair(value, name: str, op: str) -> tuple:
    """A (height, width) hyperparameter: ``3`` means ``(3, 3)``."""
    return ints(value, 2, name, op)


def default_stride(stride, kernel_size):
    """torch's rule for pooling: no stride (None, or an empty tuple) means windows side by side."""
    return kernel_size if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else stride


def check_positive(values: tuple, name: str, op: str) -> tuple:
    if min(values) < 1:
        raise ValueError(f"{op}: {name} must be at least 1, got {values}")
    return values


def check_non_negative(values: tuple, name: str, op: str) -> tuple:
    if min(values) < 0:
        raise ValueError(f"{op}: {name} must be non-negative, got {values}")
    return values


def check_groups(groups, op: str) -> int:
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{op}: groups must be at least 1, got {groups}")
    return int(groups)


def check_input(x, op: str, ndim: int = 4, layout: str = "(N, C, H, W)") -> None:
    """A floating-point Tensor of ``ndim`` dimensions whose only empty axis may be the batch."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{op}: input must be {ndim}-D {layout}, got shape {x.shape}")
    if 0 in x.shape[1:]:
        raise ValueError(f"{op}: input of shape {x.shape} is empty; only the batch size N may be 0")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating-point tensor, got dtype {x.dtype}")


def window_geometry(op, x_shape, kernel, stride, padding, dilation, groups=1) -> ConvGeometry:
    """The checked ``ConvGeometry`` of a window sliding over an input of ``x_shape`` (N, C, H, W);
    the window must fit into the padded input."""
    geometry = ConvGeometry(
        kernel=check_positive(pair(kernel, "kernel_size", op), "kernel", op),
        stride=check_positive(pair(stride, "stride", op), "stride", op),
        padding=check_non_negative(pair(padding, "padding", op), "padding", op),
        dilation=check_positive(pair(dilation, "dilation", op), "dilation", op),
        groups=groups,
    )
    padded = tuple(n + 2 * p for n, p in zip(x_shape[2:], geometry.padding))
    reach = tuple(d * (k - 1) + 1 for d, k in zip(geometry.dilation, geometry.kernel))
    if any(r > n for r, n in zip(reach, padded)):
        raise ValueError(
            f"{op}: kernel of size {geometry.kernel} (dilation {geometry.dilation}, so it spans {reach}) is "
            f"larger than the padded input {padded} (input {x_shape[2:]}, padding {geometry.padding})"
        )
    return geometry


def check_pool_padding(op: str, geometry: ConvGeometry) -> None:
    if any(p > k // 2 for p, k in zip(geometry.padding, geometry.kernel)):
        raise ValueError(
            f"{op}: padding {geometry.padding} must be at most half the kernel size {geometry.kernel} "
            "(otherwise a window could hold nothing but padding)"
        )


PADDING_MODES = ("valid", "same")


def check_padding_mode(op: str, padding: str, stride) -> None:
    """A string padding of a convolution; ``nn.Conv2d`` calls it when built, as torch does."""
    if padding not in PADDING_MODES:
        raise ValueError(f"{op}: padding must be an int, a pair of ints or one of {PADDING_MODES}, got {padding!r}")
    if padding == "same" and any(s > 1 for s in (stride if isinstance(stride, (tuple, list)) else (stride,))):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions, got stride {stride!r}")
