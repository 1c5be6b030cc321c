"""``layer_norm`` and ``group_norm`` (functions and the LayerNorm / GroupNorm layers) against NumPy's
mean and variance, with gradients of order 1 and 2 and torch's values and gradients, and
state_dicts that load both ways. (BatchNorm: tests/nn/test_layers.py.)"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.testing import strategies as S


def standardized(x, axes, eps):
    return (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)


@st.composite
def layer_norm_problems(draw):
    shape = draw(S.shapes(min_dims=1, max_dims=3), label="shape")
    k = draw(st.integers(1, len(shape)), label="normalized axes")
    x = draw(S.tensors(shape), label="x")
    affine = [draw(st.none() | S.tensors(shape[-k:]), label=name) for name in ("weight", "bias")]
    # a constant sample makes the variance 0: the eps keeps 1/sqrt finite, but the gradient then
    # depends on eps alone and central differences of 1/sqrt(eps) lose all their digits
    eps = draw(st.sampled_from([1e-5, 0.1]), label="eps")
    return x, shape[-k:], affine, eps


@given(problem=layer_norm_problems())
def test_layer_norm(problem, check_op):
    x, shape, (weight, bias), eps = problem
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    expected = standardized(x.data, axes, eps) * (1 if weight is None else weight.data) + (0 if bias is None else bias.data)
    args = [a for a in (weight, bias) if a is not None]

    def op(t, *params):
        given_ = iter(params)
        w, b = (next(given_) if a is not None else None for a in (weight, bias))
        return F.layer_norm(t, shape, w, b, eps)

    check_op(op, expected, x, *args, rtol=1e-9, atol=1e-9)


@given(problem=layer_norm_problems())
def test_layer_norm_assert_matches_torch(problem, assert_matches_torch):
    import torch

    x, shape, (weight, bias), eps = problem
    assert_matches_torch(lambda *a: F.layer_norm(*a[:1], shape, *a[1:], eps),
                  lambda *a: torch.nn.functional.layer_norm(a[0], shape, *a[1:], eps=eps), x, weight, bias, rtol=1e-8, atol=1e-10)


@st.composite
def group_norm_problems(draw):
    groups = draw(st.integers(1, 3), label="groups")
    channels = groups * draw(st.integers(1, 2))
    spatial = draw(S.shapes(min_dims=0, max_dims=2))
    if channels // groups * int(np.prod(spatial)) == 1:
        spatial = (2,)  # a group of one value standardises to 0 whatever it is: refused, as torch does
    shape = (draw(st.integers(1, 2)), channels, *spatial)
    x = draw(S.tensors(shape), label="x")
    weight, bias = draw(S.tensors((channels,)), label="weight"), draw(S.tensors((channels,)), label="bias")
    return x, groups, weight, bias


@given(problem=group_norm_problems())
def test_group_norm(problem, check_op):
    x, groups, weight, bias = problem
    n, c = x.shape[:2]
    grouped = standardized(x.data.reshape(n, groups, -1), (2,), 0.1).reshape(x.shape)
    channel = (1, c) + (1,) * (x.ndim - 2)
    expected = grouped * weight.data.reshape(channel) + bias.data.reshape(channel)
    check_op(lambda *a: F.group_norm(a[0], groups, *a[1:], eps=0.1), expected, x, weight, bias, rtol=1e-9, atol=1e-9)


@given(problem=group_norm_problems())
def test_group_norm_assert_matches_torch(problem, assert_matches_torch):
    import torch

    x, groups, weight, bias = problem
    assert_matches_torch(lambda *a: F.group_norm(a[0], groups, *a[1:]),
                  lambda *a: torch.nn.functional.group_norm(a[0], groups, *a[1:]), x, weight, bias, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("ours, theirs, input_shape", [
    (lambda: nn.LayerNorm((3, 4), dtype=np.float64), lambda t: t.nn.LayerNorm((3, 4), dtype=t.float64), (2, 3, 4)),
    (lambda: nn.LayerNorm(4, elementwise_affine=False), lambda t: t.nn.LayerNorm(4, elementwise_affine=False), (2, 4)),
    (lambda: nn.GroupNorm(2, 4, dtype=np.float64), lambda t: t.nn.GroupNorm(2, 4, dtype=t.float64), (2, 4, 3, 3)),
])
def test_norm_layers_load_torch_state_dicts_both_ways(ours, theirs, input_shape):
    torch = pytest.importorskip("torch")
    ours, theirs = ours(), theirs(torch)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.from_numpy(rng.standard_normal(tuple(p.shape))))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = rng.standard_normal(input_shape)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x).to(next(iter(theirs.parameters()), torch.ones(1)).dtype)).numpy()
    np.testing.assert_allclose(ours(Tensor(x.astype(expected.dtype))).data, expected, rtol=1e-5, atol=1e-6)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})


def test_norm_errors():
    with pytest.raises(ValueError, match=r"^layer_norm: input of shape \(2, 3\) does not end in normalized_shape \(2,\)"):
        F.layer_norm(Tensor(np.zeros((2, 3))), (2,))
    with pytest.raises(ValueError, match=r"^GroupNorm: num_channels=3 must be divisible by num_groups=2"):
        nn.GroupNorm(2, 3)
    with pytest.raises(ValueError, match=r"^group_norm: input of shape"):
        F.group_norm(Tensor(np.zeros((2, 3, 4))), 2)
    with pytest.raises(ValueError, match=r"^group_norm: each group of input of shape \(2, 2\) holds one value"):
        F.group_norm(Tensor(np.zeros((2, 2))), 2)
