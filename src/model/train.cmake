# LLaMA backward, LoRA training loop (plain C; the heavy products go through OpenBLAS sgemm).
list(APPEND MSBNB_SRC
  src/model/backward_ops.c
)
