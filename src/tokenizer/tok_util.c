/*
 * tok_util.c — growable buffers, UTF-8, Unicode whitespace and hashing for the tokenizer engine.
 * Every function here is linear in its input.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* ================================================================ buffers */

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > ((size_t)-1) / 4 / elem) return 0;
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q) return 0;
    *p = q;
    *cap = c;
    return 1;
}

int tok_buf_put(tok_buf *b, const void *s, size_t n) {
    if (!grow((void **)&b->p, &b->cap, b->n + n + 1, 1)) return 0;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 1;
}

int tok_ids_push(tok_ids *v, int32_t id) {
    if (!grow((void **)&v->p, &v->cap, v->n + 1, sizeof(int32_t))) return 0;
    v->p[v->n++] = id;
    return 1;
}

int tok_spans_push(tok_spans *v, size_t off, size_t len) {
    if (!grow((void **)&v->p, &v->cap, v->n + 1, sizeof(tok_span))) return 0;
    v->p[v->n].off = off;
    v->p[v->n].len = len;
    v->n++;
    return 1;
}

/* ================================================================ UTF-8 */

/* Valid sequences per RFC 3629 (no overlongs, no surrogates, at most U+10FFFF). */
int tok_utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (n < (size_t)len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    v = (v << 6) | (s[1] & 0x3F);
    for (int i = 2; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

size_t tok_utf8_check(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        int l = tok_utf8_next(u + i, n - i, &cp);
        if (!l) return i;
        i += (size_t)l;
    }
    return n;
}

int tok_utf8_put(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The maximal invalid subpart at s (Unicode §3.9, "substitution of maximal subparts"): a lead byte
 * followed by the continuation bytes that still fit its allowed ranges, or a single byte. */
static size_t invalid_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    int need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 1;
    size_t k = 1;
    if (k < n && s[k] >= lo && s[k] <= hi) {
        k++;
        while ((int)k <= need && k < n && (s[k] & 0xC0) == 0x80) k++;
    }
    return k;
}

int tok_buf_put_lossy(tok_buf *b, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0; /* [run, i) is valid and not yet copied */
    while (i < n) {
        uint32_t cp;
        int l = u[i] < 0x80 ? 1 : tok_utf8_next(u + i, n - i, &cp);
        if (l) {
            i += (size_t)l;
            continue;
        }
        if (!tok_buf_put(b, s + run, i - run) || !tok_buf_put(b, "\xEF\xBF\xBD", 3)) return 0;
        i += invalid_len(u + i, n - i);
        run = i;
    }
    return tok_buf_put(b, s + run, n - run);
}

int tok_is_whitespace(uint32_t cp) {
    if (cp >= 0x09 && cp <= 0x0D) return 1;
    if (cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680) return 1;
    if (cp >= 0x2000 && cp <= 0x200A) return 1;
    return cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* ================================================================ hashing */

/* 64-bit FNV-1a over 8-byte words then bytes, with a final avalanche (splitmix64): fast on the short
 * keys here (tokens, words) and well spread for power-of-two tables. */
uint64_t tok_hash(const void *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    while (n--) h = (h ^ *p++) * 0x100000001b3ull;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

/* A C function name (an identifier with an underscore: the engine's messages never start with one)
 * followed by ": ". */
const char *tok_error_body(const char *msg) {
    size_t i = 0;
    int underscore = 0;
    while (msg[i] == '_' || (msg[i] >= 'a' && msg[i] <= 'z') || (msg[i] >= 'A' && msg[i] <= 'Z') ||
           (msg[i] >= '0' && msg[i] <= '9'))
        underscore |= msg[i++] == '_';
    return (underscore && msg[i] == ':' && msg[i + 1] == ' ') ? msg + i + 2 : msg;
}
