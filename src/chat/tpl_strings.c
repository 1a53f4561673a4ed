/*
 * tpl_strings.c — Python's str operations as chat templates use them, on UTF-8 strings: strip
 * (whitespace as str.isspace, or given code points), ASCII case mapping, find, replace, split /
 * rsplit, join. Shared by the filters and the string methods (tpl_builtins.c).
 */
#include "chat/tpl_internal.h"

#include <string.h>

/* The code point s[0..w) is one of chars' code points. */
static bool in_chars(const tpl_str *chars, const char *s, size_t w) {
    for (size_t i = 0; i < chars->len;) {
        size_t cw = tpl_utf8_offset(chars->s + i, chars->len - i, 1);
        if (cw == w && !memcmp(chars->s + i, s, w)) return true;
        i += cw;
    }
    return false;
}

/* Python str.strip / lstrip / rstrip: whitespace, or the code points in chars. */
tpl_value tpl_strip(tpl_ctx *c, const tpl_str *s, const tpl_str *chars, bool left, bool right) {
    size_t b = 0, e = s->len;
    while (left && b < e) {
        size_t w;
        const bool sp = tpl_utf8_space(s->s + b, e - b, &w);
        w = tpl_utf8_offset(s->s + b, e - b, 1);
        if (chars ? !in_chars(chars, s->s + b, w) : !sp) break;
        b += w;
    }
    while (right && e > b) {
        size_t k = e - 1;
        while (k > b && ((unsigned char)s->s[k] & 0xc0) == 0x80) k--;
        size_t w;
        const bool sp = tpl_utf8_space(s->s + k, e - k, &w);
        if (chars ? !in_chars(chars, s->s + k, e - k) : !(sp && w == e - k)) break;
        e = k;
    }
    return tpl_string(c->a, s->s + b, e - b);
}

static char lower_c(char ch) { return ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch; }
static char upper_c(char ch) { return ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : ch; }
static bool alpha_c(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (unsigned char)ch >= 0x80; }

/* mode: 0 lower, 1 upper, 2 capitalize, 3 title */
tpl_value tpl_recase(tpl_ctx *c, const tpl_str *s, int mode) {
    char *o = tpl_strdup(c->a, s->s, s->len);
    bool prev_alpha = false;
    for (size_t i = 0; i < s->len; i++) {
        const char ch = o[i];
        if (mode == 0) o[i] = lower_c(ch);
        else if (mode == 1) o[i] = upper_c(ch);
        else if (mode == 2) o[i] = i == 0 ? upper_c(ch) : lower_c(ch);
        else o[i] = prev_alpha ? lower_c(ch) : upper_c(ch);
        prev_alpha = alpha_c(ch);
    }
    return tpl_string(c->a, o, s->len);
}

const char *tpl_find_sub(const tpl_str *h, const tpl_str *n, size_t from) {
    if (n->len == 0) return from <= h->len ? h->s + from : NULL;
    for (size_t i = from; i + n->len <= h->len; i++)
        if (!memcmp(h->s + i, n->s, n->len)) return h->s + i;
    return NULL;
}

tpl_value tpl_replace(tpl_ctx *c, const tpl_str *s, const tpl_str *old, const tpl_str *new_, int64_t count) {
    tpl_buf b = {0};
    size_t p = 0;
    int64_t done = 0;
    if (old->len == 0) { /* Python inserts new between every character (and at both ends) */
        const size_t n = tpl_utf8_len(s->s, s->len);
        for (size_t i = 0; i <= n; i++) {
            if (count < 0 || done < count) tpl_buf_put(c->a, &b, new_->s, new_->len), done++;
            if (i < n) {
                const size_t w = tpl_utf8_offset(s->s + p, s->len - p, 1);
                tpl_buf_put(c->a, &b, s->s + p, w);
                p += w;
            }
            tpl_check_steps(c);
        }
        return tpl_str_value(tpl_buf_str(c->a, &b));
    }
    for (const char *f; (count < 0 || done < count) && (f = tpl_find_sub(s, old, p)); done++) {
        tpl_buf_put(c->a, &b, s->s + p, (size_t)(f - s->s) - p);
        tpl_buf_put(c->a, &b, new_->s, new_->len);
        p = (size_t)(f - s->s) + old->len;
        tpl_check_steps(c);
    }
    tpl_buf_put(c->a, &b, s->s + p, s->len - p);
    return tpl_str_value(tpl_buf_str(c->a, &b));
}

/* Python str.split(sep=None, maxsplit=-1); rsplit when from_right (only differs with maxsplit). */
tpl_value tpl_split(tpl_ctx *c, const tpl_str *s, const tpl_str *sep, int64_t maxsplit, bool from_right) {
    tpl_list *l = tpl_list_new(c->a, 4);
    if (sep && sep->len == 0) tpl_fail(c->env, MSBNB_ERR_FORMAT, "split: empty separator");
    if (from_right && maxsplit >= 0) { /* rsplit with a limit: split from the end, then reverse */
        if (!sep) tpl_fail(c->env, MSBNB_ERR_UNSUPPORTED, "rsplit without a separator but with maxsplit is not supported");
        size_t e = s->len;
        int64_t done = 0;
        tpl_list *rev = tpl_list_new(c->a, 4);
        while (done < maxsplit && e >= sep->len) {
            size_t k = e - sep->len + 1, hit = SIZE_MAX;
            while (k-- > 0)
                if (!memcmp(s->s + k, sep->s, sep->len)) {
                    hit = k;
                    break;
                }
            if (hit == SIZE_MAX) break;
            tpl_list_push(c->a, rev, tpl_string(c->a, s->s + hit + sep->len, e - hit - sep->len));
            e = hit;
            done++;
            tpl_check_steps(c);
        }
        tpl_list_push(c->a, l, tpl_string(c->a, s->s, e));
        for (size_t i = rev->n; i-- > 0;) tpl_list_push(c->a, l, rev->v[i]);
        return tpl_list_value(l, false);
    }
    size_t p = 0;
    int64_t done = 0;
    if (sep) {
        for (const char *f; (maxsplit < 0 || done < maxsplit) && (f = tpl_find_sub(s, sep, p)); done++) {
            tpl_list_push(c->a, l, tpl_string(c->a, s->s + p, (size_t)(f - s->s) - p));
            p = (size_t)(f - s->s) + sep->len;
            tpl_check_steps(c);
        }
        tpl_list_push(c->a, l, tpl_string(c->a, s->s + p, s->len - p));
        return tpl_list_value(l, false);
    }
    size_t w;
    for (;;) {
        while (p < s->len && tpl_utf8_space(s->s + p, s->len - p, &w)) p += w;
        if (p >= s->len) break;
        if (maxsplit >= 0 && done >= maxsplit) { /* the rest, trailing whitespace stripped */
            tpl_value rest = tpl_strip(c, tpl_str_new(c->a, s->s + p, s->len - p), NULL, false, true);
            tpl_list_push(c->a, l, rest);
            break;
        }
        size_t e = p;
        while (e < s->len && !tpl_utf8_space(s->s + e, s->len - e, &w)) e += tpl_utf8_offset(s->s + e, s->len - e, 1);
        tpl_list_push(c->a, l, tpl_string(c->a, s->s + p, e - p));
        p = e;
        done++;
        tpl_check_steps(c);
    }
    return tpl_list_value(l, false);
}

tpl_value tpl_join(tpl_ctx *c, const tpl_list *items, const tpl_str *sep, const tpl_str *attr) {
    tpl_buf b = {0};
    for (size_t i = 0; i < items->n; i++) {
        if (i && sep) tpl_buf_put(c->a, &b, sep->s, sep->len);
        tpl_value v = items->v[i];
        if (attr) v = tpl_getattr(c, &v, attr->s, attr->len);
        tpl_to_str(c->a, &b, &v, 0);
    }
    return tpl_str_value(tpl_buf_str(c->a, &b));
}

