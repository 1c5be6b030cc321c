"""PNG figures of a training run: what a person looks at instead of reading metrics.json.

    plot_curves(history, path)              loss per batch (log scale) and per epoch, accuracy per epoch
    plot_filters(weight, path)              the learned filters of a convolution, one tile each
    capture_activations(model, image)       every convolution's output for one image, recorded
                                            with forward hooks (``Module.register_forward_hook``)
    plot_activations(image, maps, path)     those outputs as rows of feature maps, a colour scale per layer
    plot_confusion(labels, predicted, ...)  which classes are taken for which
    plot_predictions(images, ...)           a grid of test images titled with the guess

matplotlib is optional (``pip install tinygrad_cnn[plots]``): ``matplotlib_available()`` says
whether figures can be drawn, and every ``plot_*`` raises ImportError with that hint otherwise.
"""
from __future__ import annotations

import importlib.util
import math

import numpy as np

from .autograd import no_grad
from .tensor_class import Tensor

PLOTS_HINT = "figures need matplotlib: pip install 'tinygrad_cnn[plots]' (or pip install matplotlib)"


def matplotlib_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def _pyplot():
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(PLOTS_HINT) from error
    matplotlib.use("Agg")  # files only: no window, works without a display
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path) -> None:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)


def _image_for_display(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """A (C, H, W) image as what imshow wants: (H, W) with a grey colormap, or (H, W, 3) in [0, 1]."""
    if image.shape[0] == 1:
        return image[0], "gray"
    image = image.transpose(1, 2, 0)
    low, high = image.min(), image.max()
    return (image - low) / (high - low if high > low else 1), None


# ---- learning curves ------------------------------------------------------------------------


def plot_curves(history: dict, path, title: str = "") -> None:
    """Two panels: loss on a log scale (every batch, faintly, with a moving average and the epoch
    means of train and test at the end of each epoch), and accuracy per epoch.

    The log scale shows the whole run: the first batches (loss ~2.3) and the last (~0.3) on one
    axis, without cutting either off. Values that are not finite (a diverging run) are left out."""
    plt = _pyplot()
    fig, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.asarray(history["epoch"], dtype=float)
    steps = np.asarray(history.get("step_loss", []), dtype=float)
    per_epoch = len(steps) / len(epochs) if len(steps) and len(epochs) else 1
    ends = epochs * per_epoch  # batch number at the end of each epoch: where its means belong
    if len(steps):
        batch = np.arange(1, len(steps) + 1)
        shown = np.isfinite(steps) & (steps > 0)
        loss_axes.plot(batch[shown], steps[shown], color="tab:blue", alpha=0.25, linewidth=0.8,
                       label="train (each batch)")
        window = max(1, len(steps) // 50)
        if window > 1 and shown.all():
            smooth = np.convolve(steps, np.ones(window) / window, mode="valid")
            loss_axes.plot(batch[window - 1:], smooth, color="tab:blue", linewidth=1.2,
                           label=f"train (mean of {window} batches)")
    for values, marker, colour, label in ((history["train_loss"], "o-", "tab:blue", "train (epoch mean)"),
                                          (history["test_loss"], "s-", "tab:orange", "test (end of epoch)")):
        values = np.asarray(values, dtype=float)
        finite = np.isfinite(values) & (values > 0)
        loss_axes.plot(ends[finite], values[finite], marker, color=colour, label=label)
    for end in ends[:-1]:
        loss_axes.axvline(end, color="grey", alpha=0.2, linewidth=0.8)
    loss_axes.set_yscale("log")
    loss_axes.set(xlabel=f"batch ({per_epoch:.0f} per epoch; grey lines end each epoch)",
                  ylabel="cross-entropy loss (log scale)", title="Loss")
    loss_axes.set_xlim(0, max(len(steps), ends[-1] if len(ends) else 1) * 1.02)
    accuracy_axes.plot(epochs, 100 * np.asarray(history["train_accuracy"], dtype=float), "o-", color="tab:blue",
                       label="train (during the epoch)")
    accuracy_axes.plot(epochs, 100 * np.asarray(history["test_accuracy"], dtype=float), "s-", color="tab:orange",
                       label="test (end of epoch)")
    if len(epochs):
        final = 100 * history["test_accuracy"][-1]
        accuracy_axes.annotate(f"test {final:.2f}%", (epochs[-1], final), textcoords="offset points",
                               xytext=(-4, -16), ha="right", fontsize=9, color="tab:orange")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    accuracy_axes.set_xlim(0, max(epochs[-1] if len(epochs) else 1, 1) + 0.2)
    accuracy_axes.xaxis.get_major_locator().set_params(integer=True)
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


# ---- filters --------------------------------------------------------------------------------


def plot_filters(weight: np.ndarray, path, title: str = "First convolution") -> None:
    """One tile per output channel of a (out, in, kh, kw) weight.

    Grey-input filters use a diverging colormap centred on zero (red excites, blue inhibits);
    RGB filters are shown as colour images, each stretched to the full range."""
    plt = _pyplot()
    count, in_channels = weight.shape[:2]
    columns = min(count, 8)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.3 * rows + 0.5), squeeze=False)
    limit = float(np.abs(weight).max()) or 1.0
    image = None
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= count:
            continue
        if in_channels == 3:
            tile = weight[index].transpose(1, 2, 0)
            low, high = tile.min(), tile.max()
            axis.imshow((tile - low) / (high - low if high > low else 1), interpolation="nearest")
        else:  # one grey channel (or the mean over channels for a deeper layer)
            image = axis.imshow(weight[index].mean(axis=0), cmap="RdBu_r", vmin=-limit, vmax=limit,
                                interpolation="nearest")
        axis.set_title(f"{index}", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="weight")
    fig.suptitle(f"{title}: {count} filters of {weight.shape[2]}x{weight.shape[3]}")
    _save(fig, path)


# ---- activations, recorded with forward hooks ------------------------------------------------


def capture_activations(model, image: np.ndarray, layer_type=None) -> tuple[list, np.ndarray]:
    """Run one (C, H, W) image through ``model`` in eval mode and record the output of every
    module of ``layer_type`` (default: ``nn.Conv2d``) with a forward hook.

    Returns ``([(name, maps (C', H', W')), ...], logits (classes,))``; the hooks are removed
    again and the model's mode restored."""
    from . import nn

    layer_type = layer_type or nn.Conv2d
    recorded = []

    def record(name):
        def hook(module, inputs, output):
            recorded.append((name, output.data[0].copy()))
        return hook

    handles = [module.register_forward_hook(record(name))
               for name, module in model.named_modules() if isinstance(module, layer_type)]
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            logits = model(Tensor(np.asarray(image, dtype=np.float32)[None])).data[0]
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return recorded, logits


BEFORE_RELU = "before the ReLU: red parts pass it, blue parts become 0"


def plot_activations(image: np.ndarray, activations: list, path, title: str = "", per_layer: int = 16,
                     stage: str = BEFORE_RELU) -> None:
    """The input on the left, then for each recorded layer up to ``per_layer`` of its feature
    maps, 8 to a row. ``stage`` says where the maps were taken (``capture_activations`` records
    each convolution's output, so by default: before the ReLU).

    The maps of one layer share one colour scale, centred on zero, with a colour bar beside them:
    a map that looks faint is weak, not stretched to look like its neighbours."""
    plt = _pyplot()
    columns = 8
    layer_rows = [math.ceil(min(len(maps), per_layer) / columns) for _, maps in activations]
    rows = max(sum(layer_rows), 1)
    height = 1.3 * rows + 1.2
    fig = plt.figure(figsize=(2.6 + 1.25 * columns, height))
    grid = fig.add_gridspec(rows, columns + 3, width_ratios=[1.6, 0.25] + [1] * columns + [0.12])
    input_axis = fig.add_subplot(grid[:min(rows, 2), 0])
    shown, cmap = _image_for_display(image)
    input_axis.imshow(shown, cmap=cmap, interpolation="nearest")
    input_axis.set_title("input", fontsize=9)
    input_axis.axis("off")
    row = 0
    for number, ((name, maps), count_rows) in enumerate(zip(activations, layer_rows), 1):
        count = min(len(maps), per_layer)
        limit = float(np.abs(maps[:count]).max()) or 1.0
        for index in range(count):
            axis = fig.add_subplot(grid[row + index // columns, 2 + index % columns])
            drawn = axis.imshow(maps[index], cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if index % columns == 0:
                label = (f"conv {number} (layer {name})\n{len(maps)} maps of {maps.shape[1]}x{maps.shape[2]}"
                         if index == 0 else "")
                axis.set_ylabel(label, fontsize=8)
            if row == 0 and index < columns:
                axis.set_title(f"map {index}", fontsize=7)
        colour_bar = fig.colorbar(drawn, cax=fig.add_subplot(grid[row:row + count_rows, columns + 2],
                                                             label=f"colour bar of {name}"))
        colour_bar.ax.tick_params(labelsize=7)
        row += count_rows
    heading = title or "Activation maps of each convolution"
    fig.suptitle(f"{heading}\n{stage}; one colour scale per layer", fontsize=11)
    fig.subplots_adjust(top=1 - 1.0 / height)  # room for the three lines of the title above the map titles
    _save(fig, path)


# ---- classification results -----------------------------------------------------------------


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predicted), 1)
    return counts


def plot_confusion(labels: np.ndarray, predicted: np.ndarray, classes, path, title: str = "") -> None:
    """Rows are true classes, columns predictions, each row as percentages of that class."""
    plt = _pyplot()
    counts = confusion_matrix(labels, predicted, len(classes))
    percent = 100 * counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 1.6 + 0.6 * len(classes)
    fig, axis = plt.subplots(figsize=(size + 1.5, size))
    image = axis.imshow(percent, cmap="Blues", vmin=0, vmax=100)
    for true in range(len(classes)):
        for guess in range(len(classes)):
            if f"{percent[true, guess]:.0f}" != "0":  # a cell that rounds to 0 stays blank
                axis.text(guess, true, f"{percent[true, guess]:.0f}", ha="center", va="center", fontsize=8,
                          color="white" if percent[true, guess] > 60 else "black")
    axis.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    axis.set_yticks(range(len(classes)), classes, fontsize=8)
    axis.set(xlabel="predicted class", ylabel="true class")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    axis.set_title(title or f"Confusion matrix (% of each true class), accuracy {accuracy:.2%}", fontsize=10)
    fig.colorbar(image, ax=axis, shrink=0.8, label="% of true class")
    _save(fig, path)


def plot_predictions(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, classes, path,
                     title: str = "Test images: predicted (true)") -> None:
    """A grid of images titled with the predicted class, green when right and red when wrong."""
    plt = _pyplot()
    columns = min(len(images), 8)
    rows = math.ceil(len(images) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows + 0.4), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= len(images):
            continue
        shown, cmap = _image_for_display(images[index])
        axis.imshow(shown, cmap=cmap, interpolation="nearest")
        right = predicted[index] == labels[index]
        text = classes[predicted[index]] if right else f"{classes[predicted[index]]}\n({classes[labels[index]]})"
        axis.set_title(text, fontsize=7, color="tab:green" if right else "tab:red")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)
