"""figures.py: what each figure shows, read back from the matplotlib figure before it is saved."""
import numpy as np
import pytest

from tinygrad_cnn import figures, models

pytestmark = pytest.mark.skipif(not figures.matplotlib_available(), reason="figures need matplotlib")


@pytest.fixture
def drawn(monkeypatch, tmp_path):
    """Keeps the figures that would be saved (and still writes the PNG)."""
    kept = []

    def keep(fig, path):
        kept.append(fig)
        fig.savefig(path)

    monkeypatch.setattr(figures, "_save", keep)
    yield kept
    for fig in kept:
        figures._pyplot().close(fig)


def _history(epochs=3, per_epoch=40):
    steps = list(np.geomspace(2.3, 0.25, epochs * per_epoch))
    return {"epoch": list(range(1, epochs + 1)), "step_loss": steps,
            "train_loss": [float(np.mean(steps[e * per_epoch:(e + 1) * per_epoch])) for e in range(epochs)],
            "test_loss": [0.9, 0.5, float("nan")][:epochs], "train_accuracy": [0.5, 0.7, 0.8][:epochs],
            "test_accuracy": [0.6, 0.75, 0.8][:epochs]}


def test_the_loss_curve_shows_the_whole_run_with_epoch_means_at_epoch_ends(drawn, tmp_path):
    figures.plot_curves(_history(), tmp_path / "curves.png")
    loss_axes = drawn[0].axes[0]
    assert loss_axes.get_yscale() == "log"
    low, high = loss_axes.get_ylim()
    assert low <= 0.25 and high >= 2.3  # the first batch and the last are both on the axis
    lines = {line.get_label(): line for line in loss_axes.get_lines()}
    assert list(lines["train (epoch mean)"].get_xdata()) == [40, 80, 120]  # the batch ending each epoch
    assert list(lines["test (end of epoch)"].get_xdata()) == [40, 80]  # the NaN is left out, not drawn
    assert len(lines["train (each batch)"].get_xdata()) == 120


def test_activation_maps_share_one_colour_scale_per_layer_and_say_where_they_were_taken(drawn, tmp_path):
    image = np.random.default_rng(0).random((1, 12, 12), dtype=np.float32)
    model = models.seed_net((1, 12, 12), 3)
    activations, _ = figures.capture_activations(model, image)
    figures.plot_activations(image, activations, tmp_path / "maps.png", "title")
    fig = drawn[0]
    assert "before the ReLU" in fig._suptitle.get_text()
    maps = [axis for axis in fig.axes if axis.images and axis.images[0].get_cmap().name == "RdBu_r"]
    assert len(maps) == 16  # two layers of 8 maps
    for layer in (maps[:8], maps[8:]):
        limits = {axis.images[0].get_clim() for axis in layer}
        assert len(limits) == 1
        (low, high), = limits
        assert low == -high > -np.inf
    colour_bars = [axis for axis in fig.axes if axis.get_label().startswith("colour bar of")]
    assert len(colour_bars) == 2


def test_confusion_cells_that_round_to_zero_are_blank(drawn, tmp_path):
    labels = np.array([0] * 300 + [1] * 10)
    predicted = np.array([0] * 299 + [1] + [1] * 10)  # 1 of 300: 0.33%, rounds to 0
    figures.plot_confusion(labels, predicted, ["a", "b"], tmp_path / "confusion.png")
    texts = sorted(text.get_text() for text in drawn[0].axes[0].texts)
    assert texts == ["100", "100"]
