"""Model conversion: replace a MindSpore model's linear layers by msbnb's Cells, size reports,
LoRA helpers.

    convert_to_quantized_model(model, Int4Config(quant_type="nf4", group_size=64,
                               compress_statistics=True), modules_to_not_convert=["lm_head"])
    print_quantization_summary(model); compare_model_sizes(original_bytes, model)

Configs are msbnb's (msbnb.config): Int8Config -> Linear8bit, Int4Config -> Linear4bit,
QuantConfig(bits=8 | 4) -> INT8 / INT4; a string 'int8' | 'int4' | 'nf4' | 'fp4' is a shorthand.
A layer is skipped when an entry of modules_to_not_convert equals its path, its last component
or a leading part of it ('lm_head', 'model.layers.0', 'layers.0.mlp.down_proj').
Deferred quantization (train in full precision, quantize after): Int8Config(has_fp16_weights=True)
keeps trainable float weights in each Linear8bit until quantize_model_weights(model).
"""

import numpy as np

from mindspore import mint, nn

from ..config import Int4Config, Int8Config, QuantConfig
from .layers import Linear4bit, Linear8bit, QuantizedLinearBase
from .lora import Linear4bitWithLoRA, Linear8bitWithLoRA, LoRALinear, LoRAMixin

__all__ = ["convert_to_quantized_model", "replace_linear_layers", "quantize_model_weights", "get_model_size",
           "compare_model_sizes", "print_quantization_summary", "freeze_model_except_lora", "print_lora_info",
           "apply_lora", "linear_layers"]

_LINEAR_TYPES = (nn.Dense, mint.nn.Linear)


def _layer_kwargs(config):
    """(Cell class, constructor kwargs) for a config."""
    if isinstance(config, str):
        config = Int8Config() if config == "int8" else Int4Config(
            quant_type=config, group_size=128 if config == "int4" else 64,
            compress_statistics=config != "int4") if config in ("int4", "nf4", "fp4") else config
    if isinstance(config, QuantConfig):
        if config.bits == 8:
            if not config.symmetric or not config.per_channel:
                raise ValueError("msbnb.mindspore: the 8-bit Cells hold symmetric per-row INT8 "
                                 "(bitsandbytes' layout); asymmetric / per-tensor INT8 has no Cell")
            config = Int8Config(threshold=0.0)
        else:
            config = Int4Config()
    if isinstance(config, Int8Config):
        if not config.symmetric:
            raise ValueError("msbnb.mindspore: Linear8bit holds symmetric INT8 (bitsandbytes' layout)")
        return Linear8bit, {"threshold": config.threshold, "has_fp16_weights": config.has_fp16_weights}
    if isinstance(config, Int4Config):
        kw = {"quant_type": config.quant_type, "compress_statistics": config.compress_statistics}
        kw["group_size" if config.quant_type == "int4" else "blocksize"] = config.group_size
        return Linear4bit, kw
    raise ValueError(f"msbnb.mindspore: unsupported quantization config {config!r}")


def _skipped(name, skip):
    return any(name == s or name.endswith("." + s) or name.startswith(s + ".") or ("." + s + ".") in name
               for s in skip)


def linear_layers(model, types=_LINEAR_TYPES):
    """[(path, parent, attribute, layer)] of every layer of `types` in the model."""
    out = []
    for path, cell in model.cells_and_names():
        for attr, child in cell.name_cells().items():
            if isinstance(child, types):
                out.append((f"{path}.{attr}" if path else attr, cell, attr, child))
    return out


def replace_linear_layers(model, config, modules_to_not_convert=None):
    """Replace every nn.Dense / mint.nn.Linear not skipped by the quantized Cell of `config`,
    in place. Returns {"converted": [paths], "skipped": [paths], "failed": {path: msbnb's message}}
    (a layer the format cannot hold, e.g. an INT4 group size not dividing its width, stays float)."""
    cls, kw = _layer_kwargs(config)
    skip = list(modules_to_not_convert or [])
    report = {"converted": [], "skipped": [], "failed": {}}
    for path, parent, attr, layer in linear_layers(model):
        if _skipped(path, skip):
            report["skipped"].append(path)
            continue
        try:
            new = cls.from_linear(layer, **kw)
        except ValueError as e:
            report["failed"][path] = str(e)
            continue
        setattr(parent, attr, new)
        report["converted"].append(path)
    model.update_parameters_name()  # names of the new Cells' Parameters: their full paths
    return report


def convert_to_quantized_model(model, config="nf4", modules_to_not_convert=None, verbose=False):
    """replace_linear_layers, then (verbose) the summary. Returns the model (changed in place)."""
    report = replace_linear_layers(model, config, modules_to_not_convert)
    model.msbnb_conversion_report = report
    if verbose:
        print_quantization_summary(model)
    return model


def quantize_model_weights(model):
    """Deferred quantization: switch every Linear8bit still holding float weights to INT8.
    Returns the paths quantized. In GRAPH_MODE, compile the network again afterwards."""
    done = []
    for path, cell in model.cells_and_names():
        if isinstance(cell, Linear8bit) and not cell.is_quantized:
            cell.quantize_weights()
            done.append(path)
    return done


# ---------------------------------------------------------------------- sizes

_BOOKKEEPING = ("quant_meta", "quant_fmeta", "lora_gate")


def get_model_size(model):
    """Bytes the model's Parameters occupy, as a checkpoint stores them: {'total_bytes',
    'quantized_bytes' (codes + statistics of quantized layers), 'float_bytes' (everything else),
    'n_weights' (logical weight count: a quantized [out, in] weight counts out·in)}.
    Placeholders and the 9 + 2 format numbers of each quantized layer are left out."""
    q_bytes = f_bytes = n = 0
    for _, cell in model.cells_and_names():
        quant = isinstance(cell, QuantizedLinearBase) and getattr(cell, "is_quantized", True)
        for key, p in cell.parameters_and_names(expand=False):
            if key in _BOOKKEEPING:
                continue
            if quant and key.startswith("weight"):
                if key == "weight":
                    n += cell.in_features * cell.out_features
                    q_bytes += int(cell.parts().info()["total_bytes"])
                continue
            f_bytes += int(p.nbytes)
            n += int(p.size)
    return {"total_bytes": q_bytes + f_bytes, "quantized_bytes": q_bytes, "float_bytes": f_bytes, "n_weights": n}


def compare_model_sizes(original, quantized, verbose=True):
    """Sizes of two models (or a byte count for the first, e.g. measured before converting in
    place): {'original_bytes', 'quantized_bytes', 'ratio', 'saved_pct'}."""
    ob = original if isinstance(original, (int, np.integer)) else get_model_size(original)["total_bytes"]
    qb = get_model_size(quantized)["total_bytes"]
    out = {"original_bytes": int(ob), "quantized_bytes": int(qb), "ratio": ob / qb if qb else float("inf"),
           "saved_pct": 100.0 * (1 - qb / ob) if ob else 0.0}
    if verbose:
        print(f"original {ob / 2**20:.3f} MiB -> quantized {qb / 2**20:.3f} MiB: "
              f"{out['ratio']:.2f}x smaller ({out['saved_pct']:.1f} % saved)")
    return out


def print_quantization_summary(model):
    """One line per linear layer: path, kind, shape, stored bytes and bits per weight; then totals.
    Returns the rows as dicts."""
    rows = []
    for path, cell in model.cells_and_names():
        if isinstance(cell, QuantizedLinearBase):
            if getattr(cell, "is_quantized", True):
                info = cell.parts().info()
                rows.append({"name": path, "kind": f"{type(cell).__name__}[{cell.quant_type}]",
                             "shape": (cell.out_features, cell.in_features), "bytes": int(info["total_bytes"]),
                             "bits_per_weight": float(info["bits_per_weight"])})
            else:
                rows.append({"name": path, "kind": f"{type(cell).__name__}[float]",
                             "shape": (cell.out_features, cell.in_features), "bytes": int(cell.weight.nbytes),
                             "bits_per_weight": 8.0 * cell.weight.itemsize})
        elif isinstance(cell, _LINEAR_TYPES + (LoRALinear,)):
            w = cell.weight
            rows.append({"name": path, "kind": type(cell).__name__, "shape": tuple(w.shape),
                         "bytes": int(w.nbytes), "bits_per_weight": 8.0 * w.itemsize})
    width = max([len(r["name"]) for r in rows] + [5])
    print(f"{'layer':<{width}}  {'kind':<26} {'shape':>14} {'bytes':>12} {'bits/w':>7}")
    for r in rows:
        shape = "x".join(str(s) for s in r["shape"])
        print(f"{r['name']:<{width}}  {r['kind']:<26} {shape:>14} {r['bytes']:>12,} {r['bits_per_weight']:>7.3f}")
    size = get_model_size(model)
    print(f"total {size['total_bytes']:,} bytes ({size['quantized_bytes']:,} quantized, "
          f"{size['float_bytes']:,} float) for {size['n_weights']:,} weights")
    return rows


# ---------------------------------------------------------------------- LoRA

def apply_lora(model, r=8, lora_alpha=16, lora_dropout=0.0, target_modules=None, adapter_name="default", only=None):
    """Give LoRA adapters to the linear layers named by target_modules (last path components,
    e.g. ['q_proj', 'v_proj']; None = every linear layer): Linear4bit -> Linear4bitWithLoRA and
    Linear8bit -> Linear8bitWithLoRA keeping their codes byte for byte, nn.Dense / mint.nn.Linear
    -> LoRALinear. `only`: a set of full module paths to restrict to. Returns the paths changed."""
    types = _LINEAR_TYPES + (Linear4bit, Linear8bit)
    done = []
    for path, parent, attr, layer in linear_layers(model, types):
        if isinstance(layer, LoRAMixin):
            continue
        if target_modules is not None and path.split(".")[-1] not in target_modules:
            continue
        if only is not None and path not in only:
            continue
        kw = {"r": r, "lora_alpha": lora_alpha, "lora_dropout": lora_dropout, "adapter_name": adapter_name}
        if isinstance(layer, Linear4bit):
            new = Linear4bitWithLoRA.from_quantized(layer, **kw)
        elif isinstance(layer, Linear8bit):
            new = Linear8bitWithLoRA.from_quantized(layer.quantize_weights(), **kw)
        else:
            new = LoRALinear.from_linear(layer, **kw)
        setattr(parent, attr, new)
        done.append(path)
    model.update_parameters_name()
    return done


def freeze_model_except_lora(model):
    """requires_grad = False on every Parameter but the active adapters' lora_A / lora_B.
    Returns (trainable, frozen) Parameter counts."""
    trainable = frozen = 0
    for _, cell in model.cells_and_names():
        for key, p in cell.parameters_and_names(expand=False):
            keep = key in ("lora_A", "lora_B") and p.requires_grad
            if not keep:
                p.requires_grad = False
                frozen += 1
            else:
                trainable += 1
    return trainable, frozen


def print_lora_info(model):
    """One line per LoRA layer (adapters with r, alpha, active / merged state), then the
    trainable share. Returns the trainable and total counts."""
    for path, cell in model.cells_and_names():
        if isinstance(cell, LoRAMixin):
            parts = []
            for n in cell.lora_adapters.keys():
                a = cell.lora_adapters[n]
                state = "merged" if n in cell.merged_adapters else (
                    "active" if n in cell.active_adapters and not cell.adapters_disabled else "inactive")
                parts.append(f"{n}(r={a.r}, alpha={a.lora_alpha:g}, {state})")
            print(f"{path}: {type(cell).__name__} [{cell.out_features}x{cell.in_features}] " + ", ".join(parts))
    trainable = sum(int(p.size) for p in model.trainable_params())
    total = get_model_size(model)["n_weights"]
    print(f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {100.0 * trainable / max(total, 1):.4f}")
    return trainable, total
