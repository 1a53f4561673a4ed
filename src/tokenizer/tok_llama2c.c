/*
 * tok_llama2c.c — reads llama2.c's tokenizer.bin (a SentencePiece BPE vocabulary exported by its
 * tokenizer.py) into the engine's tables.
 *
 * File: int32 max_token_length, then per token: float32 score, int32 len, len bytes. The token
 * count is not stored: the model's vocab_size says how many to read (0 = up to the end of the
 * file). "▁" was replaced by " " in the export, control pieces are spelled "<unk>", "\n<s>\n",
 * "\n</s>\n", byte pieces "<0x00>".."<0xFF>".
 *
 * Encoding as llama2.c's run.c does it: a dummy-prefix " " (a Prepend normalizer), the text as one
 * piece, one symbol per UTF-8 character (byte tokens for characters not in the vocabulary), then
 * merges by highest score, leftmost on ties (scores become ranks in tok_merges_from_scores).
 * Decoding: byte tokens give their byte; the first leading space after BOS is dropped.
 *
 * Complexity: one pass over the file with every length checked against the bytes left.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

static int32_t find_spelled(const msbnb_tokenizer *t, const char *a, const char *b) {
    for (int32_t id = 0; id < t->n_ids; id++) {
        size_t n = t->tok_len[id];
        const char *s = tok_s(t, id);
        if ((n == strlen(a) && memcmp(s, a, n) == 0) || (n == strlen(b) && memcmp(s, b, n) == 0)) return id;
    }
    return -1;
}

static msbnb_status add_step_norm(msbnb_tokenizer *t) {
    t->norm = (tok_norm *)calloc(1, sizeof *t->norm);
    RETURN_IF(!t->norm, MSBNB_ERR_OUT_OF_MEMORY, "normalizer");
    t->n_norm = 1;
    t->norm[0].kind = NORM_PREPEND;
    t->norm[0].a = (char *)malloc(2);
    RETURN_IF(!t->norm[0].a, MSBNB_ERR_OUT_OF_MEMORY, "normalizer");
    memcpy(t->norm[0].a, " ", 2);
    t->norm[0].a_len = 1;
    return MSBNB_OK;
}

static msbnb_status add_steps_dec(msbnb_tokenizer *t) {
    t->dec = (tok_dec *)calloc(3, sizeof *t->dec);
    RETURN_IF(!t->dec, MSBNB_ERR_OUT_OF_MEMORY, "decoder");
    t->n_dec = 3;
    t->dec[0].kind = DEC_BYTEFALLBACK;
    t->dec[1].kind = DEC_FUSE;
    t->dec[2].kind = DEC_STRIP;
    t->dec[2].start = 1;
    t->dec[2].a = (char *)malloc(2);
    RETURN_IF(!t->dec[2].a, MSBNB_ERR_OUT_OF_MEMORY, "decoder");
    memcpy(t->dec[2].a, " ", 2);
    t->dec[2].a_len = 1;
    return MSBNB_OK;
}

msbnb_status tok_load_llama2c(msbnb_tokenizer *t, const char *path, const unsigned char *data, size_t len,
                              int vocab_size) {
    RETURN_IF(len < 4, MSBNB_ERR_FORMAT, "%s: truncated header (byte 0)", path);
    int32_t mtl;
    memcpy(&mtl, data, 4);
    RETURN_IF(mtl < 1 || mtl > 65536, MSBNB_ERR_FORMAT, "%s: max_token_length %d out of range (byte 0)", path, (int)mtl);
    /* count the entries (or check the expected count) before allocating */
    size_t off = 4;
    int n = 0;
    while (off < len && (vocab_size <= 0 || n < vocab_size)) {
        RETURN_IF(len - off < 8, MSBNB_ERR_FORMAT, "%s: truncated at token %d (byte %zu)", path, n, off);
        int32_t l;
        float score;
        memcpy(&score, data + off, 4);
        memcpy(&l, data + off + 4, 4);
        RETURN_IF(l < 0 || l > mtl || (size_t)l > len - off - 8, MSBNB_ERR_FORMAT,
                  "%s: token %d has length %d (max_token_length %d, byte %zu)", path, n, (int)l, (int)mtl, off + 4);
        RETURN_IF(isnan(score), MSBNB_ERR_FORMAT, "%s: token %d has a NaN score (byte %zu)", path, n, off);
        RETURN_IF(memchr(data + off + 8, 0, (size_t)l) != NULL, MSBNB_ERR_FORMAT,
                  "%s: token %d contains a NUL byte (byte %zu)", path, n, off + 8);
        off += 8 + (size_t)l;
        RETURN_IF(++n > (1 << 21), MSBNB_ERR_FORMAT, "%s: more than 2^21 tokens", path);
    }
    RETURN_IF(vocab_size > 0 && n < vocab_size, MSBNB_ERR_FORMAT, "%s: truncated at token %d of %d (byte %zu)", path, n,
              vocab_size, off);
    RETURN_IF(off != len, MSBNB_ERR_FORMAT, "%s: %zu trailing bytes after %d tokens (byte %zu)", path, len - off, n, off);
    RETURN_IF(n < 1, MSBNB_ERR_FORMAT, "%s: no tokens", path);
    TRY(tok_alloc_ids(t, n));
    float *score = (float *)malloc((size_t)n * sizeof(float));
    uint8_t *skip = (uint8_t *)calloc((size_t)n, 1);
    msbnb_status st = (score && skip) ? MSBNB_OK : MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "tokens");
    off = 4;
    for (int i = 0; st == MSBNB_OK && i < n; i++) {
        int32_t l;
        memcpy(&score[i], data + off, 4);
        memcpy(&l, data + off + 4, 4);
        st = tok_set_token(t, i, (const char *)data + off + 8, (size_t)l);
        off += 8 + (size_t)l;
    }
    if (st == MSBNB_OK) {
        /* control pieces: special, never produced by merges */
        int32_t unk = find_spelled(t, "<unk>", "<unk>"), bos = find_spelled(t, "<s>", "\n<s>\n"),
                eos = find_spelled(t, "</s>", "\n</s>\n");
        /* llama2.c's run.c fixes BOS 1 / EOS 2 (SentencePiece's layout): used when not spelled */
        t->bos = bos >= 0 ? bos : (n > 2 ? 1 : -1);
        if (eos < 0 && n > 2) eos = 2;
        t->unk_id = unk >= 0 ? unk : 0;
        int32_t ctl[3] = {unk, t->bos, eos};
        for (int k = 0; k < 3; k++)
            if (ctl[k] >= 0) t->flags[ctl[k]] |= TOKF_SPECIAL | TOKF_ADDED;
        if (eos >= 0) st = tok_add_eos(t, eos);
    }
    if (st == MSBNB_OK) st = tok_build_vocab(t);
    if (st == MSBNB_OK) {
        tok_find_byte_tokens(t);
        for (int b = 0; b < 256; b++)
            if (t->byte_id[b] >= 0) skip[t->byte_id[b]] = 1;
        for (int i = 0; i < n; i++)
            if (t->flags[i] & TOKF_ADDED) skip[i] = 1;
        st = tok_merges_from_scores(t, score, skip);
    }
    free(score);
    free(skip);
    TRY(st);
    t->byte_fallback = 1;
    t->llama2c_compat = 1;
    if (t->bos >= 0) { /* MSBNB_ENCODE_ADD_SPECIAL: BOS, as llama2.c's run.c encodes a prompt */
        t->post_pre = (int32_t *)malloc(sizeof(int32_t));
        RETURN_IF(!t->post_pre, MSBNB_ERR_OUT_OF_MEMORY, "post-processor");
        t->post_pre[0] = t->bos;
        t->n_post_pre = 1;
    }
    TRY(add_step_norm(t));
    TRY(add_steps_dec(t));
    return MSBNB_OK;
}
