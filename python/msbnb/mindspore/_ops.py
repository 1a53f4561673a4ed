"""MindSpore custom operators (func_type="aot") over msbnb's fused products.

The C entry points are in python/src/ms_ops.c, compiled into the package's native library (the
same file msbnb/_native.py loads). They receive raw pointers to the Parameter memory that holds
the quantized weight's parts, so nothing is copied per call.

Inputs of the forward operator (one per precision, shared by every layer):
    x [..., in] (float32 / float16 / bfloat16), data, stats, stats_q, nested_absmax,
    meta int64 [9], fmeta float32 [2], bias float32 [out]   ->   y float32 [..., out]
Its output shape is read from the bias (always [out]: a zero vector when the layer has none) and
the backward's from `x`: in GRAPH_MODE one parsed bprop serves every layer, so no shape may come
from a closure over one layer (layers of different widths would get each other's shapes).
"""

import numpy as np

import mindspore as ms
from mindspore import ops

from .. import _native
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


def _fwd_shape(x, data, stats, stats_q, nested, meta, fmeta, bias):
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


def _bprop(x, data, stats, stats_q, nested, meta, fmeta, bias, out, dout):
    # dx = dout · deq(W) by msbnb_matmul_t; x rides along only to give dx its shape
    dx = _BACKWARD(dout, x, data, stats, stats_q, nested, meta, fmeta)
    dbias = ops.sum(dout.reshape((-1, dout.shape[-1])), 0)
    return (ops.cast(dx, x.dtype), ops.zeros_like(data), ops.zeros_like(stats), ops.zeros_like(stats_q),
            ops.zeros_like(nested), ops.zeros_like(meta), ops.zeros_like(fmeta), dbias)


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


def last_op_error():
    """The message of the most recent failing msbnb custom operator ('' when none failed)."""
    f = _native.lib.msbnb_ms_last_error
    f.restype = _native.ctypes.c_char_p
    return f().decode("utf-8", "replace")
