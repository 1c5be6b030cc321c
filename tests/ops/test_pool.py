"""Pooling: ``max_pool2d`` (the ``MaxPool2d`` primitive and its scatter/gather derivatives) and
``avg_pool2d`` (a depthwise convolution), with hyperparameters from ``pool2d_configs``, against
pooling written as loops over windows.

Max-pooling is only differentiable where each window has a single maximum, so its inputs come
from ``distinct_values``.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor
from tinygrad_cnn.ops.conv import ConvGeometry
from tinygrad_cnn.ops.pool import MaxPool2d, WindowGather, WindowScatter
from tinygrad_cnn.testing import check_dtype_preserved, check_gradients
from tinygrad_cnn.testing import strategies as S

from ._tensors import param


def pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def windows(x_shape, kernel_size, stride=None, padding=0, dilation=1):
    """For every output position (n, c, i, j): the input positions its window covers, as indices
    into the input padded by ``padding`` on each side."""
    (kh, kw), (ph, pw), (dh, dw) = pair(kernel_size), pair(padding), pair(dilation)
    sh, sw = pair(kernel_size if stride is None else stride)
    n_batch, channels, height, width = x_shape
    out_h = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    for n in range(n_batch):
        for c in range(channels):
            for i in range(out_h):
                for j in range(out_w):
                    taps = [(n, c, i * sh + a * dh, j * sw + b * dw) for a in range(kh) for b in range(kw)]
                    yield (n, c, i, j), taps


def padded(x, pad_value, padding):
    (ph, pw) = pair(padding)
    out = np.full((*x.shape[:2], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw), pad_value)
    out[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]] = x
    return out


def unpad(x, padding):
    (ph, pw) = pair(padding)
    return x[:, :, ph : x.shape[2] - ph, pw : x.shape[3] - pw]


def output_shape(x_shape, **kwargs):
    return tuple(int(n) + 1 for n in np.max([at for at, _ in windows(x_shape, **kwargs)], axis=0))


def pool2d_reference(x, combine, pad_value, **kwargs):
    """out[n, c, i, j] = combine(the values of the padded input in window (i, j))."""
    source = padded(x, pad_value, kwargs.get("padding", 0))
    out = np.zeros(output_shape(x.shape, **kwargs))
    for at, taps in windows(x.shape, **kwargs):
        out[at] = combine([source[t] for t in taps])
    return out


def argmax_taps(x, **kwargs):
    """Where each window's maximum is, found from the values of x (-inf padding never wins)."""
    source = padded(x, -np.inf, kwargs.get("padding", 0))
    return [(at, max(taps, key=lambda t: source[t])) for at, taps in windows(x.shape, **kwargs)]


def scatter_reference(g, x, **kwargs):
    """The gradient of max-pooling: each output's g goes to the position of its window's maximum."""
    out = padded(np.zeros(x.shape), 0.0, kwargs.get("padding", 0))
    for at, tap in argmax_taps(x, **kwargs):
        out[tap] += g[at]
    return unpad(out, kwargs.get("padding", 0))


def gather_reference(y, x, **kwargs):
    """Read y at the position of each window's maximum of x."""
    source = padded(y, 0.0, kwargs.get("padding", 0))
    out = np.zeros(output_shape(x.shape, **kwargs))
    for at, tap in argmax_taps(x, **kwargs):
        out[at] = source[tap]
    return out


def window_mean(window):
    return sum(window) / len(window)  # zero padding counts (torch's count_include_pad=True)


@given(data=st.data())
def test_max_pool2d(data):
    config = data.draw(S.pool2d_configs(dilation=True), label="config")
    x = data.draw(S.distinct_values(config.input_shape), label="x")

    def pool(t):
        return F.max_pool2d(t, **config.kwargs)

    expected = pool2d_reference(x.data, max, -np.inf, **config.kwargs)
    (gradient,) = tg.grad(pool(x), x, grad_outputs=Tensor(np.ones(expected.shape)))
    np.testing.assert_array_equal(gradient.data, scatter_reference(np.ones(expected.shape), x.data, **config.kwargs))
    out = pool(x)
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.data, expected)
    check_gradients(pool, x)
    check_dtype_preserved(pool, x)


@given(data=st.data())
def test_avg_pool2d(data):
    config = data.draw(S.pool2d_configs(), label="config")
    x = data.draw(S.tensors(config.input_shape), label="x")

    def pool(t):
        return F.avg_pool2d(t, **config.kwargs)

    expected = pool2d_reference(x.data, window_mean, 0.0, **config.kwargs)
    out = pool(x)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    check_gradients(pool, x)
    check_dtype_preserved(pool, x)


@given(data=st.data())
def test_window_scatter_and_gather_primitives(data):
    """Max-pooling's derivatives are a scatter and a gather that are each other's gradient; the
    gather's own backward is only reached at third order through max_pool2d, so check both here."""
    config = data.draw(S.pool2d_configs(dilation=True), label="config")
    x = data.draw(S.distinct_values(config.input_shape), label="x")
    kwargs = config.kwargs
    kernel = pair(kwargs["kernel_size"])
    geometry = ConvGeometry(kernel=kernel, stride=pair(kwargs["stride"] or kernel), padding=pair(kwargs["padding"]),
                            dilation=pair(kwargs["dilation"]))
    argmax = MaxPool2d.apply(x, geometry).grad_fn.argmax
    g = data.draw(S.tensors(output_shape(x.shape, **kwargs)), label="g")
    y = data.draw(S.tensors(x.shape), label="y")

    def scatter(g):
        return WindowScatter.apply(g, argmax, x.shape, geometry)

    def gather(y):
        return WindowGather.apply(y, argmax, geometry)

    np.testing.assert_allclose(scatter(g).data, scatter_reference(g.data, x.data, **kwargs), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(gather(y).data, gather_reference(y.data, x.data, **kwargs))
    for op, t in ((scatter, g), (gather, y)):
        check_gradients(op, t)
        check_dtype_preserved(op, t)


@pytest.mark.parametrize("shape, kernel_size, stride", [
    ((4, 8, 32, 32), 2, 2),  # windows tile the input: the gradient's buffer is written without a zero fill
    ((4, 8, 33, 32), 2, 2),  # the last row is in no window and must get zeros
    ((4, 8, 32, 32), 3, 3),  # (31 of 32 rows and columns in windows)
])
def test_max_pool2d_gradient_from_a_reused_dirty_buffer(shape, kernel_size, stride):
    # large enough for tinygrad_cnn.memory's cache: fill blocks of the gradient's size with NaN and
    # free them, so the scatter gets a dirty block; every position must still be written
    for _ in range(3):
        tg.kernels.memory.empty(shape, np.float32).fill(np.nan)
    x = np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape).astype(np.float32)
    t = Tensor(x, requires_grad=True)
    g = np.random.default_rng(1).standard_normal(output_shape(shape, kernel_size=kernel_size, stride=stride)).astype(np.float32)
    F.max_pool2d(t, kernel_size, stride).backward(Tensor(g))
    np.testing.assert_array_equal(t.grad.data, scatter_reference(g, x, kernel_size=kernel_size, stride=stride))


def test_max_pool2d_gradient_goes_to_the_first_of_tied_maxima_as_torch():
    x = Tensor(np.array([[[[1.0, 1.0], [0.0, 1.0]]]]), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[[[1.0, 0.0], [0.0, 0.0]]]])


@given(data=st.data())
def test_pooling_matches_torch(data, assert_matches_torch):
    torch = pytest.importorskip("torch")
    config = data.draw(S.pool2d_configs(dilation=True), label="config")
    x = data.draw(S.distinct_values(config.input_shape), label="x")
    avg_kwargs = {k: v for k, v in config.kwargs.items() if k != "dilation"}
    assert_matches_torch(lambda t: F.max_pool2d(t, **config.kwargs),
                         lambda t: torch.nn.functional.max_pool2d(t, **config.kwargs), x, rtol=1e-12)
    assert_matches_torch(lambda t: F.avg_pool2d(t, **avg_kwargs),
                         lambda t: torch.nn.functional.avg_pool2d(t, **avg_kwargs), x, rtol=1e-12)


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
def test_pool_argument_errors_are_clear(pool):
    x = Tensor(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="at most half the kernel"):
        pool(x, 2, padding=2)
    with pytest.raises(ValueError, match="larger than the padded input"):
        pool(x, 5)
    with pytest.raises(ValueError, match="4-D"):
        pool(Tensor(np.zeros((4, 4))), 2)


@pytest.mark.parametrize("shape", [(3, 4, 8, 8), (2, 5, 9, 7), (1, 1, 2, 2)])
def test_max_pool2d_2x2_fast_path_matches_the_general_loop_on_ties_and_nan(shape):
    # 2x2 windows with stride 2 take a tournament path of their own; on values drawn from {0, 1, 2}
    # (ties everywhere), with NaN and infinities mixed in, it must pick the same maxima and argmax
    # as the loop over kernel offsets that serves every other window, and agree with torch
    from tinygrad_cnn.kernels.pooling import _max_of_2x2, _max_of_windows

    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=shape).astype(np.float32)
    x.flat[rng.choice(x.size, size=max(1, x.size // 20), replace=False)] = np.nan
    x.flat[rng.choice(x.size, size=max(1, x.size // 20), replace=False)] = np.inf
    geometry = ConvGeometry(kernel=(2, 2), stride=(2, 2))
    out_hw = geometry.output_size(*shape[2:])
    best, argmax = _max_of_2x2(x, out_hw)
    reference_best, reference_argmax = _max_of_windows(x, geometry, out_hw)
    np.testing.assert_array_equal(best, reference_best)
    nan = np.isnan(best)  # the NaN fix-up in MaxPool2d.forward rewrites these argmax entries
    np.testing.assert_array_equal(argmax[~nan], reference_argmax[~nan])

    torch = pytest.importorskip("torch")
    t = Tensor(x, requires_grad=True)
    F.max_pool2d(t, 2).backward(Tensor(np.arange(best.size, dtype=np.float32).reshape(best.shape)))
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(tx, 2).backward(torch.arange(best.size, dtype=torch.float32).reshape(best.shape))
    np.testing.assert_array_equal(t.grad.data, tx.grad.numpy())

# ---- clear errors (moved from tests/test_errors.py) -------------------------------------------------


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d], ids=["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"kernel_size": 2, "padding": 2}, ValueError, r"padding \(2, 2\) must be at most half the kernel size \(2, 2\)"),
        ({"kernel_size": 3, "padding": (0, 2)}, ValueError, r"padding \(0, 2\) must be at most half the kernel size \(3, 3\)"),
        ({"kernel_size": 0}, ValueError, r"kernel must be at least 1, got \(0, 0\)"),
        ({"kernel_size": -2}, ValueError, r"kernel must be at least 1, got \(-2, -2\)"),
        ({"kernel_size": 6}, ValueError, r"kernel of size \(6, 6\).*larger than the padded input \(5, 5\)"),
        ({"kernel_size": 2, "stride": 0}, ValueError, r"stride must be at least 1, got \(0, 0\)"),
        ({"kernel_size": 2, "padding": -1}, ValueError, r"padding must be non-negative"),
        ({"kernel_size": "2"}, TypeError, r"kernel_size must be an int or a pair of ints, got '2'"),
        ({"kernel_size": None}, TypeError, r"kernel_size must be an int or a pair of ints, got None"),
        ({"kernel_size": (2,)}, TypeError, r"kernel_size must be an int or a pair of ints, got \(2,\)"),
        ({"kernel_size": 2.0}, TypeError, r"kernel_size must be an int or a pair of ints, got 2.0"),
    ],
)
def test_pool_bad_arguments(pool, kwargs, error, pattern):
    with pytest.raises(error, match=f"^{pool.__name__}: {pattern}"):
        pool(param(1, 2, 5, 5), **kwargs)


def test_max_pool2d_padding_of_exactly_half_the_kernel_is_allowed():
    """PyTorch's rule: padding <= kernel // 2."""
    assert F.max_pool2d(param(1, 1, 4, 4), 2, padding=1).shape == (1, 1, 3, 3)
    assert F.max_pool2d(param(1, 1, 4, 4), 3, padding=1).shape == (1, 1, 2, 2)


def test_max_pool2d_dilation_checked():
    with pytest.raises(ValueError, match=r"^max_pool2d: dilation must be at least 1"):
        F.max_pool2d(param(1, 1, 4, 4), 2, dilation=0)
    with pytest.raises(ValueError, match=r"^max_pool2d: kernel .*spans \(7, 7\)"):
        F.max_pool2d(param(1, 1, 4, 4), 4, dilation=2)


def test_pool_rejects_integer_input_and_wrong_rank():
    with pytest.raises(TypeError, match=r"^max_pool2d: input must be a floating-point tensor"):
        F.max_pool2d(Tensor(np.ones((1, 1, 4, 4), np.int32)), 2, padding=1)
    with pytest.raises(ValueError, match=r"^avg_pool2d: input must be 4-D"):
        F.avg_pool2d(param(4, 4), 2)
