"""tinygrad_cnn.vision.datasets: torchvision's layout of root, per-sample (PIL image, int) samples,
transform and target_transform, and batching them with the DataLoader.

The dataset files are small random splits in the official formats, written with the package's
IDX writer and the CIFAR record layout (the readers themselves are tested in tests/data/)."""
import dataclasses
import functools
import hashlib
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from tinygrad_cnn import data
from tinygrad_cnn.data import DatasetError
from tinygrad_cnn.data.idx import write_idx
from tinygrad_cnn.utils.data import DataLoader
from tinygrad_cnn.vision import datasets, transforms


@pytest.fixture(autouse=True)
def private_data_places(monkeypatch, tmp_path):
    """Nothing outside tmp_path is searched: no $TINYGRAD_CNN_DATA, an empty user cache."""
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def write_mnist(raw_folder, count=5, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=count, dtype=np.uint8)
    raw_folder.mkdir(parents=True)
    write_idx(raw_folder / "train-images-idx3-ubyte.gz", images)
    write_idx(raw_folder / "train-labels-idx1-ubyte.gz", labels)
    return images, labels


def write_cifar(root, per_batch=2, seed=0):
    """A cifar-10-batches-bin folder: per image one label byte, then the R, G and B planes."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    content = {}
    for name in [f"data_batch_{n}.bin" for n in range(1, 6)] + ["test_batch.bin"]:
        images = rng.integers(0, 256, size=(per_batch, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch, dtype=np.uint8)
        (folder / name).write_bytes(b"".join(bytes([int(label)]) + image.tobytes() for image, label in zip(images, labels)))
        content[name] = images, labels
    (folder / "batches.meta.txt").write_text("\n".join(f"class{k}" for k in range(10)) + "\n")
    return content


def test_mnist_reads_torchvisions_layout_and_gives_pil_images_and_ints(tmp_path):
    images, labels = write_mnist(tmp_path / "MNIST" / "raw")
    dataset = datasets.MNIST(tmp_path, train=True)
    assert len(dataset) == 5 and dataset.classes[3] == "3 - three" and dataset.class_to_idx["9 - nine"] == 9
    image, label = dataset[2]
    assert isinstance(image, Image.Image) and image.mode == "L" and image.size == (28, 28)
    np.testing.assert_array_equal(np.asarray(image), images[2])
    assert type(label) is int and label == labels[2]
    np.testing.assert_array_equal(dataset.data, images)
    np.testing.assert_array_equal(dataset.targets, labels)


def test_transform_and_target_transform_apply_per_sample(tmp_path):
    images, labels = write_mnist(tmp_path / "FashionMNIST" / "raw", seed=1)
    dataset = datasets.FashionMNIST(tmp_path, transform=transforms.ToTensor(), target_transform=lambda y: y + 100)
    image, label = dataset[0]
    assert image.shape == (1, 28, 28) and image.dtype == np.float32
    np.testing.assert_allclose(image.data[0], images[0] / 255, rtol=1e-6)
    assert label == labels[0] + 100 and dataset.classes[0] == "T-shirt/top"


def test_a_dataloader_batches_vision_samples(tmp_path):
    images, labels = write_mnist(tmp_path / "MNIST" / "raw", count=7, seed=2)
    normalize = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.25,))])
    loader = DataLoader(datasets.MNIST(tmp_path, transform=normalize), batch_size=3, shuffle=False, num_workers=2)
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(3, 1, 28, 28), (3, 1, 28, 28), (1, 1, 28, 28)]
    assert batches[0][1].dtype == np.int64 and batches[0][1].data.tolist() == labels[:3].tolist()
    np.testing.assert_allclose(batches[1][0].data[0, 0], (images[3] / 255 - 0.5) / 0.25, rtol=1e-5, atol=1e-6)


def test_mnist_missing_files_say_where_they_were_looked_for(tmp_path):
    with pytest.raises(DatasetError, match="MNIST"):
        datasets.MNIST(tmp_path / "empty")


def test_cifar10_gives_rgb_images_in_hwc_order(tmp_path):
    content = write_cifar(tmp_path)
    train, test = datasets.CIFAR10(tmp_path, train=True), datasets.CIFAR10(tmp_path, train=False)
    assert len(train) == 10 and len(test) == 2 and train.classes[4] == "class4"
    assert train.data.shape == (10, 32, 32, 3) and train.data.dtype == np.uint8
    image, label = test[1]
    expected_chw, expected_labels = content["test_batch.bin"]
    assert image.mode == "RGB" and label == expected_labels[1]
    np.testing.assert_array_equal(np.asarray(image), expected_chw[1].transpose(1, 2, 0))
    np.testing.assert_array_equal(transforms.ToTensor()(image).data, expected_chw[1] / np.float32(255))


def write_python_cifar(root, per_batch=3, protocol=2, extra=None):
    """root/cifar-10-batches-py as the official Python version: pickled dicts of uint8 rows."""
    import pickle

    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(4)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows, labels = rng.integers(0, 256, (per_batch, 3072)).astype(np.uint8), [int(v) for v in rng.integers(0, 10, per_batch)]
        entry = {b"batch_label": name.encode(), b"labels": labels, b"data": rows, b"filenames": [b"x.png"] * per_batch}
        if extra is not None and name == "test_batch":
            entry[b"extra"] = extra
        (folder / name).write_bytes(pickle.dumps(entry, protocol=protocol))
        written[name] = (rows, labels)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=protocol))
    return written


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar10_reads_torchvisions_python_version(tmp_path, protocol):
    written = write_python_cifar(tmp_path, protocol=protocol)
    train, test = datasets.CIFAR10(tmp_path), datasets.CIFAR10(tmp_path, train=False)
    assert len(train) == 15 and len(test) == 3 and train.classes[0] == "airplane"
    rows, labels = written["test_batch"]
    image, label = test[2]
    assert image.mode == "RGB" and label == labels[2]
    np.testing.assert_array_equal(np.asarray(image), rows[2].reshape(3, 32, 32).transpose(1, 2, 0))


class Payload:
    """Unpickling this would run os.system: the reader must refuse to build it."""

    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_cifar10_python_version_refuses_anything_a_batch_never_holds(tmp_path):
    write_python_cifar(tmp_path, extra=Payload())
    with pytest.raises(DatasetError, match="posix.system|os.system|never holds"):
        datasets.CIFAR10(tmp_path, train=False)


def test_image_folder_gives_rgb_pil_images_and_class_indices(tmp_path):
    rng = np.random.default_rng(0)
    written = {}
    for name in ("dog", "cat"):
        (tmp_path / name).mkdir()
        pixels = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / name / "a.png")
        written[name] = pixels
    Image.fromarray(written["dog"][:, :, 0]).save(tmp_path / "dog" / "grey.png")   # a grey file becomes RGB
    dataset = datasets.ImageFolder(tmp_path, target_transform=str)
    assert dataset.classes == ["cat", "dog"] and dataset.class_to_idx == {"cat": 0, "dog": 1}
    assert dataset.targets == [0, 1, 1] and len(dataset) == 3
    image, label = dataset[1]
    assert image.mode == "RGB" and label == "1"
    np.testing.assert_array_equal(np.asarray(image), written["dog"])
    grey, _ = dataset[2]
    assert grey.mode == "RGB" and (np.asarray(grey)[:, :, 1] == written["dog"][:, :, 0]).all()
    loaded = datasets.ImageFolder(tmp_path, loader=lambda path: path)
    assert loaded[0][0].endswith("a.png")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_true_fetches_into_torchvisions_layout(tmp_path, monkeypatch):
    """A real HTTP server on 127.0.0.1 serves the two files of the training split; their MD5s
    replace the published ones, which these generated files cannot have."""
    served = tmp_path / "served"
    images, labels = write_mnist(served)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        md5 = {path.name: hashlib.md5(path.read_bytes()).hexdigest() for path in served.iterdir()}
        source = dataclasses.replace(data.FashionMNIST.source, md5=md5, system_folders=(),
                                     mirrors=(f"http://127.0.0.1:{server.server_address[1]}/",))
        monkeypatch.setattr(data.FashionMNIST, "source", source)
        dataset = datasets.FashionMNIST(tmp_path / "root", train=True, download=True)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    raw = tmp_path / "root" / "FashionMNIST" / "raw"
    assert sorted(path.name for path in raw.iterdir()) == sorted(md5)
    np.testing.assert_array_equal(dataset.data, images)
    assert dataset[4][1] == labels[4]
