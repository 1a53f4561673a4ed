# tokenizer tests: the six real tokenizers of ../shared/tokenizers against the HF tokenizers
# library's vectors (no Python at test time), and the engine's own properties.
msbnb_add_test(test_hf_tokenizers tests/tokenizer/test_hf_tokenizers.c)
