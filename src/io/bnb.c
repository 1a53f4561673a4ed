/*
 * bnb.c — quantized weights in checkpoints, as bitsandbytes and transformers store them.
 *
 * Source of the layouts (facts, re-implemented): bitsandbytes functional.py QuantState.as_dict /
 * from_dict, utils.py pack_dict_to_tensor (json.dumps of the non-tensor items, UTF-8 bytes as a
 * uint8 tensor), nn/modules.py Linear4bit._save_to_state_dict ("weight." + each as_dict key) and
 * Linear8bitLt._save_to_state_dict (SCB, weight_format = uint8 scalar 0 = "row"); transformers
 * BitsAndBytesConfig.to_dict. The table of entries is in io.h; docs/io.md has the full story.
 *
 *   NF4/FP4, n = rows*cols, nb = ceil(n / blocksize), nn = ceil(nb / nested_blocksize):
 *     <w>                         U8  [ceil(n/2), 1]
 *     <w>.absmax                  F32 [nb]          (U8 [nb] codes when double-quantized)
 *     <w>.quant_map               F32 [16]
 *     <w>.nested_absmax           F32 [nn]          (double quant)
 *     <w>.nested_quant_map        F32 [256]         (double quant)
 *     <w>.quant_state.bitsandbytes__<nf4|fp4>   U8 [len] JSON
 */
#define IO_API "msbnb_bnb"
#include "io/io_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ Python float repr */

/* Python's repr(float(x)) for a double: the shortest digit string that reads back to the same
 * double (what json.dumps writes for a float), in fixed notation when the decimal exponent is in
 * [-4, 16), else scientific with a two-digit-minimum exponent ("1e-05", "1.5e+16"). A float32
 * widened to double (torch's .item()) usually needs 9..17 digits, e.g. 2.563678741455078. */
void msbnb__python_float_repr(double v, char *out, size_t cap) {
    if (isnan(v)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, cap, v > 0 ? "Infinity" : "-Infinity");
        return;
    }
    if (v == 0) {
        snprintf(out, cap, signbit(v) ? "-0.0" : "0.0");
        return;
    }
    char buf[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v) break;
    }
    /* buf = [-]d[.ddd]e±XX: collect the digits and the exponent */
    const char *p = buf;
    bool neg = *p == '-';
    if (neg) p++;
    char digits[20];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int exp10 = atoi(p + 1);
    char *o = out;
    size_t left = cap;
#define EMIT(...)                                              \
    do {                                                       \
        int k_ = snprintf(o, left, __VA_ARGS__);               \
        if (k_ < 0 || (size_t)k_ >= left) return;              \
        o += k_;                                               \
        left -= (size_t)k_;                                    \
    } while (0)
    if (neg) EMIT("-");
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 < 0) {
            EMIT("0.");
            for (int i = 0; i < -exp10 - 1; i++) EMIT("0");
            EMIT("%.*s", nd, digits);
        } else {
            int int_digits = exp10 + 1;
            for (int i = 0; i < int_digits; i++) EMIT("%c", i < nd ? digits[i] : '0');
            EMIT(".");
            if (nd > int_digits) EMIT("%.*s", nd - int_digits, digits + int_digits);
            else EMIT("0");
        }
    } else {
        EMIT("%c", digits[0]);
        if (nd > 1) EMIT(".%.*s", nd - 1, digits + 1);
        EMIT("e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    }
#undef EMIT
}

static const char *torch_dtype_name(msbnb_dtype d) {
    return d == MSBNB_DTYPE_F16 ? "float16" : d == MSBNB_DTYPE_BF16 ? "bfloat16" : "float32";
}

/* ================================================================ quant-state JSON */

msbnb_status msbnb_bnb_quant_state_json(const msbnb_qtensor *q, msbnb_dtype orig_dtype, char **out, size_t *len) {
    RETURN_IF(!q || !out || !len, MSBNB_ERR_INVALID_ARG, "NULL argument");
    msbnb_qtensor_view v;
    TRY(msbnb_qtensor_get_view(q, &v));
    RETURN_IF(v.type != MSBNB_QTYPE_NF4 && v.type != MSBNB_QTYPE_FP4, MSBNB_ERR_INVALID_ARG,
              "quant state JSON exists for nf4/fp4 only, not %s", msbnb_qtype_name(v.type));
    char buf[512], off[64];
    int k;
    /* json.dumps of the dict in as_dict's insertion order, default separators ", " and ": " */
    if (v.double_quant) {
        msbnb__python_float_repr((double)v.nested_offset, off, sizeof off);
        k = snprintf(buf, sizeof buf,
                     "{\"quant_type\": \"%s\", \"blocksize\": %d, \"dtype\": \"%s\", \"shape\": [%lld, %lld], "
                     "\"nested_blocksize\": %d, \"nested_dtype\": \"float32\", \"nested_offset\": %s}",
                     msbnb_qtype_name(v.type), v.blocksize, torch_dtype_name(orig_dtype), (long long)v.rows,
                     (long long)v.cols, v.nested_blocksize, off);
    } else {
        k = snprintf(buf, sizeof buf, "{\"quant_type\": \"%s\", \"blocksize\": %d, \"dtype\": \"%s\", \"shape\": [%lld, %lld]}",
                     msbnb_qtype_name(v.type), v.blocksize, torch_dtype_name(orig_dtype), (long long)v.rows,
                     (long long)v.cols);
    }
    RETURN_IF(k < 0 || (size_t)k >= sizeof buf, MSBNB_ERR_INTERNAL, "quant state JSON too long");
    char *s = malloc((size_t)k + 1);
    RETURN_IF(!s, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(s, buf, (size_t)k + 1);
    *out = s;
    *len = (size_t)k;
    return MSBNB_OK;
}

/* ================================================================ names */

static const char *const aux_suffixes[] = {".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map",
                                           ".SCB",    ".weight_format", ".scales", ".zero_point"};

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !memcmp(s + a - b, suffix, b);
}

int msbnb_bnb_is_aux_name(const char *name) {
    if (!name) return 0;
    if (strstr(name, ".quant_state.bitsandbytes__") || strstr(name, ".quant_state.msbnb__")) return 1;
    if (!strcmp(name, "SCB") || !strcmp(name, "weight_format")) return 1;
    for (size_t i = 0; i < sizeof aux_suffixes / sizeof aux_suffixes[0]; i++)
        if (ends_with(name, aux_suffixes[i])) return 1;
    return 0;
}

/* name + suffix into a malloc'ed string. */
char *msbnb__bnb_key(const char *a, const char *b) {
    size_t x = strlen(a), y = strlen(b);
    char *s = malloc(x + y + 1);
    if (!s) return NULL;
    memcpy(s, a, x);
    memcpy(s + x, b, y + 1);
    return s;
}

/* "<prefix>SCB" for "<prefix>weight" (Linear8bitLt keys hang off the module, not the weight). */
char *msbnb__bnb_module_key(const char *weight_name, const char *key) {
    size_t n = strlen(weight_name);
    size_t keep = ends_with(weight_name, "weight") ? n - 6 : n;
    char *s = malloc(keep + strlen(key) + 2);
    if (!s) return NULL;
    memcpy(s, weight_name, keep);
    if (keep == n) s[keep++] = '.'; /* not "...weight": treat the whole name as the module */
    strcpy(s + keep, key);
    return s;
}

static bool has(const msbnb_checkpoint *ck, const char *name) {
    msbnb_tensor_info t;
    return msbnb__checkpoint_lookup(ck, name, &t);
}

/* ---------------------------------------------------------------- a quantized weight's parts */

/* Entries hanging off "<weight>" and off "<module>." (Linear8bitLt) */
static const char *const weight_suffixes[] = {
    ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map", ".quant_state.bitsandbytes__nf4",
    ".quant_state.bitsandbytes__fp4", ".quant_state.msbnb__int4", ".quant_state.msbnb__int8", ".scales", ".zero_point"};
static const char *const module_suffixes[] = {"SCB", "weight_format"};

/* name is present and stored quantized (no error recorded otherwise). */
static bool is_quantized(const msbnb_checkpoint *ck, const char *name) {
    msbnb_qtype q = MSBNB_QTYPE_NONE;
    return has(ck, name) && msbnb_bnb_detect(ck, name, &q) == MSBNB_OK && q != MSBNB_QTYPE_NONE;
}

/* name with its `suffix` replaced by `with` when that names a quantized weight of ck (malloc'ed),
 * else NULL. */
static char *quantized_base(const msbnb_checkpoint *ck, const char *name, const char *suffix, const char *with) {
    if (!ends_with(name, suffix)) return NULL;
    size_t keep = strlen(name) - strlen(suffix);
    char *p = malloc(keep + strlen(with) + 1);
    if (!p) return NULL;
    memcpy(p, name, keep);
    strcpy(p + keep, with);
    if (is_quantized(ck, p)) return p;
    free(p);
    return NULL;
}

int msbnb_bnb_aux_parent(const msbnb_checkpoint *ck, const char *name, char **parent) {
    if (parent) *parent = NULL;
    if (!ck || !name || !parent || !msbnb_bnb_is_aux_name(name)) return 0;
    for (size_t i = 0; i < sizeof weight_suffixes / sizeof weight_suffixes[0] && !*parent; i++)
        *parent = quantized_base(ck, name, weight_suffixes[i], "");
    for (size_t i = 0; i < sizeof module_suffixes / sizeof module_suffixes[0] && !*parent; i++)
        *parent = quantized_base(ck, name, module_suffixes[i], "weight");
    return *parent != NULL;
}

uint64_t msbnb_bnb_logical_bytes(const msbnb_checkpoint *ck, const char *name) {
    msbnb_tensor_info t, a;
    if (!ck || !name || !msbnb__checkpoint_lookup(ck, name, &t)) return 0;
    uint64_t total = t.nbytes;
    if (!is_quantized(ck, name)) return total;
    for (size_t i = 0; i < sizeof weight_suffixes / sizeof weight_suffixes[0]; i++) {
        char *key = msbnb__bnb_key(name, weight_suffixes[i]);
        if (key && msbnb__checkpoint_lookup(ck, key, &a)) total += a.nbytes;
        free(key);
    }
    for (size_t i = 0; i < sizeof module_suffixes / sizeof module_suffixes[0]; i++) {
        char *key = msbnb__bnb_module_key(name, module_suffixes[i]);
        if (key && msbnb__checkpoint_lookup(ck, key, &a)) total += a.nbytes;
        free(key);
    }
    return total;
}

msbnb_status msbnb_bnb_detect(const msbnb_checkpoint *ck, const char *name, msbnb_qtype *out) {
    RETURN_IF(!ck || !name || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    msbnb_tensor_info t;
    TRY(msbnb_checkpoint_find(ck, name, &t));
    static const struct {
        const char *suffix;
        msbnb_qtype type;
    } kinds[] = {{".quant_state.bitsandbytes__nf4", MSBNB_QTYPE_NF4},
                 {".quant_state.bitsandbytes__fp4", MSBNB_QTYPE_FP4},
                 {".quant_state.msbnb__int4", MSBNB_QTYPE_INT4},
                 {".quant_state.msbnb__int8", MSBNB_QTYPE_INT8}};
    *out = MSBNB_QTYPE_NONE;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char *k = msbnb__bnb_key(name, kinds[i].suffix);
        RETURN_IF(!k, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
        bool found = has(ck, k);
        free(k);
        if (found) {
            *out = kinds[i].type;
            return MSBNB_OK;
        }
    }
    if (t.dtype == MSBNB_ST_I8 && ends_with(name, "weight")) {
        char *scb = msbnb__bnb_module_key(name, "SCB");
        RETURN_IF(!scb, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
        if (has(ck, scb)) *out = MSBNB_QTYPE_INT8;
        free(scb);
    }
    return MSBNB_OK;
}

/* ================================================================ writing */

/* Add `<name><suffix>` to w. */
static msbnb_status add_part(msbnb_st_writer *w, const char *name, const char *suffix, msbnb_st_dtype dt, int ndim,
                             const int64_t *shape, const void *data, size_t nbytes) {
    char *k = msbnb__bnb_key(name, suffix);
    RETURN_IF(!k, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    msbnb_status st = msbnb_st_writer_add(w, k, dt, ndim, shape, data, nbytes);
    free(k);
    return st;
}

/* The double-quantized statistics: codes under `stats_suffix`, then nested_absmax and map. */
static msbnb_status add_nested(msbnb_st_writer *w, const char *name, const char *stats_suffix,
                               const msbnb_qtensor_view *v) {
    int64_t ns = (int64_t)v->n_stats, nn = (int64_t)v->n_nested, n256 = 256;
    TRY(add_part(w, name, stats_suffix, MSBNB_ST_U8, 1, &ns, v->stats_q, v->n_stats));
    TRY(add_part(w, name, ".nested_absmax", MSBNB_ST_F32, 1, &nn, v->nested_absmax, v->n_nested * sizeof(float)));
    return add_part(w, name, ".nested_quant_map", MSBNB_ST_F32, 1, &n256, v->nested_code, 256 * sizeof(float));
}

/* JSON for msbnb's own layouts (INT4, non-bnb INT8): same style as bitsandbytes' quant state. */
static msbnb_status own_quant_state(const msbnb_qtensor_view *v, msbnb_dtype orig_dtype, char *buf, size_t cap,
                                    size_t *len) {
    int k;
    if (v->type == MSBNB_QTYPE_INT4) {
        k = snprintf(buf, cap, "{\"quant_type\": \"int4\", \"group_size\": %d, \"dtype\": \"%s\", \"shape\": [%lld, %lld], "
                     "\"format_version\": %d",
                     v->group_size, torch_dtype_name(orig_dtype), (long long)v->rows, (long long)v->cols,
                     MSBNB_FORMAT_VERSION);
        if (k > 0 && (size_t)k < cap && v->double_quant) {
            char off[48];
            msbnb__python_float_repr((double)v->nested_offset, off, sizeof off);
            k += snprintf(buf + k, cap - (size_t)k,
                          ", \"nested_blocksize\": %d, \"nested_dtype\": \"float32\", \"nested_offset\": %s",
                          v->nested_blocksize, off);
        }
        if (k > 0 && (size_t)k < cap) k += snprintf(buf + k, cap - (size_t)k, "}");
    } else {
        char thr[48];
        msbnb__python_float_repr((double)v->threshold, thr, sizeof thr);
        k = snprintf(buf, cap,
                     "{\"quant_type\": \"int8\", \"asymmetric\": %s, \"per_row\": %s, \"threshold\": %s, \"dtype\": "
                     "\"%s\", \"shape\": [%lld, %lld], \"format_version\": %d}",
                     v->asymmetric ? "true" : "false", v->per_row ? "true" : "false", thr,
                     torch_dtype_name(orig_dtype), (long long)v->rows, (long long)v->cols, MSBNB_FORMAT_VERSION);
    }
    RETURN_IF(k < 0 || (size_t)k >= cap, MSBNB_ERR_INTERNAL, "quant state JSON too long");
    *len = (size_t)k;
    return MSBNB_OK;
}

static msbnb_status write_4bit(msbnb_st_writer *w, const char *name, const msbnb_qtensor *q,
                               const msbnb_qtensor_view *v, msbnb_dtype orig_dtype) {
    int64_t packed_shape[2] = {(int64_t)v->data_bytes, 1};
    TRY(msbnb_st_writer_add(w, name, MSBNB_ST_U8, 2, packed_shape, v->data, v->data_bytes));
    int64_t ns = (int64_t)v->n_stats, n16 = 16;
    if (v->double_quant) TRY(add_nested(w, name, ".absmax", v));
    else TRY(add_part(w, name, ".absmax", MSBNB_ST_F32, 1, &ns, v->stats, v->n_stats * sizeof(float)));
    TRY(add_part(w, name, ".quant_map", MSBNB_ST_F32, 1, &n16, v->code, 16 * sizeof(float)));
    char *json;
    size_t len;
    TRY(msbnb_bnb_quant_state_json(q, orig_dtype, &json, &len));
    int64_t jl = (int64_t)len;
    msbnb_status st = add_part(w, name, v->type == MSBNB_QTYPE_NF4 ? ".quant_state.bitsandbytes__nf4"
                                                                   : ".quant_state.bitsandbytes__fp4",
                               MSBNB_ST_U8, 1, &jl, json, len);
    free(json);
    return st;
}

static msbnb_status write_int8(msbnb_st_writer *w, const char *name, const msbnb_qtensor_view *v,
                               msbnb_dtype orig_dtype) {
    int64_t shape[2] = {v->rows, v->cols};
    int64_t ns = (int64_t)v->n_stats;
    if (!v->asymmetric && v->per_row) {
        /* Linear8bitLt: weight int8 [rows, cols], SCB f32 [rows], weight_format u8 scalar 0 */
        TRY(msbnb_st_writer_add(w, name, MSBNB_ST_I8, 2, shape, v->data, v->data_bytes));
        char *scb = msbnb__bnb_module_key(name, "SCB");
        char *fmt = msbnb__bnb_module_key(name, "weight_format");
        msbnb_status st = scb && fmt ? MSBNB_OK : MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
        uint8_t row_format = 0;
        if (st == MSBNB_OK) st = msbnb_st_writer_add(w, scb, MSBNB_ST_F32, 1, &ns, v->stats, v->n_stats * sizeof(float));
        if (st == MSBNB_OK) st = msbnb_st_writer_add(w, fmt, MSBNB_ST_U8, 0, NULL, &row_format, 1);
        free(scb);
        free(fmt);
        return st;
    }
    TRY(msbnb_st_writer_add(w, name, v->asymmetric ? MSBNB_ST_U8 : MSBNB_ST_I8, 2, shape, v->data, v->data_bytes));
    TRY(add_part(w, name, ".scales", MSBNB_ST_F32, 1, &ns, v->stats, v->n_stats * sizeof(float)));
    if (v->asymmetric)
        TRY(add_part(w, name, ".zero_point", MSBNB_ST_I32, 1, &ns, v->zero_point, v->n_stats * sizeof(int32_t)));
    char json[512];
    size_t len;
    TRY(own_quant_state(v, orig_dtype, json, sizeof json, &len));
    int64_t jl = (int64_t)len;
    return add_part(w, name, ".quant_state.msbnb__int8", MSBNB_ST_U8, 1, &jl, json, len);
}

static msbnb_status write_int4(msbnb_st_writer *w, const char *name, const msbnb_qtensor_view *v,
                               msbnb_dtype orig_dtype) {
    int64_t shape[2] = {v->rows, v->cols / 2};
    TRY(msbnb_st_writer_add(w, name, MSBNB_ST_U8, 2, shape, v->data, v->data_bytes));
    if (v->double_quant) {
        TRY(add_nested(w, name, ".scales", v));
    } else {
        int64_t sshape[2] = {v->cols / v->group_size, v->rows};
        TRY(add_part(w, name, ".scales", MSBNB_ST_F32, 2, sshape, v->stats, v->n_stats * sizeof(float)));
    }
    char json[512];
    size_t len;
    TRY(own_quant_state(v, orig_dtype, json, sizeof json, &len));
    int64_t jl = (int64_t)len;
    return add_part(w, name, ".quant_state.msbnb__int4", MSBNB_ST_U8, 1, &jl, json, len);
}

msbnb_status msbnb_bnb_write(msbnb_st_writer *w, const char *name, const msbnb_qtensor *q, msbnb_dtype orig_dtype) {
    RETURN_IF(!w || !name || !q, MSBNB_ERR_INVALID_ARG, "NULL argument");
    msbnb_qtensor_view v;
    TRY(msbnb_qtensor_get_view(q, &v));
    switch (v.type) {
    case MSBNB_QTYPE_NF4:
    case MSBNB_QTYPE_FP4: return write_4bit(w, name, q, &v, orig_dtype);
    case MSBNB_QTYPE_INT8: return write_int8(w, name, &v, orig_dtype);
    case MSBNB_QTYPE_INT4: return write_int4(w, name, &v, orig_dtype);
    default: break;
    }
    return MSBNB_FAIL(MSBNB_ERR_UNSUPPORTED, "tensor '%.120s': no checkpoint layout for %s", name,
                      msbnb_qtype_name(v.type));
}

/* ================================================================ quantization_config */

msbnb_status msbnb_bnb_quantization_config_json(const msbnb_quant_config *cfg, const char *const *skip,
                                                size_t n_skip, char **out) {
    RETURN_IF(!cfg || !out || (n_skip && !skip), MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    cJSON *o = cJSON_CreateObject();
    RETURN_IF(!o, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    bool four = cfg->type == MSBNB_QTYPE_NF4 || cfg->type == MSBNB_QTYPE_FP4;
    bool eight = cfg->type == MSBNB_QTYPE_INT8 && !cfg->asymmetric && cfg->per_row;
    cJSON *sk = NULL;
    if (n_skip) {
        sk = cJSON_CreateArray();
        for (size_t i = 0; sk && i < n_skip; i++) cJSON_AddItemToArray(sk, cJSON_CreateString(skip[i]));
    } else {
        sk = cJSON_CreateNull();
    }
    if (four || eight) {
        /* transformers BitsAndBytesConfig.to_dict(), keys in its order */
        cJSON_AddStringToObject(o, "quant_method", "bitsandbytes");
        cJSON_AddBoolToObject(o, "_load_in_8bit", eight);
        cJSON_AddBoolToObject(o, "_load_in_4bit", four);
        /* a float in Python ("6.0", not "6"): transformers rejects an int here */
        char thr[48];
        msbnb__python_float_repr(eight ? (double)cfg->threshold : 6.0, thr, sizeof thr);
        cJSON_AddRawToObject(o, "llm_int8_threshold", thr);
        cJSON_AddItemToObject(o, "llm_int8_skip_modules", sk);
        cJSON_AddBoolToObject(o, "llm_int8_enable_fp32_cpu_offload", 0);
        cJSON_AddBoolToObject(o, "llm_int8_has_fp16_weight", 0);
        cJSON_AddStringToObject(o, "bnb_4bit_quant_type", cfg->type == MSBNB_QTYPE_NF4 ? "nf4" : "fp4");
        cJSON_AddBoolToObject(o, "bnb_4bit_use_double_quant", four && cfg->double_quant);
        cJSON_AddStringToObject(o, "bnb_4bit_compute_dtype", "float32");
        cJSON_AddStringToObject(o, "bnb_4bit_quant_storage", "uint8");
        cJSON_AddBoolToObject(o, "load_in_4bit", four);
        cJSON_AddBoolToObject(o, "load_in_8bit", eight);
    } else {
        /* msbnb's own layouts: transformers cannot load them; tools can tell from quant_method */
        cJSON_AddStringToObject(o, "quant_method", "msbnb");
        cJSON_AddStringToObject(o, "quant_type", msbnb_qtype_name(cfg->type));
        cJSON_AddNumberToObject(o, "format_version", MSBNB_FORMAT_VERSION);
        if (cfg->type == MSBNB_QTYPE_INT4) {
            cJSON_AddNumberToObject(o, "group_size", cfg->group_size);
            cJSON_AddBoolToObject(o, "double_quant", cfg->double_quant);
        } else {
            cJSON_AddBoolToObject(o, "asymmetric", cfg->asymmetric);
            cJSON_AddBoolToObject(o, "per_row", cfg->per_row);
        }
        cJSON_AddItemToObject(o, "modules_to_not_convert", sk);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    RETURN_IF(!s, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    *out = s;
    return MSBNB_OK;
}
