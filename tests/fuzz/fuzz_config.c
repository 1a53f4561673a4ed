/* fuzz_config.c — libFuzzer target: config.json and adapter_config.json parsing. */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_one_config(data, size);
    return 0;
}
