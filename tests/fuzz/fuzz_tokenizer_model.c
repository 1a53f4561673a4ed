/* fuzz_tokenizer_model.c — libFuzzer target: a tokenizer.model loaded by msbnb_tokenizer_load, then every
 * encode / decode path on a few strings (fuzz_targets_tok.c). */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_one_tokenizer_model(data, size);
    return 0;
}
