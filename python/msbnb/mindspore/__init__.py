"""msbnb for MindSpore: quantized linear Cells, LoRA/QLoRA, the converter, file IO and a small LLaMA.

Requires MindSpore (>= 2.10, < 2.11; numpy < 2). Everything numeric runs in msbnb's C library:
the Cells' forward and backward are MindSpore custom operators (func_type="aot") over
msbnb_matmul_ex / msbnb_matmul_t. See docs/mindspore.md.
"""

from .layers import Linear4bit, Linear8bit, QuantizedLinearBase
from .lora import Linear4bitWithLoRA, Linear8bitWithLoRA, LoRAAdapter, LoRALinear

__all__ = ["Linear4bit", "Linear8bit", "QuantizedLinearBase", "LoRALinear", "LoRAAdapter", "Linear4bitWithLoRA",
           "Linear8bitWithLoRA"]
