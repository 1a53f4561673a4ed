/* fuzz_adapter_dir.c — libFuzzer target: whole PEFT adapter directories (config + weights). */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_one_adapter_dir(data, size);
    return 0;
}
