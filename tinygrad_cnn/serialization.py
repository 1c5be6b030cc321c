"""Checkpoints: ``save(state_dict, path)`` and ``load(path)``, in NumPy's ``.npz`` format.

An ``.npz`` file is a zip archive holding one ``.npy`` file per array, named after its key, so a
checkpoint can be opened with ``np.load`` alone and its names and layouts are PyTorch's
(``features.0.weight`` of shape (out, in, kH, kW), ...): it loads into the equivalent torch model
after ``torch.from_numpy``.

Pickle is never used, in either direction: a pickled object in a checkpoint can run arbitrary code
when loaded. Only plain numeric (and string/boolean) arrays are accepted.
"""
from __future__ import annotations

import os
import zipfile

import numpy as np

from .tensor_class import Tensor


class CheckpointError(ValueError):
    """The checkpoint cannot be written or read without pickle, or is not a flat name -> array mapping."""


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

    ``path`` is used as given (no extension is added). The file is written next to its final name
    and then renamed, so an interrupted save never leaves a truncated checkpoint behind."""
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
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _write_npz(file, arrays: dict) -> None:
    # what np.savez does, minus its keyword arguments that would clash with keys such as "file"
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(name + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def load(path) -> dict:
    """Read a checkpoint written by ``save`` (or by ``np.savez``): a dict of name -> NumPy array,
    in the order they were saved. Files that need pickle are refused."""
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise CheckpointError(f"load: {path!r} holds a single array, not a checkpoint (.npz)")
        with archive:
            return {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError) as error:
        raise CheckpointError(f"load: {path!r} is damaged or truncated, or is not an .npz checkpoint ({error})") from error
    except ValueError as error:
        if isinstance(error, CheckpointError) or "pickle" not in str(error):
            raise
        raise CheckpointError(
            f"load: {path!r} contains pickled objects, which are refused because unpickling can run "
            "arbitrary code; only arrays of numbers are loaded"
        ) from error
