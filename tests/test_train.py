"""train.py: the loop stops on a non-finite loss and on request, and a run continued from its
checkpoint ends bit for bit where an uninterrupted run ends, in process and across a real
SIGINT or SIGTERM sent to a ``python -m tinygrad_cnn train`` subprocess."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import data, nn, optim
from tinygrad_cnn import train as training
from tinygrad_cnn.__main__ import main
from tinygrad_cnn.serialization import CheckpointError

ROOT = Path(__file__).resolve().parents[1]
RUN = ["--limit", "384", "--batch-size", "32", "--epochs", "3", "--no-progress", "--no-figures", "--seed", "5"]


def _setup(seed=0, lr=0.01):
    """A small model, optimizer, schedule and loaders that use dropout, augmentation and shuffling."""
    tg.manual_seed(seed)
    rng = np.random.default_rng(1)
    images = rng.random((48, 1, 8, 8), dtype=np.float32)
    labels = rng.integers(0, 3, 48)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * 6 * 6, 3))
    optimizer = optim.Adam(model.parameters(), lr=lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=12)
    augment = data.transforms.RandomCrop(8, padding=1)
    train_loader = data.DataLoader(data.TensorDataset(images, labels), 16, shuffle=True, transform=augment)
    test_loader = data.DataLoader(data.TensorDataset(images, labels), 48)
    return model, optimizer, scheduler, train_loader, test_loader


def _fit(parts, epochs, **options):
    model, optimizer, scheduler, train_loader, test_loader = parts
    return training.fit(model, optimizer, train_loader, test_loader, epochs, scheduler, progress=False,
                        log=None, **options)


def test_resuming_from_a_checkpoint_is_bit_identical_in_process(tmp_path):
    whole = _setup()
    expected_history = _fit(whole, 4)

    first = _setup()
    _fit(first, 2, after_epoch=lambda history: training.save_checkpoint(tmp_path / "c.npz", first[0], first[1],
                                                                        first[2], history))
    tg.manual_seed(123)  # whatever happens in between: the checkpoint restores the generator
    second = _setup(seed=99)
    history, unfinished = training.load_checkpoint(tmp_path / "c.npz", second[0], second[1], second[2])
    assert history["epoch"] == [1, 2] and unfinished is None
    history = _fit(second, 4, history=history)
    assert history["step_loss"] == expected_history["step_loss"]
    for name, value in whole[0].state_dict().items():
        assert value.tobytes() == second[0].state_dict()[name].tobytes(), name


@pytest.mark.parametrize("stop_after", [2, 5], ids=["in-epoch-1", "in-epoch-2"])
def test_resuming_from_the_middle_of_an_epoch_is_bit_identical(tmp_path, stop_after):
    whole = _setup()
    expected = _fit(whole, 3)

    first = _setup()
    calls = []
    with pytest.raises(training.Interrupted) as info:  # 3 batches per epoch: stop inside an epoch
        # asked after each batch and after each epoch: call 5 comes after the first batch of epoch 2
        _fit(first, 3, should_stop=lambda: calls.append(1) or len(calls) == stop_after)
    stop = info.value
    assert stop.unfinished is not None and stop.unfinished["batch"] == stop.batch < stop.batches
    training.save_checkpoint(tmp_path / "c.npz", *first[:3], stop.history, stop.unfinished)

    second = _setup(seed=42)
    history, unfinished = training.load_checkpoint(tmp_path / "c.npz", *second[:3])
    assert unfinished["batch"] == stop.batch
    history = _fit(second, 3, history=history, unfinished=unfinished)
    assert history["step_loss"] == expected["step_loss"]
    assert history["train_loss"] == expected["train_loss"] and history["lr"] == expected["lr"]
    for name, value in whole[0].state_dict().items():
        assert value.tobytes() == second[0].state_dict()[name].tobytes(), name


def test_a_checkpoint_of_another_model_is_refused_before_reading(tmp_path):
    parts = _setup()
    _fit(parts, 1, after_epoch=lambda h: training.save_checkpoint(tmp_path / "c.npz", *parts[:3], h))
    other = nn.Sequential(nn.Conv2d(1, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 6 * 6, 3))
    optimizer = optim.Adam(other.parameters())
    with pytest.raises(CheckpointError, match="shape"):
        training.load_checkpoint(tmp_path / "c.npz", other, optimizer, None)


def test_a_non_finite_loss_stops_training_before_it_reaches_the_weights():
    model, optimizer, scheduler, train_loader, test_loader = parts = _setup(lr=1e30)
    optimizer.param_groups[0]["weight_decay"] = float("inf")
    with _no_warnings():
        with pytest.raises(training.Diverged) as info:
            _fit(parts, 3)
    assert info.value.epoch == 1 and info.value.batch is not None
    assert "loss" in str(info.value) and "epoch 1" in str(info.value)
    assert info.value.history["epoch"] == [] and info.value.history["step_loss"] == []


def test_a_stop_request_ends_the_epoch_after_the_current_batch():
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) == 2  # after the second batch of the first epoch

    with pytest.raises(training.Interrupted) as info:
        _fit(_setup(), 3, should_stop=should_stop)
    assert (info.value.epoch, info.value.batch, info.value.batches) == (1, 2, 3)
    assert info.value.history["epoch"] == [] and info.value.history["step_loss"] == []
    assert len(info.value.unfinished["step_loss"]) == 2  # kept apart until the epoch is complete


class _no_warnings:
    """Fails if any warning (such as NumPy's overflow RuntimeWarning) escapes the block."""

    def __enter__(self):
        import warnings
        self._catcher = warnings.catch_warnings(record=True)
        self.caught = self._catcher.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc_info):
        self._catcher.__exit__(*exc_info)
        assert not [str(w.message) for w in self.caught]


# ---- the command line, interrupted for real ---------------------------------------------------


def _weights(folder):
    with np.load(folder / "model.npz") as archive:
        return {name: archive[name].tobytes() for name in archive.files}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole") / "run"
    assert main(["train", *RUN, "--out", str(folder)]) == 0
    return folder


def _cli(*argv, **options):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "tinygrad_cnn", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **options)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signalled_run_resumes_to_the_same_weights_bit_for_bit(signum, uninterrupted, tmp_path):
    folder = tmp_path / "run"
    process = _cli("train", *RUN, "--out", str(folder))
    deadline = time.monotonic() + 120
    while not (folder / "checkpoint.npz").exists():  # the first epoch is saved: interrupt the second
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.005)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, (out, err)
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert f"train --resume {folder}" in last and signal.Signals(signum).name in last, last
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and 1 <= len(metrics["history"]["epoch"]) < 3

    resumed = _cli("train", "--resume", str(folder))
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert "resuming" in out and "test accuracy" in out
    assert _weights(folder) == _weights(uninterrupted)
    final = json.loads((folder / "metrics.json").read_text())
    expected = json.loads((uninterrupted / "metrics.json").read_text())
    assert final["history"]["step_loss"] == expected["history"]["step_loss"]
    assert final["test_accuracy"] == expected["test_accuracy"] and final["status"] == "complete"


def test_a_resumed_epoch_counts_its_progress_from_the_batches_already_done():
    import io
    stream = io.StringIO()
    bar = training.Progress(10, "epoch 2/3", stream=stream, lines=5)
    bar.skip(7, 7 * 2.0)
    for _ in range(3):  # batches 8, 9 and 10
        bar.update(32, 1.0)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("epoch 2/3   8/10  loss 1.8750"), lines  # (7 * 2 + 1) / 8
    assert lines[-1].startswith("epoch 2/3  10/10  loss"), lines
