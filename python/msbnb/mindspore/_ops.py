"""MindSpore custom operators (func_type="aot") over msbnb's fused products.

The C entry points are in python/src/ms_ops.c, compiled into the package's native library (the
same file msbnb/_native.py loads). They receive raw pointers to the Parameter memory that holds
the quantized weight's parts, so nothing is copied per call.

Inputs of the forward operator (one per precision, shared by every layer):
    x [..., in] (float32 / float16 / bfloat16), data, stats, stats_q, nested_absmax, nested_code,
    meta int64 [9], fmeta float32 [2], bias float32 [out]   ->   y float32 [..., out]
Its output shape is read from the bias (always [out]: a zero vector when the layer has none) and
the backward's from `x`: in GRAPH_MODE one parsed bprop serves every layer, so no shape may come
from a closure over one layer (layers of different widths would get each other's shapes).

Errors. MindSpore turns a failing AOT operator into its generic RuntimeError ("Return value from
CPU AOT kernel ... is 1"), with no way for the kernel to pass a message; the kernel records msbnb's
message and status (msbnb_ms_last_error / _status). So:
  - input_error() runs the kernel's own checks of the activation (msbnb_ms_check_input) before the
    op is launched: the Cells raise its message at the call (PyNative) or while compiling
    (GRAPH_MODE, where shapes and dtypes are constants);
  - reraise() turns MindSpore's error of a failed msbnb operator back into msbnb's exception, with
    the kernel's message, chained to MindSpore's. The Cells' __call__, the LLaMA's helpers and
    the context manager op_errors() (for a user's own top-level call, e.g. a TrainOneStepCell)
    apply it.
"""

import contextlib
import ctypes
import functools

import numpy as np

import mindspore as ms
from mindspore import ops

from .. import _native
from ..errors import MsbnbError, error_for_status
from ..qtensor import QTYPES

META_LEN = 9  # python/src/ms_ops.c, enum MS_META_*


def pack_meta(p, has_bias):
    """meta int64 [9] and fmeta float32 [2] of QTensor p (layout of ms_ops.c)."""
    meta = np.array([QTYPES[p.quant_type], p.rows, p.cols, p.blocksize, p.group_size, int(p.double_quant),
                     p.nested_blocksize if p.double_quant else 0, int(p.per_row), int(bool(has_bias))], np.int64)
    fmeta = np.array([p.nested_offset if p.double_quant else 0.0, p.threshold], np.float32)
    return meta, fmeta


def _lib():
    return _native._library_path()


def _fwd_shape(x, data, stats, stats_q, nested, ncode, meta, fmeta, bias):
    return list(x[:-1]) + [bias[0]]


def _fwd_dtype(*args):
    return ms.float32


def _bwd_shape(dy, x, *rest):
    return list(x)


_BACKWARD = None


def _backward_op():
    global _BACKWARD
    if _BACKWARD is None:
        _BACKWARD = ops.Custom(_lib() + ":msbnb_ms_matmul_t", out_shape=_bwd_shape, out_dtype=_fwd_dtype,
                               func_type="aot")
    return _BACKWARD


def _bprop(x, data, stats, stats_q, nested, ncode, meta, fmeta, bias, out, dout):
    # dx = dout · deq(W) by msbnb_matmul_t; x rides along only to give dx its shape
    dx = _BACKWARD(dout, x, data, stats, stats_q, nested, ncode, meta, fmeta)
    dbias = ops.sum(dout.reshape((-1, dout.shape[-1])), 0)
    return (ops.cast(dx, x.dtype), ops.zeros_like(data), ops.zeros_like(stats), ops.zeros_like(stats_q),
            ops.zeros_like(nested), ops.zeros_like(ncode), ops.zeros_like(meta), ops.zeros_like(fmeta), dbias)


_FORWARD = {}
_ENTRY = {"exact": "msbnb_ms_matmul", "fast": "msbnb_ms_matmul_fast", "llm_int8": "msbnb_ms_matmul_int8_lt"}


def forward_op(precision):
    """The shared forward operator for 'exact', 'fast' or 'llm_int8' (INT8 weights only)."""
    if precision not in _ENTRY:
        raise ValueError(f"msbnb.mindspore: compute precision {precision!r} is not one of {', '.join(_ENTRY)}")
    if precision not in _FORWARD:
        _backward_op()
        _FORWARD[precision] = ops.Custom(_lib() + ":" + _ENTRY[precision], out_shape=_fwd_shape,
                                         out_dtype=_fwd_dtype, func_type="aot", bprop=_bprop)
    return _FORWARD[precision]


_MODE = {"exact": 0, "fast": 1, "llm_int8": 2}
_lib_fn = _native.lib
_lib_fn.msbnb_ms_last_error.restype = ctypes.c_char_p
_lib_fn.msbnb_ms_last_error.argtypes = []
_lib_fn.msbnb_ms_last_status.restype = ctypes.c_int
_lib_fn.msbnb_ms_last_status.argtypes = []
_lib_fn.msbnb_ms_check_input.restype = ctypes.c_int
_lib_fn.msbnb_ms_check_input.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int, ctypes.POINTER(ctypes.c_int64),
                                         ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
# the most recent refusal of input_error: (status, message), for reraise
_last_input = [0, ""]


@ms.constexpr(reuse_result=False)
def input_error(precision, in_features, shape, dtype):
    """'' when an activation of `shape` and `dtype` fits the forward operator of a layer with
    `in_features` inputs, else msbnb's message (the kernel's own checks, msbnb_ms_check_input).
    A constexpr: GRAPH_MODE evaluates it while compiling (shapes and dtypes are constants there).
    A dimension unknown at compile time (negative) is left to the kernel."""
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        return ""
    dims = (ctypes.c_int64 * max(len(shape), 1))(*shape)
    msg = ctypes.create_string_buffer(512)
    st = _lib_fn.msbnb_ms_check_input(_MODE[precision], int(in_features), len(shape), dims,
                                      str(dtype).lower().encode(), msg, len(msg))
    if st == 0:
        return ""
    _last_input[:] = [st, msg.value.decode("utf-8", "replace")]
    return _last_input[1]


def last_op_error():
    """The message of the most recent failing msbnb custom operator ('' when none failed)."""
    return _lib_fn.msbnb_ms_last_error().decode("utf-8", "replace")


# the most recent operator failure turned into msbnb's exception: (status, message)
_last_converted = [0, ""]
# MindSpore's refusal to run a compiled network again after one of its steps failed
_POISONED = "An error occurred in the previous step of this model execution"


def _is_ours(e):
    """The msbnb error that MindSpore's exception e stands for, or None."""
    if isinstance(e, MsbnbError):
        return None
    text = str(e)
    if isinstance(e, RuntimeError) and "AOT kernel" in text and "msbnb_ms_" in text:
        msg = last_op_error()
        if msg:
            _last_converted[:] = [_lib_fn.msbnb_ms_last_status(), msg]
            return error_for_status(*_last_converted)
    elif isinstance(e, RuntimeError) and _POISONED in text and _last_converted[1]:
        return error_for_status(_last_converted[0], _last_converted[1] + " (from an earlier step: MindSpore "
                                "does not run a compiled network again after a failed step; build a new one)")
    elif isinstance(e, ValueError) and _last_input[1] and _last_input[1] in text:
        return error_for_status(*_last_input)
    return None


def reraise(e):
    """Raise msbnb's exception for MindSpore's error e of a failed msbnb operator (chained to e);
    return if e is something else (the caller re-raises it)."""
    err = _is_ours(e)
    if err is not None:
        raise err from e


@contextlib.contextmanager
def op_errors():
    """Inside this block, an error of an msbnb operator raises msbnb's exception (ShapeError,
    FormatError, ...: ValueError subclasses) with the kernel's message instead of MindSpore's
    generic RuntimeError. For calls the Cells do not see: a user's own top-level network in
    GRAPH_MODE (e.g. a TrainOneStepCell step), or reading a PyNative result (MindSpore runs
    operators asynchronously there, so a kernel's failure surfaces where the result is read)."""
    try:
        yield
    except (RuntimeError, ValueError) as e:
        reraise(e)
        raise


def with_op_errors(fn):
    """Decorator: fn's errors of msbnb operators become msbnb's exceptions (see op_errors)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with op_errors():
            return fn(*args, **kwargs)
    return wrapper
