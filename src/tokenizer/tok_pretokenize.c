/*
 * tok_pretokenize.c — pre-tokenizers (HF tokenizers' Split, ByteLevel, Metaspace, Digits,
 * WhitespaceSplit, Sequence): a text becomes a list of pieces; the BPE model runs on each piece.
 *
 * Each step reads the pieces of the previous one from one buffer and writes its pieces into
 * another (ping-pong), so a step may rewrite bytes (ByteLevel maps every byte to a printable
 * character, Metaspace turns spaces into "▁"). Empty pieces are dropped, as HF does.
 *
 * Complexity: linear per step in the text length for the regexes real tokenizers use (PCRE2 JIT,
 * with a match limit against pathological patterns); the byte map is a table lookup.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

/* ================================================================ GPT-2's byte ↔ character map */

/* Bytes that are printable and not whitespace keep their code point; the other 68 (0-32, 127-160,
 * 173) take code points 256, 257, ... in byte order, so every byte has a visible character. */
static int byte_cp(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    int k = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) k++;
    return 256 + k;
}

typedef struct {
    char s[256][2];
    uint8_t len[256];
    int16_t back[324]; /* code point -> byte, -1 for none */
} byte_map;

static byte_map the_map;
static pthread_once_t the_map_once = PTHREAD_ONCE_INIT;

static void build_bytemap(void) {
    for (int c = 0; c < 324; c++) the_map.back[c] = -1;
    for (int b = 0; b < 256; b++) {
        int cp = byte_cp(b);
        char enc[4];
        int l = tok_utf8_put((uint32_t)cp, enc);
        memcpy(the_map.s[b], enc, 2);
        the_map.len[b] = (uint8_t)l;
        the_map.back[cp] = (int16_t)b;
    }
}

/* Built once per process (pthread_once: tokenizers may be used from several threads at once). */
static const byte_map *bytemap(void) {
    pthread_once(&the_map_once, build_bytemap);
    return &the_map;
}

int tok_bytelevel_back(uint32_t cp) { return cp < 324 ? bytemap()->back[cp] : -1; }

/* ================================================================ splitting */

typedef struct {
    size_t a, b;
    int match;
} part;

typedef struct {
    part *p;
    size_t n, cap;
} parts;

static int parts_push(parts *v, size_t a, size_t b, int match) {
    if (a == b) return 1;
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 64;
        part *q = (part *)realloc(v->p, cap * sizeof *q);
        if (!q) return 0;
        v->p = q;
        v->cap = cap;
    }
    v->p[v->n].a = a;
    v->p[v->n].b = b;
    v->p[v->n].match = match;
    v->n++;
    return 1;
}

/* Emit the pieces of one split per HF's SplitDelimiterBehavior (the same folds as its
 * NormalizedString::split). ps holds matches and gaps in order; it is rewritten in place. */
static int emit_behavior(parts *ps, tok_split_behavior beh, int invert, const char *s, tok_buf *out,
                         tok_spans *spans) {
    size_t m = 0; /* pieces kept so far, in ps->p[0..m) */
    int prev = 0;
    if (beh == SPLIT_MERGED_NEXT) { /* the fold runs right to left */
        for (size_t i = 0, j = ps->n ? ps->n - 1 : 0; i < ps->n / 2; i++, j--) {
            part x = ps->p[i];
            ps->p[i] = ps->p[j];
            ps->p[j] = x;
        }
    }
    for (size_t i = 0; i < ps->n; i++) {
        part x = ps->p[i];
        int is = x.match ^ invert;
        switch (beh) {
        case SPLIT_REMOVED:
            if (!is) ps->p[m++] = x;
            break;
        case SPLIT_ISOLATED:
            ps->p[m++] = x;
            break;
        case SPLIT_MERGED_PREV:
            if (is && !prev && m > 0) ps->p[m - 1].b = x.b;
            else ps->p[m++] = x;
            break;
        case SPLIT_MERGED_NEXT:
            if (is && !prev && m > 0) ps->p[m - 1].a = x.a;
            else ps->p[m++] = x;
            break;
        case SPLIT_CONTIGUOUS:
            if (is == prev && m > 0) ps->p[m - 1].b = x.b;
            else ps->p[m++] = x;
            break;
        }
        prev = is;
    }
    if (beh == SPLIT_MERGED_NEXT) {
        for (size_t i = 0, j = m ? m - 1 : 0; i < m / 2; i++, j--) {
            part x = ps->p[i];
            ps->p[i] = ps->p[j];
            ps->p[j] = x;
        }
    }
    for (size_t i = 0; i < m; i++) {
        size_t a = ps->p[i].a, b = ps->p[i].b;
        if (b <= a) continue;
        if (!tok_spans_push(spans, out->n, b - a) || !tok_buf_put(out, s + a, b - a)) return 0;
    }
    return 1;
}

/* Matches of a regex / literal / character class over s[0..n) with the gaps between them. */
static int find_parts_regex(tok_run *r, void *re, const char *s, size_t n, parts *ps) {
    size_t from = 0, ms, me;
    int rc;
    while ((rc = tok_regex_find(r, re, s, n, from, &ms, &me)) == 1) {
        if (!parts_push(ps, from, ms, 0) || !parts_push(ps, ms, me, 1)) return -2;
        from = me;
    }
    if (rc < 0) return -1;
    return parts_push(ps, from, n, 0) ? 0 : -2;
}

static int find_parts_literal(const char *lit, size_t ll, const char *s, size_t n, parts *ps) {
    size_t i = 0, run = 0;
    while (ll > 0 && i + ll <= n) {
        if (memcmp(s + i, lit, ll) == 0) {
            if (!parts_push(ps, run, i, 0) || !parts_push(ps, i, i + ll, 1)) return -2;
            i += ll;
            run = i;
        } else {
            i++;
        }
    }
    return parts_push(ps, run, n, 0) ? 0 : -2;
}

static int is_numeric(uint32_t cp) {
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

/* Each character for which pred holds is a matching part; the characters between are gaps. */
static int find_parts_class(int (*pred)(uint32_t), const char *s, size_t n, parts *ps) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        int l = tok_utf8_next(u + i, n - i, &cp);
        if (l <= 0) l = 1;
        int m = pred(cp);
        if (!m && ps->n > 0 && !ps->p[ps->n - 1].match && ps->p[ps->n - 1].b == i) ps->p[ps->n - 1].b = i + (size_t)l;
        else if (!parts_push(ps, i, i + (size_t)l, m)) return -2; /* runs of non-matches are one part (HF) */
        i += (size_t)l;
    }
    return 0;
}

/* ================================================================ the steps */

static msbnb_status step(const msbnb_tokenizer *t, const tok_pre *pt, tok_run *r, const tok_buf *in,
                         const tok_spans *in_sp, int at_start, tok_buf *out, tok_spans *out_sp) {
    parts ps = {NULL, 0, 0};
    msbnb_status st = MSBNB_OK;
    const byte_map *bm = pt->kind == PRE_BYTELEVEL ? bytemap() : NULL;
    tok_buf tmp = {NULL, 0, 0};
    tok_spans tsp = {NULL, 0, 0};
    for (size_t k = 0; st == MSBNB_OK && k < in_sp->n; k++) {
        const char *s = in->p + in_sp->p[k].off;
        size_t n = in_sp->p[k].len;
        ps.n = 0;
        int rc = 0;
        switch (pt->kind) {
        case PRE_SPLIT:
            rc = pt->re ? find_parts_regex(r, pt->re, s, n, &ps) : find_parts_literal(pt->literal, pt->literal_len, s, n, &ps);
            if (rc == 0 && !emit_behavior(&ps, pt->behavior, pt->invert, s, out, out_sp)) rc = -2;
            break;
        case PRE_DIGITS:
            rc = find_parts_class(is_numeric, s, n, &ps);
            if (rc == 0 && !emit_behavior(&ps, pt->individual ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS, 0, s, out, out_sp))
                rc = -2;
            break;
        case PRE_WS_SPLIT:
            rc = find_parts_class(tok_is_whitespace, s, n, &ps);
            if (rc == 0 && !emit_behavior(&ps, SPLIT_REMOVED, 0, s, out, out_sp)) rc = -2;
            break;
        case PRE_BYTELEVEL: {
            /* optional prefix space, the GPT-2 split, then every byte to its character */
            tmp.n = 0;
            tsp.n = 0;
            if (pt->add_prefix_space && (n == 0 || s[0] != ' ') && !tok_buf_put(&tmp, " ", 1)) rc = -2;
            if (rc == 0 && !tok_buf_put(&tmp, s, n)) rc = -2;
            if (rc == 0) {
                if (pt->re) {
                    rc = find_parts_regex(r, pt->re, tmp.p, tmp.n, &ps);
                    for (size_t i = 0; rc == 0 && i < ps.n; i++)
                        if (!tok_spans_push(&tsp, ps.p[i].a, ps.p[i].b - ps.p[i].a)) rc = -2;
                } else if (!tok_spans_push(&tsp, 0, tmp.n)) {
                    rc = -2;
                }
            }
            for (size_t i = 0; rc == 0 && i < tsp.n; i++) {
                if (tsp.p[i].len == 0) continue;
                size_t start = out->n;
                const unsigned char *u = (const unsigned char *)tmp.p + tsp.p[i].off;
                for (size_t j = 0; rc == 0 && j < tsp.p[i].len; j++)
                    if (!tok_buf_put(out, bm->s[u[j]], bm->len[u[j]])) rc = -2;
                if (rc == 0 && !tok_spans_push(out_sp, start, out->n - start)) rc = -2;
            }
            break;
        }
        case PRE_METASPACE: {
            /* spaces become the replacement; a prefix replacement per the scheme; split before each */
            size_t start = out->n;
            int first = at_start && k == 0 && in_sp->p[k].off == 0;
            /* no prefix when the piece already starts with one, spaces counted (they become one) */
            int pre = (pt->prepend == PREPEND_ALWAYS || (pt->prepend == PREPEND_FIRST && first)) &&
                      !(n > 0 && s[0] == ' ') &&
                      !(n >= pt->replacement_len && memcmp(s, pt->replacement, pt->replacement_len) == 0);
            if (pre && !tok_buf_put(out, pt->replacement, pt->replacement_len)) rc = -2;
            for (size_t j = 0; rc == 0 && j < n; j++)
                if (!(s[j] == ' ' ? tok_buf_put(out, pt->replacement, pt->replacement_len) : tok_buf_put(out, s + j, 1)))
                    rc = -2;
            if (rc != 0) break;
            if (!pt->split) {
                if (out->n > start && !tok_spans_push(out_sp, start, out->n - start)) rc = -2;
                break;
            }
            /* MergedWithNext on the replacement: a piece starts at every replacement character */
            size_t a = start;
            for (size_t j = start; rc == 0 && j + pt->replacement_len <= out->n; j++) {
                if (j > a && memcmp(out->p + j, pt->replacement, pt->replacement_len) == 0) {
                    if (!tok_spans_push(out_sp, a, j - a)) rc = -2;
                    a = j;
                }
            }
            if (rc == 0 && out->n > a && !tok_spans_push(out_sp, a, out->n - a)) rc = -2;
            break;
        }
        }
        if (rc == -1) st = MSBNB_FAIL(MSBNB_ERR_INVALID_ARG, "pre-tokenizer regex failed on the input (match limit)");
        else if (rc < 0) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "pre-tokenizer pieces");
    }
    free(ps.p);
    free(tmp.p);
    free(tsp.p);
    (void)t;
    return st;
}

msbnb_status tok_pretokenize(const msbnb_tokenizer *t, tok_run *r, const char *s, size_t n, int at_start,
                             tok_buf *store, tok_spans *pieces) {
    store->n = 0;
    pieces->n = 0;
    RETURN_IF(!tok_buf_put(store, s, n), MSBNB_ERR_OUT_OF_MEMORY, "text");
    if (n > 0) RETURN_IF(!tok_spans_push(pieces, 0, n), MSBNB_ERR_OUT_OF_MEMORY, "pieces");
    tok_buf *bufs[2] = {store, &r->tmp2};
    tok_spans *sps[2] = {pieces, &r->sp2};
    int cur = 0;
    for (int k = 0; k < t->n_pre; k++) {
        int nx = 1 - cur;
        bufs[nx]->n = 0;
        sps[nx]->n = 0;
        TRY(step(t, &t->pre[k], r, bufs[cur], sps[cur], at_start, bufs[nx], sps[nx]));
        cur = nx;
    }
    if (cur != 0) { /* results end in store / pieces */
        tok_buf tb = *store;
        *store = r->tmp2;
        r->tmp2 = tb;
        tok_spans ts = *pieces;
        *pieces = r->sp2;
        r->sp2 = ts;
    }
    return MSBNB_OK;
}
