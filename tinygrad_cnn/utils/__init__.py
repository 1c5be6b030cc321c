"""Utilities at torch's paths: ``tinygrad_cnn.utils.data`` is ``torch.utils.data``.

- ``data``: ``Dataset``, ``TensorDataset``, ``ImageDataset``, samplers, ``default_collate`` and the
  ``DataLoader`` that turns a dataset into batches of Tensors
- ``checkpoint``: ``checkpoint(fn, *args)`` recomputes a block's forward during backward instead
  of keeping its activations
"""
from . import checkpoint, data

__all__ = ["checkpoint", "data"]
