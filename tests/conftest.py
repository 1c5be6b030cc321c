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

Kernel choices: the fast kernels may time two methods on the host and keep the faster
(``tinygrad_cnn/kernels/tuning.py``); the suite runs on the fixed rules instead
(``TINYGRAD_CNN_TUNING=fixed`` unless set), so that no test's method depends on the host's timings
and no test writes to the user's cache folder. Each method is forced where it is tested
(``tests/kernels/test_twins.py``), and timing and keeping choices are tested in
``tests/kernels/test_tuning.py``.
"""
import os

import pytest
from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
os.environ.setdefault("TINYGRAD_CNN_TUNING", "fixed")

settings.register_profile("ci", max_examples=25, derandomize=True, print_blob=True, **_common)
settings.register_profile("dev", max_examples=40, **_common)
settings.register_profile("thorough", max_examples=400, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_report_header(config):
    from tinygrad_cnn import kernels

    return f"tinygrad_cnn kernels: {kernels.active().__name__.rsplit('.', 1)[-1]}"


@pytest.fixture(scope="session")
def assert_matches_torch():
    """The shared comparison with torch (``tests/torch_comparison.py``), as a fixture."""
    from torch_comparison import assert_matches_torch as check

    return check


@pytest.fixture(scope="session")
def assert_conv2d_matches_torch(assert_matches_torch):
    """``check(config, x, w, b)``: ``F.conv2d(x, w, b, **config.kwargs)`` against torch's, in float64."""
    import tinygrad_cnn.nn.functional as F

    def check(config, x, w, b):
        torch = pytest.importorskip("torch")
        assert_matches_torch(lambda *t: F.conv2d(*t, **config.kwargs),
                             lambda *t: torch.nn.functional.conv2d(*t, **config.kwargs), x, w, b)

    return check
