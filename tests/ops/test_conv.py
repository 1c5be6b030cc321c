"""2-D convolution (``nn.functional.conv2d`` over the ``Conv2d`` primitives): every hyperparameter
drawn by ``conv2d_configs`` (non-square kernels, stride, padding, dilation as int or pair, groups,
bias), against a convolution written as loops over its multiply-adds.

``Conv2dInputGrad`` and ``Conv2dWeightGrad`` are primitives too, whose own backward is only reached
at third order through conv2d, so they are checked directly as well: forward against the same
loops read backwards, and their first and second derivatives.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor
from tinygrad_cnn.ops.conv import Conv2dInputGrad, Conv2dWeightGrad, ConvGeometry
from tinygrad_cnn.testing import check_dtype_preserved, check_gradients
from tinygrad_cnn.testing import strategies as S

from ._tensors import const, param


def pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def output_size(x_shape, w_shape, stride, padding, dilation):
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    (height, width), (kh, kw) = x_shape[2:], w_shape[2:]
    return (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1


def convolution_terms(x_shape, w_shape, stride, padding, dilation, groups):
    """Every multiply-add of a convolution: y[n, o, i, j] += w[o, c, ki, kj] * x_padded[n, channel, row, col]
    with channel = g*C/G + c for the group g of output channel o, row = i*sh + ki*dh, col = j*sw + kj*dw.

    The convolution and both its gradients are sums over these same terms, read in different directions.
    """
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    out_channels, group_channels, kh, kw = w_shape
    out_h, out_w = output_size(x_shape, w_shape, stride, padding, dilation)
    for n in range(x_shape[0]):
        for o in range(out_channels):
            first = (o // (out_channels // groups)) * group_channels
            for i in range(out_h):
                for j in range(out_w):
                    for c in range(group_channels):
                        for ki in range(kh):
                            for kj in range(kw):
                                yield (n, o, i, j), (o, c, ki, kj), (n, first + c, i * sh + ki * dh, j * sw + kj * dw)


def padded_zeros(x_shape, padding):
    (ph, pw) = pair(padding)
    return np.zeros((*x_shape[:2], x_shape[2] + 2 * ph, x_shape[3] + 2 * pw))


def unpad(padded, padding):
    (ph, pw) = pair(padding)
    return padded[:, :, ph : padded.shape[2] - ph, pw : padded.shape[3] - pw]


def conv2d_reference(x, w, b, stride, padding, dilation, groups):
    padded = padded_zeros(x.shape, padding)
    unpad(padded, padding)[...] = x
    out = np.zeros((x.shape[0], w.shape[0], *output_size(x.shape, w.shape, stride, padding, dilation)))
    for y_at, w_at, x_at in convolution_terms(x.shape, w.shape, stride, padding, dilation, groups):
        out[y_at] += w[w_at] * padded[x_at]
    return out if b is None else out + b[None, :, None, None]


def conv2d_input_grad_reference(g, w, x_shape, stride, padding, dilation, groups):
    """dL/dx: each term sends w * g back to the input position it read."""
    padded = padded_zeros(x_shape, padding)
    for y_at, w_at, x_at in convolution_terms(x_shape, w.shape, stride, padding, dilation, groups):
        padded[x_at] += w[w_at] * g[y_at]
    return unpad(padded, padding)


def conv2d_weight_grad_reference(x, g, w_shape, stride, padding, dilation, groups):
    """dL/dw: each term adds g * (the input it read) to its weight."""
    padded = padded_zeros(x.shape, padding)
    unpad(padded, padding)[...] = x
    out = np.zeros(w_shape)
    for y_at, w_at, x_at in convolution_terms(x.shape, w_shape, stride, padding, dilation, groups):
        out[w_at] += g[y_at] * padded[x_at]
    return out


@st.composite
def conv2d_problems(draw):
    config = draw(S.conv2d_configs(), label="config")
    x = draw(S.tensors(config.input_shape), label="x")
    w = draw(S.tensors(config.weight_shape), label="weight")
    b = None if config.bias_shape is None else draw(S.tensors(config.bias_shape), label="bias")
    return config, x, w, b


@given(problem=conv2d_problems())
def test_conv2d(problem):
    config, x, w, b = problem
    inputs = (x, w) if b is None else (x, w, b)

    def conv(*args):
        return F.conv2d(*args, **config.kwargs)

    expected = conv2d_reference(x.data, w.data, None if b is None else b.data, **config.kwargs)
    out = conv(*inputs)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    check_gradients(conv, *inputs)
    check_dtype_preserved(conv, *inputs)


@given(problem=conv2d_problems())
def test_conv2d_matches_torch(problem, assert_conv2d_matches_torch):
    assert_conv2d_matches_torch(*problem)


@given(problem=conv2d_problems(), data=st.data())
def test_conv2d_gradient_primitives(problem, data):
    config, x, w, _ = problem
    kw = config.kwargs
    geometry = ConvGeometry(kernel=w.shape[2:], stride=pair(kw["stride"]), padding=pair(kw["padding"]),
                            dilation=pair(kw["dilation"]), groups=kw["groups"])
    g = data.draw(S.tensors((x.shape[0], w.shape[0], *output_size(x.shape, w.shape, kw["stride"], kw["padding"], kw["dilation"]))), label="g")

    def input_grad(g, w):
        return Conv2dInputGrad.apply(g, w, x.shape, geometry)

    def weight_grad(x, g):
        return Conv2dWeightGrad.apply(x, g, w.shape, geometry)

    for op, inputs, expected in (
        (input_grad, (g, w), conv2d_input_grad_reference(g.data, w.data, x.shape, **kw)),
        (weight_grad, (x, g), conv2d_weight_grad_reference(x.data, g.data, w.shape, **kw)),
    ):
        np.testing.assert_allclose(op(*inputs).data, expected, rtol=1e-10, atol=1e-12)
        check_gradients(op, *inputs)
        check_dtype_preserved(op, *inputs)


def test_conv2d_argument_errors_are_clear():
    x = Tensor(np.zeros((1, 4, 5, 5)))
    with pytest.raises(ValueError, match="groups=3 must divide"):
        F.conv2d(x, Tensor(np.zeros((3, 2, 3, 3))), groups=3)
    with pytest.raises(ValueError, match="expects 2"):
        F.conv2d(x, Tensor(np.zeros((2, 1, 3, 3))), groups=2)
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.conv2d(x, Tensor(np.zeros((2, 4, 3, 3))), dilation=3)
    with pytest.raises(ValueError, match="4-D"):
        F.conv2d(Tensor(np.zeros((4, 5, 5))), Tensor(np.zeros((2, 4, 3, 3))))
    with pytest.raises(TypeError, match="stride"):
        F.conv2d(x, Tensor(np.zeros((2, 4, 3, 3))), stride=1.5)
    with pytest.raises(ValueError, match="bias"):
        F.conv2d(x, Tensor(np.zeros((2, 4, 3, 3))), Tensor(np.zeros(3)))


@pytest.mark.parametrize("channels, kwargs", [
    (4, dict(stride=1, padding=1, dilation=1, groups=1)),  # whole-row columns; input gradient by correlation
    (2, dict(stride=1, padding=1, dilation=1, groups=1)),  # 2 -> 8 channels: input gradient by col2im, whole rows
    (4, dict(stride=2, padding=(1, 0), dilation=1, groups=1)),  # window-corner columns, col2im
    (4, dict(stride=1, padding=2, dilation=2, groups=2)),
    (4, dict(stride=(1, 2), padding=0, dilation=(2, 1), groups=4)),
])
def test_conv2d_primitives_over_several_chunks_of_samples_in_dirty_buffers(channels, kwargs, monkeypatch):
    # The batch goes through the GEMMs a chunk of samples at a time, in buffers from the array cache.
    # Make every chunk a sample or two, cache every array, and hand out blocks full of NaN: each
    # output position must still be written, and the extra positions of whole-row columns must
    # neither leak into the results nor turn a gradient into NaN.
    from tinygrad_cnn.kernels import conv_gemm as conv
    from tinygrad_cnn.kernels import memory

    rng = np.random.default_rng(0)
    x, b = rng.standard_normal((5, channels, 7, 6)), rng.standard_normal(8)
    w = rng.standard_normal((8, channels // kwargs["groups"], 3, 2))
    g = rng.standard_normal((5, 8, *output_size(x.shape, w.shape, kwargs["stride"], kwargs["padding"], kwargs["dilation"])))
    geometry = ConvGeometry(kernel=(3, 2), stride=pair(kwargs["stride"]), padding=pair(kwargs["padding"]),
                            dilation=pair(kwargs["dilation"]), groups=kwargs["groups"])
    monkeypatch.setattr(memory, "MIN_BYTES", 0)
    monkeypatch.setattr(conv, "COLUMN_CHUNK_BYTES", 2 * x[0].nbytes)
    monkeypatch.setattr(conv, "SHIFTED_CHUNK_BYTES", 2 * x[0].nbytes)
    assert len(conv.sample_chunks(5, 4 * x[0].nbytes, conv.COLUMN_CHUNK_BYTES)) > 1
    sizes = np.unique(np.geomspace(8, 1 << 20, 40).astype(int) // 8)  # each within 2x of the next: best fit finds one
    blocks = [memory.empty((size,), np.float64) for size in sizes for _ in range(4)]
    for block in blocks:
        block.fill(np.nan)
    del blocks, block
    np.testing.assert_allclose(conv.conv2d(x, w, geometry, b), conv2d_reference(x, w, b, **kwargs), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.conv2d_input_grad(g, w, x.shape, geometry),
                               conv2d_input_grad_reference(g, w, x.shape, **kwargs), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.conv2d_weight_grad(x, g, w.shape, geometry),
                               conv2d_weight_grad_reference(x, g, w.shape, **kwargs), rtol=1e-10, atol=1e-12)
    memory.empty_cache()


def test_infinities_at_the_image_edge_stay_where_they_belong():
    # Whole-row columns compute a few positions that straddle the image edge and drop them. An inf
    # read there (in the input, or a weight meeting a zero gradient) must not reach the gradients
    # as 0 * inf = NaN: the same values as torch, in float64.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    cases = []
    x = rng.standard_normal((2, 2, 5, 6))
    x[0, 1, 2, 0] = np.inf  # first column: an extra position of the row above reads it
    cases.append((x, rng.standard_normal((3, 2, 3, 3)), dict(padding=1)))
    w = rng.standard_normal((8, 1, 1, 2))  # more output than input channels: col2im
    w[0, 0, 0, 1] = np.inf
    cases.append((rng.standard_normal((2, 1, 3, 4)), w, dict(padding=0)))
    for x, w, kwargs in cases:
        tx, tw = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
        with np.errstate(invalid="ignore"):  # inf - inf where the inf does meet a gradient: NaN, as torch
            out = F.conv2d(tx, tw, **kwargs)
            upstream = rng.standard_normal(out.shape)
            upstream[:, 0, :, 1:] = 0  # where an inf weight meets a zero gradient
            out.backward(Tensor(upstream))
        px, pw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        torch.nn.functional.conv2d(px, pw, **kwargs).backward(torch.tensor(upstream))
        np.testing.assert_array_equal(np.isnan(tx.grad.data), np.isnan(px.grad.numpy()))
        np.testing.assert_allclose(tx.grad.data, px.grad.numpy(), rtol=1e-10)
        np.testing.assert_array_equal(np.isnan(tw.grad.data), np.isnan(pw.grad.numpy()))
        np.testing.assert_allclose(tw.grad.data, pw.grad.numpy(), rtol=1e-10)


def test_a_chunk_holds_both_sides_of_its_gemm(monkeypatch):
    # A 1x1 convolution from 3 to 256 channels has tiny columns and a large result per sample:
    # chunks must be sized by both, or one chunk takes the whole batch and its GEMM result doubles
    # the peak memory (a whole extra output)
    import tracemalloc

    from tinygrad_cnn.kernels import conv_gemm as conv
    from tinygrad_cnn.kernels import memory

    x = np.ones((64, 3, 32, 32), np.float32)
    w = np.ones((256, 3, 1, 1), np.float32)
    memory.set_enabled(False)
    try:
        tracemalloc.start()
        out = conv.conv2d(x, w, ConvGeometry(kernel=(1, 1)))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        memory.set_enabled(True)
    assert peak < out.nbytes + 2 * conv.COLUMN_CHUNK_BYTES + (1 << 20), (peak, out.nbytes)

# ---- clear errors (moved from tests/test_errors.py) -------------------------------------------------


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs, error, pattern",
    [
        ((1, 3, 5, 5), (4, 2, 3, 3), {}, ValueError, r"^conv2d: input has 3 channels .* weight of shape \(4, 2, 3, 3\)"),
        ((1, 3, 5, 5), (4, 1, 3, 3), {"groups": 2}, ValueError, r"^conv2d: groups=2 must divide .*\(3\).*\(4\)"),
        ((1, 4, 5, 5), (3, 2, 3, 3), {"groups": 2}, ValueError, r"^conv2d: groups=2 must divide .*\(4\).*\(3\)"),
        ((1, 3, 5, 5), (4, 3, 7, 7), {}, ValueError, r"^conv2d: kernel of size \(7, 7\).*larger than the padded input \(5, 5\)"),
        ((1, 3, 5, 5), (4, 3, 8, 8), {"padding": 1}, ValueError, r"^conv2d: kernel of size \(8, 8\).* padded input \(7, 7\)"),
        ((1, 3, 5, 5), (4, 3, 3, 3), {"dilation": 3}, ValueError, r"^conv2d: kernel .*spans \(7, 7\)"),
        ((1, 3, 5, 5), (4, 3, 3, 3), {"stride": 0}, ValueError, r"^conv2d: stride must be at least 1, got \(0, 0\)"),
        ((1, 3, 5, 5), (4, 3, 3, 3), {"stride": (1, -1)}, ValueError, r"^conv2d: stride must be at least 1, got \(1, -1\)"),
        ((1, 3, 5, 5), (4, 3, 3, 3), {"dilation": 0}, ValueError, r"^conv2d: dilation must be at least 1"),
        ((1, 3, 5, 5), (4, 3, 3, 3), {"padding": -1}, ValueError, r"^conv2d: padding must be non-negative, got \(-1, -1\)"),
        ((1, 3, 5, 5), (4, 3, 3, 3), {"stride": 1.5}, TypeError, r"^conv2d: stride must be an int or a pair of ints, got 1.5"),
        ((1, 3, 5, 5), (4, 3, 3, 3), {"padding": (1, 1, 1)}, TypeError, r"^conv2d: padding must be an int or a pair"),
        ((1, 3, 5, 5), (4, 3, 2, 2), {"padding": "same", "stride": 2}, ValueError,
         r"^conv2d: padding='same' is not supported for strided convolutions, got stride 2$"),
        ((1, 3, 5, 5), (4, 3, 3, 3), {"padding": "same", "stride": (1, 2)}, ValueError,
         r"^conv2d: padding='same' is not supported for strided convolutions, got stride \(1, 2\)$"),
        ((1, 3, 5, 5), (4, 3, 3, 3), {"padding": "same", "stride": 0}, ValueError, r"^conv2d: stride must be at least 1"),
        ((1, 3, 5, 5), (4, 3, 3, 3), {"padding": "full"}, ValueError,
         r"^conv2d: padding must be an int, a pair of ints or one of \('valid', 'same'\), got 'full'$"),
        ((1, 3, 5, 5), (4, 3, 3, 3), {"padding": "SAME"}, ValueError, r"^conv2d: padding must be .* got 'SAME'$"),
        ((1, 3, 5, 5), (4, 3, 7, 7), {"padding": "valid"}, ValueError, r"^conv2d: kernel of size \(7, 7\).* padded input \(5, 5\)"),
        ((1, 3, 5, 5), (4, 3, 3, 3), {"groups": 1.0}, TypeError, r"^conv2d: groups must be an int, got 1.0"),
        ((1, 3, 5, 5), (4, 3, 3, 3), {"groups": True}, TypeError, r"^conv2d: groups must be an int, got True"),
        ((1, 3, 5, 5), (4, 3, 3, 3), {"groups": 0}, ValueError, r"^conv2d: groups must be at least 1, got 0"),
        ((3, 5, 5), (4, 3, 3, 3), {}, ValueError, r"^conv2d: input must be 4-D \(N, C, H, W\), got shape \(3, 5, 5\)"),
        ((1, 3, 5, 5), (4, 3, 3), {}, ValueError, r"^conv2d: weight must be 4-D"),
        ((1, 0, 5, 5), (4, 0, 3, 3), {}, ValueError, r"^conv2d: input of shape \(1, 0, 5, 5\) is empty"),
        ((1, 3, 5, 5), (0, 3, 3, 3), {}, ValueError, r"^conv2d: weight of shape \(0, 3, 3, 3\) has no channels"),
        ((1, 3, 5, 5), (4, 3, 0, 3), {}, ValueError, r"^conv2d: kernel must be at least 1, got \(0, 3\)"),
    ],
)
def test_conv2d_bad_arguments(x_shape, w_shape, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        F.conv2d(const(*x_shape), param(*w_shape), **kwargs)


def test_conv2d_weight_and_bias_checks():
    x = const(1, 3, 5, 5)
    with pytest.raises(TypeError, match=r"^conv2d: weight must be a Tensor, got ndarray"):
        F.conv2d(x, np.ones((4, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"^conv2d: bias must have shape \(4,\), got \(3,\)"):
        F.conv2d(x, param(4, 3, 3, 3), bias=param(3))
    with pytest.raises(TypeError, match=r"^conv2d: input must be a floating-point tensor, got dtype int64"):
        F.conv2d(Tensor(np.ones((1, 3, 5, 5), np.int64)), param(4, 3, 3, 3))
    with pytest.raises(TypeError, match=r"^conv2d: input must be a Tensor, got ndarray"):
        F.conv2d(np.ones((1, 3, 5, 5), np.float32), param(4, 3, 3, 3))


def test_conv2d_empty_batch_is_allowed():
    out = F.conv2d(const(0, 3, 5, 5), param(4, 3, 3, 3))
    assert out.shape == (0, 4, 3, 3)
