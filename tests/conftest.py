"""Shared pytest configuration: Hypothesis profiles.

- ``ci``: derandomized (the same examples every run) and bounded, so the suite fits in minutes on
  2 cores. ``.ci/run`` selects it with HYPOTHESIS_PROFILE=ci.
- ``dev`` (the default): random examples, a few more of them.
- ``thorough``: many examples, for a long local run before touching an op.
"""
import os

from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=25, derandomize=True, print_blob=True, **_common)
settings.register_profile("dev", max_examples=40, **_common)
settings.register_profile("thorough", max_examples=400, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
