"""A CIFAR-10 network for 32x32 colour images: batch norm, augmentation, a learning-rate schedule.

The net is ``tinygrad_cnn.models.cifar_net``: three stages of 3x3 convolution + BatchNorm2d +
ReLU + 2x2 max-pool (32, 64 and 128 channels), then dropout and one dense layer. Colour photos
need more than the Fashion-MNIST recipe, and this example shows the three usual additions:

* inputs normalised per channel (mean and std of the training images);
* augmentation on every batch: a random crop after padding by 4 pixels and a horizontal flip,
  so the net never sees exactly the same image twice;
* batch norm (its running statistics are used at test time, after ``model.eval()``) and a
  cosine learning-rate schedule.

The data is read from the official binary batches (``data.CIFAR10``, ``--download`` fetches
them) or from JPEG/PNG folders ``DATA_DIR/train/<class>/*`` and ``DATA_DIR/test/<class>/*``.

    python examples/cifar10.py --data-dir /tmp/cifar10    4 epochs: about 72% test accuracy, in
                                                          about 12 minutes on two (shared) cores
    python examples/cifar10.py --quick                    seconds, on embedded Fashion-MNIST images
"""
import argparse
from pathlib import Path

import tinygrad_cnn as tg
from tinygrad_cnn import data, models, optim
from tinygrad_cnn.train import channel_statistics, fit


def load_cifar10(data_dir, download: bool):
    if data_dir is not None and (Path(data_dir) / "train").is_dir():   # image folders
        return (data.ImageFolder(Path(data_dir) / "train").load_all(),
                data.ImageFolder(Path(data_dir) / "test").load_all())
    return data.CIFAR10(data_dir, train=True, download=download), data.CIFAR10(data_dir, train=False, download=download)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--download", action="store_true")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--quick", action="store_true",
                        help="1 epoch on 512 embedded Fashion-MNIST images (no CIFAR-10 needed): a smoke test")
    args = parser.parse_args()

    tg.manual_seed(0)
    epochs = args.epochs
    if args.quick:
        train_set, test_set = data.load_embedded(train=True), data.load_embedded(train=False)
        train_set = train_set.subset(slice(512))
        test_set = test_set.subset(slice(200))
        epochs = 1
    else:
        train_set, test_set = load_cifar10(args.data_dir, args.download)
    channels, height, width = train_set.images.shape[1:]
    print(f"{len(train_set):,} training and {len(test_set):,} test images of {channels}x{height}x{width}")

    mean, std = channel_statistics(train_set.images)
    augment = data.transforms.Compose([
        data.transforms.RandomCrop((height, width), padding=4),
        data.transforms.RandomHorizontalFlip(),
        data.transforms.Normalize(mean, std),
    ])
    train_loader = data.DataLoader(train_set, batch_size=128, shuffle=True, seed=0, transform=augment)
    test_loader = data.DataLoader(test_set, batch_size=500, transform=data.transforms.Normalize(mean, std))

    model = models.cifar_net(input_shape=(channels, height, width), num_classes=len(train_set.classes))
    print(model)
    print(f"{models.count_parameters(model):,} parameters")
    optimizer = optim.AdamW(model.parameters(), lr=3e-3)
    schedule = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(train_loader))
    history = fit(model, optimizer, train_loader, test_loader, epochs, scheduler=schedule)
    print(f"final test accuracy {history['test_accuracy'][-1]:.2%} after {epochs} epochs, "
          f"{sum(history['seconds']):.0f} s of training")


if __name__ == "__main__":
    main()
