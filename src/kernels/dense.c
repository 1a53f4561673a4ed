/*
 * dense.c — dense fp32 products through OpenBLAS sgemm (Debian's libopenblas).
 *
 *   msbnb_matmul_f32    Y[n, out]  = X[n, in] · W[out, in]ᵀ (+ bias[out])
 *   msbnb_matmul_f32_t  dX[n, in] (+)= dY[n, out] · W[out, in]
 *
 * OpenBLAS runs its own threads (OPENBLAS_NUM_THREADS / its default), not msbnb's; its sgemm
 * splits the output, not the K sum, so results do not depend on its thread count either.
 * cblas takes 32-bit sizes: in and out must be below 2³¹, n is processed in chunks that fit.
 */
#include <limits.h>

#include <cblas.h>

#include "core/internal.h"
#include <msbnb/kernels.h>

#define BLAS_MAX ((int64_t)INT_MAX)

static msbnb_status check_shape(int64_t out, int64_t in, int64_t n) {
    RETURN_IF(n < 0, MSBNB_ERR_INVALID_ARG, "n = %lld is negative", (long long)n);
    RETURN_IF(out < 1 || in < 1, MSBNB_ERR_SHAPE, "W shape [%lld, %lld] must be at least [1, 1]", (long long)out,
              (long long)in);
    RETURN_IF(out > BLAS_MAX || in > BLAS_MAX, MSBNB_ERR_UNSUPPORTED,
              "W shape [%lld, %lld] exceeds the 32-bit BLAS interface", (long long)out, (long long)in);
    size_t tmp;
    TRY(msbnb__checked_mul(n, in > out ? in : out, &tmp));
    TRY(msbnb__checked_mul(out, in, &tmp));
    return MSBNB_OK;
}

/* Rows per sgemm call so that rows · max(in, out) stays addressable by a 32-bit leading size. */
static int64_t chunk_rows(int64_t n) { return n < BLAS_MAX ? n : BLAS_MAX; }

msbnb_status msbnb_matmul_f32(const float *W, int64_t out, int64_t in, const float *X, int64_t n,
                              const float *bias, float *Y) {
    TRY(check_shape(out, in, n));
    RETURN_IF(!W, MSBNB_ERR_INVALID_ARG, "W must not be NULL");
    if (n == 0) return MSBNB_OK;
    RETURN_IF(!X || !Y, MSBNB_ERR_INVALID_ARG, "X and Y must not be NULL");
    for (int64_t r0 = 0; r0 < n; r0 += chunk_rows(n - r0)) {
        int64_t m = chunk_rows(n - r0);
        float *y = Y + r0 * out;
        float beta = 0.0f;
        if (bias) {
            for (int64_t i = 0; i < m; i++)
                for (int64_t o = 0; o < out; o++) y[i * out + o] = bias[o];
            beta = 1.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)m, (blasint)out, (blasint)in, 1.0f,
                    X + r0 * in, (blasint)in, W, (blasint)in, beta, y, (blasint)out);
    }
    return MSBNB_OK;
}

msbnb_status msbnb_matmul_f32_t(const float *W, int64_t out, int64_t in, const float *dY, int64_t n, float *dX,
                                int accumulate) {
    TRY(check_shape(out, in, n));
    RETURN_IF(!W, MSBNB_ERR_INVALID_ARG, "W must not be NULL");
    if (n == 0) return MSBNB_OK;
    RETURN_IF(!dY || !dX, MSBNB_ERR_INVALID_ARG, "dY and dX must not be NULL");
    for (int64_t r0 = 0; r0 < n; r0 += chunk_rows(n - r0)) {
        int64_t m = chunk_rows(n - r0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)m, (blasint)in, (blasint)out, 1.0f,
                    dY + r0 * out, (blasint)out, W, (blasint)in, accumulate ? 1.0f : 0.0f, dX + r0 * in, (blasint)in);
    }
    return MSBNB_OK;
}
