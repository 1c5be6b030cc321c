"""Hypothesis fuzzes the argument checking.

Random hyperparameters and shapes, valid or not and of mixed types (floats, negative numbers,
tuples of the wrong length, zero sizes, None, strings, booleans), go to conv2d, max_pool2d and
avg_pool2d, the broadcasting binary ops and matmul (the Tensor constructor is fuzzed in
tests/test_validation_fuzz.py). An oracle written here from PyTorch's rules says whether each call
is valid:

* invalid: the library's own error, a ValueError or TypeError whose message starts with the op's
  name; never an IndexError, a NumPy message, a crash or an output;
* valid: no error, and the output shape the formula gives
  (H + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1; backward gives each input a
  gradient of its own shape.
"""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor

from .test_elementwise import BINARY_OPS

# ---- the oracle -------------------------------------------------------------------------------------


def as_pair(value):
    """The (height, width) pair an argument stands for, or None if it is not an int or a pair of ints."""
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if is_int(value):
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) for v in value):
        return tuple(int(v) for v in value)
    return None


def window_output_size(size, kernel, stride, padding, dilation):
    """Output size along one axis, or None when the (dilated) kernel does not fit the padded input."""
    if dilation * (kernel - 1) + 1 > size + 2 * padding:
        return None
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def expected_window_shape(x_shape, channels_out, kernel, stride, padding, dilation, pool: bool):
    """The output shape of a sliding-window op, or None if the arguments are invalid."""
    kernel, stride, padding, dilation = (as_pair(v) for v in (kernel, stride, padding, dilation))
    if None in (kernel, stride, padding, dilation) or len(x_shape) != 4 or 0 in x_shape[1:]:
        return None
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        return None
    if pool and any(p > k // 2 for p, k in zip(padding, kernel)):
        return None
    out_hw = [window_output_size(*args) for args in zip(x_shape[2:], kernel, stride, padding, dilation)]
    if None in out_hw:
        return None
    return (x_shape[0], channels_out, *out_hw)


def expected_conv_shape(x_shape, w_shape, stride, padding, dilation, groups):
    if len(w_shape) != 4 or len(x_shape) != 4:
        return None
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        return None
    out_channels, per_group = w_shape[:2]
    channels = x_shape[1]
    if out_channels == 0 or per_group == 0 or channels % groups or out_channels % groups or per_group * groups != channels:
        return None
    return expected_window_shape(x_shape, out_channels, w_shape[2:], stride, padding, dilation, pool=False)


def assert_clear_error(op: str, call):
    """``call()`` must raise the library's error for ``op``."""
    try:
        call()
    except (ValueError, TypeError) as error:
        assert not isinstance(error, IndexError), f"{op}: an IndexError leaked: {error!r}"
        assert str(error).startswith(f"{op}:"), f"the message does not name {op}: {type(error).__name__}: {error}"
    else:
        raise AssertionError(f"{op}: invalid arguments were accepted")


def assert_valid_output(out, expected_shape, inputs, may_hold_only_padding=False):
    """``may_hold_only_padding``: with dilation, PyTorch's padding rule still lets a max-pool window
    fall entirely on padding; its output is then -inf, as in PyTorch."""
    assert out.shape == expected_shape
    assert not np.isnan(out.data).any()
    if not may_hold_only_padding:
        assert np.isfinite(out.data).all()
    out.sum().backward()
    for t in inputs:
        if t.requires_grad:
            assert t.grad is not None and t.grad.shape == t.shape


# ---- strategies ---------------------------------------------------------------------------------------

small_int = st.integers(-2, 4)
# Any hyperparameter value a user might pass, well-typed or not.
any_hyper = st.one_of(
    small_int,
    st.tuples(small_int, small_int),
    st.lists(st.integers(0, 3), max_size=3),
    st.tuples(st.integers(1, 3)),
    st.floats(-2, 4, allow_nan=False),
    st.none(),
    st.booleans(),
    st.sampled_from(["2", "", (1.0, 2.0), (1, 2, 3), np.int64(2)]),
)
positive = st.integers(1, 3)
pair_of = lambda elements: st.one_of(elements, st.tuples(elements, elements), st.lists(elements, min_size=2, max_size=2))  # noqa: E731


def tensor_of(shape, requires_grad=True):
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return Tensor(data, requires_grad=requires_grad)


@st.composite
def valid_conv(draw):
    """Arguments of a valid conv2d, with the input made large enough for the kernel."""
    groups = draw(st.integers(1, 3))
    channels = groups * draw(st.integers(1, 2))
    out_channels = groups * draw(st.integers(1, 2))
    kernel = (draw(positive), draw(positive))
    stride, dilation = draw(pair_of(positive)), draw(pair_of(positive))
    padding = draw(pair_of(st.integers(0, 2)))
    padding_pair, dilation_pair = as_pair(padding), as_pair(dilation)
    height, width = (
        max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 3))
        for k, p, d in zip(kernel, padding_pair, dilation_pair)
    )
    x_shape = (draw(st.integers(0, 2)), channels, height, width)
    w_shape = (out_channels, channels // groups, *kernel)
    return x_shape, w_shape, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@st.composite
def valid_pool(draw):
    kernel = draw(pair_of(positive))
    kernel_pair = as_pair(kernel)
    padding = draw(st.tuples(*(st.integers(0, k // 2) for k in kernel_pair)))
    dilation = draw(pair_of(st.integers(1, 2)))
    dilation_pair = as_pair(dilation)
    stride = draw(st.one_of(st.none(), pair_of(positive)))
    height, width = (
        max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 3))
        for k, p, d in zip(kernel_pair, padding, dilation_pair)
    )
    x_shape = (draw(st.integers(0, 2)), draw(st.integers(1, 3)), height, width)
    return x_shape, dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation)


# One way to break each argument; every one of them must be refused.
CONV_CORRUPTIONS = {
    "stride": st.one_of(st.integers(-2, 0), st.floats(0.5, 3), st.none(), st.booleans(), st.tuples(st.integers(1, 2)),
                        st.tuples(positive, st.integers(-1, 0)), st.just("1")),
    "padding": st.one_of(st.integers(-3, -1), st.tuples(st.integers(0, 1), st.integers(-2, -1)), st.floats(0, 2),
                         st.just((0, 0, 0)), st.none()),
    "dilation": st.one_of(st.integers(-1, 0), st.floats(1, 2), st.just([1, 1, 1]), st.just(True)),
    "groups": st.one_of(st.integers(-2, 0), st.floats(1, 3), st.booleans(), st.none(), st.just((1,))),
}


# ---- conv2d ---------------------------------------------------------------------------------------------


@given(valid_conv())
def test_valid_conv2d_gives_the_formula_shape(case):
    x_shape, w_shape, kwargs = case
    expected = expected_conv_shape(x_shape, w_shape, **kwargs)
    assert expected is not None, "the strategy drew an invalid case"
    x, w = tensor_of(x_shape), tensor_of(w_shape)
    assert_valid_output(F.conv2d(x, w, **kwargs), expected, [x, w])


@given(valid_conv(), st.sampled_from(sorted(CONV_CORRUPTIONS)), st.data())
def test_conv2d_with_one_bad_hyperparameter_is_refused(case, name, data):
    x_shape, w_shape, kwargs = case
    kwargs = dict(kwargs, **{name: data.draw(CONV_CORRUPTIONS[name], label=name)})
    assert expected_conv_shape(x_shape, w_shape, **kwargs) is None
    assert_clear_error("conv2d", lambda: F.conv2d(tensor_of(x_shape), tensor_of(w_shape), **kwargs))


@given(valid_conv(), st.sampled_from(["channels", "kernel-too-large", "empty", "rank", "groups-divide"]), st.data())
def test_conv2d_with_mismatched_shapes_is_refused(case, mismatch, data):
    x_shape, w_shape, kwargs = case
    n, c, h, w = x_shape
    if mismatch == "channels":
        x_shape = (n, c + data.draw(st.integers(1, 2)), h, w)
        kwargs["groups"] = 1
        w_shape = (w_shape[0], c, *w_shape[2:])
    elif mismatch == "kernel-too-large":
        padding, dilation = as_pair(kwargs["padding"]), as_pair(kwargs["dilation"])
        kh = (h + 2 * padding[0] - 1) // dilation[0] + 2 + data.draw(st.integers(0, 2))  # reach > padded height
        w_shape = (*w_shape[:2], kh, w_shape[3])
    elif mismatch == "empty":
        axis = data.draw(st.sampled_from([1, 2, 3]))
        x_shape = tuple(0 if i == axis else s for i, s in enumerate(x_shape))
    elif mismatch == "rank":
        x_shape = data.draw(st.sampled_from([x_shape[1:], (*x_shape, 1), x_shape[2:]]))
    else:  # groups that do not divide the channels
        kwargs["groups"] = c + 1 if c > 1 else 2
    assert expected_conv_shape(x_shape, w_shape, **kwargs) is None
    assert_clear_error("conv2d", lambda: F.conv2d(tensor_of(x_shape), tensor_of(w_shape), **kwargs))


@given(
    x_shape=st.lists(st.integers(0, 5), min_size=3, max_size=5).map(tuple),
    w_shape=st.lists(st.integers(0, 4), min_size=3, max_size=5).map(tuple),
    stride=any_hyper, padding=any_hyper, dilation=any_hyper, groups=any_hyper,
)
def test_conv2d_with_anything_either_refuses_clearly_or_gives_the_formula_shape(x_shape, w_shape, stride, padding, dilation, groups):
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    x, w = tensor_of(x_shape), tensor_of(w_shape)
    expected = expected_conv_shape(x_shape, w_shape, **kwargs)
    if expected is None:
        assert_clear_error("conv2d", lambda: F.conv2d(x, w, **kwargs))
    else:
        assert_valid_output(F.conv2d(x, w, **kwargs), expected, [x, w])


# ---- pooling --------------------------------------------------------------------------------------------


@given(valid_pool(), st.sampled_from(["max_pool2d", "avg_pool2d"]))
def test_valid_pooling_gives_the_formula_shape(case, op):
    x_shape, kwargs = case
    if op == "avg_pool2d":
        kwargs = dict(kwargs, dilation=1)
    stride = kwargs["kernel_size"] if kwargs["stride"] is None else kwargs["stride"]
    expected = expected_window_shape(x_shape, x_shape[1], kwargs["kernel_size"], stride, kwargs["padding"],
                                     kwargs["dilation"], pool=True)
    assert expected is not None, "the strategy drew an invalid case"
    if op == "avg_pool2d":
        del kwargs["dilation"]
    x = tensor_of(x_shape)
    dilated = op == "max_pool2d" and as_pair(kwargs["dilation"]) != (1, 1)
    assert_valid_output(getattr(F, op)(x, **kwargs), expected, [x], may_hold_only_padding=dilated)


@given(
    op=st.sampled_from(["max_pool2d", "avg_pool2d"]),
    x_shape=st.lists(st.integers(0, 5), min_size=3, max_size=5).map(tuple),
    kernel=any_hyper, stride=st.one_of(st.none(), any_hyper), padding=any_hyper, dilation=any_hyper,
)
def test_pooling_with_anything_either_refuses_clearly_or_gives_the_formula_shape(op, x_shape, kernel, stride, padding, dilation):
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding)
    if op == "max_pool2d":
        kwargs["dilation"] = dilation
    expected = expected_window_shape(x_shape, x_shape[1] if len(x_shape) > 1 else 0, kernel,
                                     kernel if stride is None else stride, padding, kwargs.get("dilation", 1), pool=True)
    x = tensor_of(x_shape)
    if expected is None:
        assert_clear_error(op, lambda: getattr(F, op)(x, **kwargs))
    else:
        dilated = op == "max_pool2d" and as_pair(dilation) != (1, 1)
        assert_valid_output(getattr(F, op)(x, **kwargs), expected, [x], may_hold_only_padding=dilated)


@given(valid_pool(), st.sampled_from(["max_pool2d", "avg_pool2d"]), st.data())
def test_pooling_padding_above_half_the_kernel_is_refused(case, op, data):
    x_shape, kwargs = case
    kernel = as_pair(kwargs["kernel_size"])
    axis = data.draw(st.integers(0, 1))
    padding = list(kwargs["padding"])
    padding[axis] = kernel[axis] // 2 + data.draw(st.integers(1, 2))
    kwargs = dict(kwargs, padding=tuple(padding))
    if op == "avg_pool2d":
        del kwargs["dilation"]
    assert_clear_error(op, lambda: getattr(F, op)(tensor_of(x_shape), **kwargs))


# ---- broadcasting and matmul -------------------------------------------------------------------------

shapes = st.lists(st.integers(0, 4), max_size=4).map(tuple)
BINARY = BINARY_OPS  # the binary ops, as the elementwise tests name them


def broadcast_shape(a, b):
    """NumPy's rule, written out: align from the right; sizes must match or one of them be 1."""
    result = []
    for i in range(1, max(len(a), len(b)) + 1):
        m = a[-i] if i <= len(a) else 1
        n = b[-i] if i <= len(b) else 1
        if m != n and 1 not in (m, n):
            return None
        result.append(n if m == 1 else m)
    return tuple(reversed(result))


@given(st.sampled_from(sorted(BINARY)), shapes, shapes, st.booleans())
def test_binary_ops_broadcast_or_refuse_clearly(op, a_shape, b_shape, b_is_array):
    a = Tensor(np.full(a_shape, 1.5, np.float32), requires_grad=True)
    b = np.full(b_shape, 2.0, np.float32)
    b = b if b_is_array else Tensor(b, requires_grad=True)
    expected = broadcast_shape(a_shape, b_shape)
    if expected is None:
        assert_clear_error(op, lambda: BINARY[op](a, b))
    else:
        out = BINARY[op](a, b)
        assert out.shape == expected
        out.sum().backward()
        assert a.grad.shape == a_shape


@given(st.lists(st.integers(1, 3), min_size=1, max_size=4).map(tuple), st.lists(st.integers(1, 3), min_size=1, max_size=4).map(tuple))
def test_matmul_multiplies_or_refuses_clearly(a_shape, b_shape):
    a2, b2 = (a_shape if len(a_shape) > 1 else (1, *a_shape)), (b_shape if len(b_shape) > 1 else (*b_shape, 1))
    batch = broadcast_shape(a2[:-2], b2[:-2])
    a, b = Tensor(np.ones(a_shape, np.float32), requires_grad=True), Tensor(np.ones(b_shape, np.float32), requires_grad=True)
    if a2[-1] != b2[-2] or batch is None:
        assert_clear_error("matmul", lambda: a @ b)
        return
    out = a @ b
    expected = (*batch, *([a2[-2]] if len(a_shape) > 1 else []), *([b2[-1]] if len(b_shape) > 1 else []))
    assert out.shape == expected
    out.sum().backward()
    assert a.grad.shape == a_shape and b.grad.shape == b_shape
