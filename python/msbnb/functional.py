"""The functional API on numpy (no MindSpore import). Every computation is a call into msbnb's C
library; this module converts arrays and names.

Weights are [rows, cols] = [out_features, in_features]; inputs may be float32, float16 or
bfloat16 (ml_dtypes.bfloat16, or raw uint16 bit patterns); other real dtypes are converted to
float32, non-contiguous arrays copied.
"""

import numpy as np

from . import _native
from ._arrays import as_f32, as_matrix, ptr
from .config import Int4Config, Int8Config, QuantConfig
from .errors import InvalidArgumentError
from .qtensor import QTensor, _stats_dict, quantize

__all__ = [
    "quantize_8bit", "dequantize_8bit", "quantize_4bit", "dequantize_4bit", "quantize_tensor",
    "dequantize_tensor", "estimate_quantization_error", "get_quantization_info",
    "pack_int4_to_qint4x2", "unpack_qint4x2_to_int8", "compute_scale_offset", "matmul",
]

lib = _native.lib
check = _native.check


def quantize_8bit(w, symmetric=True, per_channel=True):
    """INT8 of w [rows, cols] -> (weight_int8, scale, offset).

    symmetric: weight int8 [rows, cols] codes in [-127, 127] (bitsandbytes CB), scale float32
    [rows] (per_channel) or [1]: the absmax (bitsandbytes SCB; x̂ = code·scale/127), offset int32
    zeros. asymmetric: weight uint8 [rows, cols], scale float32 the step, offset int32 the zero
    point (x̂ = (code - offset)·scale). dequantize_8bit inverts either exactly as the library."""
    x = as_f32(w, "w")
    rows, cols = as_matrix(x, "w")
    ns = rows if per_channel else 1
    asym = not symmetric
    codes = np.empty((rows, cols), np.uint8 if asym else np.int8)
    scale = np.empty(ns, np.float32)
    offset = np.zeros(ns, np.int32)
    check(lib.msbnb_py_quantize_int8(x.ctypes.data, rows, cols, int(bool(per_channel)), int(asym),
                                     codes.ctypes.data, scale.ctypes.data, offset.ctypes.data))
    return codes, scale, offset


def dequantize_8bit(weight_int8, scale, offset=None):
    """Inverse of quantize_8bit: float32 [rows, cols]. int8 codes -> symmetric (scale = absmax),
    uint8 codes -> asymmetric (offset = zero point). Per channel when scale has rows entries."""
    codes = np.ascontiguousarray(weight_int8)
    if codes.dtype not in (np.int8, np.uint8):
        raise InvalidArgumentError(f"weight_int8: dtype {codes.dtype}, expected int8 (symmetric) or uint8")
    rows, cols = as_matrix(codes, "weight_int8")
    scale = np.ascontiguousarray(scale, np.float32).reshape(-1)
    if scale.size not in (rows, 1):
        raise InvalidArgumentError(f"scale has {scale.size} entries, expected {rows} (per row) or 1")
    asym = codes.dtype == np.uint8
    zp = None
    if asym:
        if offset is None:
            raise InvalidArgumentError("asymmetric (uint8) codes need the offset (zero point)")
        zp = np.ascontiguousarray(offset, np.int32).reshape(-1)
        if zp.size != scale.size:
            raise InvalidArgumentError(f"offset has {zp.size} entries, scale {scale.size}")
    y = np.empty((rows, cols), np.float32)
    check(lib.msbnb_py_dequantize_int8(codes.ctypes.data, scale.ctypes.data, ptr(zp), rows, cols,
                                       int(scale.size == rows), int(asym),
                                       y.ctypes.data))
    return y


def quantize_4bit(w, group_size=128, compress_statistics=False, quant_type="int4", method="rtn", importance=None):
    """4-bit quantization of w [rows, cols] -> QTensor (codes and statistics as numpy arrays;
    .dequantize(), .matmul(x), .save(path)). 'int4': per group of group_size along cols;
    'nf4' / 'fp4': bitsandbytes' formats with group_size as the block size (byte-exact codes).
    compress_statistics: double quantization of the scales.
    method: 'rtn' (bitsandbytes' rule), 'search' (each block's scale of least squared error,
    weighted by importance [cols] when given) or 'gptq' (importance = XᵀX [cols, cols] of the
    layer's inputs); the result is the same format either way (docs/quantization.md)."""
    kwargs = Int4Config(group_size=group_size, compress_statistics=compress_statistics,
                        quant_type=quant_type).quantize_kwargs()
    return quantize(w, **kwargs, method=method, importance=importance)


def dequantize_4bit(qt, dtype="float32"):
    """QTensor of a 4-bit format -> [rows, cols] in dtype."""
    if not isinstance(qt, QTensor) or qt.quant_type not in ("int4", "nf4", "fp4"):
        raise InvalidArgumentError("dequantize_4bit expects a QTensor of type int4, nf4 or fp4")
    return qt.dequantize(dtype)


def quantize_tensor(w, config=None, **kwargs):
    """Quantize w with a config (QuantConfig, Int8Config, Int4Config; default Int4Config()) or with
    the quantizer's own keywords (quant_type='nf4', blocksize=64, double_quant=True, ...)."""
    if config is not None and kwargs:
        raise InvalidArgumentError("give either a config or keywords, not both")
    if config is None and not kwargs:
        config = Int4Config()
    if config is not None:
        if not isinstance(config, (QuantConfig, Int8Config, Int4Config)):
            raise InvalidArgumentError(f"config {config!r} is not a QuantConfig, Int8Config or Int4Config")
        kwargs = config.quantize_kwargs()
    return quantize(w, **kwargs)


def dequantize_tensor(qt, dtype="float32"):
    """Any QTensor -> [rows, cols] in dtype (float32, float16, bfloat16)."""
    if not isinstance(qt, QTensor):
        raise InvalidArgumentError(f"expected a QTensor, got {type(qt).__name__}")
    return qt.dequantize(dtype)


def estimate_quantization_error(original, quantized):
    """Error of a quantized tensor (QTensor) or of any approximation array against the original:
    dict with relative_error_pct (100·‖x−x̂‖/‖x‖), snr_db, mse, max_abs_error — the C API's figures."""
    if isinstance(quantized, QTensor):
        return quantized.error(original)
    ref = as_f32(original, "original")
    approx = as_f32(quantized, "quantized")
    if ref.size != approx.size:
        raise InvalidArgumentError(f"original has {ref.size} elements, quantized {approx.size}")
    st = np.empty(4, np.float64)
    check(lib.msbnb_py_error_stats(ref.ctypes.data, approx.ctypes.data, ref.size, st.ctypes.data))
    return _stats_dict(st)


def get_quantization_info(qt):
    """Storage of a QTensor: bytes of codes and statistics, bits per weight, compression ratios."""
    if not isinstance(qt, QTensor):
        raise InvalidArgumentError(f"expected a QTensor, got {type(qt).__name__}")
    return qt.info()


def pack_int4_to_qint4x2(codes):
    """int8 codes in [-8, 7] -> uint8, two per byte along the last axis (first element in the high
    nibble; an odd last axis is padded with 0). Shape [..., k] -> [..., ceil(k/2)]."""
    c = np.ascontiguousarray(codes)
    if c.dtype != np.int8:
        if c.dtype.kind not in "iu":
            raise InvalidArgumentError(f"codes: dtype {c.dtype}, expected int8")
        if c.size and (c.min() < -8 or c.max() > 7):
            raise InvalidArgumentError("codes must lie in [-8, 7]")
        c = c.astype(np.int8)
    if c.ndim == 0:
        raise InvalidArgumentError("codes must have at least one dimension")
    k = c.shape[-1]
    lead = c.shape[:-1]
    out = np.empty(lead + ((k + 1) // 2,), np.uint8)
    rows = int(np.prod(lead)) if lead else 1
    for r in range(rows) if k % 2 else (0,):
        # odd rows do not meet at byte boundaries: pack row by row; even ones in one call
        src = c.reshape(rows, k)[r] if k % 2 else c.reshape(-1)
        dst = out.reshape(rows, -1)[r] if k % 2 else out.reshape(-1)
        if src.size:
            check(lib.msbnb_py_int4_pack(src.ctypes.data, src.size, dst.ctypes.data))
    return out


def unpack_qint4x2_to_int8(packed, k=None):
    """Inverse of pack_int4_to_qint4x2: uint8 [..., m] -> int8 [..., k] (k = 2m by default;
    k = 2m - 1 drops the padding nibble)."""
    p = np.ascontiguousarray(packed)
    if p.dtype != np.uint8 and p.dtype != np.int8:
        raise InvalidArgumentError(f"packed: dtype {p.dtype}, expected uint8")
    p = p.view(np.uint8)
    if p.ndim == 0:
        raise InvalidArgumentError("packed must have at least one dimension")
    m = p.shape[-1]
    k = 2 * m if k is None else int(k)
    if k not in (2 * m, 2 * m - 1):
        raise InvalidArgumentError(f"k = {k} does not fit {m} packed bytes (2m or 2m - 1)")
    lead = p.shape[:-1]
    rows = int(np.prod(lead)) if lead else 1
    out = np.empty(lead + (k,), np.int8)
    for r in range(rows) if k % 2 else (0,):
        src = p.reshape(rows, m)[r] if k % 2 else p.reshape(-1)
        dst = out.reshape(rows, k)[r] if k % 2 else out.reshape(-1)
        if dst.size:
            check(lib.msbnb_py_int4_unpack(src.ctypes.data, dst.size, dst.ctypes.data))
    return out


def compute_scale_offset(w, bits=8, symmetric=True, per_channel=True, group_size=128):
    """The statistics msbnb's quantizers compute for w [rows, cols], without keeping the codes:
    bits 8 -> as quantize_8bit (scale, offset); bits 4 -> INT4 per-group scales float32
    [cols/group_size, rows] (absmax/7) and zero offsets (INT4 is symmetric)."""
    if bits == 8:
        _, scale, offset = quantize_8bit(w, symmetric=symmetric, per_channel=per_channel)
        return scale, offset
    if bits != 4:
        raise InvalidArgumentError(f"bits must be 4 or 8, got {bits!r}")
    if not symmetric:
        raise InvalidArgumentError("4-bit quantization is symmetric only")
    x = as_f32(w, "w")
    rows, cols = as_matrix(x, "w")
    if group_size <= 0 or cols % group_size:
        raise InvalidArgumentError(f"group_size {group_size} does not divide cols {cols}")
    packed = np.empty((rows, cols // 2), np.uint8)
    scales = np.empty((cols // group_size, rows), np.float32)
    check(lib.msbnb_py_quantize_int4(x.ctypes.data, rows, cols, int(group_size), packed.ctypes.data,
                                     scales.ctypes.data))
    return scales, np.zeros_like(scales, np.int32)


def matmul(x, qt, bias=None, precision="exact"):
    """x [..., in] · deq(W)ᵀ (+ bias) -> float32 [..., out] through msbnb's fused product."""
    if not isinstance(qt, QTensor):
        raise InvalidArgumentError(f"expected a QTensor, got {type(qt).__name__}")
    return qt.matmul(x, bias=bias, precision=precision)

