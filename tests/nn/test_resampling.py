"""``F.pad`` (torch's reversed order of widths; constant, reflect, replicate, circular) and
``F.interpolate`` / ``nn.Upsample`` (nearest, linear, bilinear, align_corners), against NumPy's
``np.pad`` and against interpolation written point by point here, with gradients of order 1 and 2
and torch's values and gradients."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.testing import strategies as S

NUMPY_PAD_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@st.composite
def pad_problems(draw):
    mode = draw(st.sampled_from(sorted(NUMPY_PAD_MODE)), label="mode")
    shape = draw(S.shapes(min_dims=3, max_dims=4, min_side=1, max_side=4), label="shape")
    padded_axes = draw(st.integers(1, 2 if mode != "constant" else 3))
    widths = []
    for axis in range(len(shape) - 1, len(shape) - 1 - padded_axes, -1):
        n = shape[axis]
        if mode == "constant":  # negative widths crop
            low = -((n - 1) // 2)
            widths += [draw(st.integers(low, 2)), draw(st.integers(low, 2))]
        elif mode == "reflect":
            widths += [draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))]
        else:
            widths += [draw(st.integers(0, min(n, 3))), draw(st.integers(0, min(n, 3)))]
    value = draw(st.sampled_from([None, 0.5])) if mode == "constant" else None
    return draw(S.tensors(shape), label="x"), tuple(widths), mode, value


def pad_reference(x, widths, mode, value):
    pad_width = [(0, 0)] * x.ndim
    for i in range(len(widths) // 2):
        pad_width[x.ndim - 1 - i] = (widths[2 * i], widths[2 * i + 1])
    crop = tuple(slice(max(0, -a), x.shape[k] - max(0, -b)) for k, (a, b) in enumerate(pad_width))
    kwargs = dict(constant_values=0.0 if value is None else value) if mode == "constant" else {}
    return np.pad(x[crop], [(max(0, a), max(0, b)) for a, b in pad_width], mode=NUMPY_PAD_MODE[mode], **kwargs)


@given(problem=pad_problems())
def test_pad(problem, check_op):
    x, widths, mode, value = problem
    check_op(lambda t: F.pad(t, widths, mode, value), pad_reference(x.data, widths, mode, value), x)


@given(problem=pad_problems())
def test_pad_assert_matches_torch(problem, assert_matches_torch):
    import torch

    x, widths, mode, value = problem
    if mode != "constant" and x.ndim - len(widths) // 2 not in (1, 2):
        return  # torch pads all spatial axes of (C, ...) or (N, C, ...) input in these modes, no fewer
    theirs = dict(value=value) if value is not None else {}
    assert_matches_torch(lambda t: F.pad(t, widths, mode, value), lambda t: torch.nn.functional.pad(t, widths, mode, **theirs), x)


def test_pad_errors():
    x = Tensor(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"^pad: reflect padding \(3, 0\) of axis 3 must be smaller than its size 3"):
        F.pad(x, (3, 0), mode="reflect")
    with pytest.raises(ValueError, match=r"^pad: pad must hold a \(before, after\) pair"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match=r"^pad: mode must be one of"):
        F.pad(x, (1, 1), mode="symmetric")
    with pytest.raises(TypeError, match=r"^pad: pad must be a tuple of ints"):
        F.pad(x, 1)


# ---- interpolate -------------------------------------------------------------------------------------------


def source_positions(n_in, n_out, scale, mode, align_corners):
    """Where output i samples the input, as torch defines it, one output at a time."""
    positions = []
    for i in range(n_out):
        if mode == "nearest":
            positions.append(min(math.floor(i * scale), n_in - 1))
        elif align_corners:
            positions.append(i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
        else:
            positions.append(max((i + 0.5) * scale - 0.5, 0.0))
    return positions


def sample(x, axis, position):
    """x at a (fractional) position along ``axis``: the two neighbours mixed linearly."""
    lower = min(int(math.floor(position)), x.shape[axis] - 1)
    upper, t = min(lower + 1, x.shape[axis] - 1), position - lower
    return np.take(x, lower, axis=axis) * (1 - t) + np.take(x, upper, axis=axis) * t


def interpolate_reference(x, out_sizes, scales, mode, align_corners):
    for axis, (n_out, scale) in enumerate(zip(out_sizes, scales), start=2):
        positions = source_positions(x.shape[axis], n_out, scale, mode, align_corners)
        x = np.stack([sample(x, axis, p) for p in positions], axis=axis)
    return x


@st.composite
def interpolate_problems(draw):
    mode = draw(st.sampled_from(["nearest", "linear", "bilinear"]), label="mode")
    spatial = {"linear": 1, "bilinear": 2}.get(mode) or draw(st.integers(1, 2))
    in_sizes = tuple(draw(st.integers(1, 4)) for _ in range(spatial))
    x = draw(S.tensors((draw(st.integers(1, 2)), draw(st.integers(1, 2)), *in_sizes)), label="x")
    align_corners = None if mode == "nearest" else draw(st.booleans(), label="align_corners")
    if draw(st.booleans(), label="by size"):
        out_sizes = tuple(draw(st.integers(1, 6)) for _ in range(spatial))
        kwargs = dict(size=out_sizes if spatial > 1 or draw(st.booleans()) else out_sizes[0])
        scales = [n / m for n, m in zip(in_sizes, out_sizes)]
    else:
        factor = draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0]))
        out_sizes = tuple(int(math.floor(n * factor)) for n in in_sizes)
        if min(out_sizes) < 1:
            factor, out_sizes = 2.0, tuple(2 * n for n in in_sizes)
        kwargs = dict(scale_factor=factor)
        scales = [1 / factor] * spatial
    return x, dict(kwargs, mode=mode, align_corners=align_corners), out_sizes, scales


@given(problem=interpolate_problems())
def test_interpolate(problem, check_op):
    x, kwargs, out_sizes, scales = problem
    expected = interpolate_reference(x.data, out_sizes, scales, kwargs["mode"], kwargs["align_corners"])
    check_op(lambda t: F.interpolate(t, **kwargs), expected, x)


@given(problem=interpolate_problems())
def test_interpolate_assert_matches_torch(problem, assert_matches_torch):
    import torch

    x, kwargs, _, _ = problem
    assert_matches_torch(lambda t: F.interpolate(t, **kwargs), lambda t: torch.nn.functional.interpolate(t, **kwargs), x)


def test_upsample_layer_and_errors():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 4))
    for kwargs in (dict(scale_factor=2), dict(size=(5, 7), mode="bilinear", align_corners=True)):
        ours, theirs = nn.Upsample(**kwargs), torch.nn.Upsample(**kwargs)
        assert repr(ours) == repr(theirs)
        np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.from_numpy(x)).numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match=r"^interpolate: give exactly one of size and scale_factor"):
        F.interpolate(Tensor(x), size=2, scale_factor=2)
    with pytest.raises(ValueError, match=r"^interpolate: mode='bilinear' needs 4-D"):
        F.interpolate(Tensor(x[0]), size=2, mode="bilinear")
    with pytest.raises(ValueError, match=r"^interpolate: align_corners only applies"):
        F.interpolate(Tensor(x), size=2, align_corners=True)
