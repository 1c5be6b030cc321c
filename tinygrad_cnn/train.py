"""Training and evaluation: the loop shared by the command line, the examples and the benchmarks.

    load_dataset(name, root, train)    a dataset by its command-line name, as an ImageDataset
    limit_dataset(dataset, n, seed)    a random subset, for quick runs
    channel_statistics(images)         per-channel mean and std, for Normalize
    make_optimizer(...)                SGD, Adam or AdamW by name, with the library's defaults
    train_epoch(model, loader, ...)    one pass over the training data
    evaluate(model, loader)            loss and accuracy, in eval mode and without a graph
    predict(model, loader)             the logits of every sample, with the labels
    fit(model, ...)                    epochs of train_epoch + evaluate, returning the history
    Diverged, Interrupted              why fit stopped early: a non-finite loss, or a stop request
    Ranks                              data-parallel ranks (MPI): each batch dealt out, figures summed
    save_checkpoint / load_checkpoint  everything needed to continue a run bit for bit
    Progress                           the progress bar: tqdm on a terminal, plain lines otherwise

One training step is the usual four lines: forward, loss, backward, optimizer step. Everything
else here is bookkeeping (throughput, progress, history, checkpoints).

A run continues bit for bit from a checkpoint because the checkpoint holds every piece of state
the next epoch reads: the weights and buffers, the optimizer's moments and step counts, the
schedule's position, the history so far, and the state of the library's random generator, which
is the only generator such a run draws from (initialisation, shuffling, augmentation, dropout:
build the DataLoader without its own ``seed`` so that it shuffles from it too). A checkpoint taken
in the middle of an epoch (``Interrupted.unfinished``) adds the generator's state at the start of
that epoch and the batches done: resuming replays the loader's draws for those batches (the order,
the augmentation) without training on them, then restores the generator as it was at the stop.
"""
from __future__ import annotations

import json
import math
import sys
import time

import numpy as np

from . import data, optim
from .autograd import no_grad
from .nn import functional as F
from .random import get_rng
from .serialization import CheckpointError, load, save
from .tensor_class import Tensor

DATASETS = tuple(data.DATASETS)   # the names of data/registry.py
OPTIMIZERS = ("sgd", "adam", "adamw")
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3}

# ---- data -----------------------------------------------------------------------------------


def load_dataset(name: str, root=None, train: bool = True, download: bool = False) -> data.ImageDataset:
    """The training or test split of a dataset named as on the command line (data/registry.py)."""
    return data.load_dataset(name, root, train, download)


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

    def skip(self, batches: int, loss_sum: float) -> None:
        """Start the count after ``batches`` already done (a resumed epoch), their losses summing
        to ``loss_sum``; the speed counts only the batches from now on."""
        self.done, self.loss_sum = batches, loss_sum
        if self.bar is not None:
            self.bar.update(batches)

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


class Diverged(ArithmeticError):
    """Training produced a non-finite loss (or non-finite weights): continuing would only train on
    NaN. ``history`` holds the epochs completed before it."""

    def __init__(self, epoch: int, batch: int | None, batches: int, loss: float | None, history: dict):
        self.epoch, self.batch, self.batches, self.loss, self.history = epoch, batch, batches, loss, history
        where = (f"loss {loss} at batch {batch}/{batches} of epoch {epoch}" if batch is not None
                 else f"the weights became non-finite during epoch {epoch}")
        super().__init__(f"training diverged: {where}")


class Interrupted(Exception):
    """``should_stop()`` asked fit to stop. ``epoch`` is the epoch in progress, or the last one
    completed when the request came between epochs. ``unfinished`` (None between epochs) is what
    ``fit(..., unfinished=...)`` needs to go on from the middle of the epoch: save it with the
    model, optimizer and schedule as they are now (``save_checkpoint``)."""

    def __init__(self, epoch: int, batch: int, batches: int, history: dict, unfinished: dict | None = None):
        self.epoch, self.batch, self.batches, self.history = epoch, batch, batches, history
        self.unfinished = unfinished
        super().__init__(f"stopped during epoch {epoch} after batch {batch}/{batches}")


def _never() -> bool:
    return False


class Ranks:
    """The training loop's view of data-parallel ranks (MPI, see ``distributed.py``): each global
    batch is dealt out, rank r taking rows r, r + R, r + 2R, ...; per-batch figures (loss, correct
    answers, a stop request) are summed over the ranks, so every rank sees the same numbers and
    takes the same decisions (stop, diverged) at the same batch. The gradients themselves are
    averaged by ``nn.parallel.DistributedDataParallel`` during backward."""

    def __init__(self, rank: int, world: int):
        self.rank, self.world = rank, world

    def share(self, images: Tensor, labels: Tensor) -> tuple:
        return (Tensor(images.data[self.rank :: self.world]), Tensor(labels.data[self.rank :: self.world]))

    def total(self, *values) -> np.ndarray:
        """``values`` summed over the ranks (float64)."""
        from . import distributed

        summed = np.array(values, dtype=np.float64)
        distributed.all_reduce(summed)
        return summed

    def same_buffers(self, model) -> None:
        """Copy rank 0's buffers (BatchNorm's running statistics, which each rank updates from its
        own share of the batch) to every rank."""
        from . import distributed

        for buffer in model.buffers():
            distributed.broadcast(buffer, src=0)

    def largest(self, value: int) -> int:
        from . import distributed

        found = np.array([value], dtype=np.int64)
        distributed.all_reduce(found, distributed.ReduceOp.MAX)
        return int(found[0])


def train_epoch(model, loader, optimizer, scheduler=None, progress: Progress | None = None,
                step_losses: list | None = None, epoch: int = 1, should_stop=_never,
                unfinished: dict | None = None, ranks: Ranks | None = None) -> dict:
    """One pass over ``loader``; ``scheduler`` (if any) is stepped after every batch.
    Returns the mean loss, the accuracy on the batches as they were trained, and the speed.

    Raises ``Diverged`` on a non-finite loss, before it reaches the weights, and ``Interrupted``
    after any batch once ``should_stop()`` returns true; its ``unfinished`` given back here
    continues the epoch where it stopped."""
    model.train()
    generator = get_rng()
    if unfinished is None:
        # the generator as the epoch starts: replaying the loader from here repeats its draws
        unfinished = {"epoch": epoch, "batch": 0, "rng_at_start": generator.bit_generator.state,
                      "loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0, "step_loss": []}
        batches = iter(loader)
    else:
        # Skip the batches already trained, drawing what the loader drew for them (the order,
        # the augmentation), then take the generator on from where the run stopped. Only the
        # loader's draws are replayed; dropout's are in the restored state.
        unfinished = {**unfinished, "step_loss": list(unfinished["step_loss"])}
        generator.bit_generator.state = unfinished["rng_at_start"]
        batches = iter(loader)
        for _ in range(unfinished["batch"]):
            next(batches)
        generator.bit_generator.state = unfinished["rng"]
        if step_losses is not None:
            step_losses.extend(unfinished["step_loss"])
        if progress is not None:
            progress.skip(unfinished["batch"], sum(unfinished["step_loss"]))
    start = time.perf_counter() - unfinished["seconds"]
    for images, labels in batches:
        whole = len(labels)  # the global batch; under ranks this process trains on its share
        if ranks is not None:
            images, labels = ranks.share(images, labels)
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        correct = int((logits.data.argmax(axis=1) == labels.data).sum())
        if ranks is None:
            batch_loss, stop = loss.item(), should_stop()
        else:
            loss_sum, correct, _, stops = ranks.total(loss.item() * len(labels), correct, len(labels), should_stop())
            batch_loss, correct, stop = loss_sum / whole, int(correct), stops > 0
            if len(labels) * ranks.world != whole:  # unequal shares (a last, smaller batch):
                loss = loss * (len(labels) * ranks.world / whole)  # the average of the ranks' gradients is the batch mean's
        if not math.isfinite(batch_loss):
            raise Diverged(epoch, unfinished["batch"] + 1, len(loader), batch_loss, {})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()

        unfinished["batch"] += 1
        unfinished["loss_sum"] += batch_loss * whole
        unfinished["correct"] += correct
        unfinished["seen"] += whole
        unfinished["step_loss"].append(batch_loss)
        if step_losses is not None:
            step_losses.append(batch_loss)
        if progress is not None:
            progress.update(whole, batch_loss)
        if stop and unfinished["batch"] < len(loader):
            unfinished.update(rng=generator.bit_generator.state, seconds=time.perf_counter() - start)
            raise Interrupted(epoch, unfinished["batch"], len(loader), {}, unfinished)
    seconds = time.perf_counter() - start
    seen = unfinished["seen"]
    return {"loss": unfinished["loss_sum"] / max(seen, 1), "accuracy": unfinished["correct"] / max(seen, 1),
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


def evaluate(model, loader, ranks: Ranks | None = None) -> dict:
    """Mean cross-entropy loss and accuracy of ``model`` over ``loader`` (under ``ranks``, each
    rank takes its share of every batch and the sums are gathered)."""
    if ranks is not None:
        return _evaluate_shared(model, loader, ranks)
    logits, labels = predict(model, loader)
    loss = F.cross_entropy(Tensor(logits), Tensor(labels)).item()
    correct = int((logits.argmax(axis=1) == labels).sum())
    return {"loss": loss, "accuracy": correct / max(len(labels), 1), "correct": correct, "total": int(len(labels))}


def _evaluate_shared(model, loader, ranks: Ranks) -> dict:
    ranks.same_buffers(model)  # rank 0's running statistics, as the final evaluation on rank 0 uses
    was_training = model.training
    model.eval()
    loss_sum = correct = total = 0.0
    try:
        with no_grad():
            for images, labels in loader:
                images, labels = ranks.share(images, labels)
                if len(labels):
                    logits = model(images)
                    loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
                    correct += int((logits.data.argmax(axis=1) == labels.data).sum())
                    total += len(labels)
    finally:
        model.train(was_training)
    loss_sum, correct, total = ranks.total(loss_sum, correct, total)
    return {"loss": loss_sum / max(total, 1), "accuracy": correct / max(total, 1), "correct": int(correct),
            "total": int(total)}


HISTORY_KEYS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds",
                "images_per_second", "lr")


def new_history() -> dict:
    """One list per epoch statistic, plus ``step_loss`` (the loss of every batch)."""
    return {**{key: [] for key in HISTORY_KEYS}, "step_loss": []}


def all_finite(model) -> bool:
    return all(np.isfinite(value).all() for value in model.state_dict().values()
               if np.issubdtype(value.dtype, np.floating))


def fit(model, optimizer, train_loader, test_loader, epochs: int, scheduler=None, progress: bool = True,
        log=print, history: dict | None = None, after_epoch=None, should_stop=_never,
        unfinished: dict | None = None, ranks: Ranks | None = None) -> dict:
    """Train up to epoch ``epochs``, evaluating on ``test_loader`` after each one.

    Returns the history: one entry per epoch in each list, plus ``step_loss`` (every batch).
    ``history`` continues a run (training starts at the epoch after its last, or in the middle of
    it with the ``unfinished`` of an ``Interrupted``); ``after_epoch(history)`` is called once each
    epoch is recorded (to write a checkpoint); ``should_stop()`` is asked after every batch and
    every epoch (e.g. a flag set by a signal handler), and a true answer raises ``Interrupted``.
    A non-finite loss raises ``Diverged``. Both carry the history of the epochs completed, and
    neither lets NumPy's overflow warnings through: the loss check says it once."""
    history = new_history() if history is None else history
    for epoch in range(len(history["epoch"]) + 1, epochs + 1):
        lr = optimizer.param_groups[0]["lr"] if unfinished is None else unfinished["lr"]
        bar = Progress(len(train_loader), f"epoch {epoch}/{epochs}", enabled=progress)
        steps_before = len(history["step_loss"])
        try:
            # overflow in a diverging run is reported by the loss check, not as warnings from inside the kernels
            with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                trained = train_epoch(model, train_loader, optimizer, scheduler, bar, history["step_loss"],
                                      epoch, should_stop, unfinished, ranks)
                unfinished = None
                tested = evaluate(model, test_loader, ranks)
        except Interrupted as stop:
            stop.unfinished["lr"] = lr
            del history["step_loss"][steps_before:]  # kept in stop.unfinished until the epoch is complete
            stop.history = history
            raise
        except Diverged as stop:
            del history["step_loss"][steps_before:]  # the abandoned epoch's batches are not part of the run
            stop.history = history
            raise
        finally:
            bar.close()
        if not all_finite(model):
            del history["step_loss"][steps_before:]
            raise Diverged(epoch, None, len(train_loader), None, history)
        for key, value in (("epoch", epoch), ("train_loss", trained["loss"]), ("train_accuracy", trained["accuracy"]),
                           ("test_loss", tested["loss"]), ("test_accuracy", tested["accuracy"]),
                           ("seconds", trained["seconds"]), ("images_per_second", trained["images_per_second"]),
                           ("lr", lr)):
            history[key].append(value)
        if log is not None:
            log(f"epoch {epoch}/{epochs}: train loss {trained['loss']:.4f}, train accuracy "
                f"{trained['accuracy']:.2%}, test loss {tested['loss']:.4f}, test accuracy "
                f"{tested['accuracy']:.2%} ({trained['images_per_second']:.0f} img/s)")
        if after_epoch is not None:
            after_epoch(history)
        stop = should_stop() if ranks is None else ranks.total(should_stop())[0] > 0  # every rank decides alike
        if stop and epoch < epochs:
            raise Interrupted(epoch, len(train_loader), len(train_loader), history)
    return history


# ---- checkpoints ------------------------------------------------------------------------------
#
# One .npz (see serialization.py) per run, replaced atomically after every epoch:
#     model.<name>                  the model's state_dict
#     optimizer.<index>.<key>       the optimizer's per-parameter arrays (index as in state_dict())
#     meta                          UTF-8 JSON: optimizer hyperparameters and scalar state, schedule,
#                                   random generator state, history

CHECKPOINT_FORMAT = 1


def save_checkpoint(path, model, optimizer, scheduler, history: dict, unfinished: dict | None = None) -> None:
    """Write everything needed to continue training after the last epoch of ``history``, or from
    the middle of the next one (``unfinished``, from ``Interrupted``)."""
    arrays = {f"model.{name}": value for name, value in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    scalars = {}
    for index, values in optimizer_state["state"].items():
        for key, value in values.items():
            if isinstance(value, np.ndarray):
                arrays[f"optimizer.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value.item() if isinstance(value, np.generic) else value
    meta = {
        "format": CHECKPOINT_FORMAT,
        "optimizer": {"param_groups": optimizer_state["param_groups"], "scalars": scalars},
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "rng": get_rng().bit_generator.state,
        "history": history,
        "unfinished": unfinished,
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    save(arrays, path)


def load_checkpoint(path, model, optimizer, scheduler) -> tuple[dict, dict | None]:
    """Restore a ``save_checkpoint`` file into freshly built ``model``, ``optimizer`` and ``scheduler``
    (and the library's random generator); returns ``(history, unfinished)`` to continue with
    ``fit(..., history=history, unfinished=unfinished)``.
    Raises CheckpointError naming the file when it does not fit them."""
    model_shapes = model.state_dict()
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def expected_shape(name):
        kind, _, rest = name.partition(".")
        if name == "meta":
            return None
        if kind == "model":
            return model_shapes[rest].shape
        if kind == "optimizer":
            index = rest.partition(".")[0]
            if index.isdigit() and int(index) < len(params):
                return params[int(index)].shape
        raise KeyError(name)

    arrays = load(path, expected_shape)
    try:
        meta = json.loads(bytes(arrays.pop("meta")).decode())
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT}")
        state = {int(index): dict(values) for index, values in meta["optimizer"]["scalars"].items()}
        for name, value in arrays.items():
            if name.startswith("optimizer."):
                _, index, key = name.split(".", 2)
                state.setdefault(int(index), {})[key] = value
        model.load_state_dict({name[len("model."):]: value for name, value in arrays.items()
                               if name.startswith("model.")})
        optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
        if (scheduler is None) != (meta["scheduler"] is None):
            raise ValueError("the run's learning-rate schedule differs from the checkpoint's")
        if scheduler is not None:
            scheduler.load_state_dict(meta["scheduler"])
        get_rng().bit_generator.state = meta["rng"]
        history = meta["history"]
        if set(history) != {*HISTORY_KEYS, "step_loss"}:
            raise ValueError("its history does not have the expected entries")
        unfinished = meta["unfinished"]
        if unfinished is not None and unfinished["epoch"] != len(history["epoch"]) + 1:
            raise ValueError("its unfinished epoch does not follow its history")
    except (ValueError, KeyError, TypeError, RuntimeError, UnicodeDecodeError) as error:
        detail = " ".join(str(error).split())  # load_state_dict lists its problems on several lines
        raise CheckpointError(f"load: {str(path)!r} does not fit this run ({type(error).__name__}: {detail})") from error
    return history, unfinished
