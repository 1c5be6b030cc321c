"""Choices between ways of computing a kernel, made by timing each on this machine the first time a
shape comes, and kept in a file so that later runs compute the same way without timing.

Which of two methods is faster can depend on the CPU and its BLAS more than on the shape: the
banded convolution of a small layer (``conv_banded.py``) against its im2col GEMMs took 2.2 against
3.0 ms on one Intel Xeon host, where the GEMMs of many columns it makes run at 200 GFLOP/s, and a
fixed rule tuned on one host loses on another (and so do GEMMs over shifted columns against
im2col's, ``conv_gemm._methods_offered``). So the fast kernels ask ``choose``, which times each
method on the call's own operands (a warm-up call each, then ``ROUNDS`` alternating calls; the
results are dropped and the call is then computed by the fastest; a method that raises, out of
memory say, loses), and keeps the choice in a JSON file, in a section for this host: the CPU model
and count, NumPy and its BLAS, and the thread variables in force. The file is only read and added
to: a choice once made is the one every later run on that host makes, until the file is deleted
(or a newer version of the library offers another method for that kernel: then it is timed again,
among all of them, and the new choice replaces the old).

    TINYGRAD_CNN_TUNING=measure     the default: time once per shape, keep the choice in the file
    TINYGRAD_CNN_TUNING=fixed       no timing and no file: each kernel's fixed rule (im2col)
    TINYGRAD_CNN_TUNING_FILE=PATH   where the choices are kept; by default
                                    $XDG_CACHE_HOME/tinygrad_cnn/kernel-choices.json (~/.cache/...)

``python -m tinygrad_cnn.kernels`` prints the file and this host's choices. A file that is not one
of ours is refused with one line naming it (it is never overwritten); a file that cannot be read
or written leaves the choices in memory, with a warning.
"""
import functools
import json
import os
import platform
import tempfile
import threading
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

try:
    import fcntl
except ImportError:  # not on Windows: there one process at a time adds choices safely, several may lose some
    fcntl = None

from ..environment import EnvironmentVariableError

MODE_VARIABLE = "TINYGRAD_CNN_TUNING"
FILE_VARIABLE = "TINYGRAD_CNN_TUNING_FILE"
MODES = ("measure", "fixed")
FORMAT = "tinygrad_cnn kernel choices, version 1"
# Timed calls per method, alternating, after a warm-up call each; the fastest call of each decides
# (the least disturbed by anything else the machine does: one choice was once kept from three calls
# whose median, 12.8 ms, was ten times what the method takes; it is then kept for good).
ROUNDS = 5
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class TuningFileError(EnvironmentVariableError):
    """The choices file (``TINYGRAD_CNN_TUNING_FILE``) exists but is not one this library wrote."""


_lock = threading.Lock()
_loaded = {}  # path -> {question: entry} of this host, as read from and added to the file
_unusable = set()  # files that could not be read or written: warned about once, never written to


def mode() -> str:
    """``TINYGRAD_CNN_TUNING``: "measure" (unset) or "fixed"; anything else is refused in one line."""
    value = os.environ.get(MODE_VARIABLE, "measure")
    if value not in MODES:
        raise EnvironmentVariableError(f"{MODE_VARIABLE}={value!r}: expected one of {', '.join(MODES)}")
    return value


def path() -> Path:
    """The choices file: ``TINYGRAD_CNN_TUNING_FILE``, else kernel-choices.json in the user's cache folder."""
    environ = os.environ
    return _path(environ.get(FILE_VARIABLE), environ.get("XDG_CACHE_HOME"), environ.get("HOME"))


@functools.lru_cache(maxsize=16)
def _path(named, cache, home) -> Path:
    """``path`` for these variables (asked on every kernel call that has a choice: a Path is built
    once per value)."""
    if named:
        return Path(named).expanduser()
    return Path(cache or Path.home() / ".cache") / "tinygrad_cnn" / "kernel-choices.json"


@functools.cache
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def _blas() -> str:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas['version']}"
    except Exception:  # an older NumPy, or a build that does not say
        return "BLAS unknown"


def host() -> str:
    """What a choice depends on besides the shape: CPU model and count, NumPy and its BLAS, and the
    thread variables in force."""
    threads = ", ".join(f"{name}={os.environ[name]}" for name in THREAD_VARIABLES if name in os.environ)
    return (f"{_cpu_model()}, {os.cpu_count()} CPUs; NumPy {np.__version__}, {_blas()}; "
            f"{threads or 'no thread variables'}")


def _warn_once(file: Path, doing: str, error: OSError) -> None:
    if file not in _unusable:
        _unusable.add(file)
        warnings.warn(f"{file}: cannot {doing} kernel choices there ({error.strerror}); they are kept for this "
                      f"process only (set {FILE_VARIABLE} to a file that can be written)", RuntimeWarning, stacklevel=5)


def _read(file: Path) -> dict:
    """The file's hosts and their choices: empty if there is no file (or it cannot be read, with a
    warning); TuningFileError if it is not one of ours, or one damaged by hand."""
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as error:
        _warn_once(file, "read", error)
        return {}
    try:
        content = json.loads(data.decode("utf-8"))
        if not isinstance(content, dict) or content.get("format") != FORMAT:
            raise ValueError
    except ValueError:  # not JSON, not text at all, or another program's JSON
        raise TuningFileError(f"{file}: not a tinygrad_cnn kernel-choices file; delete it if it is an old one, "
                              f"or set {FILE_VARIABLE} to another file") from None
    hosts = content.get("hosts")
    if not (isinstance(hosts, dict) and all(isinstance(questions, dict) and all(map(_is_entry, questions.values()))
                                            for questions in hosts.values())):
        raise TuningFileError(f"{file}: a damaged kernel-choices file (an entry is not a method and its times); "
                              f"delete it, and the choices are timed again")
    return hosts


def _answers(entry, methods) -> bool:
    """Whether a kept ``entry`` chose among the same ``methods`` as a call offers now: a choice made
    before a method was added (a newer version of the library) is timed again, with it."""
    return entry is not None and set(entry["ms"]) == set(methods) and entry["method"] in methods


def _is_entry(entry) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("method"), str) and isinstance(entry.get("ms"), dict)
            and all(ms is None or isinstance(ms, (int, float)) for ms in entry["ms"].values()))


def _write(file: Path, question: str, entry: dict) -> dict:
    """Add one choice to this host's section, and return the entry the file keeps for the question:
    under a lock on a file beside it, reread the file (another process may have added choices,
    this one among them: then that one stays) and replace it whole, so that no choice is lost and a
    reader never sees half a file. Never a file that could not be read: it may be someone's."""
    if file in _unusable:
        return entry
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with open(file.with_name(file.name + ".lock"), "a") as lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the lock file is closed
            hosts = _read(file)
            if file in _unusable:  # the reread failed
                return entry
            kept = hosts.setdefault(host(), {}).get(question)
            if _answers(kept, entry["ms"]):
                return kept  # another process chose first
            hosts[host()][question] = entry
            handle, temporary = tempfile.mkstemp(prefix=file.name, suffix=".tmp", dir=file.parent)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump({"format": FORMAT, "hosts": hosts}, out, indent=1, sort_keys=True)
            os.replace(temporary, file)
    except OSError as error:
        _warn_once(file, "keep", error)
    return entry


def _kept(file: Path) -> dict:
    """This host's choices in ``file``, read once (call with ``_lock`` held)."""
    if file not in _loaded:
        _loaded[file] = dict(_read(file).get(host(), {}))
    return _loaded[file]


def choices() -> dict:
    """This host's choices in the file: {question: {"method", "ms", "measured"}}."""
    with _lock:
        return dict(_kept(path()))


def choose(question: str, methods: dict, fixed: str) -> str:
    """The name of the faster of ``methods`` ({name: a call computing the kernel that way}) for
    ``question`` (the kernel and its operands' shapes, dtypes and geometry): as kept in the file,
    else timed now and kept; ``fixed`` when ``TINYGRAD_CNN_TUNING=fixed``."""
    if mode() == "fixed":
        return fixed
    file = path()
    with _lock:
        kept = _kept(file).get(question)
    if _answers(kept, methods):
        return kept["method"]
    names = sorted(methods, key=lambda name: name != fixed)
    times = {name: [] for name in names}
    failed = {}  # a method other than ``fixed`` that raised (out of memory, say): it loses, and is kept so
    for round_ in range(ROUNDS + 1):  # round 0 warms up: the first call allocates the cache's blocks
        for name in names if round_ % 2 == 0 else names[::-1]:
            if name in failed:
                continue
            start = time.perf_counter()
            try:
                methods[name]()
            except Exception as error:
                if name == fixed:  # the call itself fails: as it would have without timing
                    raise
                failed[name] = f"{type(error).__name__}: {error}"[:200]
                continue
            if round_:
                times[name].append(time.perf_counter() - start)
    fastest = {name: None if name in failed else min(times[name]) for name in names}
    # a tie keeps ``fixed`` (first in names)
    chosen = min((name for name in names if name not in failed), key=lambda name: fastest[name])
    entry = {"method": chosen, "ms": {name: None if value is None else round(1e3 * value, 3)
                                      for name, value in fastest.items()},
             "measured": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if failed:
        entry["failed"] = failed
    with _lock:
        current = _kept(file)
        if _answers(current.get(question), methods):
            return current[question]["method"]  # another thread chose first: one choice per question
        current[question] = _write(file, question, entry)
    return current[question]["method"]


def forget() -> None:
    """Drop the choices read into memory (the file stays): the next ``choose`` reads the file again."""
    with _lock:
        _loaded.clear()
        _unusable.clear()
