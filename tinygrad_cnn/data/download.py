"""Downloading dataset files safely: checksum verified, written atomically, never half-written.

A file is streamed into a temporary file next to its destination while its MD5 is computed.
Only when the transfer is complete and the checksum equals the published one is the temporary
file renamed to the real name (``os.replace`` within one folder is atomic). On any failure
(HTTP error, dropped connection, wrong checksum, Ctrl-C) the temporary file is deleted, so a
folder never holds a truncated or corrupt file under a name that a later run would trust.

Two limits keep a bad or hostile server from taking more than the file is worth:

- **size:** no more bytes are accepted than the expected file has (``DatasetSource.sizes``, the
  sizes of the official files). A ``Content-Length`` above it is refused before the body is read,
  and a body that runs on is cut off at the first byte too many. A file of unknown size may have
  up to ``MAX_UNLISTED_BYTES``.
- **time:** a wall-clock deadline for the whole transfer, not only a timeout per socket read
  (which a server sending one byte a second never trips): ``DEADLINE_BASE_SECONDS`` plus the
  time the file takes at ``SLOWEST_BYTES_PER_SECOND``, or ``deadline_seconds=`` when given. When
  it passes, the connection's socket is shut down, which wakes any read blocked on the server:
  TLS handshake, headers or body.

Only the standard library's urllib is used.
"""
import hashlib
import http.client
import os
import socket
import tempfile
import threading
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from .errors import DatasetError
from .locations import DatasetSource

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 60                  # for one blocking socket operation (connecting, a read)
MAX_UNLISTED_BYTES = 256 << 20        # a file whose size is not listed in its DatasetSource
DEADLINE_BASE_SECONDS = 60
SLOWEST_BYTES_PER_SECOND = 50_000     # CIFAR-10's 170 MB may take an hour; MNIST's 10 MB, 4 minutes


def md5_of_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def writing_atomically(destination: Path):
    """Yield a temporary file next to ``destination`` that takes its name only if the block
    finishes without an exception; otherwise the temporary file is deleted."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.",
                                         suffix=".part")
    try:
        with os.fdopen(handle, "wb") as temp_file:
            yield temp_file
        # mkstemp makes the file private (0600); a dataset file may be shared, so make it readable.
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, destination)
    finally:
        if os.path.exists(temp_name):
            os.unlink(temp_name)


# ---- the deadline -------------------------------------------------------------------------


class Deadline:
    """A wall-clock limit on one download. A timer thread shuts down the socket of every
    connection opened through ``open(url)`` when the time is up; the read blocked on it then
    returns or fails at once, and ``expired`` tells the caller why."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._sockets = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exception):
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def open(self, url: str):
        """``urllib.request.urlopen(url)`` with this deadline on its connections."""
        handlers = [handler_class() for handler_class in (_WatchedHTTPHandler, _WatchedHTTPSHandler)]
        for handler in handlers:
            handler.deadline = self
        opener = urllib.request.build_opener(*handlers)
        # The per-operation timeout outlasts the deadline, so that the deadline is what stops a
        # stalled transfer, with its own message; it still bounds connecting, before the watch.
        return opener.open(url, timeout=min(TIMEOUT_SECONDS, self.seconds + 1))

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock``'s connection down at the deadline. A duplicate of the socket is kept,
        because TLS takes the original over (``wrap_socket`` detaches it) and the duplicate's
        descriptor cannot be reused by anything else while it is held."""
        with self._lock:
            self._sockets.append(sock.dup())
            if self.expired:
                _shut_down(self._sockets[-1])

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut_down(sock)


def _shut_down(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:   # already closed
        pass


class _WatchingConnections:
    """Mixed into urllib's handlers: each connection they open reports its socket to the deadline."""

    deadline: Deadline

    def do_open(self, http_class, request, **options):
        deadline = self.deadline

        class WatchedConnection(http_class):
            # http.client opens its socket through the attribute _create_connection; watching the
            # socket there covers the TLS handshake too, which happens before connect() returns.
            def __init__(self, *arguments, **keywords):
                super().__init__(*arguments, **keywords)
                self._create_connection = self.create_watched_connection

            def create_watched_connection(self, *arguments, **keywords):
                sock = socket.create_connection(*arguments, **keywords)
                deadline.watch(sock)
                return sock

        return super().do_open(WatchedConnection, request, **options)


class _WatchedHTTPHandler(_WatchingConnections, urllib.request.HTTPHandler):
    pass


class _WatchedHTTPSHandler(_WatchingConnections, urllib.request.HTTPSHandler):
    pass


def deadline_for(size: int) -> float:
    """Seconds allowed for a file of ``size`` bytes: a base plus the time at the slowest rate."""
    return DEADLINE_BASE_SECONDS + size / SLOWEST_BYTES_PER_SECOND


# ---- downloading --------------------------------------------------------------------------


def download_file(url: str, destination: Path, md5: str, size: int | None = None,
                  deadline_seconds: float | None = None) -> None:
    """Fetch ``url`` to ``destination`` if its MD5 is ``md5``; raise DatasetError otherwise.

    ``size`` is the expected size in bytes: a server sending more is cut off. The whole
    transfer must finish within ``deadline_seconds`` (default: ``deadline_for(size)``)."""
    cap = size if size is not None else MAX_UNLISTED_BYTES
    seconds = deadline_seconds if deadline_seconds is not None else deadline_for(cap)
    received = 0
    with Deadline(seconds) as deadline:
        try:
            with writing_atomically(destination) as temp_file, deadline.open(url) as response:
                announced = _content_length(response)
                if announced is not None and announced > cap:
                    raise DatasetError(f"download of {url} refused: the server announces {announced:,} bytes, "
                                       f"but the file has {cap:,}")
                digest = hashlib.md5(usedforsecurity=False)
                # Ask for one byte past the cap, so a body that runs on is noticed without reading more.
                while chunk := response.read(min(CHUNK_BYTES, cap + 1 - received)):
                    received += len(chunk)
                    if received > cap:
                        raise DatasetError(f"download of {url} cut off: the server sent more than the "
                                           f"{cap:,} bytes the file has")
                    temp_file.write(chunk)
                    digest.update(chunk)
                if deadline.expired:
                    raise _deadline_error(url, seconds, received, cap)
                # urllib returns a short body without complaint when the connection drops.
                if announced is not None and received != announced:
                    raise DatasetError(f"download of {url} was interrupted: "
                                       f"received {received} of {announced} bytes")
                if digest.hexdigest() != md5:
                    raise DatasetError(f"checksum mismatch for {url}: expected MD5 {md5}, "
                                       f"got {digest.hexdigest()} ({received} bytes)")
        except (OSError, http.client.HTTPException) as error:   # URLError/HTTPError are OSErrors
            if deadline.expired:
                raise _deadline_error(url, seconds, received, cap) from error
            raise DatasetError(f"download of {url} failed: {error}") from error


def _content_length(response) -> int | None:
    try:
        return int(response.headers["Content-Length"])
    except (TypeError, ValueError):   # absent or not a number: the body's own end decides
        return None


def _deadline_error(url: str, seconds: float, received: int, cap: int) -> DatasetError:
    return DatasetError(f"download of {url} stopped after the deadline of {seconds:g} s, with {received:,} of "
                        f"{cap:,} bytes received; the server is too slow: retry later, or pass mirrors=[...] "
                        "naming a faster one")


def download_from_mirrors(source: DatasetSource, filename: str, folder: Path,
                          mirrors=None, deadline_seconds: float | None = None) -> Path:
    """Put a verified copy of ``filename`` in ``folder``, trying each mirror in turn.

    A copy already there with the right checksum is kept. ``mirrors`` (base URLs) replaces
    ``source.mirrors``, for example to use a local copy of the files; one URL may be a string.
    The size cap and deadline of ``download_file`` apply to each attempt.
    """
    destination = Path(folder) / filename
    md5, size = source.md5[filename], source.sizes.get(filename)
    # A local file larger than the official one cannot match: not worth reading to find out.
    if destination.is_file() and (size is None or destination.stat().st_size <= size) \
            and md5_of_file(destination) == md5:
        return destination
    if isinstance(mirrors, str):
        mirrors = (mirrors,)
    failures = []
    for mirror in mirrors or source.mirrors:
        try:
            download_file(mirror.rstrip("/") + "/" + filename, destination, md5, size, deadline_seconds)
            return destination
        except DatasetError as failure:
            failures.append(str(failure))
    raise DatasetError(f"could not download {filename}: " + "; ".join(failures))
