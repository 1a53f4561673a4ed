/* fuzz_safetensors.c — libFuzzer target: the safetensors reader (header JSON, offsets, data). */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_one_safetensors(data, size);
    return 0;
}
