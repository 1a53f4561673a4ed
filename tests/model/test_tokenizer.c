/*
 * test_tokenizer.c — the llama2.c tokenizer: golden ids, agreement with a straightforward
 * re-implementation of llama2.c's O(n²) merge loop (written here from the algorithm, reading
 * tok512.bin itself), decode round trips, byte fallback, and clean errors on corrupt files.
 */
#include <msbnb/model.h>

#include "test.h"

#define TOK_PATH MSBNB_SHARED_DIR "/models/stories260K/tok512.bin"

static msbnb_tokenizer *tok;

/* ---------------------------------------------------------------- naive reference */

typedef struct {
    int n;
    char *piece[512];
    int len[512];
    float score[512];
} naive_vocab;
static naive_vocab nv;

static int naive_load(void) {
    size_t flen = 0;
    unsigned char *b = (unsigned char *)test_read_file(TOK_PATH, &flen);
    if (!b) return 0;
    size_t off = 4;
    for (int i = 0; i < 512; i++) {
        memcpy(&nv.score[i], b + off, 4);
        memcpy(&nv.len[i], b + off + 4, 4);
        nv.piece[i] = (char *)malloc((size_t)nv.len[i] + 1);
        memcpy(nv.piece[i], b + off + 8, (size_t)nv.len[i]);
        nv.piece[i][nv.len[i]] = 0;
        off += 8 + (size_t)nv.len[i];
    }
    nv.n = 512;
    free(b);
    return off == flen;
}

static int naive_find(const char *s, int n) { /* linear scan, lowest id */
    for (int i = 0; i < nv.n; i++)
        if (nv.len[i] == n && memcmp(nv.piece[i], s, (size_t)n) == 0) return i;
    return -1;
}

/* llama2.c encode(): code points or bytes+3, then merge the best-scoring (leftmost) pair until none. */
static int naive_encode(const char *text, int32_t *ids) {
    int n = 0;
    ids[n++] = 1;
    size_t len = strlen(text);
    if (len) ids[n++] = naive_find(" ", 1);
    for (size_t i = 0; i < len;) {
        size_t j = i + 1;
        while (j < len && j - i < 4 && ((unsigned char)text[j] & 0xC0) == 0x80) j++;
        int id = naive_find(text + i, (int)(j - i));
        if (id >= 0) ids[n++] = id;
        else
            for (size_t b = i; b < j; b++) ids[n++] = (unsigned char)text[b] + 3;
        i = j;
    }
    char buf[256];
    for (;;) {
        float best = -1e10f;
        int at = -1, best_id = -1;
        for (int i = 1; i + 1 < n; i++) {
            int la = nv.len[ids[i]], lb = nv.len[ids[i + 1]];
            if (la + lb >= (int)sizeof buf) continue;
            memcpy(buf, nv.piece[ids[i]], (size_t)la);
            memcpy(buf + la, nv.piece[ids[i + 1]], (size_t)lb);
            int id = naive_find(buf, la + lb);
            if (id >= 0 && nv.score[id] > best) {
                best = nv.score[id];
                at = i;
                best_id = id;
            }
        }
        if (at < 0) break;
        ids[at] = best_id;
        memmove(ids + at + 1, ids + at + 2, sizeof(int32_t) * (size_t)(n - at - 2));
        n--;
    }
    return n;
}

/* ---------------------------------------------------------------- tests */

TEST(golden_prompt) {
    const char *text = "Once upon a time, there was a little dog named Max.";
    static const int32_t want[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 400, 428, 395, 392, 412, 444, 426};
    int32_t ids[128];
    int n = 0;
    CHECK_OK(msbnb_tokenizer_encode(tok, text, strlen(text), 1, 0, ids, 128, &n));
    CHECK_EQ_INT(n, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < n && i < (int)(sizeof want / sizeof want[0]); i++) CHECK_EQ_INT(ids[i], want[i]);
    /* eos and no bos */
    CHECK_OK(msbnb_tokenizer_encode(tok, text, strlen(text), 0, 1, ids, 128, &n));
    CHECK_EQ_INT(n, 17);
    CHECK_EQ_INT(ids[0], 403);
    CHECK_EQ_INT(ids[16], 2);
    /* empty text: BOS only, no dummy prefix */
    CHECK_OK(msbnb_tokenizer_encode(tok, "", 0, 1, 0, ids, 8, &n));
    CHECK_EQ_INT(n, 1);
}

/* Heap-based merging must pick exactly the pairs llama2.c's scan picks, on real text. */
TEST(matches_naive_llama2c) {
    size_t len = 0;
    char *text = (char *)test_read_file(MSBNB_SHARED_DIR "/data/tinystories_valid_head.txt", &len);
    CHECK(text != NULL);
    if (!text) return;
    /* 30 paragraphs of the validation text, plus some edge strings */
    const char *extra[] = {"a", " ", "  double  spaces ", "tabs\tand\nnewlines\n\n", "café ünïcödé ☃ 日本",
                           "\xf0\x9f\x98\x80 emoji", "<0x41> literal", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    int32_t *a = (int32_t *)malloc(sizeof(int32_t) * 8192), *b = (int32_t *)malloc(sizeof(int32_t) * 8192);
    size_t at = 0;
    int docs = 0;
    for (int k = 0; k < 30 + 8; k++) {
        char para[2048];
        if (k < 30) {
            size_t e = at;
            while (e < len && !(text[e] == '\n' && e + 1 < len && text[e + 1] == '\n')) e++;
            size_t l = e - at < sizeof para - 1 ? e - at : sizeof para - 1;
            memcpy(para, text + at, l);
            para[l] = 0;
            at = e + 2;
            if (at > len) break;
        } else {
            strcpy(para, extra[k - 30]);
        }
        int na = 0, nb = naive_encode(para, b);
        CHECK_OK(msbnb_tokenizer_encode(tok, para, strlen(para), 1, 0, a, 8192, &na));
        CHECK_MSG_(na == nb && memcmp(a, b, sizeof(int32_t) * (size_t)na) == 0, "differs on '%.60s'", para);
        docs++;
    }
    CHECK(docs == 38);
    free(a);
    free(b);
    free(text);
}

/* decode(encode(x)) == x, byte tokens included. */
TEST(round_trip) {
    const char *texts[] = {"Once upon a time, there was a little dog named Max.", "Hello\nworld!  Two  spaces.",
                           "café ☃ \xf0\x9f\x98\x80", "Lily said, \"Wow!\" and ran."};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        int32_t ids[256];
        int n = 0;
        CHECK_OK(msbnb_tokenizer_encode(tok, texts[k], strlen(texts[k]), 1, 0, ids, 256, &n));
        char out[512];
        size_t len = 0;
        for (int i = 1; i < n; i++) {
            const char *p;
            size_t l;
            CHECK_OK(msbnb_tokenizer_decode(tok, ids[i - 1], ids[i], &p, &l));
            memcpy(out + len, p, l);
            len += l;
        }
        out[len] = 0;
        CHECK_MSG_(strcmp(out, texts[k]) == 0, "'%s' -> '%s'", texts[k], out);
    }
    /* a byte token decodes to its byte */
    const char *p;
    size_t l;
    CHECK_OK(msbnb_tokenizer_decode(tok, 5, 3 + 10, &p, &l));
    CHECK(l == 1 && p[0] == '\n');
    CHECK_STATUS(msbnb_tokenizer_decode(tok, 1, 512, &p, &l), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_tokenizer_decode(tok, 1, -1, &p, &l), MSBNB_ERR_INVALID_ARG);
    int32_t ids[4];
    int n;
    CHECK_STATUS(msbnb_tokenizer_encode(tok, "long text", 9, 1, 0, ids, 4, &n), MSBNB_ERR_SHAPE);
}

/* ---------------------------------------------------------------- corrupt files */

static const char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/test_tok_%s.bin", MSBNB_BINARY_DIR, name);
    return buf;
}

static msbnb_status load_bytes(const char *name, const void *data, size_t n, int vocab) {
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    if (!f) return MSBNB_ERR_IO;
    if (n) fwrite(data, 1, n, f);
    fclose(f);
    msbnb_tokenizer *t = NULL;
    msbnb_status st = msbnb_tokenizer_load(path, vocab, &t);
    if (st != MSBNB_OK) printf("  (%s: %s)\n", name, msbnb_last_error());
    CHECK(st != MSBNB_OK || t != NULL);
    CHECK(st == MSBNB_OK || t == NULL);
    msbnb_tokenizer_free(t);
    remove(path);
    return st;
}

TEST(corrupt_files) {
    size_t len = 0;
    unsigned char *good = (unsigned char *)test_read_file(TOK_PATH, &len);
    CHECK(good != NULL);
    if (!good) return;
    CHECK_OK(load_bytes("good", good, len, 512));
    CHECK_STATUS(load_bytes("empty", good, 0, 512), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_bytes("truncated_header", good, 3, 512), MSBNB_ERR_FORMAT);
    for (size_t cut = 4; cut < len; cut += 997) CHECK_STATUS(load_bytes("truncated", good, cut, 512), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_bytes("one_short", good, len - 1, 512), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_bytes("vocab_too_big", good, len, 513), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_bytes("vocab_too_small", good, len, 511), MSBNB_ERR_FORMAT); /* trailing bytes */
    unsigned char *bad = (unsigned char *)malloc(len + 8);
    memcpy(bad, good, len);
    int32_t v = -5; /* max_token_length negative */
    memcpy(bad, &v, 4);
    CHECK_STATUS(load_bytes("neg_max_len", bad, len, 512), MSBNB_ERR_FORMAT);
    memcpy(bad, good, len);
    v = -1; /* first token length negative */
    memcpy(bad + 8, &v, 4);
    CHECK_STATUS(load_bytes("neg_len", bad, len, 512), MSBNB_ERR_FORMAT);
    v = 0x7fffffff; /* huge length */
    memcpy(bad + 8, &v, 4);
    CHECK_STATUS(load_bytes("huge_len", bad, len, 512), MSBNB_ERR_FORMAT);
    memcpy(bad, good, len);
    memset(bad + len, 0, 8);
    CHECK_STATUS(load_bytes("trailing", bad, len + 8, 512), MSBNB_ERR_FORMAT);
    msbnb_tokenizer *t = NULL;
    CHECK_STATUS(msbnb_tokenizer_load("/nonexistent/tok.bin", 512, &t), MSBNB_ERR_IO);
    CHECK_STATUS(msbnb_tokenizer_load(TOK_PATH, -1, &t), MSBNB_ERR_INVALID_ARG);
    /* vocab 0: the file is read to its end (llama2.c files store no token count) */
    CHECK_OK(msbnb_tokenizer_load(TOK_PATH, 0, &t));
    CHECK_EQ_INT(msbnb_tokenizer_vocab_size(t), 512);
    msbnb_tokenizer_free(t);
    t = NULL;
    CHECK_STATUS(msbnb_tokenizer_load(NULL, 512, &t), MSBNB_ERR_INVALID_ARG);
    msbnb_tokenizer_free(NULL);
    free(bad);
    free(good);
}

int main(void) {
    if (msbnb_tokenizer_load(TOK_PATH, 512, &tok) != MSBNB_OK || !naive_load()) {
        printf("setup: %s\n0 passed, 1 failed\n", msbnb_last_error());
        return 1;
    }
    RUN(golden_prompt);
    RUN(matches_naive_llama2c);
    RUN(round_trip);
    RUN(corrupt_files);
    msbnb_tokenizer_free(tok);
    for (int i = 0; i < nv.n; i++) free(nv.piece[i]);
    return test_report();
}
