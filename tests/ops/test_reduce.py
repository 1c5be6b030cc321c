"""Reductions: sum, mean, amax, amin, var, std with ``axis`` None / int / tuple (negative axes
included) and ``keepdims``, against NumPy's own reductions; amax and amin on values without ties."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn.testing import check_dtype_preserved, check_gradients
from tinygrad_cnn.testing import strategies as S


@st.composite
def axes(draw, ndim: int):
    """None, one axis as an int, or a tuple of distinct axes (possibly empty), either sign."""
    kind = draw(st.sampled_from(["none", "int", "tuple"] if ndim else ["none", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    chosen = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim)) if ndim else []
    return tuple(draw(st.sampled_from([a, a - ndim])) for a in chosen)


def reduced_count(shape, axis) -> int:
    if axis is None:
        return int(np.prod(shape))
    return int(np.prod([shape[a] for a in np.atleast_1d(axis)]))


REDUCTIONS = {
    "sum": (lambda x, **kw: x.sum(**kw), np.sum, S.tensors),
    "mean": (lambda x, **kw: x.mean(**kw), np.mean, S.tensors),
    "amax": (lambda x, **kw: x.amax(**kw), np.amax, S.distinct_values),
    "amin": (lambda x, **kw: x.amin(**kw), np.amin, S.distinct_values),
    "var": (lambda x, **kw: x.var(unbiased=False, **kw), np.var, S.tensors),  # NumPy's var is biased
}


@pytest.mark.parametrize("name", REDUCTIONS)
@given(data=st.data())
def test_reduction(name, data):
    op, reference, values = REDUCTIONS[name]
    x = data.draw(values(S.shapes()), label="x")
    axis = data.draw(axes(x.ndim), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")

    def reduce(t):
        return op(t, axis=axis, keepdims=keepdims)

    expected = reference(x.data, axis=axis, keepdims=keepdims)
    out = reduce(x)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    check_gradients(reduce, x)
    check_dtype_preserved(reduce, x)


@given(data=st.data())
def test_var_and_std_with_ddof(data):
    # distinct values: the variance is positive, so std (a square root of it) is differentiable
    x = data.draw(S.distinct_values(S.shapes(min_dims=1)), label="x")
    axis = data.draw(axes(x.ndim).filter(lambda a: reduced_count(x.shape, a) > 1), label="axis")
    ddof = data.draw(st.sampled_from([0, 1]), label="ddof")
    n = reduced_count(x.shape, axis)
    mean = np.sum(x.data, axis=axis, keepdims=True) / n
    expected_var = np.sum((x.data - mean) ** 2, axis=axis) / (n - ddof)
    np.testing.assert_allclose(x.var(axis=axis, ddof=ddof).data, expected_var, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.std(axis=axis, ddof=ddof).data, np.sqrt(expected_var), rtol=1e-12, atol=1e-12)
    for op in (lambda t: t.var(axis=axis, ddof=ddof), lambda t: t.std(axis=axis, ddof=ddof)):
        check_gradients(op, x)
        check_dtype_preserved(op, x)


def test_max_with_ties_shares_the_gradient():
    from tinygrad_cnn import Tensor

    x = Tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], requires_grad=True)
    x.amax(dim=1).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
