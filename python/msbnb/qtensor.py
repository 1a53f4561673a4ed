"""QTensor: a quantized weight whose codes and statistics are numpy arrays.

The arrays belong to the QTensor; the C handle the kernels use borrows them without a copy
(msbnb_qtensor_wrap, O(1) checks). Shapes, as include/msbnb/quant.h (msbnb_qtensor_view):

    data           INT8 sym: int8 [rows, cols]; INT8 asym: uint8 [rows, cols];
                   INT4: uint8 [rows, cols/2]; NF4/FP4: uint8 [ceil(rows*cols/2)];
                   BLOCKWISE8: uint8 [rows*cols]
    stats          INT8: float32 [rows] (per row) or [1]; INT4: float32 [cols/group_size, rows];
                   NF4/FP4/BLOCKWISE8: float32 [n_blocks] (absmax). None with double quant.
    zero_point     INT8 asymmetric: int32 like stats
    stats_q        double quant: uint8 [n_stats]; nested_absmax float32 [ceil(n_stats/256)];
                   nested_offset float; nested_code float32 [256] (None: the library's signed
                   dynamic map; files store the map they were made with, which may differ by an ulp)
"""

import ctypes

import numpy as np

from . import _native
from ._arrays import F32, as_input, dtype_code, ptr
from .errors import InvalidArgumentError

lib = _native.lib
check = _native.check

# msbnb_qtype
QTYPES = {"int8": 1, "int4": 2, "nf4": 3, "fp4": 4, "blockwise8": 5}
QTYPE_NAMES = {v: k for k, v in QTYPES.items()}
PRECISIONS = {"exact": 0, "fast": 1}
_F32 = np.dtype(np.float32)
_matmul = lib.msbnb_py_matmul
_c_char, _addressof = ctypes.c_char, ctypes.addressof


def _copy_out(addr, n, dtype):
    """A numpy copy of n elements of dtype at a C address (None for NULL)."""
    if not addr:
        return None
    a = np.empty(n, dtype)
    ctypes.memmove(a.ctypes.data, addr, a.nbytes)
    return a


class QTensor:
    """A quantized matrix [rows, cols] (a weight is [out_features, in_features])."""

    def __init__(self, quant_type, shape, data, stats=None, *, zero_point=None, stats_q=None,
                 nested_absmax=None, nested_offset=0.0, nested_code=None, code=None, blocksize=64, group_size=128,
                 asymmetric=False, per_row=True, threshold=0.0, nested_blocksize=256,
                 orig_dtype="float32", validate=True):
        """Wrap existing parts (shapes in the module doc) without copying them.

        The C library checks sizes and parameters (O(1)); with validate=True it also checks every
        scale and zero point (O(n), msbnb_qtensor_validate) — pass False only for parts the
        library itself produced. Raises msbnb's error (ValueError subclasses) on bad parts."""
        if quant_type not in QTYPES:
            raise InvalidArgumentError(f"quant_type {quant_type!r} is not one of {', '.join(QTYPES)}")
        rows, cols = (int(s) for s in shape)
        self.quant_type = quant_type
        self.shape = (rows, cols)
        self.orig_dtype = orig_dtype
        dq = stats_q is not None
        asym = quant_type == "int8" and bool(asymmetric)
        code_dtype = np.int8 if quant_type == "int8" and not asym else np.uint8
        self.data = self._part(data, code_dtype, "data")
        self.stats = None if dq else self._part(stats, np.float32, "stats")
        self.zero_point = self._part(zero_point, np.int32, "zero_point") if asym else None
        self.stats_q = self._part(stats_q, np.uint8, "stats_q") if dq else None
        self.nested_absmax = self._part(nested_absmax, np.float32, "nested_absmax") if dq else None
        self.nested_code = self._part(nested_code, np.float32, "nested_code") if dq and nested_code is not None else None
        if self.nested_code is not None and self.nested_code.size != 256:
            raise InvalidArgumentError(f"QTensor: nested_code has {self.nested_code.size} entries, expected 256")
        self.code = self._part(code, np.float32, "code") if quant_type == "blockwise8" and code is not None else None
        v = _native.QTensorView()
        v.type = QTYPES[quant_type]
        v.rows, v.cols = rows, cols
        v.blocksize = int(blocksize) if quant_type in ("nf4", "fp4", "blockwise8") else 0
        v.group_size = int(group_size) if quant_type == "int4" else 0
        v.asymmetric = int(asym)
        v.per_row = int(bool(per_row)) if quant_type == "int8" else 0
        v.threshold = float(threshold) if quant_type == "int8" else 0.0
        v.data, v.data_bytes = ptr(self.data), self.data.nbytes
        n_stats = self.stats_q.size if dq else self.stats.size
        v.stats, v.n_stats = ptr(self.stats), n_stats
        v.zero_point = ptr(self.zero_point)
        if self.code is not None:
            v.code, v.code_len = ptr(self.code), self.code.size
        elif code is not None and quant_type in ("nf4", "fp4"):
            # a stored NF4/FP4 table (e.g. a file's quant_map) must be the built-in one: wrap
            # checks it and then uses the library's own table, so it need not outlive the call
            table = self._part(code, np.float32, "code")
            v.code, v.code_len = ptr(table), table.size
        v.double_quant = int(dq)
        if dq:
            v.nested_blocksize = int(nested_blocksize)
            v.stats_q, v.nested_absmax, v.n_nested = ptr(self.stats_q), ptr(self.nested_absmax), self.nested_absmax.size
            v.nested_code = ptr(self.nested_code) if self.nested_code is not None else _native.DYNAMIC_MAP_SIGNED
            v.nested_offset = float(nested_offset)
        self._view = v
        self._handle = None
        h = ctypes.c_void_p()
        check(lib.msbnb_py_qtensor_wrap(ctypes.byref(v), ctypes.byref(h)))
        self._handle = h.value
        if validate:
            check(lib.msbnb_py_qtensor_validate(self._handle))
        v2 = _native.QTensorView()
        check(lib.msbnb_py_qtensor_view(self._handle, ctypes.byref(v2)))
        self._view = v2  # normalized by the library (e.g. flags of other formats cleared)

    @staticmethod
    def _part(a, dtype, what):
        if a is None:
            raise InvalidArgumentError(f"QTensor: part '{what}' is required for this format")
        a = np.asarray(a)
        if a.dtype != dtype:
            if a.dtype.kind != np.dtype(dtype).kind or a.dtype.itemsize != np.dtype(dtype).itemsize:
                raise InvalidArgumentError(f"QTensor: part '{what}' has dtype {a.dtype}, expected {np.dtype(dtype)}")
            a = a.view(dtype)
        return np.ascontiguousarray(a)

    @classmethod
    def _from_owned(cls, handle, orig_dtype="float32"):
        """Take a library-owned tensor (from quantize or a file): copy its parts into numpy arrays,
        free it, and wrap the arrays."""
        try:
            v = _native.QTensorView()
            check(lib.msbnb_py_qtensor_view(handle, ctypes.byref(v)))
            name = QTYPE_NAMES[v.type]
            asym = name == "int8" and v.asymmetric
            code_dtype = np.int8 if name == "int8" and not asym else np.uint8
            data = _copy_out(v.data, v.data_bytes, code_dtype)
            rows, cols = v.rows, v.cols
            if name == "int8":
                data = data.reshape(rows, cols)
            elif name == "int4":
                data = data.reshape(rows, cols // 2)
            stats = _copy_out(v.stats, v.n_stats, np.float32)
            if stats is not None and name == "int4":
                stats = stats.reshape(cols // v.group_size, rows)
            code = _copy_out(v.code, 256, np.float32) if name == "blockwise8" else None
            return cls(name, (rows, cols), data, stats,
                       zero_point=_copy_out(v.zero_point, v.n_stats, np.int32),
                       stats_q=_copy_out(v.stats_q, v.n_stats, np.uint8),
                       nested_absmax=_copy_out(v.nested_absmax, v.n_nested, np.float32),
                       nested_offset=v.nested_offset, nested_code=_copy_out(v.nested_code, 256, np.float32),
                       code=code, blocksize=v.blocksize,
                       group_size=v.group_size, asymmetric=v.asymmetric, per_row=v.per_row,
                       threshold=v.threshold, nested_blocksize=v.nested_blocksize,
                       orig_dtype=orig_dtype, validate=False)
        finally:
            lib.msbnb_py_qtensor_free(handle)

    def __del__(self):
        h, self._handle = getattr(self, "_handle", None), None
        if h:
            lib.msbnb_py_qtensor_free(h)

    # ------------------------------------------------------------ properties
    @property
    def handle(self):
        """The C msbnb_qtensor* (borrowing this object's arrays; valid while it lives)."""
        return self._handle

    @property
    def rows(self):
        return self.shape[0]

    @property
    def cols(self):
        return self.shape[1]

    @property
    def blocksize(self):
        return self._view.blocksize

    @property
    def group_size(self):
        return self._view.group_size

    @property
    def double_quant(self):
        return bool(self._view.double_quant)

    @property
    def compress_statistics(self):
        return self.double_quant

    @property
    def asymmetric(self):
        return bool(self._view.asymmetric)

    @property
    def per_row(self):
        return bool(self._view.per_row)

    @property
    def threshold(self):
        return self._view.threshold

    @property
    def nested_offset(self):
        return self._view.nested_offset

    @property
    def nested_blocksize(self):
        return self._view.nested_blocksize

    def __repr__(self):
        extra = ""
        if self.quant_type in ("nf4", "fp4", "blockwise8"):
            extra = f", blocksize={self.blocksize}"
        elif self.quant_type == "int4":
            extra = f", group_size={self.group_size}"
        if self.double_quant:
            extra += ", double_quant"
        return f"QTensor({self.quant_type}, shape={self.shape}{extra})"

    # ------------------------------------------------------------ operations
    def dequantize(self, dtype="float32"):
        """The float matrix [rows, cols] (float32, or float16 / bfloat16 rounded to nearest even;
        bfloat16 as ml_dtypes.bfloat16 when installed, else raw uint16 bits)."""
        code = dtype_code(dtype)
        if code == F32:
            out = np.empty(self.shape, np.float32)
        elif code == 1:
            out = np.empty(self.shape, np.float16)
        else:
            from ._arrays import bfloat16_dtype
            out = np.empty(self.shape, bfloat16_dtype() or np.uint16)
        check(lib.msbnb_py_dequantize(self._handle, code, out.ctypes.data))
        return out

    def matmul(self, x, bias=None, precision="exact"):
        """Y = x · deq(W)ᵀ (+ bias) through msbnb's fused product, without dequantizing W.

        x: [..., cols] float32 / float16 / bfloat16; returns float32 [..., rows].
        precision 'exact' (fp32 semantics, default) or 'fast' (docs/kernels.md)."""
        # the common case first, with as few Python operations as possible (per-call overhead is
        # measured by bench/python_overhead.py)
        if type(x) is not np.ndarray or x.dtype is not _F32 or not x.flags.c_contiguous:
            x, xcode = as_input(x, "x")
        else:
            xcode = F32
        rows, cols = self.shape
        shape = x.shape
        if not shape or shape[-1] != cols:
            raise InvalidArgumentError(f"matmul: x has shape {x.shape}, expected [..., {cols}]")
        n = x.size // cols
        prec = PRECISIONS.get(precision)
        if prec is None:
            raise InvalidArgumentError(f"precision {precision!r} is not 'exact' or 'fast'")
        y = np.empty(shape[:-1] + (rows,), _F32)
        if n == 0:
            return y
        bptr = None
        if bias is not None:
            bias = np.ascontiguousarray(bias, np.float32)
            if bias.shape != (rows,):
                raise InvalidArgumentError(f"matmul: bias has shape {bias.shape}, expected ({rows},)")
            bptr = ptr(bias)
        st = _matmul(self._handle, ptr(x), xcode, n, bptr, _addressof(_c_char.from_buffer(y)), prec)
        if st:
            check(st)
        return y

    def matmul_llm_int8(self, x, bias=None, threshold=None):
        """LLM.int8() product (msbnb_matmul_int8_lt) of an INT8 symmetric tensor: activation
        columns holding any |x| >= threshold go through an fp32 product, the rest through int8 x
        int8 (bitsandbytes' Linear8bitLt). threshold None: the tensor's own (Int8Config's 6.0);
        0 disables the decomposition. x [..., cols] float32 -> float32 [..., rows]."""
        if self.quant_type != "int8":
            raise InvalidArgumentError(f"matmul_llm_int8 needs an int8 tensor, not {self.quant_type}")
        x = np.ascontiguousarray(x, np.float32)
        rows, cols = self.shape
        if not x.shape or x.shape[-1] != cols:
            raise InvalidArgumentError(f"matmul_llm_int8: x has shape {x.shape}, expected [..., {cols}]")
        t = self.threshold if threshold is None else float(threshold)
        bptr = None
        if bias is not None:
            bias = np.ascontiguousarray(bias, np.float32)
            if bias.shape != (rows,):
                raise InvalidArgumentError(f"matmul_llm_int8: bias has shape {bias.shape}, expected ({rows},)")
            bptr = ptr(bias)
        y = np.empty(x.shape[:-1] + (rows,), np.float32)
        n = x.size // cols
        if n:
            check(lib.msbnb_py_matmul_int8_lt(self._handle, ptr(x), n, bptr, t, ptr(y)))
        return y

    def matmul_t(self, dy, accumulate_into=None):
        """dX = dy · deq(W): dy [..., rows] float32 -> [..., cols] (the backward of matmul).
        With accumulate_into (a C-contiguous float32 array of that shape) the product is added."""
        dy = np.ascontiguousarray(dy, np.float32)
        rows, cols = self.shape
        if dy.ndim == 0 or dy.shape[-1] != rows:
            raise InvalidArgumentError(f"matmul_t: dy has shape {dy.shape}, expected [..., {rows}]")
        n = dy.size // rows
        shape = dy.shape[:-1] + (cols,)
        if accumulate_into is not None:
            out = accumulate_into
            if (type(out) is not np.ndarray or out.dtype != np.float32 or out.shape != shape
                    or not out.flags.c_contiguous):
                raise InvalidArgumentError(f"matmul_t: accumulate_into must be C-contiguous float32 {shape}")
        else:
            out = np.empty(shape, np.float32)
        if n:
            check(lib.msbnb_py_matmul_t(self._handle, dy.ctypes.data, n, out.ctypes.data,
                                        int(accumulate_into is not None)))
        return out

    def error(self, original):
        """Quantization error against the original matrix (msbnb_estimate_quantization_error):
        dict with relative_error_pct, snr_db, mse, max_abs_error."""
        from ._arrays import as_f32
        ref = as_f32(original, "original")
        if ref.size != self.rows * self.cols:
            raise InvalidArgumentError(f"original has {ref.size} elements, the tensor {self.shape}")
        st = np.empty(4, np.float64)
        check(lib.msbnb_py_estimate_error(ref.ctypes.data, self._handle, st.ctypes.data))
        return _stats_dict(st)

    def info(self):
        """Storage figures (msbnb_get_quantization_info) as a dict."""
        i = _native.QuantInfo()
        check(lib.msbnb_py_quant_info(self._handle, ctypes.byref(i)))
        return {
            "quant_type": QTYPE_NAMES[i.type], "shape": (i.rows, i.cols), "blocksize": i.blocksize,
            "group_size": i.group_size, "double_quant": bool(i.double_quant),
            "asymmetric": bool(i.asymmetric), "per_row": bool(i.per_row),
            "data_bytes": i.data_bytes, "stats_bytes": i.stats_bytes, "total_bytes": i.total_bytes,
            "bits_per_weight": i.bits_per_weight, "compression_vs_f32": i.compression_vs_f32,
            "compression_vs_f16": i.compression_vs_f16,
        }

    def save(self, path, name="weight"):
        """Write this tensor alone to a safetensors file under `name`, in the bitsandbytes / msbnb
        layout (docs/io.md); msbnb.load_quantized reads it back."""
        from .io import save_quantized
        save_quantized(path, {name: self})


def _stats_dict(st):
    return {"mse": float(st[0]), "max_abs_error": float(st[1]),
            "relative_error_pct": float(st[2]), "snr_db": float(st[3])}


METHODS = {"rtn": 0, "search": 1, "gptq": 2}


def quantize(w, quant_type, *, blocksize=64, group_size=128, double_quant=False, nested_blocksize=256,
             asymmetric=False, per_row=True, threshold=6.0, method="rtn", importance=None):
    """Quantize w [rows, cols] (float32 / float16 / bfloat16) into a QTensor (msbnb_quantize_ex).

    method 'search' / 'gptq' (nf4, fp4, int4; msbnb_quantize_opt on w as float32) choose scales and
    codes for less error in the same format; importance: the layer's input statistics, [cols]
    per-input weights (the diagonal of XᵀX) or [cols, cols] XᵀX itself (what gptq needs; without
    it gptq is search). docs/quantization.md."""
    from ._arrays import as_matrix
    if quant_type not in QTYPES:
        raise InvalidArgumentError(f"quant_type {quant_type!r} is not one of {', '.join(QTYPES)}")
    if method not in METHODS:
        raise InvalidArgumentError(f"method {method!r} is not one of {', '.join(METHODS)}")
    if method != "rtn" or importance is not None:
        return _quantize_opt(w, quant_type, blocksize, group_size, double_quant, nested_blocksize, method,
                             importance)
    a, code = as_input(w, "w")
    rows, cols = as_matrix(a, "w")
    h = ctypes.c_void_p()
    check(lib.msbnb_py_quantize(a.ctypes.data, code, rows, cols, QTYPES[quant_type], int(blocksize),
                                int(group_size), int(bool(double_quant)), int(nested_blocksize),
                                int(bool(asymmetric)), int(bool(per_row)), float(threshold), ctypes.byref(h)))
    orig = {0: "float32", 1: "float16", 2: "bfloat16"}[code]
    return QTensor._from_owned(h.value, orig)


def _quantize_opt(w, quant_type, blocksize, group_size, double_quant, nested_blocksize, method, importance):
    """quantize() with a method or statistics: msbnb_quantize_opt (float32 weights, doubles for H)."""
    from ._arrays import as_f32, as_matrix
    a = as_f32(w, "w")
    rows, cols = as_matrix(a, "w")
    h = diag = None
    if importance is not None:
        imp = np.ascontiguousarray(importance, dtype=np.float64)
        if imp.shape == (cols,):
            diag = imp
        elif imp.shape == (cols, cols):
            h = imp
        else:
            raise InvalidArgumentError(f"importance has shape {imp.shape}, expected ({cols},) or ({cols}, {cols})")
    out = ctypes.c_void_p()
    check(lib.msbnb_py_quantize_opt(a.ctypes.data, rows, cols, QTYPES[quant_type], int(blocksize), int(group_size),
                                    int(bool(double_quant)), int(nested_blocksize), METHODS[method],
                                    None if h is None else h.ctypes.data,
                                    None if diag is None else diag.ctypes.data, rows, ctypes.byref(out)))
    return QTensor._from_owned(out.value, "float32")
