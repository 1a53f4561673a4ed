/* fuzz_train_state.c — libFuzzer target: finetune's checkpoint/state.json. */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_one_train_state(data, size, NULL, 0);
    return 0;
}
