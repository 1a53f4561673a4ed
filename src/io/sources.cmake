# io: safetensors (read/write), model directories, config.json, bitsandbytes layouts, PEFT adapters.
list(APPEND MSBNB_SRC
  src/io/io_util.c
  src/io/safetensors_read.c
  src/io/safetensors_write.c
  src/io/config.c
  src/io/checkpoint.c
  src/io/bnb.c
  src/io/bnb_read.c
  src/io/peft.c
  src/io/outdir.c
  src/io/convert.c
  src/io/quantize_model.c
)
