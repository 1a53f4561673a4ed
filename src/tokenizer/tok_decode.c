/*
 * tok_decode.c — ids back to text: the decoder chain (HF tokenizers' ByteLevel, Metaspace, Replace,
 * ByteFallback, Fuse, Strip, Sequence) over the token strings of the whole sequence, the per-token
 * bytes of the older msbnb_tokenizer_decode, and the streaming detokenizer.
 *
 * The chain works on a list of strings, each step producing the next list (as HF's decode_chain):
 * ByteLevel maps characters back to bytes and joins everything into one string (invalid UTF-8 →
 * U+FFFD); ByteFallback turns runs of "<0xXX>" tokens into their UTF-8 text (U+FFFD per byte when
 * the run is not valid UTF-8); Fuse joins; Strip removes up to `start` / `stop` copies of a
 * character at each end of every string; Replace / Metaspace rewrite each string.
 *
 * Complexity: linear in the total length of the strings per step.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

int tok_bytelevel_back(uint32_t cp); /* tok_pretokenize.c */

typedef struct {
    tok_buf buf;
    tok_spans sp;
} strlist;

static void strlist_free(strlist *l) {
    free(l->buf.p);
    free(l->sp.p);
}

static int sl_add(strlist *l, const char *s, size_t n) {
    size_t off = l->buf.n;
    return tok_buf_put(&l->buf, s, n) && tok_spans_push(&l->sp, off, n);
}

/* Append to the last string of l (which must have been added last). */
static int sl_extend(strlist *l, const char *s, size_t n) {
    if (!tok_buf_put(&l->buf, s, n)) return 0;
    l->sp.p[l->sp.n - 1].len += n;
    return 1;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static int byte_token(const char *s, size_t n) {
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int hi = hexval(s[3]), lo = hexval(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* Bytes of a byte-level token: every character through the reverse byte map; a token with a
 * character outside the map (an added token such as "<|eot_id|>" maps... only if all do) keeps its
 * UTF-8 bytes, as HF does. */
static int bytelevel_bytes(const char *s, size_t n, tok_buf *out) {
    size_t start = out->n;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = tok_utf8_next(u + i, n - i, &cp);
        int b = l > 0 ? tok_bytelevel_back(cp) : -1;
        if (b < 0) {
            out->n = start;
            return tok_buf_put(out, s, n);
        }
        unsigned char c = (unsigned char)b;
        if (!tok_buf_put(out, &c, 1)) return 0;
        i += (size_t)l;
    }
    return 1;
}

static int replace_into(const char *s, size_t n, const char *pat, size_t pl, const char *rep, size_t rl, tok_buf *out) {
    size_t i = 0, run = 0;
    while (pl > 0 && i + pl <= n) {
        if (memcmp(s + i, pat, pl) == 0) {
            if (!tok_buf_put(out, s + run, i - run) || !tok_buf_put(out, rep, rl)) return 0;
            i += pl;
            run = i;
        } else {
            i++;
        }
    }
    return tok_buf_put(out, s + run, n - run);
}

/* cont: the list continues a text begun by earlier ids (a streaming window that does not start the
 * sequence), so its first string is not the text's start: Metaspace before a joining step (ByteLevel,
 * Fuse) keeps its first token's spaces, and a Strip after one leaves the start alone. joined: such a
 * step ran. */
static int dec_step(const tok_dec *d, const strlist *in, strlist *out, int cont, int joined) {
    const char *base = in->buf.p;
    switch (d->kind) {
    case DEC_BYTELEVEL: {
        tok_buf raw = {NULL, 0, 0};
        int ok = 1;
        for (size_t i = 0; ok && i < in->sp.n; i++) ok = bytelevel_bytes(base + in->sp.p[i].off, in->sp.p[i].len, &raw);
        if (ok) ok = sl_add(out, "", 0) && (raw.n == 0 || tok_buf_put_lossy(&out->buf, raw.p, raw.n));
        if (ok) out->sp.p[0].len = out->buf.n;
        free(raw.p);
        return ok;
    }
    case DEC_FUSE: {
        if (!sl_add(out, "", 0)) return 0;
        for (size_t i = 0; i < in->sp.n; i++)
            if (!sl_extend(out, base + in->sp.p[i].off, in->sp.p[i].len)) return 0;
        return 1;
    }
    case DEC_BYTEFALLBACK: {
        size_t i = 0;
        while (i < in->sp.n) {
            if (byte_token(base + in->sp.p[i].off, in->sp.p[i].len) < 0) {
                if (!sl_add(out, base + in->sp.p[i].off, in->sp.p[i].len)) return 0;
                i++;
                continue;
            }
            size_t j = i;
            char bytes[64];
            tok_buf run = {NULL, 0, 0};
            int ok = 1;
            for (; j < in->sp.n; j++) {
                int b = byte_token(base + in->sp.p[j].off, in->sp.p[j].len);
                if (b < 0) break;
                bytes[0] = (char)b;
                if (!tok_buf_put(&run, bytes, 1)) ok = 0;
            }
            if (ok && tok_utf8_check(run.p, run.n) == run.n) {
                ok = sl_add(out, run.p, run.n);
            } else {
                for (size_t k = i; ok && k < j; k++) ok = sl_add(out, "\xEF\xBF\xBD", 3);
            }
            free(run.p);
            if (!ok) return 0;
            i = j;
        }
        return 1;
    }
    case DEC_REPLACE:
    case DEC_METASPACE:
        for (size_t i = 0; i < in->sp.n; i++) {
            const char *s = base + in->sp.p[i].off;
            size_t n = in->sp.p[i].len;
            if (!sl_add(out, "", 0)) return 0;
            size_t before = out->buf.n;
            /* Metaspace: the replacement becomes a space, except in the first token, where HF drops
             * every one of them (prepend_scheme always / first) */
            int drop = d->kind == DEC_METASPACE && i == 0 && d->prepend && (!cont || joined);
            const char *pat = d->a, *rep = d->kind == DEC_METASPACE ? " " : d->b;
            size_t pl = d->a_len, rl = d->kind == DEC_METASPACE ? (drop ? 0 : 1) : d->b_len;
            if (!replace_into(s, n, pat, pl, rep, rl, &out->buf)) return 0;
            out->sp.p[out->sp.n - 1].len = out->buf.n - before;
        }
        return 1;
    case DEC_STRIP:
        for (size_t i = 0; i < in->sp.n; i++) {
            const char *s = base + in->sp.p[i].off;
            size_t n = in->sp.p[i].len, a = 0, b = n, c = d->a_len;
            int start = i == 0 && cont && joined ? 0 : d->start;
            for (int k = 0; k < start && c > 0 && a + c <= b && memcmp(s + a, d->a, c) == 0; k++) a += c;
            for (int k = 0; k < d->stop && c > 0 && b >= a + c && memcmp(s + b - c, d->a, c) == 0; k++) b -= c;
            if (!sl_add(out, s + a, b - a)) return 0;
        }
        return 1;
    }
    return 0;
}

/* Text of ids (skip special tokens when asked) into out (appended); cont as in dec_step. */
static msbnb_status decode_into(const msbnb_tokenizer *t, const int32_t *ids, size_t n, unsigned flags, int cont,
                                tok_buf *out) {
    strlist cur = {{NULL, 0, 0}, {NULL, 0, 0}}, nxt = {{NULL, 0, 0}, {NULL, 0, 0}};
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        RETURN_IF(!tok_valid(t, ids[i]), MSBNB_ERR_INVALID_ARG, "token id %d out of range (0..%d)", (int)ids[i],
                  t->n_ids - 1);
    }
    for (size_t i = 0; ok && i < n; i++) {
        if ((flags & MSBNB_DECODE_SKIP_SPECIAL) && (t->flags[ids[i]] & TOKF_SPECIAL)) continue;
        ok = sl_add(&cur, tok_s(t, ids[i]), t->tok_len[ids[i]]);
    }
    if (t->no_decoder) { /* HF joins the tokens with spaces when there is no decoder */
        for (size_t i = 0; ok && i < cur.sp.n; i++)
            ok = (i == 0 && !cont ? 1 : tok_buf_put(out, " ", 1)) && tok_buf_put(out, cur.buf.p + cur.sp.p[i].off, cur.sp.p[i].len);
        strlist_free(&cur);
        RETURN_IF(!ok, MSBNB_ERR_OUT_OF_MEMORY, "decoded text");
        return MSBNB_OK;
    }
    int joined = 0;
    for (int k = 0; ok && k < t->n_dec; k++) {
        nxt.buf.n = 0;
        nxt.sp.n = 0;
        ok = dec_step(&t->dec[k], &cur, &nxt, cont, joined);
        joined |= t->dec[k].kind == DEC_BYTELEVEL || t->dec[k].kind == DEC_FUSE;
        strlist x = cur;
        cur = nxt;
        nxt = x;
    }
    /* the text is UTF-8 whatever the vocabulary holds (a piece may carry invalid bytes) */
    for (size_t i = 0; ok && i < cur.sp.n; i++) ok = tok_buf_put_lossy(out, cur.buf.p + cur.sp.p[i].off, cur.sp.p[i].len);
    strlist_free(&cur);
    strlist_free(&nxt);
    RETURN_IF(!ok, MSBNB_ERR_OUT_OF_MEMORY, "decoded text");
    return MSBNB_OK;
}

static msbnb_status decode_alloc(const msbnb_tokenizer *t, const int32_t *ids, size_t n, unsigned flags, int cont,
                                 char **text, size_t *len) {
    RETURN_IF(!t || (!ids && n) || !text, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *text = NULL;
    tok_buf out = {NULL, 0, 0};
    msbnb_status st = decode_into(t, ids, n, flags, cont, &out);
    if (st == MSBNB_OK && !tok_buf_put(&out, "", 0)) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "decoded text");
    if (st != MSBNB_OK) {
        free(out.p);
        return st;
    }
    *text = out.p;
    if (len) *len = out.n;
    return MSBNB_OK;
}

msbnb_status msbnb_tokenizer_decode_alloc(const msbnb_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                                          char **text, size_t *len) {
    return decode_alloc(t, ids, n, flags, 0, text, len);
}

msbnb_status msbnb_tokenizer_decode_ids(const msbnb_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                                        char *out, size_t cap, size_t *len) {
    RETURN_IF(!t || (!ids && n) || (!out && cap) || !len, MSBNB_ERR_INVALID_ARG, "NULL argument");
    char *s = NULL;
    size_t k = 0;
    TRY(msbnb_tokenizer_decode_alloc(t, ids, n, flags, &s, &k));
    *len = k;
    if (k + 1 > cap) {
        free(s);
        return MSBNB_FAIL(MSBNB_ERR_SHAPE, "decoded text needs %zu bytes, buffer holds %zu", k + 1, cap);
    }
    memcpy(out, s, k + 1);
    free(s);
    return MSBNB_OK;
}

/* ================================================================ per-token bytes */

msbnb_status tok_build_raw(msbnb_tokenizer *t) {
    tok_buf raw = {NULL, 0, 0}, a = {NULL, 0, 0}, b = {NULL, 0, 0};
    t->raw_off = (size_t *)malloc(((size_t)t->n_ids + 1) * sizeof(size_t));
    RETURN_IF(!t->raw_off, MSBNB_ERR_OUT_OF_MEMORY, "token bytes");
    int ok = 1;
    for (int32_t id = 0; ok && id < t->n_ids; id++) {
        t->raw_off[id] = raw.n;
        if (!tok_valid(t, id)) continue;
        a.n = 0;
        ok = tok_buf_put(&a, tok_s(t, id), t->tok_len[id]);
        /* the per-token part of the chain: map characters, replace, bytes; no joining or stripping */
        for (int k = 0; ok && k < t->n_dec; k++) {
            const tok_dec *d = &t->dec[k];
            b.n = 0;
            if (d->kind == DEC_BYTELEVEL) ok = bytelevel_bytes(a.p, a.n, &b);
            else if (d->kind == DEC_REPLACE) ok = replace_into(a.p, a.n, d->a, d->a_len, d->b, d->b_len, &b);
            else if (d->kind == DEC_METASPACE) ok = replace_into(a.p, a.n, d->a, d->a_len, " ", 1, &b);
            else if (d->kind == DEC_BYTEFALLBACK && byte_token(a.p, a.n) >= 0) {
                char c = (char)byte_token(a.p, a.n);
                ok = tok_buf_put(&b, &c, 1);
            } else continue;
            tok_buf x = a;
            a = b;
            b = x;
        }
        if (ok) ok = tok_buf_put(&raw, a.p, a.n);
    }
    t->raw_off[t->n_ids] = raw.n;
    free(a.p);
    free(b.p);
    t->raw = raw.p;
    RETURN_IF(!ok, MSBNB_ERR_OUT_OF_MEMORY, "token bytes");
    for (int k = 0; k < t->n_dec; k++)
        if ((t->dec[k].kind == DEC_STRIP && t->dec[k].start > 0 && t->dec[k].a_len == 1 && t->dec[k].a[0] == ' ') ||
            (t->dec[k].kind == DEC_METASPACE && t->dec[k].prepend))
            t->strip_after_bos = 1;
    return MSBNB_OK;
}

msbnb_status msbnb_tokenizer_decode(const msbnb_tokenizer *t, int32_t prev, int32_t token, const char **piece,
                                    size_t *len) {
    RETURN_IF(!t || !piece || !len, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(!tok_valid(t, token), MSBNB_ERR_INVALID_ARG, "token %d out of range 0..%d", (int)token, t->n_ids - 1);
    const char *s = t->raw ? t->raw + t->raw_off[token] : "";
    size_t n = t->raw ? t->raw_off[token + 1] - t->raw_off[token] : 0;
    if (t->strip_after_bos && prev >= 0 && prev == t->bos && n > 0 && s[0] == ' ') { /* SentencePiece's dummy prefix */
        s++;
        n--;
    }
    *piece = s;
    *len = n;
    return MSBNB_OK;
}

/* ================================================================ streaming */

/* A window of ids, ids[prefix..n): decoding it (as a continuation when ids came before it) gives a
 * text whose first emitted_len bytes were already returned. Each push decodes the window and returns
 * what extends that text, holding back what later ids may still change: a trailing run of U+FFFD (a
 * character whose bytes may still be arriving) and, under ByteFallback, the text of a trailing run of
 * byte tokens (one invalid byte later in the run turns every byte of it into U+FFFD), and what a
 * Strip after Fuse/ByteLevel may still remove (strip_stable).
 *
 * After an emission with nothing held back the window restarts at the last id when that cut provably
 * cannot change the decode: everything is emitted, the last id alone (decoded as a continuation)
 * gives a non-empty, complete text that ends the window's text, the text before it is non-empty (so
 * a Strip at the start, Metaspace's first-token rule and the no-decoder join already happened
 * there), it is no byte token (ByteFallback joins those), its text is not only Strip characters (a
 * Strip at the end cannot reach past it), and no Replace after a joining step has a pattern of more
 * than one character (a match could span the cut).
 *
 * Complexity: a push costs O(window). For real tokenizers (ByteLevel; Replace/ByteFallback/Fuse/
 * Strip; Metaspace) the window is the last id plus the held-back ids (a run of byte tokens or the
 * bytes of one character), so streaming is linear. When no cut is provable (ids that decode to
 * nothing, long runs of byte tokens or U+FFFD) the window grows and a push costs O(ids since the last
 * cut): correct, at worst quadratic in that run. */
struct msbnb_detokenizer {
    const msbnb_tokenizer *t;
    unsigned flags;
    int32_t *ids;       /* [cap] */
    size_t n, cap;
    size_t prefix;      /* the window starts here                           */
    int cont;           /* ids before prefix gave text: the window continues it */
    tok_buf out;        /* text returned by the last call                   */
    size_t emitted_len; /* bytes of decode(ids[prefix..n)) already returned */
};

msbnb_status msbnb_detokenizer_create(const msbnb_tokenizer *t, unsigned flags, msbnb_detokenizer **out) {
    RETURN_IF(!t || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = (msbnb_detokenizer *)calloc(1, sizeof **out);
    RETURN_IF(!*out, MSBNB_ERR_OUT_OF_MEMORY, "detokenizer");
    (*out)->t = t;
    (*out)->flags = flags;
    return MSBNB_OK;
}

void msbnb_detokenizer_free(msbnb_detokenizer *d) {
    if (!d) return;
    free(d->ids);
    free(d->out.p);
    free(d);
}

static int ends_incomplete(const char *s, size_t n) {
    return n >= 3 && memcmp(s + n - 3, "\xEF\xBF\xBD", 3) == 0;
}

static int has_dec(const msbnb_tokenizer *t, tok_dec_kind kind) {
    for (int k = 0; k < t->n_dec; k++)
        if (t->dec[k].kind == kind) return 1;
    return 0;
}

/* A byte token that ByteFallback joins with its neighbours into one character: never a window start. */
static int joins(const msbnb_tokenizer *t, int32_t id) {
    return byte_token(tok_s(t, id), t->tok_len[id]) >= 0 && has_dec(t, DEC_BYTEFALLBACK);
}

static int skipped(const msbnb_detokenizer *d, int32_t id) {
    return (d->flags & MSBNB_DECODE_SKIP_SPECIAL) && (d->t->flags[id] & TOKF_SPECIAL);
}

/* The window ends inside a run of byte tokens (skipped special tokens do not end a run). */
static int in_byte_run(const msbnb_detokenizer *d) {
    for (size_t i = d->n; i > d->prefix; i--)
        if (!skipped(d, d->ids[i - 1])) return joins(d->t, d->ids[i - 1]);
    return 0;
}

/* No Replace (or Metaspace) after a joining step has a pattern of more than one character. */
static int cuts_allowed(const msbnb_tokenizer *t) {
    int joined = 0;
    for (int k = 0; k < t->n_dec; k++) {
        const tok_dec *d = &t->dec[k];
        if (joined && (d->kind == DEC_REPLACE || d->kind == DEC_METASPACE)) {
            uint32_t cp;
            int l = d->a_len ? tok_utf8_next((const unsigned char *)d->a, d->a_len, &cp) : 0;
            if (l <= 0 || (size_t)l != d->a_len) return 0;
        }
        joined |= d->kind == DEC_BYTELEVEL || d->kind == DEC_FUSE;
    }
    return 1;
}

/* s is made only of copies of some Strip step's character. */
static int only_strip_chars(const msbnb_tokenizer *t, const char *s, size_t n) {
    for (int k = 0; k < t->n_dec; k++) {
        const tok_dec *d = &t->dec[k];
        if (d->kind != DEC_STRIP || d->a_len == 0 || n % d->a_len) continue;
        size_t i = 0;
        while (i < n && memcmp(s + i, d->a, d->a_len) == 0) i += d->a_len;
        if (i == n) return 1;
    }
    return 0;
}

/* Length of the part of the window's text s[0..n) that later ids cannot change through a Strip after
 * a joining step: at the start (before any cut) nothing while the text could still be the beginning
 * of what is stripped; at the end, not the trailing characters that are part of the Strip content. */
static size_t strip_stable(const msbnb_detokenizer *d, const char *s, size_t n) {
    const msbnb_tokenizer *t = d->t;
    int joined = 0;
    for (int k = 0; k < t->n_dec; k++) {
        const tok_dec *dec = &t->dec[k];
        if (joined && dec->kind == DEC_STRIP && dec->a_len > 0) {
            if (!d->cont && dec->start > 0 && n < dec->a_len && memcmp(s, dec->a, n) == 0) return 0;
            while (dec->stop > 0 && n > 0) {
                size_t c = n - 1; /* the last character s[c..n) */
                while (c > 0 && ((unsigned char)s[c] & 0xC0) == 0x80) c--;
                int inside = 0;
                for (size_t o = 0; !inside && o + (n - c) <= dec->a_len; o++) inside = memcmp(dec->a + o, s + c, n - c) == 0;
                if (!inside) break;
                n = c;
            }
        }
        joined |= dec->kind == DEC_BYTELEVEL || dec->kind == DEC_FUSE;
    }
    return n;
}

static msbnb_status detok_step(msbnb_detokenizer *d, int force, const char **text, size_t *len) {
    d->out.n = 0;
    char *all = NULL;
    size_t all_n = 0;
    TRY(decode_alloc(d->t, d->ids ? d->ids + d->prefix : NULL, d->n - d->prefix, d->flags, d->cont, &all, &all_n));
    size_t stable = all_n;
    if (!force) {
        stable = strip_stable(d, all, all_n);
        if (in_byte_run(d)) stable = d->emitted_len;
        while (stable >= 3 && stable > d->emitted_len && ends_incomplete(all, stable)) stable -= 3;
    }
    msbnb_status st = MSBNB_OK;
    if (stable > d->emitted_len) {
        if (!tok_buf_put(&d->out, all + d->emitted_len, stable - d->emitted_len))
            st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "detokenizer");
        d->emitted_len = stable;
    }
    if (st == MSBNB_OK && !force && stable == all_n && d->n - d->prefix > 1 && cuts_allowed(d->t)) {
        size_t keep = d->n - 1;
        char *ctx = NULL;
        size_t ctx_n = 0;
        st = decode_alloc(d->t, d->ids + keep, 1, d->flags, 1, &ctx, &ctx_n);
        if (st == MSBNB_OK && ctx_n > 0 && ctx_n < all_n && !ends_incomplete(ctx, ctx_n) && !joins(d->t, d->ids[keep]) &&
            !only_strip_chars(d->t, ctx, ctx_n) && memcmp(all + all_n - ctx_n, ctx, ctx_n) == 0) {
            d->prefix = keep;
            d->cont = 1;
            d->emitted_len = ctx_n;
        }
        free(ctx);
    }
    free(all);
    TRY(st);
    if (!d->out.p && !tok_buf_put(&d->out, "", 0)) return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "detokenizer");
    *text = d->out.p;
    *len = d->out.n;
    return MSBNB_OK;
}

msbnb_status msbnb_detokenizer_push(msbnb_detokenizer *d, int32_t id, const char **text, size_t *len) {
    RETURN_IF(!d || !text || !len, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(!tok_valid(d->t, id), MSBNB_ERR_INVALID_ARG, "token id %d out of range (0..%d)", (int)id,
              d->t->n_ids - 1);
    if (d->prefix > 0 && d->n == d->cap) { /* drop ids no longer needed as context */
        memmove(d->ids, d->ids + d->prefix, (d->n - d->prefix) * sizeof(int32_t));
        d->n -= d->prefix;
        d->prefix = 0;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 32;
        int32_t *v = (int32_t *)realloc(d->ids, cap * sizeof *v);
        RETURN_IF(!v, MSBNB_ERR_OUT_OF_MEMORY, "detokenizer");
        d->ids = v;
        d->cap = cap;
    }
    d->ids[d->n++] = id;
    return detok_step(d, 0, text, len);
}

msbnb_status msbnb_detokenizer_flush(msbnb_detokenizer *d, const char **text, size_t *len) {
    RETURN_IF(!d || !text || !len, MSBNB_ERR_INVALID_ARG, "NULL argument");
    TRY(detok_step(d, 1, text, len));
    d->n = d->prefix = d->emitted_len = 0;
    d->cont = 0;
    return MSBNB_OK;
}
