# LLaMA backward, LoRA training loop (plain C; the heavy products go through OpenBLAS sgemm).
list(APPEND MSBNB_SRC
  src/model/backward_ops.c
  src/model/train_forward.c
  src/model/train_backward.c
  src/model/train_compute.c
  src/model/lora_model.c
)
