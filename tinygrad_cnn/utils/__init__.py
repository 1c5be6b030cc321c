"""Utilities at torch's paths: ``tinygrad_cnn.utils.data`` is ``torch.utils.data``.

- ``data``: ``Dataset``, ``TensorDataset``, ``ImageDataset``, samplers, ``default_collate`` and the
  ``DataLoader`` that turns a dataset into batches of Tensors
"""
from . import data

__all__ = ["data"]
