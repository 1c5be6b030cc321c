"""Checks shared by the tests of ``nn``: the four checks of an op (``check_op``). The comparison with
torch is the suite's shared ``assert_matches_torch`` fixture (``tests/torch_comparison.py``)."""
import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor
from tinygrad_cnn.testing import check_dtype_preserved, check_gradients


@pytest.fixture(scope="session")
def check_op():
    """Forward against an independent reference (float64), gradients of order 1 and 2 (gradcheck
    and gradgradcheck in float64), and float32 in -> float32 out (``dtype=False`` skips that, for
    references computed with constants of another dtype)."""

    def check(op, expected, *inputs, rtol=1e-12, atol=1e-12, dtype=True, order=2):
        out = op(*inputs)
        assert out.shape == np.shape(expected), (out.shape, np.shape(expected))
        np.testing.assert_allclose(out.data, expected, rtol=rtol, atol=atol)
        check_gradients(op, *inputs, order=order)
        if dtype:
            check_dtype_preserved(op, *inputs, order=order)

    return check


