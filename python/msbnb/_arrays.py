"""Conversion of user arrays into the buffers the C library takes.

Half-precision inputs are passed through as 16-bit patterns (the library widens them exactly);
float32 is passed as is; other real dtypes are converted to float32; anything else is refused.
Non-contiguous arrays are copied to C order. Nothing here computes a format.
"""

import ctypes

import numpy as np

from . import _native
from .errors import InvalidArgumentError

# msbnb_dtype codes (include/msbnb/msbnb.h)
F32, F16, BF16 = 0, 1, 2
_NAMES = {"float32": F32, "float16": F16, "bfloat16": BF16}


def dtype_code(name):
    """'float32' | 'float16' | 'bfloat16' (or a numpy / ml_dtypes dtype) -> msbnb_dtype code."""
    key = getattr(np.dtype(name), "name", None) if not isinstance(name, str) else name
    if key in ("f32", "fp32"):
        key = "float32"
    elif key in ("f16", "fp16", "half"):
        key = "float16"
    elif key == "bf16":
        key = "bfloat16"
    if key not in _NAMES:
        raise InvalidArgumentError(f"dtype {name!r} is not one of float32, float16, bfloat16")
    return _NAMES[key]


def bfloat16_dtype():
    """ml_dtypes.bfloat16 when installed, else None (raw uint16 patterns are used instead)."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


def as_input(x, what="input"):
    """x as a C-contiguous array the library reads, and its msbnb_dtype code.

    float32 -> F32; float16 -> F16; ml_dtypes.bfloat16, or raw uint16 bit patterns -> BF16
    (uint16 is taken as bfloat16 bits, as MindSpore/PyTorch tensors viewed as integers are);
    other integer/float dtypes -> converted to float32; complex, bool, object -> refused."""
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    dt = a.dtype
    if dt == np.float32:
        code = F32
    elif dt == np.float16:
        code = F16
    elif dt.name == "bfloat16" or dt == np.uint16:
        code = BF16
    elif dt.kind in "fiu" and dt != np.bool_:
        a, code = a.astype(np.float32), F32
    else:
        raise InvalidArgumentError(f"{what}: dtype {dt} is not a real number type "
                                   "(float32, float16, bfloat16 or raw bfloat16 uint16 bits)")
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return a, code


def as_f32(x, what="input"):
    """x as a C-contiguous float32 array (half precision widened exactly by the library)."""
    a, code = as_input(x, what)
    if code == F32:
        return a
    out = np.empty(a.shape, np.float32)
    _native.lib.msbnb_py_half_to_f32(a.ctypes.data, code, out.ctypes.data, a.size)
    return out


def as_matrix(a, what="weight"):
    """(rows, cols) of a 2-D array, or of a 1-D one as one row; refuses other ranks and 0 sizes."""
    if a.ndim == 2:
        rows, cols = a.shape
    elif a.ndim == 1:
        rows, cols = 1, a.shape[0]
    else:
        raise InvalidArgumentError(f"{what}: expected a 2-D [rows, cols] array, got shape {a.shape}")
    if rows == 0 or cols == 0:
        raise InvalidArgumentError(f"{what}: empty shape {a.shape}")
    return rows, cols


_c_char = ctypes.c_char
_addressof = ctypes.addressof


def ptr(a):
    """Address of a C-contiguous array's first element (None for None). Through the buffer
    protocol when the array is writable (~0.5 µs; `a.ctypes.data` costs several µs and matters in
    per-call paths such as QTensor.matmul), else through numpy's ctypes attribute."""
    if a is None:
        return None
    try:
        return _addressof(_c_char.from_buffer(a))
    except (TypeError, ValueError):  # read-only or empty
        return a.ctypes.data
