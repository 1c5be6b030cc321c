"""Prod against ``math.prod`` one line at a time, with gradients of first and second order;
zeros are drawn on purpose, where ``y / x`` would be the wrong gradient."""
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn.testing import check_dtype_preserved, check_gradients
from tinygrad_cnn.testing import strategies as S

from torch_comparison import assert_matches_torch

# small integers and halves, zero among them: products stay exact and zeros come up often
VALUES = st.sampled_from([-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0])


@given(data=st.data())
def test_prod_over_one_dim(data):
    x = data.draw(S.tensors(S.shapes(min_dims=1), elements=VALUES), label="x")
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim")
    keepdim = data.draw(st.booleans(), label="keepdim")
    moved = np.moveaxis(x.data, dim, -1)
    expected = np.array([math.prod(line) for line in moved.reshape(-1, moved.shape[-1])]).reshape(moved.shape[:-1])
    if keepdim:
        expected = np.expand_dims(expected, dim)
    op = lambda t: t.prod(dim, keepdim=keepdim)  # noqa: E731
    np.testing.assert_array_equal(op(x).data, expected)
    check_gradients(op, x)
    check_dtype_preserved(op, x)
    assert_matches_torch(op, lambda t: t.prod(dim, keepdim=keepdim), x)


@given(x=S.tensors(S.shapes(max_dims=2), elements=VALUES))
def test_prod_of_everything(x):
    assert tg.prod(x).item() == math.prod(x.data.ravel())
    check_gradients(lambda t: t.prod(), x)
    assert_matches_torch(lambda t: t.prod(), lambda t: t.prod(), x)
