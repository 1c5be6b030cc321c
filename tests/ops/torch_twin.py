"""``assert_matches_torch``: an op's values and first gradients against torch's, in float64.

Skips the calling test where torch is not installed (it is a comparison, never a dependency)."""
import numpy as np
import pytest

from tinygrad_cnn import Tensor


def _outputs(result) -> list:
    return [result] if not isinstance(result, (tuple, list)) else [o for r in result for o in _outputs(r)]


def assert_matches_torch(ours, theirs, *inputs, rtol=1e-10, atol=1e-12):
    """``ours(*inputs)`` and ``theirs(*the same inputs as torch tensors)`` give the same values, and
    the same gradient of ``sum(output * u)`` (``u`` a fixed random array) for every input that
    requires grad. Inputs that are not Tensors (dims, sizes) are passed to both unchanged."""
    torch = pytest.importorskip("torch")
    mine = [Tensor(x.data.copy(), requires_grad=x.requires_grad) if isinstance(x, Tensor) else x for x in inputs]
    twins = [torch.tensor(x.data, requires_grad=x.requires_grad) if isinstance(x, Tensor) else x for x in inputs]
    out, expected = _outputs(ours(*mine)), _outputs(theirs(*twins))
    assert len(out) == len(expected)
    rng = np.random.default_rng(0)
    ours_loss, theirs_loss = [], []
    for o, e in zip(out, expected):
        assert o.shape == tuple(e.shape), (o.shape, tuple(e.shape))
        np.testing.assert_allclose(o.data, e.detach().numpy(), rtol=rtol, atol=atol)
        if o.requires_grad:
            u = rng.standard_normal(o.shape)
            ours_loss.append((o * Tensor(u)).sum())
            theirs_loss.append((e * torch.tensor(u)).sum())
    if not ours_loss:
        return
    sum(ours_loss[1:], ours_loss[0]).backward()
    sum(theirs_loss[1:], theirs_loss[0]).backward()
    for x, t in zip(mine, twins):
        if isinstance(x, Tensor) and x.requires_grad:
            expected_grad = np.zeros(x.shape) if t.grad is None else t.grad.numpy()
            got = np.zeros(x.shape) if x.grad is None else x.grad.data
            np.testing.assert_allclose(got, expected_grad, rtol=rtol, atol=atol)
