/* fuzz_targets_chat.h — the chat-template fuzz target's body, shared by the libFuzzer entry
 * (fuzz_chat_template.c) and the corpus replay test (tests/fuzz/replay.c). */
#ifndef MSBNB_FUZZ_TARGETS_CHAT_H
#define MSBNB_FUZZ_TARGETS_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include <msbnb/msbnb.h>

/* data = template source. Compiled, then rendered twice (with and without the generation
 * prompt) over a fixed four-message conversation under small limits (64 KiB of output, 16 MiB of
 * memory, 200,000 steps); a failure must leave no output and a one-line message, a success a
 * NUL-terminated text of the stated length. Returns the first failing status, else OK. */
msbnb_status fuzz_one_chat_template(const uint8_t *data, size_t size);

#endif
