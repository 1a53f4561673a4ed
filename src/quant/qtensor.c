/*
 * qtensor.c — the quantized-tensor object: configuration defaults, validation, allocation,
 * msbnb_quantize*, msbnb_dequantize / _rows, from_view / wrap / validate / get_view / clone / free,
 * type names.
 * (fp16/bf16 entry points are in qtensor_convert.c.)
 *
 * Buffers owned by a tensor (shapes in quant.h, msbnb_qtensor_view):
 *   data        [data_bytes]  64-byte aligned codes
 *   stats       [n_stats]     float32, NULL when double quantized
 *   zero_point  [n_stats]     int32, INT8 asymmetric only
 *   stats_q     [n_stats]     uint8, double quant only; nested_absmax [n_nested]
 *   code / nested_code        inline 256-float arrays in the struct
 * The work itself is done by the flat format functions (int8.c, int4.c, and quant4's
 * fourbit.c / blockwise8.c / double_quant.c); this file only sizes, checks and routes.
 */
#include "quant/int_internal.h"
#include "quant/qtensor_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- names and defaults */

static const char *const type_names[] = {"f32", "int8", "int4", "nf4", "fp4", "blockwise8"};

const char *msbnb_qtype_name(msbnb_qtype t) {
    return (t >= MSBNB_QTYPE_NONE && t <= MSBNB_QTYPE_BLOCKWISE8) ? type_names[t] : "?";
}

msbnb_status msbnb_qtype_parse(const char *name, msbnb_qtype *out) {
    RETURN_IF(!name || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    for (int t = MSBNB_QTYPE_NONE; t <= MSBNB_QTYPE_BLOCKWISE8; t++) {
        if (strcmp(name, type_names[t]) == 0) {
            *out = (msbnb_qtype)t;
            return MSBNB_OK;
        }
    }
    if (strcmp(name, "none") == 0 || strcmp(name, "fp32") == 0) {
        *out = MSBNB_QTYPE_NONE;
        return MSBNB_OK;
    }
    return MSBNB_FAIL(MSBNB_ERR_INVALID_ARG, "unknown type '%s' (int8, int4, nf4, fp4, blockwise8, f32)", name);
}

msbnb_quant_config msbnb_quant_config_default(msbnb_qtype type) {
    msbnb_quant_config c;
    memset(&c, 0, sizeof c);
    c.type = type;
    c.blocksize = type == MSBNB_QTYPE_BLOCKWISE8 ? 256 : 64;
    c.group_size = 128;
    c.double_quant = 0;
    c.nested_blocksize = 256;
    c.asymmetric = 0;
    c.per_row = 1;
    c.threshold = 6.0f;
    c.code = NULL;
    return c;
}

/* ---------------------------------------------------------------- sizes and checks */

static int is_pow2_in(int v, int lo, int hi) { return v >= lo && v <= hi && (v & (v - 1)) == 0; }

/* Checks the format parameters of v (type, shape, block/group sizes, double quant) and fills the
 * derived sizes v->data_bytes, v->n_stats, v->n_nested. */
static msbnb_status derive_sizes(const char *fn, msbnb_qtensor_view *v) {
    size_t n;
    TRY(msbnb__check_matrix_shape(fn, v->rows, v->cols, &n));
    switch (v->type) {
    case MSBNB_QTYPE_INT8:
        if (v->double_quant)
            return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "double_quant is not defined for int8");
        v->data_bytes = n;
        v->n_stats = v->per_row ? (size_t)v->rows : 1;
        break;
    case MSBNB_QTYPE_INT4:
        if (v->group_size <= 0 || v->group_size % 2 != 0)
            return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "group_size %d must be positive and even", v->group_size);
        if (v->cols % v->group_size != 0)
            return msbnb__fail(MSBNB_ERR_SHAPE, fn, "group_size %d does not divide cols %lld", v->group_size,
                               (long long)v->cols);
        v->data_bytes = n / 2;
        v->n_stats = n / (size_t)v->group_size;
        break;
    case MSBNB_QTYPE_NF4:
    case MSBNB_QTYPE_FP4:
        if (!is_pow2_in(v->blocksize, 32, 4096))
            return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "blocksize %d is not a power of two in [32, 4096]",
                               v->blocksize);
        v->data_bytes = n / 2 + n % 2;
        v->n_stats = n / (size_t)v->blocksize + (n % (size_t)v->blocksize != 0);
        break;
    case MSBNB_QTYPE_BLOCKWISE8:
        if (!is_pow2_in(v->blocksize, 64, 4096))
            return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "blocksize %d is not a power of two in [64, 4096]",
                               v->blocksize);
        if (v->double_quant)
            return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "double_quant is not supported for blockwise8");
        v->data_bytes = n;
        v->n_stats = n / (size_t)v->blocksize + (n % (size_t)v->blocksize != 0);
        break;
    default:
        return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "type %d is not a quantized type", (int)v->type);
    }
    v->n_nested = 0;
    if (v->double_quant) {
        if (!is_pow2_in(v->nested_blocksize, 64, 4096))
            return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "nested_blocksize %d is not a power of two in [64, 4096]",
                               v->nested_blocksize);
        size_t nb = (size_t)v->nested_blocksize;
        v->n_nested = v->n_stats / nb + (v->n_stats % nb != 0);
    }
    return MSBNB_OK;
}

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Allocate a tensor for the sizes in v (already derived) and point v's buffers at it. Codes,
 * statistics, zero points and nested absmax share ONE allocation, each part 64-byte aligned: what
 * the n = 1 products stream from memory then lies on the same (huge, when large) pages as the
 * codes — statistics on their own 4 KiB pages measured 0.2–1.8 % slower (docs/kernels.md). */
static msbnb_status qtensor_alloc(const char *fn, const msbnb_qtensor_view *v, msbnb_qtensor **out) {
    msbnb_qtensor *q = calloc(1, sizeof *q);
    if (!q) return msbnb__fail(MSBNB_ERR_OUT_OF_MEMORY, fn, "cannot allocate the tensor");
    q->v = *v;
    const int asym = v->type == MSBNB_QTYPE_INT8 && v->asymmetric;
    const size_t n = v->n_stats, big = SIZE_MAX / 16; /* every part below big: no sum can overflow */
    const size_t stats_bytes = v->double_quant ? 0 : n * sizeof(float), q_bytes = v->double_quant ? n : 0;
    const size_t zp_bytes = asym ? n * sizeof(int32_t) : 0, nested_bytes = v->double_quant ? v->n_nested * sizeof(float) : 0;
    int ok = v->data_bytes < big && n < big / sizeof(float) && v->n_nested < big / sizeof(float);
    const size_t off_stats = round64(v->data_bytes), off_q = off_stats + round64(stats_bytes);
    const size_t off_zp = off_q + round64(q_bytes), off_nested = off_zp + round64(zp_bytes);
    ok = ok && (q->data = msbnb__alloc_large(off_nested + nested_bytes)) != NULL;
    if (!ok) {
        free(q);
        return msbnb__fail(MSBNB_ERR_OUT_OF_MEMORY, fn, "cannot allocate %zu bytes of codes and %zu statistics",
                           v->data_bytes, v->n_stats);
    }
    if (stats_bytes) q->stats = (float *)(q->data + off_stats);
    if (q_bytes) q->stats_q = q->data + off_q;
    if (zp_bytes) q->zero_point = (int32_t *)(q->data + off_zp);
    if (nested_bytes) q->nested_absmax = (float *)(q->data + off_nested);
    q->v.data = q->data;
    q->v.stats = q->stats;
    q->v.zero_point = q->zero_point;
    q->v.stats_q = q->stats_q;
    q->v.nested_absmax = q->nested_absmax;
    q->v.code = NULL;
    q->v.code_len = 0;
    q->v.nested_code = v->double_quant ? q->nested_code : NULL;
    if (!v->double_quant) q->v.nested_offset = 0.0f;
    *out = q;
    return MSBNB_OK;
}

static void set_code(msbnb_qtensor *q, const float *code, int len) {
    memcpy(q->code, code, (size_t)len * sizeof(float));
    q->v.code = q->code;
    q->v.code_len = len;
}

void msbnb_qtensor_free(msbnb_qtensor *q) {
    if (!q) return;
    if (q->kernel_pack && q->kernel_pack_free) q->kernel_pack_free(q->kernel_pack);
    msbnb__free_aligned(q->data); /* codes and every statistic: one allocation (qtensor_alloc) */
    free(q);
}

/* ---------------------------------------------------------------- quantize */

msbnb_status msbnb_quantize(const float *w, int64_t rows, int64_t cols, const msbnb_quant_config *cfg,
                            msbnb_qtensor **out) {
    RETURN_IF(!w || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    msbnb_quant_config c = cfg ? *cfg : msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    msbnb_qtensor_view v;
    memset(&v, 0, sizeof v);
    v.type = c.type;
    v.rows = rows;
    v.cols = cols;
    v.blocksize = c.blocksize;
    v.group_size = c.group_size;
    v.asymmetric = c.type == MSBNB_QTYPE_INT8 ? (c.asymmetric != 0) : 0;
    v.per_row = c.type == MSBNB_QTYPE_INT8 ? (c.per_row != 0) : 0;
    v.threshold = c.type == MSBNB_QTYPE_INT8 ? c.threshold : 0.0f;
    v.double_quant = c.double_quant != 0;
    v.nested_blocksize = c.double_quant ? c.nested_blocksize : 0;
    RETURN_IF(v.type == MSBNB_QTYPE_INT8 && !(v.threshold >= 0.0f && v.threshold <= 3.4028235e38f),
              MSBNB_ERR_INVALID_ARG, "threshold %g must be finite and >= 0", (double)v.threshold);
    TRY(derive_sizes("msbnb_quantize", &v));
    msbnb_qtensor *q;
    TRY(qtensor_alloc("msbnb_quantize", &v, &q));
    size_t n = (size_t)rows * (size_t)cols;
    /* statistics go to q->stats, or to a temporary vector that is then double quantized */
    float *stats = q->stats;
    if (v.double_quant && !(stats = malloc(v.n_stats * sizeof(float)))) {
        msbnb_qtensor_free(q);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate %zu statistics", v.n_stats);
    }
    msbnb_status st = MSBNB_OK;
    switch (v.type) {
    case MSBNB_QTYPE_INT8:
        st = v.asymmetric ? msbnb_quantize_int8_asym(w, rows, cols, v.per_row, q->data, stats, q->zero_point)
                          : msbnb_quantize_int8(w, rows, cols, v.per_row, (int8_t *)q->data, stats);
        break;
    case MSBNB_QTYPE_INT4:
        st = msbnb_quantize_int4(w, rows, cols, v.group_size, q->data, stats);
        break;
    case MSBNB_QTYPE_NF4:
    case MSBNB_QTYPE_FP4:
        set_code(q, v.type == MSBNB_QTYPE_NF4 ? msbnb_nf4_code() : msbnb_fp4_code(), 16);
        st = msbnb_quantize_4bit_blockwise(v.type, w, n, v.blocksize, q->data, stats);
        break;
    default: /* BLOCKWISE8 */
        set_code(q, c.code ? c.code : msbnb_dynamic_map_signed(), 256);
        st = msbnb_quantize_blockwise8(q->code, w, n, v.blocksize, q->data, stats);
        break;
    }
    if (st == MSBNB_OK && v.double_quant) {
        memcpy(q->nested_code, msbnb_dynamic_map_signed(), 256 * sizeof(float));
        st = msbnb_double_quantize(stats, v.n_stats, v.nested_blocksize, q->stats_q, q->nested_absmax,
                                   &q->v.nested_offset);
    }
    if (v.double_quant) free(stats);
    if (st != MSBNB_OK) {
        msbnb_qtensor_free(q);
        return st;
    }
    *out = q;
    return MSBNB_OK;
}

msbnb_status msbnb_quantize_8bit(const float *w, int64_t rows, int64_t cols, const msbnb_quant_config *cfg,
                                 msbnb_qtensor **out) {
    msbnb_quant_config c = cfg ? *cfg : msbnb_quant_config_default(MSBNB_QTYPE_INT8);
    RETURN_IF(c.type != MSBNB_QTYPE_INT8 && c.type != MSBNB_QTYPE_BLOCKWISE8, MSBNB_ERR_INVALID_ARG,
              "type %s is not an 8-bit type (int8, blockwise8)", msbnb_qtype_name(c.type));
    return msbnb_quantize(w, rows, cols, &c, out);
}

msbnb_status msbnb_quantize_4bit(const float *w, int64_t rows, int64_t cols, const msbnb_quant_config *cfg,
                                 msbnb_qtensor **out) {
    msbnb_quant_config c = cfg ? *cfg : msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    RETURN_IF(c.type != MSBNB_QTYPE_INT4 && c.type != MSBNB_QTYPE_NF4 && c.type != MSBNB_QTYPE_FP4,
              MSBNB_ERR_INVALID_ARG, "type %s is not a 4-bit type (int4, nf4, fp4)", msbnb_qtype_name(c.type));
    return msbnb_quantize(w, rows, cols, &c, out);
}

/* ---------------------------------------------------------------- dequantize */

msbnb_status msbnb__qtensor_resolve_stats(const msbnb_qtensor *q, const float **stats, float **owned) {
    *owned = NULL;
    if (!q->v.double_quant) {
        *stats = q->v.stats;
        return MSBNB_OK;
    }
    float *s = malloc(q->v.n_stats * sizeof(float));
    if (!s) return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate %zu statistics", q->v.n_stats);
    msbnb_status st = msbnb_double_dequantize(q->v.stats_q, q->v.nested_absmax, q->v.nested_offset, q->v.nested_code,
                                              q->v.n_stats, q->v.nested_blocksize, s);
    if (st != MSBNB_OK) {
        free(s);
        return st;
    }
    *stats = *owned = s;
    return MSBNB_OK;
}

/* Flat blockwise formats (NF4/FP4/BLOCKWISE8): elements [e0, e1) into y [e1 - e0]; stats[i] is
 * the statistic of block s_base + i. The flat functions start at a block boundary, so a partial
 * first block goes through a small buffer. */
static msbnb_status flat_range(const msbnb_qtensor *q, const float *stats, size_t s_base, size_t e0, size_t e1,
                               float *y) {
    const msbnb_qtensor_view *v = &q->v;
    size_t bs = (size_t)v->blocksize;
        int four = v->type != MSBNB_QTYPE_BLOCKWISE8;
    size_t b0 = e0 - e0 % bs; /* block-aligned start, even since bs is */
    if (b0 < e0) {
        float tmp[4096];
        size_t end = b0 + bs < e1 ? b0 + bs : e1;
        const float *sb = stats + (b0 / bs - s_base);
        msbnb_status st = four ? msbnb_dequantize_4bit_blockwise(v->type, v->data + b0 / 2, sb, end - b0, v->blocksize, tmp)
                               : msbnb_dequantize_blockwise8(v->code, v->data + b0, sb, end - b0, v->blocksize, tmp);
        TRY(st);
        memcpy(y, tmp + (e0 - b0), (end - e0) * sizeof(float));
        y += end - e0;
        e0 = end;
    }
    if (e0 >= e1) return MSBNB_OK;
    const float *s = stats + (e0 / bs - s_base);
    return four ? msbnb_dequantize_4bit_blockwise(v->type, v->data + e0 / 2, s, e1 - e0, v->blocksize, y)
                : msbnb_dequantize_blockwise8(v->code, v->data + e0, s, e1 - e0, v->blocksize, y);
}

msbnb_status msbnb__qtensor_dequantize_rows(const msbnb_qtensor *q, const float *stats, int64_t row0, int64_t nrows,
                                            float *y) {
    const msbnb_qtensor_view *v = &q->v;
    switch (v->type) {
    case MSBNB_QTYPE_INT8:
        if (v->asymmetric)
            msbnb__dequantize_int8_asym_rows(v->data, stats, v->zero_point, v->cols, v->per_row, row0, nrows, y);
        else
            msbnb__dequantize_int8_rows((const int8_t *)v->data, stats, v->cols, v->per_row, row0, nrows, y);
        return MSBNB_OK;
    case MSBNB_QTYPE_INT4:
        msbnb__dequantize_int4_rows(v->data, stats, v->rows, v->cols, v->group_size, row0, nrows, y);
        return MSBNB_OK;
    default:
        return flat_range(q, stats, 0, (size_t)row0 * (size_t)v->cols, (size_t)(row0 + nrows) * (size_t)v->cols, y);
    }
}

msbnb_status msbnb_dequantize_rows(const msbnb_qtensor *q, int64_t row0, int64_t nrows, float *out) {
    RETURN_IF(!q || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(row0 < 0 || nrows < 0 || row0 > q->v.rows || nrows > q->v.rows - row0, MSBNB_ERR_SHAPE,
              "rows [%lld, %lld) outside [0, %lld)", (long long)row0, (long long)(row0 + nrows), (long long)q->v.rows);
    if (nrows == 0) return MSBNB_OK;
    const msbnb_qtensor_view *v = &q->v;
    if (v->double_quant && v->type != MSBNB_QTYPE_INT4) {
        /* Flat double-quantized formats: reconstruct only the statistics of these rows' blocks,
         * from a nested-block boundary (callers often walk a big tensor slab by slab). */
        size_t bs = (size_t)v->blocksize, nbs = (size_t)v->nested_blocksize;
        size_t e0 = (size_t)row0 * (size_t)v->cols, e1 = (size_t)(row0 + nrows) * (size_t)v->cols;
        size_t s0 = e0 / bs - (e0 / bs) % nbs, s1 = (e1 + bs - 1) / bs;
        float *s = malloc((s1 - s0) * sizeof(float));
        RETURN_IF(!s, MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate %zu statistics", s1 - s0);
        msbnb_status st = msbnb_double_dequantize(v->stats_q + s0, v->nested_absmax + s0 / nbs, v->nested_offset,
                                                  v->nested_code, s1 - s0, v->nested_blocksize, s);
        if (st == MSBNB_OK) st = flat_range(q, s, s0, e0, e1, out);
        free(s);
        return st;
    }
    const float *stats;
    float *owned;
    TRY(msbnb__qtensor_resolve_stats(q, &stats, &owned));
    msbnb_status st = msbnb__qtensor_dequantize_rows(q, stats, row0, nrows, out);
    free(owned);
    return st;
}

msbnb_status msbnb_dequantize(const msbnb_qtensor *q, float *out) {
    RETURN_IF(!q || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    return msbnb_dequantize_rows(q, 0, q->v.rows, out);
}

/* ---------------------------------------------------------------- views */

msbnb_status msbnb_qtensor_get_view(const msbnb_qtensor *q, msbnb_qtensor_view *view) {
    RETURN_IF(!q || !view, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *view = q->v;
    return MSBNB_OK;
}

/* The O(1) checks shared by from_view and wrap: normalizes the flags of *view into *v, derives
 * and compares the sizes, requires every buffer the format needs, and resolves the code table
 * (*code: the built-in NF4/FP4 table, the BLOCKWISE8 map or NULL). */
static msbnb_status check_view(const char *fn, const msbnb_qtensor_view *view, msbnb_qtensor_view *v,
                               const float **code, int *code_len) {
    *v = *view;
    if (v->type != MSBNB_QTYPE_INT8) v->asymmetric = v->per_row = 0;
    v->double_quant = v->double_quant != 0;
    v->asymmetric = v->asymmetric != 0;
    v->per_row = v->per_row != 0;
    TRY(derive_sizes(fn, v));
    if (view->data_bytes != v->data_bytes)
        return msbnb__fail(MSBNB_ERR_SHAPE, fn, "data_bytes %zu, expected %zu for %s [%lld, %lld]", view->data_bytes,
                           v->data_bytes, msbnb_qtype_name(v->type), (long long)v->rows, (long long)v->cols);
    if (view->n_stats != v->n_stats)
        return msbnb__fail(MSBNB_ERR_SHAPE, fn, "n_stats %zu, expected %zu", view->n_stats, v->n_stats);
    if (v->double_quant && view->n_nested != v->n_nested)
        return msbnb__fail(MSBNB_ERR_SHAPE, fn, "n_nested %zu, expected %zu", view->n_nested, v->n_nested);
    if (!v->data) return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "data is NULL");
    if (v->type == MSBNB_QTYPE_INT8 && !(v->threshold >= 0.0f && v->threshold <= 3.4028235e38f))
        return msbnb__fail(MSBNB_ERR_FORMAT, fn, "threshold %g must be finite and >= 0", (double)v->threshold);
    if (!v->double_quant && !v->stats) return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "stats is NULL");
    if (v->double_quant && (!v->stats_q || !v->nested_absmax || !v->nested_code))
        return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "double quant needs stats_q, nested_absmax and nested_code");
    if (v->double_quant && !isfinite(v->nested_offset))
        return msbnb__fail(MSBNB_ERR_FORMAT, fn, "nested_offset is not finite");
    if (v->type == MSBNB_QTYPE_INT8 && v->asymmetric && !v->zero_point)
        return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "zero_point is NULL for asymmetric int8");
    *code = NULL;
    *code_len = 0;
    if (v->type == MSBNB_QTYPE_NF4 || v->type == MSBNB_QTYPE_FP4) {
        const float *builtin = v->type == MSBNB_QTYPE_NF4 ? msbnb_nf4_code() : msbnb_fp4_code();
        /* the 4-bit decoders use the built-in table, so a stored one must be that table */
        if (v->code && (v->code_len != 16 || memcmp(v->code, builtin, 16 * sizeof(float)) != 0))
            return msbnb__fail(MSBNB_ERR_FORMAT, fn, "code table differs from the %s table", msbnb_qtype_name(v->type));
        *code = builtin, *code_len = 16;
    } else if (v->type == MSBNB_QTYPE_BLOCKWISE8) {
        if (v->code && v->code_len != 256)
            return msbnb__fail(MSBNB_ERR_SHAPE, fn, "code_len %d, expected 256", v->code_len);
        *code = v->code ? v->code : msbnb_dynamic_map_signed(), *code_len = 256;
    }
    return MSBNB_OK;
}

/* The O(n) checks of the values (view already through check_view): INT8 asymmetric zero points
 * in 0..255, INT8/INT4 scales finite and non-negative. */
static msbnb_status check_values(const char *fn, const msbnb_qtensor_view *v) {
    if (v->type == MSBNB_QTYPE_INT8 && v->asymmetric)
        for (size_t i = 0; i < v->n_stats; i++)
            if (v->zero_point[i] < 0 || v->zero_point[i] > 255)
                return msbnb__fail(MSBNB_ERR_FORMAT, fn, "zero_point[%zu] = %d outside 0..255", i, (int)v->zero_point[i]);
    if ((v->type == MSBNB_QTYPE_INT8 || v->type == MSBNB_QTYPE_INT4) && !v->double_quant)
        for (size_t i = 0; i < v->n_stats; i++)
            if (!(v->stats[i] >= 0.0f && v->stats[i] <= 3.4028235e38f))
                return msbnb__fail(MSBNB_ERR_FORMAT, fn, "stats[%zu] = %g is not a finite non-negative scale", i,
                                   (double)v->stats[i]);
    return MSBNB_OK;
}

msbnb_status msbnb_qtensor_from_view(const msbnb_qtensor_view *view, msbnb_qtensor **out) {
    RETURN_IF(!view || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    msbnb_qtensor_view v;
    const float *code;
    int code_len;
    TRY(check_view(__func__, view, &v, &code, &code_len));
    TRY(check_values(__func__, &v));
    msbnb_qtensor *q;
    TRY(qtensor_alloc(__func__, &v, &q));
    memcpy(q->data, v.data, v.data_bytes);
    if (q->stats) memcpy(q->stats, v.stats, v.n_stats * sizeof(float));
    if (q->zero_point) memcpy(q->zero_point, v.zero_point, v.n_stats * sizeof(int32_t));
    if (v.double_quant) {
        memcpy(q->stats_q, v.stats_q, v.n_stats);
        memcpy(q->nested_absmax, v.nested_absmax, v.n_nested * sizeof(float));
        memcpy(q->nested_code, v.nested_code, 256 * sizeof(float));
    }
    if (code) set_code(q, code, code_len);
    *out = q;
    return MSBNB_OK;
}

static int aligned4(const void *p) { return ((uintptr_t)p & 3u) == 0; }

msbnb_status msbnb_qtensor_wrap(const msbnb_qtensor_view *view, msbnb_qtensor **out) {
    RETURN_IF(!view || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    msbnb_qtensor_view v;
    const float *code;
    int code_len;
    TRY(check_view(__func__, view, &v, &code, &code_len));
    /* float and int32 parts are read as such: they need their natural 4-byte alignment */
    RETURN_IF(!aligned4(v.stats) || !aligned4(v.zero_point) || !aligned4(v.nested_absmax) ||
                  !aligned4(v.nested_code) || (v.type == MSBNB_QTYPE_BLOCKWISE8 && !aligned4(v.code)),
              MSBNB_ERR_INVALID_ARG, "float/int32 buffers must be 4-byte aligned");
    msbnb_qtensor *q = calloc(1, sizeof *q);
    RETURN_IF(!q, MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate the tensor");
    /* owned pointers (q->data, ...) stay NULL: msbnb_qtensor_free releases the struct only */
    q->v = v;
    if (!v.double_quant)
        q->v.stats_q = NULL, q->v.nested_absmax = NULL, q->v.nested_code = NULL, q->v.n_nested = 0,
        q->v.nested_offset = 0.0f;
    else q->v.stats = NULL;
    if (!(v.type == MSBNB_QTYPE_INT8 && v.asymmetric)) q->v.zero_point = NULL;
    q->v.code = code; /* the built-in table or the caller's BLOCKWISE8 map (borrowed) */
    q->v.code_len = code_len;
    *out = q;
    return MSBNB_OK;
}

msbnb_status msbnb_qtensor_validate(const msbnb_qtensor *q) {
    RETURN_IF(!q, MSBNB_ERR_INVALID_ARG, "NULL argument");
    return check_values(__func__, &q->v);
}

msbnb_status msbnb_qtensor_clone(const msbnb_qtensor *q, msbnb_qtensor **out) {
    RETURN_IF(!q || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    return msbnb_qtensor_from_view(&q->v, out);
}
