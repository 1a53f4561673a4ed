/*
 * tok_bpe.c — the BPE model over one pre-token, as the HF tokenizers library's BPE (and
 * SentencePiece's BPE, whose scores tok_vocab.c turned into ranks) define it:
 *
 *   1. ignore_merges: a pre-token that is a whole vocabulary entry is that token;
 *   2. the pre-token becomes one symbol per character: its vocabulary id, else (byte_fallback) the
 *      "<0xXX>" ids of its bytes, else the unk id (fuse_unk: consecutive unknowns share one);
 *   3. repeatedly the adjacent pair with the lowest merge rank (leftmost on ties) becomes its merged
 *      id, until no adjacent pair is in the merge table.
 *
 * Step 3 keeps candidate pairs in a binary heap ordered by (rank, position) over a doubly linked
 * list of symbols; a popped candidate whose symbols changed since it was pushed is discarded. Each
 * merge pushes at most two candidates, so a word of w characters costs O(w log w), not the O(w²)
 * of rescanning for the best pair.
 *
 * Words repeat (English text: a few thousand distinct words per megabyte), so results are cached per
 * call in a hash table keyed by the pre-token's bytes (bounded: past 2^18 entries nothing new is
 * added; the tokenizer itself stays read-only and shareable).
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

typedef struct {
    int32_t id;
    int32_t prev, next; /* neighbour indices, -1 at the ends */
    int unk;            /* an unknown-character symbol (fuse_unk joins runs of them)  */
} bpe_sym;

typedef struct {
    int32_t rank, left, right; /* the pair (left, its right neighbour) when pushed */
    int32_t left_id, right_id, merged;
} bpe_cand;

static int cand_before(const bpe_cand *a, const bpe_cand *b) {
    if (a->rank != b->rank) return a->rank < b->rank;
    return a->left < b->left;
}

typedef struct {
    bpe_cand *v;
    size_t n, cap;
} bpe_heap;

static int heap_push(bpe_heap *h, bpe_cand c) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        bpe_cand *v = (bpe_cand *)realloc(h->v, cap * sizeof *v);
        if (!v) return 0;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&c, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = c;
    return 1;
}

static bpe_cand heap_pop(bpe_heap *h) {
    bpe_cand top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && cand_before(&h->v[c + 1], &h->v[c])) c++;
        if (!cand_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0) h->v[i] = last;
    return top;
}

static int push_pair(const msbnb_tokenizer *t, const bpe_sym *sym, int32_t left, bpe_heap *h) {
    int32_t right = sym[left].next;
    if (left < 0 || right < 0) return 1;
    int32_t rank, merged;
    if (!tok_merge_find(t, sym[left].id, sym[right].id, &rank, &merged)) return 1;
    bpe_cand c = {rank, left, right, sym[left].id, sym[right].id, merged};
    return heap_push(h, c);
}

/* ================================================================ the word cache */

struct tok_cache_entry {
    size_t key_off, key_len; /* into r->cache_keys */
    size_t ids_off, n_ids;   /* into r->cache_ids  */
};

#define CACHE_MAX_ENTRIES (1u << 18)
#define CACHE_MAX_KEY 256

static struct tok_cache_entry *cache_find(tok_run *r, const char *s, size_t n, uint64_t hash) {
    if (!r->cache_slot) return NULL;
    for (uint64_t h = hash & r->cache_mask;; h = (h + 1) & r->cache_mask) {
        uint32_t e = r->cache_slot[h];
        if (!e) return NULL;
        struct tok_cache_entry *ce = &r->cache_ent[e - 1];
        if (ce->key_len == n && memcmp(r->cache_keys.p + ce->key_off, s, n) == 0) return ce;
    }
}

static void cache_insert(tok_run *r, const char *s, size_t n, uint64_t hash, const int32_t *ids, size_t k) {
    if (r->cache_n >= CACHE_MAX_ENTRIES || n > CACHE_MAX_KEY) return;
    if (!r->cache_slot) {
        r->cache_mask = (1u << 12) - 1;
        r->cache_slot = (uint32_t *)calloc((size_t)r->cache_mask + 1, sizeof(uint32_t));
        if (!r->cache_slot) return;
    }
    if (2 * (r->cache_n + 1) > r->cache_mask + 1) { /* grow to keep the load under 1/2 */
        uint64_t mask = 2 * r->cache_mask + 1;
        uint32_t *slot = (uint32_t *)calloc((size_t)mask + 1, sizeof(uint32_t));
        if (!slot) return;
        for (size_t e = 0; e < r->cache_n; e++) {
            struct tok_cache_entry *ce = &r->cache_ent[e];
            uint64_t h = tok_hash(r->cache_keys.p + ce->key_off, ce->key_len) & mask;
            while (slot[h]) h = (h + 1) & mask;
            slot[h] = (uint32_t)(e + 1);
        }
        free(r->cache_slot);
        r->cache_slot = slot;
        r->cache_mask = mask;
    }
    if (r->cache_n == r->cache_cap) {
        size_t cap = r->cache_cap ? 2 * r->cache_cap : 1024;
        struct tok_cache_entry *v = (struct tok_cache_entry *)realloc(r->cache_ent, cap * sizeof *v);
        if (!v) return;
        r->cache_ent = v;
        r->cache_cap = cap;
    }
    size_t key_off = r->cache_keys.n, ids_off = r->cache_ids.n;
    if (!tok_buf_put(&r->cache_keys, s, n)) return;
    for (size_t i = 0; i < k; i++)
        if (!tok_ids_push(&r->cache_ids, ids[i])) return;
    struct tok_cache_entry *ce = &r->cache_ent[r->cache_n];
    ce->key_off = key_off;
    ce->key_len = n;
    ce->ids_off = ids_off;
    ce->n_ids = k;
    uint64_t h = hash & r->cache_mask;
    while (r->cache_slot[h]) h = (h + 1) & r->cache_mask;
    r->cache_slot[h] = (uint32_t)(++r->cache_n);
}

/* ================================================================ one word */

static int push_sym(bpe_sym **sym, size_t *cap, size_t *n, int32_t id, int unk) {
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        bpe_sym *v = (bpe_sym *)realloc(*sym, c * sizeof *v);
        if (!v) return 0;
        *sym = v;
        *cap = c;
    }
    bpe_sym *s = &(*sym)[*n];
    s->id = id;
    s->prev = (int32_t)*n - 1;
    s->next = -1;
    s->unk = unk;
    if (*n > 0) (*sym)[*n - 1].next = (int32_t)*n;
    (*n)++;
    return 1;
}

static msbnb_status bpe_merge_word(const msbnb_tokenizer *t, tok_run *r, const char *s, size_t len, tok_ids *out) {
    bpe_sym *sym = (bpe_sym *)r->sym;
    size_t cap = r->sym_cap, n = 0;
    int ok = 1;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; ok && i < len;) {
        uint32_t cp;
        int l = tok_utf8_next(u + i, len - i, &cp);
        if (l == 0) l = 1; /* llama2.c input may hold stray bytes: one symbol each */
        int32_t id = tok_vocab_find(t, s + i, (size_t)l);
        if (id >= 0) {
            ok = push_sym(&sym, &cap, &n, id, 0);
        } else {
            int all = t->byte_fallback;
            for (int b = 0; all && b < l; b++) all = t->byte_id[u[i + b]] >= 0;
            if (all) {
                for (int b = 0; ok && b < l; b++) ok = push_sym(&sym, &cap, &n, t->byte_id[u[i + b]], 0);
            } else if (t->unk_id >= 0) {
                if (!(t->fuse_unk && n > 0 && sym[n - 1].unk)) ok = push_sym(&sym, &cap, &n, t->unk_id, 1);
            } /* no unk token: the character is dropped, as the HF library does */
        }
        i += (size_t)l;
    }
    r->sym = sym;
    r->sym_cap = cap;
    RETURN_IF(!ok, MSBNB_ERR_OUT_OF_MEMORY, "BPE symbols");
    if (n == 0) return MSBNB_OK;

    bpe_heap h = {(bpe_cand *)r->heap, 0, r->heap_cap};
    for (size_t i = 0; ok && i + 1 < n; i++) ok = push_pair(t, sym, (int32_t)i, &h);
    while (ok && h.n > 0) {
        bpe_cand c = heap_pop(&h);
        /* stale if either side changed since the candidate was made */
        if (sym[c.left].id != c.left_id || sym[c.left].next != c.right || sym[c.right].id != c.right_id) continue;
        sym[c.left].id = c.merged;
        sym[c.left].unk = 0;
        int32_t nx = sym[c.right].next;
        sym[c.left].next = nx;
        if (nx >= 0) sym[nx].prev = c.left;
        sym[c.right].id = -1;
        if (sym[c.left].prev >= 0) ok = push_pair(t, sym, sym[c.left].prev, &h);
        if (ok) ok = push_pair(t, sym, c.left, &h);
    }
    r->heap = h.v;
    r->heap_cap = h.cap;
    RETURN_IF(!ok, MSBNB_ERR_OUT_OF_MEMORY, "BPE merge queue");
    for (int32_t i = 0; i >= 0; i = sym[i].next)
        RETURN_IF(!tok_ids_push(out, sym[i].id), MSBNB_ERR_OUT_OF_MEMORY, "ids");
    return MSBNB_OK;
}

/* One part (cached). */
static msbnb_status bpe_part(const msbnb_tokenizer *t, tok_run *r, const char *s, size_t n, tok_ids *out) {
    uint64_t hash = tok_hash(s, n);
    struct tok_cache_entry *ce = cache_find(r, s, n, hash);
    if (ce) {
        for (size_t i = 0; i < ce->n_ids; i++)
            RETURN_IF(!tok_ids_push(out, r->cache_ids.p[ce->ids_off + i]), MSBNB_ERR_OUT_OF_MEMORY, "ids");
        return MSBNB_OK;
    }
    size_t first = out->n;
    TRY(bpe_merge_word(t, r, s, n, out));
    cache_insert(r, s, n, hash, out->p + first, out->n - first);
    return MSBNB_OK;
}

/* Is character s[i..) (code point cp, l bytes) a vocabulary token by itself? */
static int known_char(const msbnb_tokenizer *t, const char *s, uint32_t cp, int l) {
    if (cp < 128) return t->ascii_known[cp];
    return tok_vocab_find(t, s, (size_t)l) >= 0;
}

msbnb_status tok_bpe_word(const msbnb_tokenizer *t, tok_run *r, const char *s, size_t n, tok_ids *out) {
    if (n == 0) return MSBNB_OK;
    if (t->ignore_merges) {
        int32_t id = tok_vocab_find(t, s, n);
        if (id >= 0) {
            RETURN_IF(!tok_ids_push(out, id), MSBNB_ERR_OUT_OF_MEMORY, "ids");
            return MSBNB_OK;
        }
    }
    if (n <= 32 || !t->pair_key) return bpe_part(t, r, s, n, out);
    /* A long piece (SentencePiece-style tokenizers have no pre-tokenizer: the whole text is one
     * piece): cut it between two known characters that no vocabulary token holds side by side.
     * No token can span such a cut and merges never cross it, so BPE on each part gives exactly
     * the ids of BPE on the whole, and the parts (words, mostly) hit the cache. */
    const unsigned char *u = (const unsigned char *)s;
    size_t start = 0, i = 0;
    uint32_t prev = 0;
    int prev_known = 0;
    while (i < n) {
        uint32_t cp;
        int l = tok_utf8_next(u + i, n - i, &cp);
        if (l <= 0) { /* stray byte (llama2.c input): never cut next to it */
            prev_known = 0;
            i++;
            continue;
        }
        int known = known_char(t, s + i, cp, l);
        if (prev_known && known && i > start && !tok_pair_in_vocab(t, prev, cp)) {
            TRY(bpe_part(t, r, s + start, i - start, out));
            start = i;
        }
        prev = cp;
        prev_known = known;
        i += (size_t)l;
    }
    return bpe_part(t, r, s + start, n - start, out);
}
