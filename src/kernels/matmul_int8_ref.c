/*
 * matmul_int8_ref.c — scalar references of the INT8 product kernels (the specification the x86
 * variants in x86/matmul_int8_*.c are tested against). See int8_kernels.h for the contracts.
 */
#include <math.h>

#include "kernels/int8_kernels.h"

/* ---------------------------------------------------------------- EXACT forward */

/* Y[i, o] = Σ_k X[i, k] · ŵ[o, k], one fp32 multiply and one fp32 add per k, k ascending.
 * Each weight row is dequantized once into scratch (≤ cols floats would be unbounded, so it is
 * done in chunks of EXACT_REF_KC) and reused for every activation row. */
#define EXACT_REF_KC 4096

void msbnb__i8_exact_ref(const msbnb__i8w *w, int64_t o0, int64_t o1, const float *X, int64_t ldx, int64_t n,
                         float *Y, int64_t ldy, void *scratch) {
    float *wk = (float *)scratch; /* [EXACT_REF_KC] dequantized chunk of one weight row */
    const int64_t K = w->cols;
    for (int64_t o = o0; o < o1; o++) {
        for (int64_t i = 0; i < n; i++) Y[i * ldy + o] = 0.0f;
        for (int64_t k0 = 0; k0 < K; k0 += EXACT_REF_KC) {
            int64_t kn = K - k0 < EXACT_REF_KC ? K - k0 : EXACT_REF_KC;
            for (int64_t k = 0; k < kn; k++) wk[k] = msbnb__i8_deq(w, o, k0 + k);
            for (int64_t i = 0; i < n; i++) {
                const float *x = X + i * ldx + k0;
                float acc = Y[i * ldy + o];
                for (int64_t k = 0; k < kn; k++) acc += x[k] * wk[k];
                Y[i * ldy + o] = acc;
            }
        }
    }
}

/* ---------------------------------------------------------------- transposed */

void msbnb__i8_t_ref(const msbnb__i8w *w, const float *dY, int64_t i0, int64_t i1, int64_t k0, int64_t k1,
                     float *dX, int accumulate, void *scratch) {
    float *wk = (float *)scratch; /* [k1 - k0 ≤ MSBNB__I8_T_KB_MAX] dequantized segment of row o */
    const int64_t K = w->cols, out = w->rows;
    if (!accumulate)
        for (int64_t i = i0; i < i1; i++)
            for (int64_t k = k0; k < k1; k++) dX[i * K + k] = 0.0f;
    for (int64_t o = 0; o < out; o++) {
        for (int64_t k = k0; k < k1; k++) wk[k - k0] = msbnb__i8_deq(w, o, k);
        for (int64_t i = i0; i < i1; i++) {
            float g = dY[i * out + o];
            float *d = dX + i * K;
            for (int64_t k = k0; k < k1; k++) d[k] = fmaf(g, wk[k - k0], d[k]);
        }
    }
}

/* ---------------------------------------------------------------- integer dot products */

void msbnb__i8_dot_ref(const msbnb__i8w *w, int64_t o0, int64_t o1, const int8_t *a, int64_t lda,
                       const int32_t *asum, int64_t m, int32_t *C, int64_t ldc) {
    (void)asum;
    const int64_t K = w->cols;
    for (int64_t i = 0; i < m; i++) {
        const int8_t *ai = a + i * lda;
        for (int64_t o = o0; o < o1; o++) {
            const uint8_t *wo = w->codes + o * K;
            int32_t acc = 0;
            if (w->asym)
                for (int64_t k = 0; k < K; k++) acc += (int32_t)ai[k] * (int32_t)wo[k];
            else
                for (int64_t k = 0; k < K; k++) acc += (int32_t)ai[k] * (int32_t)(int8_t)wo[k];
            C[i * ldc + (o - o0)] = acc;
        }
    }
}
