/*
 * tpl_builtins.c — what a template can call: Jinja's filters and tests (jinja2/filters.py,
 * jinja2/tests.py) as far as chat templates use them, transformers' globals (raise_exception,
 * strftime_now) and tojson (json.dumps, ensure_ascii=False), Jinja's range / namespace / dict,
 * the non-mutating methods of str, dict and list (the sandbox refuses the mutating ones), and
 * the fields of `loop`. Case mapping (upper, lower, title, capitalize) is ASCII only.
 */
#define _POSIX_C_SOURCE 200809L /* localtime_r */
#include "chat/tpl_internal.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- names */

enum {
    F_ABS, F_ATTR, F_CAPITALIZE, F_DEFAULT, F_DICTSORT, F_ESCAPE, F_FIRST, F_FLOAT, F_INDENT, F_INT, F_ITEMS,
    F_JOIN, F_LAST, F_LENGTH, F_LIST, F_LOWER, F_MAP, F_MAX, F_MIN, F_REJECT, F_REJECTATTR, F_REPLACE,
    F_REVERSE, F_ROUND, F_SAFE, F_SELECT, F_SELECTATTR, F_SORT, F_STRING, F_SUM, F_TITLE, F_TOJSON, F_TRIM,
    F_UNIQUE, F_UPPER, F_WORDCOUNT
};
static const struct {
    const char *name;
    int id;
} filters[] = {{"abs", F_ABS},         {"attr", F_ATTR},       {"capitalize", F_CAPITALIZE}, {"default", F_DEFAULT},
               {"d", F_DEFAULT},       {"dictsort", F_DICTSORT}, {"escape", F_ESCAPE},     {"e", F_ESCAPE},
               {"first", F_FIRST},     {"float", F_FLOAT},     {"indent", F_INDENT},         {"int", F_INT},
               {"items", F_ITEMS},     {"join", F_JOIN},       {"last", F_LAST},             {"length", F_LENGTH},
               {"count", F_LENGTH},    {"list", F_LIST},       {"lower", F_LOWER},           {"map", F_MAP},
               {"max", F_MAX},         {"min", F_MIN},         {"reject", F_REJECT},         {"rejectattr", F_REJECTATTR},
               {"replace", F_REPLACE}, {"reverse", F_REVERSE}, {"round", F_ROUND},           {"safe", F_SAFE},
               {"select", F_SELECT},   {"selectattr", F_SELECTATTR}, {"sort", F_SORT},       {"string", F_STRING},
               {"sum", F_SUM},         {"title", F_TITLE},     {"tojson", F_TOJSON},         {"trim", F_TRIM},
               {"unique", F_UNIQUE},   {"upper", F_UPPER},     {"wordcount", F_WORDCOUNT}};

enum {
    TS_BOOLEAN, TS_CALLABLE, TS_DEFINED, TS_DIVISIBLEBY, TS_EQ, TS_EVEN, TS_FALSE, TS_FLOAT, TS_GE, TS_GT, TS_IN, TS_INTEGER,
    TS_ITERABLE, TS_LE, TS_LOWER, TS_LT, TS_MAPPING, TS_NE, TS_NONE, TS_NUMBER, TS_ODD, TS_SAMEAS, TS_SEQUENCE, TS_STRING,
    TS_TRUE, TS_UNDEFINED, TS_UPPER
};
static const struct {
    const char *name;
    int id;
} tests[] = {{"boolean", TS_BOOLEAN}, {"callable", TS_CALLABLE}, {"defined", TS_DEFINED}, {"divisibleby", TS_DIVISIBLEBY},
             {"eq", TS_EQ},           {"equalto", TS_EQ},         {"==", TS_EQ},           {"even", TS_EVEN},
             {"false", TS_FALSE},     {"float", TS_FLOAT},        {"ge", TS_GE},           {">=", TS_GE},
             {"gt", TS_GT},           {"greaterthan", TS_GT},     {">", TS_GT},            {"in", TS_IN},
             {"integer", TS_INTEGER}, {"iterable", TS_ITERABLE},  {"le", TS_LE},           {"<=", TS_LE},
             {"lower", TS_LOWER},     {"lt", TS_LT},              {"lessthan", TS_LT},     {"<", TS_LT},
             {"mapping", TS_MAPPING}, {"ne", TS_NE},              {"!=", TS_NE},           {"none", TS_NONE},
             {"number", TS_NUMBER},   {"odd", TS_ODD},            {"sameas", TS_SAMEAS},   {"sequence", TS_SEQUENCE},
             {"string", TS_STRING},   {"true", TS_TRUE},          {"undefined", TS_UNDEFINED}, {"upper", TS_UPPER}};

/* Functions: globals first, then methods (bound to a receiver through V_FUNC's self). */
enum {
    G_RANGE, G_NAMESPACE, G_RAISE, G_STRFTIME, G_DICT, G_COUNT_,
    M_STRIP = G_COUNT_, M_LSTRIP, M_RSTRIP, M_STARTSWITH, M_ENDSWITH, M_SPLIT, M_RSPLIT, M_UPPER, M_LOWER, M_TITLE,
    M_CAPITALIZE, M_REPLACE, M_FIND, M_RFIND, M_COUNT, M_JOIN, M_ISDIGIT, M_ISALPHA, M_ISALNUM, M_ISSPACE, M_ISUPPER,
    M_ISLOWER, M_SPLITLINES, M_REMOVEPREFIX, M_REMOVESUFFIX, M_ITEMS, M_KEYS, M_VALUES, M_GET, M_INDEX, M_CYCLE
};
static const struct {
    const char *name;
    int id;
} globals[] = {{"range", G_RANGE}, {"namespace", G_NAMESPACE}, {"raise_exception", G_RAISE},
               {"strftime_now", G_STRFTIME}, {"dict", G_DICT}};
static const struct {
    const char *name;
    int id;
} str_methods[] = {{"strip", M_STRIP},         {"lstrip", M_LSTRIP},       {"rstrip", M_RSTRIP},
                   {"startswith", M_STARTSWITH}, {"endswith", M_ENDSWITH}, {"split", M_SPLIT},
                   {"rsplit", M_RSPLIT},       {"upper", M_UPPER},         {"lower", M_LOWER},
                   {"title", M_TITLE},         {"capitalize", M_CAPITALIZE}, {"replace", M_REPLACE},
                   {"find", M_FIND},           {"rfind", M_RFIND},         {"count", M_COUNT},
                   {"join", M_JOIN},           {"isdigit", M_ISDIGIT},     {"isalpha", M_ISALPHA},
                   {"isalnum", M_ISALNUM},     {"isspace", M_ISSPACE},     {"isupper", M_ISUPPER},
                   {"islower", M_ISLOWER},     {"splitlines", M_SPLITLINES}, {"removeprefix", M_REMOVEPREFIX},
                   {"removesuffix", M_REMOVESUFFIX}};

#define LOOKUP(table, name, len)                                                                  \
    do {                                                                                          \
        for (size_t i_ = 0; i_ < sizeof table / sizeof table[0]; i_++)                            \
            if (strlen(table[i_].name) == (len) && !memcmp(table[i_].name, (name), (len))) return table[i_].id; \
        return -1;                                                                                \
    } while (0)

int tpl_filter_id(const char *name, size_t len) { LOOKUP(filters, name, len); }
int tpl_test_id(const char *name, size_t len) { LOOKUP(tests, name, len); }
int tpl_global_id(const char *name, size_t len) { LOOKUP(globals, name, len); }
static int str_method_id(const char *name, size_t len) { LOOKUP(str_methods, name, len); }

/* ---------------------------------------------------------------- argument helpers */

/* Positional argument i, else the keyword `name`, else NULL. */
static const tpl_value *arg(const tpl_args *a, int i, const char *name) {
    if (i >= 0 && i < a->npos) return &a->pos[i];
    for (int k = 0; name && k < a->nkw; k++)
        if (!strcmp(a->kwn[k]->s, name)) return &a->kwv[k];
    return NULL;
}
static bool arg_bool(const tpl_args *a, int i, const char *name, bool def) {
    const tpl_value *v = arg(a, i, name);
    return v ? tpl_truthy(v) : def;
}
static const tpl_str *want_str(tpl_ctx *c, const tpl_value *v, const char *what) {
    if (v->t != V_STR) tpl_fail(c->env, MSBNB_ERR_FORMAT, "%s must be a string, not %s", what, tpl_type_name(v));
    return v->u.s;
}
static int64_t want_int(tpl_ctx *c, const tpl_value *v, const char *what) {
    if (v->t != V_INT && v->t != V_BOOL) tpl_fail(c->env, MSBNB_ERR_FORMAT, "%s must be an integer, not %s", what, tpl_type_name(v));
    return v->u.i;
}
static _Noreturn void undefined_use(tpl_ctx *c, const tpl_value *v) {
    if (v->u.s) tpl_fail(c->env, MSBNB_ERR_FORMAT, "'%s' is undefined", v->u.s->s);
    tpl_fail(c->env, MSBNB_ERR_FORMAT, "a value is undefined");
}

static tpl_value dict_value(tpl_dict *d, tpl_type t) {
    tpl_value v = {.t = (uint8_t)t};
    v.u.d = d;
    return v;
}

/* ---------------------------------------------------------------- attributes */

static const tpl_value *self_copy(tpl_ctx *c, const tpl_value *obj) {
    tpl_value *p = tpl_alloc(c->a, sizeof *p);
    *p = *obj;
    return p;
}

tpl_value tpl_getattr(tpl_ctx *c, const tpl_value *obj, const char *name, size_t len) {
#define IS(lit) (len == sizeof lit - 1 && !memcmp(name, lit, len))
    switch ((tpl_type)obj->t) {
    case V_DICT:
        if (IS("items")) return tpl_func(M_ITEMS, self_copy(c, obj));
        if (IS("keys")) return tpl_func(M_KEYS, self_copy(c, obj));
        if (IS("values")) return tpl_func(M_VALUES, self_copy(c, obj));
        if (IS("get")) return tpl_func(M_GET, self_copy(c, obj));
        /* fall through */
    case V_NS: {
        const tpl_value *v = tpl_dict_get(obj->u.d, name, len);
        return v ? *v : tpl_undef(NULL);
    }
    case V_STR: {
        const int m = str_method_id(name, len);
        return m >= 0 ? tpl_func(m, self_copy(c, obj)) : tpl_undef(NULL);
    }
    case V_LIST:
        if (IS("index")) return tpl_func(M_INDEX, self_copy(c, obj));
        if (IS("count")) return tpl_func(M_COUNT, self_copy(c, obj));
        return tpl_undef(NULL);
    case V_LOOP: {
        const tpl_loop *l = obj->u.loop;
        if (IS("index0")) return tpl_int(l->index0);
        if (IS("index")) return tpl_int(l->index0 + 1);
        if (IS("revindex")) return tpl_int(l->length - l->index0);
        if (IS("revindex0")) return tpl_int(l->length - l->index0 - 1);
        if (IS("first")) return tpl_bool(l->index0 == 0);
        if (IS("last")) return tpl_bool(l->index0 == l->length - 1);
        if (IS("length")) return tpl_int(l->length);
        if (IS("depth")) return tpl_int(1);
        if (IS("depth0")) return tpl_int(0);
        if (IS("previtem")) return l->index0 > 0 ? l->items->v[l->index0 - 1] : tpl_undef(NULL);
        if (IS("nextitem")) return l->index0 + 1 < l->length ? l->items->v[l->index0 + 1] : tpl_undef(NULL);
        if (IS("cycle")) return tpl_func(M_CYCLE, self_copy(c, obj));
        return tpl_undef(NULL);
    }
    default: return tpl_undef(NULL);
    }
#undef IS
}

/* ---------------------------------------------------------------- sorting */

typedef struct sort_key {
    const tpl_str *attr;
    bool case_sensitive;
} sort_key;

static tpl_value sort_value(tpl_ctx *c, const tpl_value *v, const sort_key *k) {
    tpl_value x = k->attr ? tpl_getattr(c, v, k->attr->s, k->attr->len) : *v;
    if (!k->case_sensitive && x.t == V_STR) x = tpl_recase(c, x.u.s, 0);
    return x;
}

/* Stable merge sort of v[0..n) by key, each comparison a step (bounded work). */
static void merge_sort(tpl_ctx *c, tpl_value *v, tpl_value *keys, size_t n, bool reverse, tpl_value *tv, tpl_value *tk) {
    if (n < 2) return;
    const size_t h = n / 2;
    merge_sort(c, v, keys, h, reverse, tv, tk);
    merge_sort(c, v + h, keys + h, n - h, reverse, tv, tk);
    size_t i = 0, j = h, o = 0;
    while (i < h && j < n) {
        tpl_check_steps(c);
        int r = tpl_compare(c->env, &keys[j], &keys[i], 0);
        if (reverse) r = -r;
        if (r < 0) tv[o] = v[j], tk[o++] = keys[j++];
        else tv[o] = v[i], tk[o++] = keys[i++];
    }
    while (i < h) tv[o] = v[i], tk[o++] = keys[i++];
    while (j < n) tv[o] = v[j], tk[o++] = keys[j++];
    memcpy(v, tv, n * sizeof *v);
    memcpy(keys, tk, n * sizeof *keys);
}

static tpl_value sorted(tpl_ctx *c, const tpl_list *items, bool reverse, const sort_key *k) {
    const size_t n = items->n;
    tpl_list *l = tpl_list_new(c->a, n);
    tpl_value *keys = tpl_alloc_array(c->a, n + 1, sizeof *keys);
    tpl_value *tv = tpl_alloc_array(c->a, n + 1, sizeof *tv), *tk = tpl_alloc_array(c->a, n + 1, sizeof *tk);
    for (size_t i = 0; i < n; i++) {
        l->v[i] = items->v[i];
        keys[i] = sort_value(c, &items->v[i], k);
    }
    l->n = n;
    merge_sort(c, l->v, keys, n, reverse, tv, tk);
    return tpl_list_value(l, false);
}

/* ---------------------------------------------------------------- filters */

/* select / reject / selectattr / rejectattr: test name at args[first] (none: truthiness). */
static tpl_value select_items(tpl_ctx *c, const tpl_value *v, const tpl_args *args, bool attr, bool keep) {
    const tpl_list *items = tpl_iter(c, v);
    const tpl_str *attr_name = attr ? want_str(c, args->npos > 0 ? &args->pos[0] : &(tpl_value){.t = V_UNDEF}, "attribute name") : NULL;
    const int first = attr ? 1 : 0;
    int test = -1;
    if (args->npos > first) {
        const tpl_str *tn = want_str(c, &args->pos[first], "test name");
        test = tpl_test_id(tn->s, tn->len);
        if (test < 0) tpl_fail(c->env, MSBNB_ERR_UNSUPPORTED, "no test named '%s'", tn->s);
    }
    const bool has_rest = args->npos > first + 1; /* the test's own arguments */
    const tpl_args rest = {has_rest ? args->pos + first + 1 : NULL, has_rest ? args->npos - first - 1 : 0, NULL, NULL, 0};
    tpl_list *l = tpl_list_new(c->a, items->n);
    for (size_t i = 0; i < items->n; i++) {
        tpl_check_steps(c);
        const tpl_value x = attr ? tpl_getattr(c, &items->v[i], attr_name->s, attr_name->len) : items->v[i];
        const bool ok = test >= 0 ? tpl_apply_test(c, test, &x, &rest) : tpl_truthy(&x);
        if (ok == keep) tpl_list_push(c->a, l, items->v[i]);
    }
    return tpl_list_value(l, false);
}

static tpl_value map_items(tpl_ctx *c, const tpl_value *v, const tpl_args *args) {
    const tpl_list *items = tpl_iter(c, v);
    tpl_list *l = tpl_list_new(c->a, items->n);
    const tpl_value *attr = arg(args, -1, "attribute");
    if (attr) {
        const tpl_str *name = want_str(c, attr, "attribute");
        const tpl_value *def = arg(args, -1, "default");
        for (size_t i = 0; i < items->n; i++) {
            tpl_value x = tpl_getattr(c, &items->v[i], name->s, name->len);
            if (x.t == V_UNDEF && def) x = *def;
            tpl_list_push(c->a, l, x);
        }
        return tpl_list_value(l, false);
    }
    if (args->npos < 1) tpl_fail(c->env, MSBNB_ERR_FORMAT, "map needs a filter name or attribute=");
    const tpl_str *fname = want_str(c, &args->pos[0], "filter name");
    const int f = tpl_filter_id(fname->s, fname->len);
    if (f < 0) tpl_fail(c->env, MSBNB_ERR_UNSUPPORTED, "no filter named '%s'", fname->s);
    const tpl_args rest = {args->npos > 1 ? args->pos + 1 : NULL, args->npos - 1, args->kwv, args->kwn, args->nkw};
    for (size_t i = 0; i < items->n; i++) {
        tpl_check_steps(c);
        tpl_list_push(c->a, l, tpl_apply_filter(c, f, &items->v[i], &rest));
    }
    return tpl_list_value(l, false);
}

static tpl_value to_json(tpl_ctx *c, const tpl_value *v, const tpl_args *args) {
    const tpl_value *ind = arg(args, 0, "indent");
    int indent = -1;
    const tpl_str *indent_str = NULL;
    if (ind && ind->t == V_STR) indent_str = ind->u.s;
    else if (ind && ind->t != V_NONE) {
        const int64_t k = want_int(c, ind, "tojson indent");
        indent = k < 0 ? 0 : k > 64 ? 64 : (int)k; /* json.dumps: a negative indent means newlines only */
    }
    tpl_buf b = {0};
    tpl_to_json(c->a, &b, v, indent, indent_str, arg_bool(args, -1, "sort_keys", false), 0);
    return tpl_str_value(tpl_buf_str(c->a, &b));
}

static tpl_value escape_html(tpl_ctx *c, const tpl_str *s) {
    tpl_buf b = {0};
    for (size_t i = 0; i < s->len; i++) {
        const char ch = s->s[i];
        const char *r = ch == '&' ? "&amp;" : ch == '<' ? "&lt;" : ch == '>' ? "&gt;" : ch == '"' ? "&#34;" : ch == '\'' ? "&#39;" : NULL;
        if (r) tpl_buf_put(c->a, &b, r, strlen(r));
        else tpl_buf_putc(c->a, &b, ch);
    }
    return tpl_str_value(tpl_buf_str(c->a, &b));
}

static tpl_value indent_text(tpl_ctx *c, const tpl_str *s, const tpl_args *args) {
    const tpl_value *w = arg(args, 0, "width");
    tpl_buf pad = {0};
    if (w && w->t == V_STR) tpl_buf_put(c->a, &pad, w->u.s->s, w->u.s->len);
    else {
        const int64_t n = w ? want_int(c, w, "indent width") : 4;
        for (int64_t i = 0; i < n && i < 256; i++) tpl_buf_putc(c->a, &pad, ' ');
    }
    const bool first = arg_bool(args, 1, "first", false), blank = arg_bool(args, 2, "blank", false);
    tpl_buf b = {0};
    size_t p = 0;
    for (bool line0 = true; p <= s->len; line0 = false) {
        const char *nl = memchr(s->s + p, '\n', s->len - p);
        const size_t e = nl ? (size_t)(nl - s->s) : s->len;
        const bool empty = e == p;
        if ((!line0 || first) && (blank || !empty)) tpl_buf_put(c->a, &b, pad.p, pad.n);
        tpl_buf_put(c->a, &b, s->s + p, e - p);
        if (!nl) break;
        tpl_buf_putc(c->a, &b, '\n');
        p = e + 1;
    }
    return tpl_str_value(tpl_buf_str(c->a, &b));
}

static tpl_value to_number(tpl_ctx *c, const tpl_value *v, bool want_float, const tpl_value *def) {
    if (v->t == V_INT || v->t == V_BOOL) return want_float ? tpl_float((double)v->u.i) : tpl_int(v->u.i);
    if (v->t == V_FLOAT) {
        if (want_float) return *v;
        if (isfinite(v->u.f) && fabs(v->u.f) < 9.2e18) return tpl_int((int64_t)v->u.f);
    }
    if (v->t == V_STR && v->u.s->len && v->u.s->len < 64) {
        char buf[64], *end;
        memcpy(buf, v->u.s->s, v->u.s->len);
        buf[v->u.s->len] = 0;
        const double f = strtod(buf, &end);
        if (*end == 0 && isfinite(f)) {
            if (want_float) return tpl_float(f);
            if (fabs(f) < 9.2e18) return tpl_int((int64_t)f);
        }
    }
    return def ? *def : want_float ? tpl_float(0) : tpl_int(0);
}

tpl_value tpl_apply_filter(tpl_ctx *c, int fn, const tpl_value *v, const tpl_args *args) {
    tpl_check_steps(c);
    switch (fn) {
    case F_DEFAULT: {
        const tpl_value *def = arg(args, 0, "default_value");
        const bool boolean = arg_bool(args, 1, "boolean", false);
        if (v->t == V_UNDEF || (boolean && !tpl_truthy(v))) return def ? *def : tpl_string(c->a, "", 0);
        return *v;
    }
    case F_LENGTH:
        switch ((tpl_type)v->t) {
        case V_UNDEF: return tpl_int(0);
        case V_STR: return tpl_int((int64_t)tpl_utf8_len(v->u.s->s, v->u.s->len));
        case V_LIST: return tpl_int((int64_t)v->u.l->n);
        case V_DICT:
        case V_NS: return tpl_int((int64_t)v->u.d->n);
        default: tpl_fail(c->env, MSBNB_ERR_FORMAT, "object of type '%s' has no len()", tpl_type_name(v));
        }
    case F_SAFE: return *v;
    case F_STRING: return tpl_str_value(tpl_stringify(c->a, v));
    case F_TOJSON: return to_json(c, v, args);
    case F_LIST: return tpl_list_value((tpl_list *)tpl_iter(c, v), false);
    case F_ITEMS: {
        if (v->t == V_UNDEF) return tpl_list_value(tpl_list_new(c->a, 1), false);
        if (v->t != V_DICT && v->t != V_NS) tpl_fail(c->env, MSBNB_ERR_FORMAT, "items: expected a mapping, got %s", tpl_type_name(v));
        tpl_list *l = tpl_list_new(c->a, v->u.d->n);
        for (size_t i = 0; i < v->u.d->n; i++) {
            tpl_list *pair = tpl_list_new(c->a, 2);
            tpl_list_push(c->a, pair, v->u.d->k[i]);
            tpl_list_push(c->a, pair, v->u.d->v[i]);
            tpl_list_push(c->a, l, tpl_list_value(pair, true));
        }
        return tpl_list_value(l, false);
    }
    case F_DICTSORT: {
        if (v->t != V_DICT) tpl_fail(c->env, MSBNB_ERR_FORMAT, "dictsort: expected a mapping, got %s", tpl_type_name(v));
        const tpl_value items = tpl_apply_filter(c, F_ITEMS, v, &(tpl_args){0});
        const tpl_value *by = arg(args, 1, "by");
        const bool by_value = by && by->t == V_STR && by->u.s->len == 5 && !memcmp(by->u.s->s, "value", 5);
        tpl_list *keys = tpl_list_new(c->a, items.u.l->n);
        for (size_t i = 0; i < items.u.l->n; i++) tpl_list_push(c->a, keys, items.u.l->v[i].u.l->v[by_value ? 1 : 0]);
        const sort_key k = {NULL, arg_bool(args, 0, "case_sensitive", false)};
        /* sort the pairs by their key (or value): pairs and keys move together */
        tpl_value *tv = tpl_alloc_array(c->a, keys->n + 1, sizeof *tv), *tk = tpl_alloc_array(c->a, keys->n + 1, sizeof *tk);
        for (size_t i = 0; i < keys->n; i++) keys->v[i] = sort_value(c, &keys->v[i], &k);
        merge_sort(c, items.u.l->v, keys->v, keys->n, arg_bool(args, 2, "reverse", false), tv, tk);
        return items;
    }
    case F_JOIN: {
        if (v->t == V_UNDEF) return tpl_string(c->a, "", 0);
        const tpl_value *sep = arg(args, 0, "d");
        const tpl_value *attr = arg(args, 1, "attribute");
        return tpl_join(c, tpl_iter(c, v), sep ? tpl_stringify(c->a, sep) : NULL, attr ? want_str(c, attr, "attribute") : NULL);
    }
    case F_SELECT:
    case F_REJECT: return select_items(c, v, args, false, fn == F_SELECT);
    case F_SELECTATTR:
    case F_REJECTATTR: return select_items(c, v, args, true, fn == F_SELECTATTR);
    case F_MAP: return map_items(c, v, args);
    case F_ATTR: {
        const tpl_str *name = want_str(c, args->npos ? &args->pos[0] : &(tpl_value){.t = V_UNDEF}, "attribute name");
        if (v->t == V_UNDEF) undefined_use(c, v);
        return tpl_getattr(c, v, name->s, name->len);
    }
    case F_FIRST:
    case F_LAST: {
        const tpl_list *items = tpl_iter(c, v);
        if (!items->n) return tpl_undef(NULL);
        return items->v[fn == F_FIRST ? 0 : items->n - 1];
    }
    case F_REVERSE: {
        if (v->t == V_STR) {
            const tpl_list *chars = tpl_iter(c, v);
            tpl_buf b = {0};
            for (size_t i = chars->n; i-- > 0;) tpl_buf_put(c->a, &b, chars->v[i].u.s->s, chars->v[i].u.s->len);
            return tpl_str_value(tpl_buf_str(c->a, &b));
        }
        const tpl_list *items = tpl_iter(c, v);
        tpl_list *l = tpl_list_new(c->a, items->n);
        for (size_t i = items->n; i-- > 0;) tpl_list_push(c->a, l, items->v[i]);
        return tpl_list_value(l, false);
    }
    case F_SORT: {
        const tpl_value *attr = arg(args, 2, "attribute");
        const sort_key k = {attr ? want_str(c, attr, "attribute") : NULL, arg_bool(args, 1, "case_sensitive", false)};
        return sorted(c, tpl_iter(c, v), arg_bool(args, 0, "reverse", false), &k);
    }
    case F_UNIQUE: {
        const tpl_list *items = tpl_iter(c, v);
        tpl_list *l = tpl_list_new(c->a, items->n);
        for (size_t i = 0; i < items->n; i++) {
            bool seen = false;
            for (size_t j = 0; j < l->n && !seen; j++) {
                tpl_check_steps(c);
                seen = tpl_equal(c->env, &items->v[i], &l->v[j], 0);
            }
            if (!seen) tpl_list_push(c->a, l, items->v[i]);
        }
        return tpl_list_value(l, false);
    }
    case F_MIN:
    case F_MAX: {
        const tpl_list *items = tpl_iter(c, v);
        if (!items->n) return tpl_undef(NULL);
        const tpl_value *attr = arg(args, 1, "attribute");
        const sort_key k = {attr ? want_str(c, attr, "attribute") : NULL, arg_bool(args, 0, "case_sensitive", false)};
        size_t best = 0;
        tpl_value bk = sort_value(c, &items->v[0], &k);
        for (size_t i = 1; i < items->n; i++) {
            const tpl_value x = sort_value(c, &items->v[i], &k);
            const int r = tpl_compare(c->env, &x, &bk, 0);
            if (fn == F_MIN ? r < 0 : r > 0) best = i, bk = x;
        }
        return items->v[best];
    }
    case F_SUM: {
        const tpl_list *items = tpl_iter(c, v);
        const tpl_value *attr = arg(args, 0, "attribute");
        const tpl_value *start = arg(args, 1, "start");
        tpl_value acc = start ? *start : tpl_int(0);
        for (size_t i = 0; i < items->n; i++) {
            const tpl_value x = attr ? tpl_getattr(c, &items->v[i], want_str(c, attr, "attribute")->s,
                                                   want_str(c, attr, "attribute")->len)
                                     : items->v[i];
            if (!((acc.t == V_INT || acc.t == V_FLOAT || acc.t == V_BOOL) && (x.t == V_INT || x.t == V_FLOAT || x.t == V_BOOL)))
                tpl_fail(c->env, MSBNB_ERR_FORMAT, "sum: unsupported types '%s' and '%s'", tpl_type_name(&acc), tpl_type_name(&x));
            if (acc.t == V_FLOAT || x.t == V_FLOAT) acc = tpl_float((acc.t == V_FLOAT ? acc.u.f : (double)acc.u.i) +
                                                                    (x.t == V_FLOAT ? x.u.f : (double)x.u.i));
            else if (__builtin_add_overflow(acc.u.i, x.u.i, &acc.u.i)) tpl_fail(c->env, MSBNB_ERR_UNSUPPORTED, "integer overflow in sum");
            else acc.t = V_INT;
        }
        return acc;
    }
    case F_INT: return to_number(c, v, false, arg(args, 0, "default"));
    case F_FLOAT: return to_number(c, v, true, arg(args, 0, "default"));
    case F_ABS:
        if (v->t == V_FLOAT) return tpl_float(fabs(v->u.f));
        if ((v->t == V_INT || v->t == V_BOOL) && v->u.i != INT64_MIN) return tpl_int(v->u.i < 0 ? -v->u.i : v->u.i);
        tpl_fail(c->env, MSBNB_ERR_FORMAT, "bad operand type for abs(): '%s'", tpl_type_name(v));
    case F_ROUND: {
        const tpl_value *pv = arg(args, 0, "precision");
        const int64_t prec = pv ? want_int(c, pv, "round precision") : 0;
        const tpl_value *mv = arg(args, 1, "method");
        const tpl_str *method = mv ? want_str(c, mv, "round method") : NULL;
        if (v->t != V_INT && v->t != V_FLOAT && v->t != V_BOOL) tpl_fail(c->env, MSBNB_ERR_FORMAT, "round: not a number");
        const double x = v->t == V_FLOAT ? v->u.f : (double)v->u.i;
        const int p = (int)(prec > 15 ? 15 : prec < -15 ? -15 : prec);
        if ((!method || !strcmp(method->s, "common")) && p >= 0 && isfinite(x)) {
            /* Python's round(x, p): the exact binary value rounded half to even — what printf's
             * correctly rounded %.*f gives */
            char buf[400];
            snprintf(buf, sizeof buf, "%.*f", p, x);
            return tpl_float(strtod(buf, NULL));
        }
        const double m = pow(10.0, (double)p);
        double r = x * m;
        if (method && !strcmp(method->s, "floor")) r = floor(r);
        else if (method && !strcmp(method->s, "ceil")) r = ceil(r);
        else r = nearbyint(r);
        return tpl_float(r / m);
    }
    case F_TRIM: {
        if (v->t == V_UNDEF) return tpl_string(c->a, "", 0);
        const tpl_value *chars = arg(args, 0, "chars");
        return tpl_strip(c, tpl_stringify(c->a, v), chars && chars->t != V_NONE ? want_str(c, chars, "trim chars") : NULL, true, true);
    }
    case F_UPPER: return tpl_recase(c, tpl_stringify(c->a, v), 1);
    case F_LOWER: return tpl_recase(c, tpl_stringify(c->a, v), 0);
    case F_CAPITALIZE: return tpl_recase(c, tpl_stringify(c->a, v), 2);
    case F_TITLE: return tpl_recase(c, tpl_stringify(c->a, v), 3);
    case F_REPLACE: {
        const tpl_value *o = arg(args, 0, "old"), *n = arg(args, 1, "new"), *k = arg(args, 2, "count");
        if (!o || !n) tpl_fail(c->env, MSBNB_ERR_FORMAT, "replace needs old and new");
        return tpl_replace(c, tpl_stringify(c->a, v), tpl_stringify(c->a, o), tpl_stringify(c->a, n),
                       k && k->t != V_NONE ? want_int(c, k, "replace count") : -1);
    }
    case F_ESCAPE: return escape_html(c, tpl_stringify(c->a, v));
    case F_INDENT: return indent_text(c, tpl_stringify(c->a, v), args);
    case F_WORDCOUNT: {
        const tpl_value words = tpl_split(c, tpl_stringify(c->a, v), NULL, -1, false);
        return tpl_int((int64_t)words.u.l->n);
    }
    }
    tpl_fail(c->env, MSBNB_ERR_INTERNAL, "no evaluator for filter %d", fn);
}

/* ---------------------------------------------------------------- tests */

bool tpl_apply_test(tpl_ctx *c, int fn, const tpl_value *v, const tpl_args *args) {
    tpl_check_steps(c);
    const tpl_value *a0 = arg(args, 0, NULL);
    switch (fn) {
    case TS_DEFINED: return v->t != V_UNDEF;
    case TS_UNDEFINED: return v->t == V_UNDEF;
    case TS_NONE: return v->t == V_NONE;
    case TS_BOOLEAN: return v->t == V_BOOL;
    case TS_TRUE: return v->t == V_BOOL && v->u.i;
    case TS_FALSE: return v->t == V_BOOL && !v->u.i;
    case TS_INTEGER: return v->t == V_INT;
    case TS_FLOAT: return v->t == V_FLOAT;
    case TS_NUMBER: return v->t == V_INT || v->t == V_FLOAT || v->t == V_BOOL;
    case TS_STRING: return v->t == V_STR;
    case TS_MAPPING: return v->t == V_DICT;
    case TS_ITERABLE:
    case TS_SEQUENCE: return v->t == V_STR || v->t == V_LIST || v->t == V_DICT;
    case TS_CALLABLE: return v->t == V_FUNC || v->t == V_MACRO;
    case TS_LOWER:
    case TS_UPPER: {
        if (v->t != V_STR) return false;
        const tpl_value r = tpl_recase(c, v->u.s, fn == TS_LOWER ? 0 : 1);
        return !memcmp(r.u.s->s, v->u.s->s, v->u.s->len);
    }
    case TS_ODD:
    case TS_EVEN:
    case TS_DIVISIBLEBY: {
        const int64_t x = want_int(c, v, "value");
        if (fn == TS_ODD) return x % 2 != 0;
        if (fn == TS_EVEN) return x % 2 == 0;
        const int64_t d = want_int(c, a0 ? a0 : &(tpl_value){.t = V_UNDEF}, "divisibleby argument");
        if (d == 0) tpl_fail(c->env, MSBNB_ERR_FORMAT, "divisibleby 0");
        return d == -1 || x % d == 0;
    }
    case TS_SAMEAS:
        if (!a0) tpl_fail(c->env, MSBNB_ERR_FORMAT, "sameas needs an argument");
        if (v->t != a0->t) return false;
        if (v->t == V_NONE || v->t == V_UNDEF) return true;
        if (v->t == V_BOOL || v->t == V_INT) return v->u.i == a0->u.i;
        return tpl_equal(c->env, v, a0, 0) && v->u.l == a0->u.l;
    }
    if (!a0) tpl_fail(c->env, MSBNB_ERR_FORMAT, "this test needs an argument");
    switch (fn) {
    case TS_EQ: return tpl_equal(c->env, v, a0, 0);
    case TS_NE: return !tpl_equal(c->env, v, a0, 0);
    case TS_IN: {
        if (a0->t == V_STR) {
            if (v->t != V_STR) return false;
            const char *f = tpl_find_sub(a0->u.s, v->u.s, 0);
            return f != NULL;
        }
        const tpl_list *items = tpl_iter(c, a0);
        for (size_t i = 0; i < items->n; i++)
            if (tpl_equal(c->env, v, &items->v[i], 0)) return true;
        return false;
    }
    default: {
        if (v->t == V_UNDEF) undefined_use(c, v);
        const int r = tpl_compare(c->env, v, a0, 0);
        return fn == TS_LT ? r < 0 : fn == TS_LE ? r <= 0 : fn == TS_GT ? r > 0 : r >= 0;
    }
    }
}

/* ---------------------------------------------------------------- functions and methods */

static tpl_value range_list(tpl_ctx *c, const tpl_args *args) {
    int64_t start = 0, stop, step = 1;
    if (args->npos == 1) stop = want_int(c, &args->pos[0], "range stop");
    else if (args->npos == 2 || args->npos == 3) {
        start = want_int(c, &args->pos[0], "range start");
        stop = want_int(c, &args->pos[1], "range stop");
        if (args->npos == 3) step = want_int(c, &args->pos[2], "range step");
    } else tpl_fail(c->env, MSBNB_ERR_FORMAT, "range expects 1 to 3 integer arguments");
    if (step == 0) tpl_fail(c->env, MSBNB_ERR_FORMAT, "range step must not be zero");
    const double count = step > 0 ? ceil(((double)stop - (double)start) / (double)step) : ceil(((double)start - (double)stop) / (double)-step);
    /* transformers renders in jinja2's sandbox, which refuses ranges over 100,000 items (MAX_RANGE) */
    if (count > 100000) tpl_fail(c->env, MSBNB_ERR_UNSUPPORTED, "range of %.0f items is larger than 100000", count);
    if (count > (double)(c->a->cap / sizeof(tpl_value)))
        tpl_fail(c->env, MSBNB_ERR_OUT_OF_MEMORY, "range of %.0f items is too large", count);
    if (count > 0) tpl_charge_steps(c, (uint64_t)count); /* building the list is work like a loop's turns */
    tpl_list *l = tpl_list_new(c->a, count > 0 ? (size_t)count : 1);
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        tpl_list_push(c->a, l, tpl_int(i));
        if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
    }
    return tpl_list_value(l, false);
}

static tpl_value kwargs_dict(tpl_ctx *c, const tpl_args *args, tpl_type t) {
    tpl_dict *d = tpl_dict_new(c->a, (size_t)args->nkw + 1);
    if (args->npos > 1 || (args->npos == 1 && args->pos[0].t != V_DICT))
        tpl_fail(c->env, MSBNB_ERR_FORMAT, "%s() takes keyword arguments or one dict", t == V_NS ? "namespace" : "dict");
    if (args->npos == 1)
        for (size_t i = 0; i < args->pos[0].u.d->n; i++) tpl_dict_set(c->a, d, args->pos[0].u.d->k[i], args->pos[0].u.d->v[i]);
    for (int k = 0; k < args->nkw; k++) tpl_dict_set(c->a, d, tpl_str_value(args->kwn[k]), args->kwv[k]);
    return dict_value(d, t);
}

static bool affix(tpl_ctx *c, const tpl_str *s, const tpl_value *p, bool end) {
    if (p->t == V_LIST) { /* a tuple of prefixes */
        for (size_t i = 0; i < p->u.l->n; i++)
            if (affix(c, s, &p->u.l->v[i], end)) return true;
        return false;
    }
    const tpl_str *x = want_str(c, p, end ? "endswith argument" : "startswith argument");
    return x->len <= s->len && !memcmp(s->s + (end ? s->len - x->len : 0), x->s, x->len);
}

static bool all_chars(const tpl_str *s, int kind) {
    if (!s->len) return false;
    bool cased = false;
    for (size_t i = 0; i < s->len; i++) {
        const char ch = s->s[i];
        const bool digit = ch >= '0' && ch <= '9', lower = ch >= 'a' && ch <= 'z', upper = ch >= 'A' && ch <= 'Z';
        const bool space = ch == ' ' || (ch >= 9 && ch <= 13);
        switch (kind) {
        case M_ISDIGIT: if (!digit) return false; break;
        case M_ISALPHA: if (!lower && !upper) return false; break;
        case M_ISALNUM: if (!lower && !upper && !digit) return false; break;
        case M_ISSPACE: if (!space) return false; break;
        case M_ISUPPER: if (lower) return false; cased |= upper; break;
        case M_ISLOWER: if (upper) return false; cased |= lower; break;
        }
    }
    return kind == M_ISUPPER || kind == M_ISLOWER ? cased : true;
}

static tpl_value str_method(tpl_ctx *c, int fn, const tpl_str *s, const tpl_args *args) {
    const tpl_value *a0 = arg(args, 0, NULL), *a1 = arg(args, 1, NULL);
    switch (fn) {
    case M_STRIP:
    case M_LSTRIP:
    case M_RSTRIP:
        return tpl_strip(c, s, a0 && a0->t != V_NONE ? want_str(c, a0, "strip chars") : NULL, fn != M_RSTRIP, fn != M_LSTRIP);
    case M_STARTSWITH:
    case M_ENDSWITH:
        if (!a0) tpl_fail(c->env, MSBNB_ERR_FORMAT, "startswith/endswith need an argument");
        return tpl_bool(affix(c, s, a0, fn == M_ENDSWITH));
    case M_SPLIT:
    case M_RSPLIT: {
        const tpl_value *sep = arg(args, 0, "sep"), *maxs = arg(args, 1, "maxsplit");
        return tpl_split(c, s, sep && sep->t != V_NONE ? want_str(c, sep, "split separator") : NULL,
                     maxs ? want_int(c, maxs, "maxsplit") : -1, fn == M_RSPLIT);
    }
    case M_UPPER: return tpl_recase(c, s, 1);
    case M_LOWER: return tpl_recase(c, s, 0);
    case M_TITLE: return tpl_recase(c, s, 3);
    case M_CAPITALIZE: return tpl_recase(c, s, 2);
    case M_REPLACE:
        if (!a0 || !a1) tpl_fail(c->env, MSBNB_ERR_FORMAT, "replace needs old and new");
        return tpl_replace(c, s, want_str(c, a0, "replace old"), want_str(c, a1, "replace new"),
                       arg(args, 2, NULL) ? want_int(c, arg(args, 2, NULL), "replace count") : -1);
    case M_FIND:
    case M_RFIND: {
        const tpl_str *n = want_str(c, a0 ? a0 : &(tpl_value){.t = V_UNDEF}, "find argument");
        const char *hit = NULL;
        for (const char *f = tpl_find_sub(s, n, 0); f; f = tpl_find_sub(s, n, (size_t)(f - s->s) + 1)) {
            hit = f;
            if (fn == M_FIND || (size_t)(f - s->s) >= s->len) break;
        }
        return tpl_int(hit ? (int64_t)tpl_utf8_len(s->s, (size_t)(hit - s->s)) : -1);
    }
    case M_COUNT: {
        const tpl_str *n = want_str(c, a0 ? a0 : &(tpl_value){.t = V_UNDEF}, "count argument");
        if (!n->len) return tpl_int((int64_t)tpl_utf8_len(s->s, s->len) + 1);
        int64_t k = 0;
        for (const char *f = tpl_find_sub(s, n, 0); f; f = tpl_find_sub(s, n, (size_t)(f - s->s) + n->len)) k++;
        return tpl_int(k);
    }
    case M_JOIN: return tpl_join(c, tpl_iter(c, a0 ? a0 : &(tpl_value){.t = V_UNDEF}), s, NULL);
    case M_ISDIGIT:
    case M_ISALPHA:
    case M_ISALNUM:
    case M_ISSPACE:
    case M_ISUPPER:
    case M_ISLOWER: return tpl_bool(all_chars(s, fn));
    case M_SPLITLINES: {
        tpl_list *l = tpl_list_new(c->a, 4);
        size_t p = 0;
        while (p < s->len) {
            size_t e = p;
            while (e < s->len && s->s[e] != '\n' && s->s[e] != '\r') e++;
            tpl_list_push(c->a, l, tpl_string(c->a, s->s + p, e - p));
            if (e < s->len && s->s[e] == '\r' && e + 1 < s->len && s->s[e + 1] == '\n') e++;
            p = e + 1;
        }
        return tpl_list_value(l, false);
    }
    case M_REMOVEPREFIX:
    case M_REMOVESUFFIX: {
        const tpl_str *x = want_str(c, a0 ? a0 : &(tpl_value){.t = V_UNDEF}, "affix");
        if (!affix(c, s, a0, fn == M_REMOVESUFFIX)) return tpl_str_value(s);
        return fn == M_REMOVEPREFIX ? tpl_string(c->a, s->s + x->len, s->len - x->len) : tpl_string(c->a, s->s, s->len - x->len);
    }
    }
    tpl_fail(c->env, MSBNB_ERR_INTERNAL, "no evaluator for method %d", fn);
}

tpl_value tpl_call_builtin(tpl_ctx *c, int fn, const tpl_value *self, const tpl_args *args) {
    tpl_check_steps(c);
    switch (fn) {
    case G_RANGE: return range_list(c, args);
    case G_NAMESPACE: return kwargs_dict(c, args, V_NS);
    case G_DICT: return kwargs_dict(c, args, V_DICT);
    case G_RAISE: {
        const tpl_value *m = arg(args, 0, NULL);
        const tpl_str *msg = m ? tpl_stringify(c->a, m) : tpl_str_new(c->a, "", 0);
        c->env->line = 0; /* the template's own message stands alone */
        tpl_fail(c->env, MSBNB_ERR_INVALID_ARG, "the chat template refused the messages: %s", msg->s);
    }
    case G_STRFTIME: {
        const tpl_str *f = want_str(c, arg(args, 0, NULL) ? arg(args, 0, NULL) : &(tpl_value){.t = V_UNDEF}, "strftime format");
        char buf[256];
        const time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        const size_t n = f->len < 128 ? strftime(buf, sizeof buf, f->s, &tm) : 0;
        return tpl_string(c->a, buf, n);
    }
    case M_ITEMS: return tpl_apply_filter(c, F_ITEMS, self, &(tpl_args){0});
    case M_KEYS:
    case M_VALUES: {
        tpl_list *l = tpl_list_new(c->a, self->u.d->n);
        for (size_t i = 0; i < self->u.d->n; i++) tpl_list_push(c->a, l, fn == M_KEYS ? self->u.d->k[i] : self->u.d->v[i]);
        return tpl_list_value(l, false);
    }
    case M_GET: {
        const tpl_value *k = arg(args, 0, NULL), *def = arg(args, 1, NULL);
        if (!k) tpl_fail(c->env, MSBNB_ERR_FORMAT, "get needs a key");
        const tpl_value *v = tpl_dict_find(c->env, self->u.d, *k);
        return v ? *v : def ? *def : tpl_none();
    }
    case M_CYCLE:
        if (!args->npos) tpl_fail(c->env, MSBNB_ERR_FORMAT, "loop.cycle needs at least one value");
        return args->pos[self->u.loop->index0 % args->npos];
    default: break;
    }
    if (self && self->t == V_LIST && (fn == M_INDEX || fn == M_COUNT)) {
        const tpl_value *x = arg(args, 0, NULL);
        if (!x) tpl_fail(c->env, MSBNB_ERR_FORMAT, "index/count need an argument");
        int64_t k = 0;
        for (size_t i = 0; i < self->u.l->n; i++)
            if (tpl_equal(c->env, &self->u.l->v[i], x, 0)) {
                if (fn == M_INDEX) return tpl_int((int64_t)i);
                k++;
            }
        if (fn == M_INDEX) tpl_fail(c->env, MSBNB_ERR_FORMAT, "list.index(x): x not in list");
        return tpl_int(k);
    }
    if (self && self->t == V_STR) return str_method(c, fn, self->u.s, args);
    tpl_fail(c->env, MSBNB_ERR_INTERNAL, "no evaluator for function %d", fn);
}
