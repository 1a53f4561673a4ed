"""Whole checkpoints: msbnb.quantize_checkpoint runs `msbnb quantize` itself (the CLI's code,
compiled into the package's native library), so a file written here is the CLI's byte for byte
for the same options — streamed layer by layer, written to a temporary name and renamed into
place. Options, methods and measurements: docs/quantization.md.
"""

import ctypes
import os

from . import _native
from .errors import InvalidArgumentError

__all__ = ["quantize_checkpoint"]

lib = _native.lib
check = _native.check

_TYPES = ("nf4", "fp4", "int4", "int8")


def _int_option(name, value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an int, got {value!r}")
    return str(value)


def _list_option(name, value):
    items = [value] if isinstance(value, str) else list(value)
    if not items or not all(isinstance(v, str) and v and "," not in v for v in items):
        raise InvalidArgumentError(f"{name} must be a module pattern or a list of them, got {value!r}")
    return ",".join(items)


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
    verbose: print the CLI's per-layer table to stdout. Errors raise msbnb's one-line message
    (InvalidArgumentError for a bad option); nothing is left at dst on failure."""
    if quant_type not in _TYPES:
        raise InvalidArgumentError(f"quant_type {quant_type!r} is not one of {', '.join(_TYPES)}")
    if not isinstance(method, str):
        raise InvalidArgumentError(f"method must be a string, got {method!r}")
    argv = ["quantize", os.fspath(src), os.fspath(dst), "--type", quant_type, "--method", method]
    for name, flag, value in (("block_size", "--blocksize", block_size), ("group_size", "--group-size", group_size),
                              ("calib_tokens", "--calib-tokens", calib_tokens),
                              ("calib_seq", "--calib-seq", calib_seq)):
        if value is not None:
            argv += [flag, _int_option(name, value)]
    for flag, value in (("--calibrate", calibrate), ("--tokenizer", tokenizer)):
        if value is not None:
            argv += [flag, os.fspath(value)]
    if skip is not None:
        argv += ["--skip", _list_option("skip", skip)]
    if targets is not None:
        argv += ["--targets", _list_option("targets", targets)]
    if double_quant:
        argv.append("--double-quant")
    if not verbose:
        argv.append("--quiet")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise InvalidArgumentError(f"threads must be an int >= 1, got {threads!r}")
    cargs = (ctypes.c_char_p * len(argv))(*(os.fsencode(a) for a in argv))
    before = lib.msbnb_py_get_num_threads()
    if threads is not None:
        lib.msbnb_py_set_num_threads(threads)
    try:
        check(lib.msbnb_py_quantize_checkpoint(len(argv), cargs))
    finally:
        if threads is not None:
            lib.msbnb_py_set_num_threads(before)
