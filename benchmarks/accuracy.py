"""Accuracy targets, measured: the training command a user would type, timed, and the same
training replayed in PyTorch.

Each target is one ``python -m tinygrad_cnn train ...`` command, run as a subprocess exactly as
printed, writing its run folder under ``benchmarks/results/<target>/``. Its wall time is measured
around the whole command (start-up and data loading included) and its test accuracy read from
the run's metrics.json.

When PyTorch is installed the run is then replayed in torch (``--no-torch`` skips it): the same
architecture with the *same initial weights* (the model is rebuilt from the run's config after
the same ``manual_seed``, and its state_dict copied into the torch twin), the same batches in the
same order (our DataLoader with the same seed and transform feeds both), the same optimizer,
learning rate and schedule. Only the arithmetic differs, so the accuracies should agree to within
about one point; dropout masks come from torch's own generator.

    python benchmarks/accuracy.py                          every target (about 30 minutes)
    python benchmarks/accuracy.py embedded fashion-seed    some of them
    python benchmarks/accuracy.py --list                   the targets and their commands

The table at the end, and benchmarks/results/accuracy.json, hold the figures.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn import data, models  # noqa: E402
from tinygrad_cnn import train as training  # noqa: E402
from tinygrad_cnn.__main__ import _augmentation  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CIFAR_JPEG = Path("/tmp/cifar10")


@dataclass
class Target:
    description: str
    arguments: list
    min_accuracy: float
    max_seconds: float | None = None
    needs: list = field(default_factory=list)   # files that must exist to run it


TARGETS = {
    "embedded": Target(
        "default command: seed net on the embedded Fashion-MNIST subset",
        [], min_accuracy=0.85, max_seconds=120),
    "fashion-seed": Target(
        "seed net, full Fashion-MNIST, 2 epochs",
        ["--dataset", "fashion-mnist", "--epochs", "2", "--batch-size", "32", "--lr", "2e-3"],
        min_accuracy=0.89),
    "fashion-bn": Target(
        "2-conv net with batch norm (lenet --batch-norm), full Fashion-MNIST",
        ["--dataset", "fashion-mnist", "--model", "lenet", "--batch-norm", "--epochs", "8", "--lr", "2e-3"],
        min_accuracy=0.925),
    "cifar": Target(
        "cifar net (batch norm, augmentation), CIFAR-10 JPEG folders",
        ["--dataset", "imagefolder", "--data-dir", str(CIFAR_JPEG), "--model", "cifar", "--augment",
         "--epochs", "4", "--batch-size", "128", "--optimizer", "adamw", "--lr", "3e-3"],
        min_accuracy=0.65, max_seconds=20 * 60, needs=[CIFAR_JPEG / "train", CIFAR_JPEG / "test"]),
}


def command_for(name: str) -> list:
    return [sys.executable, "-m", "tinygrad_cnn", "train", *TARGETS[name].arguments,
            "--out", str(RESULTS / name)]


def shown(command: list) -> str:
    return " ".join(["python", *command[1:]])


def run_ours(name: str) -> dict:
    command = command_for(name)
    print(f"\n=== {name}: {TARGETS[name].description}\n$ {shown(command)}", flush=True)
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True)
    wall = time.perf_counter() - start
    metrics = json.loads((RESULTS / name / "metrics.json").read_text())
    return {"command": shown(command), "wall_seconds": wall, "accuracy": metrics["test_accuracy"],
            "epoch_accuracy": metrics["history"]["test_accuracy"],
            "images_per_second": metrics["history"]["images_per_second"], "metrics": metrics}


# ---- the PyTorch replay -------------------------------------------------------------------------


def torch_twin(model):
    """A torch.nn.Sequential with the same layers and a copy of ``model``'s weights."""
    import torch

    nn = tg.nn
    layers = []
    for layer in model:
        if isinstance(layer, nn.Conv2d):
            layers.append(torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                                          layer.padding, layer.dilation, layer.groups, bias=layer.bias is not None))
        elif isinstance(layer, nn.Linear):
            layers.append(torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None))
        elif isinstance(layer, nn.BatchNorm2d):
            layers.append(torch.nn.BatchNorm2d(layer.num_features, layer.eps, layer.momentum))
        elif isinstance(layer, nn.MaxPool2d):
            layers.append(torch.nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding))
        elif isinstance(layer, nn.ReLU):
            layers.append(torch.nn.ReLU())
        elif isinstance(layer, nn.Flatten):
            layers.append(torch.nn.Flatten())
        elif isinstance(layer, nn.Dropout):
            layers.append(torch.nn.Dropout(layer.p))
        else:
            raise TypeError(f"no torch twin for {type(layer).__name__}")
    twin = torch.nn.Sequential(*layers)
    twin.load_state_dict({key: torch.from_numpy(np.array(value)) for key, value in model.state_dict().items()})
    return twin


def torch_optimizer(torch, options: dict, params):
    lr = training.DEFAULT_LR[options["optimizer"]] if options["lr"] is None else options["lr"]
    decay = {} if options["weight_decay"] is None else {"weight_decay": options["weight_decay"]}
    if options["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, **decay)
    if options["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=lr, **decay)
    return torch.optim.AdamW(params, lr=lr, **decay)


def run_torch(metrics: dict) -> dict:
    """Replay the run described by ``metrics`` in PyTorch (see the module docstring)."""
    import torch

    config, options = metrics["config"], metrics["config"]["options"]
    seed = options["seed"]
    data_dir = options["data_dir"]
    # the CLI's order of events: seed, load data, build the model (nothing else draws in between)
    tg.manual_seed(seed)
    torch.manual_seed(seed)
    train_set = training.limit_dataset(training.load_dataset(options["dataset"], data_dir, True), options["limit"], seed)
    test_set = training.limit_dataset(training.load_dataset(options["dataset"], data_dir, False), options["limit"], seed)
    model = models.build_model(config["model"])
    twin = torch_twin(model)
    mean, std = config["normalize"]["mean"], config["normalize"]["std"]
    train_loader = data.DataLoader(train_set, options["batch_size"], shuffle=True, seed=seed,
                                   transform=_augmentation(train_set.images.shape[1:], options["augment"], mean, std))
    test_loader = data.DataLoader(test_set, 256, transform=data.transforms.Normalize(mean, std))
    optimizer = torch_optimizer(torch, options, twin.parameters())
    epochs = options["epochs"]
    scheduler = None
    if options["schedule"] == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(train_loader))

    accuracies, start = [], time.perf_counter()
    for epoch in range(epochs):
        twin.train()
        for images, labels in train_loader:
            loss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(images.data)), torch.from_numpy(labels.data))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        twin.eval()
        correct = 0
        with torch.no_grad():
            for images, labels in test_loader:
                correct += int((twin(torch.from_numpy(images.data)).argmax(1).numpy() == labels.data).sum())
        accuracies.append(correct / len(test_set))
        print(f"torch epoch {epoch + 1}/{epochs}: test accuracy {accuracies[-1]:.2%}", flush=True)
    return {"accuracy": accuracies[-1], "epoch_accuracy": accuracies, "seconds": time.perf_counter() - start}


# ---- report ------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main():
    parser = argparse.ArgumentParser(description="Measure the accuracy targets (see the module docstring).")
    parser.add_argument("targets", nargs="*", choices=[[], *TARGETS], default=[], metavar="TARGET",
                        help=f"some of: {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch replay")
    parser.add_argument("--list", action="store_true", help="print the targets and their commands, run nothing")
    parser.add_argument("--report", action="store_true", help="print the table of the last results, run nothing")
    args = parser.parse_args()
    names = args.targets or list(TARGETS)
    if args.list:
        for name in names:
            print(f"{name}: {TARGETS[name].description}\n  {shown(command_for(name))}")
        return

    RESULTS.mkdir(parents=True, exist_ok=True)
    results_file = RESULTS / "accuracy.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    if args.report:
        report(names, results, results_file)
        return
    try:
        import torch
        torch.set_num_threads(2)
    except ImportError:
        torch = None
    for name in names:
        target = TARGETS[name]
        missing = [str(path) for path in target.needs if not Path(path).exists()]
        if missing:
            print(f"\n=== {name}: skipped, missing {', '.join(missing)}")
            continue
        ours = run_ours(name)
        metrics = ours.pop("metrics")
        if torch is not None and not args.no_torch:
            print(f"--- {name}: replaying in PyTorch {torch.__version__}", flush=True)
            ours["torch"] = run_torch(metrics)
        ours["goal"] = {"min_accuracy": target.min_accuracy, "max_seconds": target.max_seconds}
        results[name] = ours
        results_file.write_text(json.dumps(results, indent=2))
    report(names, results, results_file)


def report(names: list, results: dict, results_file: Path) -> None:
    print(f"\n{'target':<13} {'accuracy':>9} {'goal':>7} {'wall s':>8} {'limit s':>8} {'torch':>8} {'diff':>6}  verdict")
    for name in names:
        if name not in results:
            continue
        result, target = results[name], TARGETS[name]
        ok = result["accuracy"] >= target.min_accuracy
        if target.max_seconds is not None:
            ok = ok and result["wall_seconds"] <= target.max_seconds
        torch_text, diff_text = "-", "-"
        if "torch" in result:
            difference = result["accuracy"] - result["torch"]["accuracy"]
            torch_text, diff_text = f"{result['torch']['accuracy']:.2%}", f"{100 * difference:+.2f}"
            ok = ok and abs(difference) <= 0.01
        limit = f"{target.max_seconds:.0f}" if target.max_seconds else "-"
        print(f"{name:<13} {result['accuracy']:>9.2%} {target.min_accuracy:>7.1%} {result['wall_seconds']:>8.1f} "
              f"{limit:>8} {torch_text:>8} {diff_text:>6}  {verdict(ok)}")
        print(f"{'':<13} $ {result['command']}")
    print(f"\nfull results: {results_file}")


if __name__ == "__main__":
    main()
