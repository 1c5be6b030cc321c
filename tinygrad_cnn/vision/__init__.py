"""Computer-vision helpers shaped like torchvision: ``import tinygrad_cnn.vision as torchvision``.

- ``datasets``: ``MNIST``, ``FashionMNIST``, ``CIFAR10``, ``ImageFolder`` giving one
  ``(image, label)`` sample at a time (a PIL image, as torchvision), with ``transform`` and
  ``target_transform``; read by the readers of ``tinygrad_cnn.data``
- ``transforms``: per-sample ``Compose``, ``ToTensor``, ``Normalize``, ``RandomCrop``,
  ``RandomHorizontalFlip``, ``Resize``, ``CenterCrop``, ``Lambda``
- ``utils``: ``make_grid``

Batch with ``tinygrad_cnn.utils.data.DataLoader``. The command-line trainer does not come this
way: it batches the array datasets of ``tinygrad_cnn.data`` directly (see ``utils/data.py``).
"""
from . import datasets, transforms, utils

__all__ = ["datasets", "transforms", "utils"]
