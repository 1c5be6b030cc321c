"""Checks shared by the tests of ``nn``: the four checks of an op (``check_op``) and the
comparison with torch (``matches_torch``), as fixtures."""
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


@pytest.fixture(scope="session")
def matches_torch():
    """``check(ours, theirs, *inputs)``: ``ours(*inputs)`` against ``theirs(*torch_inputs)`` in float64,
    values and the gradients with respect to every input that requires grad (for a fixed random
    upstream gradient). Inputs that are not Tensors are passed to both as they are; the tests
    that use it are skipped where torch is not installed."""
    torch = pytest.importorskip("torch")

    def check(ours, theirs, *inputs, rtol=1e-10, atol=1e-12):
        as_torch = [torch.tensor(x.data, requires_grad=x.requires_grad) if isinstance(x, Tensor) else x for x in inputs]
        out, expected = ours(*inputs), theirs(*as_torch)
        np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=rtol, atol=atol)
        wrt = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
        if not wrt or not expected.requires_grad:
            return
        upstream = np.random.default_rng(0).standard_normal(out.shape)
        grads = tg.grad(out, [inputs[i] for i in wrt], grad_outputs=Tensor(upstream), allow_unused=True)
        theirs_grads = torch.autograd.grad(expected, [as_torch[i] for i in wrt], torch.tensor(upstream), allow_unused=True)
        for i, g, t in zip(wrt, grads, theirs_grads):
            g = np.zeros(inputs[i].shape) if g is None else g.data
            t = np.zeros(inputs[i].shape) if t is None else t.numpy()
            np.testing.assert_allclose(g, t, rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")

    return check
