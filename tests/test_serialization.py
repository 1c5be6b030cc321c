"""serialization.py: save/load round trips in .npz without pickle, reading bounded by what the
file holds and what the caller expects (a small file claiming a 1 GiB array is refused without
allocating it), and compatibility with PyTorch's state_dict names and layouts in both directions."""
import io
import pickle
import time
import tracemalloc
import zipfile

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


# ---- bounded reading -----------------------------------------------------------------------------


def _npy_header(shape, dtype=np.float32) -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                  "fortran_order": False, "shape": shape})
    return header.getvalue()


def _bomb(path, claimed_bytes: int, honest: bool = True):
    """An .npz whose one member claims a float32 array of ``claimed_bytes``. Honest: the member
    really holds that many zero bytes, deflated, so the file is small and the entry's declared
    size agrees with the header. Dishonest: a few bytes follow the header. Written in 1 MiB pieces,
    so building it never holds the array in memory."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("0.weight.npy", "w", force_zip64=True) as member:
            member.write(_npy_header((claimed_bytes // 4,)))
            piece = bytes(2**20)
            for _ in range(claimed_bytes // len(piece) if honest else 0):
                member.write(piece)
            if not honest:
                member.write(piece[:64])


def _peak_megabytes(function) -> float:
    tracemalloc.start()
    try:
        function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20


def test_a_small_file_claiming_a_gigabyte_is_refused_without_allocating_it(tmp_path):
    path = tmp_path / "bomb.npz"
    _bomb(path, 2**30)
    assert path.stat().st_size < 8 * 2**20  # about 4.6 MB on disk for 1 GiB of zeros
    expected = {"0.weight": np.zeros((8, 1, 5, 5), np.float32), "0.bias": np.zeros(8, np.float32)}
    started = time.perf_counter()

    def refuse():
        with pytest.raises(CheckpointError, match=r"'0.weight' has shape \(268435456,\), expected \(8, 1, 5, 5\)"):
            tg.load(path, expected)
    peak = _peak_megabytes(refuse)
    assert peak < 50, f"peak {peak:.1f} MB"  # measured: about 0.1 MB
    assert time.perf_counter() - started < 5  # the gigabyte is never inflated either


def test_a_header_claiming_more_than_its_entry_holds_is_refused_without_expectations(tmp_path):
    path = tmp_path / "liar.npz"
    _bomb(path, 2**30, honest=False)

    def refuse():
        with pytest.raises(CheckpointError, match="is damaged: the array '0.weight' claims shape"):
            tg.load(path)
    peak = _peak_megabytes(refuse)
    assert peak < 50, f"peak {peak:.1f} MB"


def test_expected_names_and_shapes_are_checked_before_reading(tmp_path):
    path = tmp_path / "model.npz"
    tg.save({"w": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float32)}, path)
    assert set(tg.load(path, {"w": (2, 3), "b": (3,)})) == {"w", "b"}
    assert set(tg.load(path, {"w": (2, 3), "b": (3,), "absent": (1,)})) == {"w", "b"}  # missing: the caller's call
    with pytest.raises(CheckpointError, match="unexpected array 'b'"):
        tg.load(path, {"w": (2, 3)})
    with pytest.raises(CheckpointError, match="'w' has shape \\(2, 3\\), expected \\(3, 2\\)"):
        tg.load(path, {"w": (3, 2), "b": (3,)})

    def shape_of(name):  # a function may stand for the mapping, raising KeyError for strangers
        return (2, 3) if name == "w" else None
    assert set(tg.load(path, shape_of)) == {"w", "b"}


def test_a_member_of_unknown_shape_is_bounded(tmp_path, monkeypatch):
    from tinygrad_cnn import serialization
    path = tmp_path / "meta.npz"
    tg.save({"meta": np.zeros(1000, np.uint8)}, path)
    assert tg.load(path, {"meta": None})["meta"].shape == (1000,)
    monkeypatch.setattr(serialization, "UNSHAPED_MEMBER_LIMIT", 999)
    with pytest.raises(CheckpointError, match="1,000 bytes, more than the 999 allowed"):
        tg.load(path, {"meta": None})


@pytest.mark.parametrize("content, expected", [
    (b"", "not an .npz"), (b"PK\x03\x04 and then nothing", "damaged or truncated"),
    (b"plain text", "not an .npz"),
])
def test_files_that_are_not_checkpoints_are_refused_with_their_name(tmp_path, content, expected):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=expected) as info:
        tg.load(path)
    assert str(path) in str(info.value)


def test_a_truncated_checkpoint_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    tg.save({"w": np.arange(1000, dtype=np.float32)}, path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        tg.load(path)


def test_a_failed_save_keeps_the_previous_file_and_leaves_no_partial(tmp_path, monkeypatch):
    import errno
    from tinygrad_cnn import serialization
    path = tmp_path / "model.npz"
    tg.save({"w": np.ones(3, np.float32)}, path)

    def full_disk(file, arrays):
        file.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(serialization, "_write_npz", full_disk)
    with pytest.raises(OSError, match="No space left"):
        tg.save({"w": np.zeros(3, np.float32)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(tg.load(path)["w"], np.ones(3, np.float32))
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


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
