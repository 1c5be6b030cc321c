"""Utilities at torch's paths.

- ``checkpoint``: ``checkpoint(fn, *args)`` recomputes a block's forward during backward instead
  of keeping its activations
"""
from . import checkpoint

__all__ = ["checkpoint"]
