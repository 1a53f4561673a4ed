"""Whole checkpoints: msbnb.quantize_checkpoint calls the library's msbnb_quantize_model
(include/msbnb/convert.h), the code `msbnb quantize` runs, so a file written here is the CLI's
byte for byte for the same options — streamed layer by layer, written to a temporary name and
renamed into place. Options, methods and measurements: docs/quantization.md.
"""

import ctypes
import math
import os

from . import _native
from .errors import InvalidArgumentError
from .qtensor import QTYPES

__all__ = ["quantize_checkpoint"]

lib = _native.lib
check = _native.check

_TYPES = ("nf4", "fp4", "int4", "int8")


class _Row(ctypes.Structure):  # msbnb_quantize_row (convert.h)
    _fields_ = [("name", ctypes.c_char_p), ("shape", ctypes.c_int64 * 2), ("bytes_before", ctypes.c_uint64),
                ("bytes_after", ctypes.c_uint64), ("rel_err_pct", ctypes.c_double), ("snr_db", ctypes.c_double),
                ("kept", ctypes.c_char_p), ("group_size", ctypes.c_int)]


class _Totals(ctypes.Structure):  # msbnb_quantize_totals (convert.h)
    _fields_ = [("bytes_before", ctypes.c_uint64), ("bytes_after", ctypes.c_uint64), ("n_quantized", ctypes.c_size_t),
                ("n_kept", ctypes.c_size_t), ("n_other", ctypes.c_size_t), ("calib_tokens", ctypes.c_int64)]


def _int_option(name, value):
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise InvalidArgumentError(f"{name} must be >= 1, got {value!r}")
    return value


def _list_option(name, value):
    """Module patterns as a C array (and its length); None -> (None, -1): the library's default."""
    if value is None:
        return None, -1
    items = [value] if isinstance(value, str) else list(value)
    # no commas: the CLI's --skip / --targets split on them, so such a pattern could not be given there
    if not items or not all(isinstance(v, str) and v and "," not in v for v in items):
        raise InvalidArgumentError(f"{name} must be a module pattern or a list of them, got {value!r}")
    return (ctypes.c_char_p * len(items))(*(v.encode() for v in items)), len(items)


def _report(rep):
    """The library's report as a dict: per-layer rows and totals."""
    layers = []
    for i in range(lib.msbnb_py_quantize_report_count(rep)):
        r = _Row()
        check(lib.msbnb_py_quantize_report_row(rep, i, ctypes.byref(r)))
        layers.append({"name": r.name.decode(), "shape": (r.shape[0], r.shape[1]),
                       "bytes_before": r.bytes_before, "bytes_after": r.bytes_after,
                       "rel_err_pct": r.rel_err_pct if not r.kept else None,
                       "snr_db": r.snr_db if not r.kept else None,
                       "kept": r.kept.decode() if r.kept else None, "group_size": r.group_size or None})
    t = _Totals()
    lib.msbnb_py_quantize_report_totals(rep, ctypes.byref(t))
    return {"layers": layers, "bytes_before": t.bytes_before, "bytes_after": t.bytes_after,
            "n_quantized": t.n_quantized, "n_kept": t.n_kept, "n_other": t.n_other, "calib_tokens": t.calib_tokens}


def _print_report(rep, quant_type):
    print(f"{'layer':48} {'type':6} {'shape':13} {'before':>11} {'after':>11} {'rel.err%':>9} {'SNR dB':>8}")
    for r in rep["layers"]:
        shape = f"[{r['shape'][0]}, {r['shape'][1]}]"
        if r["kept"]:
            print(f"{r['name']:48} {'-':6} {shape:13} {r['bytes_before']:>11} {r['bytes_after']:>11}  kept: {r['kept']}")
        else:
            snr = "inf" if math.isinf(r["snr_db"]) else f"{r['snr_db']:.2f}"
            print(f"{r['name']:48} {quant_type:6} {shape:13} {r['bytes_before']:>11} {r['bytes_after']:>11} "
                  f"{r['rel_err_pct']:9.3f} {snr:>8}")
    print(f"quantized {rep['n_quantized']} linear layers; model size {rep['bytes_before']} -> {rep['bytes_after']} bytes")


def quantize_checkpoint(src, dst, quant_type="nf4", *, block_size=None, group_size=None, double_quant=False,
                        method="rtn", calibrate=None, calib_tokens=None, calib_seq=None, tokenizer=None,
                        skip=None, targets=None, threads=None, verbose=False):
    """Quantize the linear layers of the checkpoint src into dst, as `msbnb quantize src dst ...`.

    src, dst: both Hugging Face model directories (config.json + safetensors) or both .safetensors
    files. quant_type 'nf4' | 'fp4' | 'int4' | 'int8'; block_size (nf4/fp4, default 64), group_size
    (int4, default 128), double_quant (nf4/fp4/int4). method: 'rtn' (bitsandbytes' rule,
    byte-exact), 'search', 'gptq', 'awq', 'awq+search', 'awq+gptq' (gptq and awq need calibrate:
    a text file the model runs over; calib_tokens of it, default 4096, in sequences of calib_seq;
    tokenizer: default the one in or above src). skip / targets: module patterns (default skip
    'lm_head'). threads: msbnb's thread count for this call (the file is the same for any).
    verbose: print the per-layer table to stdout. Returns the library's report: a dict with
    'layers' (name, shape, bytes_before, bytes_after, rel_err_pct, snr_db, kept, group_size per
    linear layer), 'bytes_before', 'bytes_after', 'n_quantized', 'n_kept', 'n_other',
    'calib_tokens'. Errors raise msbnb's one-line message (InvalidArgumentError for a bad option);
    nothing is left at dst on failure."""
    if quant_type not in _TYPES:
        raise InvalidArgumentError(f"quant_type {quant_type!r} is not one of {', '.join(_TYPES)}")
    if not isinstance(method, str):
        raise InvalidArgumentError(f"method must be a string, got {method!r}")
    ints = {name: _int_option(name, value) for name, value in
            (("block_size", block_size), ("group_size", group_size), ("calib_tokens", calib_tokens),
             ("calib_seq", calib_seq))}
    skip_c, n_skip = _list_option("skip", skip)
    targets_c, n_targets = _list_option("targets", targets)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise InvalidArgumentError(f"threads must be an int >= 1, got {threads!r}")
    path = lambda p: None if p is None else os.fsencode(p)  # noqa: E731
    rep = ctypes.c_void_p()
    before = lib.msbnb_py_get_num_threads()
    if threads is not None:
        lib.msbnb_py_set_num_threads(threads)
    try:
        check(lib.msbnb_py_quantize_checkpoint(
            path(src), path(dst), QTYPES[quant_type], ints["block_size"], ints["group_size"], int(bool(double_quant)),
            method.encode(), path(calibrate), path(tokenizer), ints["calib_tokens"], ints["calib_seq"],
            skip_c, max(n_skip, -1), targets_c, max(n_targets, 0), ctypes.byref(rep)))
    finally:
        if threads is not None:
            lib.msbnb_py_set_num_threads(before)
    try:
        report = _report(rep)
    finally:
        lib.msbnb_py_quantize_report_free(rep)
    if verbose:
        _print_report(report, quant_type)
    return report
