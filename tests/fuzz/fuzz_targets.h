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

/* Directory for the harnesses' temporary files: $MSBNB_FUZZ_TMPDIR when set, else /dev/shm when
 * it is a writable directory (tmpfs: creating and removing a file per input costs no disk I/O,
 * which on ext4 was a third of a tokenizer harness's time), else /tmp. Never NULL. */
const char *fuzz_scratch_dir(void);
/* Longest path a harness builds: scratch dir + a mkstemp/mkdtemp name + a file name. */
#define FUZZ_PATH_MAX 512

/* The parsers outside src/io, which take a path: the input goes through a temporary file.
 * llama2.c .bin checkpoint: msbnb_model_load (KV cache capped at 16 positions); on success the
 * config must equal the header and a two-token forward pass must run. The same bytes cut or
 * zero-padded to the length the header implies (when <= 1 MiB) are loaded first, so mutated
 * headers reach the weights; the status is that of the bytes as given. */
msbnb_status fuzz_one_llama2c(const uint8_t *data, size_t size);
/* llama2.c tokenizer file with FUZZ_TOKENIZER_VOCAB entries: msbnb_tokenizer_load; on success a
 * few strings (multi-byte and invalid UTF-8 among them) are encoded and every id decoded. */
#define FUZZ_TOKENIZER_VOCAB 32
msbnb_status fuzz_one_tokenizer(const uint8_t *data, size_t size);
/* Hugging Face tokenizer.json / SentencePiece tokenizer.model (written under those names into a
 * fresh temporary directory): msbnb_tokenizer_load; on success every encode / decode path runs on a
 * set of strings, ids are checked in range and the streaming detokenizer's pieces must add up to
 * the whole decode. */
msbnb_status fuzz_one_tokenizer_json(const uint8_t *data, size_t size);
msbnb_status fuzz_one_tokenizer_model(const uint8_t *data, size_t size);
/* Optimizer state file (msbnb_optim_save format): msbnb_optim_load into an optimizer holding
 * "a" [FUZZ_OPTIM_N_A] and "b" [FUZZ_OPTIM_N_B] with blocksize FUZZ_OPTIM_BLOCKSIZE — fp32 AdamW,
 * or 8-bit AdamW ("b" 8-bit) when the file's type field is 1 — then one step on success. The
 * same bytes with the CRC fixed up are loaded too (fuzzing past the checksum); the status is
 * that of the bytes as given. */
#define FUZZ_OPTIM_N_A 5
#define FUZZ_OPTIM_N_B 130
#define FUZZ_OPTIM_BLOCKSIZE 64
msbnb_status fuzz_one_optim_state(const uint8_t *data, size_t size);

/* checkpoint/state.json of `msbnb finetune` (tools/msbnb/cli_train_state.h): parsed alone and
 * against a run's options; accepted states satisfy the resume loop's invariants and survive a
 * write/read round trip. FORMAT with the one-line reason in err[cap] (may be NULL) on rejection. */
msbnb_status fuzz_one_train_state(const uint8_t *data, size_t size, char *err, size_t cap);
/* A whole PEFT adapter directory: u32 little-endian L, L bytes of adapter_config.json, then
 * adapter_model.safetensors; written to a temporary directory and read with msbnb_peft_load,
 * then loaded onto a tiny random model (dim 16, 2 layers) and run forward when it fits. */
msbnb_status fuzz_one_adapter_dir(const uint8_t *data, size_t size);

#endif
