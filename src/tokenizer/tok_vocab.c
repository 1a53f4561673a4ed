/*
 * tok_vocab.c — the tables every loader fills: id ↔ spelling, the vocabulary hash, the merge table
 * (pair of ids → rank and merged id), byte-fallback ids, and merges derived from SentencePiece
 * scores.
 *
 * Complexity: building the vocabulary hash is O(V) expected (open addressing, load ≤ 1/2); the merge
 * table is O(M); merges from scores cost O(Σ piece length) lookups plus an O(V log V) sort.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* ================================================================ ids and spellings */

msbnb_status tok_alloc_ids(msbnb_tokenizer *t, int n_ids) {
    RETURN_IF(n_ids < 1 || n_ids > (1 << 24), MSBNB_ERR_FORMAT, "%d token ids (expected 1 .. 16777216)", n_ids);
    t->n_ids = n_ids;
    t->tok_off = (size_t *)malloc((size_t)n_ids * sizeof(size_t));
    t->tok_len = (uint32_t *)calloc((size_t)n_ids, sizeof(uint32_t));
    t->flags = (uint8_t *)calloc((size_t)n_ids, 1);
    RETURN_IF(!t->tok_off || !t->tok_len || !t->flags, MSBNB_ERR_OUT_OF_MEMORY, "%d token ids", n_ids);
    for (int i = 0; i < n_ids; i++) t->tok_off[i] = TOK_GAP;
    return MSBNB_OK;
}

msbnb_status tok_set_token(msbnb_tokenizer *t, int32_t id, const char *s, size_t len) {
    RETURN_IF(id < 0 || id >= t->n_ids, MSBNB_ERR_FORMAT, "token id %d out of range 0..%d", (int)id, t->n_ids - 1);
    RETURN_IF(t->tok_off[id] != TOK_GAP, MSBNB_ERR_FORMAT, "token id %d given twice", (int)id);
    RETURN_IF(len > 65535, MSBNB_ERR_FORMAT, "token id %d is %zu bytes long", (int)id, len);
    size_t off = t->strings.n;
    RETURN_IF(!tok_buf_put(&t->strings, s, len) || !tok_buf_put(&t->strings, "", 1), MSBNB_ERR_OUT_OF_MEMORY,
              "token strings");
    t->tok_off[id] = off;
    t->tok_len[id] = (uint32_t)len;
    return MSBNB_OK;
}

/* ================================================================ vocabulary hash */

static uint64_t table_mask(size_t n) {
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)n + 2) cap *= 2;
    return cap - 1;
}

msbnb_status tok_build_vocab(msbnb_tokenizer *t) {
    free(t->vocab_slot);
    t->vocab_mask = table_mask((size_t)t->n_ids);
    t->vocab_slot = (int32_t *)malloc((size_t)(t->vocab_mask + 1) * sizeof(int32_t));
    RETURN_IF(!t->vocab_slot, MSBNB_ERR_OUT_OF_MEMORY, "vocabulary index");
    memset(t->vocab_slot, 0xFF, (size_t)(t->vocab_mask + 1) * sizeof(int32_t));
    for (int32_t id = 0; id < t->n_ids; id++) {
        if (!tok_valid(t, id) || (t->flags[id] & TOKF_ADDED)) continue;
        const char *s = tok_s(t, id);
        size_t n = t->tok_len[id];
        uint64_t h = tok_hash(s, n) & t->vocab_mask;
        int dup = 0;
        for (;; h = (h + 1) & t->vocab_mask) {
            int32_t o = t->vocab_slot[h];
            if (o < 0) break;
            if (t->tok_len[o] == n && memcmp(tok_s(t, o), s, n) == 0) {
                dup = 1; /* the lowest id keeps the spelling */
                break;
            }
        }
        if (!dup) t->vocab_slot[h] = id;
    }
    return MSBNB_OK;
}

int32_t tok_vocab_find(const msbnb_tokenizer *t, const char *s, size_t n) {
    if (!t->vocab_slot) return -1;
    for (uint64_t h = tok_hash(s, n) & t->vocab_mask;; h = (h + 1) & t->vocab_mask) {
        int32_t o = t->vocab_slot[h];
        if (o < 0) return -1;
        if (t->tok_len[o] == n && memcmp(tok_s(t, o), s, n) == 0) return o;
    }
}

/* ================================================================ merges */

msbnb_status tok_merges_alloc(msbnb_tokenizer *t, size_t n) {
    RETURN_IF(n > ((size_t)1 << 26), MSBNB_ERR_FORMAT, "%zu merges (at most 2^26)", n);
    t->merge_mask = table_mask(n);
    size_t cap = (size_t)t->merge_mask + 1;
    t->merge_key = (uint64_t *)malloc(cap * sizeof(uint64_t));
    t->merge_rank = (int32_t *)malloc(cap * sizeof(int32_t));
    t->merge_new = (int32_t *)malloc(cap * sizeof(int32_t));
    RETURN_IF(!t->merge_key || !t->merge_rank || !t->merge_new, MSBNB_ERR_OUT_OF_MEMORY, "%zu merges", n);
    memset(t->merge_key, 0xFF, cap * sizeof(uint64_t));
    t->n_merges = 0;
    return MSBNB_OK;
}

static uint64_t pair_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

void tok_merge_add(msbnb_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t merged) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (uint64_t h = pair_hash(key) & t->merge_mask;; h = (h + 1) & t->merge_mask) {
        if (t->merge_key[h] == UINT64_MAX) {
            t->merge_key[h] = key;
            t->merge_rank[h] = rank;
            t->merge_new[h] = merged;
            t->n_merges++;
            return;
        }
        if (t->merge_key[h] == key) return; /* the first (best-ranked) occurrence wins, as in HF */
    }
}

int tok_merge_find(const msbnb_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *merged) {
    if (!t->merge_key) return 0;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (uint64_t h = pair_hash(key) & t->merge_mask;; h = (h + 1) & t->merge_mask) {
        uint64_t k = t->merge_key[h];
        if (k == UINT64_MAX) return 0;
        if (k == key) {
            *rank = t->merge_rank[h];
            *merged = t->merge_new[h];
            return 1;
        }
    }
}

/* Sort ids by score, highest first, lowest id first on ties (stable and deterministic). */
typedef struct {
    float score;
    int32_t id;
} scored_id;

static int cmp_scored(const void *x, const void *y) {
    const scored_id *a = (const scored_id *)x, *b = (const scored_id *)y;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

msbnb_status tok_merges_from_scores(msbnb_tokenizer *t, const float *score, const uint8_t *skip) {
    size_t n_cand = 0;
    for (int32_t id = 0; id < t->n_ids; id++)
        if (tok_valid(t, id) && !skip[id]) n_cand += t->tok_len[id] > 1 ? t->tok_len[id] - 1 : 0;
    scored_id *order = (scored_id *)malloc((size_t)t->n_ids * sizeof *order);
    RETURN_IF(!order, MSBNB_ERR_OUT_OF_MEMORY, "merge order");
    int n = 0;
    for (int32_t id = 0; id < t->n_ids; id++)
        if (tok_valid(t, id) && !skip[id] && t->tok_len[id] > 1) {
            order[n].score = isnan(score[id]) ? -INFINITY : score[id];
            order[n].id = id;
            n++;
        }
    qsort(order, (size_t)n, sizeof *order, cmp_scored);
    msbnb_status st = tok_merges_alloc(t, n_cand);
    int32_t rank = -1;
    for (int k = 0; st == MSBNB_OK && k < n; k++) {
        if (k == 0 || order[k].score != order[k - 1].score) rank++; /* equal scores: one rank */
        int32_t id = order[k].id;
        const char *s = tok_s(t, id);
        size_t len = t->tok_len[id];
        /* every split at a UTF-8 character boundary into two pieces of the vocabulary */
        for (size_t cut = 1; cut < len; cut++) {
            if (((unsigned char)s[cut] & 0xC0) == 0x80) continue;
            int32_t a = tok_vocab_find(t, s, cut), b = tok_vocab_find(t, s + cut, len - cut);
            if (a >= 0 && b >= 0) tok_merge_add(t, a, b, rank, id);
        }
    }
    free(order);
    return st;
}

/* ================================================================ character pairs */

static uint64_t pair_slot(uint64_t k) {
    k ^= k >> 31;
    k *= 0x9e3779b97f4a7c15ull;
    return k ^ (k >> 29);
}

static void pair_insert(msbnb_tokenizer *t, uint64_t key) {
    for (uint64_t h = pair_slot(key) & t->pair_mask;; h = (h + 1) & t->pair_mask) {
        if (t->pair_key[h] == key) return;
        if (t->pair_key[h] == UINT64_MAX) {
            t->pair_key[h] = key;
            return;
        }
    }
}

int tok_pair_in_vocab(const msbnb_tokenizer *t, uint32_t a, uint32_t b) {
    if (!t->pair_key) return 1; /* unknown: assume a token may span */
    uint64_t key = (uint64_t)a << 32 | b;
    for (uint64_t h = pair_slot(key) & t->pair_mask;; h = (h + 1) & t->pair_mask) {
        if (t->pair_key[h] == key) return 1;
        if (t->pair_key[h] == UINT64_MAX) return 0;
    }
}

msbnb_status tok_build_pairs(msbnb_tokenizer *t) {
    size_t total = 0;
    for (int32_t id = 0; id < t->n_ids; id++)
        if (tok_valid(t, id) && !(t->flags[id] & TOKF_ADDED)) total += t->tok_len[id];
    t->pair_mask = table_mask(total);
    t->pair_key = (uint64_t *)malloc((size_t)(t->pair_mask + 1) * sizeof(uint64_t));
    RETURN_IF(!t->pair_key, MSBNB_ERR_OUT_OF_MEMORY, "character pairs");
    memset(t->pair_key, 0xFF, (size_t)(t->pair_mask + 1) * sizeof(uint64_t));
    for (int32_t id = 0; id < t->n_ids; id++) {
        if (!tok_valid(t, id) || (t->flags[id] & TOKF_ADDED)) continue;
        const unsigned char *s = (const unsigned char *)tok_s(t, id);
        size_t n = t->tok_len[id], i = 0;
        uint32_t prev = 0, cp;
        int have = 0;
        while (i < n) {
            int l = tok_utf8_next(s + i, n - i, &cp);
            if (l <= 0) { /* not UTF-8 (a llama2.c byte string): splitting stays off */
                free(t->pair_key);
                t->pair_key = NULL;
                return MSBNB_OK;
            }
            if (have) pair_insert(t, (uint64_t)prev << 32 | cp);
            prev = cp;
            have = 1;
            i += (size_t)l;
        }
    }
    for (int c = 0; c < 128; c++) {
        char ch = (char)c;
        t->ascii_known[c] = tok_vocab_find(t, &ch, 1) >= 0;
    }
    return MSBNB_OK;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

void tok_find_byte_tokens(msbnb_tokenizer *t) {
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (int32_t id = 0; id < t->n_ids; id++) {
        if (!tok_valid(t, id) || t->tok_len[id] != 6) continue;
        const char *s = tok_s(t, id);
        if (s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') continue;
        int hi = hexval(s[3]), lo = hexval(s[4]);
        if (hi >= 0 && lo >= 0 && t->byte_id[hi * 16 + lo] < 0) t->byte_id[hi * 16 + lo] = id;
    }
}

/* ================================================================ teardown */

void tok_destroy(msbnb_tokenizer *t) {
    if (!t) return;
    free(t->path);
    free(t->tok_off);
    free(t->tok_len);
    free(t->flags);
    free(t->strings.p);
    free(t->raw);
    free(t->raw_off);
    free(t->vocab_slot);
    free(t->pair_key);
    free(t->merge_key);
    free(t->merge_rank);
    free(t->merge_new);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    tok_trie *tries[2] = {&t->trie_raw, &t->trie_norm};
    for (int k = 0; k < 2; k++) {
        free(tries[k]->first);
        free(tries[k]->term);
        free(tries[k]->edges);
    }
    for (int i = 0; i < t->n_norm; i++) {
        free(t->norm[i].a);
        free(t->norm[i].b);
        tok_regex_free(t->norm[i].re);
    }
    free(t->norm);
    for (int i = 0; i < t->n_pre; i++) {
        tok_regex_free(t->pre[i].re);
        free(t->pre[i].literal);
    }
    free(t->pre);
    for (int i = 0; i < t->n_dec; i++) {
        free(t->dec[i].a);
        free(t->dec[i].b);
    }
    free(t->dec);
    free(t->post_pre);
    free(t->post_post);
    free(t->eos);
    free(t);
}
