"""The model zoo: the networks the command line and the examples train.

    seed_net    the article's net: conv 5x5 (8) -> relu -> conv 5x5 (8) -> relu -> max-pool 2
                -> flatten -> dense 128 -> relu -> dense 10
    lenet       LeNet-style: conv 3x3 (32) -> relu -> pool -> conv 3x3 (64) -> relu -> pool
                -> dense 128 -> relu -> dense 10
    cifar_net   a small VGG-style net with batch norm, for 32x32 colour images
    mlp         a fully connected baseline with no notion of space (examples/mlp_vs_cnn.py)

Every builder takes the input shape as ``(channels, height, width)``, so one architecture serves
28x28 grey and 32x32 colour images alike: the size of the first dense layer is worked out from the
shape. ``seed_net`` and ``lenet`` take ``batch_norm=True`` to put a BatchNorm2d after each
convolution (the "2-conv net with batch norm" of the benchmarks).

A run folder stores the dict made by ``model_config`` next to the weights, and
``build_model(config)`` rebuilds the same network from it.
"""
from . import nn

# The input shape of the datasets the zoo is tuned for: (channels, height, width).
FASHION_MNIST_SHAPE = (1, 28, 28)
CIFAR10_SHAPE = (3, 32, 32)


def _conv_block(in_channels: int, out_channels: int, kernel_size: int, padding: int, batch_norm: bool) -> list:
    """Convolution (+ batch norm) + ReLU. With batch norm the convolution's bias is left out: the
    norm subtracts the channel mean, which would cancel it anyway."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=not batch_norm)
    return [conv, nn.BatchNorm2d(out_channels), nn.ReLU()] if batch_norm else [conv, nn.ReLU()]


def _after_conv(size: int, kernel_size: int, padding: int) -> int:
    return size + 2 * padding - kernel_size + 1


def seed_net(input_shape=FASHION_MNIST_SHAPE, num_classes: int = 10, batch_norm: bool = False) -> nn.Sequential:
    """The article's CNN: two 5x5 convolutions with 8 filters each, one 2x2 max-pool, then a
    dense layer of 128 units. About 105,000 parameters on 28x28 images, 98% of them in the
    first dense layer."""
    channels, height, width = input_shape
    for _ in range(2):
        height, width = _after_conv(height, 5, 0), _after_conv(width, 5, 0)
    flat = 8 * (height // 2) * (width // 2)
    return nn.Sequential(
        *_conv_block(channels, 8, 5, 0, batch_norm),
        *_conv_block(8, 8, 5, 0, batch_norm),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


def lenet(input_shape=FASHION_MNIST_SHAPE, num_classes: int = 10, batch_norm: bool = False) -> nn.Sequential:
    """A LeNet-style CNN: 3x3 convolutions with padding 1 keep the size, each 2x2 pool halves it."""
    channels, height, width = input_shape
    flat = 64 * (height // 4) * (width // 4)
    return nn.Sequential(
        *_conv_block(channels, 32, 3, 1, batch_norm),
        nn.MaxPool2d(2),
        *_conv_block(32, 64, 3, 1, batch_norm),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


def cifar_net(input_shape=CIFAR10_SHAPE, num_classes: int = 10, batch_norm: bool = True,
              widths=(32, 64, 128)) -> nn.Sequential:
    """A small VGG-style net: per stage, 3x3 convolution + batch norm + ReLU, then a 2x2 max-pool
    (three stages take 32x32 to 4x4), then dropout and one dense layer. Sized to train on CIFAR-10
    on two CPU cores in minutes; ``batch_norm`` is always on unless asked otherwise, since
    without it this net trains much more slowly."""
    channels, height, width = input_shape
    layers = []
    for out_channels in widths:
        layers += _conv_block(channels, out_channels, 3, 1, batch_norm)
        layers.append(nn.MaxPool2d(2))
        channels, height, width = out_channels, height // 2, width // 2
    layers += [nn.Flatten(), nn.Dropout(0.25), nn.Linear(channels * height * width, num_classes)]
    return nn.Sequential(*layers)


def mlp(input_shape=FASHION_MNIST_SHAPE, num_classes: int = 10, hidden=(128,)) -> nn.Sequential:
    """Flatten the image and use dense layers only: every pixel is an unrelated input feature."""
    channels, height, width = input_shape
    layers, features = [nn.Flatten()], channels * height * width
    for units in hidden:
        layers += [nn.Linear(features, units), nn.ReLU()]
        features = units
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)


MODELS = {"seed": seed_net, "lenet": lenet, "cifar": cifar_net, "mlp": mlp}
TITLES = {"seed": "seed CNN", "lenet": "LeNet-style CNN", "cifar": "CIFAR CNN", "mlp": "MLP"}


def model_config(name: str, input_shape, num_classes: int, batch_norm: bool | None = None) -> dict:
    """What ``build_model`` needs to rebuild a network, as plain JSON-friendly values.
    ``batch_norm=None`` means the architecture's default."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    config = {"name": name, "input_shape": [int(n) for n in input_shape], "num_classes": int(num_classes)}
    if batch_norm is not None and name != "mlp":
        config["batch_norm"] = bool(batch_norm)
    return config


def describe(config: dict) -> str:
    """A title for figures and messages, e.g. "LeNet-style CNN with batch norm"."""
    batch_norm = config.get("batch_norm") and config["name"] != "cifar"
    return TITLES[config["name"]] + (" with batch norm" if batch_norm else "")


def check_config(config) -> None:
    """Raise ValueError saying what is wrong when ``config`` is not a dict ``build_model`` can use
    (it may come from a config.json someone edited)."""
    if not isinstance(config, dict):
        raise ValueError(f"a model config must be a dict, got {type(config).__name__}")
    missing = [key for key in ("name", "input_shape", "num_classes") if key not in config]
    if missing:
        raise ValueError(f"the model config has no {', '.join(repr(key) for key in missing)}")
    if config["name"] not in MODELS:
        raise ValueError(f"unknown model {config['name']!r}; choose one of {', '.join(MODELS)}")
    shape = config["input_shape"]
    if not (isinstance(shape, list | tuple) and len(shape) == 3
            and all(isinstance(n, int) and not isinstance(n, bool) and 0 < n <= 4096 for n in shape)):
        raise ValueError(f"the model's input_shape must be [channels, height, width] of positive whole numbers, "
                         f"got {shape!r}")
    classes = config["num_classes"]
    if not (isinstance(classes, int) and not isinstance(classes, bool) and 0 < classes <= 100_000):
        raise ValueError(f"the model's num_classes must be a positive whole number, got {classes!r}")
    if not isinstance(config.get("batch_norm", False), bool):
        raise ValueError(f"the model's batch_norm must be true or false, got {config['batch_norm']!r}")
    extra = set(config) - {"name", "input_shape", "num_classes", "batch_norm"}
    if extra:
        raise ValueError(f"the model config has unknown entries {', '.join(sorted(map(repr, extra)))}")


def build_model(config: dict) -> nn.Sequential:
    """The network described by a ``model_config`` dict (freshly initialised). A config that does
    not describe one is a ValueError naming the problem (see ``check_config``)."""
    check_config(config)
    builder = MODELS[config["name"]]
    options = {"batch_norm": config["batch_norm"]} if "batch_norm" in config else {}
    return builder(tuple(config["input_shape"]), config["num_classes"], **options)


def count_parameters(model) -> int:
    """Number of trainable numbers in ``model``."""
    return sum(param.numel() for param in model.parameters() if param.requires_grad)
