/*
 * nn_gemm.c — the products of LoRA adapters and fp32 weight gradients, in the three shapes the
 * layers need, on the library's one deterministic fp32 GEMM (msbnb__sgemm_fixed, kernels/dense.c:
 * fixed blocks of C, one single-threaded OpenBLAS call each), so results are bit-identical for
 * every thread count. accumulate != 0 is BLAS's beta = 1.
 */
#include "kernels/kernels_internal.h"
#include "nn/nn_internal.h"

/* y[n, md] (+)= alpha · x[n, kd] · w[md, kd]ᵀ */
void msbnb__nn_gemm_nt(const float *x, const float *w, int64_t n, int64_t kd, int64_t md, float alpha,
                       int accumulate, float *y) {
    msbnb__sgemm_fixed(0, 1, n, md, kd, alpha, x, kd, w, kd, accumulate ? 1.0f : 0.0f, y, md);
}

/* y[n, md] (+)= alpha · g[n, kd] · a[kd, md] */
void msbnb__nn_gemm_nn(const float *g, const float *a, int64_t n, int64_t kd, int64_t md, float alpha,
                       int accumulate, float *y) {
    msbnb__sgemm_fixed(0, 0, n, md, kd, alpha, g, kd, a, md, accumulate ? 1.0f : 0.0f, y, md);
}

/* y[od, md] (+)= alpha · d[n, od]ᵀ · x[n, md] */
void msbnb__nn_gemm_tn(const float *d, const float *x, int64_t n, int64_t od, int64_t md, float alpha,
                       int accumulate, float *y) {
    msbnb__sgemm_fixed(1, 0, od, md, n, alpha, d, od, x, md, accumulate ? 1.0f : 0.0f, y, md);
}
