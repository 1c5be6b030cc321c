"""A LeNet-style CNN, defined as a Module subclass and trained with the shared loop.

Where the seed net uses the ready-made ``models.lenet``, this example writes the same kind of
network by hand, the way one does in PyTorch: layers created in ``__init__``, the computation in
``forward``. Two 3x3 convolutions (32 and 64 filters, padding 1 so the size is kept), each
followed by ReLU and a 2x2 max-pool, then dense 128 and dense 10. Training uses
``tinygrad_cnn.train.fit`` (progress bar, evaluation each epoch) with SGD + momentum and a
cosine learning-rate schedule.

    python examples/lenet.py                 the embedded Fashion-MNIST subset, 3 epochs
    python examples/lenet.py --full          the full Fashion-MNIST, if it is installed
    python examples/lenet.py --quick         a few seconds, to check it runs
"""
import argparse

import tinygrad_cnn as tg
from tinygrad_cnn import data, nn, optim
from tinygrad_cnn.models import count_parameters
from tinygrad_cnn.train import fit


class LeNet(nn.Module):
    def __init__(self, in_channels: int = 1, image_size: int = 28, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(64 * (image_size // 4) ** 2, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x):
        x = self.pool(self.conv1(x).relu())   # (N, 32, 14, 14) for 28x28 input
        x = self.pool(self.conv2(x).relu())   # (N, 64, 7, 7)
        x = x.flatten(1)
        return self.fc2(self.fc1(x).relu())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="the full Fashion-MNIST instead of the subset")
    parser.add_argument("--quick", action="store_true", help="1 epoch on 512 images: a smoke test")
    args = parser.parse_args()

    tg.manual_seed(0)
    if args.full:
        train_set, test_set = data.FashionMNIST(train=True), data.FashionMNIST(train=False)
    else:
        train_set, test_set = data.load_embedded(train=True), data.load_embedded(train=False)
    epochs = args.epochs
    if args.quick:
        train_set = train_set.subset(slice(512))
        test_set = test_set.subset(slice(200))
        epochs = 1

    normalize = data.transforms.Normalize(mean=0.2860, std=0.3530)
    train_loader = data.DataLoader(train_set, batch_size=64, shuffle=True, seed=0, transform=normalize)
    test_loader = data.DataLoader(test_set, batch_size=256, transform=normalize)

    model = LeNet()
    print(model)
    print(f"{count_parameters(model):,} parameters")
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    schedule = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(train_loader))
    history = fit(model, optimizer, train_loader, test_loader, epochs, scheduler=schedule)
    print(f"final test accuracy {history['test_accuracy'][-1]:.2%}")


if __name__ == "__main__":
    main()
