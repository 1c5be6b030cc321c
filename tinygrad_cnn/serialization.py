"""Checkpoints: ``save(state_dict, path)`` and ``load(path)``, in NumPy's ``.npz`` format.

An ``.npz`` file is a zip archive holding one ``.npy`` file per array, named after its key, so a
checkpoint can be opened with ``np.load`` alone and its names and layouts are PyTorch's
(``features.0.weight`` of shape (out, in, kH, kW), ...): it loads into the equivalent torch model
after ``torch.from_numpy``.

Pickle is never used, in either direction: a pickled object in a checkpoint can run arbitrary code
when loaded. Only plain numeric (and string/boolean) arrays are accepted.

Reading is bounded by what the file can honestly hold. Each member's ``.npy`` header (shape and
dtype) is read and checked before its data: against the size the zip entry declares, and, when
the caller knows what it expects (``load(path, expected=model.state_dict())``), against the
expected shapes. A small file whose header claims a 1 GiB array is refused without allocating it.

Writing is atomic: the file is written next to its final name, flushed to disk and renamed, so a
crash, a signal or a full disk leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Mapping

import numpy as np

from .tensor_class import Tensor


class CheckpointError(ValueError):
    """The checkpoint cannot be written or read without pickle, is damaged, is not a flat
    name -> array mapping, or does not hold the arrays expected of it."""


# A member whose shape the caller cannot know in advance (``expected`` maps it to None) may hold
# at most this many bytes: enough for any metadata, far from enough to exhaust memory.
UNSHAPED_MEMBER_LIMIT = 16 * 2**20


def _as_array(name: str, value) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, dict):
        raise CheckpointError(
            f"save: the value of {name!r} is a dict; a checkpoint is a flat mapping of names to arrays "
            "(flatten nested state with dotted names, e.g. 'optimizer.step')"
        )
    array = np.asarray(value)
    if array.dtype.hasobject:
        raise CheckpointError(
            f"save: the value of {name!r} is an array of Python objects (dtype=object), which could only be "
            "stored with pickle; convert it to a numeric array first"
        )
    return array


def save(state_dict, path) -> None:
    """Write ``state_dict`` (name -> NumPy array, Tensor or number) to ``path`` as an ``.npz``.

    ``path`` is used as given (no extension is added). The file is written next to its final name,
    flushed to disk (fsync) and then renamed over it, so an interrupted or failed save never leaves a
    truncated checkpoint behind, and a previous file of that name stays intact until the new one is
    complete."""
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"save: expected a dict of name -> array, got {type(state_dict).__name__}")
    arrays = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise CheckpointError(f"save: keys must be strings, got {name!r}")
        arrays[name] = _as_array(name, value)
    if hasattr(path, "write"):  # an open binary file
        _write_npz(path, arrays)
        return
    path = os.fspath(path)
    partial = path + ".partial"
    try:
        with open(partial, "wb") as file:
            _write_npz(file, arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    _sync_folder(os.path.dirname(os.path.abspath(path)))


def _sync_folder(folder: str) -> None:
    """Make a rename durable: fsync the folder that holds the entry (where the OS allows it)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename itself is still atomic
    finally:
        os.close(descriptor)


def _write_npz(file, arrays: dict) -> None:
    # what np.savez does, minus its keyword arguments that would clash with keys such as "file"
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(name + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


# ---- reading, bounded -------------------------------------------------------------------------


def load(path, expected=None, *, map_location=None, weights_only=True) -> dict:
    """Read a checkpoint written by ``save`` (or by ``np.savez``): a dict of name -> NumPy array,
    in the order they were saved. Files that need pickle are refused.

    ``map_location`` and ``weights_only`` are torch's arguments, accepted so that
    ``torch.load(path, weights_only=True)`` runs as it is: everything is on the CPU, and a checkpoint
    here only ever holds arrays of numbers (``weights_only=False`` cannot load more: nothing is
    unpickled).

    ``expected`` (optional) says what the file should hold, checked on the headers before any array
    is read: a mapping name -> shape (a tuple, or anything with ``.shape`` such as the arrays of a
    ``state_dict()``), or a function name -> shape that raises KeyError for a name it does not
    expect. A shape of None accepts any shape up to ``UNSHAPED_MEMBER_LIMIT`` bytes. A member with
    an unexpected name or a different shape is refused; names expected but absent are not an
    error here (``load_state_dict`` reports them as missing keys)."""
    if map_location is not None and str(map_location) not in ("cpu", "device(type='cpu')", "device('cpu')"):
        if not callable(map_location) and not isinstance(map_location, dict):
            raise CheckpointError(f"load: map_location={map_location!r}: tinygrad_cnn runs on the CPU only")
    where = _describe(path)
    kind = _sniff(path)
    if kind == "npy":
        raise CheckpointError(f"load: {where} holds a single array, not a checkpoint (.npz)")
    if kind == "pickle":
        raise CheckpointError(f"load: {where} contains pickled objects, which are refused because unpickling can "
                              "run arbitrary code; only arrays of numbers are loaded")
    if kind != "zip":
        raise CheckpointError(f"load: {where} is not an .npz checkpoint (it does not start like a zip file)")
    shape_of = None if expected is None else (expected.__getitem__ if isinstance(expected, Mapping) else expected)
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            headers = [_checked_header(archive, info, shape_of, where) for info in members]
            arrays = {}
            for info, (name, _, _) in zip(members, headers):
                with archive.open(info) as member:
                    arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
            return arrays
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        raise CheckpointError(f"load: {where} is damaged or truncated ({error})") from error
    except ValueError as error:  # a corrupt .npy member that passed its header check
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"load: {where} is damaged ({error})") from error


def _describe(path) -> str:
    return repr(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else "the file"


def _sniff(path) -> str:
    """What kind of file this is, from its first bytes: zip (.npz), npy, pickle or other."""
    if hasattr(path, "read"):
        start = path.tell()
        magic = path.read(6)
        path.seek(start)
    else:
        with open(path, "rb") as file:
            magic = file.read(6)
    if magic.startswith(b"PK\x03\x04") or magic.startswith(b"PK\x05\x06"):
        return "zip"
    if magic.startswith(b"\x93NUMPY"):
        return "npy"
    if magic.startswith(b"\x80"):  # every pickle protocol >= 2 opens with PROTO
        return "pickle"
    return "other"


def _checked_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, shape_of, where: str):
    """(name, shape, dtype) of one member, read from its .npy header alone, after checking that its
    data fits in the entry and matches what the caller expects."""
    if not info.filename.endswith(".npy"):
        raise CheckpointError(f"load: {where} has a member {info.filename!r} that is not an .npy array")
    name = info.filename[:-len(".npy")]
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
        except ValueError as error:
            raise CheckpointError(f"load: {where}: the array {name!r} has a damaged header ({error})") from error
        header_bytes = member.tell()
    if dtype.hasobject:
        raise CheckpointError(f"load: {where} contains pickled objects, which are refused because unpickling can run "
                              f"arbitrary code (the array {name!r} has dtype=object); only arrays of numbers are loaded")
    data_bytes = math.prod(shape) * dtype.itemsize
    if data_bytes != info.file_size - header_bytes:
        raise CheckpointError(f"load: {where} is damaged: the array {name!r} claims shape {shape} of {dtype} "
                              f"({data_bytes:,} bytes) but its entry holds {info.file_size - header_bytes:,}")
    if shape_of is not None:
        try:
            wanted = shape_of(name)
        except KeyError:
            raise CheckpointError(f"load: {where} holds an unexpected array {name!r} "
                                  "(is it the checkpoint of another model?)") from None
        if wanted is None:
            if data_bytes > UNSHAPED_MEMBER_LIMIT:
                raise CheckpointError(f"load: {where}: the array {name!r} is {data_bytes:,} bytes, more than the "
                                      f"{UNSHAPED_MEMBER_LIMIT:,} allowed for it")
        else:
            wanted = tuple(getattr(wanted, "shape", wanted))
            if tuple(shape) != wanted:
                raise CheckpointError(f"load: {where}: the array {name!r} has shape {shape}, expected {wanted} "
                                      "(is it the checkpoint of another model?)")
            if dtype.itemsize > 16:
                raise CheckpointError(f"load: {where}: the array {name!r} has dtype {dtype}, expected numbers")
    return name, shape, dtype
