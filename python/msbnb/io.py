"""Quantized safetensors checkpoints through msbnb's C IO functions (include/msbnb/io.h).

Layouts (docs/io.md): NF4/FP4 as bitsandbytes' Linear4bit (QuantState packed entries), INT8
symmetric per row as Linear8bitLt (weight + SCB), INT4 and asymmetric INT8 in msbnb's own layout.
Files written by transformers + bitsandbytes and by `msbnb quantize` load alike.
"""

import ctypes
import json
import os
import re

import numpy as np

from . import _native
from ._arrays import bfloat16_dtype, dtype_code
from .errors import InvalidArgumentError, UnsupportedError
from .qtensor import QTensor

__all__ = ["load_quantized", "save_quantized"]

lib = _native.lib
check = _native.check

# msbnb_st_dtype (io.h) <-> numpy
_ST_NUMPY = {0: np.bool_, 1: np.uint8, 2: np.int8, 3: np.int16, 4: np.uint16, 5: np.float16, 7: np.int32,
             8: np.uint32, 9: np.float32, 10: np.float64, 11: np.int64, 12: np.uint64}
_ST_BF16 = 6
_NUMPY_ST = {np.dtype(v): k for k, v in _ST_NUMPY.items()}
_QUANT_STATE = re.compile(r"(.*)\.quant_state\.(?:bitsandbytes__(?:nf4|fp4)|msbnb__int[48])$")
_ORIG_DTYPES = ("float32", "float16", "bfloat16")


def _fspath(path):
    return os.fsencode(os.fspath(path))


def load_quantized(path):
    """Read a .safetensors file or a Hugging Face model directory (sharded or not) -> dict
    name -> QTensor for every quantized weight (its auxiliary entries folded in; orig_dtype from
    the quant state's "dtype", so saving it again writes the same state) and name ->
    numpy array (the file's dtype; bfloat16 as ml_dtypes.bfloat16 when installed, else uint16
    bits) for every other tensor. Every part is validated by the library; errors raise
    msbnb's message naming the file, tensor and byte offset."""
    ck = ctypes.c_void_p()
    check(lib.msbnb_py_checkpoint_open(_fspath(path), ctypes.byref(ck)))
    out, orig = {}, {}
    try:
        name, dtype, ndim, data = ctypes.c_char_p(), ctypes.c_int(), ctypes.c_int(), ctypes.c_void_p()
        nbytes, qtype, aux = ctypes.c_size_t(), ctypes.c_int(), ctypes.c_int()
        shape = (ctypes.c_int64 * 8)()
        for i in range(lib.msbnb_py_checkpoint_count(ck)):
            check(lib.msbnb_py_checkpoint_entry(ck, i, ctypes.byref(name), ctypes.byref(dtype), ctypes.byref(ndim),
                                                shape, ctypes.byref(data), ctypes.byref(nbytes),
                                                ctypes.byref(qtype), ctypes.byref(aux)))
            key = name.value.decode("utf-8")
            if aux.value:
                # the quant state JSON records the weight's original dtype (bitsandbytes' "dtype")
                m = _QUANT_STATE.match(key)
                if m and nbytes.value:
                    try:
                        state = json.loads(ctypes.string_at(data.value, nbytes.value))
                    except ValueError:
                        state = {}
                    if state.get("dtype") in _ORIG_DTYPES:
                        orig[m.group(1)] = state["dtype"]
                continue
            if qtype.value:
                h = ctypes.c_void_p()
                check(lib.msbnb_py_bnb_read(ck, name.value, ctypes.byref(h)))
                out[key] = QTensor._from_owned(h.value)
                continue
            if dtype.value == _ST_BF16:
                npdt = bfloat16_dtype() or np.dtype(np.uint16)
            elif dtype.value in _ST_NUMPY:
                npdt = np.dtype(_ST_NUMPY[dtype.value])
            else:
                raise UnsupportedError(f"{os.fspath(path)}: tensor '{key}': its dtype has no numpy equivalent", -6)
            arr = np.empty(tuple(shape[: ndim.value]), npdt)
            if arr.nbytes != nbytes.value:
                raise InvalidArgumentError(f"tensor '{key}': {nbytes.value} bytes for shape {arr.shape}")
            if arr.nbytes:
                ctypes.memmove(arr.ctypes.data, data.value, arr.nbytes)
            out[key] = arr
    finally:
        lib.msbnb_py_checkpoint_close(ck)
    for k, dt in orig.items():  # (the library validated the JSON when it read the weight)
        if isinstance(out.get(k), QTensor):
            out[k].orig_dtype = dt
    return out


def save_quantized(path, tensors, metadata=None):
    """Write a dict name -> QTensor | numpy array to one .safetensors file, atomically (a temporary
    file renamed into place; nothing is left at `path` on failure). QTensors are written in the
    bitsandbytes / msbnb layouts (names of quantized weights conventionally end in '.weight');
    arrays as they are (bfloat16 from ml_dtypes as BF16). metadata: extra string pairs."""
    if not isinstance(tensors, dict):
        raise InvalidArgumentError("tensors must be a dict name -> QTensor or numpy array")
    w = ctypes.c_void_p()
    check(lib.msbnb_py_writer_create(_fspath(path), ctypes.byref(w)))
    try:
        for k, v in (metadata or {}).items():
            check(lib.msbnb_py_writer_set_metadata(w, str(k).encode(), str(v).encode()))
        for key in sorted(tensors):
            if not isinstance(key, str):
                raise InvalidArgumentError(f"tensor names must be strings, got {key!r}")
            v = tensors[key]
            if isinstance(v, QTensor):
                check(lib.msbnb_py_writer_add_quantized(w, key.encode(), v.handle, dtype_code(v.orig_dtype)))
                continue
            a = np.ascontiguousarray(v)
            if a.dtype.name == "bfloat16":
                st = _ST_BF16
            elif a.dtype in _NUMPY_ST:
                st = _NUMPY_ST[a.dtype]
            else:
                raise InvalidArgumentError(f"tensor '{key}': dtype {a.dtype} cannot be stored in safetensors")
            shape = (ctypes.c_int64 * max(a.ndim, 1))(*a.shape)
            check(lib.msbnb_py_writer_add(w, key.encode(), st, a.ndim, shape, a.ctypes.data if a.size else None,
                                          a.nbytes))
        check(lib.msbnb_py_writer_finish(w))
    finally:
        lib.msbnb_py_writer_free(w)
