# tokenizer: one engine for tokenizer.json, SentencePiece tokenizer.model and llama2.c tokenizer.bin
# (PCRE2 for the pre-tokenizer regexes, utf8proc for Unicode normalization).
list(APPEND MSBNB_SRC
  src/tokenizer/tokenizer.c
  src/tokenizer/tok_util.c
  src/tokenizer/tok_vocab.c
  src/tokenizer/tok_added.c
  src/tokenizer/tok_normalize.c
  src/tokenizer/tok_pretokenize.c
  src/tokenizer/tok_bpe.c
  src/tokenizer/tok_decode.c
  src/tokenizer/tok_special.c
  src/tokenizer/tok_json.c
  src/tokenizer/tok_spm.c
  src/tokenizer/tok_llama2c.c
)
