"""The functional API (``import tinygrad_cnn.nn.functional as F``), with PyTorch's semantics.

Convolution (and its transpose) and max-pooling call their primitives after checking the
arguments (the checks live in ``nn.hyperparameters``, shared with the layers); everything else is
composed from Tensor operations, so its gradient of every order comes from the graph:

- conv1d is conv2d over an image one row high;
- average pooling (fixed or adaptive) and linear interpolation are products with constant
  matrices of averaging or interpolation weights;
- nearest interpolation and reflect/replicate padding read the input at computed positions
  (indexing), whose backward adds the gradients back (scatter-add);
- adaptive max-pooling reads each window's maximum (found in NumPy) by indexing.
"""
import math

import numpy as np

from .. import batching
from ..ops import elementwise as E
from ..ops import movement as MV
from ..ops.conv import Conv2d, Conv2dInputGrad, ConvGeometry
from ..ops.pool import MaxPool2d
from ..ops.special import Erf
from ..random import get_rng
from ..tensor_class import Tensor, check_axis, where
from .hyperparameters import (
    check_groups,
    check_input,
    check_non_negative,
    check_padding_mode,
    check_pool_padding,
    check_positive,
    default_stride,
    ints,
    pair,
    window_geometry,
)

# ---- convolution --------------------------------------------------------------------------------


def _same_padding(op: str, x: Tensor, kernel, dilation) -> tuple:
    """torch's padding="same": per axis dilation * (kernel - 1) in total, half of it before and the
    rest after. The geometry only holds symmetric padding, so an odd total's extra row or column
    is padded onto the input here, where its gradient comes from the graph. Returns the input and
    the symmetric padding for the convolution."""
    totals = [d * (k - 1) for d, k in zip(pair(dilation, "dilation", op), kernel)]
    extra_after = [t % 2 for t in totals]
    if any(extra_after):
        x = MV.Pad.apply(x, ((0, 0), (0, 0), (0, extra_after[0]), (0, extra_after[1])), 0.0)
    return x, tuple(t // 2 for t in totals)


def _check_weight(op: str, weight, ndim: int, layout: str) -> None:
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor, got {type(weight).__name__}")
    if weight.ndim != ndim:
        raise ValueError(f"{op}: weight must be {ndim}-D {layout}, got shape {weight.shape}")
    if weight.shape[0] == 0 or weight.shape[1] == 0:
        raise ValueError(f"{op}: weight of shape {weight.shape} has no channels")


def _check_bias(op: str, bias, channels: int, weight: Tensor) -> None:
    if bias is None:
        return
    if not isinstance(bias, Tensor):
        raise TypeError(f"{op}: bias must be a Tensor or None, got {type(bias).__name__}")
    if bias.shape != (channels,):
        raise ValueError(f"{op}: bias must have shape ({channels},), got {bias.shape}")
    if bias.dtype != weight.dtype:
        raise TypeError(f"{op}: bias dtype {bias.dtype} and weight dtype {weight.dtype} differ")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor = None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D cross-correlation of NCHW input with OIHW weights, as ``torch.nn.functional.conv2d``.

    ``padding`` is an int, a pair, or torch's ``"valid"`` (none) or ``"same"`` (output as large as
    the input; stride 1 only)."""
    check_input(x, "conv2d")
    _check_weight("conv2d", weight, 4, "(out_channels, in_channels/groups, kH, kW)")
    return _conv2d("conv2d", x, weight, bias, stride, padding, dilation, groups)


def _conv2d(op, x, weight, bias, stride, padding, dilation, groups) -> Tensor:
    groups = check_groups(groups, op)
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
        check_padding_mode(op, padding, stride)
        x, padding = _same_padding(op, x, weight.shape[2:], dilation) if padding == "same" else (x, 0)
    _check_bias(op, bias, out_channels, weight)
    geometry = window_geometry(op, x.shape, weight.shape[2:], stride, padding, dilation, groups)
    return Conv2d.apply(x, weight, bias, geometry)  # the bias is added as the output is written


def conv1d(x: Tensor, weight: Tensor, bias: Tensor = None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """1-D cross-correlation of (N, C, L) input with (out_channels, in_channels/groups, k) weights:
    conv2d over an image of height 1, whose kernel is one row high."""
    op = "conv1d"
    check_input(x, op, ndim=3, layout="(N, C, L)")
    _check_weight(op, weight, 3, "(out_channels, in_channels/groups, k)")
    (stride,), (dilation,) = ints(stride, 1, "stride", op), ints(dilation, 1, "dilation", op)
    padding = padding if isinstance(padding, str) else (0, *ints(padding, 1, "padding", op))
    as_image = x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
    kernel = weight.reshape(weight.shape[0], weight.shape[1], 1, weight.shape[2])
    out = _conv2d(op, as_image, kernel, bias, (1, stride), padding, (1, dilation), groups)
    return out.reshape(out.shape[0], out.shape[1], out.shape[3])


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor = None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1) -> Tensor:
    """The transposed convolution (the gradient of conv2d with respect to its input), as
    ``torch.nn.functional.conv_transpose2d``; weight of shape (in_channels, out_channels/groups, kH, kW).

    Each output side is (n - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.
    ``output_padding`` (extra rows and columns at the end, which no input reaches) must be smaller
    than the stride: torch also allows it below the dilation, which this library does not.
    """
    op = "conv_transpose2d"
    check_input(x, op)
    _check_weight(op, weight, 4, "(in_channels, out_channels/groups, kH, kW)")
    groups = check_groups(groups, op)
    if weight.shape[0] != x.shape[1]:
        raise ValueError(f"{op}: input has {x.shape[1]} channels (shape {x.shape}) but weight of shape "
                         f"{weight.shape} expects {weight.shape[0]}")
    if x.shape[1] % groups:
        raise ValueError(f"{op}: groups={groups} must divide the input channels ({x.shape[1]})")
    if x.dtype != weight.dtype:
        raise TypeError(f"{op}: input dtype {x.dtype} and weight dtype {weight.dtype} differ")
    out_channels = weight.shape[1] * groups
    _check_bias(op, bias, out_channels, weight)
    geometry = ConvGeometry(
        kernel=weight.shape[2:],
        stride=check_positive(pair(stride, "stride", op), "stride", op),
        padding=check_non_negative(pair(padding, "padding", op), "padding", op),
        dilation=check_positive(pair(dilation, "dilation", op), "dilation", op),
        groups=groups,
    )
    extra = check_non_negative(pair(output_padding, "output_padding", op), "output_padding", op)
    if any(e >= s for e, s in zip(extra, geometry.stride)):
        raise ValueError(f"{op}: output_padding {extra} must be smaller than the stride {geometry.stride}")
    out_hw = tuple((n - 1) * s - 2 * p + d * (k - 1) + e + 1 for n, s, p, d, k, e in
                   zip(x.shape[2:], geometry.stride, geometry.padding, geometry.dilation, geometry.kernel, extra))
    if min(out_hw) < 1:
        raise ValueError(f"{op}: the output would be {out_hw} for input {x.shape[2:]}: padding {geometry.padding} "
                         "crops away everything")
    out = Conv2dInputGrad.apply(x, weight, (x.shape[0], out_channels, *out_hw), geometry)
    return out if bias is None else out + bias.reshape(1, out_channels, 1, 1)


# ---- pooling --------------------------------------------------------------------------------------


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over sliding windows; padding counts as -inf. ``stride`` defaults to ``kernel_size``.

    ``ceil_mode``: the output side is rounded up instead of down, so a last window that runs over
    the end of the input still counts (as long as it starts inside the input or the left padding).
    ``return_indices``: also return, for each output, the position of its maximum in its input
    plane as ``row * W + col`` (int64), as torch does.
    """
    op = "max_pool2d"
    check_input(x, op)
    geometry = window_geometry(op, x.shape, kernel_size, default_stride(stride, kernel_size), padding, dilation)
    check_pool_padding(op, geometry)
    extra = _ceil_mode_extra(x.shape[2:], geometry) if ceil_mode else (0, 0)
    # the rows and columns that only a rounded-up output reaches hold -inf: they never win
    source = MV.Pad.apply(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])), -np.inf) if any(extra) else x
    out = MaxPool2d.apply(source, geometry)
    if not return_indices:
        return out
    # per sample: inside vmap, each sample's indices from its own values
    return out, batching.per_sample(lambda s, o: _max_pool_indices(s, o, geometry, x.shape[3]), source, out)


def _ceil_mode_extra(input_hw, geometry: ConvGeometry) -> tuple:
    """How many rows and columns ``ceil_mode`` adds after the input: torch's rule rounds the
    output size up, then drops a last window that would start in the right padding."""
    extra = []
    for n, k, s, p, d in zip(input_hw, geometry.kernel, geometry.stride, geometry.padding, geometry.dilation):
        reach, span = d * (k - 1) + 1, n + 2 * p
        out = -(-(span - reach) // s) + 1
        if (out - 1) * s >= n + p:
            out -= 1
        extra.append(max(0, (out - 1) * s + reach - span))
    return tuple(extra)


def _max_pool_indices(source: np.ndarray, best: np.ndarray, geometry: ConvGeometry, width: int) -> np.ndarray:
    """For each output, ``row * width + col`` of the first tap (row-major) of its window that holds
    its maximum; for a NaN output, of the window's last NaN (as torch)."""
    (ph, pw), (sh, sw), (dh, dw), kw = geometry.padding, geometry.stride, geometry.dilation, geometry.kernel[1]
    padded = np.pad(source, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    out_h, out_w = best.shape[2:]
    indices = np.full(best.shape, -1, dtype=np.int64)
    best_is_nan = np.isnan(best)
    for k, rows, cols in geometry.offset_slices((out_h, out_w)):
        i, j = divmod(k, kw)
        taps = padded[:, :, rows, cols]
        flat = (np.arange(out_h)[:, None] * sh - ph + i * dh) * width + (np.arange(out_w) * sw - pw + j * dw)
        first_max = (indices < 0) & (taps == best)
        np.copyto(indices, np.broadcast_to(flat, indices.shape), where=first_max | (best_is_nan & np.isnan(taps)))
    return indices


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None) -> Tensor:
    """Mean over sliding windows, as ``torch.nn.functional.avg_pool2d``.

    The window sums are a depthwise convolution with constant weights, so average pooling inherits
    the convolution's gradients of every order. The divisor is kH * kW (zero padding counts, torch's
    default), or with ``count_include_pad=False`` the number of input elements in the window;
    ``ceil_mode`` (as in ``max_pool2d``) adds windows that run past the padding, whose part beyond
    it never counts; ``divisor_override`` replaces the divisor.
    """
    op = "avg_pool2d"
    check_input(x, op)
    geometry = window_geometry(op, x.shape, kernel_size, default_stride(stride, kernel_size), padding, 1)
    check_pool_padding(op, geometry)
    if divisor_override is not None and (not isinstance(divisor_override, (int, np.integer)) or divisor_override < 1):
        raise ValueError(f"{op}: divisor_override must be a positive int or None, got {divisor_override!r}")
    extra = _ceil_mode_extra(x.shape[2:], geometry) if ceil_mode else (0, 0)
    source = MV.Pad.apply(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])), 0.0) if any(extra) else x
    n, c, h, w = source.shape
    kh, kw = geometry.kernel
    weight = Tensor(np.full((1, 1, kh, kw), 1.0 / (kh * kw), dtype=x.dtype))
    out = Conv2d.apply(source.reshape(n * c, 1, h, w), weight, None, geometry)
    out = out.reshape(n, c, *out.shape[2:])
    divisor = divisor_override or _window_counts(x.shape[2:], out.shape[2:], geometry, count_include_pad)
    if np.all(divisor == kh * kw):
        return out
    return out * (kh * kw / np.asarray(divisor, dtype=np.float64)).astype(x.dtype)


def _window_counts(input_hw, out_hw, geometry: ConvGeometry, count_include_pad: bool) -> np.ndarray:
    """(OH, OW): how many positions of each window count towards its mean: those inside the input,
    or inside the padded input (``count_include_pad``); never those past the padding."""
    counts = []
    for n, m, k, s, p in zip(input_hw, out_hw, geometry.kernel, geometry.stride, geometry.padding):
        low, high = (-p, n + p) if count_include_pad else (0, n)
        starts = np.arange(m) * s - p
        counts.append(np.minimum(starts + k, high) - np.maximum(starts, low))
    return np.outer(*counts)


def _adaptive_output_size(output_size, input_hw, op: str) -> tuple:
    """An int, or a pair whose None entries keep the input's size."""
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    sizes = tuple(n if s is None else s for s, n in zip(sizes, input_hw)) if len(sizes) == 2 else sizes
    return check_positive(pair(sizes, "output_size", op), "output_size", op)


def _adaptive_windows(n_in: int, n_out: int) -> list:
    """torch's windows: output i covers [floor(i * n_in / n_out), ceil((i + 1) * n_in / n_out))."""
    return [(i * n_in // n_out, -(-(i + 1) * n_in // n_out)) for i in range(n_out)]


def _averaging_matrix(n_in: int, n_out: int, dtype) -> np.ndarray:
    """(n_out, n_in): row i averages the inputs of adaptive window i."""
    matrix = np.zeros((n_out, n_in))
    for i, (start, end) in enumerate(_adaptive_windows(n_in, n_out)):
        matrix[i, start:end] = 1 / (end - start)
    return matrix.astype(dtype)


def adaptive_avg_pool2d(x: Tensor, output_size) -> Tensor:
    """Mean over the windows that split the input into ``output_size`` (torch's windows, which
    overlap when the sizes do not divide). A window is a range of rows times a range of columns,
    so the mean is A_rows @ x @ A_cols.T with constant averaging matrices."""
    op = "adaptive_avg_pool2d"
    check_input(x, op)
    (out_h, out_w), (h, w) = _adaptive_output_size(output_size, x.shape[2:], op), x.shape[2:]
    return Tensor(_averaging_matrix(h, out_h, x.dtype)) @ x @ Tensor(_averaging_matrix(w, out_w, x.dtype).T)


def adaptive_max_pool2d(x: Tensor, output_size, return_indices=False):
    """Max over the windows of ``adaptive_avg_pool2d``. Each window's first maximum (row-major) is
    found in NumPy, and the output reads the input there: a gather, whose gradient sends each
    output's gradient to that one position (as torch, ties included). ``return_indices`` as in
    ``max_pool2d``."""
    op = "adaptive_max_pool2d"
    check_input(x, op)
    if batching.is_batched(x):  # the windows' maxima are found in NumPy: one sample at a time
        return batching.loop_over_batch(lambda x: adaptive_max_pool2d(x, output_size, return_indices), x, what=op)
    (out_h, out_w), (n, c, h, w) = _adaptive_output_size(output_size, x.shape[2:], op), x.shape
    indices = np.empty((n, c, out_h, out_w), dtype=np.int64)
    for i, (r0, r1) in enumerate(_adaptive_windows(h, out_h)):
        for j, (c0, c1) in enumerate(_adaptive_windows(w, out_w)):
            at = np.argmax(x.data[:, :, r0:r1, c0:c1].reshape(n, c, -1), axis=2)  # the first maximum, or NaN
            indices[:, :, i, j] = (r0 + at // (c1 - c0)) * w + c0 + at % (c1 - c0)
    out = x.reshape(n, c, h * w)[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], indices]
    return (out, Tensor(indices)) if return_indices else out


# ---- padding and resampling -----------------------------------------------------------------------

PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(x: Tensor, pad, mode: str = "constant", value=None) -> Tensor:
    """Pad (or, with negative widths, crop) the last axes, as ``torch.nn.functional.pad``: ``pad``
    lists (before, after) for the last axis first, then for the one before it, and so on.

    ``constant`` fills with ``value`` (0 by default); ``reflect`` mirrors the input without repeating
    its edge (the width must be smaller than the axis); ``replicate`` repeats the edge;
    ``circular`` wraps around. The last three read the input at computed positions, so their
    gradient adds each output's gradient back to the position it was read from.
    """
    op = "pad"
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if not isinstance(pad, (tuple, list)):
        raise TypeError(f"{op}: pad must be a tuple of ints, (before, after) per axis from the last, got {pad!r}")
    widths = ints(pad, len(pad), "pad", op)
    if len(widths) % 2 or len(widths) // 2 > x.ndim:
        raise ValueError(f"{op}: pad must hold a (before, after) pair per padded axis, at most {x.ndim}, got {pad!r}")
    if mode not in PAD_MODES:
        raise ValueError(f"{op}: mode must be one of {PAD_MODES}, got {mode!r}")
    if mode != "constant" and value is not None:
        raise ValueError(f"{op}: value is only used with mode='constant', got mode={mode!r}")
    per_axis = [(x.ndim - 1 - i, widths[2 * i], widths[2 * i + 1]) for i in range(len(widths) // 2)]
    if mode == "constant":
        crop = [slice(None)] * x.ndim
        for axis, before, after in per_axis:
            crop[axis] = slice(max(0, -before), x.shape[axis] - max(0, -after))
        x = x[tuple(crop)] if any(before < 0 or after < 0 for _, before, after in per_axis) else x
        pad_width = [(0, 0)] * x.ndim
        for axis, before, after in per_axis:
            pad_width[axis] = (max(0, before), max(0, after))
        return MV.Pad.apply(x, tuple(pad_width), 0.0 if value is None else value)
    for axis, before, after in per_axis:
        n = x.shape[axis]
        if mode == "reflect" and max(before, after) >= n:
            raise ValueError(f"{op}: reflect padding ({before}, {after}) of axis {axis} must be smaller than its size {n}")
        positions = np.arange(-before, n + after)
        if mode == "reflect":
            positions = np.abs(positions)
            positions = np.where(positions > n - 1, 2 * (n - 1) - positions, positions)
        elif mode == "replicate":
            positions = np.clip(positions, 0, n - 1)
        else:
            positions = positions % n
        x = x[(slice(None),) * axis + (positions,)]
    return x


INTERPOLATION_MODES = ("nearest", "linear", "bilinear")


def interpolate(x: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None) -> Tensor:
    """Resize the spatial axes of (N, C, L) or (N, C, H, W) input, as ``torch.nn.functional.interpolate``.

    Give the output ``size`` or a ``scale_factor`` (the output side is floor(n * scale_factor)).
    ``nearest`` reads input position floor(i * scale) for output i, where scale is n_in / n_out,
    or 1 / scale_factor when that was given; ``linear`` (3-D input) and ``bilinear`` (4-D) mix the
    two nearest inputs along each axis, with output i at input coordinate (i + 0.5) * scale - 0.5
    (``align_corners=False``, the default), or i * (n_in - 1) / (n_out - 1) (``align_corners=True``,
    which lines up the first and last pixels).
    """
    op = "interpolate"
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"{op}: mode must be one of {INTERPOLATION_MODES}, got {mode!r}")
    spatial = {"nearest": x.ndim - 2, "linear": 1, "bilinear": 2}[mode]
    if x.ndim != spatial + 2 or spatial not in (1, 2):
        layout = {1: "3-D (N, C, L)", 2: "4-D (N, C, H, W)"}.get(spatial, "3-D (N, C, L) or 4-D (N, C, H, W)")
        raise ValueError(f"{op}: mode={mode!r} needs {layout} input, got shape {x.shape}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError(f"{op}: align_corners only applies to linear and bilinear modes, not {mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor")
    in_sizes = x.shape[2:]
    if size is not None:
        out_sizes = check_positive(ints(size, spatial, "size", op), "size", op)
        scales = [n / m for n, m in zip(in_sizes, out_sizes)]
    else:
        factors = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * spatial
        if len(factors) != spatial or not all(isinstance(f, (int, float, np.number)) and f > 0 for f in factors):
            raise ValueError(f"{op}: scale_factor must be a positive number or {spatial} of them, got {scale_factor!r}")
        out_sizes = tuple(int(math.floor(n * f)) for n, f in zip(in_sizes, factors))
        if min(out_sizes) < 1:
            raise ValueError(f"{op}: scale_factor {scale_factor!r} shrinks input {in_sizes} to nothing")
        scales = [1 / f for f in factors]
    for axis, n_in, n_out, scale in zip(range(2, x.ndim), in_sizes, out_sizes, scales):
        if mode == "nearest":
            positions = np.minimum(np.floor(np.arange(n_out) * scale).astype(np.int64), n_in - 1)
            x = x[(slice(None),) * axis + (positions,)]
        else:
            weights = Tensor(_linear_interpolation_matrix(n_in, n_out, scale, bool(align_corners)).astype(x.dtype))
            x = weights @ x if axis == x.ndim - 2 else x @ weights.permute(1, 0)
    return x


def _linear_interpolation_matrix(n_in: int, n_out: int, scale: float, align_corners: bool) -> np.ndarray:
    """(n_out, n_in): row i holds the weights 1 - t and t of the two inputs around output i."""
    i = np.arange(n_out)
    if align_corners:
        source = i * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        source = np.maximum((i + 0.5) * scale - 0.5, 0.0)  # before the first centre: the first input
    lower = np.minimum(np.floor(source).astype(np.int64), n_in - 1)
    upper = np.minimum(lower + 1, n_in - 1)
    t = source - lower
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (i, lower), 1 - t)
    np.add.at(matrix, (i, upper), t)
    return matrix


# ---- normalisation ----------------------------------------------------------------------------------


def _standardize(x: Tensor, axes: tuple, eps: float) -> Tensor:
    """(x - mean) / sqrt(var + eps) over ``axes``, with the biased variance (dividing by the count)."""
    centered = x - x.mean(axis=axes, keepdims=True)
    variance = (centered * centered).mean(axis=axes, keepdims=True)
    return centered / (variance + float(eps)).sqrt()


def layer_norm(x: Tensor, normalized_shape, weight: Tensor = None, bias: Tensor = None, eps: float = 1e-5) -> Tensor:
    """Standardise each sample over its last ``len(normalized_shape)`` axes, then scale by ``weight``
    and shift by ``bias`` (both of shape ``normalized_shape``)."""
    shape = ints(normalized_shape, len(normalized_shape) if isinstance(normalized_shape, (tuple, list)) else 1,
                 "normalized_shape", "layer_norm")
    if x.shape[x.ndim - len(shape):] != shape or x.ndim < len(shape):
        raise ValueError(f"layer_norm: input of shape {x.shape} does not end in normalized_shape {shape}")
    out = _standardize(x, tuple(range(x.ndim - len(shape), x.ndim)), eps)
    out = out if weight is None else out * weight
    return out if bias is None else out + bias


def group_norm(x: Tensor, num_groups: int, weight: Tensor = None, bias: Tensor = None, eps: float = 1e-5) -> Tensor:
    """Split the channels of (N, C, ...) input into ``num_groups`` groups and standardise each
    group of each sample; then scale and shift per channel."""
    if x.ndim < 2 or x.shape[1] % num_groups:
        raise ValueError(f"group_norm: input of shape {x.shape} must be (N, C, ...) with C divisible by "
                         f"num_groups={num_groups}")
    n, c = x.shape[:2]
    if math.prod(x.shape) // max(1, n * num_groups) == 1:
        raise ValueError(f"group_norm: each group of input of shape {x.shape} holds one value, which standardises to 0 "
                         f"whatever it is; use fewer groups than num_groups={num_groups}")
    out = _standardize(x.reshape(n, num_groups, -1), (2,), eps).reshape(*x.shape)
    channel_shape = (1, c) + (1,) * (x.ndim - 2)
    out = out if weight is None else out * weight.reshape(*channel_shape)
    return out if bias is None else out + bias.reshape(*channel_shape)


# ---- activations ----------------------------------------------------------------------------------


def relu(x: Tensor) -> Tensor:
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return where(x > 0, x, x * negative_slope)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha * (exp(x) - 1). The exponential only sees min(x, 0): exp of a large
    positive x would overflow, and its inf times the zero gradient of the unused side is NaN."""
    return where(x > 0, x, (E.Clip.apply(x, None, 0.0).exp() - 1) * float(alpha))


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal distribution function: 0.5 * x * (1 + erf(x / sqrt 2));
    with ``approximate="tanh"``, 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))."""
    if approximate == "none":
        return x * 0.5 * (Erf.apply(x * (1 / math.sqrt(2))) + 1)
    if approximate == "tanh":
        return x * 0.5 * ((x + x * x * x * 0.044715) * math.sqrt(2 / math.pi)).tanh() + x * 0.5
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    return x * x.sigmoid()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def _softmax_dim(op: str, x: Tensor, dim, axis) -> int:
    """``dim`` (torch) or ``axis`` (NumPy) names the axis; the last by default."""
    if dim is not None and axis is not None and dim != axis:
        raise ValueError(f"{op}: dim={dim} and axis={axis} disagree; give one of them")
    return check_axis(op, -1 if dim is None and axis is None else (dim if dim is not None else axis), x.ndim)


def _constant_max(x: Tensor, axis: int):
    """The maximum along ``axis`` (kept), a constant: an array, or inside vmap a batched tensor
    outside the graph."""
    return batching.constant(batching.values(np.max, x, axis=axis, keepdims=True))


def log_softmax(x: Tensor, dim: int = None, *, axis: int = None) -> Tensor:
    # log softmax(x) = x - m - log sum exp(x - m) for any constant m; m = max keeps exp from overflowing
    axis = _softmax_dim("log_softmax", x, dim, axis)
    shifted = x - _constant_max(x, axis)
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()


def softmax(x: Tensor, dim: int = None, *, axis: int = None) -> Tensor:
    axis = _softmax_dim("softmax", x, dim, axis)
    shifted = (x - _constant_max(x, axis)).exp()
    return shifted / shifted.sum(axis=axis, keepdims=True)


# ---- losses -------------------------------------------------------------------------------------------

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, op: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    _check_reduction(reduction, op)
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def _labels(target, op: str):
    """The class indices: a Tensor (which may hold a batch of them inside vmap) or an array."""
    labels = target if isinstance(target, Tensor) else np.asarray(target)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{op}: targets must be integer class indices, got dtype {labels.dtype}")
    return labels


def _classes_last(x: Tensor) -> Tensor:
    """(N, C, d1, ...) -> (N * d1 * ..., C): one row per element that is classified."""
    if x.ndim == 2:
        return x
    return x.permute(0, *range(2, x.ndim), 1).reshape(-1, x.shape[1])


def _class_weights(weight, n_classes: int, dtype, op: str) -> np.ndarray:
    if weight is None:
        return np.ones(n_classes, dtype=dtype)
    if batching.is_batched(weight):  # weights per sample under vmap: a constant of the batch, as a tensor
        weights = weight.detach()
    else:
        weights = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
    if weights.shape != (n_classes,):
        raise ValueError(f"{op}: weight must hold one value per class, shape ({n_classes},), got {weights.shape}")
    return weights.astype(dtype)


def _class_index_loss(log_probs: Tensor, target, weight, ignore_index: int, label_smoothing: float,
                      reduction: str, op: str) -> Tensor:
    """The loss of log-probabilities (N, C, d1, ...) against class indices (N, d1, ...), as torch's
    nll_loss and cross_entropy: per element -(1 - s) * w[t] * log_probs[t] - s / C * sum_c w[c] * log_probs[c]
    (s the label smoothing), 0 where the target is ``ignore_index``; the mean divides the sum by
    the total weight w[t] of the elements not ignored.

    Both terms are one product with a constant coefficient per (element, class), summed over the
    classes: a product, not indexing, so the backward needs no scatter."""
    _check_reduction(reduction, op)
    labels = _labels(target, op)
    if log_probs.ndim == 1 and labels.ndim == 0:
        return _one_sample(lambda x, t: _class_index_loss(x, t, weight, ignore_index, label_smoothing, reduction, op),
                           log_probs, labels, reduction)
    if log_probs.ndim < 2:
        raise ValueError(f"{op}: input must be (C,), (N, C) or (N, C, d1, ...), got shape {log_probs.shape}")
    expected = log_probs.shape[:1] + log_probs.shape[2:]
    if labels.ndim != len(expected):
        layout = "(N,)" if len(expected) == 1 else f"(N, d1, ...) as the input's {expected}"
        raise ValueError(f"{op}: targets must be {len(expected)}-D {layout}, got shape {labels.shape}")
    if labels.shape[0] != expected[0]:
        raise ValueError(f"{op}: {expected[0]} rows of input but {labels.shape[0]} targets")
    if labels.shape != expected:
        raise ValueError(f"{op}: input of shape {log_probs.shape} needs targets of shape {expected}, got {labels.shape}")
    n_classes = log_probs.shape[1]

    def coefficients_of(labels: np.ndarray, weight):
        """(elements, classes) coefficients, and the total weight the mean divides by."""
        weights = _class_weights(weight, n_classes, log_probs.dtype, op)
        flat = labels.reshape(-1)
        kept = np.flatnonzero(flat != ignore_index)
        bad = flat[kept][(flat[kept] < 0) | (flat[kept] >= n_classes)]
        if bad.size:
            raise ValueError(f"{op}: target {int(bad[0])} is out of range for {n_classes} classes (valid: 0..{n_classes - 1})")
        coefficients = np.zeros((flat.size, n_classes), dtype=log_probs.dtype)
        coefficients[kept, flat[kept]] = weights[flat[kept]] * (1 - label_smoothing)
        if label_smoothing:
            coefficients[kept] += weights * (label_smoothing / n_classes)
        return coefficients, weights[flat[kept]].sum(dtype=log_probs.dtype)

    # inside vmap the labels (and the weights) may differ per sample: batching.per_sample builds each
    # sample's coefficients
    coefficients, total_weight = batching.per_sample(coefficients_of, labels, weight)
    loss = -(_classes_last(log_probs) * batching.constant(coefficients)).sum(axis=1)
    if reduction == "mean":
        return loss.sum() / batching.constant(total_weight)  # 0 / 0 = NaN when every target is ignored, as torch
    return loss.sum() if reduction == "sum" else loss.reshape(*labels.shape)


def _one_sample(loss, input: Tensor, target, reduction: str) -> Tensor:
    """``loss(input, target)`` of one unbatched sample (C,) computed as a batch of one, as torch
    allows; with reduction "none" the result is 0-d."""
    batch_of_one = target.reshape(1, *target.shape) if isinstance(target, Tensor) else np.reshape(target, (1, *np.shape(target)))
    out = loss(input.reshape(1, *input.shape), batch_of_one)
    return out.reshape(()) if reduction == "none" else out


def nll_loss(log_probs: Tensor, target, weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of integer targets (N,) or (N, d1, ...) given log-probabilities
    (N, C) or (N, C, d1, ...); ``weight`` (C,) weighs each class (a constant, not differentiated)."""
    return _class_index_loss(log_probs, target, weight, ignore_index, 0.0, reduction, "nll_loss")


def cross_entropy(logits: Tensor, target, weight=None, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits (N, C) or (N, C, d1, ...), as ``torch.nn.functional.cross_entropy``.

    ``target`` holds class indices (integers, shape (N, d1, ...)) or class probabilities (floats,
    the logits' shape). ``label_smoothing`` s mixes the target with the uniform distribution:
    (1 - s) * target + s / C. With probabilities the mean divides by the number of elements (N *
    d1 * ...), not by their weights, as torch does.
    """
    op = "cross_entropy"
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"{op}: label_smoothing must be between 0 and 1, got {label_smoothing}")
    probabilities = target if isinstance(target, Tensor) else np.asarray(target)
    if logits.ndim == 1 and probabilities.ndim in (0, 1):
        return _one_sample(lambda x, t: cross_entropy(x, t, weight, ignore_index, reduction, label_smoothing),
                           logits, target, reduction)
    if logits.ndim < 2:
        raise ValueError(f"{op}: logits must be (C,), (N, C) or (N, C, d1, ...), got shape {logits.shape}")
    log_probs = log_softmax(logits, dim=1)
    if probabilities.dtype.kind != "f":
        return _class_index_loss(log_probs, target, weight, ignore_index, label_smoothing, reduction, op)
    if probabilities.shape != logits.shape:
        raise TypeError(f"{op}: targets must be integer class indices, got dtype {probabilities.dtype} (floating-point "
                        f"targets are class probabilities, which need the logits' shape {logits.shape}, not "
                        f"{probabilities.shape})")
    target = target if isinstance(target, Tensor) else probabilities.astype(logits.dtype)
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / logits.shape[1]
    weights = _class_weights(weight, logits.shape[1], logits.dtype, op).reshape(1, -1, *(1,) * (logits.ndim - 2))
    return _reduce(-(log_probs * target * weights).sum(axis=1), reduction, op)


def _check_same_shape(input: Tensor, target, op: str):
    """The target as a Tensor (kept, so it can be differentiated) or as an array of the input's dtype."""
    target_shape = target.shape if isinstance(target, Tensor) else np.shape(target)
    if target_shape != input.shape:
        raise ValueError(f"{op}: input shape {input.shape} and target shape {target_shape} differ")
    return target if isinstance(target, Tensor) else np.asarray(target).astype(input.dtype)


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    target_shape = target.shape if isinstance(target, Tensor) else np.shape(target)
    if target_shape != input.shape:
        raise ValueError(f"mse_loss: input shape {input.shape} and target shape {target_shape} differ")
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """|input - target|, reduced."""
    target = _check_same_shape(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction, "l1_loss")


def _weighted(loss: Tensor, weight, op: str) -> Tensor:
    if weight is None:
        return loss
    weights = weight if isinstance(weight, Tensor) else np.asarray(weight)
    try:
        np.broadcast_shapes(weights.shape, loss.shape)
    except ValueError:
        raise ValueError(f"{op}: weight of shape {weights.shape} does not broadcast to the input's {loss.shape}") from None
    return loss * weights.astype(loss.dtype)


def binary_cross_entropy(input: Tensor, target, weight=None, reduction: str = "mean") -> Tensor:
    """-(t * log(x) + (1 - t) * log(1 - x)) for probabilities x in [0, 1]; each log is clamped at
    -100, as torch does, so a confident mistake costs 100 instead of inf."""
    op = "binary_cross_entropy"
    target = _check_same_shape(input, target, op)
    input_values = batching.physical_values(input)  # each value alone must be a probability, batched or not
    if input_values.size and not (0 <= input_values.min() and input_values.max() <= 1):
        raise ValueError(f"{op}: input must hold probabilities in [0, 1]; for logits use binary_cross_entropy_with_logits")
    target_values = batching.physical_values(target) if isinstance(target, Tensor) else target
    if target_values.size and not (0 <= target_values.min() and target_values.max() <= 1):
        raise ValueError(f"{op}: target must hold probabilities in [0, 1]")
    with np.errstate(divide="ignore"):  # log(0) = -inf is expected here: it is clamped to -100
        log_x, log_1_minus_x = [E.Clip.apply(p.log(), -100.0, None) for p in (input, 1 - input)]
    loss = -(log_x * target + log_1_minus_x * (1 - target))
    return _reduce(_weighted(loss, weight, op), reduction, op)


def binary_cross_entropy_with_logits(input: Tensor, target, weight=None, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    """binary_cross_entropy(sigmoid(x), t), computed stably:
    loss = (1 - t) * x + (1 + (p - 1) * t) * softplus(-x), where ``pos_weight`` p weighs the positive
    term (one value per class, broadcast along the last axis).

    softplus(-x) = log(1 + exp(-x)) is written log(1 + exp(-x)) for x > 0 and -x + log(1 + exp(x))
    otherwise, so no exp overflows. Each piece is chosen with ``where`` rather than written with
    relu and abs (max(-x, 0) + log(1 + exp(-|x|))): those have kinks at 0 whose one-sided
    derivatives do not add up to the smooth function's there."""
    op = "binary_cross_entropy_with_logits"
    target = _check_same_shape(input, target, op)
    positive = input > 0
    minus_abs = where(positive, -input, input)
    softplus_of_minus_x = (minus_abs.exp() + 1).log() - where(positive, 0.0, input)
    if pos_weight is None:
        scale = 1
    else:
        positive = (pos_weight if isinstance(pos_weight, Tensor) else np.asarray(pos_weight)).astype(input.dtype)
        scale = (target * (positive - 1)) + 1
    loss = (1 - target) * input + softplus_of_minus_x * scale
    return _reduce(_weighted(loss, weight, op), reduction, op)


# ---- layers as functions ---------------------------------------------------------------------------


def linear(x: Tensor, weight: Tensor, bias: Tensor = None) -> Tensor:
    """x @ weight.T + bias, with weight of shape (out_features, in_features) as in torch."""
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} has {x.shape[-1]} features, weight {weight.shape} expects {weight.shape[1]}")
    out = x @ weight.T
    return out if bias is None else out + bias


def one_hot(labels, num_classes: int = -1) -> Tensor:
    """(...) integer labels -> (..., num_classes) int64 with a 1 at each label; ``num_classes=-1``
    means one more than the largest label."""
    labels = _labels(labels, "one_hot")
    if num_classes == -1 and batching.is_batched(labels):
        raise ValueError("one_hot: inside vmap, give num_classes (the largest label differs from sample to sample)")
    return batching.per_sample(lambda y: _one_hot_array(y, num_classes), labels)


def _one_hot_array(labels: np.ndarray, num_classes: int) -> np.ndarray:
    if labels.size and labels.min() < 0:
        raise ValueError(f"one_hot: labels must be non-negative, got {int(labels.min())}")
    if num_classes == -1:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and labels.max() >= num_classes:
        raise ValueError(f"one_hot: label {int(labels.max())} is out of range for num_classes={num_classes}")
    return (labels[..., None] == np.arange(num_classes)).astype(np.int64)


def embedding(indices, weight: Tensor, padding_idx: int = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by integer ``indices`` (any shape); the gradient
    adds up in the rows picked. The row ``padding_idx`` gets no gradient (its value is still read)."""
    labels = _labels(indices, "embedding")
    values = batching.physical_values(labels) if isinstance(labels, Tensor) else labels  # every sample's, in vmap
    if values.size and (values.min() < 0 or values.max() >= weight.shape[0]):
        bad = values[(values < 0) | (values >= weight.shape[0])]
        raise ValueError(f"embedding: index {int(bad[0])} is out of range for {weight.shape[0]} embeddings")
    rows = weight[labels]
    if padding_idx is None:
        return rows
    padding_idx = padding_idx % weight.shape[0]  # torch allows a negative padding_idx
    return where((labels != padding_idx)[..., None], rows, rows.detach())


def _dropout(x: Tensor, p: float, training: bool, mask_shape, op: str) -> Tensor:
    """Zero the entries of a ``mask_shape`` mask (broadcast over x) with probability p, scale the rest by 1/(1-p)."""
    if not 0 <= p <= 1:
        raise ValueError(f"{op}: p must be between 0 and 1, got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    # inside vmap, batching.draw draws one mask per sample or one for all, as vmap's randomness says
    keep = batching.draw(lambda shape: get_rng().random(shape, dtype=np.float32) >= p, mask_shape, op)
    return x * (keep.astype(x.dtype) / x.dtype.type(1 - p))


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (inverted dropout)."""
    return _dropout(x, p, training, x.shape, "dropout")


def dropout2d(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero whole channels of (N, C, H, W) (or unbatched (C, H, W)) input with probability ``p``, and
    scale the rest by 1/(1-p): neighbouring pixels are correlated, so dropping single ones does little."""
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d: input must be (N, C, H, W) or (C, H, W), got shape {x.shape}")
    return _dropout(x, p, training, x.shape[:-2] + (1, 1), "dropout2d")


# ---- more activations -----------------------------------------------------------------------------------
# Each composed from Tensor ops; where one side of a ``where`` could overflow (an exp of a large
# value), its input is clamped first, so the unused side's zero gradient never meets an inf.


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta; where beta * x > threshold, x itself (as torch: there the two
    agree to float precision)."""
    scaled = x * float(beta)
    smooth = E.Clip.apply(scaled, None, float(threshold)).exp().log1p() / float(beta)
    return where(scaled > threshold, x, smooth)


def logsigmoid(x: Tensor) -> Tensor:
    """log(sigmoid(x)) = -log(1 + exp(-x)), written per sign so no exp overflows:
    x - log(1 + exp(x)) for x < 0, -log(1 + exp(-x)) otherwise."""
    negative_side = x - E.Clip.apply(x, None, 0.0).exp().log1p()
    positive_side = -E.Clip.apply(-x, None, 0.0).exp().log1p()
    return where(x < 0, negative_side, positive_side)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x clamped to [min_val, max_val]."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not be greater than max_val ({max_val})")
    return x.clamp(float(min_val), float(max_val))


def relu6(x: Tensor) -> Tensor:
    return hardtanh(x, 0.0, 6.0)


def softmin(x: Tensor, dim: int = None) -> Tensor:
    """softmax(-x): the smallest values get the largest weights."""
    return softmax(-x, dim)


def softsign(x: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return x / (x.abs() + 1.0)


def tanhshrink(x: Tensor) -> Tensor:
    """x - tanh(x)."""
    return x - x.tanh()


def threshold(x: Tensor, threshold: float, value: float) -> Tensor:
    """x where x > threshold, else value."""
    return where(x > threshold, x, float(value))


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def selu(x: Tensor) -> Tensor:
    """scale * elu(x, alpha) with the self-normalising constants of Klambauer et al. (2017)."""
    return elu(x, SELU_ALPHA) * SELU_SCALE


def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha * (exp(x / alpha) - 1): continuously differentiable at 0."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (it divides x)")
    return where(x > 0, x, (E.Clip.apply(x, None, 0.0) / float(alpha)).expm1() * float(alpha))


def glu(x: Tensor, dim: int = -1) -> Tensor:
    """The gated linear unit: the first half of ``dim`` times the sigmoid of the second half."""
    axis = check_axis("glu", dim, x.ndim)
    if x.shape[axis] % 2:
        raise ValueError(f"glu: the halved dimension must have an even size, dimension {dim} has size {x.shape[axis]}")
    a, b = x.chunk(2, axis)
    return a * b.sigmoid()


def mish(x: Tensor) -> Tensor:
    """x * tanh(softplus(x))."""
    return x * softplus(x).tanh()


def hardswish(x: Tensor) -> Tensor:
    """x * relu6(x + 3) / 6: 0 below -3, x above 3, a parabola between."""
    return x * (x + 3.0).clamp(0.0, 6.0) * (1 / 6)


def hardsigmoid(x: Tensor) -> Tensor:
    """relu6(x + 3) / 6."""
    return (x + 3.0).clamp(0.0, 6.0) * (1 / 6)


def prelu(x: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else weight * x; ``weight`` holds one slope, or one per channel (dimension 1)."""
    if weight.ndim != 1:
        raise ValueError(f"prelu: weight must be 1-D, got shape {weight.shape}")
    if weight.shape[0] == 1:
        slope = weight.reshape(())
    else:
        channels = x.shape[1] if x.ndim >= 2 else (x.shape[0] if x.ndim == 1 else 1)
        if weight.shape[0] != channels:
            raise ValueError(f"prelu: weight has {weight.shape[0]} slopes, the input has {channels} channels "
                             f"(dimension 1 of shape {x.shape})")
        slope = weight.reshape(-1, *(1,) * (x.ndim - 2)) if x.ndim >= 2 else weight
    return where(x > 0, x, x * slope)


# ---- distances and normalisation of vectors -----------------------------------------------------------------


def normalize(x: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x divided by its p-norm along ``dim``, the norm at least ``eps`` (so a zero vector stays zero)."""
    return x / x.norm(p, dim, keepdim=True).clamp_min(eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """The cosine of the angle between x1 and x2 along ``dim`` (they broadcast): the sum of the
    products of the unit vectors, each norm at least ``eps``."""
    x1, x2 = (x if isinstance(x, Tensor) else Tensor(x) for x in (x1, x2))
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ValueError(f"cosine_similarity: shapes {x1.shape} and {x2.shape} do not broadcast") from None
    x1, x2 = x1.expand(*shape), x2.expand(*shape)
    unit1 = x1 / x1.norm(2, dim, keepdim=True).clamp_min(eps)
    unit2 = x2 / x2.norm(2, dim, keepdim=True).clamp_min(eps)
    return (unit1 * unit2).sum(dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """The p-norm of x1 - x2 + eps along the last dimension (eps keeps the 2-norm differentiable
    where x1 == x2), as torch."""
    difference = x1 - x2 + eps
    return difference.norm(p, -1, keepdim=keepdim)


# ---- 1-D pooling: 2-D pooling over an image one row high -----------------------------------------------------


def _as_row_image(x: Tensor, op: str) -> Tensor:
    """(N, C, L) or unbatched (C, L) -> (N, C, 1, L)."""
    if not isinstance(x, Tensor) or x.ndim not in (2, 3):
        raise ValueError(f"{op}: input must be 3-D (N, C, L) or 2-D (C, L), got "
                         f"{'shape ' + str(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    return x.unsqueeze(-2) if x.ndim == 3 else x.unsqueeze(0).unsqueeze(-2)


def _from_row_image(out: Tensor, unbatched: bool) -> Tensor:
    out = out.squeeze(-2)
    return out.squeeze(0) if unbatched else out


def _pool_one_row(op: str, pool, *args):
    """``pool(*args)`` (a 2-D pool of the one-row image), its errors named after the 1-D op: the
    2-D pool's sizes have the row's height 1 first."""
    try:
        return pool(*args)
    except ValueError as error:
        raise ValueError(f"{op}: {error} (as a 2-D pool over one row; the last size is the length)") from None


def max_pool1d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over windows sliding along the last dimension; indices (with ``return_indices``) are
    positions along it, as torch's."""
    op = "max_pool1d"
    (kernel,) = ints(kernel_size, 1, "kernel_size", op)
    (step,) = ints(default_stride(stride, kernel_size), 1, "stride", op)
    (pad,), (spacing,) = ints(padding, 1, "padding", op), ints(dilation, 1, "dilation", op)
    image = _as_row_image(x, op)
    out = _pool_one_row(op, max_pool2d, image, (1, kernel), (1, step), (0, pad), (1, spacing), ceil_mode, return_indices)
    if return_indices:
        return _from_row_image(out[0], x.ndim == 2), _from_row_image(out[1], x.ndim == 2)
    return _from_row_image(out, x.ndim == 2)


def avg_pool1d(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True) -> Tensor:
    """Mean over windows sliding along the last dimension."""
    op = "avg_pool1d"
    (kernel,) = ints(kernel_size, 1, "kernel_size", op)
    (step,) = ints(default_stride(stride, kernel_size), 1, "stride", op)
    (pad,) = ints(padding, 1, "padding", op)
    out = _pool_one_row(op, avg_pool2d, _as_row_image(x, op), (1, kernel), (1, step), (0, pad), ceil_mode, count_include_pad)
    return _from_row_image(out, x.ndim == 2)


def adaptive_avg_pool1d(x: Tensor, output_size) -> Tensor:
    """Average pooling of the last dimension to ``output_size`` values."""
    (size,) = ints(output_size, 1, "output_size", "adaptive_avg_pool1d")
    out = _pool_one_row("adaptive_avg_pool1d", adaptive_avg_pool2d, _as_row_image(x, "adaptive_avg_pool1d"), (1, size))
    return _from_row_image(out, x.ndim == 2)


# ---- more losses ----------------------------------------------------------------------------------------------


def _difference(input: Tensor, target, op: str) -> Tensor:
    return input - _check_same_shape(input, target, op)


def smooth_l1_loss(input: Tensor, target, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target): quadratic near 0,
    linear beyond; ``beta=0`` is the L1 loss."""
    op = "smooth_l1_loss"
    if beta < 0:
        raise ValueError(f"{op}: beta must be non-negative, got {beta}")
    d = _difference(input, target, op)
    if beta == 0:
        return _reduce(d.abs(), reduction, op)
    return _reduce(where(d.abs() < beta, d * d * (0.5 / beta), d.abs() - 0.5 * beta), reduction, op)


def huber_loss(input: Tensor, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5 d^2 where |d| <= delta, else delta * (|d| - 0.5 delta): smooth_l1_loss times delta."""
    op = "huber_loss"
    if delta <= 0:
        raise ValueError(f"{op}: delta must be positive, got {delta}")
    d = _difference(input, target, op)
    return _reduce(where(d.abs() <= delta, d * d * 0.5, (d.abs() - 0.5 * delta) * delta), reduction, op)


def kl_div(input: Tensor, target, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """The Kullback-Leibler divergence of ``input`` (log-probabilities) from ``target``
    (probabilities, or log-probabilities with ``log_target``): t * (log t - input) per element, 0
    where t = 0. ``reduction="batchmean"`` divides the sum by the batch size (the first dimension):
    the mathematical KL divergence per sample; torch's default ``"mean"`` divides by every element."""
    op = "kl_div"
    if reduction not in REDUCTIONS + ("batchmean",):
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS + ('batchmean',)}, got {reduction!r}")
    target = _check_same_shape(input, target, op)
    target = target if isinstance(target, Tensor) else Tensor(target)
    if log_target:
        pointwise = target.exp() * (target - input)
    else:
        positive = target > 0
        # log of 1 where t = 0: that side is unused, and its gradient must not meet log(0)
        pointwise = where(positive, target * (where(positive, target, 1.0).log() - input), 0.0)
    if reduction == "batchmean":
        return pointwise.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(pointwise, reduction, op)


def margin_ranking_loss(input1: Tensor, input2: Tensor, target, margin: float = 0.0, reduction: str = "mean") -> Tensor:
    """max(0, -y * (x1 - x2) + margin): y = 1 says x1 should rank higher, y = -1 lower."""
    op = "margin_ranking_loss"
    shapes = [t.shape if isinstance(t, Tensor) else np.shape(t) for t in (input1, input2, target)]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"{op}: input1, input2 and target shapes {shapes[0]}, {shapes[1]}, {shapes[2]} do not broadcast") from None
    return _reduce(((input1 - input2) * -target + margin).relu(), reduction, op)


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, reduction: str = "mean") -> Tensor:
    """max(d(a, p) - d(a, n) + margin, 0) with d the ``pairwise_distance`` (p-norm, ``eps`` added);
    with ``swap`` d(a, n) is replaced by d(p, n) where that is smaller (Balntas et al. 2016)."""
    op = "triplet_margin_loss"
    if not (anchor.ndim == positive.ndim == negative.ndim and anchor.ndim in (1, 2)):
        raise ValueError(f"{op}: anchor, positive and negative must all be 1-D (D) or 2-D (N, D), got shapes "
                         f"{anchor.shape}, {positive.shape} and {negative.shape}")
    if margin <= 0:
        raise ValueError(f"{op}: margin must be positive, got {margin}")
    to_positive = pairwise_distance(anchor, positive, p, eps)
    to_negative = pairwise_distance(anchor, negative, p, eps)
    if swap:
        to_negative = to_negative.clamp(max=pairwise_distance(positive, negative, p, eps))
    return _reduce((to_positive - to_negative + margin).relu(), reduction, op)
