"""Sin and Cos against NumPy, with gradients of first and second order and torch's values."""
import numpy as np
import pytest
from hypothesis import given

import tinygrad_cnn as tg
from tinygrad_cnn.testing import check_dtype_preserved, check_gradients
from tinygrad_cnn.testing import strategies as S

from torch_comparison import assert_matches_torch


@pytest.mark.parametrize("name, reference", [("sin", np.sin), ("cos", np.cos)])
@given(x=S.tensors())
def test_trigonometric(name, reference, x):
    op = getattr(tg, name)
    np.testing.assert_allclose(op(x).data, reference(x.data), rtol=1e-15, atol=1e-15)
    check_gradients(op, x)
    check_dtype_preserved(op, x)
    assert_matches_torch(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), x)
