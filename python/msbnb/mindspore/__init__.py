"""msbnb for MindSpore: quantized linear Cells, LoRA/QLoRA, the converter, file IO and a small LLaMA.

Requires MindSpore (>= 2.10, < 2.11; numpy < 2). Everything numeric runs in msbnb's C library:
the Cells' forward and backward are MindSpore custom operators (func_type="aot") over
msbnb_matmul_ex / msbnb_matmul_t. See docs/mindspore.md.
"""

from ._ops import op_errors
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
           "Linear8bitWithLoRA", "op_errors"]


def configure_threads(n):
    """One setting for both thread pools so they do not oversubscribe the cores: msbnb's OpenMP
    team (the custom operators' kernels, msbnb.set_num_threads) and MindSpore's CPU operator pool
    (mindspore.device_context.cpu.op_tuning.threads_num, settable once, before the first
    operator runs). Within a graph the two never run at once (an operator runs after the previous
    one), so both get n = the physical cores to use. Also export OMP_WAIT_POLICY=passive before
    the process starts: idle OpenMP threads then sleep instead of spinning against MindSpore's.
    Results never depend on n (msbnb's kernels are thread-count invariant)."""
    import msbnb
    from mindspore.device_context.cpu import op_tuning
    msbnb.set_num_threads(n)
    op_tuning.threads_num(n)


__all__.append("configure_threads")
