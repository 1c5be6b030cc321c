"""The command line: train writes a run folder, evaluate and predict use it, bad input is refused
with a clear message. Runs are tiny (--limit) so the whole module takes seconds."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import data, figures
from tinygrad_cnn.__main__ import _dataset_title, counted, main, read_image

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
    (["train", "--seed", "-1"], "--seed: must be between 0"),
    (["train", "--weight-decay", "inf"], "--weight-decay: must be a finite number"),
    (["train", "--weight-decay", "nan"], "--weight-decay: must be a finite number"),
    (["train", "--lr", "inf"], "--lr: must be positive"),
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
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 1
    assert _one_error_line(capsys).startswith("error: no such file or folder")
    assert main(["evaluate", str(tmp_path)]) == 1
    assert _one_error_line(capsys).startswith("error: no weights file")
    assert main(["predict", str(run_folder), str(tmp_path / "missing.png")]) == 1
    assert "error: no image file" in _one_error_line(capsys)


def test_imagefolder_without_data_dir_is_explained(capsys):
    assert main(["train", "--dataset", "imagefolder"]) == 1
    assert "needs --data-dir" in _one_error_line(capsys)


def test_module_entry_point_shows_help():
    result = subprocess.run([sys.executable, "-m", "tinygrad_cnn", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    for command in ("train", "evaluate", "predict"):
        assert command in result.stdout


# ---- every problem a user can cause: one line, no traceback ------------------------------------


def _one_error_line(capsys) -> str:
    """The whole of stderr, checked to be one line starting with "error:" (or "warning:")."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


@pytest.fixture
def run_copy(run_folder, tmp_path):
    """A copy of the trained run that a test may damage."""
    import shutil
    return Path(shutil.copytree(run_folder, tmp_path / "copy"))


@pytest.mark.parametrize("edit, expected", [
    (lambda config: "{not json", "is not valid JSON"),
    (lambda config: "[1, 2]", "not a JSON object"),
    (lambda config: {**config, "model": {**config["model"], "name": "resnet"}}, "unknown model 'resnet'"),
    (lambda config: {key: value for key, value in config.items() if key != "classes"}, "no 'classes'"),
    (lambda config: {**config, "model": {"name": "seed"}}, "no 'input_shape', 'num_classes'"),
    (lambda config: {**config, "model": {**config["model"], "input_shape": [1, -28, 28]}}, "input_shape"),
    (lambda config: {**config, "classes": config["classes"][:3]}, "num_classes does not match"),
    (lambda config: {**config, "normalize": {"mean": ["a"], "std": [0.3]}}, "'normalize' needs"),
    (lambda config: {**config, "normalize": {"mean": [0.3], "std": [0]}}, "std > 0"),
])
def test_a_damaged_or_edited_config_is_one_line_naming_the_file(run_copy, edit, expected, capsys):
    path = run_copy / "config.json"
    edited = edit(json.loads(path.read_text()))
    path.write_text(edited if isinstance(edited, str) else json.dumps(edited))
    for argv in (["evaluate", str(run_copy)], ["predict", str(run_copy), str(run_copy / "config.json")]):
        assert main(argv) == 1
        line = _one_error_line(capsys)
        assert line.startswith(f"error: {path}") and expected in line, line


def test_a_huge_config_is_refused_without_reading_it(run_copy, capsys, monkeypatch):
    from tinygrad_cnn import __main__ as cli
    monkeypatch.setattr(cli, "CONFIG_SIZE_LIMIT", 100)  # the real limit is 16 MiB; the copy's config is ~1 kB
    assert main(["evaluate", str(run_copy)]) == 1
    assert "far more than a run's config" in _one_error_line(capsys)


def _damage_weights(folder: Path, how: str) -> None:
    path = folder / "model.npz"
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
    elif how == "not a zip":
        path.write_bytes(b"hello, this is not a checkpoint\n" * 10)
    elif how == "wrong keys":
        state = tg.load(path)
        state["extra.weight"] = state.pop("0.weight")
        tg.save(state, path)
    elif how == "wrong shape":
        state = tg.load(path)
        state["0.weight"] = np.zeros((4, 1, 5, 5), np.float32)
        tg.save(state, path)
    elif how == "missing key":
        state = tg.load(path)
        del state["6.bias"]
        tg.save(state, path)


@pytest.mark.parametrize("how, expected", [
    ("truncated", "damaged or truncated"), ("not a zip", "not an .npz"), ("wrong keys", "unexpected array 'extra.weight'"),
    ("wrong shape", "has shape (4, 1, 5, 5), expected (8, 1, 5, 5)"), ("missing key", "missing keys: 6.bias"),
])
def test_a_damaged_weights_file_is_one_line_naming_it(run_copy, how, expected, capsys):
    _damage_weights(run_copy, how)
    assert main(["evaluate", str(run_copy)]) == 1
    line = _one_error_line(capsys)
    assert f"{run_copy / 'model.npz'}" in line and expected in line, line


def test_non_finite_weights_are_evaluated_with_a_warning(run_copy, capsys):
    state = tg.load(run_copy / "model.npz")
    state["0.weight"][0, 0, 0, 0] = np.nan
    tg.save(state, run_copy / "model.npz")
    assert main(["evaluate", str(run_copy), "--limit", "64"]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("warning:") and "not finite" in err and "0.weight" in err and "Traceback" not in err
    assert "test accuracy" in out


@pytest.mark.parametrize("content", [b"this is text, not a picture", b"\x89PNG\r\n\x1a\n" + b"\0" * 40],
                         ids=["text", "truncated-png"])
def test_predict_on_a_file_that_is_not_an_image_is_one_line(run_folder, tmp_path, content, capsys):
    pytest.importorskip("PIL")
    path = tmp_path / "photo.png"
    path.write_bytes(content)
    assert main(["predict", str(run_folder), str(path)]) == 1
    line = _one_error_line(capsys)
    assert line.startswith(f"error: cannot read {path} as an image"), line


def test_predict_on_a_damaged_npy_is_one_line(run_folder, tmp_path, capsys):
    path = tmp_path / "image.npy"
    path.write_bytes(b"\x93NUMPY garbage")
    assert main(["predict", str(run_folder), str(path)]) == 1
    assert _one_error_line(capsys).startswith(f"error: cannot read {path} as an image")


def test_out_that_is_a_file_or_an_existing_run_is_refused_before_loading(run_folder, tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    assert main(["train", *TINY, "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in _one_error_line(capsys)
    before = {path.name: path.read_bytes() for path in run_folder.iterdir()}
    assert main(["train", *TINY, "--out", str(run_folder)]) == 2
    out = capsys.readouterr()
    assert "already holds a run" in out.err and "--force" in out.err and "loading" not in out.out
    assert {path.name: path.read_bytes() for path in run_folder.iterdir()} == before


def test_force_replaces_an_existing_run(tmp_path, capsys):
    folder = tmp_path / "run"
    assert main(["train", "--limit", "64", "--epochs", "1", "--no-figures", "--no-progress", "--out", str(folder)]) == 0
    assert main(["train", "--limit", "64", "--epochs", "2", "--no-figures", "--no-progress", "--out", str(folder),
                 "--force"]) == 0
    assert json.loads((folder / "metrics.json").read_text())["history"]["epoch"] == [1, 2]


def test_an_unwritable_out_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    # root ignores permission bits, so the unwritable folder is one below a file (and one in /proc)
    for out in (tmp_path / "file" / "run", Path("/proc/tinygrad_cnn_run")):
        assert main(["train", *TINY, "--out", str(out)]) == 1
        captured = capsys.readouterr()
        assert f"error: cannot create the run folder {out}" in captured.err and "Traceback" not in captured.err
        assert "epoch" not in captured.out + captured.err.replace(str(out), "")


def test_a_full_disk_during_training_is_one_line_and_the_saved_epoch_stays_loadable(tmp_path, capsys, monkeypatch):
    import errno
    from tinygrad_cnn import serialization
    writes = []
    real_write = serialization._write_npz

    def fill_the_disk(file, arrays):
        writes.append(1)
        if len(writes) > 2:  # epoch 1 writes the checkpoint and the weights; the disk is full in epoch 2
            file.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(file, arrays)

    monkeypatch.setattr(serialization, "_write_npz", fill_the_disk)
    folder = tmp_path / "run"
    assert main(["train", "--limit", "64", "--epochs", "2", "--no-progress", "--no-figures", "--out", str(folder)]) == 1
    line = _one_error_line(capsys)
    assert "No space left on device" in line and f"--resume {folder}" in line, line
    monkeypatch.undo()
    assert not list(folder.glob("*.partial"))
    assert main(["evaluate", str(folder), "--limit", "64"]) == 0  # the first epoch's weights
    assert json.loads((folder / "metrics.json").read_text())["history"]["epoch"] == [1]


def _strict_json(path):
    def refuse(constant):
        raise ValueError(f"{path} holds {constant}: not strict JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_divergence_is_named_and_the_metrics_stay_strict_json(tmp_path, capsys):
    folder = tmp_path / "run"
    argv = ["train", *TINY, "--optimizer", "sgd", "--lr", "1e20", "--no-figures", "--no-progress", "--out", str(folder)]
    assert main(argv) == 1
    line = _one_error_line(capsys)
    assert line.startswith("error: training diverged") and "epoch 1" in line and "batch" in line
    assert "lower --lr" in line
    metrics = _strict_json(folder / "metrics.json")
    assert metrics["status"] == "diverged" and metrics["diverged"]["epoch"] == 1


@pytest.mark.skipif(not figures.matplotlib_available(), reason="figures need matplotlib")
def test_divergence_in_a_later_epoch_keeps_the_figures_and_metrics_of_the_epochs_before(tmp_path, capsys,
                                                                                         monkeypatch):
    from tinygrad_cnn import train as training
    real_loss, calls = training.F.cross_entropy, []

    def poisoned(logits, labels, *args, **kwargs):
        loss = real_loss(logits, labels, *args, **kwargs)
        if logits.requires_grad:  # a training batch, not an evaluation
            calls.append(1)
            if len(calls) == 11:  # batch 3 of epoch 2
                return loss * float("nan")
        return loss

    monkeypatch.setattr(training.F, "cross_entropy", poisoned)
    folder = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "3", "--no-progress", "--out", str(folder)]) == 1
    line = _one_error_line(capsys)
    assert "loss nan at batch 3/8 of epoch 2" in line and "keeps the 1 epoch before it" in line, line
    metrics = _strict_json(folder / "metrics.json")
    assert metrics["history"]["epoch"] == [1] and len(metrics["history"]["step_loss"]) == 8
    assert metrics["figures"] and all((folder / name).is_file() for name in metrics["figures"])


def test_messages_count_in_the_singular_and_plural(tmp_path, capsys):
    assert main(["train", "--limit", "64", "--epochs", "1", "--no-figures", "--no-progress",
                 "--out", str(tmp_path / "one")]) == 0
    out = capsys.readouterr().out
    assert ", 1 epoch ->" in out and "1 epochs" not in out and "64 training images and 64 test images" in out
    assert counted(1, "batch", "batches") == "1 batch" and counted(2, "batch", "batches") == "2 batches"
    assert counted(1_000, "image") == "1,000 images"


@pytest.mark.parametrize("config, title", [
    ({"dataset": "embedded", "data_dir": None}, "Fashion-MNIST (embedded subset)"),
    ({"dataset": "cifar10", "data_dir": "/data/if"}, "CIFAR-10"),
    ({"dataset": "imagefolder", "data_dir": "/data/flowers/"}, "image folder 'flowers'"),
    ({"dataset": "imagefolder", "data_dir": "."}, "image folder '{cwd}'"),
])
def test_figures_are_titled_after_the_dataset_or_the_folder_given(config, title):
    assert _dataset_title(config) == title.format(cwd=Path.cwd().name)


def test_resume_of_a_run_whose_options_were_edited_is_one_line(run_copy, capsys):
    path = run_copy / "config.json"
    config = json.loads(path.read_text())
    config["options"]["epochs"] = "many"
    path.write_text(json.dumps(config))
    assert main(["train", "--resume", str(run_copy)]) == 1
    line = _one_error_line(capsys)
    assert line.startswith(f"error: {path} is damaged or was edited: option 'epochs' is 'many'"), line


def test_resume_of_a_folder_without_a_run_is_refused(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "no config.json there" in _one_error_line(capsys)
    assert main(["train", "--resume", str(tmp_path), "--lr", "0.1"]) == 2


@pytest.mark.parametrize("argv_tail, expected", [
    (["evaluate", "{run}"], "is not valid JSON"),
    (["train", "--out", "{file}"], "is a file"),
])
def test_a_real_process_prints_one_line_and_no_traceback(run_copy, tmp_path, argv_tail, expected):
    (run_copy / "config.json").write_text("{")
    (tmp_path / "file").write_text("")
    argv = [part.format(run=run_copy, file=tmp_path / "file") for part in argv_tail]
    result = subprocess.run([sys.executable, "-m", "tinygrad_cnn", *argv], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.fixture
def small_disk(tmp_path):
    """A real 2.5 MB file system (tmpfs), where mounting is allowed; skipped elsewhere."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2560k", "tmpfs", str(mount_point)],
                                 capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        mounted = False
    if not mounted:
        pytest.skip("cannot mount a small tmpfs here (needs root in a container that allows it)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], capture_output=True, timeout=30)


def test_a_really_full_disk_stops_with_one_line_and_keeps_the_last_epoch(small_disk, capsys):
    # epoch 1 writes checkpoint.npz (weights and Adam's two moments, ~1.3 MB) and model.npz (~0.4 MB);
    # epoch 2's checkpoint is written beside the first one before replacing it, and does not fit
    folder = small_disk / "run"
    argv = ["train", "--limit", "64", "--epochs", "3", "--no-progress", "--no-figures", "--out", str(folder)]
    assert main(argv) == 1
    line = _one_error_line(capsys)
    assert "No space left on device" in line and f"--resume {folder}" in line, line
    assert not list(folder.glob("*.partial"))
    assert _strict_json(folder / "metrics.json")["history"]["epoch"] == [1]
    assert main(["evaluate", str(folder), "--limit", "64"]) == 0
    with np.load(folder / "checkpoint.npz") as checkpoint:  # whole and readable
        assert checkpoint["model.0.weight"].shape == (8, 1, 5, 5)


def test_run_folders_started_in_the_same_second_are_distinct(tmp_path, monkeypatch):
    import threading
    from tinygrad_cnn.__main__ import _run_folder
    monkeypatch.chdir(tmp_path)
    made, threads = [], []
    for _ in range(8):  # eight runs of this process at once
        threads.append(threading.Thread(target=lambda: made.append(_run_folder(None, False))))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    script = "from tinygrad_cnn.__main__ import _run_folder\nfor _ in range(4): print(_run_folder(None, False))"
    env = {**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    others = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
              for _ in range(2)]  # and two other processes
    for process in others:
        made += [Path(line) for line in process.communicate(timeout=120)[0].split()]
    assert len(made) == 16 and len(set(made)) == 16
    for folder in made:  # each claimed by its run alone: nothing in it but the run's (empty) config.json
        assert [path.name for path in folder.iterdir()] == ["config.json"] and not (folder / "config.json").stat().st_size


def test_the_same_out_given_to_two_runs_at_once_goes_to_one_of_them(tmp_path):
    from tinygrad_cnn.__main__ import UsageError, _run_folder
    out = tmp_path / "shared"
    assert _run_folder(out, False) == out and (out / "config.json").exists()  # claimed by the first run
    with pytest.raises(UsageError, match="already holds a run"):
        _run_folder(out, False)


# ---- found by a hostile review: nothing a user made may be lost or mixed ---------------------------


def test_resume_refuses_a_run_whose_checkpoint_is_gone(tmp_path, capsys):
    folder = tmp_path / "run"
    assert main(["train", *TINY, "--no-figures", "--out", str(folder)]) == 0
    weights = (folder / "model.npz").read_bytes()
    (folder / "checkpoint.npz").unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(folder), "--epochs", "2"]) == 2
    assert "nothing to continue from" in capsys.readouterr().err
    assert (folder / "model.npz").read_bytes() == weights  # the trained weights are untouched


def test_a_run_folder_being_trained_is_not_trained_by_a_second_process(tmp_path, capsys):
    import fcntl

    folder = tmp_path / "run"
    assert main(["train", *TINY, "--no-figures", "--out", str(folder)]) == 0
    with open(folder / ".lock", "a+") as held:  # stands for another process training it now
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        capsys.readouterr()
        assert main(["train", "--resume", str(folder), "--epochs", "2"]) == 2
        assert "being trained by another process" in capsys.readouterr().err


def test_a_net_the_images_cannot_go_through_is_one_line_and_writes_nothing(tmp_path, capsys):
    from PIL import Image

    for split in ("train", "test"):
        for name in ("a", "b"):
            (tmp_path / "images" / split / name).mkdir(parents=True)
            Image.fromarray(np.full((8, 8, 3), 100, dtype=np.uint8)).save(tmp_path / "images" / split / name / "1.png")
    out = tmp_path / "run"
    code = main(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "images"), "--epochs", "1",
                 "--no-figures", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--model seed cannot take the 3x8x8 images" in err and "Traceback" not in err
    assert not out.exists()


def test_train_and_test_splits_with_different_classes_are_refused(tmp_path, capsys):
    from PIL import Image

    for split, names in (("train", ("a", "b")), ("test", ("a", "c"))):
        for name in names:
            (tmp_path / "images" / split / name).mkdir(parents=True)
            Image.fromarray(np.full((32, 32, 3), 100, dtype=np.uint8)).save(tmp_path / "images" / split / name / "1.png")
    code = main(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "images"), "--model", "cifar",
                 "--epochs", "1", "--no-figures", "--out", str(tmp_path / "run")])
    assert code == 1 and "classes (a, c) differ from the training images' (a, b)" in capsys.readouterr().err


def test_a_bad_pixel_limit_is_named_as_a_setting_not_blamed_on_the_image(run_folder, tmp_path, capsys, monkeypatch):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "g.png")
    monkeypatch.setenv("TINYGRAD_CNN_MAX_IMAGE_PIXELS", "abc")
    capsys.readouterr()
    assert main(["predict", str(run_folder / "model.npz"), str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: TINYGRAD_CNN_MAX_IMAGE_PIXELS='abc'") and "as an image" not in err
