"""An MLP against a CNN on the same images: what keeping the spatial structure buys.

Both nets have about the same number of parameters (~100,000) and get the same data, optimizer
and epochs. The MLP flattens each 28x28 image into 784 unrelated numbers; the CNN (the seed net)
slides small 5x5 filters over the image, so the same detector is reused at every position and
neighbouring pixels are looked at together.

Two things are printed for each net: the test accuracy, and the test accuracy on the same
images shifted by 2 pixels (right and down). The shift changes almost every one of the MLP's
784 inputs; for the convolutions it only moves their feature maps.

    python examples/mlp_vs_cnn.py            the embedded Fashion-MNIST subset, 5 epochs each
    python examples/mlp_vs_cnn.py --quick    a few seconds, to check it runs
"""
import argparse

import numpy as np

import tinygrad_cnn as tg
from tinygrad_cnn import data, models, optim
from tinygrad_cnn.train import evaluate, fit


def shifted(dataset, pixels: int):
    """The same images moved ``pixels`` right and down, the gap filled with background (0)."""
    images = np.zeros_like(dataset.images)
    images[:, :, pixels:, pixels:] = dataset.images[:, :, :-pixels, :-pixels]
    return data.ImageDataset(images, dataset.labels, dataset.classes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 epoch on 512 images: a smoke test")
    args = parser.parse_args()

    train_set, test_set = data.load_embedded(train=True), data.load_embedded(train=False)
    epochs = args.epochs
    if args.quick:
        train_set = data.ImageDataset(train_set.images[:512], train_set.labels[:512], train_set.classes)
        test_set = data.ImageDataset(test_set.images[:200], test_set.labels[:200], test_set.classes)
        epochs = 1
    normalize = data.transforms.Normalize(mean=0.2860, std=0.3530)
    test_loader = data.DataLoader(test_set, batch_size=500, transform=normalize)
    shifted_loader = data.DataLoader(shifted(test_set, 2), batch_size=500, transform=normalize)

    results = {}
    for name, build in (("MLP (784-128-10)", models.mlp), ("CNN (seed net)", models.seed_net)):
        tg.manual_seed(0)
        model = build((1, 28, 28), 10)
        # the same batches in the same order for both nets
        train_loader = data.DataLoader(train_set, batch_size=64, shuffle=True, seed=0, transform=normalize)
        optimizer = optim.Adam(model.parameters(), lr=1e-3)
        print(f"--- {name}: {models.count_parameters(model):,} parameters")
        history = fit(model, optimizer, train_loader, test_loader, epochs, progress=False)
        results[name] = (models.count_parameters(model), history["test_accuracy"][-1],
                         evaluate(model, shifted_loader)["accuracy"])

    print(f"\n{'model':<18} {'parameters':>10} {'test accuracy':>14} {'shifted by 2 px':>16}")
    for name, (parameters, accuracy, shifted_accuracy) in results.items():
        print(f"{name:<18} {parameters:>10,} {accuracy:>14.2%} {shifted_accuracy:>16.2%}")


if __name__ == "__main__":
    main()
