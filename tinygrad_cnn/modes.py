"""Engine modes: grad mode and anomaly mode, each a setting of the current thread (and asyncio task).

* **Grad mode** says whether ops record the graph. ``no_grad`` turns it off (evaluation, parameter
  updates), ``enable_grad`` turns it back on inside, ``set_grad_enabled(mode)`` sets it either way;
  ``is_grad_enabled()`` reads it. The backward walk itself runs with grad mode set to its
  ``create_graph`` argument.
* **Anomaly mode** (``detect_anomaly``) checks every op's result, in forward and in backward, and
  raises an ``AnomalyError`` naming the op that made the first NaN or Inf and the line of user code
  that created it; ``is_anomaly_enabled()`` reads it.

Why per thread
--------------
Each mode is a ``contextvars.ContextVar``, so it belongs to the thread that set it, as in PyTorch: an
evaluation loop under ``no_grad`` in one thread leaves another thread's training steps recording,
and two threads' overlapping blocks cannot switch each other's modes. A new thread starts from the
defaults (grad on, anomaly off). A ContextVar is also what asyncio keeps per task: a task starts
with the modes of the code that created it, and what it changes stays inside the task. (PyTorch
keeps grad mode per thread too, but anomaly mode is one flag for its whole process.)

Leaving a block restores the value the block found on entry (not a fixed default), so blocks
nest, and an exception leaving the block restores it too. ``set_grad_enabled(False)`` called
without ``with`` takes effect at once and lasts until something else changes the mode.
"""
from __future__ import annotations

import contextvars
import functools
import traceback

import numpy as np

_grad_enabled = contextvars.ContextVar("tinygrad_cnn grad mode", default=True)
_anomaly_enabled = contextvars.ContextVar("tinygrad_cnn anomaly mode", default=False)
# Under anomaly mode, the node whose backward this thread is running, if any: the op to blame for
# a NaN made by one of the ops that backward is written with.
_node_in_backward = contextvars.ContextVar("tinygrad_cnn node in backward", default=None)
# How many vmap levels are open in this thread: while it is 0, Function.apply skips looking for
# batched arguments (see batching.py).
_vmap_depth = contextvars.ContextVar("tinygrad_cnn vmap depth", default=0)


def is_grad_enabled() -> bool:
    """Whether ops record the graph in this thread (True unless inside ``no_grad`` or similar)."""
    return _grad_enabled.get()


def is_anomaly_enabled() -> bool:
    """Whether this thread is inside ``detect_anomaly()``."""
    return _anomaly_enabled.get()


# ----------------------------------------------------------------------------------------------
# Blocks that set a mode
# ----------------------------------------------------------------------------------------------


class _ModeBlock:
    """Sets ``_variable`` to ``value`` on entry and restores what it found there on exit. Works as a
    context manager and as a decorator (each call of the decorated function gets a fresh block).

    The value found on entry is kept on the block object, as in torch: ``with no_grad():`` makes a
    fresh object each time, but one object kept and entered by two threads at once would mix up
    what each found."""

    _variable: contextvars.ContextVar
    value: bool

    def __init__(self):
        self._found = []  # a stack: the same block object may be entered again inside itself

    def __enter__(self):
        self._found.append(self._variable.get())
        self._variable.set(self.value)

    def __exit__(self, *exc):
        self._variable.set(self._found.pop())
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_ModeBlock):
    """Operations inside record no graph: for evaluation and for in-place parameter updates."""

    _variable, value = _grad_enabled, False


class enable_grad(_ModeBlock):
    """Turn recording back on inside a ``no_grad`` block."""

    _variable, value = _grad_enabled, True


class set_grad_enabled(_ModeBlock):
    """Set grad mode to ``mode``; as in torch it takes effect at once, and a ``with`` block restores it."""

    _variable = _grad_enabled

    def __init__(self, mode: bool):
        super().__init__()
        self.value = bool(mode)
        super().__enter__()  # at once: the with statement's own __enter__ then does nothing

    def __enter__(self):
        pass

    def __call__(self, fn):
        raise TypeError("set_grad_enabled is used as a context manager, not as a decorator")


class detect_anomaly(_ModeBlock):
    """Under this context the first NaN or Inf produced in forward or backward raises an
    ``AnomalyError`` that names the op and the line of user code that created it.

    Each op records where it was created, so this is slow: use it to hunt a bug, not to train.
    """

    _variable, value = _anomaly_enabled, True


# ----------------------------------------------------------------------------------------------
# What anomaly mode checks
# ----------------------------------------------------------------------------------------------


class AnomalyError(RuntimeError):
    """Raised under ``detect_anomaly()`` when an op produces NaN or Inf."""


def creation_site() -> str:
    """The innermost stack frame outside this package: where the user wrote the op."""
    package = __name__.rsplit(".", 1)[0].replace(".", "/")
    for frame in reversed(traceback.extract_stack()[:-2]):
        if f"/{package}/" not in frame.filename.replace("\\", "/"):
            return f'File "{frame.filename}", line {frame.lineno}, in {frame.name}\n    {frame.line}'
    return "(inside tinygrad_cnn)"


def check_finite(array: np.ndarray, node, where: str) -> None:
    """Raise an ``AnomalyError`` if ``array``, made by ``node`` in its ``where`` ("forward" or
    "backward"), holds a NaN or an Inf."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        kind = "NaN" if np.isnan(array).any() else "Inf"
        if where == "forward" and _node_in_backward.get() is not None:
            # an op run by another op's backward: blame that op, which is the one the user wrote
            node, where = _node_in_backward.get(), f"backward (in a {type(node).__name__} step of it)"
        site = getattr(node, "creation_site", None) or "(unknown: created outside detect_anomaly)"
        raise AnomalyError(f"{type(node).__name__} produced {kind} in its {where}. The op was created at:\n{site}")


def backward_under_watch(node, grad):
    """``node.backward(node, grad)`` with ``node`` remembered while it runs, so that a NaN or Inf
    made by one of the ops its backward is written with is reported as this node's."""
    token = _node_in_backward.set(node)
    try:
        return node.backward(node, grad)
    finally:
        _node_in_backward.reset(token)
