"""``nn.functional`` beyond convolution and pooling (those are in tests/ops, and conv1d,
conv_transpose2d and the new poolings in test_convolution.py and test_pooling.py): activations
(relu, leaky_relu, sigmoid, tanh, gelu, silu, elu), softmax and log-softmax (also at logits of
magnitude 1e3; ``dim`` or ``axis``), the classic losses (the others: test_loss.py), ``linear``,
conv2d's string paddings ``"same"`` and ``"valid"`` (resolved here, before the convolution
primitive), ``embedding``, dropout and dropout2d.

References are NumPy formulas written here; log-sum-exp comes from ``np.logaddexp.reduce``, which
is stable without the max-shift the implementation uses.
"""
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor
from tinygrad_cnn.testing import check_dtype_preserved, check_gradients
from tinygrad_cnn.testing import strategies as S


def check_op(op, expected, *inputs, rtol=1e-12):
    """The four checks: forward against the reference, gradients of order 1 and 2, float32."""
    out = op(*inputs)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=rtol, atol=1e-12)
    check_gradients(op, *inputs)
    check_dtype_preserved(op, *inputs)


def log_softmax_reference(a, axis):
    return a - np.logaddexp.reduce(a, axis=axis, keepdims=True)


# ---- activations ------------------------------------------------------------------------------------


@given(x=S.away_from_kinks(), slope=st.sampled_from([0.01, 0.2, -0.5]))
def test_relu_and_leaky_relu(x, slope):
    check_op(F.relu, np.where(x.data > 0, x.data, 0.0), x)
    check_op(lambda t: F.leaky_relu(t, slope), np.where(x.data > 0, x.data, slope * x.data), x)
    check_op(F.leaky_relu, np.where(x.data > 0, x.data, 0.01 * x.data), x)


@given(x=S.tensors())
def test_sigmoid_and_tanh(x):
    check_op(F.sigmoid, 1 / (1 + np.exp(-x.data)), x)
    check_op(F.tanh, (np.exp(x.data) - np.exp(-x.data)) / (np.exp(x.data) + np.exp(-x.data)), x)


def test_sigmoid_is_finite_and_saturates_for_large_inputs():
    x = Tensor(np.array([-1e3, -50.0, 0.0, 50.0, 1e3]), requires_grad=True)
    out = F.sigmoid(x)
    np.testing.assert_allclose(out.data, [0.0, np.exp(-50.0), 0.5, 1.0, 1.0], rtol=1e-12, atol=0)
    out.sum().backward()
    assert np.isfinite(x.grad.data).all()


@given(data=st.data())
def test_softmax_and_log_softmax(data):
    x = data.draw(S.tensors(S.shapes(min_dims=1)), label="x")
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1), label="axis")
    expected = log_softmax_reference(x.data, axis)
    check_op(lambda t: F.log_softmax(t, axis=axis), expected, x)
    check_op(lambda t: F.softmax(t, axis=axis), np.exp(expected), x)


@given(data=st.data())
def test_softmax_is_stable_for_logits_of_magnitude_1e3(data):
    x = data.draw(S.tensors(S.shapes(min_dims=1), elements=st.floats(-1e3, 1e3)), label="x")
    x = Tensor(x.data + np.where(x.data >= 0, 1e3, -1e3) * data.draw(st.booleans()), requires_grad=True)
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1), label="axis")
    expected = log_softmax_reference(x.data, axis)
    for dtype in (np.float64, np.float32):
        logits = Tensor(x.data.astype(dtype), requires_grad=True)
        log_probs, probs = F.log_softmax(logits, axis=axis), F.softmax(logits, axis=axis)
        assert np.isfinite(log_probs.data).all() and np.isfinite(probs.data).all()
        tolerance = dict(rtol=1e-12, atol=1e-9) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(log_probs.data, expected, **tolerance)
        np.testing.assert_allclose(probs.data, np.exp(expected), **tolerance)
        # d/dx sum(v * log_softmax(x)) = v - softmax(x) * sum(v)
        v = np.random.default_rng(0).standard_normal(x.shape)
        (g,) = tg.grad(log_probs, logits, grad_outputs=Tensor(v.astype(dtype)))
        expected_grad = v - np.exp(expected) * v.sum(axis=axis, keepdims=True)
        np.testing.assert_allclose(g.data, expected_grad, **tolerance)
    check_gradients(lambda t: F.log_softmax(t, axis=axis), x)


# ---- losses ---------------------------------------------------------------------------------------------------


@st.composite
def classification_problems(draw, magnitude=3.0):
    n, classes = draw(st.integers(1, 4), label="N"), draw(st.integers(1, 4), label="C")
    logits = draw(S.tensors((n, classes), elements=st.floats(-magnitude, magnitude)), label="logits")
    target = np.array(draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)), dtype=np.int64)
    as_tensor = draw(st.booleans(), label="target as Tensor")
    return logits, (Tensor(target) if as_tensor else target), target


REDUCE = {"mean": np.mean, "sum": np.sum, "none": lambda a: a}


@pytest.mark.parametrize("reduction", REDUCE)
@given(problem=classification_problems())
def test_cross_entropy(reduction, problem):
    logits, target, labels = problem
    per_sample = -log_softmax_reference(logits.data, axis=1)[np.arange(len(labels)), labels]
    check_op(lambda t: F.cross_entropy(t, target, reduction=reduction), REDUCE[reduction](per_sample), logits)


@pytest.mark.parametrize("reduction", REDUCE)
@given(problem=classification_problems())
def test_nll_loss(reduction, problem):
    log_probs, target, labels = problem
    per_sample = np.array([-log_probs.data[i, t] for i, t in enumerate(labels)])
    check_op(lambda t: F.nll_loss(t, target, reduction=reduction), REDUCE[reduction](per_sample), log_probs)


@given(problem=classification_problems(magnitude=1e3))
def test_cross_entropy_is_finite_and_correct_for_logits_of_magnitude_1e3(problem):
    logits, target, labels = problem
    loss = F.cross_entropy(logits, target)
    expected = np.mean(-log_softmax_reference(logits.data, axis=1)[np.arange(len(labels)), labels])
    assert np.isfinite(loss.item())
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-12, atol=1e-9)
    loss.backward()
    assert np.isfinite(logits.grad.data).all()


@given(problem=classification_problems())
def test_cross_entropy_assert_matches_torch(problem):
    torch = pytest.importorskip("torch")
    logits, target, labels = problem
    t_logits = torch.tensor(logits.data, requires_grad=True)
    for reduction in REDUCE:
        logits.grad, t_logits.grad = None, None
        expected = torch.nn.functional.cross_entropy(t_logits, torch.tensor(labels), reduction=reduction)
        out = F.cross_entropy(logits, target, reduction=reduction)
        np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
        upstream = np.random.default_rng(0).standard_normal(out.shape)
        expected.backward(torch.tensor(upstream))
        (out * Tensor(upstream)).sum().backward()
        np.testing.assert_allclose(logits.grad.data, t_logits.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
def test_loss_argument_errors_are_clear(loss):
    logits = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="out of range"):
        loss(logits, np.array([0, 3]))
    with pytest.raises(TypeError, match="integer"):
        loss(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="reduction"):
        loss(logits, np.array([0, 1]), reduction="average")
    with pytest.raises(ValueError):
        loss(logits, np.array([0, 1, 2]))


@pytest.mark.parametrize("reduction", REDUCE)
@given(data=st.data())
def test_mse_loss(reduction, data):
    shape = data.draw(S.shapes(), label="shape")
    prediction, target = data.draw(S.tensors(shape), label="input"), data.draw(S.tensors(shape), label="target")
    expected = REDUCE[reduction]((prediction.data - target.data) ** 2)
    check_op(lambda p, t: F.mse_loss(p, t, reduction=reduction), expected, prediction, target)
    constant = target.data.copy()  # a float64 array: with a float32 input NumPy promotes, so no dtype check
    np.testing.assert_allclose(F.mse_loss(prediction, constant, reduction=reduction).data, expected, rtol=1e-12)
    check_gradients(lambda p: F.mse_loss(p, constant, reduction=reduction), prediction)


def test_mse_loss_of_different_shapes_raises():
    with pytest.raises(ValueError, match="shape"):
        F.mse_loss(Tensor(np.zeros(3)), Tensor(np.zeros((3, 1))))


@given(data=st.data())
def test_linear(data):
    n_in, n_out = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    batch = data.draw(S.shapes(max_dims=2), label="batch")
    x = data.draw(S.tensors(batch + (n_in,)), label="x")
    w, b = data.draw(S.tensors((n_out, n_in)), label="weight"), data.draw(S.tensors((n_out,)), label="bias")
    expected = np.einsum("...i,oi->...o", x.data, w.data) + b.data
    check_op(F.linear, expected, x, w, b)


# ---- conv2d with padding="same" and "valid" ---------------------------------------------------------------


@st.composite
def string_padding_problems(draw, padding):
    """A stride-1 conv2d with the string ``padding``: kernels up to 4 (odd and even, non-square),
    dilation 1 or 2, groups, with and without bias. With "same" any input fits, even one smaller
    than the kernel."""
    config = draw(S.conv2d_configs(max_kernel=4, max_stride=1, max_padding=0), label="config")
    input_shape = config.input_shape
    if padding == "same":
        input_shape = input_shape[:2] + (draw(st.integers(1, 5), label="H"), draw(st.integers(1, 5), label="W"))
    config = replace(config, input_shape=input_shape, padding=padding)
    x = draw(S.tensors(config.input_shape), label="x")
    w = draw(S.tensors(config.weight_shape), label="weight")
    b = None if config.bias_shape is None else draw(S.tensors(config.bias_shape), label="bias")
    return config, x, w, b


def same_padding_widths(weight_shape, dilation) -> list:
    """torch's split of "same": per axis dilation * (kernel - 1) in all, half before, the rest after."""
    totals = [d * (k - 1) for d, k in zip(np.broadcast_to(dilation, 2), weight_shape[2:])]
    return [(t // 2, t - t // 2) for t in totals]


@given(problem=string_padding_problems("same"))
def test_conv2d_same_padding_keeps_the_spatial_size(problem):
    config, x, w, b = problem
    out = F.conv2d(x, w, b, **config.kwargs)
    assert out.shape == (x.shape[0], w.shape[0], *x.shape[2:])
    padded = Tensor(np.pad(x.data, [(0, 0), (0, 0), *same_padding_widths(w.shape, config.dilation)]))
    expected = F.conv2d(padded, w, b, **dict(config.kwargs, padding=0))
    np.testing.assert_allclose(out.data, expected.data, rtol=1e-12, atol=1e-12)


@given(problem=string_padding_problems("valid"))
def test_conv2d_valid_padding_is_no_padding(problem):
    config, x, w, b = problem
    expected = F.conv2d(x, w, b, **dict(config.kwargs, padding=0))
    np.testing.assert_array_equal(F.conv2d(x, w, b, **config.kwargs).data, expected.data)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("padding", ["same", "valid"])
@given(data=st.data())
def test_conv2d_string_padding_assert_matches_torch(padding, data, assert_conv2d_matches_torch):
    assert_conv2d_matches_torch(*data.draw(string_padding_problems(padding), label="problem"))


@pytest.mark.parametrize(
    "x_shape, w_shape, dilation",
    [
        ((1, 2, 3, 4), (2, 2, 2, 3), 1),  # one extra row after
        ((2, 1, 4, 3), (1, 1, 3, 2), (2, 1)),  # one extra column after
        ((1, 1, 2, 3), (2, 1, 4, 4), 1),  # both, with a kernel larger than the input
    ],
)
@given(data=st.data())
def test_conv2d_same_padding_gradients_with_even_kernels(x_shape, w_shape, dilation, data):
    assert any(after > before for before, after in same_padding_widths(w_shape, dilation))
    x, w = data.draw(S.tensors(x_shape), label="x"), data.draw(S.tensors(w_shape), label="weight")
    b = data.draw(S.tensors(w_shape[:1]), label="bias")

    def conv(*args):
        return F.conv2d(*args, padding="same", dilation=dilation)

    check_gradients(conv, x, w, b)
    check_dtype_preserved(conv, x, w, b)


# ---- dropout ---------------------------------------------------------------------------------------------------


@given(x=S.tensors())
def test_dropout_is_the_identity_with_p_0_or_outside_training(x):
    for out in (F.dropout(x, p=0.0), F.dropout(x, p=0.7, training=False)):
        np.testing.assert_array_equal(out.data, x.data)
        check_gradients(lambda t: F.dropout(t, p=0.0), x)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_mask_statistics_and_scaling(p):
    tg.manual_seed(0)
    n = 20_000
    out = F.dropout(Tensor(np.ones(n)), p=p)
    dropped = out.data == 0
    # the kept fraction is a binomial proportion: within 5 standard deviations of 1 - p
    assert abs(dropped.mean() - p) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(out.data[~dropped], 1 / (1 - p), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(x=S.away_from_kinks(S.shapes(min_dims=1, max_side=4), margin=0.1), p=st.sampled_from([0.25, 0.5]))
def test_dropout_gradient_is_the_mask_times_the_scale(dtype, x, p):
    x = Tensor(x.data.astype(dtype), requires_grad=True)  # no zeros, so a zero output means dropped
    out = F.dropout(x, p=p)
    assert out.dtype == dtype
    kept = out.data != 0
    np.testing.assert_allclose(out.data, np.where(kept, x.data / (1 - p), 0.0), rtol=1e-6)
    upstream = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    out.backward(Tensor(upstream))
    assert x.grad.dtype == dtype
    np.testing.assert_allclose(x.grad.data, np.where(kept, upstream / (1 - p), 0.0), rtol=1e-6)


def test_dropout_repeats_after_manual_seed_and_p_1_drops_everything():
    x = Tensor(np.arange(1.0, 50.0))
    tg.manual_seed(3)
    first = F.dropout(x, 0.5).data
    tg.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x, 0.5).data, first)
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, np.zeros(49))
    with pytest.raises(ValueError, match="p must be"):
        F.dropout(x, 1.5)


# ---- GELU, SiLU, ELU -------------------------------------------------------------------------------------


def gelu_reference(a, approximate):
    """x * Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2 (erfc, not the erf the implementation uses)."""
    if approximate == "tanh":
        return 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a**3)))
    return a * 0.5 * np.vectorize(math.erfc)(-a / np.sqrt(2))


ACTIVATIONS = {
    "gelu": (lambda t: F.gelu(t), lambda a: gelu_reference(a, "none")),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"), lambda a: gelu_reference(a, "tanh")),
    "silu": (F.silu, lambda a: a / (1 + np.exp(-a))),
    "elu": (F.elu, lambda a: np.where(a > 0, a, np.expm1(np.minimum(a, 0)))),
    "elu_0.5": (lambda t: F.elu(t, 0.5), lambda a: np.where(a > 0, a, 0.5 * np.expm1(np.minimum(a, 0)))),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
@given(x=S.away_from_kinks())  # ELU's second derivative jumps at 0
def test_smooth_activations(name, x, check_op):
    ours, reference = ACTIVATIONS[name]
    check_op(ours, reference(x.data), x, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ACTIVATIONS)
@given(x=S.away_from_kinks())
def test_smooth_activations_match_torch(name, x, assert_matches_torch):
    import torch

    theirs = {"gelu": torch.nn.functional.gelu, "gelu_tanh": lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
              "silu": torch.nn.functional.silu, "elu": torch.nn.functional.elu,
              "elu_0.5": lambda t: torch.nn.functional.elu(t, 0.5)}[name]
    assert_matches_torch(ACTIVATIONS[name][0], theirs, x)


def test_elu_and_gelu_are_finite_for_large_inputs():
    x = Tensor(np.array([-1e3, -30.0, 30.0, 1e3]), requires_grad=True)
    for op in (F.elu, F.gelu, F.silu):
        out = op(x)
        assert np.isfinite(out.data).all()
        (g,) = tg.grad(out.sum(), x)
        assert np.isfinite(g.data).all()


@given(data=st.data())
def test_softmax_takes_dim_or_axis(data):
    x = data.draw(S.tensors(S.shapes(min_dims=1)), label="x")
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim")
    for op in (F.softmax, F.log_softmax):
        np.testing.assert_array_equal(op(x, dim).data, op(x, axis=dim).data)
        np.testing.assert_array_equal(op(x, dim=dim).data, op(x, axis=dim).data)
    with pytest.raises(ValueError, match="^softmax: dim=0 and axis=1 disagree"):
        F.softmax(Tensor(np.zeros((2, 2))), 0, axis=1)


# ---- embedding, dropout2d ------------------------------------------------------------------------------------


@st.composite
def embedding_problems(draw):
    num, dim = draw(st.integers(1, 4), label="num_embeddings"), draw(st.integers(1, 3), label="dim")
    weight = draw(S.tensors((num, dim)), label="weight")
    indices = draw(S.arrays(S.shapes(max_dims=2), elements=st.integers(0, num - 1).map(float))).astype(np.int64)
    padding_idx = draw(st.none() | st.integers(0, num - 1), label="padding_idx")
    return weight, indices, padding_idx


@given(problem=embedding_problems())
def test_embedding(problem, check_op):
    weight, indices, padding_idx = problem
    # the gradient checks see the mathematical gradient, so without padding_idx: with it, torch's
    # rule (no gradient for that row, whatever it holds) is checked by counting below
    check_op(lambda w: F.embedding(indices, w), weight.data[indices], weight)
    np.testing.assert_array_equal(F.embedding(indices, weight, padding_idx).data, weight.data[indices])
    (g,) = tg.grad(F.embedding(indices, weight, padding_idx).sum(), weight)
    counts = np.bincount(indices.reshape(-1), minlength=weight.shape[0]).astype(float)
    if padding_idx is not None:
        counts[padding_idx] = 0  # the padding row gets no gradient
    np.testing.assert_array_equal(g.data, np.broadcast_to(counts[:, None], weight.shape))


@given(problem=embedding_problems())
def test_embedding_assert_matches_torch(problem, assert_matches_torch):
    import torch

    weight, indices, padding_idx = problem
    assert_matches_torch(lambda w: F.embedding(indices, w, padding_idx),
                  lambda w: torch.nn.functional.embedding(torch.from_numpy(indices), w, padding_idx), weight)


def test_dropout2d_drops_whole_channels():
    tg.manual_seed(0)
    x = Tensor(np.ones((50, 40, 2, 3)), requires_grad=True)
    out = F.dropout2d(x, p=0.4)
    per_channel = out.data.reshape(50, 40, -1)
    assert (per_channel.min(axis=2) == per_channel.max(axis=2)).all()  # a channel is kept or dropped whole
    dropped = per_channel[:, :, 0] == 0
    assert abs(dropped.mean() - 0.4) < 5 * np.sqrt(0.4 * 0.6 / dropped.size)
    np.testing.assert_allclose(per_channel[~dropped], 1 / 0.6, rtol=1e-12)
    (g,) = tg.grad(out.sum(), x)
    np.testing.assert_array_equal(g.data, out.data)
    assert F.dropout2d(x, 0.4, training=False) is x
    with pytest.raises(ValueError, match=r"^dropout2d: input must be \(N, C, H, W\)"):
        F.dropout2d(Tensor(np.ones((2, 3))))


# ---- more activations, distances and 1-D pooling ------------------------------------------------------------
# Each: a NumPy formula written here, gradients of order 1 and 2 (away from the kinks the function
# or its first derivative has), float32 kept, and torch's values and gradients.


def _softplus(a, beta=1.0, threshold=20.0):
    return np.where(a * beta > threshold, a, np.log1p(np.exp(np.minimum(a * beta, threshold))) / beta)


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
MORE_ACTIVATIONS = {  # name: (arguments, NumPy formula, kinks of the function or its first two derivatives)
    "softplus": ((), _softplus, ()),
    "softplus-beta": ((2.0, 3.0), lambda a: _softplus(a, 2.0, 3.0), (1.5,)),  # torch switches to x at beta*x = threshold
    "logsigmoid": ((), lambda a: -np.logaddexp(0, -a), ()),
    "hardtanh": ((-0.5, 1.5), lambda a: np.clip(a, -0.5, 1.5), (-0.5, 1.5)),
    "relu6": ((), lambda a: np.clip(a, 0, 6), (0.0, 6.0)),
    "softsign": ((), lambda a: a / (1 + np.abs(a)), (0.0,)),
    "tanhshrink": ((), lambda a: a - np.tanh(a), ()),
    "threshold": ((0.5, -2.0), lambda a: np.where(a > 0.5, a, -2.0), (0.5,)),
    "selu": ((), lambda a: SELU_SCALE * np.where(a > 0, a, SELU_ALPHA * np.expm1(np.minimum(a, 0))), (0.0,)),
    "celu": ((0.5,), lambda a: np.where(a > 0, a, 0.5 * np.expm1(np.minimum(a, 0) / 0.5)), (0.0,)),
    "mish": ((), lambda a: a * np.tanh(np.logaddexp(0, a)), ()),
    "hardswish": ((), lambda a: a * np.clip(a + 3, 0, 6) / 6, (-3.0, 3.0)),
    "hardsigmoid": ((), lambda a: np.clip(a + 3, 0, 6) / 6, (-3.0, 3.0)),
}


@pytest.mark.parametrize("name", MORE_ACTIVATIONS)
@given(data=st.data())
def test_more_activations(name, data, assert_matches_torch):
    args, formula, kinks = MORE_ACTIVATIONS[name]
    function = getattr(F, name.split("-")[0])
    x = data.draw(S.away_from_kinks(kinks=kinks, low=-5.0, high=5.0), label="x")
    op = lambda t: function(t, *args)  # noqa: E731
    check_op(op, formula(x.data), x)
    if name != "hardsigmoid":  # torch's hardsigmoid gradient is 1/6 rounded to float32 (test_layers.py)
        torch = pytest.importorskip("torch")
        assert_matches_torch(op, lambda t: getattr(torch.nn.functional, name.split("-")[0])(t, *args), x)


def test_softplus_and_logsigmoid_stay_finite_for_large_inputs():
    x = Tensor(np.array([-1e3, -30.0, 0.0, 30.0, 1e3]), requires_grad=True)
    np.testing.assert_allclose(F.softplus(x).data, np.logaddexp(0, x.data), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(F.logsigmoid(x).data, -np.logaddexp(0, -x.data), rtol=1e-12, atol=1e-300)
    (F.softplus(x) + F.logsigmoid(x) + F.mish(x)).sum().backward()
    assert np.isfinite(x.grad.data).all()


@given(data=st.data())
def test_softmin_glu_prelu(data, assert_matches_torch):
    torch = pytest.importorskip("torch")
    x = data.draw(S.tensors(S.shapes(min_dims=2)), label="x")
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim")
    check_op(lambda t: F.softmin(t, dim), np.exp(log_softmax_reference(-x.data, dim)), x)
    assert_matches_torch(lambda t: F.softmin(t, dim), lambda t: torch.nn.functional.softmin(t, dim), x)
    doubled = data.draw(S.tensors(x.shape[:-1] + (2 * x.shape[-1],)), label="glu input")
    a, b = np.split(doubled.data, 2, axis=-1)
    check_op(F.glu, a / (1 + np.exp(-b)), doubled)
    assert_matches_torch(F.glu, torch.nn.functional.glu, doubled)
    x = data.draw(S.away_from_kinks(x.shape), label="prelu input")
    weight = data.draw(S.tensors(data.draw(st.sampled_from([(1,), (x.shape[1],)]))), label="slopes")
    slopes = weight.data.reshape(-1, *(1,) * (x.ndim - 2))
    check_op(F.prelu, np.where(x.data > 0, x.data, slopes * x.data), x, weight)
    assert_matches_torch(F.prelu, torch.nn.functional.prelu, x, weight)


@given(data=st.data())
def test_normalize_cosine_similarity_pairwise_distance(data, assert_matches_torch):
    torch = pytest.importorskip("torch")
    shapes, _ = data.draw(S.broadcastable_shapes(2, min_dims=2), label="shapes")
    # the 2-norm has its kink at the zero vector: values bounded away from 0
    x1, x2 = (data.draw(S.away_from_kinks(s, margin=0.3)) for s in shapes)
    dim = data.draw(st.integers(-2, 1), label="dim")
    p = data.draw(st.sampled_from([1.0, 2.0, 3.0]), label="p")
    magnitude = (np.abs(x1.data) ** p).sum(axis=dim, keepdims=True) ** (1 / p)
    check_op(lambda t: F.normalize(t, p, dim), x1.data / magnitude, x1)
    assert_matches_torch(lambda t: F.normalize(t, p, dim), lambda t: torch.nn.functional.normalize(t, p, dim), x1)
    a, b = np.broadcast_arrays(x1.data, x2.data)
    cosine = (a * b).sum(dim) / np.linalg.norm(a, axis=dim) / np.linalg.norm(b, axis=dim)
    check_op(lambda s, t: F.cosine_similarity(s, t, dim), cosine, x1, x2)
    assert_matches_torch(lambda s, t: F.cosine_similarity(s, t, dim),
                         lambda s, t: torch.nn.functional.cosine_similarity(s, t, dim), x1, x2)
    if shapes[0] == shapes[1] and np.all(np.abs(a - b + 1e-6) > 0.05):  # |x1 - x2| also has its kink at 0
        distance = (np.abs(a - b + 1e-6) ** p).sum(-1) ** (1 / p)
        check_op(lambda s, t: F.pairwise_distance(s, t, p), distance, x1, x2)
        assert_matches_torch(lambda s, t: F.pairwise_distance(s, t, p, keepdim=True),
                             lambda s, t: torch.nn.functional.pairwise_distance(s, t, p, keepdim=True), x1, x2)


@given(data=st.data())
def test_one_dimensional_pools(data, assert_matches_torch):
    torch = pytest.importorskip("torch")
    shape = data.draw(st.sampled_from([(1, 2), (2, 1), (2, 2)]), label="batch and channels")
    length = data.draw(st.integers(1, 7), label="length")
    kernel = data.draw(st.integers(1, length), label="kernel_size")
    stride = data.draw(st.integers(1, 3), label="stride")
    padding = data.draw(st.integers(0, kernel // 2), label="padding")
    unbatched = data.draw(st.booleans(), label="unbatched")
    x = data.draw(S.distinct_values(shape[1:] + (length,) if unbatched else shape + (length,)), label="x")
    windows = [np.pad(x.data, [(0, 0)] * (x.ndim - 1) + [(padding, padding)], constant_values=-np.inf)[..., s:s + kernel]
               for s in range(0, length + 2 * padding - kernel + 1, stride)]
    check_op(lambda t: F.max_pool1d(t, kernel, stride, padding), np.stack([w.max(-1) for w in windows], -1), x)
    sums = [np.where(np.isinf(w), 0, w).sum(-1) / kernel for w in windows]
    check_op(lambda t: F.avg_pool1d(t, kernel, stride, padding), np.stack(sums, -1), x)
    out_size = data.draw(st.integers(1, length), label="output_size")
    for ours, theirs in [(lambda t: F.max_pool1d(t, kernel, stride, padding, return_indices=True),
                          lambda t: torch.nn.functional.max_pool1d(t, kernel, stride, padding, return_indices=True)),
                         (lambda t: F.avg_pool1d(t, kernel, stride, padding, ceil_mode=True, count_include_pad=False),
                          lambda t: torch.nn.functional.avg_pool1d(t, kernel, stride, padding, ceil_mode=True,
                                                                   count_include_pad=False)),
                         (lambda t: F.adaptive_avg_pool1d(t, out_size),
                          lambda t: torch.nn.functional.adaptive_avg_pool1d(t, out_size))]:
        assert_matches_torch(lambda t: [o.astype(np.float64) for o in _as_list(ours(t))],
                             lambda t: [o.double() for o in _as_list(theirs(t))], x)


def _as_list(result):
    return list(result) if isinstance(result, tuple) else [result]
