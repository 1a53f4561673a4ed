/* fuzz_targets_model.c — fuzz target bodies for the parsers outside src/io (see fuzz_targets.h):
 * llama2.c .bin checkpoints, the llama2.c tokenizer and optimizer state files. Those loaders only
 * take a path, so each input is written to a temporary file first (mkstemp in fuzz_scratch_dir(),
 * unlinked before returning). */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_targets.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msbnb/model.h>
#include <msbnb/optim.h>

/* Write data[0..size) to a new file in fuzz_scratch_dir(); path[FUZZ_PATH_MAX] receives its name.
 * 0 on failure. */
static int write_temp(const uint8_t *data, size_t size, char path[FUZZ_PATH_MAX]) {
    snprintf(path, FUZZ_PATH_MAX, "%s/msbnb-fuzz-XXXXXX", fuzz_scratch_dir());
    int fd = mkstemp(path);
    if (fd < 0) return 0;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
    close(fd);
    if (done != size) {
        unlink(path);
        return 0;
    }
    return 1;
}

/* A harness failure (no temp file) is not a parser result: stop loudly. */
static _Noreturn void temp_failed(void) {
    fprintf(stderr, "fuzz: cannot write a temporary file in %s\n", fuzz_scratch_dir());
    abort();
}

/* ---------------------------------------------------------------- llama2.c checkpoint */

/* Bytes a llama2.c file with header h should have (load_llama2c.c's layout), when that is at
 * most 1 MiB and the fields are positive (head = dim / n_heads); 0 otherwise. */
static size_t llama2c_implied_bytes(const int32_t h[7]) {
    for (int i = 0; i < 7; i++)
        if (h[i] == 0 || h[i] == INT32_MIN || (i != 5 && h[i] < 0) || h[i] > (1 << 20)) return 0;
    const uint64_t dim = (uint64_t)h[0], hid = (uint64_t)h[1], L = (uint64_t)h[2], heads = (uint64_t)h[3];
    const uint64_t kv = (uint64_t)h[4], V = (uint64_t)(h[5] < 0 ? -h[5] : h[5]), seq = (uint64_t)h[6];
    const uint64_t head = dim / heads, qd = heads * head, kvd = kv * head;
    /* every term is below 2^60 with fields <= 2^20 only when products stay small: check as we go */
    if (L * dim > (1u << 20) || V * dim > (1u << 20) || hid * dim > (1u << 20) || qd * dim > (1u << 20) ||
        kvd * dim > (1u << 20) || seq * head > (1u << 20))
        return 0;
    uint64_t n = V * dim + L * dim * 2 + L * (qd * dim * 2 + 2 * kvd * dim) + L * 3 * hid * dim + dim + seq * head;
    if (h[5] < 0) n += V * dim;
    return 28 + 4 * n <= (1u << 20) ? (size_t)(28 + 4 * n) : 0;
}

/* Load the .bin at path (then unlink it); on success check the model against header h and run a
 * short forward pass. */
static msbnb_status load_llama2c(const char *path, const int32_t h[7]) {
    msbnb_model_params p = msbnb_model_params_default();
    p.max_seq_len = 16; /* the KV cache grows with layers × seq_len: keep each run small */
    p.max_batch = 4;
    msbnb_model *m = NULL;
    msbnb_status st = msbnb_model_load(path, &p, &m);
    unlink(path);
    if (st != MSBNB_OK) {
        if (m) abort();
        return st;
    }
    /* The accepted model is the one the header describes. */
    msbnb_model_config c;
    if (msbnb_model_get_config(m, &c) != MSBNB_OK || c.dim != h[0] || c.hidden_dim != h[1] || c.n_layers != h[2] ||
        c.n_heads != h[3] || c.n_kv_heads != h[4] || c.vocab_size != (h[5] < 0 ? -h[5] : h[5]) ||
        c.seq_len != h[6] || c.tied != (h[5] > 0) || msbnb_model_vocab_size(m) != c.vocab_size)
        abort();
    /* Every projection exists and a short forward pass runs on it. */
    for (int l = 0; l < c.n_layers; l++)
        for (int q = 0; q < MSBNB_PROJ_COUNT; q++)
            if (!msbnb_model_linear(m, l, (msbnb_proj)q)) abort();
    const int32_t toks[2] = {0, c.vocab_size - 1};
    const int n = msbnb_model_context_len(m) < 2 ? 1 : 2;
    float *logits = malloc((size_t)c.vocab_size * sizeof(float));
    if (logits && msbnb_model_forward(m, toks, n, 0, logits, 0) != MSBNB_OK) abort();
    free(logits);
    msbnb_model_free(m);
    return MSBNB_OK;
}

msbnb_status fuzz_one_llama2c(const uint8_t *data, size_t size) {
    char path[FUZZ_PATH_MAX];
    int32_t h[7] = {0};
    if (size >= 28) memcpy(h, data, sizeof h);
    /* The loader wants the exact length the header implies, which random mutations of the header
     * almost never keep: first load the same bytes cut or zero-padded to that length, so the
     * fuzzer reaches the weights and the forward pass for every shape it invents. */
    const size_t want = size >= 28 ? llama2c_implied_bytes(h) : 0;
    if (want && want != size) {
        uint8_t *fixed = calloc(1, want);
        if (!fixed) abort();
        memcpy(fixed, data, size < want ? size : want);
        if (!write_temp(fixed, want, path)) temp_failed();
        free(fixed);
        load_llama2c(path, h);
    }
    /* then the bytes as given, whose status and message are the result */
    if (!write_temp(data, size, path)) temp_failed();
    return load_llama2c(path, h);
}

/* ---------------------------------------------------------------- tokenizer */

msbnb_status fuzz_one_tokenizer(const uint8_t *data, size_t size) {
    char path[FUZZ_PATH_MAX];
    if (!write_temp(data, size, path)) temp_failed();
    msbnb_tokenizer *t = NULL;
    msbnb_status st = msbnb_tokenizer_load(path, FUZZ_TOKENIZER_VOCAB, &t);
    unlink(path);
    if (st != MSBNB_OK) {
        if (t) abort();
        return st;
    }
    if (msbnb_tokenizer_kind_of(t) != MSBNB_TOKENIZER_LLAMA2C) { /* JSON / protobuf: their own targets */
        msbnb_tokenizer_free(t);
        return st;
    }
    if (msbnb_tokenizer_vocab_size(t) != FUZZ_TOKENIZER_VOCAB) abort();
    int32_t mtl;
    memcpy(&mtl, data, 4);
    /* ASCII, merges, multi-byte UTF-8, invalid UTF-8 (lone continuation, truncated sequence, 0xff). */
    static const char *const texts[] = {"", "a", "hello world", "abc abc abcabc", "\xc3\xa9t\xc3\xa9 \xe2\x82\xac",
                                        "\x80\xff\xc3 \xe2\x82", "<0x41><s></s>", "  \t\n  "};
    int32_t ids[64];
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        const size_t len = strlen(texts[k]);
        int n = -1;
        if (msbnb_tokenizer_encode(t, texts[k], len, 1, 1, ids, 64, &n) != MSBNB_OK) abort();
        /* BOS and EOS are the pieces spelled <s> / </s> (either llama2.c spelling), else ids 1 / 2 */
        if (n < 2 || (size_t)n > len + 3 || ids[0] != msbnb_tokenizer_bos(t) || !msbnb_tokenizer_is_eos(t, ids[n - 1]))
            abort();
        for (int i = 0; i < n; i++) {
            if (ids[i] < 0 || ids[i] >= FUZZ_TOKENIZER_VOCAB) abort();
            const char *piece = NULL;
            size_t plen = 0;
            if (msbnb_tokenizer_decode(t, i ? ids[i - 1] : msbnb_tokenizer_bos(t), ids[i], &piece, &plen) != MSBNB_OK || !piece ||
                plen > (size_t)mtl)
                abort();
        }
        /* too small an output buffer is refused, not overrun */
        if (len > 0 && msbnb_tokenizer_encode(t, texts[k], len, 1, 1, ids, (int)len, &n) != MSBNB_ERR_SHAPE) abort();
    }
    const char *piece;
    size_t plen;
    if (msbnb_tokenizer_decode(t, 0, FUZZ_TOKENIZER_VOCAB, &piece, &plen) == MSBNB_OK ||
        msbnb_tokenizer_decode(t, 0, -1, &piece, &plen) == MSBNB_OK)
        abort();
    msbnb_tokenizer_free(t);
    return MSBNB_OK;
}

/* ---------------------------------------------------------------- optimizer state */

/* CRC-32 (IEEE, reflected) as the state file uses, to build a variant whose checksum passes. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc & 1) ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
    }
    return ~crc;
}

/* Load the state file at path into a fresh optimizer of `type` with the fuzz layout (see
 * fuzz_targets.h); on success check it took the step and moments, then take one step. */
static msbnb_status load_optim(msbnb_optim_type type, const char *path) {
    static float a[FUZZ_OPTIM_N_A], ga[FUZZ_OPTIM_N_A], b[FUZZ_OPTIM_N_B], gb[FUZZ_OPTIM_N_B];
    for (int i = 0; i < FUZZ_OPTIM_N_A; i++) a[i] = 0.5f, ga[i] = 0.25f;
    for (int i = 0; i < FUZZ_OPTIM_N_B; i++) b[i] = -0.5f, gb[i] = 0.125f;
    msbnb_adamw_params p = msbnb_adamw_params_default();
    p.blocksize = FUZZ_OPTIM_BLOCKSIZE;
    p.min_8bit_size = FUZZ_OPTIM_N_B; /* 8-bit AdamW: "b" is 8-bit, "a" fp32 */
    msbnb_optim *o = NULL;
    if (msbnb_optim_create(type, &p, &o) != MSBNB_OK || msbnb_optim_add_param(o, a, ga, FUZZ_OPTIM_N_A, "a") != MSBNB_OK ||
        msbnb_optim_add_param(o, b, gb, FUZZ_OPTIM_N_B, "b") != MSBNB_OK)
        abort();
    msbnb_status st = msbnb_optim_load(o, path);
    if (st == MSBNB_OK) {
        static float m[FUZZ_OPTIM_N_B], v[FUZZ_OPTIM_N_B];
        if (msbnb_optim_step_count(o) < 0 || msbnb_optim_get_moments(o, 0, m, v) != MSBNB_OK ||
            msbnb_optim_get_moments(o, 1, m, v) != MSBNB_OK)
            abort();
        /* Loaded moments may be anything (NaN, huge absmax): the step must still run. */
        if (msbnb_optim_step(o, NULL) != MSBNB_OK) abort();
    } else if (msbnb_optim_step_count(o) != 0) {
        abort(); /* a failed load leaves the optimizer unchanged */
    }
    msbnb_optim_free(o);
    return st;
}

msbnb_status fuzz_one_optim_state(const uint8_t *data, size_t size) {
    /* The optimizer type is the u32 after magic and version; pick the optimizer that matches it
     * (fp32 AdamW otherwise) so both state layouts are reachable. */
    msbnb_optim_type type = MSBNB_OPTIM_ADAMW;
    if (size >= 16 && data[12] == 1 && !data[13] && !data[14] && !data[15]) type = MSBNB_OPTIM_ADAMW8BIT;
    /* Random mutations almost never keep the CRC right: first parse the same bytes with the CRC
     * fixed up, so the fuzzer reaches the checks behind it, then the bytes as given (whose status
     * and message are the result). */
    char path[FUZZ_PATH_MAX];
    if (size >= 4) {
        uint8_t *fixed = malloc(size);
        if (!fixed) abort();
        memcpy(fixed, data, size);
        const uint32_t crc = crc32_ieee(fixed, size - 4);
        memcpy(fixed + size - 4, &crc, 4);
        if (memcmp(fixed, data, size) != 0) {
            if (!write_temp(fixed, size, path)) temp_failed();
            load_optim(type, path);
            unlink(path);
        }
        free(fixed);
    }
    if (!write_temp(data, size, path)) temp_failed();
    msbnb_status st = load_optim(type, path);
    unlink(path);
    return st;
}
