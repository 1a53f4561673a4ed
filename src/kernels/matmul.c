/*
 * matmul.c — public entry points of the fused quantized products: argument validation, routing by
 * the weight's type (INT8 -> the int8 family in kernels_internal.h; NF4/FP4/INT4 -> the 4-bit
 * family in matmul_4bit.h) and run-time dispatch on msbnb__isa().
 */
#include "kernels/matmul_4bit.h"
#include "kernels/onednn_matmul.h"

#include <stdlib.h>

/* ---------------------------------------------------------------- dispatch */

/* FAST int8 products through the driver, with the loops of each level: up to the level's max_n
 * rows where the bf16 tiles take over (AVX512-BF16), any n where there are none (the int8 loops
 * outrun the EXACT tiles there: docs/kernels.md). */
#if MSBNB_HAVE_X86
static msbnb_status fast_int8_avx512vnni(const msbnb__w4 *w, const float *X, int64_t n, const float *bias, float *Y) {
    return msbnb__matmul_4bit_fast_int8(&msbnb__fi8_avx512vnni, w, X, n, bias, Y, msbnb__isa() < MSBNB_ISA_AVX512_BF16);
}
static msbnb_status fast_int8_avxvnni(const msbnb__w4 *w, const float *X, int64_t n, const float *bias, float *Y) {
    return msbnb__matmul_4bit_fast_int8(&msbnb__fi8_avxvnni, w, X, n, bias, Y, 1);
}
static msbnb_status fast_int8_avx2(const msbnb__w4 *w, const float *X, int64_t n, const float *bias, float *Y) {
    return msbnb__matmul_4bit_fast_int8(&msbnb__fi8_avx2, w, X, n, bias, Y, 1);
}
static int force_no_avxvnni;
void msbnb__mm4_fast_force_no_avxvnni(int on) { force_no_avxvnni = on != 0; }
#endif

#if MSBNB_HAVE_X86
/* The oneDNN engine where msbnb__od4_forward_dtype picks it (the ONEDNN level, measured crossovers),
 * else (or when oneDNN cannot take the shape) the tiled driver with the level's kernels. */
static msbnb_status tiled_or_onednn(const msbnb__mm4_kernels *k, msbnb_isa isa, const msbnb__w4 *w, const float *X,
                                    int64_t n, const float *bias, float *Y, msbnb_precision precision) {
    msbnb__od_dtype dt;
    if (msbnb__od4_forward_dtype(isa, n, precision, &dt)) {
        msbnb_status st = msbnb__matmul_4bit_onednn(k, w, X, n, bias, Y, dt, 0);
        if (st != MSBNB_ERR_UNSUPPORTED) return st;
    }
    return msbnb__matmul_4bit_tiled(k, w, X, n, bias, Y, precision);
}

/* The same for the transposed product. */
static msbnb_status t_tiled_or_onednn(const msbnb__mm4_kernels *k, msbnb_isa isa, const msbnb__w4 *w, const float *dY,
                                      int64_t n, float *dX, int accumulate) {
    msbnb__od_dtype dt;
    if (msbnb__od4_transposed_dtype(isa, n, 0, &dt)) {
        msbnb_status st = msbnb__matmul_4bit_t_onednn(k, w, dY, n, dX, accumulate, dt, 0);
        if (st != MSBNB_ERR_UNSUPPORTED) return st;
    }
    return msbnb__matmul_4bit_t_tiled(k, w, dY, n, dX, accumulate);
}
#endif

/* 4-bit products: the scalar reference, or the tiled driver with the current level's kernels. */
static msbnb_status run_4bit(const msbnb__w4 *w, const float *X, int64_t n, const float *bias, float *Y,
                             msbnb_precision precision) {
#if MSBNB_HAVE_X86
    msbnb_isa isa = msbnb__isa();
    if (isa >= MSBNB_ISA_AVX512) {
        msbnb__mm4_kernels k = msbnb__mm4_avx512;
        /* (without VNNI, FAST is EXACT: the plain-AVX2 int8 loops are slower than this level's
         * EXACT streaming kernel, 101-119 against 121-191 GFLOP/s with W in cache) */
        if (isa >= MSBNB_ISA_AVX512_VNNI) k.small_n_fast = fast_int8_avx512vnni;
        if (isa >= MSBNB_ISA_AVX512_BF16) {
            k.to_bf16 = msbnb__mm4_avx512bf16.to_bf16;
            k.block_bf16 = msbnb__mm4_avx512bf16.block_bf16;
        }
        return tiled_or_onednn(&k, isa, w, X, n, bias, Y, precision);
    }
    if (isa >= MSBNB_ISA_AVX2) {
        msbnb__mm4_kernels k = msbnb__mm4_avx2;
        k.small_n_fast = msbnb__cpu()->avxvnni && !force_no_avxvnni ? fast_int8_avxvnni : fast_int8_avx2;
        return tiled_or_onednn(&k, isa, w, X, n, bias, Y, precision);
    }
#endif
    return msbnb__matmul_4bit_ref(w, X, n, bias, Y, precision);
}

static msbnb_status run_4bit_t(const msbnb__w4 *w, const float *dY, int64_t n, float *dX, int accumulate) {
#if MSBNB_HAVE_X86
    msbnb_isa isa = msbnb__isa();
    if (isa >= MSBNB_ISA_AVX512) {
        return t_tiled_or_onednn(&msbnb__mm4_avx512, isa, w, dY, n, dX, accumulate);
    }
    if (isa >= MSBNB_ISA_AVX2) return t_tiled_or_onednn(&msbnb__mm4_avx2, isa, w, dY, n, dX, accumulate);
#endif
    return msbnb__matmul_4bit_t_ref(w, dY, n, dX, accumulate);
}

/* ---------------------------------------------------------------- validation */

static int is_4bit(msbnb_qtype t) {
    return t == MSBNB_QTYPE_NF4 || t == MSBNB_QTYPE_FP4 || t == MSBNB_QTYPE_INT4;
}

/* Shared checks of W, n and the size of the [n, in] and [n, out] activations. */
static msbnb_status check_common(const char *fn, const msbnb_qtensor *W, int64_t n) {
    if (!W) return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "W is NULL");
    const msbnb_qtensor_view *v = &W->v;
    if (v->type != MSBNB_QTYPE_INT8 && !is_4bit(v->type))
        return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "W has type %s; products take int8, int4, nf4 or fp4",
                           msbnb_qtype_name(v->type));
    if (v->rows <= 0 || v->cols <= 0 || !v->data)
        return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "W is empty or has no codes");
    if (n < 1 || n > MSBNB_MAX_DIM)
        return msbnb__fail(MSBNB_ERR_SHAPE, fn, "n = %lld rows; need 1 <= n <= 2^40", (long long)n);
    size_t a, b;
    if (!msbnb__mul_ok((size_t)n, (size_t)v->cols, &a) || !msbnb__mul_ok(a, sizeof(float), &a) ||
        !msbnb__mul_ok((size_t)n, (size_t)v->rows, &b) || !msbnb__mul_ok(b, sizeof(float), &b))
        return msbnb__fail(MSBNB_ERR_SHAPE, fn, "activations [%lld, %lld] / [%lld, %lld] overflow size_t",
                           (long long)n, (long long)v->cols, (long long)n, (long long)v->rows);
    if (is_4bit(v->type) && !(v->double_quant ? (v->stats_q && v->nested_absmax) : v->stats != NULL))
        return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "W has no statistics");
    return MSBNB_OK;
}

/* ---------------------------------------------------------------- forward */

/* Forward product on validated arguments. */
static msbnb_status matmul_checked(const msbnb_qtensor *W, const float *X, int64_t n, const float *bias, float *Y,
                                   msbnb_precision precision) {
    if (W->v.type == MSBNB_QTYPE_INT8) return msbnb__matmul_int8(W, X, n, bias, Y, precision);
    msbnb__w4 w;
    msbnb__w4_init(W, &w);
    return run_4bit(&w, X, n, bias, Y, precision);
}

msbnb_status msbnb_matmul(const msbnb_qtensor *W, const float *X, int64_t n, const float *bias, float *Y,
                          msbnb_precision precision) {
    TRY(check_common(__func__, W, n));
    RETURN_IF(!X || !Y, MSBNB_ERR_INVALID_ARG, "X or Y is NULL");
    RETURN_IF(precision != MSBNB_PRECISION_EXACT && precision != MSBNB_PRECISION_FAST, MSBNB_ERR_INVALID_ARG,
              "precision %d is neither EXACT (0) nor FAST (1)", (int)precision);
    return matmul_checked(W, X, n, bias, Y, precision);
}

/* Rows of X converted to float32 per pass in msbnb_matmul_ex: scratch [XB_ROWS + XB_TAIL - 1, in].
 * Each output row depends only on its own input row and on the kernel class of n (EXACT: n <= 16
 * streams; FAST: n <= MSBNB__FI8_MAX_N takes the int8 loops where the level has them, larger n the
 * bf16 tiles): a remainder of fewer than XB_TAIL rows joins the previous pass, so every pass is in
 * the same class as n itself and the split changes no result. */
#define XB_ROWS 64
#define XB_TAIL (MSBNB__FI8_MAX_N + 1)

msbnb_status msbnb_matmul_ex(const msbnb_qtensor *W, const void *X, msbnb_dtype x_dtype, int64_t n,
                             const float *bias, float *Y, msbnb_precision precision) {
    TRY(check_common(__func__, W, n));
    RETURN_IF(!X || !Y, MSBNB_ERR_INVALID_ARG, "X or Y is NULL");
    RETURN_IF(precision != MSBNB_PRECISION_EXACT && precision != MSBNB_PRECISION_FAST, MSBNB_ERR_INVALID_ARG,
              "precision %d is neither EXACT (0) nor FAST (1)", (int)precision);
    if (x_dtype == MSBNB_DTYPE_F32) return matmul_checked(W, (const float *)X, n, bias, Y, precision);
    RETURN_IF(x_dtype != MSBNB_DTYPE_F16 && x_dtype != MSBNB_DTYPE_BF16, MSBNB_ERR_INVALID_ARG,
              "x_dtype %d is not F32, F16 or BF16", (int)x_dtype);
    const int64_t in = W->v.cols, out = W->v.rows;
    /* the oneDNN engine takes whole batches from some n on (its result for a row may depend on n):
     * then all rows are converted and multiplied at once, as msbnb_matmul would */
    msbnb__od_dtype dt;
    const int whole = W->v.type != MSBNB_QTYPE_INT8 && msbnb__od4_forward_dtype(msbnb__isa(), n, precision, &dt);
    const int64_t nb = whole || n < XB_ROWS + XB_TAIL ? n : XB_ROWS + XB_TAIL - 1;
    float *xf = msbnb__alloc_aligned((size_t)(nb * in) * sizeof(float)); /* xf: [nb, in] */
    RETURN_IF(!xf, MSBNB_ERR_OUT_OF_MEMORY, "no memory for [%lld, %lld] converted activations", (long long)nb,
              (long long)in);
    const uint16_t *xh = (const uint16_t *)X;
    msbnb_status st = MSBNB_OK;
    for (int64_t i0 = 0, m; i0 < n && st == MSBNB_OK; i0 += m) {
        m = whole || n - i0 < XB_ROWS + XB_TAIL ? n - i0 : XB_ROWS;
        if (x_dtype == MSBNB_DTYPE_F16) msbnb_f16_to_f32_array(xh + i0 * in, xf, (size_t)(m * in));
        else msbnb_bf16_to_f32_array(xh + i0 * in, xf, (size_t)(m * in));
        st = matmul_checked(W, xf, m, bias, Y + i0 * out, precision);
    }
    msbnb__free_aligned(xf);
    return st;
}

/* ---------------------------------------------------------------- transposed */

static msbnb_status matmul_t_checked(const msbnb_qtensor *W, const float *dY, int64_t n, float *dX, int accumulate,
                                     int bf16) {
    if (W->v.type == MSBNB_QTYPE_INT8) return msbnb__matmul_int8_t(W, dY, n, dX, accumulate);
    msbnb__w4 w;
    msbnb__w4_init(W, &w);
    if (bf16) return msbnb__matmul_4bit_t_bf16(&w, dY, n, dX, accumulate);
    return run_4bit_t(&w, dY, n, dX, accumulate);
}

msbnb_status msbnb__matmul_bf16(const msbnb_qtensor *W, const float *X, int64_t n, const float *bias, float *Y) {
    TRY(check_common(__func__, W, n));
    RETURN_IF(!X || !Y, MSBNB_ERR_INVALID_ARG, "X or Y is NULL");
    if (W->v.type == MSBNB_QTYPE_INT8) return msbnb__matmul_int8(W, X, n, bias, Y, MSBNB_PRECISION_EXACT);
    msbnb__w4 w;
    msbnb__w4_init(W, &w);
    return msbnb__matmul_4bit_bf16(&w, X, n, bias, Y);
}

msbnb_status msbnb_matmul_t(const msbnb_qtensor *W, const float *dY, int64_t n, float *dX, int accumulate) {
    TRY(check_common(__func__, W, n));
    RETURN_IF(!dY || !dX, MSBNB_ERR_INVALID_ARG, "dY or dX is NULL");
    return matmul_t_checked(W, dY, n, dX, accumulate, 0);
}

msbnb_status msbnb_matmul_t_ex(const msbnb_qtensor *W, const float *dY, int64_t n, float *dX, int accumulate,
                               msbnb_precision precision) {
    TRY(check_common(__func__, W, n));
    RETURN_IF(!dY || !dX, MSBNB_ERR_INVALID_ARG, "dY or dX is NULL");
    RETURN_IF(precision != MSBNB_PRECISION_EXACT && precision != MSBNB_PRECISION_FAST, MSBNB_ERR_INVALID_ARG,
              "precision %d is neither EXACT (0) nor FAST (1)", (int)precision);
    return matmul_t_checked(W, dY, n, dX, accumulate, precision == MSBNB_PRECISION_FAST);
}

int msbnb_bf16_native(void) {
    const msbnb_isa l = msbnb_isa_current();
    return (l == MSBNB_ISA_AVX512_BF16 || l == MSBNB_ISA_ONEDNN) && msbnb__isa() >= MSBNB_ISA_AVX512_BF16;
}

/* ---------------------------------------------------------------- prepare */

msbnb_status msbnb_qtensor_prepare(msbnb_qtensor *W) {
    TRY(check_common(__func__, W, 1));
    /* The 4-bit and int8 kernels read the bitsandbytes layout directly (see docs/kernels.md):
     * there is no repacked copy to build yet, so W is left untouched. */
    return MSBNB_OK;
}
