"""Pooling beyond tests/ops/test_pool.py: ``max_pool2d`` with ``ceil_mode`` and ``return_indices``,
and the adaptive poolings, against loops over windows written here, with gradients of order 1
and 2 and torch's values, indices and gradients. Max-pooling draws tie-free values
(``distinct_values``): at a tie the maximum is not differentiable."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.testing import strategies as S


def pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def ceil_output_side(n, k, s, p, d):
    """torch's ceil_mode: round up, but drop a last window that starts in the right padding."""
    out = -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1
    return out - 1 if (out - 1) * s >= n + p else out


def max_pool_reference(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Maxima and torch's flat indices, one window at a time."""
    (kh, kw), (ph, pw), (dh, dw) = pair(kernel_size), pair(padding), pair(dilation)
    sh, sw = pair(kernel_size if stride is None else stride)
    n, c, h, w = x.shape
    if ceil_mode:
        out_h, out_w = ceil_output_side(h, kh, sh, ph, dh), ceil_output_side(w, kw, sw, pw, dw)
    else:
        out_h, out_w = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    values, indices = np.zeros((n, c, out_h, out_w)), np.zeros((n, c, out_h, out_w), dtype=np.int64)
    for i in range(out_h):
        for j in range(out_w):
            taps = [(i * sh - ph + a * dh, j * sw - pw + b * dw) for a in range(kh) for b in range(kw)]
            taps = [(r, q) for r, q in taps if 0 <= r < h and 0 <= q < w]
            window = np.stack([x[:, :, r, q] for r, q in taps], axis=-1)
            best = window.argmax(axis=-1)
            values[:, :, i, j] = window.max(axis=-1)
            indices[:, :, i, j] = np.array([r * w + q for r, q in taps])[best]
    return values, indices


@st.composite
def ceil_mode_problems(draw):
    config = draw(S.pool2d_configs(dilation=True), label="config")
    x = draw(S.distinct_values(config.input_shape), label="x")
    return config, x


@given(problem=ceil_mode_problems(), ceil_mode=st.booleans())
def test_max_pool2d_ceil_mode_and_indices(problem, ceil_mode, check_op):
    config, x = problem
    kwargs = dict(config.kwargs, ceil_mode=ceil_mode)
    values, indices = max_pool_reference(x.data, **kwargs)
    out, got = F.max_pool2d(x, **kwargs, return_indices=True)
    np.testing.assert_array_equal(got.data, indices)
    assert got.dtype == np.int64
    check_op(lambda t: F.max_pool2d(t, **kwargs), values, x)


@given(problem=ceil_mode_problems(), ceil_mode=st.booleans())
def test_max_pool2d_ceil_mode_and_indices_match_torch(problem, ceil_mode, assert_matches_torch):
    import torch

    config, x = problem
    kwargs = dict(config.kwargs, ceil_mode=ceil_mode)
    assert_matches_torch(lambda t: F.max_pool2d(t, **kwargs), lambda t: torch.nn.functional.max_pool2d(t, **kwargs), x)
    _, indices = F.max_pool2d(x, **kwargs, return_indices=True)
    _, expected = torch.nn.functional.max_pool2d(torch.from_numpy(x.data), **kwargs, return_indices=True)
    np.testing.assert_array_equal(indices.data, expected.numpy())


def test_max_pool2d_ceil_mode_keeps_a_partial_last_window():
    x = Tensor(np.arange(25.0).reshape(1, 1, 5, 5))
    assert F.max_pool2d(x, 2).shape == (1, 1, 2, 2)
    out = F.max_pool2d(x, 2, ceil_mode=True)
    np.testing.assert_array_equal(out.data[0, 0], [[6, 8, 9], [16, 18, 19], [21, 23, 24]])


def test_max_pool2d_layer_passes_ceil_mode_and_return_indices():
    torch = pytest.importorskip("torch")
    ours = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True, return_indices=True)
    theirs = torch.nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True, return_indices=True)
    assert repr(ours) == repr(theirs)
    assert repr(nn.MaxPool2d(2)) == repr(torch.nn.MaxPool2d(2))
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 7))
    (values, indices), (t_values, t_indices) = ours(Tensor(x)), theirs(torch.from_numpy(x))
    np.testing.assert_array_equal(values.data, t_values.numpy())
    np.testing.assert_array_equal(indices.data, t_indices.numpy())


# ---- adaptive pooling ------------------------------------------------------------------------------------


def adaptive_windows(n_in, n_out):
    return [(int(np.floor(i * n_in / n_out)), int(np.ceil((i + 1) * n_in / n_out))) for i in range(n_out)]


def adaptive_reference(x, out_hw, reduce):
    n, c, h, w = x.shape
    out = np.zeros((n, c, *out_hw))
    for i, (r0, r1) in enumerate(adaptive_windows(h, out_hw[0])):
        for j, (c0, c1) in enumerate(adaptive_windows(w, out_hw[1])):
            out[:, :, i, j] = reduce(x[:, :, r0:r1, c0:c1], axis=(2, 3))
    return out


@st.composite
def adaptive_problems(draw, distinct=False):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    out_hw = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    written = draw(st.sampled_from([out_hw, (None, out_hw[1]), out_hw[0]]))
    out_hw = {(None, out_hw[1]): (shape[2], out_hw[1]), out_hw[0]: (out_hw[0], out_hw[0])}.get(written, out_hw)
    x = draw(S.distinct_values(shape) if distinct else S.tensors(shape), label="x")
    return x, written, out_hw


@given(problem=adaptive_problems())
def test_adaptive_avg_pool2d(problem, check_op):
    x, written, out_hw = problem
    check_op(lambda t: F.adaptive_avg_pool2d(t, written), adaptive_reference(x.data, out_hw, np.mean), x)


@given(problem=adaptive_problems(distinct=True))
def test_adaptive_max_pool2d(problem, check_op):
    x, written, out_hw = problem
    check_op(lambda t: F.adaptive_max_pool2d(t, written), adaptive_reference(x.data, out_hw, np.max), x)


@pytest.mark.parametrize("kind", ["avg", "max"])
@given(problem=adaptive_problems(distinct=True))
def test_adaptive_pools_match_torch(kind, problem, assert_matches_torch):
    import torch

    x, written, _ = problem
    ours, theirs = getattr(F, f"adaptive_{kind}_pool2d"), getattr(torch.nn.functional, f"adaptive_{kind}_pool2d")
    assert_matches_torch(lambda t: ours(t, written), lambda t: theirs(t, written), x)
    if kind == "max":
        _, indices = ours(x, written, return_indices=True)
        np.testing.assert_array_equal(indices.data, theirs(torch.from_numpy(x.data), written, return_indices=True)[1].numpy())


def test_adaptive_pool_layers():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 5))
    for ours, theirs in [(nn.AdaptiveAvgPool2d((2, None)), torch.nn.AdaptiveAvgPool2d((2, None))),
                         (nn.AdaptiveMaxPool2d(3), torch.nn.AdaptiveMaxPool2d(3))]:
        assert repr(ours) == repr(theirs)
        np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.from_numpy(x)).numpy(), rtol=1e-12)
    assert nn.AdaptiveAvgPool2d(1)(Tensor(x)).shape == (2, 3, 1, 1)
    with pytest.raises(ValueError, match=r"^adaptive_avg_pool2d: output_size must be at least 1"):
        F.adaptive_avg_pool2d(Tensor(x), 0)


def test_adaptive_max_pool2d_gives_a_tied_window_gradient_to_its_first_maximum_as_torch(assert_matches_torch):
    import torch

    x = Tensor(np.array([[[[1.0, 1.0, 0.0], [1.0, 2.0, 2.0], [0.0, 2.0, 2.0]]]]), requires_grad=True)
    for size in (1, 2, (2, 3)):
        assert_matches_torch(lambda t: F.adaptive_max_pool2d(t, size), lambda t: torch.nn.functional.adaptive_max_pool2d(t, size), x)


# ---- avg_pool2d's options ---------------------------------------------------------------------------------------


def avg_pool_reference(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                       divisor_override=None):
    """Each window's sum over the input positions it covers, divided by the positions that count."""
    (kh, kw), (ph, pw) = pair(kernel_size), pair(padding)
    sh, sw = pair(kernel_size if stride is None else stride)
    n, c, h, w = x.shape
    if ceil_mode:
        out_h, out_w = ceil_output_side(h, kh, sh, ph, 1), ceil_output_side(w, kw, sw, pw, 1)
    else:
        out_h, out_w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, c, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            rows = [r for r in range(i * sh - ph, i * sh - ph + kh) if r < h + ph]  # never past the padding
            cols = [q for q in range(j * sw - pw, j * sw - pw + kw) if q < w + pw]
            inside = [(r, q) for r in rows for q in cols if 0 <= r < h and 0 <= q < w]
            total = sum(x[:, :, r, q] for r, q in inside)
            count = len(rows) * len(cols) if count_include_pad else len(inside)
            out[:, :, i, j] = total / (divisor_override or count)
    return out


@st.composite
def avg_pool_problems(draw):
    config = draw(S.pool2d_configs(), label="config")
    kwargs = dict(config.kwargs, ceil_mode=draw(st.booleans(), label="ceil_mode"),
                  count_include_pad=draw(st.booleans(), label="count_include_pad"),
                  divisor_override=draw(st.sampled_from([None, None, 3]), label="divisor_override"))
    return draw(S.tensors(config.input_shape), label="x"), kwargs


@given(problem=avg_pool_problems())
def test_avg_pool2d_options(problem, check_op):
    x, kwargs = problem
    check_op(lambda t: F.avg_pool2d(t, **kwargs), avg_pool_reference(x.data, **kwargs), x)


@given(problem=avg_pool_problems())
def test_avg_pool2d_options_match_torch(problem, assert_matches_torch):
    import torch

    x, kwargs = problem
    assert_matches_torch(lambda t: F.avg_pool2d(t, **kwargs), lambda t: torch.nn.functional.avg_pool2d(t, **kwargs), x)


def test_avg_pool2d_layer_passes_its_options():
    torch = pytest.importorskip("torch")
    kwargs = dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    ours, theirs = nn.AvgPool2d(3, **kwargs), torch.nn.AvgPool2d(3, **kwargs)
    assert repr(ours) == repr(theirs)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 7))
    np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.from_numpy(x)).numpy(), rtol=1e-12)
