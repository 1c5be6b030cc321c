"""Movement ops: reshape, transpose/permute/.T, flatten, squeeze/unsqueeze, expand, pad, basic and
advanced indexing (repeated indices accumulate), concatenate and stack.

Forward values are checked against NumPy's own array manipulation (or a padding written out here);
the gradients of these ops are sums and scatters, which check_gradients verifies element by element.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor
from tinygrad_cnn.testing import check_dtype_preserved, check_gradients
from tinygrad_cnn.testing import strategies as S


def check_movement(op, x, expected):
    """The four checks every movement op gets."""
    out = op(x)
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.data, expected)
    check_gradients(op, x)
    check_dtype_preserved(op, x)


# ---- reshape and friends ----------------------------------------------------------------------------


@st.composite
def factorisations(draw, size: int):
    """A shape with ``size`` elements: ``size`` split into factors, with 1s sprinkled in."""
    shape, rest = [], size
    while rest > 1:
        factor = draw(st.sampled_from([d for d in range(2, rest + 1) if rest % d == 0]))
        shape.append(factor)
        rest //= factor
    for _ in range(draw(st.integers(0, 2))):
        shape.insert(draw(st.integers(0, len(shape))), 1)
    return tuple(draw(st.permutations(shape)))


@given(data=st.data())
def test_reshape(data):
    x = data.draw(S.tensors(), label="x")
    shape = data.draw(factorisations(x.numel()), label="shape")
    written = shape
    if shape and data.draw(st.booleans(), label="use -1"):
        written = list(shape)
        written[data.draw(st.integers(0, len(shape) - 1))] = -1
    as_tuple = data.draw(st.booleans(), label="as one tuple")
    check_movement(lambda t: t.reshape(tuple(written)) if as_tuple else t.reshape(*written), x, np.reshape(x.data, shape))


def test_reshape_to_an_incompatible_shape_raises():
    with pytest.raises(ValueError, match="reshape"):
        Tensor(np.zeros((2, 3))).reshape(4, 2)


@given(data=st.data())
def test_permute_and_transpose(data):
    x = data.draw(S.tensors(), label="x")
    axes = tuple(data.draw(st.sampled_from([a, a - x.ndim])) for a in data.draw(st.permutations(range(x.ndim))))
    check_movement(lambda t: t.permute(*axes), x, np.transpose(x.data, axes))
    check_movement(lambda t: t.permute(axes), x, np.transpose(x.data, axes))
    check_movement(lambda t: t.T, x, x.data.T)
    if x.ndim >= 2:  # torch's transpose(d0, d1) swaps two dimensions, as NumPy's swapaxes
        a, b = data.draw(st.permutations(range(x.ndim)), label="swapped axes")[:2]
        check_movement(lambda t: t.transpose(a, b), x, np.swapaxes(x.data, a, b))
        check_movement(lambda t: t.swapaxes(a, b), x, np.swapaxes(x.data, a, b))


@given(data=st.data())
def test_flatten(data):
    x = data.draw(S.tensors(S.shapes(min_dims=1)), label="x")
    start = data.draw(st.integers(0, x.ndim - 1), label="start")
    end = data.draw(st.integers(start, x.ndim - 1), label="end")
    shape = x.shape[:start] + (int(np.prod(x.shape[start : end + 1])),) + x.shape[end + 1 :]
    check_movement(lambda t: t.flatten(start, end), x, x.data.reshape(shape))
    check_movement(lambda t: t.flatten(start - x.ndim, end - x.ndim), x, x.data.reshape(shape))
    check_movement(lambda t: t.flatten(), x, x.data.reshape(-1))


@given(data=st.data())
def test_squeeze_and_unsqueeze(data):
    x = data.draw(S.tensors(S.shapes(max_dims=4)), label="x")
    check_movement(lambda t: t.squeeze(), x, np.squeeze(x.data))
    ones = [i for i, n in enumerate(x.shape) if n == 1]
    if ones:
        chosen = tuple(data.draw(st.lists(st.sampled_from(ones), min_size=1, unique=True), label="axes"))
        axis = chosen[0] if len(chosen) == 1 else chosen
        check_movement(lambda t: t.squeeze(axis), x, np.squeeze(x.data, axis=axis))
    axis = data.draw(st.integers(-x.ndim - 1, x.ndim), label="unsqueeze axis")
    check_movement(lambda t: t.unsqueeze(axis), x, np.expand_dims(x.data, axis))


def test_squeeze_of_a_dim_longer_than_one_leaves_it_as_torch():
    assert Tensor(np.zeros((1, 2))).squeeze(1).shape == (1, 2)
    assert Tensor(np.zeros((1, 2))).squeeze((0, 1)).shape == (2,)


@st.composite
def expand_targets(draw, shape):
    """A shape ``shape`` broadcasts to: size-1 axes stretched, new leading axes, some written -1."""
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    kept = tuple(draw(st.integers(1, 3)) if n == 1 else n for n in shape)
    written = lead + tuple(-1 if n == m and draw(st.booleans()) else m for n, m in zip(shape, kept))
    return lead + kept, written


@given(data=st.data())
def test_expand(data):
    x = data.draw(S.tensors(), label="x")
    target, written = data.draw(expand_targets(x.shape), label="target")
    check_movement(lambda t: t.expand(*written), x, x.data * np.ones(target))


def test_expand_to_an_incompatible_shape_raises():
    with pytest.raises(ValueError, match="expand"):
        Tensor(np.zeros((2, 3))).expand(2, 4)


@given(data=st.data())
def test_pad(data):
    x = data.draw(S.tensors(S.shapes(min_dims=1)), label="x")
    widths = tuple(data.draw(st.tuples(st.integers(0, 2), st.integers(0, 2))) for _ in range(x.ndim))
    value = data.draw(st.sampled_from([0.0, -1.5]), label="value")
    expected = np.full(tuple(n + a + b for n, (a, b) in zip(x.shape, widths)), value)
    expected[tuple(slice(a, a + n) for n, (a, _) in zip(x.shape, widths))] = x.data
    check_movement(lambda t: t.pad(widths, value=value), x, expected)


@given(x=S.tensors(S.shapes(min_dims=1)), width=st.integers(0, 2))
def test_pad_with_one_width_for_every_side(x, width):
    expected = np.zeros(tuple(n + 2 * width for n in x.shape))
    expected[tuple(slice(width, width + n) for n in x.shape)] = x.data
    check_movement(lambda t: t.pad(width), x, expected)


# ---- indexing -----------------------------------------------------------------------------------------


@given(data=st.data())
def test_basic_indexing(data):
    x = data.draw(S.tensors(), label="x")
    index = data.draw(hnp.basic_indices(x.shape, allow_newaxis=True, allow_ellipsis=True), label="index")
    check_movement(lambda t: t[index], x, np.asarray(x.data[index]))


@given(data=st.data())
def test_integer_array_indexing_accumulates_repeated_indices(data):
    x = data.draw(S.tensors(S.shapes(min_dims=1)), label="x")
    index = data.draw(hnp.integer_array_indices(x.shape, result_shape=S.shapes(min_dims=1, max_side=4)), label="index")
    check_movement(lambda t: t[index], x, x.data[index])
    # the gradient of a gather is a scatter-add: each element gets one 1 per time it was picked
    x.grad = None
    x[index].sum().backward()
    times_picked = np.zeros(x.shape)
    for position in zip(*(np.ravel(np.broadcast_arrays(*index)[k]) for k in range(len(index)))):
        times_picked[tuple(p % n for p, n in zip(position, x.shape))] += 1
    np.testing.assert_array_equal(x.grad.data, times_picked)


@given(data=st.data())
def test_mixed_basic_and_advanced_indexing(data):
    x = data.draw(S.tensors(S.shapes(min_dims=2)), label="x")
    rows = data.draw(st.lists(st.integers(-x.shape[1], x.shape[1] - 1), min_size=1, max_size=4), label="list index")
    as_tensor = data.draw(st.booleans(), label="index as an integer Tensor")
    index = Tensor(np.array(rows)) if as_tensor else rows
    check_movement(lambda t: t[:, index], x, x.data[:, rows])
    check_movement(lambda t: t[0, index], x, x.data[0, rows])


@given(data=st.data())
def test_boolean_mask_indexing(data):
    x = data.draw(S.tensors(S.shapes(min_dims=1)), label="x")
    mask = data.draw(hnp.arrays(bool, x.shape), label="mask")
    check_movement(lambda t: t[mask], x, x.data[mask])


def test_iterating_a_tensor_yields_its_rows_with_gradients():
    x = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    rows = list(x)
    assert [r.shape for r in rows] == [(2,)] * 3
    (rows[0] * 1 + rows[2] * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[1, 1], [0, 0], [3, 3]])


# ---- joining ----------------------------------------------------------------------------------------------


@given(data=st.data())
def test_concatenate(data):
    base = data.draw(S.shapes(min_dims=1), label="base shape")
    axis = data.draw(st.integers(-len(base), len(base) - 1), label="axis")
    lengths = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3), label="lengths")
    pieces = []
    for n in lengths:
        shape = list(base)
        shape[axis] = n
        pieces.append(data.draw(S.tensors(tuple(shape))))
    expected = np.concatenate([p.data for p in pieces], axis=axis)

    def op(*ts):
        return tg.concatenate(ts, axis=axis)

    out = op(*pieces)
    np.testing.assert_array_equal(out.data, expected)
    check_gradients(op, *pieces)
    check_dtype_preserved(op, *pieces)


@given(data=st.data())
def test_stack(data):
    shape = data.draw(S.shapes(), label="shape")
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    pieces = data.draw(st.lists(S.tensors(shape), min_size=1, max_size=3), label="tensors")

    def op(*ts):
        return tg.stack(ts, axis=axis)

    out = op(*pieces)
    np.testing.assert_array_equal(out.data, np.stack([p.data for p in pieces], axis=axis))
    check_gradients(op, *pieces)
    check_dtype_preserved(op, *pieces)


def test_concatenate_with_a_constant_piece_gives_gradients_to_the_others_only():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    out = tg.concatenate([np.zeros((1, 2)), x, Tensor(np.zeros((1, 2)))], axis=0)
    (out * Tensor(np.arange(8.0).reshape(4, 2))).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[2, 3], [4, 5]])


def test_stack_of_different_shapes_raises():
    with pytest.raises(ValueError, match="stack"):
        tg.stack([Tensor(np.zeros(2)), Tensor(np.zeros(3))])
