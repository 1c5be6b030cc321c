"""Downloading dataset files safely: checksum verified, written atomically, never half-written.

A file is streamed into a temporary file next to its destination while its MD5 is computed.
Only when the transfer is complete and the checksum equals the published one is the temporary
file renamed to the real name (``os.replace`` within one folder is atomic). On any failure
(HTTP error, dropped connection, wrong checksum, Ctrl-C) the temporary file is deleted, so a
folder never holds a truncated or corrupt file under a name that a later run would trust.

Only the standard library's urllib is used.
"""
import hashlib
import http.client
import os
import tempfile
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from .errors import DatasetError
from .locations import DatasetSource

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 60


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


def download_file(url: str, destination: Path, md5: str) -> None:
    """Fetch ``url`` to ``destination`` if its MD5 is ``md5``; raise DatasetError otherwise."""
    try:
        with writing_atomically(destination) as temp_file, \
                urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            announced = response.headers.get("Content-Length")
            digest = hashlib.md5(usedforsecurity=False)
            received = 0
            while chunk := response.read(CHUNK_BYTES):
                temp_file.write(chunk)
                digest.update(chunk)
                received += len(chunk)
            # urllib returns a short body without complaint when the connection drops.
            if announced is not None and received != int(announced):
                raise DatasetError(f"download of {url} was interrupted: "
                                   f"received {received} of {announced} bytes")
            if digest.hexdigest() != md5:
                raise DatasetError(f"checksum mismatch for {url}: expected MD5 {md5}, "
                                   f"got {digest.hexdigest()} ({received} bytes)")
    except (OSError, http.client.HTTPException) as error:   # URLError/HTTPError are OSErrors
        raise DatasetError(f"download of {url} failed: {error}") from error


def download_from_mirrors(source: DatasetSource, filename: str, folder: Path,
                          mirrors=None) -> Path:
    """Put a verified copy of ``filename`` in ``folder``, trying each mirror in turn.

    A copy already there with the right checksum is kept. ``mirrors`` (base URLs) replaces
    ``source.mirrors``, for example to use a local copy of the files; one URL may be a string.
    """
    destination = Path(folder) / filename
    md5 = source.md5[filename]
    if destination.is_file() and md5_of_file(destination) == md5:
        return destination
    if isinstance(mirrors, str):
        mirrors = (mirrors,)
    failures = []
    for mirror in mirrors or source.mirrors:
        try:
            download_file(mirror.rstrip("/") + "/" + filename, destination, md5)
            return destination
        except DatasetError as failure:
            failures.append(str(failure))
    raise DatasetError(f"could not download {filename}: " + "; ".join(failures))
