/* fuzz_targets_tok.c — fuzz target bodies for the tokenizer.json and tokenizer.model readers (see
 * fuzz_targets.h). The loader takes a path, so each input is written as tokenizer.json /
 * tokenizer.model into a fresh temporary directory (no config files beside it), loaded, and on
 * success exercised: encoding (plain, with special tokens, special text split), ids in range,
 * decoding, the streaming detokenizer (its pieces must add up to the whole decode), the buffer
 * size protocol, and the older llama2.c-style calls. */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msbnb/tokenizer.h>

static _Noreturn void harness_failed(const char *what) {
    fprintf(stderr, "fuzz: %s\n", what);
    abort();
}

static void check_text(const msbnb_tokenizer *t, const char *text, size_t len, unsigned flags) {
    int32_t *ids = NULL;
    size_t n = 0;
    msbnb_status st = msbnb_tokenizer_encode_alloc(t, text, len, flags, &ids, &n);
    if (st == MSBNB_ERR_INVALID_ARG) { /* only invalid UTF-8 is refused */
        if (ids) abort();
        return;
    }
    if (st != MSBNB_OK || !ids) abort();
    int vocab = msbnb_tokenizer_vocab_size(t);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab || !msbnb_tokenizer_id_to_token(t, ids[i], NULL)) abort();
    /* too small a buffer: SHAPE with the size needed, nothing written past cap */
    if (n > 0) {
        int32_t *small = (int32_t *)malloc(n * sizeof(int32_t));
        size_t need = 0;
        if (!small) harness_failed("out of memory");
        if (msbnb_tokenizer_encode_text(t, text, len, flags, small, n - 1, &need) != MSBNB_ERR_SHAPE || need != n) abort();
        free(small);
    }
    char *whole = NULL;
    size_t wl = 0;
    if (msbnb_tokenizer_decode_alloc(t, ids, n, 0, &whole, &wl) != MSBNB_OK || !whole || strlen(whole) > wl) abort();
    char *skip = NULL;
    if (msbnb_tokenizer_decode_alloc(t, ids, n, MSBNB_DECODE_SKIP_SPECIAL, &skip, NULL) != MSBNB_OK) abort();
    free(skip);
    /* streaming: the pushed pieces and the flush add up to the whole text */
    msbnb_detokenizer *d = NULL;
    if (msbnb_detokenizer_create(t, 0, &d) != MSBNB_OK) abort();
    char *acc = (char *)malloc(wl + 64);
    size_t al = 0;
    int ok = acc != NULL;
    for (size_t i = 0; ok && i <= n; i++) {
        const char *piece;
        size_t pl;
        msbnb_status ps = i < n ? msbnb_detokenizer_push(d, ids[i], &piece, &pl) : msbnb_detokenizer_flush(d, &piece, &pl);
        if (ps != MSBNB_OK) abort();
        if (al + pl > wl + 63) ok = 0;
        else memcpy(acc + al, piece, pl), al += pl;
    }
    if (!ok || al != wl || memcmp(acc, whole, wl) != 0) abort();
    free(acc);
    msbnb_detokenizer_free(d);
    for (size_t i = 0; i < n; i++) {
        const char *piece;
        size_t pl;
        if (msbnb_tokenizer_decode(t, i ? ids[i - 1] : -1, ids[i], &piece, &pl) != MSBNB_OK || !piece) abort();
    }
    free(whole);
    free(ids);
}

static void exercise(const msbnb_tokenizer *t) {
    static const char *const texts[] = {"", "a", "hello world", "  Hello  World!  ", "Hello<|endoftext|>world",
                                        "<s>hi</s> <|user|>\n abc abcd xabc", "h\xc3\xa9llo w\xc3\xb6rld 123456 \xf0\x9f\xa6\x99",
                                        "  \t\n\r\n  ", "\xef\xac\x81 \xef\xbc\xa1 \xe1\x84\x80\xe1\x85\xa1",
                                        "\x80\xff\xc3 \xe2\x82", "it's THEY'LL 3.14159"};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        size_t len = strlen(texts[k]);
        check_text(t, texts[k], len, 0);
        check_text(t, texts[k], len, MSBNB_ENCODE_ADD_SPECIAL);
        check_text(t, texts[k], len, MSBNB_ENCODE_SPLIT_SPECIAL);
        int32_t ids[64];
        int n = 0;
        msbnb_status st = msbnb_tokenizer_encode(t, texts[k], len, 1, 1, ids, 64, &n);
        if (st != MSBNB_OK && st != MSBNB_ERR_INVALID_ARG && st != MSBNB_ERR_SHAPE) abort();
    }
    int32_t bad[2] = {msbnb_tokenizer_vocab_size(t), -1};
    char *s = NULL;
    if (msbnb_tokenizer_decode_alloc(t, bad, 1, 0, &s, NULL) != MSBNB_ERR_INVALID_ARG || s) abort();
    if (msbnb_tokenizer_decode_alloc(t, bad + 1, 1, 0, &s, NULL) != MSBNB_ERR_INVALID_ARG || s) abort();
    int n_eos = 0;
    const int32_t *eos = msbnb_tokenizer_eos_ids(t, &n_eos);
    for (int i = 0; i < n_eos; i++)
        if (!msbnb_tokenizer_is_eos(t, eos[i])) abort();
}

static msbnb_status load_named(const uint8_t *data, size_t size, const char *name) {
    char dir[FUZZ_PATH_MAX], path[FUZZ_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/msbnb-fuzz-XXXXXX", fuzz_scratch_dir());
    if (!mkdtemp(dir)) harness_failed("cannot create a temporary directory");
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) harness_failed("cannot write a temporary file");
    msbnb_tokenizer *t = NULL;
    msbnb_status st = msbnb_tokenizer_load(path, 0, &t);
    unlink(path);
    rmdir(dir);
    if (st != MSBNB_OK) {
        if (t) abort();
        return st;
    }
    exercise(t);
    msbnb_tokenizer_free(t);
    return MSBNB_OK;
}

msbnb_status fuzz_one_tokenizer_json(const uint8_t *data, size_t size) { return load_named(data, size, "tokenizer.json"); }
msbnb_status fuzz_one_tokenizer_model(const uint8_t *data, size_t size) {
    return load_named(data, size, "tokenizer.model");
}
