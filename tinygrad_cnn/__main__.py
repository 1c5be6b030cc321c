"""The command line: ``python -m tinygrad_cnn`` (or ``tinygrad-cnn`` once installed).

    train      train a model, writing a run folder (weights, config, metrics, figures)
    evaluate   test accuracy of a run's model
    predict    top classes for image files (PNG/JPEG) or .npy arrays

A run folder (``runs/<timestamp>`` unless ``--out`` is given) holds:

    model.npz        the weights (tinygrad_cnn.save of the model's state_dict)
    config.json      what is needed to rebuild and feed the model: architecture, input shape,
                     class names, the normalisation of the inputs, the dataset it was trained on
    metrics.json     per-epoch loss and accuracy, final test accuracy, wall time, all options
    curves.png, filters.png, activations.png, confusion.png, predictions.png   (with matplotlib)
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

import tinygrad_cnn as tg

from . import data, figures, models, optim
from . import train as training
from .autograd import no_grad
from .nn import functional as F
from .tensor_class import Tensor

CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE = "config.json", "metrics.json", "model.npz"


class UsageError(Exception):
    """A problem with what the user asked for: reported as one line, without a traceback."""

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
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be zero or positive, got {text!r}")
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
    source.add_argument("--dataset", choices=training.DATASETS, default="embedded",
                        help="embedded: 10,000/2,000 Fashion-MNIST images shipped in the package; "
                             "imagefolder: DATA_DIR/train/<class>/*.png|jpg and DATA_DIR/test/<class>/...; "
                             "cifar10 reads the binary batches, or image folders laid out as for imagefolder")
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
    fitting.add_argument("--seed", type=int, default=0, help="seeds initialisation, shuffling, dropout, augmentation")
    output = train.add_argument_group("output")
    output.add_argument("--out", type=Path, default=None, metavar="DIR", help="run folder (default: runs/<timestamp>)")
    output.add_argument("--no-figures", action="store_true", help="do not draw the PNG figures")
    output.add_argument("--no-progress", action="store_true", help="no progress bar, only one line per epoch "
                        "(the bar is tqdm's on a terminal, plain lines otherwise)")

    evaluate = commands.add_parser(
        "evaluate", help="test accuracy of a trained model", formatter_class=formatter,
        description="Accuracy of a trained model on the test split of the dataset it was trained on "
                    "(or of --dataset), with the accuracy of each class.")
    evaluate.add_argument("checkpoint", type=Path, metavar="CHECKPOINT",
                          help="a run folder written by 'train', or the model.npz inside it")
    evaluate.add_argument("--dataset", choices=training.DATASETS, default=None, help="default: the run's dataset")
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


def _run_folder(out: Path | None) -> Path:
    folder = out if out is not None else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def train_command(args) -> int:
    started = time.perf_counter()
    tg.manual_seed(args.seed)
    print(f"loading {args.dataset} ...", flush=True)
    train_set = training.limit_dataset(training.load_dataset(args.dataset, args.data_dir, True, args.download),
                                       args.limit, args.seed)
    test_set = training.limit_dataset(training.load_dataset(args.dataset, args.data_dir, False, args.download),
                                      args.limit, args.seed)
    input_shape = train_set.images.shape[1:]
    mean, std = training.channel_statistics(train_set.images)

    batch_norm = True if args.model == "cifar" else args.batch_norm
    model_config = models.model_config(args.model, input_shape, len(train_set.classes), batch_norm)
    model = models.build_model(model_config)
    optimizer = training.make_optimizer(args.optimizer, model.parameters(), args.lr, args.weight_decay)
    train_loader = data.DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed,
                                   transform=_augmentation(input_shape, args.augment, mean, std))
    test_loader = data.DataLoader(test_set, 256, transform=data.transforms.Normalize(mean, std))
    scheduler = None
    if args.schedule == "cosine":
        scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * len(train_loader))

    folder = _run_folder(args.out)
    config = {
        "model": model_config,
        "classes": list(train_set.classes),
        "normalize": {"mean": mean, "std": std},
        "dataset": args.dataset,
        "data_dir": str(args.data_dir) if args.data_dir is not None else None,
        "options": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    print(f"model {args.model} ({models.count_parameters(model):,} parameters) on {len(train_set):,} training and "
          f"{len(test_set):,} test images of {'x'.join(map(str, input_shape))}; {args.optimizer}, lr "
          f"{optimizer.param_groups[0]['lr']:g}, batch {args.batch_size}, {args.epochs} epochs -> {folder}", flush=True)

    history = training.fit(model, optimizer, train_loader, test_loader, args.epochs, scheduler,
                           progress=not args.no_progress)
    tg.save(model.state_dict(), folder / WEIGHTS_FILE)
    logits, labels = training.predict(model, test_loader)
    predicted = logits.argmax(axis=1)
    correct = int((predicted == labels).sum())
    drawn = [] if args.no_figures else draw_run_figures(folder, model, history, test_set, logits, config)
    wall_time = time.perf_counter() - started  # everything: loading, training, evaluation, figures
    metrics = {
        "history": history,
        "test_accuracy": correct / len(labels),
        "test_correct": correct,
        "test_total": int(len(labels)),
        "test_loss": history["test_loss"][-1],
        "wall_time_seconds": wall_time,
        "training_seconds": float(sum(history["seconds"])),
        "parameters": models.count_parameters(model),
        "figures": drawn,
        "config": config,
    }
    (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    print(f"test accuracy {correct / len(labels):.2%} ({correct}/{len(labels)}), wall time {wall_time:.1f} s; "
          f"run saved in {folder}")
    return 0


def _dataset_title(config: dict) -> str:
    names = {"embedded": "Fashion-MNIST (embedded subset)", "fashion-mnist": "Fashion-MNIST", "mnist": "MNIST",
             "cifar10": "CIFAR-10"}
    if config["dataset"] in names:
        return names[config["dataset"]]
    return Path(config["data_dir"]).name if config.get("data_dir") else config["dataset"]


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
        figures.plot_activations(image, activations, folder / "activations.png",
                                 f"{title}\nactivation maps of one test image "
                                 f"(true class {classes[labels[index]]}, predicted {classes[predicted[index]]})")
        written += ["filters.png", "activations.png"]
    figures.plot_confusion(labels, predicted, classes, folder / "confusion.png")
    shown = np.random.default_rng(0).permutation(len(labels))[:24]
    figures.plot_predictions(test_set.images[shown], labels[shown], predicted[shown], classes,
                             folder / "predictions.png")
    written += ["confusion.png", "predictions.png"]
    print(f"figures: {', '.join(written)}")
    return written


# ---- loading a run ----------------------------------------------------------------------------


def load_run(checkpoint: Path):
    """The model (weights loaded, in eval mode) and config of a run folder or its model.npz."""
    folder = checkpoint if checkpoint.is_dir() else checkpoint.parent
    weights = checkpoint if checkpoint.is_file() else folder / WEIGHTS_FILE
    config_path = folder / CONFIG_FILE
    for path, what in ((weights, "weights"), (config_path, "config")):
        if not path.is_file():
            raise FileNotFoundError(f"no {what} file {path}: CHECKPOINT must be a run folder written by "
                                    "'train' or the model.npz inside it")
    config = json.loads(config_path.read_text())
    model = models.build_model(config["model"])
    model.load_state_dict(tg.load(weights))
    model.eval()
    return model, config


def evaluate_command(args) -> int:
    model, config = load_run(args.checkpoint)
    dataset = args.dataset or config["dataset"]
    data_dir = args.data_dir if args.data_dir is not None else config.get("data_dir")
    test_set = training.limit_dataset(training.load_dataset(dataset, data_dir, train=False), args.limit)
    expected_shape = tuple(config["model"]["input_shape"])
    if test_set.images.shape[1:] != expected_shape:
        raise UsageError(f"the model takes {expected_shape} images but {dataset} has {test_set.images.shape[1:]}")
    normalize = data.transforms.Normalize(config["normalize"]["mean"], config["normalize"]["std"])
    loader = data.DataLoader(test_set, args.batch_size, transform=normalize)
    started = time.perf_counter()
    logits, labels = training.predict(model, loader)
    predicted = logits.argmax(axis=1)
    classes = config["classes"]
    width = max(len(name) for name in classes)
    print("accuracy of each class:")
    for index, name in enumerate(classes):
        mask = labels == index
        if mask.any():
            print(f"  {name:<{width}}  {np.mean(predicted[mask] == index):7.2%}  ({int(mask.sum())} images)")
    correct = int((predicted == labels).sum())
    print(f"test accuracy {correct / len(labels):.2%} ({correct}/{len(labels)}) on the {dataset} test split, "
          f"{time.perf_counter() - started:.1f} s")
    return 0


# ---- predict ----------------------------------------------------------------------------------


def read_image(path: Path, input_shape) -> np.ndarray:
    """An image file or .npy array as float32 (C, H, W) in [0, 1], converted to the model's number
    of channels and resized to its height and width."""
    channels, height, width = input_shape
    if path.suffix.lower() == ".npy":
        image = _array_as_chw(np.load(path))
    else:
        image = _read_picture(path)
    if image.shape[0] != channels:
        if channels == 1:  # RGB to grey with the ITU-R 601 weights Pillow's "L" mode uses
            image = np.tensordot(np.array([0.299, 0.587, 0.114], dtype=np.float32), image[:3], axes=1)[None]
        else:
            image = np.repeat(image[:1], channels, axis=0)
    if image.shape[1:] != (height, width):
        image = _resize(image, height, width)
    return image.astype(np.float32)


def _array_as_chw(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    while array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3 and array.shape[-1] in (1, 3, 4) and array.shape[0] not in (1, 3):
        array = array.transpose(2, 0, 1)  # (H, W, C) as image libraries store it
    elif array.ndim != 3:
        raise UsageError(f"a .npy image must be (H, W), (H, W, C) or (C, H, W), got shape {array.shape}")
    scale = 255 if np.issubdtype(array.dtype, np.integer) or array.max() > 1.0 else 1
    return array[:3].astype(np.float32) / scale


def _read_picture(path: Path) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError("reading PNG/JPEG needs Pillow: pip install 'tinygrad_cnn[images]' "
                          "(or pass a .npy array)") from error
    with Image.open(path) as picture:
        pixels = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255
    return pixels.transpose(2, 0, 1)


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resizing with Pillow when it is there, nearest neighbour otherwise."""
    try:
        from PIL import Image
    except ImportError:
        rows = (np.arange(height) * image.shape[1] / height).astype(int)
        cols = (np.arange(width) * image.shape[2] / width).astype(int)
        return image[:, rows][:, :, cols]
    return np.stack([np.asarray(Image.fromarray(channel, mode="F").resize((width, height), Image.BILINEAR))
                     for channel in image.astype(np.float32)])


def predict_command(args) -> int:
    model, config = load_run(args.checkpoint)
    classes, input_shape = config["classes"], config["model"]["input_shape"]
    normalize = data.transforms.Normalize(config["normalize"]["mean"], config["normalize"]["std"])
    top = min(args.top, len(classes))
    for path in args.images:
        if not path.is_file():
            raise FileNotFoundError(f"no image file {path}")
        image = normalize(read_image(path, input_shape))
        with no_grad():
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
    try:
        return COMMANDS[args.command](args)
    except (UsageError, data.DatasetError, FileNotFoundError, ImportError) as error:
        # expected problems (a missing file, a wrong option combination): the message, not a traceback
        print(f"error: {error}", file=sys.stderr)
        if isinstance(error, data.DatasetError):
            print("(on the command line: --download fetches the files, --data-dir DIR names their folder)",
                  file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
