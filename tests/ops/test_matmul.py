"""Matrix product in every NumPy form: vector.vector, vector@matrix, matrix@vector, matrix@matrix,
stacks of matrices, and batch dimensions that broadcast, against a product written as an explicit
sum over the shared axis."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn import Tensor
from tinygrad_cnn.testing import check_dtype_preserved, check_gradients
from tinygrad_cnn.testing import strategies as S

from ._tensors import param


def matmul_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """NumPy's matmul rules spelled out: promote 1-D operands, broadcast the batch axes, sum over
    the shared axis, drop the promoted axes again."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    out = (a2[..., :, :, None] * b2[..., None, :, :]).sum(axis=-2)
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


side = st.integers(1, 3)


@st.composite
def operand_shapes(draw, form: str):
    n, k, m = draw(side), draw(side), draw(side)
    if form == "vector.vector":
        return (k,), (k,)
    if form == "vector@matrix":
        return (k,), (k, m)
    if form == "matrix@vector":
        return (n, k), (k,)
    if form == "matrix@matrix":
        return (n, k), (k, m)
    if form == "vector@stack":
        return (k,), (draw(side), k, m)
    if form == "stack@vector":
        return (draw(side), n, k), (k,)
    if form == "stack@stack":
        batch = tuple(draw(st.lists(side, min_size=1, max_size=2)))
        return batch + (n, k), batch + (k, m)
    assert form == "broadcast batch"
    (batch_a, batch_b), _ = draw(S.broadcastable_shapes(2, min_dims=1, max_dims=2))
    return batch_a + (n, k), batch_b + (k, m)


FORMS = ["vector.vector", "vector@matrix", "matrix@vector", "matrix@matrix", "vector@stack", "stack@vector",
         "stack@stack", "broadcast batch"]


@pytest.mark.parametrize("form", FORMS)
@given(data=st.data())
def test_matmul(form, data):
    shape_a, shape_b = data.draw(operand_shapes(form), label="shapes")
    a, b = data.draw(S.tensors(shape_a), label="a"), data.draw(S.tensors(shape_b), label="b")
    expected = matmul_reference(a.data, b.data)
    for op in (lambda x, y: x @ y, lambda x, y: x.matmul(y)):
        out = op(a, b)
        assert out.shape == expected.shape
        np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    check_gradients(lambda x, y: x @ y, a, b)
    check_dtype_preserved(lambda x, y: x @ y, a, b)


@given(data=st.data())
def test_matmul_with_a_constant_array_on_either_side(data):
    shape_a, shape_b = data.draw(operand_shapes("broadcast batch"), label="shapes")
    a, b = data.draw(S.tensors(shape_a), label="a"), data.draw(S.tensors(shape_b), label="b")
    constant_a, constant_b = a.data.copy(), b.data.copy()
    np.testing.assert_allclose((constant_a @ b).data, matmul_reference(constant_a, b.data), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose((a @ constant_b).data, matmul_reference(a.data, constant_b), rtol=1e-12, atol=1e-12)
    check_gradients(lambda y: constant_a @ y, b)
    check_gradients(lambda x: x @ constant_b, a)


@pytest.mark.parametrize(
    "shape_a, shape_b, message",
    [((2, 3), (4, 2), "last dimension"), ((2, 2, 3), (3, 3, 1), "batch dimensions"), ((), (2,), "at least one")],
)
def test_matmul_of_mismatched_shapes_raises_a_clear_error(shape_a, shape_b, message):
    with pytest.raises(ValueError, match=message):
        Tensor(np.zeros(shape_a)) @ Tensor(np.zeros(shape_b))

# ---- clear errors (moved from tests/test_errors.py) -------------------------------------------------


@pytest.mark.parametrize(
    "a_shape, b_shape, pattern",
    [
        ((2, 3), (4, 2), r"^matmul: shapes \(2, 3\) and \(4, 2\) do not match"),
        ((3,), (4,), r"^matmul: shapes \(3,\) and \(4,\) do not match"),
        ((2, 3), (4,), r"^matmul: shapes \(2, 3\) and \(4,\) do not match"),
        ((3,), (4, 2), r"^matmul: shapes \(3,\) and \(4, 2\) do not match"),
        ((2, 2, 3), (3, 3, 2), r"^matmul: batch dimensions \(2,\) and \(3,\)"),
        ((), (3,), r"^matmul: both operands need at least one dimension"),
    ],
)
def test_matmul_shape_mismatch(a_shape, b_shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        param(*a_shape) @ param(*b_shape)


@pytest.mark.parametrize("stored", ["a transposed", "b transposed", "both transposed"])
@given(data=st.data())
def test_matmul_of_operands_stored_transposed(stored, data):
    """As ``F.linear`` multiplies by ``weight.T``: an operand whose matrices are stored column by
    column gets its gradient made the other way round (``_stored_transposed``), the same numbers."""
    shapes = data.draw(operand_shapes("broadcast batch"), label="shapes")
    flips = (stored != "b transposed", stored != "a transposed")
    # an operand to be stored transposed is drawn with its last two axes swapped, then seen through .mT
    a, b = (data.draw(S.tensors(shape[:-2] + shape[:-3:-1] if flip else shape), label=name)
            for shape, flip, name in zip(shapes, flips, "ab"))

    def product(x, y):
        return (x.transpose(-1, -2) if flips[0] else x) @ (y.transpose(-1, -2) if flips[1] else y)

    arrays = [np.swapaxes(t.data, -1, -2) if flip else t.data for t, flip in zip((a, b), flips)]
    np.testing.assert_allclose(product(a, b).data, matmul_reference(*arrays), rtol=1e-12, atol=1e-12)
    check_gradients(product, a, b)


def test_the_gradient_of_an_operand_stored_transposed_comes_out_in_its_order():
    """So that the weight of a dense layer gets its gradient without a transposing copy."""
    x, w = Tensor(np.arange(15.0).reshape(5, 3), requires_grad=True), Tensor(np.ones((4, 3)), requires_grad=True)
    seen = []
    w_t = w.T
    w_t.register_hook(lambda g: seen.append(g.data))
    (x @ w_t).sum().backward()
    assert seen[0].shape == (3, 4) and seen[0].flags.f_contiguous and not seen[0].flags.c_contiguous
    np.testing.assert_array_equal(w.grad.data, np.tile(x.data.sum(axis=0), (4, 1)))
    np.testing.assert_array_equal(x.grad.data, np.full((5, 3), 4.0))
