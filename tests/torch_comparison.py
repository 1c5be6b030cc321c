"""The one comparison with PyTorch the op and layer tests share: ``assert_matches_torch``.

``assert_matches_torch(ours, theirs, *inputs, upstream=None, rtol=1e-10, atol=1e-12)`` runs
``ours(*inputs)`` and ``theirs(*the same inputs as torch tensors)`` (inputs that are not Tensors,
such as dims or None, are passed to both as they are) and checks that they give the same values,
and the same gradient of ``sum(output * u)`` for every input that requires grad: ``u`` is
``upstream`` when given (one output), else a fixed random array per output. It skips the calling
test where torch is not installed: torch is a comparison, never a dependency.
"""
import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor


def _outputs(result) -> list:
    return [result] if not isinstance(result, (tuple, list)) else [o for r in result for o in _outputs(r)]


def assert_matches_torch(ours, theirs, *inputs, upstream=None, rtol=1e-10, atol=1e-12):
    torch = pytest.importorskip("torch")
    mine = [Tensor(x.data.copy(), requires_grad=x.requires_grad) if isinstance(x, Tensor) else x for x in inputs]
    twins = [torch.tensor(x.data, requires_grad=x.requires_grad) if isinstance(x, Tensor) else x for x in inputs]
    out, expected = _outputs(ours(*mine)), _outputs(theirs(*twins))
    assert len(out) == len(expected)
    rng = np.random.default_rng(0)
    pairs = []
    for o, e in zip(out, expected):
        assert o.shape == tuple(e.shape), (o.shape, tuple(e.shape))
        np.testing.assert_allclose(o.data, e.detach().numpy(), rtol=rtol, atol=atol)
        if o.requires_grad and e.requires_grad:
            u = np.asarray(upstream, dtype=o.dtype) if upstream is not None else rng.standard_normal(o.shape).astype(o.dtype)
            pairs.append((o, e, u))
    wrt = [i for i, x in enumerate(mine) if isinstance(x, Tensor) and x.requires_grad]
    if not pairs or not wrt:
        return
    ours_grads = tg.grad([o for o, _, _ in pairs], [mine[i] for i in wrt], grad_outputs=[Tensor(u) for _, _, u in pairs],
                         allow_unused=True)
    theirs_grads = torch.autograd.grad([e for _, e, _ in pairs], [twins[i] for i in wrt],
                                       [torch.tensor(u) for _, _, u in pairs], allow_unused=True)
    for i, g, t in zip(wrt, ours_grads, theirs_grads):
        g = np.zeros(mine[i].shape) if g is None else g.data
        t = np.zeros(mine[i].shape) if t is None else t.numpy()
        np.testing.assert_allclose(g, t, rtol=rtol, atol=atol, err_msg=f"the gradient of input {i}")
