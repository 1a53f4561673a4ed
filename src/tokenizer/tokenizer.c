/*
 * tokenizer.c — the msbnb_tokenizer handle: finding and loading a tokenizer file (tokenizer.json,
 * tokenizer.model, llama2.c tokenizer.bin), the accessors, and the encoding pipeline:
 *
 *   text ─ added tokens split (raw) ─┬─ added token → its id
 *                                    └─ span → normalizers → added tokens split (normalized)
 *                                             → pre-tokenizers → BPE per piece → ids
 *   MSBNB_ENCODE_ADD_SPECIAL: the post-processor's ids before and after.
 *
 * Complexity: linear in the text for splitting, normalization and pre-tokenization; BPE is
 * O(w log w) per distinct piece of w characters (cached per call), so a long text costs
 * O(n log w) at worst.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenizer/tok_internal.h"

/* ================================================================ files */

msbnb_status tok_read_file(const char *path, size_t max, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) return MSBNB_ERR_NOT_FOUND; /* no message: callers probe for optional files */
        return MSBNB_FAIL(MSBNB_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    }
    RETURN_IF(!S_ISREG(sb.st_mode), MSBNB_ERR_IO, "'%s' is not a regular file", path);
    RETURN_IF((uint64_t)sb.st_size > (uint64_t)max, MSBNB_ERR_FORMAT, "'%s' is %lld bytes (more than %zu)", path,
              (long long)sb.st_size, max);
    FILE *f = fopen(path, "rb");
    RETURN_IF(!f, MSBNB_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    size_t n = (size_t)sb.st_size;
    char *buf = (char *)malloc(n + 1);
    if (!buf) {
        fclose(f);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "'%s': %zu bytes", path, n);
    }
    size_t got = n ? fread(buf, 1, n, f) : 0;
    fclose(f);
    if (got != n) {
        free(buf);
        return MSBNB_FAIL(MSBNB_ERR_IO, "'%s': read %zu of %zu bytes", path, got, n);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return MSBNB_OK;
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The tokenizer file of a directory: tokenizer.json, tokenizer.model, tokenizer.bin, tok512.bin;
 * then the llama2.c names in its parent (model folders keep hf/ beside tok512.bin). */
static int find_in_dir(const char *dir, char *out, size_t cap) {
    const char *names[] = {"tokenizer.json", "tokenizer.model", "tokenizer.bin", "tok512.bin"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(out, cap, "%s/%s", dir, names[i]);
        if (is_file(out)) return 1;
    }
    for (size_t i = 2; i < 4; i++) {
        snprintf(out, cap, "%s/../%s", dir, names[i]);
        if (is_file(out)) return 1;
    }
    return 0;
}

msbnb_status msbnb_tokenizer_find(const char *model_path, char *out, size_t cap) {
    RETURN_IF(!model_path || !out || cap == 0, MSBNB_ERR_INVALID_ARG, "NULL argument");
    char dir[4096];
    RETURN_IF(strlen(model_path) >= sizeof dir, MSBNB_ERR_INVALID_ARG, "path too long");
    snprintf(dir, sizeof dir, "%s", model_path);
    if (!is_dir(dir)) {
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
    }
    char file[4096 + 32];
    RETURN_IF(!find_in_dir(dir, file, sizeof file), MSBNB_ERR_NOT_FOUND,
              "no tokenizer.json, tokenizer.model, tokenizer.bin or tok512.bin in '%s'", dir);
    RETURN_IF(strlen(file) >= cap, MSBNB_ERR_INVALID_ARG, "path of %zu bytes does not fit in %zu", strlen(file), cap);
    memcpy(out, file, strlen(file) + 1);
    return MSBNB_OK;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* One reading of the bytes as `kind` into a new tokenizer (*out NULL on failure). */
static msbnb_status load_kind(const char *file, const char *data, size_t len, msbnb_tokenizer_kind kind,
                              int model_vocab, msbnb_tokenizer **out) {
    *out = NULL;
    msbnb_tokenizer *t = (msbnb_tokenizer *)calloc(1, sizeof *t);
    if (!t || !(t->path = (char *)malloc(strlen(file) + 1))) {
        free(t);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "tokenizer");
    }
    memcpy(t->path, file, strlen(file) + 1);
    t->bos = t->pad = t->unk_id = -1;
    t->model_vocab = model_vocab;
    t->kind = kind;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    msbnb_status st;
    if (kind == MSBNB_TOKENIZER_HF_JSON) st = tok_load_json(t, file, data, len);
    else if (kind == MSBNB_TOKENIZER_SPM) st = tok_load_spm(t, file, (const unsigned char *)data, len);
    else st = tok_load_llama2c(t, file, (const unsigned char *)data, len, model_vocab);
    if (st != MSBNB_OK) {
        tok_destroy(t);
        return st;
    }
    *out = t;
    return MSBNB_OK;
}

msbnb_status msbnb_tokenizer_load(const char *path, int model_vocab, msbnb_tokenizer **out) {
    RETURN_IF(!path || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    RETURN_IF(model_vocab < 0 || model_vocab > (1 << 24), MSBNB_ERR_INVALID_ARG, "model vocab_size %d out of range",
              model_vocab);
    char file[4096];
    if (is_dir(path)) {
        RETURN_IF(!find_in_dir(path, file, sizeof file), MSBNB_ERR_NOT_FOUND,
                  "no tokenizer.json, tokenizer.model, tokenizer.bin or tok512.bin in '%s'", path);
    } else {
        RETURN_IF(strlen(path) >= sizeof file, MSBNB_ERR_INVALID_ARG, "path too long");
        snprintf(file, sizeof file, "%s", path);
    }
    char *data = NULL;
    size_t len = 0;
    msbnb_status st = tok_read_file(file, (size_t)1 << 30, &data, &len);
    RETURN_IF(st == MSBNB_ERR_NOT_FOUND, MSBNB_ERR_IO, "cannot open '%s': no such file", file);
    TRY(st);

    /* the format: by name, else by content ('{' = JSON; a protobuf whose first field is a piece =
     * SentencePiece, which may also be a llama2.c file with max_token_length 10: both are tried) */
    size_t k = 0;
    while (k < len && (data[k] == ' ' || data[k] == '\n' || data[k] == '\r' || data[k] == '\t')) k++;
    msbnb_tokenizer_kind kinds[2];
    int n_kinds = 1;
    if (ends_with(file, ".json") || (k < len && data[k] == '{')) kinds[0] = MSBNB_TOKENIZER_HF_JSON;
    else if (ends_with(file, ".model")) kinds[0] = MSBNB_TOKENIZER_SPM;
    else if (len > 0 && (unsigned char)data[0] == 0x0A && !ends_with(file, ".bin")) {
        kinds[0] = MSBNB_TOKENIZER_SPM;
        kinds[1] = MSBNB_TOKENIZER_LLAMA2C;
        n_kinds = 2;
    } else kinds[0] = MSBNB_TOKENIZER_LLAMA2C;
    msbnb_tokenizer *t = NULL;
    char first_error[512] = "";
    for (int i = 0; i < n_kinds; i++) {
        st = load_kind(file, data, len, kinds[i], model_vocab, &t);
        if (st == MSBNB_OK || st == MSBNB_ERR_OUT_OF_MEMORY) break;
        if (i == 0) snprintf(first_error, sizeof first_error, "%s", tok_error_body(msbnb_last_error()));
    }
    free(data);
    if (st != MSBNB_OK && n_kinds == 2 && st != MSBNB_ERR_OUT_OF_MEMORY)
        return MSBNB_FAIL(st, "%s", first_error); /* the first reading's reason is the likelier one */
    TRY(st);
    if (st == MSBNB_OK) st = tok_build_added(t);
    if (st == MSBNB_OK) st = tok_build_pairs(t);
    if (st == MSBNB_OK) st = tok_build_raw(t);
    if (st == MSBNB_OK) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", file);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
        st = tok_load_special(t, dir);
    }
    if (st == MSBNB_OK && model_vocab > 0 && t->n_ids > model_vocab)
        st = MSBNB_FAIL(MSBNB_ERR_SHAPE, "'%s' has %d token ids, the model %d rows", file, t->n_ids, model_vocab);
    if (st != MSBNB_OK) {
        tok_destroy(t);
        return st;
    }
    *out = t;
    return MSBNB_OK;
}

void msbnb_tokenizer_free(msbnb_tokenizer *t) { tok_destroy(t); }

/* ================================================================ accessors */

int msbnb_tokenizer_vocab_size(const msbnb_tokenizer *t) { return t ? t->n_ids : 0; }
msbnb_tokenizer_kind msbnb_tokenizer_kind_of(const msbnb_tokenizer *t) { return t ? t->kind : MSBNB_TOKENIZER_LLAMA2C; }
const char *msbnb_tokenizer_path(const msbnb_tokenizer *t) { return t ? t->path : NULL; }
int32_t msbnb_tokenizer_bos(const msbnb_tokenizer *t) { return t ? t->bos : -1; }
int32_t msbnb_tokenizer_pad(const msbnb_tokenizer *t) { return t ? t->pad : -1; }

const int32_t *msbnb_tokenizer_eos_ids(const msbnb_tokenizer *t, int *n) {
    if (n) *n = t ? t->n_eos : 0;
    return t ? t->eos : NULL;
}

int msbnb_tokenizer_is_eos(const msbnb_tokenizer *t, int32_t id) {
    if (!t) return 0;
    for (int i = 0; i < t->n_eos; i++)
        if (t->eos[i] == id) return 1;
    return 0;
}

int msbnb_tokenizer_is_special(const msbnb_tokenizer *t, int32_t id) {
    return t && tok_valid(t, id) && (t->flags[id] & TOKF_SPECIAL) != 0;
}

const char *msbnb_tokenizer_id_to_token(const msbnb_tokenizer *t, int32_t id, size_t *len) {
    if (!t || !tok_valid(t, id)) return NULL;
    if (len) *len = t->tok_len[id];
    return tok_s(t, id);
}

int32_t msbnb_tokenizer_token_to_id(const msbnb_tokenizer *t, const char *token, size_t len) {
    if (!t || (!token && len)) return -1;
    int32_t id = tok_vocab_find(t, token, len);
    if (id >= 0) return id;
    for (int32_t i = 0; i < t->n_ids; i++) /* added / control tokens are not in the vocabulary hash */
        if ((t->flags[i] & TOKF_ADDED) && t->tok_len[i] == len && memcmp(tok_s(t, i), token, len) == 0) return i;
    return -1;
}

/* ================================================================ scratch */

tok_run *tok_run_new(const msbnb_tokenizer *t) {
    (void)t;
    return (tok_run *)calloc(1, sizeof(tok_run));
}

void tok_run_free(tok_run *r) {
    if (!r) return;
    pcre2_match_data_free((pcre2_match_data *)r->match);
    pcre2_match_context_free((pcre2_match_context *)r->mctx);
    pcre2_jit_stack_free((pcre2_jit_stack *)r->jit_stack);
    free(r->tmp1.p);
    free(r->tmp2.p);
    free(r->sp1.p);
    free(r->sp2.p);
    free(r->sym);
    free(r->heap);
    free(r->cache_slot);
    free(r->cache_keys.p);
    free(r->cache_ids.p);
    free(r->cache_ent);
    free(r);
}

/* ================================================================ encoding */

static msbnb_status push_ids(tok_ids *out, const int32_t *ids, int n) {
    for (int i = 0; i < n; i++) RETURN_IF(!tok_ids_push(out, ids[i]), MSBNB_ERR_OUT_OF_MEMORY, "ids");
    return MSBNB_OK;
}

/* Pre-tokenize and BPE one normalized span. */
static msbnb_status model_span(const msbnb_tokenizer *t, tok_run *r, const char *s, size_t n, int at_start,
                               tok_ids *out) {
    if (n == 0) return MSBNB_OK;
    TRY(tok_pretokenize(t, r, s, n, at_start, &r->tmp1, &r->sp1));
    for (size_t i = 0; i < r->sp1.n; i++) TRY(tok_bpe_word(t, r, r->tmp1.p + r->sp1.p[i].off, r->sp1.p[i].len, out));
    return MSBNB_OK;
}

static msbnb_status encode_run(const msbnb_tokenizer *t, tok_run *r, const char *text, size_t len, unsigned flags,
                               tok_ids *out) {
    int skip_special = (flags & MSBNB_ENCODE_SPLIT_SPECIAL) != 0;
    tok_segs segs = {NULL, 0, 0}, sub = {NULL, 0, 0};
    tok_buf norm = {NULL, 0, 0};
    msbnb_status st = tok_split_added(t, &t->trie_raw, text, len, skip_special, &segs);
    for (size_t i = 0; st == MSBNB_OK && i < segs.n; i++) {
        const tok_seg *g = &segs.p[i];
        if (g->added >= 0) {
            st = tok_ids_push(out, t->added[g->added].id) ? MSBNB_OK : MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "ids");
            continue;
        }
        if (g->end == g->start) continue;
        st = tok_normalize(t, r, text + g->start, g->end - g->start, &norm);
        if (st != MSBNB_OK) break;
        if (!t->has_norm_added) {
            st = model_span(t, r, norm.p, norm.n, g->start == 0, out);
            continue;
        }
        st = tok_split_added(t, &t->trie_norm, norm.p, norm.n, skip_special, &sub);
        for (size_t j = 0; st == MSBNB_OK && j < sub.n; j++) {
            const tok_seg *h = &sub.p[j];
            if (h->added >= 0)
                st = tok_ids_push(out, t->added[h->added].id) ? MSBNB_OK : MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "ids");
            else
                st = model_span(t, r, norm.p + h->start, h->end - h->start, g->start == 0 && h->start == 0, out);
        }
    }
    free(segs.p);
    free(sub.p);
    free(norm.p);
    return st;
}

/* The whole pipeline into a growable id vector. */
static msbnb_status encode_vec(const msbnb_tokenizer *t, const char *text, size_t len, unsigned flags, tok_ids *out) {
    if (!t->llama2c_compat) {
        size_t bad = tok_utf8_check(text, len);
        RETURN_IF(bad != len, MSBNB_ERR_INVALID_ARG, "text is not valid UTF-8 (byte %zu)", bad);
    }
    if (flags & MSBNB_ENCODE_ADD_SPECIAL) TRY(push_ids(out, t->post_pre, t->n_post_pre));
    tok_run *r = tok_run_new(t);
    RETURN_IF(!r, MSBNB_ERR_OUT_OF_MEMORY, "encode scratch");
    msbnb_status st = encode_run(t, r, text, len, flags, out);
    tok_run_free(r);
    TRY(st);
    if (flags & MSBNB_ENCODE_ADD_SPECIAL) TRY(push_ids(out, t->post_post, t->n_post_post));
    return MSBNB_OK;
}

msbnb_status msbnb_tokenizer_encode_alloc(const msbnb_tokenizer *t, const char *text, size_t len, unsigned flags,
                                          int32_t **ids, size_t *n_ids) {
    RETURN_IF(!t || (!text && len) || !ids || !n_ids, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *ids = NULL;
    *n_ids = 0;
    tok_ids v = {NULL, 0, 0};
    msbnb_status st = encode_vec(t, text ? text : "", len, flags, &v);
    if (st == MSBNB_OK && !v.p && !(v.p = (int32_t *)malloc(sizeof(int32_t))))
        st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "ids");
    if (st != MSBNB_OK) {
        free(v.p);
        return st;
    }
    *ids = v.p;
    *n_ids = v.n;
    return MSBNB_OK;
}

msbnb_status msbnb_tokenizer_encode_text(const msbnb_tokenizer *t, const char *text, size_t len, unsigned flags,
                                         int32_t *ids, size_t cap, size_t *n_ids) {
    RETURN_IF(!t || (!text && len) || (!ids && cap) || !n_ids, MSBNB_ERR_INVALID_ARG, "NULL argument");
    int32_t *v = NULL;
    size_t n = 0;
    TRY(msbnb_tokenizer_encode_alloc(t, text, len, flags, &v, &n));
    *n_ids = n;
    if (n > cap) {
        free(v);
        return MSBNB_FAIL(MSBNB_ERR_SHAPE, "ids holds %zu, the text needs %zu", cap, n);
    }
    if (n) memcpy(ids, v, n * sizeof(int32_t));
    free(v);
    return MSBNB_OK;
}

msbnb_status msbnb_tokenizer_encode(const msbnb_tokenizer *t, const char *text, size_t len, int bos, int eos,
                                    int32_t *ids, int cap, int *n_ids) {
    RETURN_IF(!t || (!text && len) || !ids || !n_ids, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(cap < 0 || (size_t)cap < len + 3, MSBNB_ERR_SHAPE, "ids holds %d, text of %zu bytes may need %zu", cap,
              len, len + 3);
    RETURN_IF(len > 0 && memchr(text, 0, len) != NULL, MSBNB_ERR_INVALID_ARG, "text contains a NUL byte");
    tok_ids v = {NULL, 0, 0};
    msbnb_status st = MSBNB_OK;
    if (bos && t->bos >= 0 && !tok_ids_push(&v, t->bos)) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "ids");
    if (st == MSBNB_OK) st = encode_vec(t, text ? text : "", len, 0, &v);
    if (st == MSBNB_OK && eos && t->n_eos > 0 && !tok_ids_push(&v, t->eos[0]))
        st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "ids");
    if (st == MSBNB_OK && v.n > (size_t)cap) st = MSBNB_FAIL(MSBNB_ERR_SHAPE, "ids holds %d, the text needs %zu", cap, v.n);
    if (st == MSBNB_OK) {
        if (v.n) memcpy(ids, v.p, v.n * sizeof(int32_t));
        *n_ids = (int)v.n;
    }
    free(v.p);
    return st;
}
