/*
 * tok_normalize.c — normalizers (HF tokenizers' NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace,
 * Strip, Sequence) and the regex wrapper the normalizers and pre-tokenizers share.
 *
 * Unicode normalization is utf8proc's; regexes are PCRE2's (UTF + Unicode properties, JIT when the
 * build has it) — the HF library uses Oniguruma, and the patterns real tokenizers ship (\p{L},
 * \p{N}, \s, lookahead, (?i:...)) mean the same in both.
 *
 * Complexity: each step is linear in its input (utf8proc's normalization is linear; Replace scans
 * once, a regex Replace finds matches left to right); a Sequence of k steps is O(k·n).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

/* ================================================================ regex */

msbnb_status tok_regex_compile(const char *pattern, size_t len, void **out) {
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return MSBNB_FAIL(MSBNB_ERR_FORMAT, "regex %.60s: %s at offset %zu", pattern, (const char *)msg, (size_t)off);
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* no JIT in this build: the interpreter runs */
    *out = re;
    return MSBNB_OK;
}

void tok_regex_free(void *re) { pcre2_code_free((pcre2_code *)re); }

static int run_ready(tok_run *r) {
    if (r->match) return 1;
    r->mctx = pcre2_match_context_create(NULL);
    r->jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, NULL);
    r->match = pcre2_match_data_create(4, NULL);
    if (!r->mctx || !r->match) return 0;
    if (r->jit_stack) pcre2_jit_stack_assign((pcre2_match_context *)r->mctx, NULL, r->jit_stack);
    /* bound backtracking: a hostile pattern fails with an error instead of running for hours */
    pcre2_set_match_limit((pcre2_match_context *)r->mctx, 10000000);
    pcre2_set_depth_limit((pcre2_match_context *)r->mctx, 100000);
    return 1;
}

int tok_regex_find(tok_run *r, void *re, const char *s, size_t n, size_t from, size_t *ms, size_t *me) {
    if (!run_ready(r)) return -1;
    while (from <= n) {
        int rc = pcre2_match((const pcre2_code *)re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK,
                             (pcre2_match_data *)r->match, (pcre2_match_context *)r->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) return 0;
        if (rc < 0) return -1;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer((pcre2_match_data *)r->match);
        if (ov[1] > ov[0]) {
            *ms = ov[0];
            *me = ov[1];
            return 1;
        }
        /* an empty match splits nothing: look again one character further */
        from = ov[0] + 1;
        while (from < n && ((unsigned char)s[from] & 0xC0) == 0x80) from++;
    }
    return 0;
}

/* ================================================================ normalizers */

static msbnb_status norm_unicode(tok_norm_kind kind, const char *s, size_t n, tok_buf *out) {
    utf8proc_option_t opt = UTF8PROC_STABLE;
    if (kind == NORM_NFC || kind == NORM_NFKC) opt |= UTF8PROC_COMPOSE;
    else opt |= UTF8PROC_DECOMPOSE;
    if (kind == NORM_NFKC || kind == NORM_NFKD) opt |= UTF8PROC_COMPAT;
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst, opt);
    if (m < 0) {
        free(dst);
        return MSBNB_FAIL(MSBNB_ERR_INVALID_ARG, "unicode normalization: %s", utf8proc_errmsg(m));
    }
    int ok = tok_buf_put(out, dst, (size_t)m);
    free(dst);
    RETURN_IF(!ok, MSBNB_ERR_OUT_OF_MEMORY, "normalized text");
    return MSBNB_OK;
}

static msbnb_status norm_lowercase(const char *s, size_t n, tok_buf *out) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = tok_utf8_next(u + i, n - i, &cp);
        if (!l) { /* cannot happen on validated text; keep the byte */
            RETURN_IF(!tok_buf_put(out, s + i, 1), MSBNB_ERR_OUT_OF_MEMORY, "normalized text");
            i++;
            continue;
        }
        char enc[4];
        int k = tok_utf8_put((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), enc);
        RETURN_IF(!tok_buf_put(out, enc, (size_t)k), MSBNB_ERR_OUT_OF_MEMORY, "normalized text");
        i += (size_t)l;
    }
    return MSBNB_OK;
}

static msbnb_status norm_replace_literal(const tok_norm *st, const char *s, size_t n, tok_buf *out) {
    size_t i = 0, run = 0;
    if (st->a_len == 0) return tok_buf_put(out, s, n) ? MSBNB_OK : MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "text");
    while (i + st->a_len <= n) {
        if (s[i] == st->a[0] && memcmp(s + i, st->a, st->a_len) == 0) {
            RETURN_IF(!tok_buf_put(out, s + run, i - run) || !tok_buf_put(out, st->b, st->b_len),
                      MSBNB_ERR_OUT_OF_MEMORY, "normalized text");
            i += st->a_len;
            run = i;
        } else {
            i++;
        }
    }
    RETURN_IF(!tok_buf_put(out, s + run, n - run), MSBNB_ERR_OUT_OF_MEMORY, "normalized text");
    return MSBNB_OK;
}

static msbnb_status norm_replace_regex(const tok_norm *st, tok_run *r, const char *s, size_t n, tok_buf *out) {
    size_t from = 0, ms, me;
    int rc;
    while ((rc = tok_regex_find(r, st->re, s, n, from, &ms, &me)) == 1) {
        RETURN_IF(!tok_buf_put(out, s + from, ms - from) || !tok_buf_put(out, st->b, st->b_len),
                  MSBNB_ERR_OUT_OF_MEMORY, "normalized text");
        from = me;
    }
    RETURN_IF(rc < 0, MSBNB_ERR_INVALID_ARG, "normalizer regex failed on the input (match limit)");
    RETURN_IF(!tok_buf_put(out, s + from, n - from), MSBNB_ERR_OUT_OF_MEMORY, "normalized text");
    return MSBNB_OK;
}

static msbnb_status norm_strip(const tok_norm *st, const char *s, size_t n, tok_buf *out) {
    const unsigned char *u = (const unsigned char *)s;
    size_t a = 0, b = n;
    uint32_t cp;
    int l;
    while (st->left && a < b && (l = tok_utf8_next(u + a, b - a, &cp)) > 0 && tok_is_whitespace(cp)) a += (size_t)l;
    while (st->right && b > a) {
        size_t k = b - 1;
        while (k > a && (u[k] & 0xC0) == 0x80) k--;
        l = tok_utf8_next(u + k, b - k, &cp);
        if (l <= 0 || !tok_is_whitespace(cp)) break;
        b = k;
    }
    RETURN_IF(!tok_buf_put(out, s + a, b - a), MSBNB_ERR_OUT_OF_MEMORY, "normalized text");
    return MSBNB_OK;
}

static msbnb_status norm_one(const tok_norm *st, tok_run *r, const char *s, size_t n, tok_buf *out) {
    out->n = 0;
    switch (st->kind) {
    case NORM_NFC:
    case NORM_NFD:
    case NORM_NFKC:
    case NORM_NFKD:
        return norm_unicode(st->kind, s, n, out);
    case NORM_LOWERCASE:
        return norm_lowercase(s, n, out);
    case NORM_PREPEND: /* only a non-empty string gets the prefix (HF Prepend) */
        RETURN_IF((n && !tok_buf_put(out, st->a, st->a_len)) || !tok_buf_put(out, s, n), MSBNB_ERR_OUT_OF_MEMORY,
                  "normalized text");
        return MSBNB_OK;
    case NORM_REPLACE:
        return st->re ? norm_replace_regex(st, r, s, n, out) : norm_replace_literal(st, s, n, out);
    case NORM_STRIP:
        return norm_strip(st, s, n, out);
    }
    return MSBNB_FAIL(MSBNB_ERR_INTERNAL, "normalizer kind %d", (int)st->kind);
}

static msbnb_status normalize_with(const tok_norm *steps, int n_steps, tok_run *r, const char *s, size_t n,
                                   tok_buf *out) {
    out->n = 0;
    if (n_steps == 0) {
        RETURN_IF(!tok_buf_put(out, s, n), MSBNB_ERR_OUT_OF_MEMORY, "text");
        return MSBNB_OK;
    }
    /* ping-pong between out and a scratch buffer; the last step writes into out */
    tok_buf tmp = {NULL, 0, 0};
    msbnb_status st = MSBNB_OK;
    const char *cur = s;
    size_t cur_n = n;
    for (int k = 0; st == MSBNB_OK && k < n_steps; k++) {
        tok_buf *dst = ((n_steps - 1 - k) % 2 == 0) ? out : &tmp;
        st = norm_one(&steps[k], r, cur, cur_n, dst);
        cur = dst->p ? dst->p : "";
        cur_n = dst->n;
    }
    free(tmp.p);
    if (st == MSBNB_OK && !out->p) RETURN_IF(!tok_buf_put(out, "", 0), MSBNB_ERR_OUT_OF_MEMORY, "text");
    return st;
}

msbnb_status tok_normalize(const msbnb_tokenizer *t, tok_run *r, const char *s, size_t n, tok_buf *out) {
    return normalize_with(t->norm, t->n_norm, r, s, n, out);
}

msbnb_status tok_normalize_steps(const tok_norm *steps, int n_steps, const char *s, size_t n, tok_buf *out) {
    tok_run *r = tok_run_new(NULL);
    RETURN_IF(!r, MSBNB_ERR_OUT_OF_MEMORY, "scratch");
    msbnb_status st = normalize_with(steps, n_steps, r, s, n, out);
    tok_run_free(r);
    return st;
}
