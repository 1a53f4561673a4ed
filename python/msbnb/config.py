"""Quantization configurations with the design's defaults. Bad values raise ValueError.

    QuantConfig(bits=8, symmetric=True, per_channel=True)     generic INT8 / INT4
    Int8Config(symmetric=True, threshold=6.0, has_fp16_weights=False)   LLM.int8()-style INT8
    Int4Config(group_size=128, compress_statistics=False, quant_type='int4')   INT4 / NF4 / FP4

Each has ``quantize_kwargs()``: the arguments of msbnb's quantizer it stands for.
"""

import math
from dataclasses import dataclass

__all__ = ["QuantConfig", "Int8Config", "Int4Config"]


def _bool(name, v):
    if not isinstance(v, (bool, int)) or isinstance(v, int) and v not in (0, 1):
        raise ValueError(f"{name} must be a bool, got {v!r}")
    return bool(v)


def _is_pow2(v):
    return v > 0 and v & (v - 1) == 0


@dataclass(frozen=True)
class QuantConfig:
    """bits 8: INT8 absmax (symmetric) or min/max with a zero point (asymmetric), one scale per
    output channel (row) or per tensor. bits 4: INT4 per group of 128 (symmetric only)."""

    bits: int = 8
    symmetric: bool = True
    per_channel: bool = True

    def __post_init__(self):
        if self.bits not in (4, 8) or isinstance(self.bits, bool):
            raise ValueError(f"QuantConfig: bits must be 4 or 8, got {self.bits!r}")
        object.__setattr__(self, "symmetric", _bool("QuantConfig: symmetric", self.symmetric))
        object.__setattr__(self, "per_channel", _bool("QuantConfig: per_channel", self.per_channel))
        if self.bits == 4 and not self.symmetric:
            raise ValueError("QuantConfig: 4-bit quantization is symmetric only (INT4 absmax per group)")
        if self.bits == 4 and not self.per_channel:
            raise ValueError("QuantConfig: 4-bit quantization has per-group scales; per_channel must be True")

    def quantize_kwargs(self):
        if self.bits == 8:
            return {"quant_type": "int8", "asymmetric": not self.symmetric, "per_row": self.per_channel,
                    "threshold": 0.0}
        return {"quant_type": "int4", "group_size": 128}


@dataclass(frozen=True)
class Int8Config:
    """INT8 weights, bitsandbytes Linear8bitLt style: per-row absmax (symmetric) and the LLM.int8()
    outlier threshold (0 = off). has_fp16_weights=False: the weights are kept quantized."""

    symmetric: bool = True
    threshold: float = 6.0
    has_fp16_weights: bool = False

    def __post_init__(self):
        object.__setattr__(self, "symmetric", _bool("Int8Config: symmetric", self.symmetric))
        object.__setattr__(self, "has_fp16_weights", _bool("Int8Config: has_fp16_weights", self.has_fp16_weights))
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise ValueError(f"Int8Config: threshold must be a finite number >= 0, got {t!r}")
        object.__setattr__(self, "threshold", float(t))

    def quantize_kwargs(self):
        return {"quant_type": "int8", "asymmetric": not self.symmetric, "per_row": True,
                "threshold": self.threshold}


@dataclass(frozen=True)
class Int4Config:
    """4-bit weights. quant_type 'int4': symmetric absmax per group of group_size along the input
    dimension (even, must divide it); 'nf4' / 'fp4': bitsandbytes' blockwise formats, group_size
    being the block size (a power of two in 32..4096; bitsandbytes uses 64).
    compress_statistics: double quantization of the scales (bitsandbytes' name)."""

    group_size: int = 128
    compress_statistics: bool = False
    quant_type: str = "int4"

    def __post_init__(self):
        g = self.group_size
        if isinstance(g, bool) or not isinstance(g, int):
            raise ValueError(f"Int4Config: group_size must be an int, got {g!r}")
        if self.quant_type not in ("int4", "nf4", "fp4"):
            raise ValueError(f"Int4Config: quant_type must be 'int4', 'nf4' or 'fp4', got {self.quant_type!r}")
        if self.quant_type == "int4" and (g < 2 or g % 2):
            raise ValueError(f"Int4Config: group_size must be even and >= 2 for int4, got {g}")
        if self.quant_type != "int4" and not (_is_pow2(g) and 32 <= g <= 4096):
            raise ValueError(f"Int4Config: group_size (block size) must be a power of two in 32..4096 "
                             f"for {self.quant_type}, got {g}")
        object.__setattr__(self, "compress_statistics",
                           _bool("Int4Config: compress_statistics", self.compress_statistics))

    def quantize_kwargs(self):
        kw = {"quant_type": self.quant_type, "double_quant": self.compress_statistics}
        if self.quant_type == "int4":
            kw["group_size"] = self.group_size
        else:
            kw["blocksize"] = self.group_size
        return kw
