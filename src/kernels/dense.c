/*
 * dense.c — dense fp32 products through OpenBLAS sgemm (Debian's libopenblas).
 *
 *   msbnb_matmul_f32    Y[n, out]  = X[n, in] · W[out, in]ᵀ (+ bias[out])
 *   msbnb_matmul_f32_t  dX[n, in] (+)= dY[n, out] · W[out, in]
 *
 * Thread-count invariance: OpenBLAS's own threading is not bit-stable (with 1 thread it takes
 * other code paths than with 2+, and its threaded gemv splits the K sum), so msbnb splits the
 * output columns into fixed chunks of DENSE_CHUNK — the split never depends on the thread count —
 * and runs one single-threaded sgemm per chunk on msbnb's OpenMP threads. OpenBLAS's thread count
 * is set to 1 for the duration of the call and restored afterwards (a host program that calls
 * OpenBLAS concurrently from other threads may see its setting change meanwhile; see README).
 * cblas takes 32-bit sizes: in and out must be below 2³¹, n is processed in chunks that fit.
 */
#include <limits.h>

#include <cblas.h>

#include "core/internal.h"
#include <msbnb/kernels.h>

#define BLAS_MAX ((int64_t)INT_MAX)
/* Output columns per sgemm call: large enough to keep sgemm efficient, small enough to spread
 * a 4096-wide layer over many threads. */
#define DENSE_CHUNK ((int64_t)256)

/* OpenBLAS's run-time thread control (declared in its cblas.h on Debian). */
static int blas_single_thread_begin(void) {
    int prev = openblas_get_num_threads();
    if (prev != 1) openblas_set_num_threads(1);
    return prev;
}
static void blas_single_thread_end(int prev) {
    if (prev != 1) openblas_set_num_threads(prev);
}

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
    int prev = blas_single_thread_begin();
    int64_t n_chunks = (out + DENSE_CHUNK - 1) / DENSE_CHUNK;
    for (int64_t r0 = 0; r0 < n; r0 += chunk_rows(n - r0)) {
        int64_t m = chunk_rows(n - r0);
        float *y = Y + r0 * out;
        const float *x = X + r0 * in;
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (n_chunks > 1)
        for (int64_t c = 0; c < n_chunks; c++) {
            int64_t o0 = c * DENSE_CHUNK, w = out - o0 < DENSE_CHUNK ? out - o0 : DENSE_CHUNK;
            float beta = 0.0f;
            if (bias) {
                for (int64_t i = 0; i < m; i++)
                    for (int64_t o = o0; o < o0 + w; o++) y[i * out + o] = bias[o];
                beta = 1.0f;
            }
            /* y[:, o0:o0+w] = x · W[o0:o0+w, :]ᵀ */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)m, (blasint)w, (blasint)in, 1.0f, x,
                        (blasint)in, W + o0 * in, (blasint)in, beta, y + o0, (blasint)out);
        }
    }
    blas_single_thread_end(prev);
    return MSBNB_OK;
}

msbnb_status msbnb_matmul_f32_t(const float *W, int64_t out, int64_t in, const float *dY, int64_t n, float *dX,
                                int accumulate) {
    TRY(check_shape(out, in, n));
    RETURN_IF(!W, MSBNB_ERR_INVALID_ARG, "W must not be NULL");
    if (n == 0) return MSBNB_OK;
    RETURN_IF(!dY || !dX, MSBNB_ERR_INVALID_ARG, "dY and dX must not be NULL");
    int prev = blas_single_thread_begin();
    int64_t n_chunks = (in + DENSE_CHUNK - 1) / DENSE_CHUNK;
    for (int64_t r0 = 0; r0 < n; r0 += chunk_rows(n - r0)) {
        int64_t m = chunk_rows(n - r0);
        const float *dy = dY + r0 * out;
        float *dx = dX + r0 * in;
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (n_chunks > 1)
        for (int64_t c = 0; c < n_chunks; c++) {
            int64_t i0 = c * DENSE_CHUNK, w = in - i0 < DENSE_CHUNK ? in - i0 : DENSE_CHUNK;
            /* dx[:, i0:i0+w] (+)= dy · W[:, i0:i0+w] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)m, (blasint)w, (blasint)out, 1.0f, dy,
                        (blasint)out, W + i0, (blasint)in, accumulate ? 1.0f : 0.0f, dx + i0, (blasint)in);
        }
    }
    blas_single_thread_end(prev);
    return MSBNB_OK;
}
