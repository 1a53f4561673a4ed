/*
 * bnb_read.c — rebuild a msbnb_qtensor from the entries a quantized weight occupies in a
 * checkpoint (layouts in io.h and bnb.c). Files are untrusted: every part's dtype and element
 * count is checked against the quant state before msbnb_qtensor_from_view copies anything.
 * Complexity: O(size of the quant-state JSON + log n) name lookups per weight; the parts are
 * copied once.
 */
#define IO_API "msbnb_bnb_read"
#include "io/io_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Float32 copy of an entry that must hold exactly `want` elements (F32/F16/BF16 accepted). */
static msbnb_status read_floats(const msbnb_checkpoint *ck, const char *name, const char *suffix, size_t want,
                                float **out) {
    *out = NULL;
    char *k = msbnb__bnb_key(name, suffix);
    RETURN_IF(!k, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    msbnb_tensor_info t;
    msbnb_status st = MSBNB_OK;
    if (!msbnb__checkpoint_lookup(ck, k, &t))
        st = MSBNB_FAIL(MSBNB_ERR_NOT_FOUND, "tensor '%.120s': missing entry '%.120s'", name, k);
    else if (t.dtype != MSBNB_ST_F32 && t.dtype != MSBNB_ST_F16 && t.dtype != MSBNB_ST_BF16)
        st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: tensor '%.120s': dtype %s, expected F32 (byte %llu)", t.file, k,
                        msbnb_st_dtype_name(t.dtype), (unsigned long long)t.file_offset);
    else if ((size_t)t.numel != want)
        st = MSBNB_FAIL(MSBNB_ERR_SHAPE, "%s: tensor '%.120s': %lld elements, the quant state needs %zu (byte %llu)",
                        t.file, k, (long long)t.numel, want, (unsigned long long)t.file_offset);
    if (st == MSBNB_OK) {
        *out = malloc((want ? want : 1) * sizeof(float));
        st = *out ? msbnb_tensor_to_f32(&t, *out) : MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    free(k);
    return st;
}

/* Borrowed bytes of an entry that must hold exactly `want` bytes of a 1-byte dtype. */
static msbnb_status read_bytes(const msbnb_checkpoint *ck, const char *key, size_t want, bool allow_i8,
                               msbnb_tensor_info *t) {
    if (!msbnb__checkpoint_lookup(ck, key, t)) return MSBNB_FAIL(MSBNB_ERR_NOT_FOUND, "missing entry '%.120s'", key);
    if (t->dtype != MSBNB_ST_U8 && !(allow_i8 && t->dtype == MSBNB_ST_I8))
        return MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: tensor '%.120s': dtype %s, expected U8 (byte %llu)", t->file, key,
                          msbnb_st_dtype_name(t->dtype), (unsigned long long)t->file_offset);
    if (t->nbytes != want)
        return MSBNB_FAIL(MSBNB_ERR_SHAPE, "%s: tensor '%.120s': %zu bytes, the quant state needs %zu (byte %llu)",
                          t->file, key, t->nbytes, want, (unsigned long long)t->file_offset);
    return MSBNB_OK;
}

/* The quant-state JSON entry, parsed. */
static msbnb_status read_state(const msbnb_checkpoint *ck, const char *name, const char *suffix, cJSON **out) {
    *out = NULL;
    char *k = msbnb__bnb_key(name, suffix);
    RETURN_IF(!k, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    msbnb_tensor_info t;
    msbnb_status st = MSBNB_OK;
    if (!msbnb__checkpoint_lookup(ck, k, &t)) st = MSBNB_FAIL(MSBNB_ERR_NOT_FOUND, "missing entry '%.120s'", k);
    else if (t.dtype != MSBNB_ST_U8 || t.nbytes > 65536)
        st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: tensor '%.120s': quant state must be U8 JSON of at most 64 KB (byte %llu)",
                        t.file, k, (unsigned long long)t.file_offset);
    else {
        size_t off;
        const char *reason;
        st = msbnb__json_parse(t.data, t.nbytes, 8, false, out, &off, &reason);
        if (st != MSBNB_OK)
            st = MSBNB_FAIL(st, "%s: tensor '%.120s': %s (byte %llu)", t.file, k, reason,
                            (unsigned long long)(t.file_offset + off));
        else if (!cJSON_IsObject(*out)) {
            cJSON_Delete(*out);
            *out = NULL;
            st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: tensor '%.120s': quant state is not a JSON object (byte %llu)", t.file,
                            k, (unsigned long long)t.file_offset);
        }
    }
    free(k);
    return st;
}

static bool json_str_is(const cJSON *o, const char *key, const char *want) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(x) && !strcmp(x->valuestring, want);
}

static bool json_get_int(const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t *out) {
    return msbnb__json_int(cJSON_GetObjectItemCaseSensitive(o, key), lo, hi, out);
}

/* "shape": [out, in] (bitsandbytes keeps the weight's original shape; every weight msbnb reads
 * this way is a Linear weight, so exactly two dimensions: a 3-D or 1-D shape is refused). Also
 * checks the optional "dtype" (the original weight's dtype, as bnb writes it): float32, float16 or
 * bfloat16. */
static bool json_shape(const cJSON *o, int64_t *rows, int64_t *cols) {
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(o, "dtype");
    if (dt && !(cJSON_IsString(dt) && (!strcmp(dt->valuestring, "float32") || !strcmp(dt->valuestring, "float16") ||
                                       !strcmp(dt->valuestring, "bfloat16"))))
        return false;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "shape");
    if (!cJSON_IsArray(s) || cJSON_GetArraySize(s) != 2) return false;
    int64_t r = 1, c = 1, v;
    for (const cJSON *x = s->child; x; x = x->next) {
        if (!msbnb__json_int(x, 1, MSBNB_MAX_DIM, &v)) return false;
        if (x->next) {
            if (r > (INT64_C(1) << 48) / v) return false;
            r *= v;
        } else {
            c = v;
        }
    }
    if (r > (INT64_C(1) << 48) / c) return false;
    *rows = r;
    *cols = c;
    return true;
}

/* Nested statistics (double quant) into the view; the three buffers are owned by the caller. */
static msbnb_status read_nested(const msbnb_checkpoint *ck, const char *name, const char *stats_suffix,
                                const cJSON *js, msbnb_qtensor_view *v, float **nested_absmax, float **nested_code) {
    int64_t nbs;
    double off;
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(js, "nested_offset");
    if (!json_get_int(js, "nested_blocksize", 1, 1 << 20, &nbs) || !cJSON_IsNumber(o) ||
        !json_str_is(js, "nested_dtype", "float32"))
        return MSBNB_FAIL(MSBNB_ERR_FORMAT, "tensor '%.120s': quant state lacks nested_blocksize/nested_dtype/nested_offset",
                          name);
    off = o->valuedouble;
    v->double_quant = 1;
    v->nested_blocksize = (int)nbs;
    v->nested_offset = (float)off;
    v->n_nested = (v->n_stats + (size_t)nbs - 1) / (size_t)nbs;
    char *k = msbnb__bnb_key(name, stats_suffix);
    RETURN_IF(!k, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    msbnb_tensor_info t;
    msbnb_status st = read_bytes(ck, k, v->n_stats, false, &t);
    free(k);
    TRY(st);
    v->stats_q = t.data;
    TRY(read_floats(ck, name, ".nested_absmax", v->n_nested, nested_absmax));
    TRY(read_floats(ck, name, ".nested_quant_map", 256, nested_code));
    v->nested_absmax = *nested_absmax;
    v->nested_code = *nested_code;
    return MSBNB_OK;
}

static msbnb_status read_4bit(const msbnb_checkpoint *ck, const char *name, msbnb_qtype type, msbnb_qtensor **out) {
    const char *suffix = type == MSBNB_QTYPE_NF4 ? ".quant_state.bitsandbytes__nf4" : ".quant_state.bitsandbytes__fp4";
    cJSON *js;
    TRY(read_state(ck, name, suffix, &js));
    msbnb_qtensor_view v;
    memset(&v, 0, sizeof v);
    v.type = type;
    int64_t bs;
    msbnb_status st = MSBNB_OK;
    if (!json_str_is(js, "quant_type", msbnb_qtype_name(type)) || !json_get_int(js, "blocksize", 1, 1 << 20, &bs) ||
        !json_shape(js, &v.rows, &v.cols))
        st = MSBNB_FAIL(MSBNB_ERR_FORMAT,
                        "tensor '%.120s': quant state needs quant_type \"%s\", blocksize, a 2-D shape and a float "
                        "dtype (float32, float16, bfloat16) if any",
                        name, msbnb_qtype_name(type));
    float *absmax = NULL, *code = NULL, *nested_absmax = NULL, *nested_code = NULL;
    msbnb_tensor_info t;
    if (st == MSBNB_OK) {
        v.blocksize = (int)bs;
        size_t n = (size_t)v.rows * (size_t)v.cols;
        v.n_stats = (n + (size_t)bs - 1) / (size_t)bs;
        /* bnb may store the packed codes in another storage dtype (quant_storage); bytes count */
        if (!msbnb__checkpoint_lookup(ck, name, &t))
            st = MSBNB_FAIL(MSBNB_ERR_NOT_FOUND, "missing tensor '%.120s'", name);
        else if (t.nbytes != (n + 1) / 2)
            st = MSBNB_FAIL(MSBNB_ERR_SHAPE, "%s: tensor '%.120s': %zu bytes of packed codes, shape needs %zu (byte %llu)",
                            t.file, name, t.nbytes, (n + 1) / 2, (unsigned long long)t.file_offset);
        v.data = t.data;
        v.data_bytes = t.nbytes;
    }
    if (st == MSBNB_OK) st = read_floats(ck, name, ".quant_map", 16, &code);
    if (st == MSBNB_OK) {
        v.code = code;
        v.code_len = 16;
        if (cJSON_GetObjectItemCaseSensitive(js, "nested_offset")) {
            st = read_nested(ck, name, ".absmax", js, &v, &nested_absmax, &nested_code);
        } else {
            st = read_floats(ck, name, ".absmax", v.n_stats, &absmax);
            v.stats = absmax;
        }
    }
    if (st == MSBNB_OK) st = msbnb_qtensor_from_view(&v, out);
    cJSON_Delete(js);
    free(absmax);
    free(code);
    free(nested_absmax);
    free(nested_code);
    return st;
}

static msbnb_status read_int8_bnb(const msbnb_checkpoint *ck, const char *name, msbnb_qtensor **out) {
    msbnb_tensor_info t;
    TRY(msbnb_checkpoint_find(ck, name, &t));
    if (t.dtype != MSBNB_ST_I8 || t.ndim != 2)
        return MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: tensor '%.120s': Linear8bitLt weight must be I8 [out, in] (byte %llu)",
                          t.file, name, (unsigned long long)t.file_offset);
    msbnb_qtensor_view v;
    memset(&v, 0, sizeof v);
    v.type = MSBNB_QTYPE_INT8;
    v.rows = t.shape[0];
    v.cols = t.shape[1];
    v.per_row = 1;
    v.threshold = 6.0f;
    double thr;
    const msbnb_config *cfg = msbnb_checkpoint_config(ck);
    if (cfg && msbnb_config_get_double(cfg, "quantization_config.llm_int8_threshold", &thr) == MSBNB_OK)
        v.threshold = (float)thr;
    v.data = t.data;
    v.data_bytes = t.nbytes;
    char *scb = msbnb__bnb_module_key(name, "SCB");
    char *fmt = msbnb__bnb_module_key(name, "weight_format");
    float *stats = NULL;
    msbnb_status st = scb && fmt ? MSBNB_OK : MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == MSBNB_OK) st = read_floats(ck, scb, "", (size_t)v.rows, &stats);
    msbnb_tensor_info f;
    /* weight_format is optional; when present it must say "row" (0), the only layout bnb loads */
    if (st == MSBNB_OK && msbnb__checkpoint_lookup(ck, fmt, &f) &&
        (f.numel != 1 || f.dtype != MSBNB_ST_U8 || ((const uint8_t *)f.data)[0] != 0))
        st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: tensor '%.120s': only weight_format 0 (row) is supported (byte %llu)",
                        f.file, fmt, (unsigned long long)f.file_offset);
    v.stats = stats;
    v.n_stats = (size_t)v.rows;
    if (st == MSBNB_OK) st = msbnb_qtensor_from_view(&v, out);
    free(stats);
    free(scb);
    free(fmt);
    return st;
}

static msbnb_status read_own(const msbnb_checkpoint *ck, const char *name, msbnb_qtype type, msbnb_qtensor **out) {
    cJSON *js;
    TRY(read_state(ck, name, type == MSBNB_QTYPE_INT4 ? ".quant_state.msbnb__int4" : ".quant_state.msbnb__int8", &js));
    msbnb_qtensor_view v;
    memset(&v, 0, sizeof v);
    v.type = type;
    msbnb_status st = MSBNB_OK;
    int64_t ver, gs = 0;
    if (!json_str_is(js, "quant_type", msbnb_qtype_name(type)) || !json_shape(js, &v.rows, &v.cols) ||
        !json_get_int(js, "format_version", 1, MSBNB_FORMAT_VERSION, &ver))
        st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "tensor '%.120s': quant state needs quant_type, a 2-D shape and format_version <= %d",
                        name, MSBNB_FORMAT_VERSION);
    size_t n = (size_t)v.rows * (size_t)v.cols;
    float *stats = NULL, *nested_absmax = NULL, *nested_code = NULL;
    int32_t *zp = NULL;
    msbnb_tensor_info t;
    if (st == MSBNB_OK && type == MSBNB_QTYPE_INT4) {
        if (!json_get_int(js, "group_size", 2, 1 << 20, &gs) || v.cols % gs || gs % 2)
            st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "tensor '%.120s': group_size missing or not dividing %lld columns", name,
                            (long long)v.cols);
        if (st == MSBNB_OK) st = read_bytes(ck, name, n / 2, false, &t);
        if (st == MSBNB_OK) {
            v.group_size = (int)gs;
            v.data = t.data;
            v.data_bytes = t.nbytes;
            v.n_stats = (size_t)(v.cols / gs) * (size_t)v.rows;
            if (cJSON_GetObjectItemCaseSensitive(js, "nested_offset"))
                st = read_nested(ck, name, ".scales", js, &v, &nested_absmax, &nested_code);
            else {
                st = read_floats(ck, name, ".scales", v.n_stats, &stats);
                v.stats = stats;
            }
        }
    } else if (st == MSBNB_OK) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(js, "asymmetric");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(js, "per_row");
        const cJSON *th = cJSON_GetObjectItemCaseSensitive(js, "threshold");
        if (!cJSON_IsBool(a) || !cJSON_IsBool(p) || !cJSON_IsNumber(th))
            st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "tensor '%.120s': quant state needs asymmetric, per_row, threshold", name);
        if (st == MSBNB_OK) {
            v.asymmetric = cJSON_IsTrue(a);
            v.per_row = cJSON_IsTrue(p);
            v.threshold = (float)th->valuedouble;
            v.n_stats = v.per_row ? (size_t)v.rows : 1;
            st = read_bytes(ck, name, n, !v.asymmetric, &t);
        }
        if (st == MSBNB_OK && t.dtype != (v.asymmetric ? MSBNB_ST_U8 : MSBNB_ST_I8))
            st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "tensor '%.120s': codes must be %s", name, v.asymmetric ? "U8" : "I8");
        if (st == MSBNB_OK) {
            v.data = t.data;
            v.data_bytes = t.nbytes;
            st = read_floats(ck, name, ".scales", v.n_stats, &stats);
            v.stats = stats;
        }
        if (st == MSBNB_OK && v.asymmetric) {
            char *k = msbnb__bnb_key(name, ".zero_point");
            msbnb_tensor_info z;
            if (!k) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
            else if (!msbnb__checkpoint_lookup(ck, k, &z) || z.dtype != MSBNB_ST_I32 || (size_t)z.numel != v.n_stats)
                st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "tensor '%.120s': needs I32 zero points [%zu]", name, v.n_stats);
            else if (!(zp = malloc(v.n_stats * sizeof(int32_t))))
                st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
            else
                memcpy(zp, z.data, v.n_stats * sizeof(int32_t));
            free(k);
            v.zero_point = zp;
        }
    }
    if (st == MSBNB_OK) st = msbnb_qtensor_from_view(&v, out);
    cJSON_Delete(js);
    free(stats);
    free(zp);
    free(nested_absmax);
    free(nested_code);
    return st;
}

static msbnb_status read_any(const msbnb_checkpoint *ck, const char *name, msbnb_qtensor **out);

msbnb_status msbnb_bnb_read(const msbnb_checkpoint *ck, const char *name, msbnb_qtensor **out) {
    RETURN_IF(!ck || !name || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    msbnb_status st = read_any(ck, name, out);
    msbnb_tensor_info t;
    if (st != MSBNB_OK && !strstr(msbnb_last_error(), "(byte ") && msbnb__checkpoint_lookup(ck, name, &t)) {
        /* name the file and where the weight lies when the failing check did not */
        char msg[512];
        const char *m = msbnb_last_error();
        const char *colon = strstr(m, ": ");
        snprintf(msg, sizeof msg, "%s", colon && !strncmp(m, "msbnb", 5) ? colon + 2 : m);
        const char *body = msg;
        if (!strncmp(body, "tensor '", 8) && strstr(body, "': ")) body = strstr(body, "': ") + 3;
        st = MSBNB_FAIL(st, "%s: tensor '%.120s': %s (byte %llu)", t.file, name, body, (unsigned long long)t.file_offset);
    }
    return st;
}

static msbnb_status read_any(const msbnb_checkpoint *ck, const char *name, msbnb_qtensor **out) {
    msbnb_qtype type;
    TRY(msbnb_bnb_detect(ck, name, &type));
    switch (type) {
    case MSBNB_QTYPE_NF4:
    case MSBNB_QTYPE_FP4: return read_4bit(ck, name, type, out);
    case MSBNB_QTYPE_INT4: return read_own(ck, name, type, out);
    case MSBNB_QTYPE_INT8: {
        char *k = msbnb__bnb_key(name, ".quant_state.msbnb__int8");
        RETURN_IF(!k, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
        msbnb_tensor_info t;
        bool own = msbnb__checkpoint_lookup(ck, k, &t);
        free(k);
        return own ? read_own(ck, name, type, out) : read_int8_bnb(ck, name, out);
    }
    default: break;
    }
    return MSBNB_FAIL(MSBNB_ERR_INVALID_ARG, "tensor '%.120s' is not quantized", name);
}
