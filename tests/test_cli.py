"""The command line: train writes a run folder, evaluate and predict use it, bad input is refused
with a clear message. Runs are tiny (--limit) so the whole module takes seconds."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_cnn import data, figures
from tinygrad_cnn.__main__ import main, read_image

TINY = ["--limit", "256", "--epochs", "1", "--batch-size", "32"]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    assert main(["train", *TINY, "--out", str(folder)]) == 0
    return folder


def test_train_writes_metrics_checkpoint_and_config(run_folder):
    metrics = json.loads((run_folder / "metrics.json").read_text())
    history = metrics["history"]
    assert history["epoch"] == [1]
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "images_per_second"):
        assert len(history[key]) == 1
    assert len(history["step_loss"]) == 8  # 256 images in batches of 32
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["test_total"] == 256
    assert metrics["wall_time_seconds"] > 0
    assert metrics["config"]["options"]["epochs"] == 1
    config = json.loads((run_folder / "config.json").read_text())
    assert config["model"] == {"name": "seed", "input_shape": [1, 28, 28], "num_classes": 10, "batch_norm": False}
    assert config["classes"][0] == "T-shirt/top" and len(config["normalize"]["mean"]) == 1
    with np.load(run_folder / "model.npz") as weights:
        assert weights["0.weight"].shape == (8, 1, 5, 5)


@pytest.mark.skipif(not figures.matplotlib_available(), reason="figures need matplotlib")
def test_train_draws_the_figures(run_folder):
    for name in ("curves.png", "filters.png", "activations.png", "confusion.png", "predictions.png"):
        png = (run_folder / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000, name


def test_train_reports_progress_and_the_final_accuracy(tmp_path, capsys):
    assert main(["train", *TINY, "--no-figures", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    # stderr is not a terminal here, so the plain progress lines are used instead of tqdm's bar
    assert "epoch 1/1" in err and "img/s" in err and "loss" in err
    final = out.strip().splitlines()[-1]
    assert final.startswith("test accuracy ") and "wall time" in final and str(tmp_path) in final


def test_figures_are_skipped_with_a_notice_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(figures, "matplotlib_available", lambda: False)
    assert main(["train", "--limit", "64", "--epochs", "1", "--out", str(tmp_path), "--no-progress"]) == 0
    assert "figures skipped" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.png"))
    assert (tmp_path / "metrics.json").is_file()


def test_batch_norm_variant_trains_and_reloads(tmp_path, capsys):
    assert main(["train", *TINY, "--batch-norm", "--no-figures", "--out", str(tmp_path)]) == 0
    trained = json.loads((tmp_path / "metrics.json").read_text())["test_accuracy"]
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path), "--limit", "256"]) == 0
    # the same 256 test images, and batch norm uses its running statistics both times
    assert f"test accuracy {trained:.2%}" in capsys.readouterr().out


def test_evaluate_prints_the_accuracy_of_the_saved_model(run_folder, capsys):
    expected = json.loads((run_folder / "metrics.json").read_text())
    assert main(["evaluate", str(run_folder / "model.npz"), "--limit", "256"]) == 0
    out = capsys.readouterr().out
    assert "Ankle boot" in out  # the per-class table
    assert f"test accuracy {expected['test_accuracy']:.2%} ({expected['test_correct']}/256)" in out


def test_predict_prints_the_top_three_classes(run_folder, tmp_path, capsys):
    image = data.load_embedded(train=False).images[0, 0]
    np.save(tmp_path / "item.npy", image)
    assert main(["predict", str(run_folder), str(tmp_path / "item.npy")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].endswith("item.npy:") and len(lines) == 4
    probabilities = [float(line.rsplit(None, 1)[1].rstrip("%")) for line in lines[1:]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 100.01
    assert [line.split()[0] for line in lines[1:]] == ["1.", "2.", "3."]


def test_predict_converts_and_resizes_a_colour_picture(run_folder, tmp_path, capsys):
    pil = pytest.importorskip("PIL.Image")
    pixels = (data.load_embedded(train=False).images[1, 0] * 255).astype(np.uint8)
    pil.fromarray(pixels).convert("RGB").resize((64, 64)).save(tmp_path / "big.png")
    converted = read_image(tmp_path / "big.png", (1, 28, 28))
    assert converted.shape == (1, 28, 28) and converted.dtype == np.float32
    # grey again, back at 28x28: the same picture up to the blur of resizing twice
    assert np.corrcoef(converted[0].ravel(), pixels.ravel())[0, 1] > 0.95
    assert main(["predict", str(run_folder), str(tmp_path / "big.png"), "--top", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3


def test_read_image_accepts_array_layouts():
    grey = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    for array in (grey, grey[:, :, None], grey[None], (grey * 255).astype(np.uint8)):
        image = read_image_from(array)
        assert image.shape == (1, 28, 28)
        np.testing.assert_allclose(image[0], grey, atol=1 / 255)
    rgb = np.stack([grey] * 3, axis=-1)  # (H, W, 3) to a colour model and to a grey one
    assert read_image_from(rgb, (3, 28, 28)).shape == (3, 28, 28)
    np.testing.assert_allclose(read_image_from(rgb)[0], grey, atol=1e-5)


def read_image_from(array, shape=(1, 28, 28)):
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "image.npy"
        np.save(path, array)
        return read_image(path, shape)


@pytest.mark.parametrize("argv, message", [
    (["train", "--epochs", "0"], "--epochs: must be positive"),
    (["train", "--batch-size", "many"], "--batch-size: expected a positive int"),
    (["train", "--lr", "-1"], "--lr: must be positive"),
    (["train", "--dataset", "imagenet"], "invalid choice: 'imagenet'"),
    (["train", "--model", "resnet"], "invalid choice: 'resnet'"),
    (["train", "--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["predict", "run"], "the following arguments are required: IMAGE"),
    (["fly"], "invalid choice: 'fly'"),
    ([], "the following arguments are required: COMMAND"),
])
def test_bad_arguments_are_refused_by_argparse(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_checkpoint_or_image_is_one_clear_line(run_folder, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no weights file") and "Traceback" not in err
    assert main(["predict", str(run_folder), str(tmp_path / "missing.png")]) == 2
    assert "error: no image file" in capsys.readouterr().err


def test_imagefolder_without_data_dir_is_explained(capsys):
    assert main(["train", "--dataset", "imagefolder"]) == 2
    assert "needs --data-dir" in capsys.readouterr().err


def test_module_entry_point_shows_help():
    result = subprocess.run([sys.executable, "-m", "tinygrad_cnn", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    for command in ("train", "evaluate", "predict"):
        assert command in result.stdout
