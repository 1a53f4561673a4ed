"""msbnb for MindSpore: quantized linear Cells, LoRA/QLoRA, the converter, file IO and a small LLaMA.

Requires MindSpore (>= 2.10, < 2.11; numpy < 2). Everything numeric runs in msbnb's C library:
the Cells' forward and backward are MindSpore custom operators (func_type="aot") over
msbnb_matmul_ex / msbnb_matmul_t. See docs/mindspore.md.
"""

from .layers import Linear4bit, Linear8bit, QuantizedLinearBase
from .lora import Linear4bitWithLoRA, Linear8bitWithLoRA, LoRAAdapter, LoRALinear

from .io import Tokenizer, load_hf_weights, load_peft_adapter, save_hf_weights, save_peft_adapter
from .llama import CausalLMLoss, LlamaConfig, LlamaForCausalLM
from .converter import (apply_lora, compare_model_sizes, convert_to_quantized_model, freeze_model_except_lora,
                        get_model_size, print_lora_info, print_quantization_summary, quantize_model_weights,
                        replace_linear_layers)

__all__ = ["convert_to_quantized_model", "replace_linear_layers", "quantize_model_weights", "get_model_size",
           "compare_model_sizes", "print_quantization_summary", "freeze_model_except_lora", "print_lora_info",
           "apply_lora", "Tokenizer", "load_hf_weights", "save_hf_weights", "load_peft_adapter",
           "save_peft_adapter", "LlamaConfig", "LlamaForCausalLM", "CausalLMLoss",
           "Linear4bit", "Linear8bit", "QuantizedLinearBase", "LoRALinear", "LoRAAdapter", "Linear4bitWithLoRA",
           "Linear8bitWithLoRA"]
