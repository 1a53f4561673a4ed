/*
 * tpl_value.c — arenas, failure, and the Python-like values of the template engine: construction,
 * truth, equality and ordering, str()/repr() and json.dumps as transformers' tojson filter does it
 * (ensure_ascii=False).
 */
#include "chat/tpl_internal.h"
#include "io/io_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- failure */

void tpl_fail(tpl_env *env, msbnb_status st, const char *fmt, ...) {
    int k = 0;
    if (env->line > 0) k = snprintf(env->msg, sizeof env->msg, "line %d: ", env->line);
    if (k < 0 || (size_t)k >= sizeof env->msg) k = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(env->msg + k, sizeof env->msg - (size_t)k, fmt, ap);
    va_end(ap);
    for (char *p = env->msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    env->st = st;
    longjmp(env->jb, 1);
}

/* ---------------------------------------------------------------- arena */

struct tpl_chunk {
    tpl_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

#define TPL_CHUNK 65536

void tpl_arena_init(tpl_arena *a, tpl_env *env, size_t cap) {
    a->head = NULL;
    a->used = 0;
    a->cap = cap;
    a->env = env;
}

void tpl_arena_free(tpl_arena *a) {
    for (tpl_chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    a->head = NULL;
    a->used = 0;
}

void *tpl_alloc(tpl_arena *a, size_t bytes) {
    bytes = (bytes + 15) & ~(size_t)15;
    if (bytes == 0) bytes = 16;
    tpl_chunk *c = a->head;
    if (!c || c->size - c->used < bytes) {
        const size_t size = bytes > TPL_CHUNK / 4 ? bytes : TPL_CHUNK;
        if (size > a->cap || a->used > a->cap - size)
            tpl_fail(a->env, MSBNB_ERR_OUT_OF_MEMORY, "template needs more than %zu MiB of memory", a->cap >> 20);
        c = malloc(sizeof *c + size);
        if (!c) tpl_fail(a->env, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
        c->size = size;
        c->used = 0;
        a->used += size;
        if (size == bytes && a->head) { /* a big block: keep filling the current chunk after it */
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += bytes;
    memset(p, 0, bytes);
    return p;
}

void *tpl_alloc_array(tpl_arena *a, size_t n, size_t size) {
    size_t bytes;
    if (!msbnb__mul_ok(n, size, &bytes) || bytes > SIZE_MAX / 2)
        tpl_fail(a->env, MSBNB_ERR_OUT_OF_MEMORY, "template value too large");
    return tpl_alloc(a, bytes);
}

char *tpl_strdup(tpl_arena *a, const char *s, size_t len) {
    char *p = tpl_alloc_array(a, len + 1, 1);
    if (len) memcpy(p, s, len);
    return p;
}

/* ---------------------------------------------------------------- construction */

tpl_value tpl_undef(const tpl_str *name) {
    tpl_value v = {.t = V_UNDEF};
    v.u.s = name;
    return v;
}
tpl_value tpl_none(void) { return (tpl_value){.t = V_NONE}; }
tpl_value tpl_bool(bool b) {
    tpl_value v = {.t = V_BOOL};
    v.u.i = b;
    return v;
}
tpl_value tpl_int(int64_t i) {
    tpl_value v = {.t = V_INT};
    v.u.i = i;
    return v;
}
tpl_value tpl_float(double f) {
    tpl_value v = {.t = V_FLOAT};
    v.u.f = f;
    return v;
}
tpl_value tpl_str_value(const tpl_str *s) {
    tpl_value v = {.t = V_STR};
    v.u.s = s;
    return v;
}
tpl_value tpl_func(int fn, const tpl_value *self) {
    tpl_value v = {.t = V_FUNC, .fn = (uint16_t)fn};
    v.u.self = self;
    return v;
}
const tpl_str *tpl_str_new(tpl_arena *a, const char *s, size_t len) {
    if (len > SIZE_MAX / 2) tpl_fail(a->env, MSBNB_ERR_OUT_OF_MEMORY, "string too large");
    tpl_str *r = tpl_alloc(a, sizeof *r + len + 1);
    r->len = len;
    if (len) memcpy(r->s, s, len);
    return r;
}
tpl_value tpl_string(tpl_arena *a, const char *s, size_t len) { return tpl_str_value(tpl_str_new(a, s, len)); }
tpl_value tpl_cstring(tpl_arena *a, const char *s) { return tpl_string(a, s, strlen(s)); }

tpl_list *tpl_list_new(tpl_arena *a, size_t cap) {
    tpl_list *l = tpl_alloc(a, sizeof *l);
    l->cap = cap ? cap : 4;
    l->v = tpl_alloc_array(a, l->cap, sizeof(tpl_value));
    return l;
}
void tpl_list_push(tpl_arena *a, tpl_list *l, tpl_value v) {
    if (l->n == l->cap) {
        tpl_value *nv = tpl_alloc_array(a, l->cap * 2, sizeof(tpl_value));
        memcpy(nv, l->v, l->n * sizeof(tpl_value));
        l->v = nv;
        l->cap *= 2;
    }
    l->v[l->n++] = v;
}
tpl_value tpl_list_value(tpl_list *l, bool tuple) {
    tpl_value v = {.t = V_LIST, .tuple = tuple};
    v.u.l = l;
    return v;
}
tpl_dict *tpl_dict_new(tpl_arena *a, size_t cap) {
    tpl_dict *d = tpl_alloc(a, sizeof *d);
    d->cap = cap ? cap : 4;
    d->k = tpl_alloc_array(a, d->cap, sizeof(tpl_value));
    d->v = tpl_alloc_array(a, d->cap, sizeof(tpl_value));
    return d;
}
const tpl_value *tpl_dict_find(tpl_env *env, const tpl_dict *d, tpl_value key) {
    for (size_t i = 0; i < d->n; i++)
        if (tpl_equal(env, &d->k[i], &key, 0)) return &d->v[i];
    return NULL;
}
const tpl_value *tpl_dict_get(const tpl_dict *d, const char *key, size_t len) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == V_STR && d->k[i].u.s->len == len && !memcmp(d->k[i].u.s->s, key, len)) return &d->v[i];
    return NULL;
}
void tpl_dict_set(tpl_arena *a, tpl_dict *d, tpl_value k, tpl_value v) {
    tpl_value *old = (tpl_value *)tpl_dict_find(a->env, d, k);
    if (old) {
        *old = v;
        return;
    }
    if (d->n == d->cap) {
        tpl_value *nk = tpl_alloc_array(a, d->cap * 2, sizeof(tpl_value));
        tpl_value *nv = tpl_alloc_array(a, d->cap * 2, sizeof(tpl_value));
        memcpy(nk, d->k, d->n * sizeof(tpl_value));
        memcpy(nv, d->v, d->n * sizeof(tpl_value));
        d->k = nk, d->v = nv, d->cap *= 2;
    }
    d->k[d->n] = k;
    d->v[d->n++] = v;
}

/* ---------------------------------------------------------------- truth, equality, order */

const char *tpl_type_name(const tpl_value *v) {
    switch ((tpl_type)v->t) {
    case V_UNDEF: return "Undefined";
    case V_NONE: return "NoneType";
    case V_BOOL: return "bool";
    case V_INT: return "int";
    case V_FLOAT: return "float";
    case V_STR: return "str";
    case V_LIST: return v->tuple ? "tuple" : "list";
    case V_DICT: return "dict";
    case V_NS: return "Namespace";
    case V_FUNC: return "function";
    case V_MACRO: return "Macro";
    case V_LOOP: return "LoopContext";
    }
    return "?";
}

bool tpl_truthy(const tpl_value *v) {
    switch ((tpl_type)v->t) {
    case V_UNDEF:
    case V_NONE: return false;
    case V_BOOL:
    case V_INT: return v->u.i != 0;
    case V_FLOAT: return v->u.f != 0;
    case V_STR: return v->u.s->len > 0;
    case V_LIST: return v->u.l->n > 0;
    case V_DICT: return v->u.d->n > 0;
    default: return true;
    }
}

static bool is_num(const tpl_value *v) { return v->t == V_BOOL || v->t == V_INT || v->t == V_FLOAT; }
static double num(const tpl_value *v) { return v->t == V_FLOAT ? v->u.f : (double)v->u.i; }

static void check_depth(tpl_env *env, int depth) {
    if (depth > TPL_MAX_VALUE_DEPTH) tpl_fail(env, MSBNB_ERR_FORMAT, "values nested deeper than %d", TPL_MAX_VALUE_DEPTH);
}

bool tpl_equal(tpl_env *env, const tpl_value *a, const tpl_value *b, int depth) {
    check_depth(env, depth);
    if (is_num(a) && is_num(b)) {
        if (a->t != V_FLOAT && b->t != V_FLOAT) return a->u.i == b->u.i;
        return num(a) == num(b);
    }
    if (a->t != b->t) return false;
    switch ((tpl_type)a->t) {
    case V_UNDEF:
    case V_NONE: return true;
    case V_STR: return a->u.s->len == b->u.s->len && !memcmp(a->u.s->s, b->u.s->s, a->u.s->len);
    case V_LIST:
        if (a->tuple != b->tuple || a->u.l->n != b->u.l->n) return false;
        for (size_t i = 0; i < a->u.l->n; i++)
            if (!tpl_equal(env, &a->u.l->v[i], &b->u.l->v[i], depth + 1)) return false;
        return true;
    case V_DICT:
        if (a->u.d->n != b->u.d->n) return false;
        for (size_t i = 0; i < a->u.d->n; i++) {
            const tpl_value *o = tpl_dict_find(env, b->u.d, a->u.d->k[i]);
            if (!o || !tpl_equal(env, &a->u.d->v[i], o, depth + 1)) return false;
        }
        return true;
    case V_NS: return a->u.d == b->u.d;
    case V_FUNC: return a->fn == b->fn && a->u.self == b->u.self;
    case V_MACRO: return a->u.macro == b->u.macro;
    case V_LOOP: return a->u.loop == b->u.loop;
    default: return false;
    }
}

int tpl_compare(tpl_env *env, const tpl_value *a, const tpl_value *b, int depth) {
    check_depth(env, depth);
    if (is_num(a) && is_num(b)) {
        if (a->t != V_FLOAT && b->t != V_FLOAT) return (a->u.i > b->u.i) - (a->u.i < b->u.i);
        const double x = num(a), y = num(b);
        return (x > y) - (x < y);
    }
    if (a->t == V_STR && b->t == V_STR) { /* bytewise UTF-8 = code point order */
        const size_t n = a->u.s->len < b->u.s->len ? a->u.s->len : b->u.s->len;
        const int r = n ? memcmp(a->u.s->s, b->u.s->s, n) : 0;
        if (r) return r < 0 ? -1 : 1;
        return (a->u.s->len > b->u.s->len) - (a->u.s->len < b->u.s->len);
    }
    if (a->t == V_LIST && b->t == V_LIST) {
        const size_t n = a->u.l->n < b->u.l->n ? a->u.l->n : b->u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (tpl_equal(env, &a->u.l->v[i], &b->u.l->v[i], depth + 1)) continue;
            return tpl_compare(env, &a->u.l->v[i], &b->u.l->v[i], depth + 1);
        }
        return (a->u.l->n > b->u.l->n) - (a->u.l->n < b->u.l->n);
    }
    tpl_fail(env, MSBNB_ERR_FORMAT, "cannot order '%s' and '%s'", tpl_type_name(a), tpl_type_name(b));
}

/* ---------------------------------------------------------------- buffers */

void tpl_buf_put(tpl_arena *a, tpl_buf *b, const char *s, size_t len) {
    if (!len) return;
    if (b->limit && (len > b->limit || b->n > b->limit - len))
        tpl_fail(a->env, MSBNB_ERR_OUT_OF_MEMORY, "rendered text longer than %zu bytes", b->limit);
    if (b->cap - b->n < len) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->n < len) {
            if (cap > SIZE_MAX / 4) tpl_fail(a->env, MSBNB_ERR_OUT_OF_MEMORY, "string too large");
            cap *= 2;
        }
        char *p = tpl_alloc(a, cap);
        if (b->n) memcpy(p, b->p, b->n);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
}
void tpl_buf_putc(tpl_arena *a, tpl_buf *b, char c) { tpl_buf_put(a, b, &c, 1); }
const tpl_str *tpl_buf_str(tpl_arena *a, const tpl_buf *b) { return tpl_str_new(a, b->p, b->n); }

/* ---------------------------------------------------------------- UTF-8 */

/* Bytes of the UTF-8 sequence starting with lead byte c (1 for invalid bytes: they count as one). */
static size_t u8_width(unsigned char c) { return c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf8 ? 4 : 1; }

size_t tpl_utf8_len(const char *s, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n; i++) count += ((unsigned char)s[i] & 0xc0) != 0x80;
    return count;
}

size_t tpl_utf8_offset(const char *s, size_t n, size_t i) {
    size_t off = 0;
    for (; i > 0 && off < n; i--) {
        off++;
        while (off < n && ((unsigned char)s[off] & 0xc0) == 0x80) off++;
    }
    return off;
}

bool tpl_utf8_space(const char *s, size_t n, size_t *w) {
    const unsigned char c = (unsigned char)s[0];
    *w = 1;
    if (c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f)) return true;
    if (c < 0x80) return false;
    size_t k = u8_width(c);
    if (k > n) return false;
    uint32_t cp = k == 2 ? (c & 0x1fu) : k == 3 ? (c & 0x0fu) : (c & 0x07u);
    for (size_t i = 1; i < k; i++) cp = (cp << 6) | ((unsigned char)s[i] & 0x3fu);
    *w = k;
    return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/* ---------------------------------------------------------------- str() and repr() */

void tpl_float_repr(double f, char buf[40]) {
    if (isnan(f)) strcpy(buf, "nan");
    else if (isinf(f)) strcpy(buf, f < 0 ? "-inf" : "inf");
    else msbnb__python_float_repr(f, buf, 40); /* finite: the shortest round-trip digits, Python's layout */
}

static void put_str(tpl_arena *a, tpl_buf *out, const char *s) { tpl_buf_put(a, out, s, strlen(s)); }

static void repr_string(tpl_arena *a, tpl_buf *out, const tpl_str *s) {
    const bool has_sq = memchr(s->s, '\'', s->len) != NULL, has_dq = memchr(s->s, '"', s->len) != NULL;
    const char q = has_sq && !has_dq ? '"' : '\'';
    tpl_buf_putc(a, out, q);
    for (size_t i = 0; i < s->len; i++) {
        const unsigned char c = (unsigned char)s->s[i];
        char esc[8];
        if (c == (unsigned char)q || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            tpl_buf_put(a, out, esc, 2);
        } else if (c == '\n') {
            put_str(a, out, "\\n");
        } else if (c == '\r') {
            put_str(a, out, "\\r");
        } else if (c == '\t') {
            put_str(a, out, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            put_str(a, out, esc);
        } else {
            tpl_buf_putc(a, out, (char)c);
        }
    }
    tpl_buf_putc(a, out, q);
}

static void seq_repr(tpl_arena *a, tpl_buf *out, const tpl_value *v, int depth) {
    check_depth(a->env, depth);
    if (v->t == V_LIST) {
        tpl_buf_putc(a, out, v->tuple ? '(' : '[');
        for (size_t i = 0; i < v->u.l->n; i++) {
            if (i) put_str(a, out, ", ");
            tpl_repr(a, out, &v->u.l->v[i], depth + 1);
        }
        if (v->tuple && v->u.l->n == 1) tpl_buf_putc(a, out, ',');
        tpl_buf_putc(a, out, v->tuple ? ')' : ']');
    } else {
        if (v->t == V_NS) put_str(a, out, "<Namespace ");
        tpl_buf_putc(a, out, '{');
        for (size_t i = 0; i < v->u.d->n; i++) {
            if (i) put_str(a, out, ", ");
            tpl_repr(a, out, &v->u.d->k[i], depth + 1);
            put_str(a, out, ": ");
            tpl_repr(a, out, &v->u.d->v[i], depth + 1);
        }
        tpl_buf_putc(a, out, '}');
        if (v->t == V_NS) tpl_buf_putc(a, out, '>');
    }
}

void tpl_to_str(tpl_arena *a, tpl_buf *out, const tpl_value *v, int depth) {
    char num_buf[40];
    switch ((tpl_type)v->t) {
    case V_UNDEF: return;
    case V_NONE: put_str(a, out, "None"); return;
    case V_BOOL: put_str(a, out, v->u.i ? "True" : "False"); return;
    case V_INT: snprintf(num_buf, sizeof num_buf, "%lld", (long long)v->u.i); put_str(a, out, num_buf); return;
    case V_FLOAT: tpl_float_repr(v->u.f, num_buf); put_str(a, out, num_buf); return;
    case V_STR: tpl_buf_put(a, out, v->u.s->s, v->u.s->len); return;
    case V_LIST:
    case V_DICT:
    case V_NS: seq_repr(a, out, v, depth); return;
    case V_FUNC: put_str(a, out, "<built-in function>"); return;
    case V_MACRO: put_str(a, out, "<Macro>"); return;
    case V_LOOP: put_str(a, out, "<LoopContext>"); return;
    }
}

void tpl_repr(tpl_arena *a, tpl_buf *out, const tpl_value *v, int depth) {
    if (v->t == V_STR)
        repr_string(a, out, v->u.s);
    else
        tpl_to_str(a, out, v, depth);
}

const tpl_str *tpl_stringify(tpl_arena *a, const tpl_value *v) {
    if (v->t == V_STR) return v->u.s;
    tpl_buf b = {0};
    tpl_to_str(a, &b, v, 0);
    return tpl_buf_str(a, &b);
}

/* ---------------------------------------------------------------- JSON */

static void json_string(tpl_arena *a, tpl_buf *out, const char *s, size_t n) {
    tpl_buf_putc(a, out, '"');
    size_t run = 0; /* bytes copied as they are, flushed before each escape */
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20) snprintf(u, sizeof u, "\\u%04x", c), esc = u;
        if (!esc) continue;
        tpl_buf_put(a, out, s + run, i - run);
        put_str(a, out, esc);
        run = i + 1;
    }
    tpl_buf_put(a, out, s + run, n - run);
    tpl_buf_putc(a, out, '"');
}

static void json_newline(tpl_arena *a, tpl_buf *out, int indent, const tpl_str *indent_str, int level) {
    tpl_buf_putc(a, out, '\n');
    for (int l = 0; l < level; l++) {
        if (indent_str)
            tpl_buf_put(a, out, indent_str->s, indent_str->len);
        else
            for (int i = 0; i < indent; i++) tpl_buf_putc(a, out, ' ');
    }
}

void tpl_to_json(tpl_arena *a, tpl_buf *out, const tpl_value *v, int indent, const tpl_str *indent_str,
                 bool sort_keys, int level) {
    check_depth(a->env, level);
    const bool pretty = indent >= 0 || indent_str;
    char num_buf[40];
    switch ((tpl_type)v->t) {
    case V_NONE: put_str(a, out, "null"); return;
    case V_BOOL: put_str(a, out, v->u.i ? "true" : "false"); return;
    case V_INT: snprintf(num_buf, sizeof num_buf, "%lld", (long long)v->u.i); put_str(a, out, num_buf); return;
    case V_FLOAT:
        if (isnan(v->u.f)) put_str(a, out, "NaN");
        else if (isinf(v->u.f)) put_str(a, out, v->u.f < 0 ? "-Infinity" : "Infinity");
        else tpl_float_repr(v->u.f, num_buf), put_str(a, out, num_buf);
        return;
    case V_STR: json_string(a, out, v->u.s->s, v->u.s->len); return;
    case V_LIST: {
        const tpl_list *l = v->u.l;
        if (!l->n) {
            put_str(a, out, "[]");
            return;
        }
        tpl_buf_putc(a, out, '[');
        for (size_t i = 0; i < l->n; i++) {
            if (i) put_str(a, out, pretty ? "," : ", ");
            if (pretty) json_newline(a, out, indent, indent_str, level + 1);
            tpl_to_json(a, out, &l->v[i], indent, indent_str, sort_keys, level + 1);
        }
        if (pretty) json_newline(a, out, indent, indent_str, level);
        tpl_buf_putc(a, out, ']');
        return;
    }
    case V_DICT: {
        const tpl_dict *d = v->u.d;
        if (!d->n) {
            put_str(a, out, "{}");
            return;
        }
        size_t *order = tpl_alloc_array(a, d->n, sizeof(size_t));
        for (size_t i = 0; i < d->n; i++) {
            order[i] = i;
            const tpl_value *k = &d->k[i];
            if (k->t != V_STR && k->t != V_INT && k->t != V_BOOL && k->t != V_NONE && k->t != V_FLOAT)
                tpl_fail(a->env, MSBNB_ERR_FORMAT, "tojson: keys must be str, int, float, bool or None, not %s",
                         tpl_type_name(k));
        }
        if (sort_keys) /* insertion sort: dicts in chat data are small */
            for (size_t i = 1; i < d->n; i++)
                for (size_t j = i; j > 0 && tpl_compare(a->env, &d->k[order[j - 1]], &d->k[order[j]], 0) > 0; j--) {
                    const size_t t = order[j];
                    order[j] = order[j - 1], order[j - 1] = t;
                }
        tpl_buf_putc(a, out, '{');
        for (size_t i = 0; i < d->n; i++) {
            const tpl_value *k = &d->k[order[i]];
            if (i) put_str(a, out, pretty ? "," : ", ");
            if (pretty) json_newline(a, out, indent, indent_str, level + 1);
            if (k->t == V_STR) {
                json_string(a, out, k->u.s->s, k->u.s->len);
            } else { /* json.dumps turns other keys into their JSON spelling, quoted */
                tpl_buf kb = {0};
                tpl_to_json(a, &kb, k, -1, NULL, false, level + 1);
                json_string(a, out, kb.p, kb.n);
            }
            put_str(a, out, ": ");
            tpl_to_json(a, out, &d->v[order[i]], indent, indent_str, sort_keys, level + 1);
        }
        if (pretty) json_newline(a, out, indent, indent_str, level);
        tpl_buf_putc(a, out, '}');
        return;
    }
    default:
        tpl_fail(a->env, MSBNB_ERR_FORMAT, "tojson: object of type %s is not JSON serializable", tpl_type_name(v));
    }
}
