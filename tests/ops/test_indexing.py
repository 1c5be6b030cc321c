"""Indexing along one dimension: gather, scatter_add, scatter, index_select, masked_fill, where.

Forward values against loops written out here (one element at a time, nothing shared with the
kernels), gradients of first and second order by ``check_gradients``, and torch's values and
gradients where torch is installed.
"""
import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor
from tinygrad_cnn.testing import check_dtype_preserved, check_gradients
from tinygrad_cnn.testing import strategies as S

from torch_comparison import assert_matches_torch


@st.composite
def gather_problems(draw):
    """A tensor, a dim, and an index no larger than the tensor (as torch allows) with values in range."""
    x = draw(S.tensors(S.shapes(min_dims=1)), label="x")
    dim = draw(st.integers(-x.ndim, x.ndim - 1), label="dim")
    index_shape = tuple(draw(st.integers(1, n)) if d != dim % x.ndim else draw(st.integers(1, 4))
                        for d, n in enumerate(x.shape))
    index = draw(hnp.arrays(np.int64, index_shape, elements=st.integers(0, x.shape[dim] - 1)), label="index")
    return x, dim, index


def reference_gather(x, dim, index):
    out = np.empty(index.shape)
    for position in itertools.product(*map(range, index.shape)):
        source = list(position)
        source[dim] = index[position]
        out[position] = x[tuple(source)]
    return out


def reference_scatter_add(base, dim, index, src):
    out = base.copy()
    for position in itertools.product(*map(range, index.shape)):
        target = list(position)
        target[dim] = index[position]
        out[tuple(target)] += src[position]
    return out


@given(problem=gather_problems())
def test_gather(problem):
    x, dim, index = problem
    op = lambda t: t.gather(dim, index)  # noqa: E731
    np.testing.assert_array_equal(op(x).data, reference_gather(x.data, dim % x.ndim, index))
    check_gradients(op, x)
    check_dtype_preserved(op, x)
    assert_matches_torch(lambda t: tg.gather(t, dim, Tensor(index)), lambda t: t.gather(dim, _torch_index(index)), x)


@given(problem=gather_problems(), data=st.data())
def test_scatter_add(problem, data):
    base, dim, index = problem
    src = data.draw(S.tensors(index.shape), label="src")
    op = lambda b, s: b.scatter_add(dim, index, s)  # noqa: E731
    np.testing.assert_allclose(op(base, src).data, reference_scatter_add(base.data, dim % base.ndim, index, src.data),
                               rtol=1e-12, atol=1e-12)
    check_gradients(op, base, src)
    check_dtype_preserved(op, base, src)
    assert_matches_torch(op, lambda b, s: b.scatter_add(dim, _torch_index(index), s), base, src)


def reference_scatter(base, dim, index, src):
    out = base.copy()
    for position in itertools.product(*map(range, index.shape)):
        target = list(position)
        target[dim] = index[position]
        out[tuple(target)] = src[position]
    return out


@given(data=st.data())
def test_scatter_writes_each_place_once(data):
    base = data.draw(S.tensors(S.shapes(min_dims=1)), label="base")
    dim = data.draw(st.integers(0, base.ndim - 1), label="dim")
    # distinct targets along each line (the first k of a permutation): which of two writes to one
    # place wins is unspecified in torch too
    keys = data.draw(hnp.arrays(np.float64, base.shape, elements=st.floats(0, 1), unique=True), label="keys")
    k = data.draw(st.integers(1, base.shape[dim]), label="k")
    index = np.argsort(keys, axis=dim)[(slice(None),) * dim + (slice(0, k),)]
    src = data.draw(S.tensors(index.shape), label="src")
    op = lambda b, s: b.scatter(dim, index, s)  # noqa: E731
    np.testing.assert_array_equal(op(base, src).data, reference_scatter(base.data, dim, index, src.data))
    check_gradients(op, base, src)
    check_dtype_preserved(op, base, src)
    assert_matches_torch(op, lambda b, s: b.scatter(dim, _torch_index(index), s), base, src)
    assert_matches_torch(lambda b: b.scatter(dim, index, value=2.5), lambda b: b.scatter(dim, _torch_index(index), 2.5),
                         base)


def test_scatter_with_a_repeated_index_takes_the_last_write():
    base, src = Tensor(np.zeros((2, 4)), requires_grad=True), Tensor(np.arange(1.0, 7.0).reshape(2, 3), requires_grad=True)
    index = np.array([[1, 1, 3], [0, 2, 0]])
    op = lambda b, s: b.scatter(1, index, s)  # noqa: E731
    np.testing.assert_array_equal(op(base, src).data, [[0, 2, 0, 3], [6, 0, 5, 0]])  # as torch on the CPU
    # an overwritten value has no effect, so no gradient (torch's backward gives it one all the same)
    check_gradients(op, base, src)


def test_scatter_in_place_and_repeated_indices_accumulate():
    t = tg.zeros(2, 3, dtype=tg.float64)
    t.scatter_add_(1, np.array([[0, 0, 2], [1, 1, 1]]), tg.ones(2, 3, dtype=tg.float64))
    np.testing.assert_array_equal(t.data, [[2, 0, 1], [0, 3, 0]])
    t.scatter_(0, np.array([[1, 0, 1]]), Tensor(np.array([[7.0, 8.0, 9.0]])))
    np.testing.assert_array_equal(t.data, [[2, 8, 1], [7, 3, 9]])
    assert t._version == 2


@given(data=st.data())
def test_index_select(data):
    x = data.draw(S.tensors(S.shapes(min_dims=1)), label="x")
    dim = data.draw(st.integers(0, x.ndim - 1), label="dim")
    index = np.array(data.draw(st.lists(st.integers(0, x.shape[dim] - 1), min_size=1, max_size=4)), dtype=np.int64)
    op = lambda t: t.index_select(dim, index)  # noqa: E731
    np.testing.assert_array_equal(op(x).data, np.take(x.data, index, axis=dim))
    check_gradients(op, x)
    assert_matches_torch(op, lambda t: t.index_select(dim, _torch_index(index)), x)


@given(data=st.data())
def test_masked_fill_and_where(data):
    (x_shape, y_shape, mask_shape), out_shape = data.draw(S.broadcastable_shapes(3), label="shapes")
    x = data.draw(S.tensors(np.broadcast_shapes(x_shape, mask_shape)), label="x")
    y = data.draw(S.tensors(y_shape), label="y")
    mask = data.draw(hnp.arrays(np.bool_, mask_shape), label="mask")
    fill = lambda t: t.masked_fill(Tensor(mask), -1.5)  # noqa: E731
    np.testing.assert_array_equal(fill(x).data, np.where(mask, -1.5, x.data))
    check_gradients(fill, x)
    choose = lambda a, b: tg.where(Tensor(mask), a, b)  # noqa: E731
    np.testing.assert_array_equal(choose(x, y).data, np.where(mask, x.data, y.data))
    check_gradients(choose, x, y)
    torch = __import__("pytest").importorskip("torch")
    assert_matches_torch(fill, lambda t: t.masked_fill(torch.tensor(mask), -1.5), x)
    assert_matches_torch(choose, lambda a, b: torch.where(torch.tensor(mask), a, b), x, y)


def _torch_index(index):
    import torch

    return torch.tensor(index)
