/* fuzz_chat_template.c — libFuzzer target: a chat template compiled and rendered (see
 * fuzz_targets_chat.h). */
#include "fuzz_targets_chat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_one_chat_template(data, size);
    return 0;
}
