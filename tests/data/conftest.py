"""Shared fixtures for the data tests: tiny dataset files in the official formats, and a real
HTTP server on 127.0.0.1 to download them from.

The file writers here are written from the format descriptions, independently of the
package's own reader and writer, so a parsing bug cannot cancel out in a round trip.
"""
import gzip
import struct
import threading
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

MNIST_FILE_NAMES = {
    True: ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    False: ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def idx_content(array: np.ndarray, magic: int | None = None) -> bytes:
    """IDX bytes: big-endian magic (0x0800 + number of dimensions), sizes, uint8 values."""
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x0800 + array.ndim if magic is None else magic
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_mnist_split(folder, images, labels, train=True):
    """Write images (N, rows, cols) and labels (N,) as the two official .gz files of a split."""
    folder.mkdir(parents=True, exist_ok=True)
    images_name, labels_name = MNIST_FILE_NAMES[train]
    (folder / images_name).write_bytes(gzip.compress(idx_content(images)))
    (folder / labels_name).write_bytes(gzip.compress(idx_content(labels)))
    return folder


def random_mnist_split(count, seed, size=28):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, size, size), dtype=np.uint8)
    labels = rng.integers(0, 10, size=count, dtype=np.uint8)
    return images, labels


def cifar_records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """CIFAR-10 binary records: per image one label byte then 3072 pixel bytes (R, G, B planes)."""
    return b"".join(bytes([int(label)]) + image.astype(np.uint8).tobytes()
                    for image, label in zip(images, labels))


def measure_traced_peak(action) -> tuple[int, Exception | None]:
    """Peak bytes allocated by Python and NumPy while ``action()`` runs (NumPy reports its array
    buffers to tracemalloc), and the exception it raised, if any."""
    tracemalloc.start()
    try:
        action()
        raised = None
    except Exception as error:   # the caller checks which error it was
        raised = error
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, raised


@pytest.fixture(autouse=True)
def private_data_places(monkeypatch, tmp_path):
    """No test reads or writes the real user cache or $TINYGRAD_CNN_DATA."""
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def traced_peak():
    """``traced_peak(action)``: ``(peak bytes, exception or None)`` of calling ``action()``."""
    return measure_traced_peak


@pytest.fixture
def idx_bytes():
    """``idx_bytes(array, magic=None)``: the IDX file content of a uint8 array."""
    return idx_content


@pytest.fixture
def cifar_bytes():
    """``cifar_bytes(images, labels)``: CIFAR-10 binary records."""
    return cifar_records


@pytest.fixture
def mnist_files():
    """``mnist_files(folder, count, seed, train=True)`` writes a random split and returns
    its uint8 ``(images, labels)``."""
    def make(folder, count=6, seed=0, train=True):
        images, labels = random_mnist_split(count, seed)
        write_mnist_split(folder, images, labels, train)
        return images, labels
    return make


@pytest.fixture
def cifar_files():
    """``cifar_files(folder, per_batch, seed)`` writes a complete cifar-10-batches-bin folder and
    returns ``{file name: (images, labels)}``."""
    def make(folder, per_batch=3, seed=0):
        rng = np.random.default_rng(seed)
        batches_folder = folder / "cifar-10-batches-bin"
        batches_folder.mkdir(parents=True, exist_ok=True)
        content = {}
        for name in [f"data_batch_{n}.bin" for n in range(1, 6)] + ["test_batch.bin"]:
            images = rng.integers(0, 256, size=(per_batch, 3, 32, 32), dtype=np.uint8)
            labels = rng.integers(0, 10, size=per_batch, dtype=np.uint8)
            (batches_folder / name).write_bytes(cifar_records(images, labels))
            content[name] = (images, labels)
        names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        (batches_folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
        return content
    return make


class _FileHandler(BaseHTTPRequestHandler):
    """Serves ``server.files[path]``, or a 404. Hostile behaviours, by path:

    - ``server.dropped``: half the body, then the connection is closed;
    - ``server.trickled``: the status line, headers and body one byte every ``server.trickle_seconds``;
    - ``server.endless``: no Content-Length, then zeros until the client goes away;
    - ``server.announced``: a Content-Length of this many bytes, whatever the body.
    """

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path in self.server.trickled:
            self.trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + bytes(1000))
            return
        if self.path in self.server.endless:
            self.send_response(200)
            self.end_headers()
            self.close_connection = True
            try:
                while not self.server.stopping.is_set():
                    self.wfile.write(bytes(64 * 1024))
            except OSError:   # the client hung up, as it should
                pass
            return
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404, "not here")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(self.server.announced.get(self.path, len(body))))
        self.end_headers()
        if self.path in self.server.dropped:
            self.wfile.write(body[:len(body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(body)

    def trickle(self, response: bytes):
        self.close_connection = True
        try:
            for byte in response:
                if self.server.stopping.wait(self.server.trickle_seconds):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
        except OSError:   # the client hung up
            pass

    def log_message(self, *args):   # keep test output quiet
        pass


@pytest.fixture
def http_server():
    """A real HTTP server on 127.0.0.1 (free port). Put bytes in ``server.files['/name']``;
    ``server.url`` is its base URL; ``server.requests`` records the paths asked for; the sets and
    dicts of ``_FileHandler`` make a path misbehave."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FileHandler)
    server.files, server.dropped, server.requests = {}, set(), []
    server.trickled, server.endless, server.announced = set(), set(), {}
    server.trickle_seconds, server.stopping = 0.05, threading.Event()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.stopping.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
