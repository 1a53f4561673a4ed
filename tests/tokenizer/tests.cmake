# tokenizer tests: the six real tokenizers of ../shared/tokenizers against the HF tokenizers
# library's vectors (no Python at test time), and the engine's own properties.
msbnb_add_test(test_hf_tokenizers tests/tokenizer/test_hf_tokenizers.c)
msbnb_add_test(test_tokenizer_api tests/tokenizer/test_tokenizer_api.c)

# msbnb tokenize on the real tokenizers: ids (with --special: BOS), --json, --decode, the llama2.c
# file beside a model, and the exit codes of bad input (1) and bad usage (2).
set(_t ${MSBNB_SHARED_DIR}/tokenizers)
add_test(NAME cli_tokenize
  COMMAND sh -c "set -e
    $<TARGET_FILE:msbnb_cli> tokenize ${_t}/llama-bpe --text 'Hello world' --special --json | grep -q '\"ids\": \\[128000, 9906, 1917\\]'
    $<TARGET_FILE:msbnb_cli> tokenize ${_t}/phi-3 --text '<|user|>\nHi<|end|>' --json | grep -q '\"ids\": \\[32010, 6324, 32007\\]'
    $<TARGET_FILE:msbnb_cli> tokenize ${_t}/mistral-v1/tokenizer.model --text ' Hello' | grep -q '22557'
    echo '1, 15043, 3186' | $<TARGET_FILE:msbnb_cli> tokenize ${_t}/llama-spm --decode | grep -qx '<s> Hello world'
    $<TARGET_FILE:msbnb_cli> tokenize ${MSBNB_SHARED_DIR}/models/stories260K/stories260K.bin --text 'Once upon' --special --json | grep -q '\"ids\": \\[1, 403, 407\\]'
    rc=0; $<TARGET_FILE:msbnb_cli> tokenize /nonexistent --text x 2>/dev/null || rc=$?; test $rc = 1
    rc=0; echo 99999999 | $<TARGET_FILE:msbnb_cli> tokenize ${_t}/gpt-2 --decode 2>/dev/null || rc=$?; test $rc = 1
    rc=0; $<TARGET_FILE:msbnb_cli> tokenize ${_t}/gpt-2 --text x --bogus 2>/dev/null || rc=$?; test $rc = 2")
