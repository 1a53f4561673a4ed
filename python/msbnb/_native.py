"""Loads the native library (libmsbnb + the flat shim python/src/msbnb_py.c) with ctypes.

The library is ``_msbnb_native.so`` beside this file (``pip install .``), or the file named by
the environment variable ``MSBNB_NATIVE_LIB`` (the test suite points it at the CMake build tree).
Structs mirrored here (msbnb_qtensor_view, msbnb_quant_info) are checked against the library's
sizes at load time, with the shim's ABI number.
"""

import ctypes
import os
from ctypes import POINTER, c_char_p, c_double, c_float, c_int, c_int64, c_size_t, c_void_p

from .errors import error_for_status

ABI = 3


class QTensorView(ctypes.Structure):
    """msbnb_qtensor_view (include/msbnb/quant.h), field for field."""

    _fields_ = [
        ("type", c_int), ("rows", c_int64), ("cols", c_int64),
        ("blocksize", c_int), ("group_size", c_int), ("asymmetric", c_int), ("per_row", c_int),
        ("threshold", c_float),
        ("data", c_void_p), ("data_bytes", c_size_t),
        ("stats", c_void_p), ("n_stats", c_size_t),
        ("zero_point", c_void_p),
        ("code", c_void_p), ("code_len", c_int),
        ("double_quant", c_int), ("nested_blocksize", c_int),
        ("stats_q", c_void_p), ("nested_absmax", c_void_p), ("n_nested", c_size_t),
        ("nested_code", c_void_p), ("nested_offset", c_float),
    ]


class QuantInfo(ctypes.Structure):
    """msbnb_quant_info (include/msbnb/quant.h)."""

    _fields_ = [
        ("type", c_int), ("rows", c_int64), ("cols", c_int64),
        ("blocksize", c_int), ("group_size", c_int), ("double_quant", c_int), ("asymmetric", c_int),
        ("per_row", c_int),
        ("data_bytes", c_size_t), ("stats_bytes", c_size_t), ("total_bytes", c_size_t),
        ("bits_per_weight", c_double), ("compression_vs_f32", c_double), ("compression_vs_f16", c_double),
    ]


P = c_void_p
_I64P = POINTER(c_int64)

# name -> (restype, argtypes). Functions returning int return an msbnb_status.
_SIGNATURES = {
    "msbnb_py_last_error": (c_char_p, []),
    "msbnb_py_abi": (c_int, [POINTER(c_size_t), POINTER(c_size_t)]),
    "msbnb_py_version": (c_char_p, []),
    "msbnb_py_isa": (c_char_p, []),
    "msbnb_py_set_num_threads": (None, [c_int]),
    "msbnb_py_get_num_threads": (c_int, []),
    "msbnb_py_code_table": (P, [c_int]),
    "msbnb_py_half_to_f32": (None, [P, c_int, P, c_size_t]),
    "msbnb_py_quantize": (c_int, [P, c_int, c_int64, c_int64, c_int, c_int, c_int, c_int, c_int, c_int, c_int,
                                  c_float, POINTER(P)]),
    "msbnb_py_quantize_opt": (c_int, [P, c_int64, c_int64, c_int, c_int, c_int, c_int, c_int, c_int, P, P, c_int64,
                                      POINTER(P)]),
    "msbnb_py_quantize_checkpoint": (c_int, [c_char_p, c_char_p, c_int, c_int, c_int, c_int, c_char_p, c_char_p,
                                             c_char_p, c_int64, c_int, POINTER(c_char_p), c_int64,
                                             POINTER(c_char_p), c_int64, POINTER(P)]),
    "msbnb_py_quantize_report_count": (c_size_t, [P]),
    "msbnb_py_quantize_report_row": (c_int, [P, c_size_t, P]),
    "msbnb_py_quantize_report_totals": (None, [P, P]),
    "msbnb_py_quantize_report_free": (None, [P]),
    "msbnb_py_qtensor_view": (c_int, [P, POINTER(QTensorView)]),
    "msbnb_py_qtensor_wrap": (c_int, [POINTER(QTensorView), POINTER(P)]),
    "msbnb_py_qtensor_validate": (c_int, [P]),
    "msbnb_py_qtensor_free": (None, [P]),
    "msbnb_py_dequantize": (c_int, [P, c_int, P]),
    "msbnb_py_matmul": (c_int, [P, P, c_int, c_int64, P, P, c_int]),
    "msbnb_py_time_matmul": (c_int, [P, P, c_int, c_int64, P, c_int, c_int, POINTER(c_double)]),
    "msbnb_py_matmul_t": (c_int, [P, P, c_int64, P, c_int]),
    "msbnb_py_matmul_int8_lt": (c_int, [P, P, c_int64, P, c_float, P]),
    "msbnb_py_estimate_error": (c_int, [P, P, P]),
    "msbnb_py_error_stats": (c_int, [P, P, c_size_t, P]),
    "msbnb_py_quant_info": (c_int, [P, POINTER(QuantInfo)]),
    "msbnb_py_int4_pack": (c_int, [P, c_size_t, P]),
    "msbnb_py_int4_unpack": (c_int, [P, c_size_t, P]),
    "msbnb_py_quantize_int8": (c_int, [P, c_int64, c_int64, c_int, c_int, P, P, P]),
    "msbnb_py_dequantize_int8": (c_int, [P, P, P, c_int64, c_int64, c_int, c_int, P]),
    "msbnb_py_quantize_int4": (c_int, [P, c_int64, c_int64, c_int, P, P]),
    "msbnb_py_checkpoint_open": (c_int, [c_char_p, POINTER(P)]),
    "msbnb_py_checkpoint_close": (None, [P]),
    "msbnb_py_checkpoint_count": (c_size_t, [P]),
    "msbnb_py_checkpoint_entry": (c_int, [P, c_size_t, POINTER(c_char_p), POINTER(c_int), POINTER(c_int), _I64P,
                                          POINTER(P), POINTER(c_size_t), POINTER(c_int), POINTER(c_int)]),
    "msbnb_py_checkpoint_read_f32": (c_int, [P, c_char_p, P, c_size_t]),
    "msbnb_py_bnb_read": (c_int, [P, c_char_p, POINTER(P)]),
    "msbnb_py_checkpoint_metadata_count": (c_size_t, [P]),
    "msbnb_py_checkpoint_metadata": (c_int, [P, c_size_t, POINTER(c_char_p), POINTER(c_char_p)]),
    "msbnb_py_writer_create": (c_int, [c_char_p, POINTER(P)]),
    "msbnb_py_writer_set_metadata": (c_int, [P, c_char_p, c_char_p]),
    "msbnb_py_writer_add": (c_int, [P, c_char_p, c_int, c_int, _I64P, P, c_size_t]),
    "msbnb_py_writer_add_quantized": (c_int, [P, c_char_p, P, c_int]),
    "msbnb_py_writer_finish": (c_int, [P]),
    "msbnb_py_writer_free": (None, [P]),
}


def _library_path():
    env = os.environ.get("MSBNB_NATIVE_LIB")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_msbnb_native.so")


def _load():
    path = _library_path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(f"msbnb: cannot load the native library {path}: {e} "
                          "(install the package with `pip install .` from the msbnb repository)") from e
    for name, (res, args) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    vs, isz = c_size_t(), c_size_t()
    abi = lib.msbnb_py_abi(ctypes.byref(vs), ctypes.byref(isz))
    if abi != ABI or vs.value != ctypes.sizeof(QTensorView) or isz.value != ctypes.sizeof(QuantInfo):
        raise ImportError(f"msbnb: native library {path} does not match this package "
                          f"(ABI {abi} vs {ABI}, view {vs.value} vs {ctypes.sizeof(QTensorView)} bytes)")
    return lib


lib = _load()
_last_error = lib.msbnb_py_last_error


def check(status):
    """Raise the exception for a failed call, with the shim's copy of msbnb's message."""
    if status:
        raise error_for_status(status, _last_error().decode("utf-8", "replace"))


# Code tables, static in the library: valid for the process's lifetime.
NF4_CODE, FP4_CODE, DYNAMIC_MAP_SIGNED, DYNAMIC_MAP_UNSIGNED = (lib.msbnb_py_code_table(i) for i in range(4))
