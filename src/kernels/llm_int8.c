/*
 * llm_int8.c — LLM.int8() (Dettmers et al. 2022, bitsandbytes MatMul8bitLt): row-wise int8
 * activations with an outlier decomposition.
 *
 * Semantics follow bitsandbytes' default backend (bitsandbytes/backends/default/ops.py:
 * int8_vectorwise_quant, int8_scaled_mm, int8_mm_dequant, int8_mixed_scaled_mm):
 *  1. outlier ELEMENTS are those with |x| ≥ threshold (threshold > 0); an outlier COLUMN is one
 *     holding any outlier element.
 *  2. row_stats[r] = max |x[r, c]| over the elements that are not outliers — the other elements
 *     of an outlier column still count, exactly as bnb zeroes only A[outliers] before its max.
 *  3. code = round_half_even(x · fl(fl(1 / row_stats[r]) · 127)) — the factor as PyTorch computes
 *     bnb's `127.0 / row_stats` (reciprocal, then multiply) — and
 *     every code of an outlier column is 0.
 *  4. Y = (float)C · (row_stats[i] · SCB[o]) · 6.200124e-05 + bias, C = codes · CBᵀ in int32;
 *     then Y += X[:, outliers] · Ŵ[:, outliers]ᵀ in fp32 (OpenBLAS sgemm, beta = 1) with
 *     Ŵ = CB · SCB / 127 (bnb int8_vectorwise_dequant, identical to msbnb_dequantize).
 * Deliberate differences: everything is float32 (bnb runs the activations and the outlier product
 * in fp16 on GPU); a row whose row_stats is 0 gets all-zero codes (bnb would divide by zero).
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "kernels/int8_kernels.h"

void msbnb__i8_quant_rows(const float *X, int64_t rows, int64_t cols, const uint8_t *is_outlier, float threshold,
                          int8_t *codes, int64_t ldc, float *row_stats, int32_t *asum) {
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (rows * cols >= (1 << 16))
    for (int64_t r = 0; r < rows; r++) {
        const float *x = X + r * cols;
        int8_t *q = codes + r * ldc;
        float rs = 0.0f;
        for (int64_t c = 0; c < cols; c++) {
            float v = fabsf(x[c]);
            if (threshold > 0.0f && v >= threshold) continue; /* outlier element: left out */
            if (v > rs) rs = v;                               /* NaN never compares greater  */
        }
        /* PyTorch evaluates bnb's `127.0 / row_stats` as row_stats.reciprocal() * 127: match it. */
        float f = rs > 0.0f ? (1.0f / rs) * 127.0f : 0.0f;
        int64_t sum = 0; /* int32 asum is only used while cols ≤ MSBNB__INT8_MAX_K */
        for (int64_t c = 0; c < cols; c++) {
            float v = x[c] * f;
            if (v != v || (is_outlier && is_outlier[c])) v = 0.0f; /* NaN, 0·Inf, outlier column */
            if (v > 127.0f) v = 127.0f;
            if (v < -127.0f) v = -127.0f;
            int32_t code = (int32_t)rintf(v); /* round half to even under the default rounding mode */
            q[c] = (int8_t)code;
            sum += code;
        }
        row_stats[r] = rs;
        if (asum) asum[r] = (int32_t)sum;
    }
}

/* Flags of the outlier columns of X [rows, cols]; returns their count. */
static int64_t find_outlier_cols(const float *X, int64_t rows, int64_t cols, float threshold, uint8_t *flags) {
    memset(flags, 0, (size_t)cols);
    if (!(threshold > 0.0f)) return 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            if (fabsf(X[r * cols + c]) >= threshold) flags[c] = 1;
    int64_t count = 0;
    for (int64_t c = 0; c < cols; c++) count += flags[c];
    return count;
}

msbnb_status msbnb_int8_vectorwise_quant(const float *X, int64_t rows, int64_t cols, float threshold,
                                         int8_t *codes, float *row_stats, int32_t *outlier_cols,
                                         int64_t *n_outliers) {
    RETURN_IF(!X || !codes || !row_stats, MSBNB_ERR_INVALID_ARG, "X, codes and row_stats must not be NULL");
    RETURN_IF(rows < 1 || cols < 1 || rows > MSBNB_MAX_DIM || cols > MSBNB_MAX_DIM, MSBNB_ERR_SHAPE,
              "shape [%lld, %lld] must be at least [1, 1]", (long long)rows, (long long)cols);
    RETURN_IF(!(threshold >= 0.0f) || isinf(threshold), MSBNB_ERR_INVALID_ARG,
              "threshold %g must be finite and >= 0", (double)threshold);
    RETURN_IF(cols > INT32_MAX && outlier_cols, MSBNB_ERR_SHAPE, "%lld columns do not fit int32 indices",
              (long long)cols);
    size_t total;
    TRY(msbnb__checked_mul(rows, cols, &total));
    uint8_t *flags = malloc((size_t)cols);
    RETURN_IF(!flags, MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate %lld column flags", (long long)cols);
    int64_t count = find_outlier_cols(X, rows, cols, threshold, flags);
    msbnb__i8_quant_rows(X, rows, cols, count ? flags : NULL, threshold, codes, cols, row_stats, NULL);
    if (outlier_cols) {
        int64_t j = 0;
        for (int64_t c = 0; c < cols; c++)
            if (flags[c]) outlier_cols[j++] = (int32_t)c;
    }
    if (n_outliers) *n_outliers = count;
    free(flags);
    return MSBNB_OK;
}

/* ---------------------------------------------------------------- the decomposed product */

/* Y[i, o] += Σ_j X[i, cols_j] · Ŵ[o, cols_j]: bnb's output.addmm(subA, subB), through OpenBLAS
 * sgemm (beta = 1) so that many outlier columns cost a dense product, not a scalar loop. OpenBLAS
 * does not depend on msbnb's ISA level or thread count, so neither does the result.
 * subB [out, nout]: Ŵ's outlier columns, dequantized (gathered by msbnb__i8_int_product). */
static msbnb_status add_outlier_product(const msbnb__i8w *w, const float *X, int64_t n, const int32_t *ocols,
                                        int64_t nout, const float *subB, float *Y) {
    const int64_t out = w->rows, K = w->cols;
    size_t na;
    TRY(msbnb__checked_mul(nout, n, &na));
    float *subA = malloc(na * sizeof(float)); /* [n, nout]: X's outlier columns */
    RETURN_IF(!subA, MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate %lld outlier columns", (long long)nout);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < nout; j++) subA[i * nout + j] = X[i * K + ocols[j]];
    for (int64_t i0 = 0; i0 < n; i0 += INT_MAX) {
        int64_t m = n - i0 < INT_MAX ? n - i0 : INT_MAX;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)m, (blasint)out, (blasint)nout, 1.0f,
                    subA + i0 * nout, (blasint)nout, subB, (blasint)nout, 1.0f, Y + i0 * out, (blasint)out);
    }
    free(subA);
    return MSBNB_OK;
}

msbnb_status msbnb_matmul_int8_lt(const msbnb_qtensor *W, const float *X, int64_t n, const float *bias,
                                  float threshold, float *Y) {
    RETURN_IF(!W, MSBNB_ERR_INVALID_ARG, "W must not be NULL");
    RETURN_IF(W->v.type != MSBNB_QTYPE_INT8, MSBNB_ERR_INVALID_ARG, "W is %s, LLM.int8() needs int8 weights",
              msbnb_qtype_name(W->v.type));
    RETURN_IF(W->v.asymmetric, MSBNB_ERR_UNSUPPORTED,
              "LLM.int8() needs symmetric (absmax) int8 weights; this tensor is asymmetric");
    RETURN_IF(n < 0, MSBNB_ERR_INVALID_ARG, "n = %lld is negative", (long long)n);
    RETURN_IF(!(threshold >= 0.0f) || isinf(threshold), MSBNB_ERR_INVALID_ARG,
              "threshold %g must be finite and >= 0", (double)threshold);
    if (n == 0) return MSBNB_OK;
    RETURN_IF(!X || !Y, MSBNB_ERR_INVALID_ARG, "X and Y must not be NULL");
    const msbnb__i8w w = msbnb__i8w_of(W);
    const int64_t K = w.cols;

    size_t codes_bytes;
    TRY(msbnb__checked_mul(n, K, &codes_bytes));
    int8_t *a = msbnb__alloc_aligned(codes_bytes); /* [n, K] activation codes        */
    float *rs = malloc((size_t)n * sizeof(float));  /* [n] row_stats                    */
    int32_t *asum = malloc((size_t)n * sizeof(int32_t));
    uint8_t *flags = malloc((size_t)K);              /* [K] outlier column flags          */
    int32_t *ocols = malloc((size_t)K * sizeof(int32_t));
    float *subB = NULL;                               /* [out, nout] dequantized outlier columns */
    msbnb_status st = MSBNB_OK;
    if (!a || !rs || !asum || !flags || !ocols) {
        st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate int8 activations [%lld, %lld]", (long long)n,
                        (long long)K);
        goto done;
    }
    const int64_t nout = find_outlier_cols(X, n, K, threshold, flags);
    if (nout) {
        if (w.rows > INT_MAX) {
            st = MSBNB_FAIL(MSBNB_ERR_UNSUPPORTED, "out_features %lld exceed the 32-bit BLAS interface",
                            (long long)w.rows);
            goto done;
        }
        size_t nb;
        st = msbnb__checked_mul(nout, w.rows, &nb);
        if (st != MSBNB_OK) goto done;
        subB = malloc(nb * sizeof(float));
        if (!subB) {
            st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate %lld outlier columns", (long long)nout);
            goto done;
        }
        int64_t j = 0;
        for (int64_t c = 0; c < K; c++)
            if (flags[c]) ocols[j++] = (int32_t)c;
    }
    msbnb__i8_quant_rows(X, n, K, nout ? flags : NULL, threshold, a, K, rs, asum);
    st = msbnb__i8_int_product(&w, a, asum, rs, n, bias, Y, ocols, nout, subB);
    if (st == MSBNB_OK && nout) st = add_outlier_product(&w, X, n, ocols, nout, subB, Y);
done:
    free(subB);
    msbnb__free_aligned(a);
    free(rs);
    free(asum);
    free(flags);
    free(ocols);
    return st;
}
