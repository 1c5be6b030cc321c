"""Checkpoints: save/load round trips in .npz without pickle, and compatibility with PyTorch's
state_dict names and layouts in both directions."""
import io
import pickle

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.serialization import CheckpointError


def test_round_trip_keeps_names_order_dtypes_and_values(tmp_path):
    state = {
        "b.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
        "a.num_batches_tracked": np.array(7, dtype=np.int64),
        "mask": np.array([True, False]),
        "scalar": 2.5,
        "as_tensor": Tensor(np.ones(2, dtype=np.float64)),
        "file": np.zeros(1, dtype=np.float32),  # a name that np.savez's keyword arguments would swallow
    }
    path = tmp_path / "model.ckpt"
    tg.save(state, path)
    assert path.exists() and not (tmp_path / "model.ckpt.partial").exists()
    loaded = tg.load(path)
    assert list(loaded) == list(state)
    for name, value in state.items():
        expected = value.data if isinstance(value, Tensor) else np.asarray(value)
        assert loaded[name].dtype == expected.dtype and loaded[name].shape == expected.shape, name
        np.testing.assert_array_equal(loaded[name], expected)
    with np.load(path, allow_pickle=False) as plain:  # a plain .npz for NumPy too
        np.testing.assert_array_equal(plain["b.weight"], state["b.weight"])


def test_save_to_an_open_file_and_load_from_np_savez(tmp_path):
    buffer = io.BytesIO()
    tg.save({"w": np.ones(3, dtype=np.float32)}, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(tg.load(buffer)["w"], np.ones(3, dtype=np.float32))
    np.savez(tmp_path / "numpy.npz", x=np.arange(3))
    np.testing.assert_array_equal(tg.load(tmp_path / "numpy.npz")["x"], np.arange(3))


def test_model_round_trip_through_a_file(tmp_path):
    tg.manual_seed(0)
    model = _tg_cnn()
    for seed in range(2):
        model(_images(seed))
    model.eval()
    tg.save(model.state_dict(), tmp_path / "cnn.npz")
    tg.manual_seed(1)
    fresh = _tg_cnn().eval()
    fresh.load_state_dict(tg.load(tmp_path / "cnn.npz"))
    x = _images(9)
    np.testing.assert_array_equal(fresh(x).data, model(x).data)


def test_save_refuses_what_would_need_pickle(tmp_path):
    path = tmp_path / "bad.npz"
    with pytest.raises(CheckpointError, match="pickle"):
        tg.save({"ragged": np.array([np.zeros(2), np.zeros(3)], dtype=object)}, path)
    with pytest.raises(CheckpointError, match="flat mapping"):
        tg.save({"optimizer": {"lr": 0.1}}, path)
    with pytest.raises(CheckpointError, match="strings"):
        tg.save({0: np.zeros(1)}, path)
    assert not path.exists() and not list(tmp_path.iterdir())


def test_load_refuses_pickled_content(tmp_path):
    object_arrays = tmp_path / "objects.npz"
    np.savez(object_arrays, w=np.array([{"code": "anything"}], dtype=object))  # NumPy pickles it
    with pytest.raises(CheckpointError, match="pickle"):
        tg.load(object_arrays)
    pickled = tmp_path / "pickled.npz"
    pickled.write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    with pytest.raises(CheckpointError, match="pickle"):
        tg.load(pickled)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(2))
    with pytest.raises(CheckpointError, match="single array"):
        tg.load(single)


# ---- compatibility with PyTorch ---------------------------------------------------------------------


def _tg_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 2 * 2, 5),
    )


def _torch_cnn(torch):
    t = torch.nn
    return t.Sequential(
        t.Conv2d(1, 4, 3, padding=1), t.BatchNorm2d(4), t.ReLU(), t.MaxPool2d(2),
        t.Conv2d(4, 6, 3, stride=1, bias=False), t.BatchNorm2d(6), t.ReLU(),
        t.Flatten(), t.Linear(6 * 2 * 2, 5),
    )


def _images(seed, n=8):
    return Tensor((np.random.default_rng(seed).standard_normal((n, 1, 8, 8)) * 2 + 0.5).astype(np.float32))


def _assert_same_logits(ours, theirs, torch):
    x = _images(100)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x.data)).numpy()
    got = ours(x).data
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_our_checkpoint_loads_into_torch_and_gives_the_same_logits(tmp_path):
    torch = pytest.importorskip("torch")
    tg.manual_seed(0)
    ours = _tg_cnn()
    for seed in range(3):
        ours(_images(seed))  # train mode: moves the BatchNorm running statistics away from 0 and 1
    ours.eval()
    tg.save(ours.state_dict(), tmp_path / "cnn.npz")

    theirs = _torch_cnn(torch).eval()
    state = {name: torch.from_numpy(array) for name, array in tg.load(tmp_path / "cnn.npz").items()}
    assert list(state) == list(theirs.state_dict())
    for name, value in theirs.state_dict().items():
        assert state[name].shape == value.shape and state[name].dtype == value.dtype, name
    theirs.load_state_dict(state, strict=True)
    assert int(theirs[1].num_batches_tracked) == 3
    assert not np.allclose(theirs[1].running_var.numpy(), 1)
    _assert_same_logits(ours, theirs, torch)


def test_torch_state_dict_loads_into_ours_and_gives_the_same_logits(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = _torch_cnn(torch)
    for seed in range(3):
        theirs(torch.from_numpy(_images(seed).data))
    theirs.eval()
    path = tmp_path / "from_torch.npz"
    tg.save({name: value.numpy() for name, value in theirs.state_dict().items()}, path)
    ours = _tg_cnn().eval()
    ours.load_state_dict(tg.load(path))
    assert int(ours[5].num_batches_tracked.item()) == 3
    _assert_same_logits(ours, theirs, torch)
