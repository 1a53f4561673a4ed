# nn: layers (fp32 / INT8 / 4-bit), LoRA adapters, AdamW and 8-bit AdamW.
list(APPEND MSBNB_SRC
  src/nn/linear.c
  src/nn/linear_quant.c
  src/nn/lora.c
  src/nn/lora_model.c
  src/nn/nn_gemm.c
  src/nn/optim.c
  src/nn/optim_io.c
  src/nn/adamw.c
  src/nn/adamw8bit.c)
