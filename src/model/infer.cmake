# LLaMA loading, tokenizer, forward, generation, perplexity (plain C; products go through nn.h layers
# and OpenBLAS).
list(APPEND MSBNB_SRC
  src/model/config.c
  src/model/load_llama2c.c
  src/model/load_hf.c
  src/model/forward.c
  src/model/rope.c
  src/model/embed.c
  src/model/sampler.c
  src/model/perplexity.c
)
