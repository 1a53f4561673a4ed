/* fuzz_targets.h — the bodies of the libFuzzer targets, shared with the corpus replay test
 * (tests/fuzz/replay.c), which runs them without libFuzzer. Each exercises every read path of
 * one parser on `data` and returns the status of opening/parsing it. */
#ifndef MSBNB_FUZZ_TARGETS_H
#define MSBNB_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

#include <msbnb/io.h>

/* safetensors header + data: open, walk every tensor and metadata entry, convert small tensors
 * to float32, look each name up again. */
msbnb_status fuzz_one_safetensors(const uint8_t *data, size_t size);
/* A quantized checkpoint in memory: every weight that looks quantized goes through
 * msbnb_bnb_read (parts cross-checked against the quant-state JSON) and, when small, through
 * dequantization. Returns the status of opening the file, else of the first weight that failed
 * to read. */
msbnb_status fuzz_one_bnb(const uint8_t *data, size_t size);
/* config.json / adapter_config.json: parse as a config (every getter on a set of keys) and as a
 * PEFT adapter config. Returns the config parse status. */
msbnb_status fuzz_one_config(const uint8_t *data, size_t size);
/* Status of msbnb_peft_config_parse alone on the same bytes. */
msbnb_status fuzz_one_adapter_config(const uint8_t *data, size_t size);

#endif
