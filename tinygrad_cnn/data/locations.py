"""Where a dataset's files are looked for, and the one error raised when they are nowhere.

For a dataset whose folder name is ``fashion-mnist`` the places are, first match wins:

1. the ``root`` argument, when given: the folder that holds the files themselves;
2. ``$TINYGRAD_CNN_DATA/fashion-mnist``, when that environment variable is set (point it at
   one folder holding a subfolder per dataset, for example on a shared disk);
3. the per-user cache ``$XDG_CACHE_HOME/tinygrad_cnn/fashion-mnist``
   (``~/.cache/tinygrad_cnn/fashion-mnist`` when ``XDG_CACHE_HOME`` is not set);
4. folders where system packages install the dataset, such as
   ``/usr/share/datasets/fashion-mnist`` from Debian's ``dataset-fashion-mnist``.

A place counts only if it holds every file the requested split needs. With
``download=True`` missing files are fetched into the first of places 1-3 that applies.
"""
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

from .errors import DatasetError

DATA_ENV_VAR = "TINYGRAD_CNN_DATA"


@dataclass(frozen=True)
class DatasetSource:
    """What is needed to find or fetch one dataset: names, mirrors, checksums, system folders."""

    name: str                     # shown in messages, e.g. "Fashion-MNIST"
    folder: str                   # subfolder under $TINYGRAD_CNN_DATA and the cache
    mirrors: tuple[str, ...]      # base URLs; a file's URL is mirror + file name
    md5: dict[str, str]           # published MD5 of each downloadable file
    sizes: dict[str, int] = field(default_factory=dict)   # its size in bytes: the download cap
    system_folders: tuple[tuple[str, str], ...] = ()   # (folder, what installs it)
    install_hint: str = ""        # another way to get the files, e.g. an apt command


def user_cache_folder() -> Path:
    """``$XDG_CACHE_HOME/tinygrad_cnn``, or ``~/.cache/tinygrad_cnn``."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "tinygrad_cnn"


class SearchPlace(NamedTuple):
    label: str                 # what the place is, e.g. "user cache"
    folder: Path | None        # None when the place does not apply
    why_not: str = ""          # why it does not apply


def search_places(source: DatasetSource, root=None) -> list[SearchPlace]:
    """Every place to look, in order of preference."""
    env_value = os.environ.get(DATA_ENV_VAR)
    return [
        SearchPlace("root argument", Path(root) if root is not None else None, "not given"),
        SearchPlace(f"${DATA_ENV_VAR}/{source.folder}",
                    Path(env_value) / source.folder if env_value else None, f"{DATA_ENV_VAR} is not set"),
        SearchPlace("user cache", user_cache_folder() / source.folder),
        *[SearchPlace(label, Path(folder)) for folder, label in source.system_folders],
    ]


def find_folder(source: DatasetSource, required: list[str], root=None) -> Path | None:
    """The first place holding all the ``required`` files (paths relative to it), or None."""
    for place in search_places(source, root):
        if place.folder is not None and all((place.folder / name).is_file() for name in required):
            return place.folder
    return None


def download_folder(source: DatasetSource, root=None) -> Path:
    """Where downloads go: the first of root, ``$TINYGRAD_CNN_DATA/<folder>``, user cache."""
    return next(place.folder for place in search_places(source, root)[:3] if place.folder is not None)


def not_found_error(source: DatasetSource, required: list[str], root=None,
                    download_failure: Exception | None = None) -> DatasetError:
    """One message saying every place that was searched and every way to get the files."""
    lines = [f"{source.name} files not found: {', '.join(required)}", "Looked in:"]
    for place in search_places(source, root):
        lines.append(f"  - {place.label}: {place.folder if place.folder is not None else place.why_not}")
    if download_failure is not None:
        lines.append(f"Download failed: {download_failure}")
    lines.append("To get the files:")
    if download_failure is None:
        lines.append(f"  - pass download=True to fetch them into {download_folder(source, root)}")
    else:
        lines.append("  - retry download=True once the network works, or pass mirrors=[base URL] "
                     "naming a server that has the files")
    if source.install_hint:
        lines.append(f"  - or {source.install_hint}")
    lines.append(f"  - or download {', '.join(source.md5)} from {source.mirrors[0]} "
                 f"yourself into one of the folders above")
    return DatasetError("\n".join(lines))


def find_or_download(source: DatasetSource, required: list[str], root=None, download: bool = False,
                     fetch: Callable[[Path], None] | None = None) -> Path:
    """The folder holding the ``required`` files, calling ``fetch(folder)`` to download them
    into ``download_folder`` when they are nowhere and ``download`` is true."""
    found = find_folder(source, required, root)
    if found is not None:
        return found
    if not download or fetch is None:
        raise not_found_error(source, required, root)
    destination = download_folder(source, root)
    try:
        fetch(destination)
    except DatasetError as failure:
        raise not_found_error(source, required, root, download_failure=failure) from failure
    missing = [name for name in required if not (destination / name).is_file()]
    if missing:
        raise not_found_error(source, required, root,
                              download_failure=DatasetError(f"still missing after download: {missing}"))
    return destination
