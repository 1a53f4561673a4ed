/* config.c — read-only JSON objects (config.json, adapter_config.json) with dotted-path getters.
 * Complexity: parsing is linear in the text (UTF-8 and depth scans, cJSON); a getter walks the
 * members of each object on its dotted path, an array element i costs O(i). */
#define IO_API "msbnb_config"
#include "io/io_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* config.json files are a few KB; this bound keeps a hostile file from costing much. */
#define CONFIG_MAX_BYTES ((size_t)16 << 20)
#define CONFIG_MAX_DEPTH 64

struct msbnb_config {
    cJSON *root;
    char *name;
    char *json; /* compact re-serialization */
    char err[IO_ERRMSG_CAP];
};

void msbnb_config_free(msbnb_config *c) {
    if (!c) return;
    cJSON_Delete(c->root);
    free(c->name);
    free(c->json);
    free(c);
}

msbnb_status msbnb_config_parse(const char *text, size_t len, const char *name, msbnb_config **out) {
    RETURN_IF(!out || (!text && len), MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    if (!name) name = "<json>";
    if (len > CONFIG_MAX_BYTES)
        return IO_FAIL(NULL, MSBNB_ERR_FORMAT, "%s: %zu bytes, more than the %zu allowed (byte 0)", name, len,
                       CONFIG_MAX_BYTES);
    cJSON *root = NULL;
    size_t off;
    const char *reason;
    msbnb_status st = msbnb__json_parse(text ? text : "", len, CONFIG_MAX_DEPTH, false, &root, &off, &reason);
    if (st != MSBNB_OK) return IO_FAIL(NULL, st, "%s: %s (byte %zu)", name, reason, off);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return IO_FAIL(NULL, MSBNB_ERR_FORMAT, "%s: top level is not a JSON object (byte 0)", name);
    }
    msbnb_config *c = calloc(1, sizeof *c);
    char *json = cJSON_PrintUnformatted(root);
    char *nm = msbnb__strdup(name);
    if (!c || !json || !nm) {
        free(c);
        free(json);
        free(nm);
        cJSON_Delete(root);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    }
    c->root = root;
    c->json = json;
    c->name = nm;
    *out = c;
    return MSBNB_OK;
}

msbnb_status msbnb_config_open(const char *path, msbnb_config **out) {
    RETURN_IF(!path || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    char *text;
    size_t len;
    TRY(msbnb__read_file(path, CONFIG_MAX_BYTES, &text, &len, NULL));
    msbnb_status st = msbnb_config_parse(text, len, path, out);
    free(text);
    return st;
}

/* Walk a dotted path; NULL when any segment is missing or a parent is not an object. */
static const cJSON *lookup(const msbnb_config *c, const char *key) {
    const cJSON *node = c->root;
    const char *p = key;
    char seg[256];
    while (node) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof seg) return NULL;
        memcpy(seg, p, n);
        seg[n] = '\0';
        if (!cJSON_IsObject(node)) return NULL;
        node = cJSON_GetObjectItemCaseSensitive(node, seg);
        if (!dot) return node;
        p = dot + 1;
    }
    return NULL;
}

#define CFG_ERR(c, st, ...) IO_FAIL(((msbnb_config *)(c))->err, (st), __VA_ARGS__)

static msbnb_status get_node(const msbnb_config *c, const char *key, const cJSON **out) {
    RETURN_IF(!c || !key, MSBNB_ERR_INVALID_ARG, "NULL argument");
    const cJSON *n = lookup(c, key);
    if (!n || cJSON_IsNull(n)) return CFG_ERR(c, MSBNB_ERR_NOT_FOUND, "%s: no value for '%.120s'", c->name, key);
    *out = n;
    return MSBNB_OK;
}

msbnb_status msbnb_config_get_int(const msbnb_config *c, const char *key, int64_t *out) {
    const cJSON *n = NULL;
    TRY(get_node(c, key, &n));
    int64_t v;
    if (!msbnb__json_int(n, -(INT64_C(1) << 53), INT64_C(1) << 53, &v))
        return CFG_ERR(c, MSBNB_ERR_FORMAT, "%s: '%.120s' is not an integer", c->name, key);
    *out = v;
    return MSBNB_OK;
}

msbnb_status msbnb_config_get_double(const msbnb_config *c, const char *key, double *out) {
    const cJSON *n = NULL;
    TRY(get_node(c, key, &n));
    if (!cJSON_IsNumber(n)) return CFG_ERR(c, MSBNB_ERR_FORMAT, "%s: '%.120s' is not a number", c->name, key);
    *out = n->valuedouble;
    return MSBNB_OK;
}

msbnb_status msbnb_config_get_bool(const msbnb_config *c, const char *key, int *out) {
    const cJSON *n = NULL;
    TRY(get_node(c, key, &n));
    if (!cJSON_IsBool(n)) return CFG_ERR(c, MSBNB_ERR_FORMAT, "%s: '%.120s' is not true/false", c->name, key);
    *out = cJSON_IsTrue(n) ? 1 : 0;
    return MSBNB_OK;
}

msbnb_status msbnb_config_get_string(const msbnb_config *c, const char *key, const char **out) {
    const cJSON *n = NULL;
    TRY(get_node(c, key, &n));
    if (!cJSON_IsString(n)) return CFG_ERR(c, MSBNB_ERR_FORMAT, "%s: '%.120s' is not a string", c->name, key);
    *out = n->valuestring;
    return MSBNB_OK;
}

msbnb_status msbnb_config_array_len(const msbnb_config *c, const char *key, size_t *out) {
    const cJSON *n = NULL;
    TRY(get_node(c, key, &n));
    if (!cJSON_IsArray(n)) return CFG_ERR(c, MSBNB_ERR_FORMAT, "%s: '%.120s' is not an array", c->name, key);
    *out = (size_t)cJSON_GetArraySize(n);
    return MSBNB_OK;
}

static msbnb_status array_item(const msbnb_config *c, const char *key, size_t i, const cJSON **out) {
    const cJSON *n = NULL;
    TRY(get_node(c, key, &n));
    if (!cJSON_IsArray(n)) return CFG_ERR(c, MSBNB_ERR_FORMAT, "%s: '%.120s' is not an array", c->name, key);
    const cJSON *x = n->child;
    for (size_t k = 0; x && k < i; k++) x = x->next;
    if (!x) return CFG_ERR(c, MSBNB_ERR_NOT_FOUND, "%s: '%.120s' has no element %zu", c->name, key, i);
    *out = x;
    return MSBNB_OK;
}

msbnb_status msbnb_config_array_string(const msbnb_config *c, const char *key, size_t i, const char **out) {
    const cJSON *x = NULL;
    TRY(array_item(c, key, i, &x));
    if (!cJSON_IsString(x)) return CFG_ERR(c, MSBNB_ERR_FORMAT, "%s: '%.120s'[%zu] is not a string", c->name, key, i);
    *out = x->valuestring;
    return MSBNB_OK;
}

msbnb_status msbnb_config_array_int(const msbnb_config *c, const char *key, size_t i, int64_t *out) {
    const cJSON *x = NULL;
    TRY(array_item(c, key, i, &x));
    int64_t v;
    if (!msbnb__json_int(x, -(INT64_C(1) << 53), INT64_C(1) << 53, &v))
        return CFG_ERR(c, MSBNB_ERR_FORMAT, "%s: '%.120s'[%zu] is not an integer", c->name, key, i);
    *out = v;
    return MSBNB_OK;
}

int msbnb_config_has(const msbnb_config *c, const char *key) { return c && key && lookup(c, key) != NULL; }
const char *msbnb_config_json(const msbnb_config *c) { return c ? c->json : "{}"; }
const char *msbnb_config_errmsg(const msbnb_config *c) { return c ? c->err : ""; }

/* ================================================================ config.json with quantization_config */

/* The original text is kept byte for byte (cJSON would print 10000.0 as 10000 and 6.0 as 6, and
 * transformers checks some fields' float type); only the top-level "quantization_config" member
 * is cut out and/or appended. The text has already been validated as a JSON object. */

/* Skip a JSON string starting at s[i] == '"'; returns the index after the closing quote. */
static size_t skip_string(const char *s, size_t i, size_t n) {
    for (i++; i < n; i++) {
        if (s[i] == '\\') i++;
        else if (s[i] == '"') return i + 1;
    }
    return n;
}

/* Skip one JSON value starting at s[i] (after whitespace); returns the index after it. */
static size_t skip_value(const char *s, size_t i, size_t n) {
    if (i < n && s[i] == '"') return skip_string(s, i, n);
    int depth = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            i = skip_string(s, i, n) - 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) return i;
            if (--depth == 0) return i + 1;
        } else if (depth == 0 && (c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t')) {
            return i;
        }
    }
    return n;
}

static size_t skip_ws(const char *s, size_t i, size_t n) {
    while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) i++;
    return i;
}

/* Byte span [*b, *e) of the top-level member `key` together with one adjacent comma. */
static bool find_member(const char *s, size_t n, const char *key, size_t *b, size_t *e) {
    size_t i = skip_ws(s, 0, n);
    if (i >= n || s[i] != '{') return false;
    i++;
    size_t prev_value_end = i; /* where the previous member ended (for a trailing-member cut) */
    bool first = true;
    for (;;) {
        i = skip_ws(s, i, n);
        if (i >= n || s[i] != '"') return false;
        size_t ks = i, ke = skip_string(s, i, n);
        i = skip_ws(s, ke, n);
        if (i >= n || s[i] != ':') return false;
        size_t ve = skip_value(s, skip_ws(s, i + 1, n), n);
        size_t after = skip_ws(s, ve, n);
        bool match = ke - ks - 2 == strlen(key) && !memcmp(s + ks + 1, key, strlen(key));
        if (match) {
            if (after < n && s[after] == ',') { /* cut "key": value, */
                *b = ks;
                *e = skip_ws(s, after + 1, n);
            } else { /* last member: cut the comma before it (or nothing if it is the only one) */
                *b = first ? ks : prev_value_end;
                *e = ve;
            }
            return true;
        }
        if (after >= n || s[after] != ',') return false;
        prev_value_end = ve;
        first = false;
        i = after + 1;
    }
}

msbnb_status msbnb_config_write_with_quantization(const char *src_path, const char *dst_path,
                                                  const char *quantization_config_json) {
    RETURN_IF(!src_path || !dst_path, MSBNB_ERR_INVALID_ARG, "NULL argument");
    char *text = NULL;
    size_t len = 0;
    TRY(msbnb__read_file(src_path, CONFIG_MAX_BYTES, &text, &len, NULL));
    msbnb_config *c = NULL;
    msbnb_status st = msbnb_config_parse(text, len, src_path, &c); /* validates */
    if (st == MSBNB_OK && quantization_config_json) {
        cJSON *q = NULL;
        size_t off;
        const char *reason;
        st = msbnb__json_parse(quantization_config_json, strlen(quantization_config_json), CONFIG_MAX_DEPTH, false, &q,
                               &off, &reason);
        if (st != MSBNB_OK) st = MSBNB_FAIL(st, "quantization_config: %s (byte %zu)", reason, off);
        cJSON_Delete(q);
    }
    size_t b, e;
    if (st == MSBNB_OK && find_member(text, len, "quantization_config", &b, &e)) {
        memmove(text + b, text + e, len - e);
        len -= e - b;
        text[len] = '\0';
    }
    bool empty = st == MSBNB_OK && c->root->child == NULL;
    msbnb_config_free(c);
    if (st != MSBNB_OK) {
        free(text);
        return st;
    }
    /* re-check emptiness after the cut: the object may have held only quantization_config */
    size_t close = len;
    while (close > 0 && text[close - 1] != '}') close--;
    size_t before = close - 1;
    while (before > 0 && (text[before - 1] == ' ' || text[before - 1] == '\n' || text[before - 1] == '\r' ||
                          text[before - 1] == '\t'))
        before--;
    empty = empty || (before > 0 && text[before - 1] == '{');
    size_t qlen = quantization_config_json ? strlen(quantization_config_json) : 0;
    char *out = malloc(len + qlen + 64);
    if (!out) {
        free(text);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    size_t k = 0;
    if (quantization_config_json) {
        memcpy(out, text, before);
        k = before;
        k += (size_t)sprintf(out + k, "%s\n  \"quantization_config\": ", empty ? "" : ",");
        memcpy(out + k, quantization_config_json, qlen);
        k += qlen;
        k += (size_t)sprintf(out + k, "\n}\n");
    } else {
        memcpy(out, text, len);
        k = len;
    }
    free(text);
    st = msbnb__write_file_atomic(dst_path, out, k, NULL);
    free(out);
    return st;
}
