/* fuzz_optim_state.c — libFuzzer target: an optimizer state file (msbnb_optim_save format) loaded by
 * msbnb_optim_load into fp32 or 8-bit AdamW, then one step. */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_one_optim_state(data, size);
    return 0;
}
