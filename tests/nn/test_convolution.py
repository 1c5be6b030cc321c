"""``conv1d`` and ``conv_transpose2d`` (functions and layers) over drawn hyperparameters: forward
against loops written here, gradients of order 1 and 2, torch's values and gradients, and
state_dicts that load both ways between our layers and torch's, also with the layers'
``padding_mode``. (conv2d itself: tests/ops/test_conv.py.)"""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.testing import strategies as S


@st.composite
def conv1d_problems(draw):
    groups = draw(st.integers(1, 2), label="groups")
    in_channels, out_channels = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel, stride = draw(st.integers(1, 3), label="k"), draw(st.integers(1, 3), label="stride")
    padding, dilation = draw(st.integers(0, 2), label="padding"), draw(st.integers(1, 2), label="dilation")
    length = draw(st.integers(max(1, dilation * (kernel - 1) + 1 - 2 * padding), 5), label="L")
    x = draw(S.tensors((draw(st.integers(1, 2)), in_channels, length)), label="x")
    w = draw(S.tensors((out_channels, in_channels // groups, kernel)), label="weight")
    b = draw(st.none() | S.tensors((out_channels,)), label="bias")
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv1d_reference(x, w, b, stride, padding, dilation, groups):
    n, c, length = x.shape
    o, cg, k = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    out_len = (length + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    out = np.zeros((n, o, out_len))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for pos in range(out_len):
            taps = xp[:, g * cg : (g + 1) * cg, pos * stride : pos * stride + dilation * (k - 1) + 1 : dilation]
            out[:, oc, pos] = np.einsum("nck,ck->n", taps, w[oc])
    return out if b is None else out + b[:, None]


@given(problem=conv1d_problems())
def test_conv1d(problem, check_op):
    x, w, b, kwargs = problem
    expected = conv1d_reference(x.data, w.data, None if b is None else b.data, **kwargs)
    check_op(lambda *a: F.conv1d(*a, **kwargs), expected, x, w, *([] if b is None else [b]))


@given(problem=conv1d_problems())
def test_conv1d_assert_matches_torch(problem, assert_matches_torch):
    import torch

    x, w, b, kwargs = problem
    assert_matches_torch(lambda *a: F.conv1d(*a, **kwargs), lambda *a: torch.nn.functional.conv1d(*a, **kwargs), x, w, b)


@st.composite
def conv_transpose2d_problems(draw):
    groups = draw(st.integers(1, 2), label="groups")
    in_channels, out_channels = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(2))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(2))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(2))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(2))
    output_padding = tuple(draw(st.integers(0, s - 1)) for s in stride)
    size = tuple(draw(st.integers(1, 3)) for _ in range(2))
    out_hw = [(n - 1) * s - 2 * p + d * (k - 1) + e + 1
              for n, s, p, d, k, e in zip(size, stride, padding, dilation, kernel, output_padding)]
    assume(min(out_hw) >= 1)
    x = draw(S.tensors((draw(st.integers(1, 2)), in_channels, *size)), label="x")
    w = draw(S.tensors((in_channels, out_channels // groups, *kernel)), label="weight")
    b = draw(st.none() | S.tensors((out_channels,)), label="bias")
    kwargs = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)
    return x, w, b, kwargs


def conv_transpose2d_reference(x, w, b, stride, padding, output_padding, groups, dilation):
    """Each input value spreads, times the kernel, onto the output positions its window covers."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    og = w.shape[1]
    full = np.zeros((n, og * groups, (h - 1) * stride[0] + dilation[0] * (kh - 1) + 1 + output_padding[0],
                     (wd - 1) * stride[1] + dilation[1] * (kw - 1) + 1 + output_padding[1]))
    cg = c // groups
    for ci in range(c):
        g = ci // cg
        for i in range(h):
            for j in range(wd):
                for a in range(kh):
                    for bb in range(kw):
                        full[:, g * og : (g + 1) * og, i * stride[0] + a * dilation[0], j * stride[1] + bb * dilation[1]] += \
                            x[:, ci, i, j][:, None] * w[ci, :, a, bb]
    out = full[:, :, padding[0] : full.shape[2] - padding[0], padding[1] : full.shape[3] - padding[1]]
    return out if b is None else out + b[:, None, None]


@given(problem=conv_transpose2d_problems())
def test_conv_transpose2d(problem, check_op):
    x, w, b, kwargs = problem
    expected = conv_transpose2d_reference(x.data, w.data, None if b is None else b.data, **kwargs)
    check_op(lambda *a: F.conv_transpose2d(*a, **kwargs), expected, x, w, *([] if b is None else [b]))


@given(problem=conv_transpose2d_problems())
def test_conv_transpose2d_assert_matches_torch(problem, assert_matches_torch):
    import torch

    x, w, b, kwargs = problem
    assert_matches_torch(lambda *a: F.conv_transpose2d(*a, **kwargs),
                  lambda *a: torch.nn.functional.conv_transpose2d(*a, **kwargs), x, w, b)


def test_conv_transpose2d_undoes_the_shape_of_a_strided_conv2d():
    x = Tensor(np.zeros((1, 2, 7, 8)))
    down = F.conv2d(x, Tensor(np.zeros((3, 2, 3, 3))), stride=2, padding=1)
    up = F.conv_transpose2d(down, Tensor(np.zeros((3, 2, 3, 3))), stride=2, padding=1, output_padding=(0, 1))
    assert up.shape == x.shape


def test_conv_transpose2d_argument_errors():
    x, w = Tensor(np.zeros((1, 2, 3, 3))), Tensor(np.zeros((2, 4, 3, 3)))
    with pytest.raises(ValueError, match=r"^conv_transpose2d: output_padding \(2, 2\) must be smaller than the stride"):
        F.conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"^conv_transpose2d: input has 2 channels .* expects 3"):
        F.conv_transpose2d(x, Tensor(np.zeros((3, 4, 3, 3))))
    with pytest.raises(ValueError, match=r"^conv_transpose2d: the output would be"):
        F.conv_transpose2d(Tensor(np.zeros((1, 2, 1, 1))), Tensor(np.zeros((2, 1, 1, 1))), padding=1)
    with pytest.raises(ValueError, match=r"^conv1d: input must be 3-D"):
        F.conv1d(x, Tensor(np.zeros((2, 2, 3))))


# ---- the layers: torch's parameter layout, so state_dicts load both ways ---------------------------------


LAYERS = [
    ("Conv1d", (4, 6, 3), dict(stride=2, padding=1, groups=2), (2, 4, 9)),
    ("Conv1d", (3, 2, 2), dict(padding="same", dilation=2, bias=False), (1, 3, 5)),
    ("Conv2d", (2, 3, 3), dict(padding=(1, 2), padding_mode="reflect"), (1, 2, 4, 5)),
    ("Conv2d", (2, 2, (2, 3)), dict(padding="same", dilation=2, padding_mode="circular"), (2, 2, 5, 6)),
    ("Conv1d", (2, 3, 3), dict(padding=2, stride=2, padding_mode="replicate"), (2, 2, 7)),
    ("ConvTranspose2d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1, groups=2), (2, 4, 3, 4)),
    ("ConvTranspose2d", (2, 3, (2, 3)), dict(dilation=(2, 1), bias=False), (1, 2, 3, 3)),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("name, args, kwargs, input_shape", LAYERS)
def test_conv_layers_load_torch_state_dicts_both_ways(name, args, kwargs, input_shape):
    torch = pytest.importorskip("torch")
    ours = getattr(nn, name)(*args, **kwargs, dtype=np.float64)
    theirs = getattr(torch.nn, name)(*args, **kwargs, dtype=torch.float64)
    assert repr(ours) == repr(theirs)
    x = np.random.default_rng(0).standard_normal(input_shape)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(Tensor(x)).data, expected, rtol=1e-10, atol=1e-12)
    fresh = getattr(nn, name)(*args, **kwargs, dtype=np.float64)  # other random weights, back into torch
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in fresh.state_dict().items()})
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(fresh(Tensor(x)).data, expected, rtol=1e-10, atol=1e-12)


def test_conv_layers_default_initialisation_bounds():
    layer = nn.ConvTranspose2d(4, 6, 3, groups=2)
    bound = 1 / np.sqrt(3 * 3 * 3)  # fan_in of the transposed weight (4, 3, 3, 3): 3 * 3 * 3, as torch
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert nn.Conv1d(2, 3, 4).weight.shape == (3, 2, 4)


def test_conv_layers_refuse_bad_hyperparameters_when_built():
    with pytest.raises(TypeError, match=r"^Conv1d: kernel_size must be an int, got \(3, 3\)"):
        nn.Conv1d(2, 3, (3, 3))
    with pytest.raises(ValueError, match=r"^Conv2d: stride must be at least 1"):
        nn.Conv2d(2, 3, 3, stride=0)
    with pytest.raises(ValueError, match=r"^ConvTranspose2d: groups=2 must divide"):
        nn.ConvTranspose2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"^Conv2d: padding_mode must be one of \('zeros', 'reflect', 'replicate', 'circular'\)"):
        nn.Conv2d(2, 3, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match=r"^ConvTranspose2d: padding_mode must be one of \('zeros',\)"):
        nn.ConvTranspose2d(2, 3, 3, padding_mode="reflect")
