/*
 * matmul_4bit_ref.c — scalar reference of the fused 4-bit products: the specification every SIMD
 * variant is tested against (tests/kernels/test_matmul_4bit.c).
 *
 *   Y[i, o]  = (sum over k = 0, 1, ..., in-1 of X[i, k] * w(o, k)) + bias[o]
 *   dX[i, k] = (accumulate ? dX[i, k] : 0) + sum over o = 0, 1, ..., out-1 of dY[i, o] * w(o, k)
 *
 * w(o, k) is the exact dequantized weight (matmul_4bit.h); every product is rounded to float32 and
 * added in the order written (no FMA: the project builds with -ffp-contract=off). The running sum
 * lives in the output itself, so tiling k into chunks does not change the order.
 * Scratch: one decoded row chunk [KC] per thread.
 */
#include "kernels/matmul_4bit.h"

#include <string.h>

/* ---------------------------------------------------------------- weight description */

void msbnb__w4_init(const msbnb_qtensor *W, msbnb__w4 *w) {
    const msbnb_qtensor_view *v = &W->v;
    memset(w, 0, sizeof *w);
    w->data = v->data;
    w->rows = v->rows;
    w->cols = v->cols;
    w->flat_blocks = v->type != MSBNB_QTYPE_INT4;
    w->block = w->flat_blocks ? v->blocksize : v->group_size;
    w->stats = v->double_quant ? NULL : v->stats;
    w->stats_q = v->stats_q;
    w->nested_absmax = v->nested_absmax;
    w->nested_code = v->nested_code;
    w->nested_offset = v->nested_offset;
    w->nested_block = v->nested_blocksize > 0 ? v->nested_blocksize : 256;
    w->nested_shift = -1;
    for (int b = 0; b < 62; b++)
        if (((int64_t)1 << b) == w->nested_block) w->nested_shift = b;
    for (int i = 0; i < 16; i++)
        w->table[i] = w->flat_blocks ? v->code[i] : (float)(((i ^ 8) & 15) - 8); /* two's complement nibble */
    if (w->stats_q)
        for (int q = 0; q < 256; q++) {
            uint32_t bits;
            memcpy(&bits, &w->nested_code[q], sizeof bits);
            for (int b = 0; b < 4; b++) w->dq_planes[b][q] = (uint8_t)(bits >> (8 * b));
        }
}

/* ---------------------------------------------------------------- tile decode */

void msbnb__w4_decode_ref(const msbnb__w4 *w, int64_t r0, int64_t nr, int64_t k0, int64_t kc, float *out,
                          int64_t ld) {
    for (int64_t r = r0; r < r0 + nr; r++) {
        float *dst = out + (r - r0) * ld;
        int64_t cur = -1;
        float scale = 0.0f;
        for (int64_t k = k0; k < k0 + kc; k++) {
            int64_t si = msbnb__w4_stat_index(w, r, k);
            if (si != cur) { /* statistics change only at block / group boundaries */
                cur = si;
                scale = msbnb__w4_stat(w, si);
            }
            dst[k - k0] = w->table[msbnb__w4_nibble(w, r, k)] * scale;
        }
    }
}

/* ---------------------------------------------------------------- products */

#define REF_KC 256 /* k per decoded chunk (any value gives the same result) */

msbnb_status msbnb__matmul_4bit_ref(const msbnb__w4 *w, const float *X, int64_t n, const float *bias, float *Y,
                                    msbnb_precision precision) {
    (void)precision; /* the reference has one semantics: EXACT */
    const int64_t in = w->cols, out = w->rows;
    int failed = 0;
#pragma omp parallel num_threads(msbnb__threads())
    {
        float *row = msbnb__alloc_aligned(REF_KC * sizeof(float)); /* row: [REF_KC] decoded w(o, k0..) */
        if (!row) {
#pragma omp atomic write
            failed = 1;
        }
        /* Every thread reaches the loop (no early exit around a worksharing construct). */
#pragma omp for schedule(static)
        for (int64_t o = 0; o < out; o++) {
            if (!row) continue;
            for (int64_t i = 0; i < n; i++) Y[i * out + o] = 0.0f;
            for (int64_t k0 = 0; k0 < in; k0 += REF_KC) {
                int64_t kc = in - k0 < REF_KC ? in - k0 : REF_KC;
                msbnb__w4_decode_ref(w, o, 1, k0, kc, row, REF_KC);
                for (int64_t i = 0; i < n; i++) {
                    const float *x = X + i * in + k0;
                    float s = Y[i * out + o];
                    for (int64_t k = 0; k < kc; k++) s += x[k] * row[k];
                    Y[i * out + o] = s;
                }
            }
            if (bias)
                for (int64_t i = 0; i < n; i++) Y[i * out + o] += bias[o];
        }
        msbnb__free_aligned(row);
    }
    RETURN_IF(failed, MSBNB_ERR_OUT_OF_MEMORY, "no memory for a %d-float row tile", REF_KC);
    return MSBNB_OK;
}

msbnb_status msbnb__matmul_4bit_t_ref(const msbnb__w4 *w, const float *dY, int64_t n, float *dX, int accumulate) {
    const int64_t in = w->cols, out = w->rows;
    const int64_t nchunks = (in + REF_KC - 1) / REF_KC;
    int failed = 0;
#pragma omp parallel num_threads(msbnb__threads())
    {
        float *row = msbnb__alloc_aligned(REF_KC * sizeof(float)); /* row: [REF_KC] decoded w(o, k0..) */
        if (!row) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t c = 0; c < nchunks; c++) {
            if (!row) continue;
            const int64_t k0 = c * REF_KC, kc = in - k0 < REF_KC ? in - k0 : REF_KC;
            if (!accumulate)
                for (int64_t i = 0; i < n; i++) memset(dX + i * in + k0, 0, (size_t)kc * sizeof(float));
            for (int64_t o = 0; o < out; o++) {
                msbnb__w4_decode_ref(w, o, 1, k0, kc, row, REF_KC);
                for (int64_t i = 0; i < n; i++) {
                    const float g = dY[i * out + o];
                    float *dx = dX + i * in + k0;
                    for (int64_t k = 0; k < kc; k++) dx[k] += g * row[k];
                }
            }
        }
        msbnb__free_aligned(row);
    }
    RETURN_IF(failed, MSBNB_ERR_OUT_OF_MEMORY, "no memory for a %d-float row tile", REF_KC);
    return MSBNB_OK;
}
