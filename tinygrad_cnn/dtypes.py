"""torch's dtype names, each a NumPy dtype: ``tg.float32``, ``tg.long``, ``tg.bool`` ...

A tensor's ``.dtype`` is a NumPy dtype, and it compares equal to these (``t.dtype == tg.float32``),
to NumPy's scalar types (``np.float32``) and to their names (``"float32"``).
"""
import numpy as np

float16 = half = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
uint8 = np.dtype(np.uint8)
int8 = np.dtype(np.int8)
int16 = short = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = long = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

# the names that shadow Python builtins are set as module attributes only (``tg.float``, ``tg.int``,
# ``tg.bool``), so this file itself keeps the builtins
globals().update({"float": float32, "int": int32, "bool": bool_})

_default_dtype = float32


def get_default_dtype() -> np.dtype:
    """The float type of new tensors made from Python floats: float32, as torch."""
    return _default_dtype
