"""Elementwise ops: unary math, binary arithmetic with broadcasting, reflected forms, comparisons,
maximum/minimum/where.

Every op gets the same four checks on Hypothesis-drawn inputs: the forward value against a NumPy
formula written out here, first and second derivatives against central differences
(``check_gradients``), and float32 in -> float32 out for the value and its gradients.
"""
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor
from tinygrad_cnn.ops.elementwise import KeepWhere, TanhGrad
from tinygrad_cnn.testing import check_dtype_preserved, check_gradients
from tinygrad_cnn.testing import strategies as S

from ._tensors import const, param


def anywhere(shape):
    return S.tensors(shape)


def positive(shape):
    return S.tensors(shape, elements=st.floats(0.5, 3.0))


def away_from_zero(shape):
    return S.away_from_kinks(shape, kinks=(0.0,), margin=0.5)


def away_from_kink_at_zero(shape):
    return S.away_from_kinks(shape, kinks=(0.0,))


def away_from_bounds(*bounds):
    return lambda shape: S.away_from_kinks(shape, kinks=bounds)


@dataclass
class Case:
    name: str
    op: Callable  # on Tensors
    reference: Callable  # on NumPy arrays, written independently of the op
    inputs: Callable = anywhere  # shape -> strategy of Tensors where the op is differentiable

    def __repr__(self):
        return self.name


# ---- unary (including a tensor combined with a Python number, in both orders) -----------------

UNARY = [
    Case("neg", lambda x: -x, lambda a: 0.0 - a),
    Case("pos", lambda x: +x, lambda a: a),
    Case("exp", Tensor.exp, lambda a: np.e**a),
    Case("log", Tensor.log, np.log, positive),
    Case("sqrt", Tensor.sqrt, lambda a: a**0.5, positive),
    Case("tanh", Tensor.tanh, lambda a: (np.exp(2 * a) - 1) / (np.exp(2 * a) + 1)),
    Case("sigmoid", Tensor.sigmoid, lambda a: 1 / (1 + np.exp(-a))),
    Case("relu", Tensor.relu, lambda a: np.where(a > 0, a, 0.0), away_from_kink_at_zero),
    Case("abs", Tensor.abs, lambda a: np.where(a < 0, -a, a), away_from_kink_at_zero),
    Case("clip", lambda x: x.clip(-1.0, 0.5), lambda a: np.where(a < -1, -1.0, np.where(a > 0.5, 0.5, a)), away_from_bounds(-1.0, 0.5)),
    Case("clip_min", lambda x: x.clip(min=-0.5), lambda a: np.where(a < -0.5, -0.5, a), away_from_bounds(-0.5)),
    Case("clamp_max", lambda x: x.clamp(max=0.5), lambda a: np.where(a > 0.5, 0.5, a), away_from_bounds(0.5)),
    Case("x+2", lambda x: x + 2, lambda a: a + 2),
    Case("2+x", lambda x: 2 + x, lambda a: 2 + a),
    Case("x-2", lambda x: x - 2, lambda a: a - 2),
    Case("2-x", lambda x: 2 - x, lambda a: 2 - a),
    Case("x*3", lambda x: x * 3, lambda a: a * 3),
    Case("3*x", lambda x: 3 * x, lambda a: 3 * a),
    Case("x/4", lambda x: x / 4, lambda a: a * 0.25),
    Case("2/x", lambda x: 2 / x, lambda a: 2 / a, away_from_zero),
    Case("x**2", lambda x: x**2, lambda a: a * a),
    Case("x**3", lambda x: x**3, lambda a: a * a * a),
    Case("x**0.5", lambda x: x**0.5, np.sqrt, positive),
    Case("x**-1.5", lambda x: x**-1.5, lambda a: 1 / (a * np.sqrt(a)), positive),
    Case("2**x", lambda x: 2**x, lambda a: np.exp(a * np.log(2))),
]


@pytest.mark.parametrize("case", UNARY, ids=repr)
@given(data=st.data())
def test_unary(case, data):
    x = data.draw(case.inputs(S.shapes()), label="x")
    out = case.op(x)
    assert out.shape == x.shape
    np.testing.assert_allclose(out.data, case.reference(x.data), rtol=1e-12, atol=1e-12)
    check_gradients(case.op, x)
    check_dtype_preserved(case.op, x)


@given(x=S.tensors())
def test_cast_and_its_gradients_return_to_the_input_dtype(x):
    # a central difference through float32 would measure rounding, not the derivative, so the
    # gradients of y = cast(x)^3 are compared with 3x^2 and 6x directly
    x = Tensor(x.data.astype(np.float32), requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y.data, x.data.astype(np.float64))
    (first,) = tg.grad((y**3).sum(), x, create_graph=True)
    (second,) = tg.grad(first.sum(), x)
    assert first.dtype == second.dtype == np.float32
    np.testing.assert_allclose(first.data, 3 * x.data.astype(np.float64) ** 2, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(second.data, 6 * x.data.astype(np.float64), rtol=1e-6, atol=1e-6)
    assert x.astype(np.float32) is x  # no-op casts record nothing


# ---- binary, with NumPy broadcasting -------------------------------------------------------------


def any_pair(shape_a, shape_b):
    return st.tuples(S.tensors(shape_a), S.tensors(shape_b))


def nonzero_denominator(shape_a, shape_b):
    return st.tuples(S.tensors(shape_a), away_from_zero(shape_b))


def positive_base(shape_a, shape_b):
    return st.tuples(positive(shape_a), S.tensors(shape_b, elements=st.floats(-2.0, 2.0)))


def without_ties(shape_a, shape_b):
    return S.distinct_values(shape_a, shape_b)


BINARY = [
    Case("add", lambda x, y: x + y, lambda a, b: a + b, any_pair),
    Case("sub", lambda x, y: x - y, lambda a, b: a - b, any_pair),
    Case("mul", lambda x, y: x * y, lambda a, b: a * b, any_pair),
    Case("div", lambda x, y: x / y, lambda a, b: a * (1 / b), nonzero_denominator),
    Case("pow", lambda x, y: x**y, lambda a, b: np.exp(b * np.log(a)), positive_base),
    Case("maximum", tg.maximum, lambda a, b: np.where(a > b, a, b) + 0 * (a + b), without_ties),
    Case("minimum", tg.minimum, lambda a, b: np.where(a < b, a, b) + 0 * (a + b), without_ties),
]


@pytest.mark.parametrize("case", BINARY, ids=repr)
@given(data=st.data())
def test_binary_broadcasting(case, data):
    (shape_a, shape_b), result_shape = data.draw(S.broadcastable_shapes(2), label="shapes")
    x, y = data.draw(case.inputs(shape_a, shape_b), label="x, y")
    out = case.op(x, y)
    assert out.shape == result_shape
    np.testing.assert_allclose(out.data, case.reference(x.data, y.data), rtol=1e-12, atol=1e-12)
    check_gradients(case.op, x, y)
    check_dtype_preserved(case.op, x, y)


@pytest.mark.parametrize("case", BINARY, ids=repr)
@given(data=st.data())
def test_binary_with_a_constant_array(case, data):
    """One operand is a plain NumPy array (on either side): only the Tensor gets a gradient."""
    (shape_a, shape_b), _ = data.draw(S.broadcastable_shapes(2), label="shapes")
    x, y = data.draw(case.inputs(shape_a, shape_b), label="x, y")
    constant_y = y.data.copy()
    np.testing.assert_allclose(case.op(x, constant_y).data, case.reference(x.data, constant_y), rtol=1e-12)
    check_gradients(lambda t: case.op(t, constant_y), x)
    constant_x = x.data.copy()
    np.testing.assert_allclose(case.op(constant_x, y).data, case.reference(constant_x, y.data), rtol=1e-12)
    check_gradients(lambda t: case.op(constant_x, t), y)


@given(data=st.data())
def test_where(data):
    (shape_c, shape_a, shape_b), result_shape = data.draw(S.broadcastable_shapes(3), label="shapes")
    condition = data.draw(hnp.arrays(bool, shape_c), label="condition")
    x, y = data.draw(S.tensors(shape_a), label="x"), data.draw(S.tensors(shape_b), label="y")

    def op(x, y):
        return tg.where(condition, x, y)

    out = op(x, y)
    expected = np.empty(result_shape)
    for index in np.ndindex(result_shape):
        pick = np.broadcast_to(condition, result_shape)[index]
        expected[index] = np.broadcast_to(x.data if pick else y.data, result_shape)[index]
    np.testing.assert_array_equal(out.data, expected)
    check_gradients(op, x, y)
    check_dtype_preserved(op, x, y)


@given(x=S.away_from_kinks(kinks=(0.5,)))  # where(x > 0.5, x, 0) jumps at 0.5
def test_where_with_a_tensor_condition_and_a_scalar_branch(x):
    def op(x):
        return tg.where(x > 0.5, x, 0.0)

    np.testing.assert_array_equal(op(x).data, np.array([v if v > 0.5 else 0.0 for v in x.data.ravel()]).reshape(x.shape))
    check_gradients(op, x)
    check_dtype_preserved(op, x)


def test_maximum_at_a_tie_splits_the_gradient_as_torch():
    x, y = Tensor([1.0, 2.0], requires_grad=True), Tensor([1.0, 3.0], requires_grad=True)
    tg.maximum(x, y).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.5, 0.0])
    np.testing.assert_array_equal(y.grad.data, [0.5, 1.0])


@given(data=st.data())
def test_keep_where_primitive(data):
    # the masked pass-through that relu, clamp and where use for their gradients, checked on its own:
    # a mask that broadcasts to x, forward against np.where, and its first and second derivatives
    (shape_m, shape_x), _ = data.draw(S.broadcastable_shapes(2), label="shapes")
    shape_x = np.broadcast_shapes(shape_m, shape_x)  # the mask broadcasts to x, not the other way
    mask = data.draw(hnp.arrays(bool, shape_m), label="mask")
    x = data.draw(S.tensors(shape_x), label="x")

    def op(x):
        return KeepWhere.apply(x, mask)

    np.testing.assert_array_equal(op(x).data, np.where(mask, x.data, 0.0))
    check_gradients(op, x)
    check_dtype_preserved(op, x)


@given(data=st.data())
def test_tanh_grad_primitive(data):
    # tanh's backward as one op, checked on its own: g * (1 - y^2) against NumPy, bit for bit (the
    # same three NumPy operations), and its first and second derivatives in both arguments
    shape = data.draw(S.shapes(), label="shape")
    g, y = data.draw(S.tensors(shape), label="g"), data.draw(S.tensors(shape), label="y")
    np.testing.assert_array_equal(TanhGrad.apply(g, y).data, g.data * (1 - y.data * y.data))
    check_gradients(TanhGrad.apply, g, y)
    check_dtype_preserved(TanhGrad.apply, g, y)


@given(data=st.data())
def test_tanh_backward_is_one_op_and_gives_the_composed_gradient(data):
    x = data.draw(S.tensors(data.draw(S.shapes(), label="shape")), label="x")
    upstream = Tensor(data.draw(S.arrays(x.shape), label="upstream"))
    y = x.tanh()
    (grad,) = tg.grad(y, x, upstream, create_graph=True)
    assert type(grad.grad_fn) is TanhGrad
    np.testing.assert_array_equal(grad.data, upstream.data * (1 - y.data * y.data))


@pytest.mark.parametrize("op, torch_op", [
    (Tensor.relu, "relu"),
    (lambda t: t.clip(-0.5, 0.5), lambda t: t.clamp(-0.5, 0.5)),
    (lambda t: tg.where(t.data > 0, t, 0.0), lambda t: t.where(t > 0, 0.0)),
])
def test_blocked_values_pass_no_gradient_even_inf_or_nan_as_torch(op, torch_op, assert_matches_torch):
    # relu, clamp and where pass part of the upstream gradient through and block the rest; a blocked
    # inf or NaN still gives 0 (torch masks, it does not multiply by 0, which would give NaN)
    x = np.array([-2.0, -1.0, 0.25, 1.0, 3.0, -0.75])
    upstream = np.array([np.inf, np.nan, 2.0, -np.inf, np.nan, 5.0])
    theirs = (lambda t: t.relu()) if torch_op == "relu" else torch_op
    assert_matches_torch(op, theirs, Tensor(x, requires_grad=True), upstream=upstream, rtol=0, atol=0)


def test_relu_passes_the_gradient_at_nan_as_torch(assert_matches_torch):
    # 1 at NaN and +inf, 0 at 0 and below
    x = np.array([np.nan, -1.0, 2.0, 0.0, -np.inf, np.inf])
    assert_matches_torch(lambda t: t.relu(), lambda t: t.relu(), Tensor(x, requires_grad=True),
                         upstream=np.ones(6), rtol=0, atol=0)


def test_masked_gradients_of_a_dtype_without_an_integer_of_its_width():
    # the bit trick needs an integer as wide as the float; longdouble (16 bytes here) has none
    x = Tensor(np.array([-1.0, 2.0, 0.5], dtype=np.longdouble), requires_grad=True)
    x.relu().sum().backward()
    assert x.grad.dtype == np.longdouble
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 1.0])


def test_keep_where_refuses_a_mask_that_does_not_broadcast_to_the_values():
    with pytest.raises(ValueError, match="does not broadcast"):
        KeepWhere.apply(Tensor(np.ones(3)), np.ones((2, 3), dtype=bool))


def test_a_node_drops_the_arrays_it_kept_once_backward_has_passed():
    x = Tensor(np.array([[[[1.0, -2.0], [3.0, 4.0]]]]), requires_grad=True)
    hidden = x.relu()
    pooled = tg.nn.functional.max_pool2d(hidden, 2)
    relu_node, pool_node = hidden.grad_fn, pooled.grad_fn
    assert relu_node.positive is not None and pool_node.argmax is not None
    pooled.sum().backward()
    # the tensors, and so their nodes, are still alive; the masks they kept are not
    assert not hasattr(relu_node, "positive") and not hasattr(pool_node, "argmax")


# ---- comparisons: not differentiable, boolean results ----------------------------------------------

COMPARISONS = {
    "<": (lambda x, y: x < y, lambda a, b: a < b),
    "<=": (lambda x, y: x <= y, lambda a, b: a <= b),
    ">": (lambda x, y: x > y, lambda a, b: a > b),
    ">=": (lambda x, y: x >= y, lambda a, b: a >= b),
    "==": (lambda x, y: x == y, lambda a, b: a == b),
    "!=": (lambda x, y: x != y, lambda a, b: a != b),
}
# few distinct values, so equal elements (the interesting case for <=, ==) come up often
SMALL_INTEGERS = st.sampled_from([-1.0, 0.0, 1.0])


@pytest.mark.parametrize("symbol", COMPARISONS)
@given(data=st.data())
def test_comparison(symbol, data):
    op, reference = COMPARISONS[symbol]
    (shape_a, shape_b), result_shape = data.draw(S.broadcastable_shapes(2), label="shapes")
    x = data.draw(S.tensors(shape_a, elements=SMALL_INTEGERS), label="x")
    y = data.draw(S.tensors(shape_b, elements=SMALL_INTEGERS), label="y")
    for other, other_array in ((y, y.data), (0.0, 0.0)):
        out = op(x, other)
        assert out.dtype == np.bool_
        assert not out.requires_grad and out.grad_fn is None
        expected = np.empty(np.broadcast_shapes(x.shape, np.shape(other_array)), dtype=bool)
        for index in np.ndindex(expected.shape):
            expected[index] = reference(
                float(np.broadcast_to(x.data, expected.shape)[index]), float(np.broadcast_to(other_array, expected.shape)[index])
            )
        np.testing.assert_array_equal(out.data, expected)

# ---- clear errors (moved from tests/test_errors.py) -------------------------------------------------


BINARY_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
    "maximum": tg.maximum,
}


@pytest.mark.parametrize("name", sorted(BINARY_OPS))
@pytest.mark.parametrize("other", [const(4), np.ones(4, np.float32), [1.0, 2.0, 3.0, 4.0]], ids=["tensor", "ndarray", "list"])
def test_binary_op_shape_mismatch_names_op_and_shapes(name, other):
    with pytest.raises(ValueError, match=re.escape(f"{name}: shapes (2, 3) and (4,) cannot be broadcast")):
        BINARY_OPS[name](param(2, 3), other)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow"])
def test_reflected_binary_op_shape_mismatch(name):
    """``ndarray + Tensor`` goes through the reflected method: the shapes come in the user's order."""
    with pytest.raises(ValueError, match=re.escape(f"{name}: shapes (4,) and (2, 3) cannot be broadcast")):
        BINARY_OPS[name](np.ones(4, np.float32), param(2, 3))


def test_where_shape_mismatch():
    with pytest.raises(ValueError, match=r"^where: shapes \(4,\) and \(2, 3\) and \(\) cannot be broadcast"):
        tg.where(np.ones(4, bool), param(2, 3), 0.0)


def test_broadcasting_that_is_valid_still_works():
    out = param(2, 3) + const(3)
    assert out.shape == (2, 3)
    out = param(4, 1, 3) * const(2, 1)
    assert out.shape == (4, 2, 3)
