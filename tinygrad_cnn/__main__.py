"""The command line: ``python -m tinygrad_cnn`` (or ``tinygrad-cnn`` once installed).

    train      train a model, writing a run folder (weights, config, metrics, figures)
    evaluate   test accuracy of a run's model
    predict    top classes for image files (PNG/JPEG) or .npy arrays

A run folder (``runs/<timestamp>`` unless ``--out`` is given; never an existing run unless
``--force``) holds:

    model.npz        the weights (tinygrad_cnn.save of the model's state_dict)
    checkpoint.npz   weights, optimizer, schedule, random state and history: what --resume needs
    config.json      what is needed to rebuild and feed the model: architecture, input shape,
                     class names, the normalisation of the inputs, the dataset it was trained on
    metrics.json     per-epoch loss and accuracy, final test accuracy, wall time, all options
                     (strict JSON: a value that is not a finite number is written as null)
    curves.png, filters.png, activations.png, confusion.png, predictions.png   (with matplotlib)

The weights, the checkpoint and the metrics are replaced atomically at the end of every epoch, so
an interrupted run (Ctrl-C, SIGTERM, a full disk) keeps its last epoch, and
``train --resume RUN_DIR`` continues it to the same weights, bit for bit, as a run never stopped.

Problems a user can cause (a bad option, a damaged file, an unwritable folder, a diverging run)
are reported as one line on stderr and a non-zero exit status: 2 for a bad option, 1 otherwise
(128 + the signal number for an interrupted run). A traceback means a bug in the library.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np

import tinygrad_cnn as tg

from . import data, figures, models, optim
from . import train as training
from . import distributed
from .autograd import no_grad
from .environment import EnvironmentVariableError
from .nn.parallel import DistributedDataParallel
from .nn import functional as F
from .serialization import CheckpointError
from .tensor_class import Tensor

CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE, CHECKPOINT_FILE = "config.json", "metrics.json", "model.npz", "checkpoint.npz"
CONFIG_SIZE_LIMIT = 16 * 2**20
FIGURE_FILES = ("curves.png", "filters.png", "activations.png", "confusion.png", "predictions.png")
RUN_FILES = (CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE, CHECKPOINT_FILE, *FIGURE_FILES)


class UsageError(Exception):
    """A problem with the options given: reported as one line, without a traceback (exit status 2)."""


class RunError(Exception):
    """A problem with a file, a folder or the run itself (damaged config, unwritable folder,
    divergence): reported as one line, without a traceback (exit status 1)."""


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """ "1 epoch", "3 epochs", "1 batch", "2 batches": the noun in the number it needs."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"

# Chosen so that the default command (the seed net on the embedded Fashion-MNIST subset) reaches
# about 87% test accuracy in well under two minutes on two cores: see benchmarks/accuracy.py.
DEFAULT_EPOCHS, DEFAULT_BATCH_SIZE, DEFAULT_OPTIMIZER = 8, 64, "adam"

# ---- argument parsing -------------------------------------------------------------------------


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}") from None
        if not value > 0 or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
        return value
    return parse


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number, zero or positive, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2**63 - 1, got {text!r}")
    return value


class _HelpFormatter(argparse.HelpFormatter):
    """Shows "(default: ...)" only where there is a default worth showing (not None, not off)."""

    def _get_help_string(self, action):
        text = action.help or ""
        hidden = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "%(default)" not in text and not hidden and action.option_strings:
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tinygrad_cnn",
        description="Train, evaluate and use convolutional networks built with tinygrad_cnn (NumPy only).",
        epilog="Run 'python -m tinygrad_cnn COMMAND --help' for the options of a command. "
               "Quick start: 'python -m tinygrad_cnn train' trains the seed CNN on the Fashion-MNIST "
               "subset shipped with the package, in about a minute.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    formatter = _HelpFormatter

    train = commands.add_parser(
        "train", help="train a model and write a run folder", formatter_class=formatter,
        description="Train a model, evaluating on the test split after every epoch. Writes model.npz, "
                    "config.json, metrics.json and PNG figures to the run folder.")
    source = train.add_argument_group("data")
    source.add_argument("--dataset", choices=list(data.DATASETS), default="embedded",
                        help="; ".join(f"{name}: {entry.description}" for name, entry in data.DATASETS.items()))
    source.add_argument("--data-dir", type=Path, default=None,
                        help="folder holding the dataset files (default: the usual places, "
                             f"${data.DATA_ENV_VAR}, the user cache, system folders)")
    source.add_argument("--download", action="store_true", help="download the dataset if it is not found")
    source.add_argument("--limit", type=_positive(int), default=None, metavar="N",
                        help="train on N random training images (and test on at most N) for a quick run")
    source.add_argument("--augment", action="store_true",
                        help="augment the training images: random shifts by up to 2 pixels (4 and "
                             "horizontal flips for colour images)")
    net = train.add_argument_group("model")
    net.add_argument("--model", choices=[name for name in models.MODELS], default="seed",
                     help="seed: the article's 2-conv net; lenet: conv32-pool-conv64-pool-fc128; "
                          "cifar: small VGG-style net with batch norm; mlp: no convolutions")
    net.add_argument("--batch-norm", action="store_true",
                     help="add BatchNorm2d after each convolution of seed or lenet (cifar always has it)")
    fitting = train.add_argument_group("optimisation")
    fitting.add_argument("--epochs", type=_positive(int), default=DEFAULT_EPOCHS, help="passes over the training set")
    fitting.add_argument("--batch-size", type=_positive(int), default=DEFAULT_BATCH_SIZE, help="images per step")
    fitting.add_argument("--optimizer", choices=training.OPTIMIZERS, default=DEFAULT_OPTIMIZER,
                         help="sgd uses momentum 0.9")
    fitting.add_argument("--lr", type=_positive(float), default=None,
                         help="learning rate (default: " + ", ".join(f"{k} {v:g}" for k, v in training.DEFAULT_LR.items()) + ")")
    fitting.add_argument("--weight-decay", type=_non_negative_float, default=None,
                         help="L2 penalty for sgd and adam, decoupled decay for adamw "
                              "(default: 0, and 0.01 for adamw)")
    fitting.add_argument("--schedule", choices=("cosine", "constant"), default="cosine",
                         help="cosine: the learning rate falls to zero over the run, batch by batch")
    fitting.add_argument("--seed", type=_seed, default=0, help="seeds initialisation, shuffling, dropout, augmentation")
    output = train.add_argument_group("output")
    output.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="run folder (default: runs/<timestamp>, with a suffix if that exists); "
                             "an existing run is refused unless --force")
    output.add_argument("--force", action="store_true", help="replace the run already in --out")
    output.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                        help="continue an interrupted run from its last epoch, with the run's own options "
                             "(only --epochs, --no-figures and --no-progress may be given with it)")
    output.add_argument("--no-figures", action="store_true", help="do not draw the PNG figures")
    output.add_argument("--no-progress", action="store_true", help="no progress bar, only one line per epoch "
                        "(the bar is tqdm's on a terminal, plain lines otherwise)")

    evaluate = commands.add_parser(
        "evaluate", help="test accuracy of a trained model", formatter_class=formatter,
        description="Accuracy of a trained model on the test split of the dataset it was trained on "
                    "(or of --dataset), with the accuracy of each class.")
    evaluate.add_argument("checkpoint", type=Path, metavar="CHECKPOINT",
                          help="a run folder written by 'train', or the model.npz inside it")
    evaluate.add_argument("--dataset", choices=list(data.DATASETS), default=None, help="default: the run's dataset")
    evaluate.add_argument("--data-dir", type=Path, default=None, help="default: the run's data folder")
    evaluate.add_argument("--limit", type=_positive(int), default=None, metavar="N", help="use N random test images")
    evaluate.add_argument("--batch-size", type=_positive(int), default=256, help="images per forward pass")

    predict = commands.add_parser(
        "predict", help="classify image files with a trained model", formatter_class=formatter,
        description="Print the most likely classes of each image. Images are converted to the model's "
                    "channels (grey or RGB) and resized to its input size. The model sees what it was "
                    "trained on: Fashion-MNIST items are light on a black background.")
    predict.add_argument("checkpoint", type=Path, metavar="CHECKPOINT",
                         help="a run folder written by 'train', or the model.npz inside it")
    predict.add_argument("images", type=Path, nargs="+", metavar="IMAGE",
                         help="PNG or JPEG file, or a .npy array: (H, W), (H, W, C) or (C, H, W), "
                              "uint8 in 0-255 or float in [0, 1]")
    predict.add_argument("--top", type=_positive(int), default=3, help="how many classes to show")
    return parser


# ---- train ----------------------------------------------------------------------------------


def _augmentation(images_shape, augment: bool, mean, std):
    """The batch transform: optional random crop/flip, then per-channel normalisation."""
    steps = []
    if augment:
        channels, height, width = images_shape
        colour = channels == 3
        # shifts of up to 4 pixels are the usual CIFAR-10 recipe; centred grey items need less
        steps.append(data.transforms.RandomCrop((height, width), padding=4 if colour else 2))
        if colour:  # mirrored photos are still photos; a mirrored digit is not
            steps.append(data.transforms.RandomHorizontalFlip())
    steps.append(data.transforms.Normalize(mean, std))
    return data.transforms.Compose(steps)


def _existing_run(out: Path | None, force: bool) -> list:
    """The run files already in ``--out`` (to be replaced, with ``--force``); refuses what cannot
    become a run folder. Checked before the data is loaded, so a mistake costs no time."""
    if out is None:
        return []
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder: choose another path")
    existing = [name for name in RUN_FILES if (out / name).exists()] if out.is_dir() else []
    if existing and not force:
        raise UsageError(f"--out {out} already holds a run ({', '.join(existing)}): pass --force to replace it, "
                         f"--resume {out} to continue it, or choose another folder")
    return existing


def _run_folder(out: Path | None, force: bool) -> Path:
    """A new, writable run folder. The default ``runs/<timestamp>`` takes a suffix (-2, -3, ...)
    when that name is taken, by this process or another: ``os.mkdir`` creates it or fails, with
    no moment in between where two runs could both claim it."""
    if out is not None:
        existing = _existing_run(out, force)
        try:
            out.mkdir(parents=True, exist_ok=True)
            for name in existing:  # --force: nothing of the old run may be mistaken for the new one
                (out / name).unlink()
        except OSError as error:
            raise RunError(f"cannot create the run folder {out} ({error.strerror or error}): choose another --out")
        folder = out
    else:
        stamp = Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            for attempt in range(1, 10_000):
                folder = stamp if attempt == 1 else stamp.with_name(f"{stamp.name}-{attempt}")
                try:
                    folder.mkdir()
                    break
                except FileExistsError:
                    continue
        except OSError as error:
            raise RunError(f"cannot create a run folder in {stamp.parent.resolve()} ({error.strerror or error}): "
                           "pass --out DIR to write elsewhere")
    _check_writable(folder)
    try:  # claim the folder: of two runs given the same --out at once, only one creates this file
        os.close(os.open(folder / CONFIG_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        raise UsageError(f"--out {folder}: another run started writing there just now; choose another folder") from None
    return folder


def _hold_the_run(folder: Path):
    """Take the run folder's lock for as long as this process trains it (released when the process
    ends): a second ``train --resume`` of the same folder, or any other process training into it,
    is refused instead of mixing its files with this one's."""
    import fcntl

    handle = open(folder / ".lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise UsageError(f"{folder} is being trained by another process right now: wait for it to finish "
                         "(or stop it with Ctrl-C), then --resume") from None
    return handle


def _check_environment() -> None:
    """Read the variables the first op would read, before anything is written: a bad value is one
    line and leaves no half-made run folder behind."""
    from .kernels import active, memory

    active()
    memory._limit_from_environment()


def _check_writable(folder: Path) -> None:
    """Fail before training, not after it, when the run folder cannot be written."""
    probe = folder / f".write-test-{os.getpid()}-{threading.get_ident()}"
    try:
        probe.write_bytes(b"0" * 4096)
        probe.unlink()
    except OSError as error:
        raise RunError(f"cannot write to the run folder {folder} ({error.strerror or error}): "
                       "choose another --out, or free some space") from None


def _write(path: Path, write) -> None:
    """Run ``write(path)``; a failure (full disk, folder removed, ...) becomes one line that says
    what the run folder still holds."""
    try:
        write(path)
    except OSError as error:
        raise RunError(f"cannot write {path} ({error.strerror or error}); the files saved before stay "
                       f"loadable: free some space and continue with --resume {path.parent}") from None


def _write_json(path: Path, value) -> None:
    """Strict JSON, written atomically: NaN and infinities (of a diverging run) become null."""
    text = json.dumps(_finite_or_null(value), indent=2, allow_nan=False)

    def write(target: Path) -> None:
        partial = target.with_name(target.name + ".partial")
        try:
            with open(partial, "w") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, target)
        finally:
            if partial.exists():
                partial.unlink()
    _write(path, write)


def _finite_or_null(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    return value


class StopRequest:
    """Set by SIGINT or SIGTERM: training finishes the batch in progress, keeps the checkpoint of
    the last completed epoch and stops. A second signal stops at once (KeyboardInterrupt)."""

    def __init__(self, quiet: bool = False):
        self.signal, self.quiet = None, quiet  # quiet: an MPI rank other than 0 (rank 0 speaks)

    def __call__(self) -> bool:
        return self.signal is not None

    def handle(self, signum, frame):
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum
        if not self.quiet:
            print(f"\n{signal.Signals(signum).name}: stopping after this batch (send it again to stop at once)",
                  file=sys.stderr, flush=True)

    def __enter__(self):
        self.previous = {}
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(self, *exc_info):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


RESUMABLE = ("epochs", "no_figures", "no_progress")


def _resumed_options(args) -> argparse.Namespace:
    """The options of the run in ``args.resume``, with the few that may change on resuming."""
    folder = args.resume
    config = _read_config(folder / CONFIG_FILE, folder)
    defaults = vars(build_parser().parse_args(["train"]))
    changed = [name for name, value in vars(args).items()
               if name not in (*RESUMABLE, "resume", "command", "ranks") and value != defaults.get(name)]
    if changed:
        raise UsageError(f"--resume continues a run with its own options; drop {', '.join('--' + n.replace('_', '-') for n in changed)}")
    options = dict(defaults)
    saved = config.get("options")
    if not isinstance(saved, dict):
        raise RunError(f"{folder / CONFIG_FILE} has no \"options\": it was not written by this version's train")
    options.update({name: value for name, value in saved.items() if name in defaults})
    _check_saved_options(options, folder / CONFIG_FILE)
    for name in ("data_dir", "out"):
        options[name] = Path(options[name]) if options[name] is not None else None
    if args.epochs != defaults["epochs"]:
        options["epochs"] = args.epochs
    options.update(no_figures=args.no_figures or options["no_figures"], no_progress=args.no_progress,
                   resume=folder, out=folder, force=False, ranks=getattr(args, "ranks", None))
    return argparse.Namespace(**options)


def _check_saved_options(options: dict, path: Path) -> None:
    """The options read back from a run's config.json pass the checks the command line makes."""
    def choice(*allowed):
        def check(text):
            if text not in allowed:
                raise argparse.ArgumentTypeError(f"expected one of {', '.join(allowed)}")
            return text
        return check
    checks = {"epochs": _positive(int), "batch_size": _positive(int), "limit": _positive(int),
              "lr": _positive(float), "weight_decay": _non_negative_float, "seed": _seed,
              "dataset": choice(*training.DATASETS), "model": choice(*models.MODELS),
              "optimizer": choice(*training.OPTIMIZERS), "schedule": choice("cosine", "constant")}
    for name, value in options.items():
        problem = None
        if name in ("download", "augment", "batch_norm", "no_figures", "no_progress") and not isinstance(value, bool):
            problem = "expected true or false"
        elif name in ("data_dir", "out") and value is not None and not isinstance(value, str):
            problem = "expected a path"
        elif name in checks and value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                problem = f"expected a number or a name, got {type(value).__name__}"
            else:
                try:
                    checks[name](str(value))
                except argparse.ArgumentTypeError as error:
                    problem = str(error)
        if problem:
            raise RunError(f"{path} is damaged or was edited: option {name!r} is {value!r} ({problem}); "
                           "restore it or train the run again")


def train_command(args) -> int:
    started = time.perf_counter()
    ranks = getattr(args, "ranks", None)  # under mpiexec: this process's place among the ranks
    lead = ranks is None or ranks.rank == 0  # the one that writes the run folder and speaks
    if args.resume is not None:
        if not (args.resume / CONFIG_FILE).is_file():
            raise UsageError(f"--resume {args.resume}: no {CONFIG_FILE} there; name a run folder written by 'train'")
        args = _resumed_options(args)
    elif lead:
        _existing_run(args.out, args.force)
    if ranks is not None and args.batch_size < ranks.world:
        raise UsageError(f"--batch-size {args.batch_size} is smaller than the {ranks.world} MPI ranks it is split between")
    tg.manual_seed(args.seed)
    say = print if lead else _quiet
    say(f"loading {args.dataset} ...", flush=True)
    train_set = training.limit_dataset(training.load_dataset(args.dataset, args.data_dir, True, args.download),
                                       args.limit, args.seed)
    test_set = training.limit_dataset(training.load_dataset(args.dataset, args.data_dir, False, args.download),
                                      args.limit, args.seed)
    input_shape = train_set.images.shape[1:]
    mean, std = training.channel_statistics(train_set.images)

    batch_norm = True if args.model == "cifar" else args.batch_norm
    model_config = models.model_config(args.model, input_shape, len(train_set.classes), batch_norm)
    model = models.build_model(model_config)
    if list(test_set.classes) != list(train_set.classes):
        raise data.DatasetError(f"the test images' classes ({', '.join(test_set.classes)}) differ from the training "
                                f"images' ({', '.join(train_set.classes)}): give both splits the same class folders")
    _check_environment()
    try:  # one image through the net before anything is written: a net the images cannot go through is one line
        with no_grad():
            model.eval()
            model(Tensor(train_set.images[:1]))
    except ValueError as error:
        raise UsageError(f"--model {args.model} cannot take the {'x'.join(map(str, input_shape))} images of "
                         f"--dataset {args.dataset}: {error}") from None
    finally:
        model.train()
    optimizer = training.make_optimizer(args.optimizer, model.parameters(), args.lr, args.weight_decay)
    # no seed of its own: the loader shuffles from the library generator, the one a checkpoint saves
    train_loader = data.DataLoader(train_set, args.batch_size, shuffle=True,
                                   transform=_augmentation(input_shape, args.augment, mean, std))
    test_loader = data.DataLoader(test_set, 256, transform=data.transforms.Normalize(mean, std))
    scheduler = None
    if args.schedule == "cosine":
        scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * len(train_loader))

    config = {
        "model": model_config,
        "classes": list(train_set.classes),
        "normalize": {"mean": mean, "std": std},
        "dataset": args.dataset,
        "data_dir": str(args.data_dir) if args.data_dir is not None else None,
        "options": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()
                    if key not in ("resume", "force", "ranks")},
        "world_size": 1 if ranks is None else ranks.world,
    }
    history = unfinished = None
    if args.resume is not None:
        folder = args.resume
        if lead:
            lock = _hold_the_run(folder)  # noqa: F841 - held until the process ends
            _check_writable(folder)
        if not (folder / CHECKPOINT_FILE).is_file() and (folder / WEIGHTS_FILE).is_file():
            raise UsageError(f"--resume {folder}: its {WEIGHTS_FILE} is there but not its {CHECKPOINT_FILE}, so "
                             "there is nothing to continue from and starting over would replace the weights; "
                             "restore the checkpoint, or train a new run with --out")
        if (folder / CHECKPOINT_FILE).is_file():
            history, unfinished = training.load_checkpoint(folder / CHECKPOINT_FILE, model, optimizer, scheduler)
            if scheduler is not None:  # a new --epochs stretches the schedule from where it is
                scheduler.T_max = args.epochs * len(train_loader)
        done = len(history["epoch"]) if history else 0
        if done >= args.epochs:
            raise UsageError(f"--resume {folder}: the run already has {counted(done, 'epoch')}; "
                             f"pass --epochs N with N > {done} to train it further")
        within = f" and {counted(unfinished['batch'], 'batch', 'batches')} of epoch {done + 1}" if unfinished else ""
        say(f"resuming {folder} after {counted(done, 'epoch')}{within}", flush=True)
    elif lead:
        folder = _run_folder(args.out, args.force)
        lock = _hold_the_run(folder)  # noqa: F841 - held until the process ends
    else:
        folder = args.out  # named in messages only: rank 0 writes the run
    if lead:
        _write_json(folder / CONFIG_FILE, config)
    say(f"model {args.model} ({counted(models.count_parameters(model), 'parameter')}) on "
          f"{counted(len(train_set), 'training image')} and {counted(len(test_set), 'test image')} of "
          f"{'x'.join(map(str, input_shape))}; {args.optimizer}, lr "
          f"{optimizer.param_groups[0]['lr']:g}, batch {args.batch_size}, {counted(args.epochs, 'epoch')} -> {folder}",
          flush=True)

    def after_epoch(history):
        _write(folder / CHECKPOINT_FILE,
               lambda path: training.save_checkpoint(path, model, optimizer, scheduler, history))
        _write(folder / WEIGHTS_FILE, lambda path: tg.save(model.state_dict(), path))
        _write_json(folder / METRICS_FILE, {"status": "running", "history": history, "config": config})

    stop = None
    # under MPI each rank trains the same model on its share of every batch; the gradients are
    # averaged during backward (rank 0's weights were copied to every rank as it is wrapped)
    trainer = model if ranks is None else DistributedDataParallel(model)
    with StopRequest(quiet=not lead) as stop_request:
        try:
            history = training.fit(trainer, optimizer, train_loader, test_loader, args.epochs, scheduler,
                                   progress=lead and not args.no_progress, log=print if lead else None,
                                   history=history, after_epoch=after_epoch if lead else None,
                                   should_stop=stop_request, unfinished=unfinished, ranks=ranks)
        except (training.Diverged, training.Interrupted) as error:
            stop, history = error, error.history
    if ranks is not None:
        if isinstance(stop, training.Interrupted):  # the signal may have reached some ranks only
            stop_request.signal = ranks.largest(stop_request.signal or 0)
        if not lead:  # rank 0 writes what is left and speaks for the run
            return 128 + stop_request.signal if isinstance(stop, training.Interrupted) else (1 if stop else 0)
    if isinstance(stop, training.Interrupted):
        if stop.unfinished is not None:  # the batches of the epoch in progress are kept too
            _write(folder / CHECKPOINT_FILE, lambda path: training.save_checkpoint(
                path, model, optimizer, scheduler, history, stop.unfinished))
        _write_json(folder / METRICS_FILE, {"status": "interrupted", "history": history, "config": config})
        print(_interruption_message(stop, stop_request.signal, folder, args.epochs, ranks), file=sys.stderr)
        return 128 + stop_request.signal
    if isinstance(stop, training.Diverged) and history["epoch"]:
        # figures and metrics describe the last good epoch: its weights are in the run folder
        model.load_state_dict(tg.load(folder / WEIGHTS_FILE, model.state_dict()))
    metrics = _final_metrics(folder, model, history, test_set, test_loader, config, not args.no_figures)
    metrics["wall_time_seconds"] = time.perf_counter() - started  # everything: loading, training, evaluation, figures
    if stop is not None:
        metrics.update(status="diverged", diverged={"epoch": stop.epoch, "batch": stop.batch, "loss": stop.loss})
    _write_json(folder / METRICS_FILE, metrics)
    if stop is not None:
        kept = (f"the run in {folder} keeps the {counted(len(history['epoch']), 'epoch')} before it"
                if history["epoch"] else f"no epoch was finished; see {folder}")
        group = optimizer.param_groups[0]
        raise RunError(f"{stop}; {kept}. Try a lower --lr (it was {group.get('initial_lr', group['lr']):g}), "
                       "a smaller --weight-decay, --optimizer adam or --batch-norm")
    print(f"test accuracy {metrics['test_accuracy']:.2%} ({metrics['test_correct']}/{metrics['test_total']}), "
          f"wall time {metrics['wall_time_seconds']:.1f} s; run saved in {folder}")
    return 0


def _quiet(*args, **kwargs) -> None:
    """What ranks other than 0 print: nothing (rank 0 speaks for the run)."""


def _interruption_message(stop, signum: int, folder: Path, epochs: int, ranks=None) -> str:
    """The one line that says where an interrupted run stands and how to continue it."""
    done = counted(len(stop.history["epoch"]), "epoch")
    if stop.unfinished is not None:
        where = (f"during epoch {stop.epoch}/{epochs}; the run in {folder} is saved after {done} and "
                 f"{stop.batch} of the {stop.batches} batches of epoch {stop.epoch}")
    else:
        where = f"after epoch {stop.epoch}/{epochs}; the run in {folder} is saved after {done}"
    launcher = "" if ranks is None else f"mpiexec -n {ranks.world} "
    return (f"{signal.Signals(signum).name}: training stopped {where}; continue it with: "
            f"{launcher}python -m tinygrad_cnn train --resume {folder}")


def _final_metrics(folder: Path, model, history: dict, test_set, test_loader, config: dict, draw: bool) -> dict:
    """metrics.json of a finished (or diverged) run, with the figures drawn; the test figures are
    those of the model as it is (none when no epoch was finished)."""
    metrics = {"status": "complete", "history": history}
    drawn = []
    if history["epoch"]:
        logits, labels = training.predict(model, test_loader)
        correct = int((logits.argmax(axis=1) == labels).sum())
        if draw:
            drawn = _write_figures(folder, model, history, test_set, logits, config)
        metrics.update({"test_accuracy": correct / len(labels), "test_correct": correct,
                        "test_total": int(len(labels)), "test_loss": history["test_loss"][-1]})
    metrics.update({"training_seconds": float(sum(history["seconds"])),
                    "parameters": models.count_parameters(model), "figures": drawn, "config": config})
    return metrics


def _write_figures(folder: Path, model, history, test_set, logits, config) -> list:
    """draw_run_figures, with a failure to write a PNG reported as one line."""
    try:
        return draw_run_figures(folder, model, history, test_set, logits, config)
    except OSError as error:
        raise RunError(f"cannot write the figures in {folder} ({error.strerror or error}); the weights, "
                       "checkpoint and metrics are saved") from None


def _dataset_title(config: dict) -> str:
    """The dataset's name for a figure title: a known dataset by its proper name (from the dataset
    registry), an image folder by the name of the folder the user gave (not of a 'train' or 'test'
    folder inside it)."""
    dataset = config.get("dataset")
    if dataset in data.DATASETS and dataset != "imagefolder":
        return data.DATASETS[dataset].title
    data_dir = config.get("data_dir")
    if data_dir:
        path = Path(data_dir).expanduser().resolve()
        return f"image folder '{path.name or path}'"
    return str(dataset)


def draw_run_figures(folder: Path, model, history: dict, test_set, logits: np.ndarray, config: dict) -> list:
    """The PNGs of a run; a notice instead when matplotlib is missing. Returns the file names."""
    if not figures.matplotlib_available():
        print(f"figures skipped: {figures.PLOTS_HINT}")
        return []
    title = f"{models.describe(config['model'])} on {_dataset_title(config)}"
    classes, labels, predicted = config["classes"], test_set.labels, logits.argmax(axis=1)
    normalize = data.transforms.Normalize(config["normalize"]["mean"], config["normalize"]["std"])
    figures.plot_curves(history, folder / "curves.png", title)
    first_conv = next((m for m in model.modules() if isinstance(m, tg.nn.Conv2d)), None)
    written = ["curves.png"]
    if first_conv is not None:
        figures.plot_filters(first_conv.weight.data, folder / "filters.png", f"{title}: first convolution")
        # the first test image the model gets right, so the maps show a recognised object
        index = int(np.argmax(predicted == labels)) if (predicted == labels).any() else 0
        image = test_set.images[index]
        activations, _ = figures.capture_activations(model, normalize(image))
        stage = ("before batch norm and the ReLU" if config["model"].get("batch_norm") else figures.BEFORE_RELU)
        figures.plot_activations(image, activations, folder / "activations.png",
                                 f"{title}\nconvolution outputs for one test image "
                                 f"(true class {classes[labels[index]]}, predicted {classes[predicted[index]]})",
                                 stage=stage)
        written += ["filters.png", "activations.png"]
    figures.plot_confusion(labels, predicted, classes, folder / "confusion.png")
    shown = np.random.default_rng(0).permutation(len(labels))[:24]
    figures.plot_predictions(test_set.images[shown], labels[shown], predicted[shown], classes,
                             folder / "predictions.png")
    written += ["confusion.png", "predictions.png"]
    print(f"figures: {', '.join(written)}")
    return written


# ---- loading a run ----------------------------------------------------------------------------


def _read_config(path: Path, run: Path) -> dict:
    """A run's config.json, checked enough that using it cannot fail with a KeyError."""
    if not path.is_file():
        raise RunError(f"no config file {path}: CHECKPOINT must be a run folder written by 'train' "
                       "or the model.npz inside it")
    if path.stat().st_size > CONFIG_SIZE_LIMIT:  # a config is a few kB: do not read a huge file into memory
        raise RunError(f"{path} is {path.stat().st_size:,} bytes, far more than a run's config: restore it or "
                       "train the run again")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(f"{path} is not valid JSON ({error}): restore it from a backup or train the run again") from None
    problem = None
    if not isinstance(config, dict):
        problem = "it is not a JSON object"
    else:
        missing = [key for key in ("model", "classes", "normalize") if key not in config]
        if missing:
            problem = f"it has no {', '.join(repr(key) for key in missing)}"
        elif not (isinstance(config["classes"], list) and config["classes"]
                  and all(isinstance(name, str) for name in config["classes"])):
            problem = "'classes' is not a list of class names"
        elif not (isinstance(config["normalize"], dict) and {"mean", "std"} <= set(config["normalize"])):
            problem = "'normalize' needs 'mean' and 'std'"
        else:
            try:
                models.check_config(config["model"])
            except ValueError as error:
                problem = str(error)
            else:
                channels = config["model"]["input_shape"][0]
                if config["model"]["num_classes"] != len(config["classes"]):
                    problem = "the model's num_classes does not match the number of class names"
                elif not all(_finite_numbers(config["normalize"][key], channels, positive=key == "std")
                             for key in ("mean", "std")):
                    problem = f"'normalize' needs 'mean' and 'std' as lists of {channels} finite numbers (std > 0)"
    if problem:
        raise RunError(f"{path} is damaged or was edited: {problem}; restore it or train the run again")
    return config


def _finite_numbers(values, count: int, positive: bool = False) -> bool:
    return (isinstance(values, list) and len(values) == count
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    and (v > 0 or not positive) for v in values))


def load_run(checkpoint: Path):
    """The model (weights loaded, in eval mode) and config of a run folder or its model.npz.
    Every problem with the files is a RunError naming the file; non-finite weights are a warning."""
    if not checkpoint.exists():
        raise RunError(f"no such file or folder {checkpoint}: CHECKPOINT must be a run folder written by "
                       "'train' or the model.npz inside it")
    folder = checkpoint if checkpoint.is_dir() else checkpoint.parent
    weights = checkpoint if checkpoint.is_file() else folder / WEIGHTS_FILE
    if not weights.is_file():
        raise RunError(f"no weights file {weights}: CHECKPOINT must be a run folder written by "
                       "'train' or the model.npz inside it")
    config = _read_config(folder / CONFIG_FILE, folder)
    model = models.build_model(config["model"])
    try:
        state = tg.load(weights, model.state_dict())
        model.load_state_dict(state)
    except (CheckpointError, RuntimeError) as error:
        detail = " ".join(str(error).split())
        raise RunError(f"{weights} does not hold this run's weights ({detail}): train the run again "
                       "or restore the file") from None
    except OSError as error:
        raise RunError(f"cannot read {weights} ({error.strerror or error})") from None
    bad = [name for name, value in state.items()
           if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all()]
    if bad:
        print(f"warning: {weights} has weights that are not finite numbers (NaN or inf in {', '.join(bad[:3])}"
              f"{', ...' if len(bad) > 3 else ''}): the run diverged, so its predictions mean nothing",
              file=sys.stderr)
    model.eval()
    return model, config


def evaluate_command(args) -> int:
    model, config = load_run(args.checkpoint)
    dataset = args.dataset or config.get("dataset")
    if dataset not in training.DATASETS:
        raise RunError(f"{args.checkpoint}: the run's dataset {dataset!r} is unknown; pass --dataset")
    data_dir = args.data_dir if args.data_dir is not None else config.get("data_dir")
    test_set = training.limit_dataset(training.load_dataset(dataset, data_dir, train=False), args.limit)
    expected_shape = tuple(config["model"]["input_shape"])
    if test_set.images.shape[1:] != expected_shape:
        raise UsageError(f"the model takes {expected_shape} images but {dataset} has {test_set.images.shape[1:]}")
    normalize = data.transforms.Normalize(config["normalize"]["mean"], config["normalize"]["std"])
    loader = data.DataLoader(test_set, args.batch_size, transform=normalize)
    started = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a diverged run is warned about above
        logits, labels = training.predict(model, loader)
    predicted = logits.argmax(axis=1)
    classes = config["classes"]
    width = max(len(name) for name in classes)
    print("accuracy of each class:")
    for index, name in enumerate(classes):
        mask = labels == index
        if mask.any():
            print(f"  {name:<{width}}  {np.mean(predicted[mask] == index):7.2%}  ({counted(int(mask.sum()), 'image')})")
    correct = int((predicted == labels).sum())
    print(f"test accuracy {correct / len(labels):.2%} ({correct}/{len(labels)}) on the {dataset} test split, "
          f"{time.perf_counter() - started:.1f} s")
    return 0


# ---- predict ----------------------------------------------------------------------------------


def read_image(path: Path, input_shape) -> np.ndarray:
    """An image file or .npy array as the model takes it: float32 (C, H, W) in [0, 1], converted to
    its number of channels and resized to its height and width (decoding rules: data/images.py)."""
    channels, height, width = input_shape
    return data.images.read_image(path, channels=channels, size=(height, width))


def predict_command(args) -> int:
    model, config = load_run(args.checkpoint)
    classes, input_shape = config["classes"], config["model"]["input_shape"]
    normalize = data.transforms.Normalize(config["normalize"]["mean"], config["normalize"]["std"])
    top = min(args.top, len(classes))
    for path in args.images:
        if not path.is_file():
            raise RunError(f"no image file {path}")
        try:
            image = normalize(read_image(path, input_shape))
        except EnvironmentVariableError:
            raise  # a bad setting, not a bad image: main names the variable
        except (OSError, ValueError, EOFError, data.DatasetError) as error:
            # a text file, a truncated PNG, a .npy of the wrong shape or holding pickled objects
            raise RunError(f"cannot read {path} as an image ({' '.join(str(error).split())}): "
                           "give a PNG or JPEG file or a .npy array") from None
        with no_grad(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            probabilities = F.softmax(model(Tensor(image[None])), axis=1).data[0]
        best = np.argsort(probabilities)[::-1][:top]
        width = max(len(classes[i]) for i in best)
        print(f"{path}:")
        for rank, index in enumerate(best, 1):
            print(f"  {rank}. {classes[index]:<{width}}  {probabilities[index]:7.2%}")
    return 0


# ---- entry point ------------------------------------------------------------------------------

COMMANDS = {"train": train_command, "evaluate": evaluate_command, "predict": predict_command}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code = 0
    try:
        if args.command == "train" and distributed.launched_by_mpi():
            args.ranks = _join_the_ranks()
        return COMMANDS[args.command](args)
    except (UsageError, EnvironmentVariableError) as error:  # as argparse reports a bad flag
        code, message = 2, str(error)
    except (RunError, data.DatasetError, CheckpointError, FileNotFoundError, ImportError) as error:
        # expected problems (a missing or damaged file, an unwritable folder): the message, not a traceback
        message = " ".join(str(error).split())
        if isinstance(error, data.DatasetError):
            message += " (on the command line: --download fetches the files, --data-dir DIR names their folder)"
        code = 1
    except KeyboardInterrupt:
        code, message = 130, "interrupted"
    ranks = getattr(args, "ranks", None)
    if ranks is None:
        print(message if code == 130 else f"error: {message}", file=sys.stderr)
        return code
    # under MPI the other ranks may be waiting in a collective: say it once, then end them all
    print(f"error (rank {ranks.rank} of {ranks.world}): {message}", file=sys.stderr, flush=True)
    distributed._abort_job(code)
    return code


def _join_the_ranks():
    """Under ``mpiexec``: join the MPI world, give each rank its share of the cores' BLAS threads
    (unless OPENBLAS_NUM_THREADS or OMP_NUM_THREADS says otherwise) and say so, on rank 0."""
    distributed.init_process_group()
    ranks = training.Ranks(distributed.get_rank(), distributed.get_world_size())
    pids = distributed._world().gather(os.getpid(), root=0)
    threads = _blas_threads_per_rank(ranks.world)
    if ranks.rank == 0:
        shared = (f"{threads} BLAS thread{'s' if threads != 1 else ''} per rank (set OPENBLAS_NUM_THREADS to choose)"
                  if threads else "BLAS threads as the environment sets them")
        print(f"running on {ranks.world} MPI ranks (pids {', '.join(map(str, pids))}); {shared}; "
              "each global batch is split between them, rank 0 writes the run", flush=True)
    return ranks


def _blas_threads_per_rank(world: int):
    """Share this machine's cores between the ranks on it; None where the user set the threads or
    threadpoolctl (in the ``distributed`` extra) is missing."""
    if "OPENBLAS_NUM_THREADS" in os.environ or "OMP_NUM_THREADS" in os.environ:
        return None
    local = os.environ.get("MPI_LOCALNRANKS") or os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE") or str(world)
    threads = max(1, (os.cpu_count() or 1) // max(1, int(local) if local.isdigit() else world))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    threadpool_limits(threads, user_api="blas")
    return threads


if __name__ == "__main__":
    sys.exit(main())
