"""Shared pytest configuration: Hypothesis profiles, and the comparison of conv2d with PyTorch's.

- ``ci``: derandomized (the same examples every run) and bounded, so the suite fits in minutes on
  2 cores. ``.ci/run`` selects it with HYPOTHESIS_PROFILE=ci.
- ``dev`` (the default): random examples, a few more of them.
- ``thorough``: many examples, for a long local run before touching an op.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=25, derandomize=True, print_blob=True, **_common)
settings.register_profile("dev", max_examples=40, **_common)
settings.register_profile("thorough", max_examples=400, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def assert_conv2d_matches_torch():
    """A check that ``F.conv2d(x, w, b, **config.kwargs)`` gives torch's values and gradients (for
    x, w and b) in float64; the tests that use it are skipped where torch is not installed."""
    torch = pytest.importorskip("torch")
    import tinygrad_cnn.nn.functional as F
    from tinygrad_cnn import Tensor

    def check(config, x, w, b):
        tx, tw = torch.tensor(x.data, requires_grad=True), torch.tensor(w.data, requires_grad=True)
        tb = None if b is None else torch.tensor(b.data, requires_grad=True)
        expected = torch.nn.functional.conv2d(tx, tw, tb, **config.kwargs)
        out = F.conv2d(x, w, b, **config.kwargs)
        np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
        upstream = np.random.default_rng(0).standard_normal(out.shape)
        expected.backward(torch.tensor(upstream))
        (out * Tensor(upstream)).sum().backward()
        for ours, theirs in ((x, tx), (w, tw), (b, tb)):
            if ours is not None:
                np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)

    return check
