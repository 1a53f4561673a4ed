/*
 * tok_added.c — added tokens (HF tokenizers' AddedVocabulary): found in the input before the model
 * runs, leftmost first and longest at a position (aho-corasick's LeftmostLongest, as HF), then
 *   - single_word: kept only with no word character right before or after it;
 *   - lstrip / rstrip: the match also takes the whitespace on its left / right;
 *   - special (with MSBNB_ENCODE_SPLIT_SPECIAL): left in the text;
 * a rejected match still consumes its span (HF's non-overlapping iteration). Tokens with
 * normalized: false are matched in the raw text; normalized: true ones in each normalized span,
 * with their content normalized the same way.
 *
 * Matching walks a byte trie from every position: O(n · L) for n bytes and the longest token L,
 * i.e. linear in the text; the root's children are a 256-entry table, so positions whose byte
 * starts no token cost one lookup.
 */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

/* ================================================================ the trie */

static int trie_node(tok_trie *tr) {
    if (tr->n_nodes == tr->cap_nodes) {
        int cap = tr->cap_nodes ? 2 * tr->cap_nodes : 64;
        int32_t *f = (int32_t *)realloc(tr->first, (size_t)cap * sizeof(int32_t));
        if (!f) return -1;
        tr->first = f;
        int32_t *tm = (int32_t *)realloc(tr->term, (size_t)cap * sizeof(int32_t));
        if (!tm) return -1;
        tr->term = tm;
        tr->cap_nodes = cap;
    }
    tr->first[tr->n_nodes] = -1;
    tr->term[tr->n_nodes] = -1;
    return tr->n_nodes++;
}

static int32_t trie_child(const tok_trie *tr, int32_t node, uint8_t byte) {
    if (node == 0) return tr->root[byte];
    for (int32_t e = tr->first[node]; e >= 0; e = tr->edges[e].next)
        if (tr->edges[e].byte == byte) return tr->edges[e].node;
    return -1;
}

static int trie_insert(tok_trie *tr, const char *s, size_t n, int32_t index) {
    if (tr->n_nodes == 0) {
        for (int b = 0; b < 256; b++) tr->root[b] = -1;
        if (trie_node(tr) < 0) return 0;
    }
    int32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t byte = (uint8_t)s[i];
        int32_t c = trie_child(tr, node, byte);
        if (c < 0) {
            c = trie_node(tr);
            if (c < 0) return 0;
            if (node == 0) {
                tr->root[byte] = c;
            } else {
                if (tr->n_edges == tr->cap_edges) {
                    int cap = tr->cap_edges ? 2 * tr->cap_edges : 64;
                    tok_edge *e = (tok_edge *)realloc(tr->edges, (size_t)cap * sizeof *e);
                    if (!e) return 0;
                    tr->edges = e;
                    tr->cap_edges = cap;
                }
                tok_edge *e = &tr->edges[tr->n_edges];
                e->byte = byte;
                e->node = c;
                e->next = tr->first[node];
                tr->first[node] = tr->n_edges++;
            }
        }
        node = c;
    }
    if (tr->term[node] < 0) tr->term[node] = index; /* the first token with this content wins */
    return 1;
}

msbnb_status tok_build_added(msbnb_tokenizer *t) {
    tok_buf nb = {NULL, 0, 0};
    msbnb_status st = MSBNB_OK;
    for (int i = 0; st == MSBNB_OK && i < t->n_added; i++) {
        tok_added *a = &t->added[i];
        if (a->len == 0) continue;
        if (!a->normalized) {
            RETURN_IF(!trie_insert(&t->trie_raw, a->content, a->len, i), MSBNB_ERR_OUT_OF_MEMORY, "added tokens");
            continue;
        }
        /* matched in normalized text: normalize the content the same way (HF does) */
        nb.n = 0;
        if (a->verbatim) st = tok_buf_put(&nb, a->content, a->len) ? MSBNB_OK : MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "x");
        else st = tok_normalize_steps(t->norm, t->n_norm, a->content, a->len, &nb);
        if (st == MSBNB_OK && nb.n > 0 && !trie_insert(&t->trie_norm, nb.p, nb.n, i))
            st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "added tokens");
        t->has_norm_added = 1;
    }
    free(nb.p);
    return st;
}

/* ================================================================ splitting the input */

static int segs_push(tok_segs *v, size_t a, size_t b, int32_t added) {
    if (a == b && added < 0) return 1;
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 16;
        tok_seg *p = (tok_seg *)realloc(v->p, cap * sizeof *p);
        if (!p) return 0;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n].start = a;
    v->p[v->n].end = b;
    v->p[v->n].added = added;
    v->n++;
    return 1;
}

/* Word characters for single_word: letters, digits (Unicode) and '_'. */
static int is_word_cp(uint32_t cp) {
    if (cp == '_') return 1;
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
           (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

/* Code point ending at s[end) (start of its sequence in *at), or returns 0 if none. */
static int cp_before(const char *s, size_t lo, size_t end, uint32_t *cp, size_t *at) {
    if (end <= lo) return 0;
    size_t k = end - 1;
    while (k > lo && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    int l = tok_utf8_next((const unsigned char *)s + k, end - k, cp);
    if (l <= 0) return 0;
    *at = k;
    return 1;
}

msbnb_status tok_split_added(const msbnb_tokenizer *t, const tok_trie *tr, const char *s, size_t n, int skip_special,
                             tok_segs *out) {
    out->n = 0;
    size_t pos = 0, done = 0; /* done: end of the last accepted match (HF's start_offset) */
    const unsigned char *u = (const unsigned char *)s;
    while (tr->n_nodes > 0 && pos < n) {
        /* leftmost-longest match starting at or after pos */
        int32_t best = -1;
        size_t ms = 0, me = 0;
        for (size_t i = pos; i < n && best < 0; i++) {
            int32_t node = tr->root[u[i]];
            for (size_t j = i + 1; node >= 0; j++) {
                if (tr->term[node] >= 0) {
                    best = tr->term[node];
                    ms = i;
                    me = j;
                }
                if (j >= n) break;
                node = trie_child(tr, node, u[j]);
            }
        }
        if (best < 0) break;
        pos = me;
        const tok_added *a = &t->added[best];
        if (skip_special && a->special) continue;
        uint32_t cp;
        size_t at;
        if (a->single_word) {
            int word_before = cp_before(s, 0, ms, &cp, &at) && is_word_cp(cp);
            int l = me < n ? tok_utf8_next(u + me, n - me, &cp) : 0;
            int word_after = l > 0 && is_word_cp(cp);
            if (word_before || word_after) continue;
        }
        size_t start = ms, stop = me;
        if (a->lstrip) {
            while (cp_before(s, done, start, &cp, &at) && tok_is_whitespace(cp)) start = at;
        }
        if (a->rstrip) {
            int l;
            while (stop < n && (l = tok_utf8_next(u + stop, n - stop, &cp)) > 0 && tok_is_whitespace(cp))
                stop += (size_t)l;
            pos = stop;
        }
        RETURN_IF(!segs_push(out, done, start, -1) || !segs_push(out, start, stop, best), MSBNB_ERR_OUT_OF_MEMORY,
                  "added-token split");
        done = stop;
    }
    RETURN_IF(!segs_push(out, done, n, -1), MSBNB_ERR_OUT_OF_MEMORY, "added-token split");
    return MSBNB_OK;
}
