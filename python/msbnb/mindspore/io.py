"""Files for MindSpore models with Hugging Face names, through msbnb's C IO.

- load_hf_weights / save_hf_weights: HF safetensors (a directory or a file) into / out of a model
  whose Parameters carry HF names. Quantized entries (bitsandbytes Linear4bit / Linear8bitLt
  layouts, msbnb INT4; written by `msbnb quantize`, bitsandbytes or transformers) become
  Linear4bit / Linear8bit Cells holding the codes as stored; saving writes them back in the same
  layouts (msbnb.save_quantized), as a whole HF directory: config.json with transformers'
  quantization_config (the C library's, as `msbnb quantize` writes it), committed in one rename.
- save_peft_adapter / load_peft_adapter: LoRA adapters in PEFT's format (adapter_config.json +
  adapter_model.safetensors, keys base_model.model.<module>.lora_A/B.weight): the files `msbnb
  finetune` writes and `msbnb generate --adapter` reads.
- Tokenizer: the llama2.c tokenizer (tok512.bin) of msbnb's model code.
"""

import ctypes
import json
import os
import shutil

import numpy as np

from mindspore import Tensor, mint, nn

from .. import _native
from ..errors import error_for_status
from ..io import load_quantized, save_quantized
from ..qtensor import QTensor
from .layers import Linear4bit, Linear8bit, QuantizedLinearBase
from .lora import LoRAMixin

__all__ = ["load_hf_weights", "save_hf_weights", "save_peft_adapter", "load_peft_adapter", "Tokenizer"]

P = ctypes.c_void_p
_SIGS = {
    "msbnb_ms_io_last_error": (ctypes.c_char_p, []),
    "msbnb_ms_tokenizer_load": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(P)]),
    "msbnb_ms_tokenizer_free": (None, [P]),
    "msbnb_ms_tokenizer_encode": (ctypes.c_int, [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, P,
                                                 ctypes.c_int, ctypes.POINTER(ctypes.c_int)]),
    "msbnb_ms_tokenizer_decode": (ctypes.c_int, [P, ctypes.c_int32, P, ctypes.c_int, P, ctypes.c_size_t,
                                                 ctypes.POINTER(ctypes.c_size_t)]),
    "msbnb_ms_peft_save": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_int, ctypes.c_double, ctypes.c_double,
                                          ctypes.c_char_p, P, ctypes.c_size_t, P, P, P, P, P, ctypes.c_size_t]),
    "msbnb_ms_peft_load": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(P)]),
    "msbnb_ms_peft_free": (None, [P]),
    "msbnb_ms_peft_info": (ctypes.c_size_t, [P, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_double),
                                             ctypes.POINTER(ctypes.c_double)]),
    "msbnb_ms_peft_get": (ctypes.c_int, [P, ctypes.c_size_t, ctypes.POINTER(ctypes.c_char_p),
                                         ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int64),
                                         ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(P), ctypes.POINTER(P)]),
    "msbnb_ms_quantization_config_json": (ctypes.c_int, [P, P, ctypes.c_size_t, ctypes.POINTER(P)]),
    "msbnb_ms_free": (None, [P]),
    "msbnb_ms_config_write_with_quantization": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]),
    "msbnb_ms_dir_begin": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(P)]),
    "msbnb_ms_dir_path": (ctypes.c_char_p, [P]),
    "msbnb_ms_dir_commit": (ctypes.c_int, [P]),
    "msbnb_ms_dir_free": (None, [P]),
}
lib = _native.lib
for _name, (_res, _args) in _SIGS.items():
    getattr(lib, _name).restype = _res
    getattr(lib, _name).argtypes = _args


def _check(st):
    if st:
        raise error_for_status(st, lib.msbnb_ms_io_last_error().decode("utf-8", "replace"))


# ---------------------------------------------------------------------- HF weights

def _module_map(model):
    return dict(model.cells_and_names())


def load_hf_weights(model, path, strict=True):
    """Load an HF safetensors directory or file (msbnb.load_quantized) into `model` by name.
    A quantized '<module>.weight' replaces the linear Cell <module> by a Linear4bit / Linear8bit
    holding it; plain tensors are copied into the Parameter of the same name (shapes must match).
    Names absent from the model raise with strict=True (tied lm_head aside). Returns the list of
    modules that became quantized."""
    tensors = load_quantized(path)
    cells = _module_map(model)
    params = {p.name: p for p in model.get_parameters()}
    quantized = []
    for name, t in tensors.items():
        if isinstance(t, QTensor):
            mod, attr = name.rsplit(".", 1)
            parent_path, _, child = mod.rpartition(".")
            parent, old = cells.get(parent_path), cells.get(mod)
            if attr != "weight" or parent is None or old is None:
                raise KeyError(f"{path}: quantized tensor '{name}' has no linear layer '{mod}' in the model")
            rows, cols = t.shape
            has_bias = isinstance(getattr(old, "bias", None), Tensor)
            if t.quant_type == "int8":
                new = Linear8bit(cols, rows, bias=has_bias, has_fp16_weights=False, threshold=t.threshold, weight=t)
            else:
                new = Linear4bit(cols, rows, bias=has_bias, weight=t, group_size=t.group_size or 128,
                                 blocksize=t.blocksize or 64)
            if has_bias:
                new.bias.set_data(old.bias.value())
            setattr(parent, child, new)
            quantized.append(mod)
    if quantized:
        model.update_parameters_name()
        params = {p.name: p for p in model.get_parameters()}
    for name, t in tensors.items():
        if isinstance(t, QTensor):
            continue
        p = params.get(name)
        if p is None:
            if name == "lm_head.weight" and getattr(model, "tied", False):
                continue
            if strict:
                raise KeyError(f"{path}: tensor '{name}' has no Parameter in the model")
            continue
        a = np.asarray(t)
        if a.dtype.name == "bfloat16" or a.dtype == np.float16:
            a = a.astype(np.float32)
        if tuple(a.shape) != tuple(p.shape):
            raise ValueError(f"{path}: tensor '{name}' has shape {a.shape}, the model's Parameter {tuple(p.shape)}")
        p.set_data(Tensor(a.astype(np.float32) if a.dtype.kind == "f" else a))
    return quantized


def _hf_tensors(model):
    """{HF name: QTensor or numpy} of the model: quantized layers as their parts, float
    Parameters as they are; LoRA Parameters and bookkeeping left out."""
    out = {}
    for path_, cell in model.cells_and_names():
        pre = f"{path_}." if path_ else ""
        quant = isinstance(cell, QuantizedLinearBase) and getattr(cell, "is_quantized", True)
        if quant:
            out[pre + "weight"] = cell.parts()
        for key, p in cell.parameters_and_names(expand=False):
            if quant and (key.startswith("weight") or key.startswith("quant_")):
                continue
            if key in ("lora_A", "lora_B", "lora_gate"):
                continue
            out[pre + key] = p.asnumpy()
    return out


def _quantization_config(model, tensors):
    """transformers' quantization_config JSON of the model's quantized layers (the C library's
    msbnb_bnb_quantization_config_json, as `msbnb quantize` writes it), or None when no layer is
    quantized. The linear layers left in float (and lm_head) are its skip list. One format per
    model: a directory has one quantization_config."""
    qs = [(n[: -len(".weight")], t) for n, t in tensors.items() if isinstance(t, QTensor)]
    if not qs:
        return None
    first = qs[0][1]
    kinds = {(t.quant_type, t.double_quant, t.asymmetric, t.per_row) for _, t in qs}
    if len(kinds) > 1:
        raise ValueError("save_hf_weights: the model's layers are quantized in several formats "
                         f"({', '.join(sorted(k[0] + ('+dq' if k[1] else '') for k in kinds))}); "
                         "an HF directory has one quantization_config")
    linear = (nn.Dense, mint.nn.Linear, Linear8bit)
    skip = [p for p, c in model.cells_and_names()
            if isinstance(c, linear) and not (isinstance(c, QuantizedLinearBase) and getattr(c, "is_quantized", True))]
    if "lm_head.weight" not in tensors or not isinstance(tensors["lm_head.weight"], QTensor):
        # transformers keeps the output layer in float and lists it (so does `msbnb quantize`),
        # also when it is tied to the embedding
        skip = ["lm_head"] + [m for m in skip if m != "lm_head"]
    c_skip = (ctypes.c_char_p * max(len(skip), 1))(*[m.encode() for m in skip])
    out = P()
    _check(lib.msbnb_ms_quantization_config_json(first.handle, ctypes.cast(c_skip, P), len(skip), ctypes.byref(out)))
    try:
        return ctypes.string_at(out).decode()
    finally:
        lib.msbnb_ms_free(out)


def save_hf_weights(model, path, metadata=None, source=None):
    """Save the model as a Hugging Face directory `path` (msbnb, bitsandbytes + transformers load
    it): model.safetensors with quantized layers in the bitsandbytes / msbnb layouts and float
    Parameters as float32, and config.json carrying transformers' `quantization_config` for the
    layers' format (bitsandbytes 4-bit / 8-bit fields, as `msbnb quantize` writes them; the skip
    list is the linear layers left in float). config.json is the one the model was loaded from
    (`source`, default the model's `config.source_dir`) with quantization_config set, else the
    model's LlamaConfig; the other files of `source` (tokenizer, generation config) are copied.
    The directory is written beside the target and committed in one rename (replacing an
    earlier model directory whole; a non-empty directory without config.json is refused), as the
    CLI does, so it appears whole or not at all.
    A path ending in ".safetensors" writes that one file only (atomically too).
    LoRA Parameters are not included (save_peft_adapter). Returns path."""
    tensors = _hf_tensors(model)
    qjson = _quantization_config(model, tensors)
    meta = dict(metadata or {"format": "pt"})
    if qjson:
        meta.setdefault("quantization_config", qjson)
    if str(path).endswith(".safetensors"):
        save_quantized(path, tensors, meta)
        return path
    if source is None:
        source = getattr(getattr(model, "config", None), "source_dir", None)
    if os.path.isdir(path) and os.listdir(path) and not os.path.exists(os.path.join(path, "config.json")):
        # the directory is replaced whole: never one that is not a model directory (e.g. ".")
        raise FileExistsError(f"save_hf_weights: {path} exists and is not a model directory (no config.json); "
                              "it would be replaced whole")
    h = P()
    _check(lib.msbnb_ms_dir_begin(os.fsencode(path), ctypes.byref(h)))
    try:
        tmp = os.fsdecode(lib.msbnb_ms_dir_path(h))
        save_quantized(os.path.join(tmp, "model.safetensors"), tensors, meta)
        cfg_out = os.path.join(tmp, "config.json")
        src_cfg = os.path.join(source, "config.json") if source else None
        if not (src_cfg and os.path.isfile(src_cfg)):
            to_dict = getattr(getattr(model, "config", None), "to_dict", None)
            if to_dict is None:
                raise ValueError("save_hf_weights: no config.json to start from (pass source=, "
                                 "or give the model a config with to_dict())")
            with open(cfg_out, "w", encoding="utf-8") as f:
                json.dump(to_dict(), f, indent=2)
            src_cfg = cfg_out
        _check(lib.msbnb_ms_config_write_with_quantization(os.fsencode(src_cfg), os.fsencode(cfg_out),
                                                           qjson.encode() if qjson else None))
        if source and os.path.isdir(source):
            for name in sorted(os.listdir(source)):
                src = os.path.join(source, name)
                if (name.startswith(".") or name.endswith(".safetensors") or name in
                        ("config.json", "model.safetensors.index.json") or not os.path.isfile(src)):
                    continue
                shutil.copyfile(src, os.path.join(tmp, name))
        _check(lib.msbnb_ms_dir_commit(h))
    finally:
        lib.msbnb_ms_dir_free(h)  # removes the temporary directory unless committed
    return path


# ---------------------------------------------------------------------- PEFT adapters

def _lora_layers(model):
    return [(p, c) for p, c in model.cells_and_names() if isinstance(c, LoRAMixin)]


def save_peft_adapter(model, directory, adapter_name="default", base_model_name_or_path=None):
    """Write adapter `adapter_name` of every LoRA layer of the model as a PEFT adapter directory
    (msbnb_peft_save): adapter_config.json (r, lora_alpha, target_modules) and
    adapter_model.safetensors. Every layer's adapter must share r and lora_alpha."""
    layers = [(p, c) for p, c in _lora_layers(model) if adapter_name in c.lora_adapters]
    if not layers:
        raise ValueError(f"save_peft_adapter: no layer has an adapter '{adapter_name}'")
    ads = [c.lora_adapters[adapter_name] for _, c in layers]
    r, alpha = ads[0].r, ads[0].lora_alpha
    if any(a.r != r or a.lora_alpha != alpha for a in ads):
        raise ValueError("save_peft_adapter: the layers' adapters differ in r or lora_alpha (PEFT keeps one)")
    keep = [np.ascontiguousarray(a.lora_A.asnumpy(), np.float32) for a in ads] + \
           [np.ascontiguousarray(a.lora_B.asnumpy(), np.float32) for a in ads]
    n = len(layers)
    mods = [p.encode() for p, _ in layers]
    targets = sorted({p.rsplit(".", 1)[-1] for p, _ in layers})
    tb = [t.encode() for t in targets]
    c_mods = (ctypes.c_char_p * n)(*mods)
    c_tgts = (ctypes.c_char_p * len(tb))(*tb)
    c_in = (ctypes.c_int64 * n)(*[c.in_features for _, c in layers])
    c_out = (ctypes.c_int64 * n)(*[c.out_features for _, c in layers])
    c_a = (P * n)(*[k.ctypes.data for k in keep[:n]])
    c_b = (P * n)(*[k.ctypes.data for k in keep[n:]])
    _check(lib.msbnb_ms_peft_save(os.fsencode(directory), r, alpha, ads[0].lora_dropout,
                                  base_model_name_or_path.encode() if base_model_name_or_path else None,
                                  ctypes.cast(c_tgts, P), len(tb), ctypes.cast(c_mods, P), ctypes.cast(c_in, P),
                                  ctypes.cast(c_out, P), ctypes.cast(c_a, P), ctypes.cast(c_b, P), n))
    return directory


def load_peft_adapter(model, directory, adapter_name="default", activate=True):
    """Read a PEFT adapter directory (msbnb_peft_load: `msbnb finetune` or PEFT wrote it) and add it
    as adapter `adapter_name` to the model: linear layers named in it without LoRA become LoRA Cells
    first (apply_lora keeps quantized codes). Returns the module paths loaded."""
    from .converter import apply_lora
    h = P()
    _check(lib.msbnb_ms_peft_load(os.fsencode(directory), ctypes.byref(h)))
    try:
        r, alpha, dropout = ctypes.c_int(), ctypes.c_double(), ctypes.c_double()
        count = lib.msbnb_ms_peft_info(h, ctypes.byref(r), ctypes.byref(alpha), ctypes.byref(dropout))
        pairs = []
        for i in range(count):
            mod, rr, fi, fo, pa, pb = (ctypes.c_char_p(), ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64(), P(), P())
            _check(lib.msbnb_ms_peft_get(h, i, ctypes.byref(mod), ctypes.byref(rr), ctypes.byref(fi), ctypes.byref(fo),
                                         ctypes.byref(pa), ctypes.byref(pb)))
            a = np.ctypeslib.as_array(ctypes.cast(pa, ctypes.POINTER(ctypes.c_float)), (rr.value, fi.value)).copy()
            b = np.ctypeslib.as_array(ctypes.cast(pb, ctypes.POINTER(ctypes.c_float)), (fo.value, rr.value)).copy()
            pairs.append((mod.value.decode(), a, b))
    finally:
        lib.msbnb_ms_peft_free(h)
    cells = _module_map(model)
    missing = [m for m, _, _ in pairs if m not in cells]
    if missing:
        raise KeyError(f"{directory}: adapter modules not in the model: {', '.join(missing[:3])}")
    plain = [m for m, _, _ in pairs if not isinstance(cells[m], LoRAMixin)]
    if plain:
        apply_lora(model, r=r.value, lora_alpha=alpha.value, target_modules=None, adapter_name=adapter_name,
                   only=set(plain))
        cells = _module_map(model)
    for m, a, b in pairs:
        layer = cells[m]
        if adapter_name not in layer.lora_adapters:
            layer.add_adapter(adapter_name, r=r.value, lora_alpha=alpha.value, activate=activate)
        ad = layer.lora_adapters[adapter_name]
        if tuple(ad.lora_A.shape) != a.shape or tuple(ad.lora_B.shape) != b.shape:
            raise ValueError(f"{directory}: '{m}': adapter shapes {a.shape}/{b.shape} do not fit the layer")
        ad.lora_A.set_data(Tensor(a))
        ad.lora_B.set_data(Tensor(b))
        if activate:
            layer.set_adapter(adapter_name)
    return [m for m, _, _ in pairs]


# ---------------------------------------------------------------------- tokenizer

class Tokenizer:
    """The llama2.c tokenizer (e.g. tok512.bin) of msbnb's C model code."""

    def __init__(self, path, vocab_size):
        self._h = P()
        _check(lib.msbnb_ms_tokenizer_load(os.fsencode(path), int(vocab_size), ctypes.byref(self._h)))

    def __del__(self):
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.msbnb_ms_tokenizer_free(h)

    def encode(self, text, bos=True, eos=False):
        data = text.encode("utf-8")
        cap = len(data) + 3
        ids = np.empty(cap, np.int32)
        n = ctypes.c_int()
        _check(lib.msbnb_ms_tokenizer_encode(self._h, data, len(data), int(bos), int(eos), ids.ctypes.data, cap,
                                             ctypes.byref(n)))
        return ids[: n.value].tolist()

    def decode(self, ids, prev=1):
        """Text of ids following token `prev` (BOS by default: a leading space is dropped)."""
        a = np.ascontiguousarray(ids, np.int32)
        need = ctypes.c_size_t()
        buf = ctypes.create_string_buffer(16 * len(a) + 16)
        _check(lib.msbnb_ms_tokenizer_decode(self._h, prev, a.ctypes.data, len(a), buf, len(buf), ctypes.byref(need)))
        if need.value > len(buf):
            buf = ctypes.create_string_buffer(need.value)
            _check(lib.msbnb_ms_tokenizer_decode(self._h, prev, a.ctypes.data, len(a), buf, len(buf),
                                                 ctypes.byref(need)))
        return buf.raw[: need.value].decode("utf-8", "replace")

