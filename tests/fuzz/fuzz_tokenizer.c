/* fuzz_tokenizer.c — libFuzzer target: a llama2.c tokenizer file loaded by msbnb_tokenizer_load, then encode
 * and decode of a few strings. */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_one_tokenizer(data, size);
    return 0;
}
