"""Training and evaluation: the loop shared by the command line, the examples and the benchmarks.

    load_dataset(name, root, train)    a dataset by its command-line name, as an ImageDataset
    limit_dataset(dataset, n, seed)    a random subset, for quick runs
    channel_statistics(images)         per-channel mean and std, for Normalize
    make_optimizer(...)                SGD, Adam or AdamW by name, with the library's defaults
    train_epoch(model, loader, ...)    one pass over the training data
    evaluate(model, loader)            loss and accuracy, in eval mode and without a graph
    predict(model, loader)             the logits of every sample, with the labels
    fit(model, ...)                    epochs of train_epoch + evaluate, returning the history
    Progress                           the progress bar: tqdm on a terminal, plain lines otherwise

One training step is the usual four lines: forward, loss, backward, optimizer step. Everything
else here is bookkeeping (throughput, progress, history).
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

from . import data, optim
from .autograd import no_grad
from .nn import functional as F
from .tensor_class import Tensor

DATASETS = ("embedded", "fashion-mnist", "mnist", "cifar10", "imagefolder")
OPTIMIZERS = ("sgd", "adam", "adamw")
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3}

# ---- data -----------------------------------------------------------------------------------


def load_dataset(name: str, root=None, train: bool = True, download: bool = False) -> data.ImageDataset:
    """The training or test split of a dataset named as on the command line.

    ``imagefolder`` (and ``cifar10`` when ``root`` holds JPEG/PNG folders rather than the binary
    batches) reads ``root/train/<class>/*`` and ``root/test/<class>/*`` (``val/`` is accepted for
    the test split)."""
    if name == "embedded":
        return data.load_embedded(train)
    if name == "fashion-mnist":
        return data.FashionMNIST(root, train=train, download=download)
    if name == "mnist":
        return data.MNIST(root, train=train, download=download)
    if name == "cifar10" and not (root is not None and (Path(root) / "train").is_dir()):
        return data.CIFAR10(root, train=train, download=download)
    if name in ("imagefolder", "cifar10"):
        if root is None:
            raise data.DatasetError(f"--dataset {name} needs --data-dir: a folder with train/ and test/ "
                                    "subfolders, each holding one folder of images per class")
        return data.ImageFolder(_split_folder(Path(root), train)).load_all()
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def _split_folder(root: Path, train: bool) -> Path:
    names = ("train",) if train else ("test", "val")
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise data.DatasetError(f"{root} has no {' or '.join(n + '/' for n in names)} folder "
                            "(expected root/train/<class>/<image> and root/test/<class>/<image>)")


def limit_dataset(dataset: data.ImageDataset, limit: int | None, seed: int = 0) -> data.ImageDataset:
    """``limit`` samples drawn at random (so every class shows up), or the whole dataset."""
    if limit is None or limit >= len(dataset):
        return dataset
    chosen = np.sort(np.random.default_rng(seed).permutation(len(dataset))[:limit])
    return data.ImageDataset(dataset.images[chosen], dataset.labels[chosen], dataset.classes)


def channel_statistics(images: np.ndarray) -> tuple[list, list]:
    """Mean and standard deviation of each channel over a (N, C, H, W) array."""
    mean = images.mean(axis=(0, 2, 3), dtype=np.float64)
    std = images.std(axis=(0, 2, 3), dtype=np.float64)
    return [float(m) for m in mean], [float(max(s, 1e-6)) for s in std]


# ---- optimizers -----------------------------------------------------------------------------


def make_optimizer(name: str, params, lr: float | None = None, weight_decay: float | None = None,
                   momentum: float = 0.9):
    """An optimizer by name. ``lr=None`` takes ``DEFAULT_LR[name]``; ``weight_decay=None`` the
    optimizer's own default (0, or 0.01 for AdamW). SGD uses momentum."""
    params = list(params)
    lr = DEFAULT_LR[name] if lr is None else lr
    decay = {} if weight_decay is None else {"weight_decay": weight_decay}
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, **decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, **decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, **decay)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


# ---- progress -------------------------------------------------------------------------------


def _tqdm():
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class Progress:
    """Progress over one epoch: loss (running mean) and throughput in images per second.

    Uses tqdm when it is installed and the output is a terminal. Otherwise (tqdm missing, or the
    output going to a log file, where a redrawn bar becomes a mess) it prints a plain line about
    every tenth of the epoch. ``enabled=False`` shows nothing."""

    def __init__(self, total: int, description: str, enabled: bool = True, stream=None, lines: int = 10):
        self.total, self.description = total, description
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.done = self.images = 0
        self.loss_sum = 0.0
        self.start = time.perf_counter()
        tqdm = _tqdm() if enabled and getattr(self.stream, "isatty", lambda: False)() else None
        self.bar = tqdm(total=total, desc=description, file=self.stream, leave=True,
                        dynamic_ncols=True, unit="batch") if tqdm else None
        self.every = max(1, math.ceil(total / lines))

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / max(self.done, 1)

    @property
    def images_per_second(self) -> float:
        return self.images / max(time.perf_counter() - self.start, 1e-9)

    def update(self, images: int, loss: float) -> None:
        self.done += 1
        self.images += images
        self.loss_sum += loss
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {self.mean_loss:.4f}, {self.images_per_second:.0f} img/s", refresh=False)
            self.bar.update(1)
        elif self.done % self.every == 0 or self.done == self.total:
            print(f"{self.description}  {self.done:>{len(str(self.total))}}/{self.total}  "
                  f"loss {self.mean_loss:.4f}  {self.images_per_second:.0f} img/s", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---- the loop -------------------------------------------------------------------------------


def train_epoch(model, loader, optimizer, scheduler=None, progress: Progress | None = None,
                step_losses: list | None = None) -> dict:
    """One pass over ``loader``; ``scheduler`` (if any) is stepped after every batch.
    Returns the mean loss, the accuracy on the batches as they were trained, and the speed."""
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    for images, labels in loader:
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()

        batch_loss = loss.item()
        loss_sum += batch_loss * len(labels)
        correct += int((logits.data.argmax(axis=1) == labels.data).sum())
        seen += len(labels)
        if step_losses is not None:
            step_losses.append(batch_loss)
        if progress is not None:
            progress.update(len(labels), batch_loss)
    seconds = time.perf_counter() - start
    return {"loss": loss_sum / max(seen, 1), "accuracy": correct / max(seen, 1),
            "seconds": seconds, "images_per_second": seen / max(seconds, 1e-9)}


def predict(model, loader) -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, classes) and labels (N,) for every batch of ``loader``, in eval mode (dropout
    off, batch norm on its running statistics) and without recording a graph. The model's
    previous mode is restored."""
    was_training = model.training
    model.eval()
    logits, labels = [], []
    try:
        with no_grad():
            for batch_images, batch_labels in loader:
                logits.append(model(batch_images).data)
                labels.append(batch_labels.data)
    finally:
        model.train(was_training)
    return np.concatenate(logits), np.concatenate(labels)


def evaluate(model, loader) -> dict:
    """Mean cross-entropy loss and accuracy of ``model`` over ``loader``."""
    logits, labels = predict(model, loader)
    loss = F.cross_entropy(Tensor(logits), Tensor(labels)).item()
    correct = int((logits.argmax(axis=1) == labels).sum())
    return {"loss": loss, "accuracy": correct / max(len(labels), 1), "correct": correct, "total": int(len(labels))}


def fit(model, optimizer, train_loader, test_loader, epochs: int, scheduler=None, progress: bool = True,
        log=print) -> dict:
    """Train for ``epochs``, evaluating on ``test_loader`` after each one.

    Returns the history: one entry per epoch in each list, plus ``step_loss`` (every batch)."""
    history = {key: [] for key in ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
                                   "seconds", "images_per_second", "lr")}
    history["step_loss"] = []
    for epoch in range(1, epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        bar = Progress(len(train_loader), f"epoch {epoch}/{epochs}", enabled=progress)
        try:
            trained = train_epoch(model, train_loader, optimizer, scheduler, bar, history["step_loss"])
        finally:
            bar.close()
        tested = evaluate(model, test_loader)
        for key, value in (("epoch", epoch), ("train_loss", trained["loss"]), ("train_accuracy", trained["accuracy"]),
                           ("test_loss", tested["loss"]), ("test_accuracy", tested["accuracy"]),
                           ("seconds", trained["seconds"]), ("images_per_second", trained["images_per_second"]),
                           ("lr", lr)):
            history[key].append(value)
        if log is not None:
            log(f"epoch {epoch}/{epochs}: train loss {trained['loss']:.4f}, train accuracy "
                f"{trained['accuracy']:.2%}, test loss {tested['loss']:.4f}, test accuracy "
                f"{tested['accuracy']:.2%} ({trained['images_per_second']:.0f} img/s)")
    return history
