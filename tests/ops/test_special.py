"""``Erf``, the special-function primitive: values against ``math.erfc`` (1 - erfc, a different
routine), gradients of order 1 and 2 (the derivative 2/sqrt(pi) exp(-x^2) is written in Tensor
ops), float32 kept, and torch.erf's values and gradients."""
import math

import numpy as np
import pytest
from hypothesis import given

from tinygrad_cnn import Tensor
from tinygrad_cnn.ops.special import Erf
from tinygrad_cnn.testing import check_dtype_preserved, check_gradients
from tinygrad_cnn.testing import strategies as S


@given(x=S.tensors())
def test_erf(x):
    expected = 1 - np.vectorize(math.erfc)(x.data)
    np.testing.assert_allclose(Erf.apply(x).data, expected, rtol=1e-14, atol=1e-15)
    check_gradients(Erf.apply, x)
    check_dtype_preserved(Erf.apply, x)


@given(x=S.tensors())
def test_erf_matches_torch(x):
    torch = pytest.importorskip("torch")
    t = torch.tensor(x.data, requires_grad=True)
    expected = torch.erf(t)
    out = Erf.apply(x)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-14, atol=1e-15)
    out.backward(Tensor(np.ones(x.shape)))
    expected.backward(torch.ones(x.shape, dtype=torch.float64))
    np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-14, atol=1e-15)


def test_erf_of_a_0_d_tensor_and_of_extremes():
    assert Erf.apply(Tensor(np.array(0.5))).shape == ()
    np.testing.assert_array_equal(Erf.apply(Tensor(np.array([-np.inf, -40.0, 0.0, 40.0, np.inf]))).data, [-1, -1, 0, 1, 1])
