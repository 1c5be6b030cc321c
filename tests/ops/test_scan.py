"""Cumsum against a running sum written out here, with gradients of first and second order."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn.testing import check_dtype_preserved, check_gradients
from tinygrad_cnn.testing import strategies as S

from torch_comparison import assert_matches_torch


@given(data=st.data())
def test_cumsum(data):
    x = data.draw(S.tensors(S.shapes(min_dims=1)), label="x")
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim")
    moved = np.moveaxis(x.data, dim, 0)
    running = np.stack([moved[: i + 1].sum(axis=0) for i in range(len(moved))])
    op = lambda t: t.cumsum(dim)  # noqa: E731
    np.testing.assert_allclose(op(x).data, np.moveaxis(running, 0, dim), rtol=1e-12, atol=1e-12)
    check_gradients(op, x)
    check_dtype_preserved(op, x)
    assert_matches_torch(lambda t: tg.cumsum(t, dim), lambda t: t.cumsum(dim), x)


def test_cumsum_of_integers_is_int64_as_torch():
    assert tg.tensor([1, 2, 3], dtype=tg.int32).cumsum(0).dtype == tg.int64
