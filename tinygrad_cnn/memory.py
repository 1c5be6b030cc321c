"""The array cache's controls for users (``tinygrad_cnn.memory.stats()`` and friends, as the README
documents them). The cache itself is a part of the fast kernels: ``tinygrad_cnn/kernels/memory.py``."""
from .kernels.memory import empty_cache, set_enabled, set_limit, stats

__all__ = ["empty_cache", "set_enabled", "set_limit", "stats"]
