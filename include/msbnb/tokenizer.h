/*
 * tokenizer.h — one tokenizer handle for three file formats: Hugging Face tokenizer.json (BPE
 * models: byte-level as GPT-2 / Llama-3 / Qwen2, SentencePiece-style as Llama-2 / Mistral / Phi-3),
 * SentencePiece tokenizer.model (BPE type) and llama2.c's tokenizer.bin.
 *
 * Usage (a model directory holding tokenizer.json and its config files):
 *
 *     #include <msbnb/tokenizer.h>
 *
 *     msbnb_tokenizer *tok = NULL;
 *     if (msbnb_tokenizer_load("models/llama3", 0, &tok) != MSBNB_OK) {
 *         fprintf(stderr, "msbnb: %s\n", msbnb_last_error());
 *         ...
 *     }
 *     int32_t *ids = NULL; size_t n = 0;
 *     msbnb_tokenizer_encode_alloc(tok, "Hello world", 11, MSBNB_ENCODE_ADD_SPECIAL, &ids, &n);
 *     ...                                    // ids[0] is <|begin_of_text|> for Llama-3
 *     free(ids);
 *     msbnb_tokenizer_free(tok);
 *
 * What runs (docs/tokenizers.md has the details): the input is split around added tokens (matched
 * in the raw text, longest first, honouring lstrip / rstrip / single_word / normalized as the HF
 * tokenizers library does); every other span is normalized (NFC, NFKC, NFD, NFKD, Prepend,
 * Replace, Lowercase, Strip, Sequence), pre-tokenized (Split with the file's regex through PCRE2,
 * ByteLevel, Metaspace, Digits, WhitespaceSplit, Sequence) and merged by the BPE model (merge ranks,
 * ignore_merges, byte_fallback, unk / fuse_unk); the post-processor (TemplateProcessing, or BOS / EOS
 * from tokenizer_config.json's add_bos_token / add_eos_token) adds special tokens on request.
 * Decoding runs the file's decoder chain (ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip).
 *
 * Special ids (BOS, the EOS set, PAD) come from tokenizer_config.json, generation_config.json and
 * config.json beside the tokenizer file; eos_token_id may be a list: msbnb_tokenizer_is_eos() is
 * true for every member. Nothing is assumed about particular ids.
 *
 * Thread safety: a tokenizer is read-only after loading; any number of threads may encode and
 * decode with one handle at the same time. A detokenizer (streaming decode) belongs to one thread.
 * Buffers: text inputs are borrowed for the call; strings returned by accessors point into the
 * tokenizer (valid while it lives); *_alloc results are malloc'ed and the caller free()s them.
 */
#ifndef MSBNB_TOKENIZER_H
#define MSBNB_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "msbnb.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct msbnb_tokenizer msbnb_tokenizer;

typedef enum msbnb_tokenizer_kind {
    MSBNB_TOKENIZER_LLAMA2C = 0, /* llama2.c tokenizer.bin / tok512.bin                 */
    MSBNB_TOKENIZER_HF_JSON = 1, /* Hugging Face tokenizer.json                          */
    MSBNB_TOKENIZER_SPM = 2      /* SentencePiece tokenizer.model (BPE)                  */
} msbnb_tokenizer_kind;

/* ---------------------------------------------------------------- loading */

/* Load a tokenizer from `path`:
 *   - a directory: the first of tokenizer.json, tokenizer.model, tokenizer.bin, tok512.bin found in
 *     it (a directory named hf/ with none of them is also searched in its parent, the layout of
 *     llama2.c model folders);
 *   - a file: its format is recognised by content ('{' = tokenizer.json, a protobuf whose first
 *     field is a SentencePiece piece = tokenizer.model, else llama2.c).
 * tokenizer_config.json, generation_config.json and config.json beside the tokenizer file, when
 * present, supply the special ids and add_bos_token / add_eos_token.
 * model_vocab: the model's embedding rows, or 0 when there is no model. A llama2.c file stores no
 * token count: with model_vocab > 0 exactly that many entries are read, with 0 the file is read to
 * its end. For the other formats every id must be below model_vocab (a model may have more rows
 * than the tokenizer has tokens, e.g. Phi-3's 32064 for 32011).
 * Errors: INVALID_ARG, IO, NOT_FOUND (a directory without a tokenizer), FORMAT (malformed file,
 * with the byte offset or JSON key), UNSUPPORTED (a model / normalizer / pre-tokenizer / decoder
 * type this engine does not implement; the message names it and the supported ones), SHAPE (an id
 * at or above model_vocab). */
msbnb_status msbnb_tokenizer_load(const char *path, int model_vocab, msbnb_tokenizer **out);
void msbnb_tokenizer_free(msbnb_tokenizer *t);

/* The tokenizer of a model: for a model directory, or the directory of a model file
 * (DIR/model.safetensors, stories260K.bin), the file msbnb_tokenizer_load would pick there (same
 * search order) into out [cap]. NOT_FOUND (one line naming the directory) when there is none,
 * INVALID_ARG for NULL or a path longer than cap. */
msbnb_status msbnb_tokenizer_find(const char *model_path, char *out, size_t cap);

/* Number of ids: the largest id + 1 (added tokens included). 0 for NULL. */
int msbnb_tokenizer_vocab_size(const msbnb_tokenizer *t);
msbnb_tokenizer_kind msbnb_tokenizer_kind_of(const msbnb_tokenizer *t);
/* The file the tokenizer was read from (points into the tokenizer). */
const char *msbnb_tokenizer_path(const msbnb_tokenizer *t);

/* ---------------------------------------------------------------- special ids */

/* BOS / PAD id, or -1 when the tokenizer has none (Qwen has no BOS). */
int32_t msbnb_tokenizer_bos(const msbnb_tokenizer *t);
int32_t msbnb_tokenizer_pad(const msbnb_tokenizer *t);
/* The EOS set (generation stops on any member): *n receives its size; the array points into the
 * tokenizer. The first member is the tokenizer's eos_token. */
const int32_t *msbnb_tokenizer_eos_ids(const msbnb_tokenizer *t, int *n);
int msbnb_tokenizer_is_eos(const msbnb_tokenizer *t, int32_t id);
/* True for special tokens (HF added tokens with special: true, SentencePiece control pieces). */
int msbnb_tokenizer_is_special(const msbnb_tokenizer *t, int32_t id);

/* The token string of an id (vocabulary spelling: "Ġthe", "▁the", "<0x0A>", "<|eot_id|>"); *len its
 * bytes. NULL for an id out of range or a gap in the ids. Points into the tokenizer. */
const char *msbnb_tokenizer_id_to_token(const msbnb_tokenizer *t, int32_t id, size_t *len);
/* Id of a token string (vocabulary or added token), or -1. */
int32_t msbnb_tokenizer_token_to_id(const msbnb_tokenizer *t, const char *token, size_t len);

/* ---------------------------------------------------------------- encoding */

/* Flags of msbnb_tokenizer_encode_text / _alloc. */
#define MSBNB_ENCODE_ADD_SPECIAL 1u   /* post-process: add BOS / EOS as the tokenizer says (HF add_special_tokens=True) */
#define MSBNB_ENCODE_SPLIT_SPECIAL 2u /* special tokens' text in the input is plain text (HF split_special_tokens)      */

/* Encode UTF-8 text (len bytes; NUL bytes allowed) into ids [cap]. *n_ids receives the count;
 * when it exceeds cap, nothing is written past cap, *n_ids holds the count needed and the call
 * returns SHAPE (ids may be NULL with cap 0 to ask). Errors: INVALID_ARG (NULL, text not valid
 * UTF-8 for tokenizer.json / .model, with its byte offset), SHAPE, OUT_OF_MEMORY.
 * Cost: linear in len for the pre-tokenizers in use and O(w log w) per distinct pre-token of w
 * characters (BPE with a priority queue; repeated words come from a per-call cache). */
msbnb_status msbnb_tokenizer_encode_text(const msbnb_tokenizer *t, const char *text, size_t len, unsigned flags,
                                         int32_t *ids, size_t cap, size_t *n_ids);
/* The same into a malloc'ed array (*ids, caller free()s; non-NULL even for 0 ids). */
msbnb_status msbnb_tokenizer_encode_alloc(const msbnb_tokenizer *t, const char *text, size_t len, unsigned flags,
                                          int32_t **ids, size_t *n_ids);

/* The older, llama2.c-style call (kept for existing callers): bos / eos add the tokenizer's BOS and
 * first EOS id (when it has them) around the ids of the text; no other post-processing. For
 * llama2.c files, text may be any bytes except NUL. SHAPE if cap < len + 3. */
msbnb_status msbnb_tokenizer_encode(const msbnb_tokenizer *t, const char *text, size_t len, int bos, int eos,
                                    int32_t *ids, int cap, int *n_ids);

/* ---------------------------------------------------------------- decoding */

#define MSBNB_DECODE_SKIP_SPECIAL 1u /* leave special tokens out (HF skip_special_tokens=True) */

/* Decode ids to UTF-8 text as the HF library does (decode(ids)): the decoder chain runs over the
 * whole sequence, so SentencePiece's leading space is stripped once and byte tokens join into
 * characters; invalid byte sequences become U+FFFD. out [cap] receives the bytes and a NUL when
 * there is room; *len the byte count (without the NUL). When len + 1 > cap: SHAPE, *len = the size
 * needed minus 1 (out may be NULL with cap 0 to ask). INVALID_ARG for an id out of range. */
msbnb_status msbnb_tokenizer_decode_ids(const msbnb_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                                        char *out, size_t cap, size_t *len);
/* The same into a malloc'ed NUL-terminated string (caller free()s). */
msbnb_status msbnb_tokenizer_decode_alloc(const msbnb_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                                          char **text, size_t *len);

/* The bytes one token contributes when it follows `prev` (the older per-token call): the token's
 * characters mapped back to bytes (byte-level map, "▁" → " ", "<0xXX>" → that byte). Right after
 * BOS (prev == the BOS id) a leading space is dropped when the decoder strips one. *piece points
 * into the tokenizer; a byte token gives one raw byte (possibly part of a UTF-8 character; the
 * detokenizer below joins them). INVALID_ARG for an id out of range. */
msbnb_status msbnb_tokenizer_decode(const msbnb_tokenizer *t, int32_t prev, int32_t token, const char **piece,
                                    size_t *len);

/* ---------------------------------------------------------------- streaming decode */

/* Text of a growing id sequence, piece by piece, for printing tokens as they are generated. Each
 * push returns only complete UTF-8 text that decode_ids of all ids pushed so far would add: a
 * character split over several byte tokens is held back until it is complete (or found invalid,
 * then U+FFFD). The concatenation of every push and the final flush equals decode_ids of all ids.
 * Cost per push: a decode of the few ids since the last complete character (a bounded window). */
typedef struct msbnb_detokenizer msbnb_detokenizer;

/* flags: MSBNB_DECODE_SKIP_SPECIAL or 0. The tokenizer must outlive the detokenizer. */
msbnb_status msbnb_detokenizer_create(const msbnb_tokenizer *t, unsigned flags, msbnb_detokenizer **out);
/* Push one id. *text / *len: the new text (may be empty), valid until the next call on d. */
msbnb_status msbnb_detokenizer_push(msbnb_detokenizer *d, int32_t id, const char **text, size_t *len);
/* Whatever is held back (an incomplete character decodes to U+FFFD), then a fresh start. */
msbnb_status msbnb_detokenizer_flush(msbnb_detokenizer *d, const char **text, size_t *len);
void msbnb_detokenizer_free(msbnb_detokenizer *d);

#ifdef __cplusplus
}
#endif
#endif /* MSBNB_TOKENIZER_H */
