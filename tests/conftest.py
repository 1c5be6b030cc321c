"""Shared pytest configuration: Hypothesis profiles, the kernel set in the report header, and the
comparison of an op with PyTorch's.

Hypothesis profiles (HYPOTHESIS_PROFILE):

- ``ci``: derandomized (the same examples every run) and bounded, so the suite fits in minutes on
  2 cores. ``.ci/run`` selects it with HYPOTHESIS_PROFILE=ci.
- ``dev`` (the default): random examples, a few more of them.
- ``thorough``: many examples, for a long local run before touching an op.

Kernels: ``TINYGRAD_CNN_KERNELS=reference`` runs every op on the plain kernels of
``tinygrad_cnn/kernels/reference.py`` (CI runs ``tests/ops`` once that way); the header of the
report says which set ran.
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


def pytest_report_header(config):
    from tinygrad_cnn import kernels

    return f"tinygrad_cnn kernels: {kernels.active().__name__.rsplit('.', 1)[-1]}"


@pytest.fixture(scope="session")
def assert_matches_torch():
    """``check(ours, theirs, *inputs, upstream=None, rtol=1e-10, atol=1e-12)``: ``ours(*inputs)`` on
    Tensors and ``theirs(torch, *inputs)`` on torch tensors with the same values give the same
    output and, for the same upstream gradient (drawn from a fixed seed when not given), the same
    gradient for every input that requires one. ``None`` inputs pass through as None. The tests
    that use it are skipped where torch is not installed."""
    torch = pytest.importorskip("torch")
    from tinygrad_cnn import Tensor

    def check(ours, theirs, *inputs, upstream=None, rtol=1e-10, atol=1e-12):
        mirrored = [None if t is None else torch.tensor(t.data, requires_grad=t.requires_grad) for t in inputs]
        for t in inputs:
            if t is not None:
                t.grad = None
        expected, out = theirs(torch, *mirrored), ours(*inputs)
        np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=rtol, atol=atol)
        if upstream is None:
            upstream = np.random.default_rng(0).standard_normal(out.shape).astype(out.dtype)
        expected.backward(torch.tensor(upstream))
        out.backward(Tensor(upstream))
        for t, mirror in zip(inputs, mirrored):
            if t is not None and t.requires_grad:
                np.testing.assert_allclose(t.grad.data, mirror.grad.numpy(), rtol=rtol, atol=atol)

    return check


@pytest.fixture(scope="session")
def assert_conv2d_matches_torch(assert_matches_torch):
    """``check(config, x, w, b)``: ``F.conv2d(x, w, b, **config.kwargs)`` against torch's, in float64."""
    import tinygrad_cnn.nn.functional as F

    def check(config, x, w, b):
        assert_matches_torch(lambda *t: F.conv2d(*t, **config.kwargs),
                             lambda torch, *t: torch.nn.functional.conv2d(*t, **config.kwargs), x, w, b)

    return check
