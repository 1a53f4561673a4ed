"""Quantized linear Cells: Linear8bit and Linear4bit on msbnb's fused kernels.

A quantized layer keeps its weight as the parts of an msbnb quantized tensor in NON-trainable
Parameters, so MindSpore checkpoints (ckpt and safetensors) hold them unchanged and no optimizer
can update the codes:
    weight                 codes: INT8 int8 [out, in]; INT4 uint8 [out, in/2]; NF4/FP4 uint8 [ceil(out*in/2)]
    weight_stats           float32 absmax / scales (shapes in msbnb/qtensor.py); [1] when double-quantized
    weight_stats_q         uint8 [n_stats] double-quantized statistics; [1] otherwise
    weight_nested_absmax   float32 [ceil(n_stats/256)]; [1] otherwise
    weight_nested_code     float32 [256] the statistics' code map (a file's own); [1] otherwise
    quant_meta, quant_fmeta  the format (type, shape, block and group sizes...; nested offset, threshold)
    bias                   float32 [out], trainable (when the layer has one)
The forward runs msbnb_matmul_ex (exact by default, `compute='fast'` for the fast kernels) and the
backward dX = dY·deq(W) runs msbnb_matmul_t, through the custom operators of _ops.py.
"""

import math

import numpy as np

import mindspore as ms
from mindspore import Parameter, Tensor, mint, nn, ops
from mindspore.common.initializer import HeUniform, initializer

from . import _ops
from ..qtensor import QTensor, quantize

_ONE_F32 = np.zeros(1, np.float32)
_ONE_U8 = np.zeros(1, np.uint8)


def default_weight(in_features, out_features):
    """A float32 [out, in] weight initialized as nn.Dense does (He-uniform, a = sqrt(5))."""
    return initializer(HeUniform(math.sqrt(5)), [out_features, in_features], ms.float32).init_data().asnumpy()


def _nested_code(p):
    """The 256-entry map of a double-quantized QTensor's statistic codes (the library's signed
    dynamic map unless the tensor came with its own, e.g. from a file)."""
    if getattr(p, "nested_code", None) is not None:
        return np.asarray(p.nested_code, np.float32)
    import ctypes
    from .. import _native
    return np.ctypeslib.as_array(ctypes.cast(_native.DYNAMIC_MAP_SIGNED, ctypes.POINTER(ctypes.c_float)),
                                 (256,)).copy()


def _to_numpy(w):
    if isinstance(w, (Tensor, Parameter)):
        w = w.float().asnumpy() if w.dtype == ms.bfloat16 else w.asnumpy()
    return np.asarray(w)


def _prefixed(layer, local):
    """The full Parameter name for `local` inside `layer`, from the names MindSpore already gave
    the layer's Parameters (a Parameter added after the layer was placed in a model would
    otherwise get a bare name that collides across layers in checkpoints)."""
    for key, p in layer.parameters_and_names(expand=False):
        if p.name.endswith(key):
            return p.name[: len(p.name) - len(key)] + local
    return getattr(layer, "_name_prefix", "") + local


class QuantizedLinearBase(nn.Cell):
    """Common machinery: Parameters holding QParts, the fused forward and the msbnb backward."""

    def __init__(self, in_features, out_features, bias=True, compute="exact"):
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.has_bias = bool(bias)
        self.compute = compute
        self._fwd = _ops.forward_op(compute)  # raises for an unknown name
        self._zero_bias = Tensor(np.zeros(self.out_features, np.float32))
        if self.has_bias:
            bound = 1.0 / math.sqrt(self.in_features)
            self.bias = Parameter(Tensor(np.random.uniform(-bound, bound, self.out_features).astype(np.float32)),
                                  name="bias")

    # ------------------------------------------------------------------ parts <-> Parameters
    def _set_parts(self, p):
        """Store QTensor p's parts in the layer's Parameters (created on first use, replaced after)."""
        if (p.rows, p.cols) != (self.out_features, self.in_features):
            raise ValueError(f"msbnb.mindspore: weight [{p.rows}, {p.cols}] does not fit a layer "
                             f"[{self.out_features}, {self.in_features}]")
        meta, fmeta = _ops.pack_meta(p, self.has_bias)
        arrays = {
            "weight": p.data,
            "weight_stats": p.stats if p.stats is not None else _ONE_F32,
            "weight_stats_q": p.stats_q if p.stats_q is not None else _ONE_U8,
            "weight_nested_absmax": p.nested_absmax if p.nested_absmax is not None else _ONE_F32,
            "weight_nested_code": _nested_code(p) if p.double_quant else _ONE_F32,
            "quant_meta": meta,
            "quant_fmeta": fmeta,
        }
        for name, a in arrays.items():
            t = Tensor(np.ascontiguousarray(a))
            old = self._params.get(name)
            if old is not None and old.shape == t.shape and old.dtype == t.dtype:
                old.set_data(t)
            else:
                full = old.name if old is not None else _prefixed(self, name)
                if old is not None:
                    del self._params[name]
                setattr(self, name, Parameter(t, name=full, requires_grad=False))
        self.quant_type = p.quant_type

    def parts(self):
        """The layer's quantized weight as a msbnb QTensor over numpy copies of the Parameters
        (validated by the library: a corrupt checkpoint raises msbnb's message)."""
        meta = self.quant_meta.asnumpy()
        fmeta = self.quant_fmeta.asnumpy()
        qtype = {1: "int8", 2: "int4", 3: "nf4", 4: "fp4"}.get(int(meta[0]))
        if qtype is None:
            raise ValueError(f"msbnb.mindspore: quant_meta holds an unknown type {int(meta[0])}")
        dq = bool(meta[5])
        return QTensor(qtype, (int(meta[1]), int(meta[2])), self.weight.asnumpy(),
                       None if dq else self.weight_stats.asnumpy(),
                       stats_q=self.weight_stats_q.asnumpy() if dq else None,
                       nested_absmax=self.weight_nested_absmax.asnumpy() if dq else None,
                       nested_code=self.weight_nested_code.asnumpy() if dq else None,
                       nested_offset=float(fmeta[0]), blocksize=int(meta[3]), group_size=int(meta[4]),
                       nested_blocksize=int(meta[6]) if dq else 256, per_row=bool(meta[7]),
                       threshold=float(fmeta[1]))

    def dequantize(self):
        """float32 [out, in] numpy: the weight as msbnb_dequantize reconstructs it."""
        return self.parts().dequantize()

    def set_compute(self, compute):
        """'exact' (default) or 'fast' kernels (INT8 weights also 'llm_int8'). In GRAPH_MODE, call it
        before the network is compiled."""
        self._fwd = _ops.forward_op(compute)
        self.compute = compute

    def quantized_nbytes(self):
        """Bytes of the weight as stored (codes + statistics) plus the bias."""
        return int(self.parts().info()["total_bytes"]) + (4 * self.out_features if self.has_bias else 0)

    # ------------------------------------------------------------------ compute
    def __call__(self, *args, **kwargs):
        # MindSpore's error of a failed msbnb operator -> msbnb's exception (_ops.reraise); inside a
        # compiled network MindSpore calls construct and the network's caller converts (op_errors)
        try:
            return super().__call__(*args, **kwargs)
        except (RuntimeError, ValueError) as e:
            _ops.reraise(e)
            raise

    def _quant_forward(self, x):
        # the kernel's checks of x before the launch: at the call in PyNative, at compilation in
        # GRAPH_MODE (shapes and dtypes are constants there)
        msg = _ops.input_error(self.compute, self.in_features, x.shape, x.dtype)
        if msg:
            raise ValueError(msg)
        b = self.bias if self.has_bias else self._zero_bias
        y = self._fwd(x, self.weight, self.weight_stats, self.weight_stats_q, self.weight_nested_absmax,
                      self.weight_nested_code, self.quant_meta, self.quant_fmeta, b)
        return ops.cast(y, x.dtype)

    def extend_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.has_bias}, "
                f"quant_type={getattr(self, 'quant_type', None)}, compute={self.compute}")


class Linear4bit(QuantizedLinearBase):
    """A linear layer y = x·Wᵀ + b whose weight is stored in 4 bits and multiplied by msbnb's kernels.

    quant_type 'nf4' | 'fp4' (bitsandbytes blockwise, blocksize 64) or 'int4' (per group of
    group_size columns); compress_statistics = double quantization of the statistics. The weight
    is quantized at construction (from an nn.Dense-like initialization) or taken from `weight`
    (numpy/Tensor [out, in]); `from_linear` converts an existing nn.Dense or mint.nn.Linear.
    """

    def __init__(self, in_features, out_features, bias=True, group_size=128, compress_statistics=True,
                 quant_type="nf4", blocksize=64, compute="exact", weight=None):
        super().__init__(in_features, out_features, bias, compute)
        self.group_size = group_size
        self.blocksize = blocksize
        self.compress_statistics = bool(compress_statistics)
        if isinstance(weight, QTensor):  # already quantized (a file, another layer): kept as is
            if weight.quant_type == "int8":
                raise ValueError("msbnb.mindspore: Linear4bit takes a 4-bit QTensor, got int8")
            self.compress_statistics = weight.double_quant
            self._set_parts(weight)
            return
        w = default_weight(in_features, out_features) if weight is None else _to_numpy(weight)
        self.quantize_from(w, quant_type)

    def quantize_from(self, w, quant_type=None):
        """(Re)quantize float weights w [out, in] into the layer's Parameters."""
        qt = quant_type or self.quant_type
        self._set_parts(quantize(np.asarray(w, np.float32), qt, blocksize=self.blocksize,
                                 group_size=self.group_size, double_quant=self.compress_statistics and qt != "int8"))

    @classmethod
    def from_linear(cls, linear, **kwargs):
        """A Linear4bit holding `linear`'s (nn.Dense / mint.nn.Linear) weight and bias, quantized."""
        w, b = _dense_weight_bias(linear)
        layer = cls(w.shape[1], w.shape[0], bias=b is not None, weight=w, **kwargs)
        if b is not None:
            layer.bias.set_data(Tensor(b))
        return layer

    def construct(self, x):
        return self._quant_forward(x)


class Linear8bit(QuantizedLinearBase):
    """An 8-bit linear layer (bitsandbytes Linear8bitLt's roles).

    has_fp16_weights=True: an ordinary trainable layer holding float weights (`weight_dtype`,
    float32 by default; float16 as bitsandbytes does) until quantize_weights() switches it to INT8
    (per-row absmax, the LLM.int8() threshold stored with it). has_fp16_weights=False: quantized at
    construction. Quantized, the forward runs msbnb's fused INT8 product (compute 'exact' or
    'fast'), or LLM.int8() with the outlier threshold (compute='llm_int8').
    In GRAPH_MODE, call quantize_weights() before the network is compiled (or compile a new one):
    a compiled graph keeps the branch it was compiled with.
    """

    def __init__(self, in_features, out_features, bias=True, has_fp16_weights=True, threshold=6.0,
                 compute="exact", weight=None, weight_dtype=ms.float32):
        super().__init__(in_features, out_features, bias, compute)
        self.threshold = float(threshold)
        self.is_quantized = False
        if isinstance(weight, QTensor):  # already quantized: kept as is
            if weight.quant_type != "int8" or weight.asymmetric:
                raise ValueError(f"msbnb.mindspore: Linear8bit takes a symmetric int8 QTensor, got {weight!r}")
            self._set_parts(weight)
            self.is_quantized = True
            return
        w = default_weight(in_features, out_features) if weight is None else _to_numpy(weight).astype(np.float32)
        if has_fp16_weights:
            self.weight = Parameter(Tensor(w).astype(weight_dtype), name="weight")
        else:
            self._quantize_array(w)

    def _quantize_array(self, w):
        self._set_parts(quantize(w, "int8", threshold=self.threshold))
        self.is_quantized = True

    def quantize_weights(self):
        """Switch the float weights to INT8 (msbnb_quantize); a no-op when already quantized."""
        if self.is_quantized:
            return self
        w = _to_numpy(self.weight).astype(np.float32)
        object.__setattr__(self, "_name_prefix", self.weight.name[: -len("weight")])
        del self._params["weight"]
        self._quantize_array(w)
        return self

    @classmethod
    def from_linear(cls, linear, has_fp16_weights=False, **kwargs):
        w, b = _dense_weight_bias(linear)
        layer = cls(w.shape[1], w.shape[0], bias=b is not None, has_fp16_weights=has_fp16_weights, weight=w, **kwargs)
        if b is not None:
            layer.bias.set_data(Tensor(b))
        return layer

    def dequantize(self):
        if not self.is_quantized:
            return _to_numpy(self.weight).astype(np.float32)
        return super().dequantize()

    def quantized_nbytes(self):
        if not self.is_quantized:
            return int(self.weight.nbytes) + (4 * self.out_features if self.has_bias else 0)
        return super().quantized_nbytes()

    def construct(self, x):
        if self.is_quantized:
            return self._quant_forward(x)
        b = self.bias if self.has_bias else None
        y = mint.nn.functional.linear(x, ops.cast(self.weight, x.dtype), None if b is None else ops.cast(b, x.dtype))
        return y


def _dense_weight_bias(linear):
    """(weight float32 [out, in], bias float32 [out] or None) of nn.Dense / mint.nn.Linear / our layers."""
    if isinstance(linear, QuantizedLinearBase) and getattr(linear, "is_quantized", True):
        w = linear.dequantize()
    else:
        w = _to_numpy(linear.weight).astype(np.float32)
    b = getattr(linear, "bias", None)
    if isinstance(b, (Parameter, Tensor)):
        b = _to_numpy(b).astype(np.float32)
    else:
        b = None
    if w.ndim != 2:
        raise ValueError(f"msbnb.mindspore: expected a 2-D weight, got {w.shape}")
    return w, b
