/* fuzz_bnb.c — libFuzzer target: reading quantized weights (bitsandbytes NF4/FP4 with quant-state
 * JSON, Linear8bitLt, msbnb INT4/INT8) from an untrusted safetensors file. */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_one_bnb(data, size);
    return 0;
}
