"""msbnb — k-bit quantization (bitsandbytes INT8 / INT4 / NF4 / FP4, double quantization) and
fused quantized products on CPUs, over the msbnb C library.

    import numpy as np, msbnb
    from msbnb import functional as F

    w = np.random.default_rng(0).standard_normal((256, 512)).astype(np.float32)
    q = F.quantize_4bit(w, group_size=64, quant_type="nf4", compress_statistics=True)
    y = q.matmul(x)                      # x [n, 512] -> y [n, 256], fused, no dequantized copy
    F.estimate_quantization_error(w, q)  # relative_error_pct, snr_db, mse, max_abs_error
    msbnb.save_quantized("w.safetensors", {"layer.weight": q})
    msbnb.quantize_checkpoint("model_dir", "model_nf4", "nf4", method="gptq", calibrate="text.txt")

Errors from the library raise msbnb.MsbnbError subclasses (also ValueError / OSError / ...)
carrying msbnb's message. Details: docs/python.md.
"""

from . import _native
from .config import Int4Config, Int8Config, QuantConfig
from .errors import (FormatError, InternalError, InvalidArgumentError, MsbnbError, MsbnbIOError,
                     NotFoundError, NumericError, OutOfMemoryError, ShapeError, UnsupportedError)
from .io import load_quantized, save_quantized
from .checkpoint import quantize_checkpoint
from .qtensor import QTensor
from . import functional

__version__ = _native.lib.msbnb_py_version().decode()

__all__ = [
    "QTensor", "QuantConfig", "Int8Config", "Int4Config", "functional", "load_quantized",
    "save_quantized", "quantize_checkpoint", "set_num_threads", "get_num_threads", "isa", "MsbnbError",
    "InvalidArgumentError", "OutOfMemoryError", "MsbnbIOError", "FormatError", "ShapeError",
    "UnsupportedError", "NumericError", "NotFoundError", "InternalError",
]


def set_num_threads(n=None):
    """Threads msbnb's kernels use (process-wide). Default, and after set_num_threads(None):
    the environment variable MSBNB_THREADS if set, else OpenMP's default (OMP_NUM_THREADS or every
    core). Results never depend on the number of threads."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"set_num_threads: n must be an int >= 1 (or None for the default), got {n!r}")
    _native.lib.msbnb_py_set_num_threads(0 if n is None else n)  # < 1: back to the default


def get_num_threads():
    """Threads msbnb's kernels use now."""
    return _native.lib.msbnb_py_get_num_threads()


def isa():
    """The SIMD level the kernels use ('scalar', 'avx2', 'avx512', ...; MSBNB_ISA lowers it)."""
    return _native.lib.msbnb_py_isa().decode()


# The MindSpore Cells (msbnb.mindspore) as `from msbnb import Linear4bit, ...` when MindSpore is
# installed; imported on first use only, so `import msbnb` never loads MindSpore.
_MINDSPORE_NAMES = frozenset({
    "Linear8bit", "Linear4bit", "LoRALinear", "Linear4bitWithLoRA", "Linear8bitWithLoRA",
    "convert_to_quantized_model", "replace_linear_layers", "quantize_model_weights", "get_model_size",
    "compare_model_sizes", "print_quantization_summary", "freeze_model_except_lora", "print_lora_info",
})


def __getattr__(name):
    if name in _MINDSPORE_NAMES:
        try:
            from . import mindspore as _ms
        except ImportError as e:
            raise AttributeError(f"msbnb.{name} needs MindSpore (pip install .[mindspore]): {e}") from e
        return getattr(_ms, name)
    raise AttributeError(f"module 'msbnb' has no attribute {name!r}")
