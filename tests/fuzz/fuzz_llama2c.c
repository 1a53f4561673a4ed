/* fuzz_llama2c.c — libFuzzer target: a llama2.c "v0" .bin checkpoint (7 int32 header, fp32 weights) loaded
 * by msbnb_model_load, then a short forward pass. */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_one_llama2c(data, size);
    return 0;
}
