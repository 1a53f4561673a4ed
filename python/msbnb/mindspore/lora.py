"""LoRA Cells: LoRALinear (float base) and Linear4bitWithLoRA / Linear8bitWithLoRA (QLoRA).

y = base(x) + Σ_active dropout(x)·Aᵀ·Bᵀ·(lora_alpha / r), with A [r, in] (Kaiming-uniform, as
PEFT) and B [out, r] (zero) per named adapter; the frozen base is an fp32 weight or msbnb's
quantized one (whose forward and dX run msbnb's kernels, layers.py).

Several adapters per layer (add_adapter, set_adapter, disable_adapters / enable_adapters,
delete_adapter, merge_adapter / unmerge_adapter). Which adapters count is a per-adapter gate held
in a non-trainable Parameter (lora_alpha/r when active, 0 otherwise), so switching adapters, disabling
them and merging change Parameter values only: a compiled GRAPH_MODE network follows them without
recompiling. Adding or deleting an adapter changes the network's structure: in GRAPH_MODE do it
before compiling (or compile again).

Parameters (names under the layer): lora_adapters.<name>.lora_A [r, in], .lora_B [out, r]
(trainable, float32), .lora_gate [1] (not trainable).

Merging a quantized base dequantizes it (msbnb), adds B·A·scale, and quantizes again with the same
format; unmerge restores the previous codes byte for byte (they are kept while merged).
"""

import math

import numpy as np

import mindspore as ms
from mindspore import Parameter, Tensor, mint, nn, ops

from .layers import Linear4bit, Linear8bit, _dense_weight_bias, _prefixed, _to_numpy, default_weight


class LoRAAdapter(nn.Cell):
    """One adapter: dropout(x)·Aᵀ·Bᵀ·gate."""

    def __init__(self, in_features, out_features, r, lora_alpha, lora_dropout=0.0, seed=None):
        super().__init__()
        if not (isinstance(r, int) and r >= 1):
            raise ValueError(f"msbnb.mindspore: LoRA rank r must be an int >= 1, got {r!r}")
        if not 0.0 <= float(lora_dropout) < 1.0:
            raise ValueError(f"msbnb.mindspore: lora_dropout must be in [0, 1), got {lora_dropout!r}")
        self.r = r
        self.lora_alpha = float(lora_alpha)
        self.scaling = self.lora_alpha / r
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(in_features)  # kaiming_uniform(a=sqrt(5)), as PEFT
        self.lora_A = Parameter(Tensor(rng.uniform(-bound, bound, (r, in_features)).astype(np.float32)), name="lora_A")
        self.lora_B = Parameter(Tensor(np.zeros((out_features, r), np.float32)), name="lora_B")
        self.lora_gate = Parameter(Tensor(np.zeros(1, np.float32)), name="lora_gate", requires_grad=False)
        self.lora_dropout = float(lora_dropout)
        self.has_dropout = self.lora_dropout > 0.0
        self.dropout = nn.Dropout(p=float(lora_dropout)) if self.has_dropout else None

    def delta(self):
        """B·A·(alpha/r), float32 [out, in] numpy."""
        return (self.lora_B.asnumpy().astype(np.float64) @ self.lora_A.asnumpy().astype(np.float64)
                * self.scaling).astype(np.float32)

    def construct(self, x):
        h = self.dropout(x) if self.has_dropout else x
        h = mint.nn.functional.linear(h, ops.cast(self.lora_A, h.dtype))
        h = mint.nn.functional.linear(h, ops.cast(self.lora_B, h.dtype))
        return h * ops.cast(self.lora_gate, h.dtype)


class LoRAMixin:
    """Named adapters on a linear Cell; the class provides _base_forward, _merge_into(delta) and
    _restore(saved) (see LoRALinear and the quantized variants)."""

    def _init_lora(self):
        self.lora_adapters = nn.CellDict()
        object.__setattr__(self, "_adapter_cells", ())  # iteration order of construct (plain tuple)
        self.active_adapters = []
        self.adapters_disabled = False
        self.merged_adapters = []
        self._merge_stack = []

    # ------------------------------------------------------------------ adapters
    def add_adapter(self, name, r=8, lora_alpha=16, lora_dropout=0.0, seed=None, activate=True):
        if name in self.lora_adapters:
            raise ValueError(f"msbnb.mindspore: adapter '{name}' already exists")
        a = LoRAAdapter(self.in_features, self.out_features, r, lora_alpha, lora_dropout, seed)
        self.lora_adapters[name] = a
        for local, p in a.parameters_and_names():
            p.name = _prefixed(self, f"lora_adapters.{name}.{local}")
        object.__setattr__(self, "_adapter_cells", tuple(self.lora_adapters[k] for k in self.lora_adapters.keys()))
        if activate or not self.active_adapters:
            self.set_adapter(name)
        else:
            a.lora_A.requires_grad = a.lora_B.requires_grad = False
            self._update_gates()
        return a

    def set_adapter(self, names):
        """Make `names` (one name or a list) the active adapters; the others stop counting and their
        Parameters stop being trainable (as PEFT does)."""
        names = [names] if isinstance(names, str) else list(names)
        for n in names:
            if n not in self.lora_adapters:
                raise KeyError(f"msbnb.mindspore: no adapter '{n}' (have {', '.join(self.lora_adapters.keys())})")
        self.active_adapters = names
        for k in self.lora_adapters.keys():
            a = self.lora_adapters[k]
            a.lora_A.requires_grad = a.lora_B.requires_grad = k in names
        self._update_gates()

    def disable_adapters(self):
        self.adapters_disabled = True
        self._update_gates()

    def enable_adapters(self):
        self.adapters_disabled = False
        self._update_gates()

    def delete_adapter(self, name):
        if name not in self.lora_adapters:
            raise KeyError(f"msbnb.mindspore: no adapter '{name}'")
        if name in self.merged_adapters:
            raise ValueError(f"msbnb.mindspore: adapter '{name}' is merged; unmerge it first")
        del self.lora_adapters[name]
        object.__setattr__(self, "_adapter_cells", tuple(self.lora_adapters[k] for k in self.lora_adapters.keys()))
        self.active_adapters = [n for n in self.active_adapters if n != name]
        self._update_gates()

    def _update_gates(self):
        for k in self.lora_adapters.keys():
            a = self.lora_adapters[k]
            on = (k in self.active_adapters and not self.adapters_disabled and k not in self.merged_adapters)
            a.lora_gate.set_data(Tensor(np.array([a.scaling if on else 0.0], np.float32)))

    # ------------------------------------------------------------------ merge
    def merge_adapter(self, names=None):
        """Fold the active (or the named) adapters into the base weight. Returns the merged names."""
        names = list(self.active_adapters if names is None else ([names] if isinstance(names, str) else names))
        names = [n for n in names if n not in self.merged_adapters]
        if not names:
            return []
        delta = sum(self.lora_adapters[n].delta() for n in names)
        self._merge_stack.append((names, self._merge_into(delta)))
        self.merged_adapters.extend(names)
        self._update_gates()
        return names

    def unmerge_adapter(self):
        """Undo every merge, restoring the base weight exactly as it was before."""
        while self._merge_stack:
            names, saved = self._merge_stack.pop()
            self._restore(saved)
            self.merged_adapters = [n for n in self.merged_adapters if n not in names]
        self._update_gates()

    # ------------------------------------------------------------------ reports
    def lora_parameters(self):
        return [p for p in self.get_parameters() if ".lora_A" in p.name or ".lora_B" in p.name
                or p.name.startswith("lora_")]

    def print_trainable_params(self):
        """Print (and return) trainable / total parameter counts, quantized weights counted as
        out·in logical weights."""
        trainable = sum(int(p.size) for p in self.trainable_params())
        total = _logical_param_count(self)
        print(f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {100.0 * trainable / total:.4f}")
        return trainable, total

    def _lora_sum(self, x, y):
        for a in self._adapter_cells:
            y = y + ops.cast(a(x), y.dtype)
        return y


def _logical_param_count(cell):
    from .layers import QuantizedLinearBase
    n = 0
    for _, c in cell.cells_and_names():
        for key, p in c.parameters_and_names(expand=False):
            if isinstance(c, QuantizedLinearBase) and getattr(c, "is_quantized", True) and (
                    key.startswith("weight") or key.startswith("quant_")):
                if key == "weight":
                    n += c.in_features * c.out_features
                continue
            if key == "lora_gate":
                continue
            n += int(p.size)
    return n


class LoRALinear(nn.Cell, LoRAMixin):
    """A float32 linear layer (frozen) with LoRA adapters (the first, 'default', added here)."""

    def __init__(self, in_features, out_features, r=8, lora_alpha=16, lora_dropout=0.0, bias=True,
                 adapter_name="default", weight=None):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        w = default_weight(in_features, out_features) if weight is None else _to_numpy(weight).astype(np.float32)
        self.weight = Parameter(Tensor(w), name="weight", requires_grad=False)
        self.has_bias = bool(bias)
        if self.has_bias:
            bound = 1.0 / math.sqrt(in_features)
            self.bias = Parameter(Tensor(np.random.uniform(-bound, bound, out_features).astype(np.float32)),
                                  name="bias", requires_grad=False)
        self._init_lora()
        if r:
            self.add_adapter(adapter_name, r, lora_alpha, lora_dropout)

    @classmethod
    def from_linear(cls, linear, r=8, lora_alpha=16, lora_dropout=0.0, adapter_name="default"):
        w, b = _dense_weight_bias(linear)
        layer = cls(w.shape[1], w.shape[0], r, lora_alpha, lora_dropout, bias=b is not None,
                    adapter_name=adapter_name, weight=w)
        if b is not None:
            layer.bias.set_data(Tensor(b))
        return layer

    def get_merged_weight(self):
        """W + Σ_active B·A·scale (float32 [out, in] numpy), without changing the layer."""
        w = self.weight.asnumpy().copy()
        if not self.adapters_disabled:
            for n in self.active_adapters:
                if n not in self.merged_adapters:
                    w += self.lora_adapters[n].delta()
        return w

    def _merge_into(self, delta):
        saved = self.weight.asnumpy().copy()
        self.weight.set_data(Tensor(saved + delta))
        return saved

    def _restore(self, saved):
        self.weight.set_data(Tensor(saved))

    def construct(self, x):
        y = mint.nn.functional.linear(x, ops.cast(self.weight, x.dtype),
                                      ops.cast(self.bias, x.dtype) if self.has_bias else None)
        return self._lora_sum(x, y)


class _QuantLoRA(LoRAMixin):
    """What the quantized LoRA layers share: a frozen base (codes and bias) plus LoRA adapters."""

    def _setup_lora(self, r, lora_alpha, lora_dropout, adapter_name):
        if self.has_bias:
            self.bias.requires_grad = False
        self._init_lora()
        if r:
            self.add_adapter(adapter_name, r, lora_alpha, lora_dropout)

    def _copy_bias_from(self, layer):
        if layer.has_bias:
            self.bias.set_data(layer.bias.value().copy())
        return self

    @classmethod
    def from_linear(cls, linear, r=8, lora_alpha=16, lora_dropout=0.0, adapter_name="default", **kwargs):
        w, b = _dense_weight_bias(linear)
        layer = cls(w.shape[1], w.shape[0], r, lora_alpha, lora_dropout, adapter_name, bias=b is not None,
                    weight=w, **kwargs)
        if b is not None:
            layer.bias.set_data(Tensor(b))
        return layer

    def _merge_into(self, delta):
        saved = self.parts()
        w = saved.dequantize() + delta
        self._requantize(w, saved)
        return saved

    def _restore(self, saved):
        self._set_parts(saved)

    def get_merged_weight(self):
        w = self.dequantize()
        if not self.adapters_disabled:
            for n in self.active_adapters:
                if n not in self.merged_adapters:
                    w = w + self.lora_adapters[n].delta()
        return w

    def construct(self, x):
        return self._lora_sum(x, self._quant_forward(x))


class Linear4bitWithLoRA(_QuantLoRA, Linear4bit):
    """QLoRA layer: a frozen Linear4bit (NF4 + double quant by default) plus LoRA adapters."""

    def __init__(self, in_features, out_features, r=8, lora_alpha=16, lora_dropout=0.0, adapter_name="default",
                 **linear4bit_kwargs):
        Linear4bit.__init__(self, in_features, out_features, **linear4bit_kwargs)
        self._setup_lora(r, lora_alpha, lora_dropout, adapter_name)

    @classmethod
    def from_quantized(cls, layer, r=8, lora_alpha=16, lora_dropout=0.0, adapter_name="default"):
        """Adapters on an existing Linear4bit: its codes, statistics and bias are kept byte for byte."""
        new = cls(layer.in_features, layer.out_features, r, lora_alpha, lora_dropout, adapter_name,
                  bias=layer.has_bias, weight=layer.parts(), group_size=layer.group_size, blocksize=layer.blocksize,
                  compute=layer.compute)
        return new._copy_bias_from(layer)

    def _requantize(self, w, saved):
        self.blocksize = saved.blocksize or self.blocksize
        self.group_size = saved.group_size or self.group_size
        self.compress_statistics = saved.double_quant
        self.quantize_from(w, saved.quant_type)


class Linear8bitWithLoRA(_QuantLoRA, Linear8bit):
    """A frozen INT8 Linear8bit plus LoRA adapters."""

    def __init__(self, in_features, out_features, r=8, lora_alpha=16, lora_dropout=0.0, adapter_name="default",
                 **linear8bit_kwargs):
        linear8bit_kwargs.setdefault("has_fp16_weights", False)
        Linear8bit.__init__(self, in_features, out_features, **linear8bit_kwargs)
        self.quantize_weights()
        self._setup_lora(r, lora_alpha, lora_dropout, adapter_name)

    @classmethod
    def from_quantized(cls, layer, r=8, lora_alpha=16, lora_dropout=0.0, adapter_name="default"):
        """Adapters on an existing (quantized) Linear8bit: codes, scales and bias kept byte for byte."""
        new = cls(layer.in_features, layer.out_features, r, lora_alpha, lora_dropout, adapter_name,
                  bias=layer.has_bias, weight=layer.parts(), threshold=layer.threshold, compute=layer.compute)
        return new._copy_bias_from(layer)

    def _requantize(self, w, saved):
        self._quantize_array(np.asarray(w, np.float32))
