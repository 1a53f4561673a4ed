/*
 * matmul_4bit_fast_int8.c — the driver of the FAST int8 products for up to MSBNB__FI8_MAX_N
 * activation rows, or any number in passes of that many (matmul_4bit.h, "FAST int8 products"):
 * shape checks, the integer code table, the activation scratch and the threads. The loops live in
 * the ISA units (x86/matmul_4bit_avx512vnni.c; at the AVX2 level x86/matmul_4bit_avxvnni.c and
 * x86/matmul_4bit_avx2_int8.c over x86/matmul_4bit_av_loop.h), reached through a
 * msbnb__fi8_kernels table.
 *
 * Threads: one contiguous range of rows per thread, read row after row (one sequential stream per
 * thread: docs/kernels.md, "n = 1 FAST int8"); a row's arithmetic does not depend on its range, so
 * results are identical for every thread count.
 * Scratch: per activation row pairs·144 + 128 bytes (xo, xe, xcorr, sxm), then [chunks] int64 —
 * activation-sized, never weight-sized.
 */
#include "kernels/matmul_4bit.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* The code multiplier m: 1 when every table value is an integer in [-127, 127] (INT4: exact). */
static float code_multiplier(const float table[16]) {
    float mx = 0.0f;
    int integral = 1;
    for (int q = 0; q < 16; q++) {
        mx = fmaxf(mx, fabsf(table[q]));
        integral &= table[q] == rintf(table[q]) && fabsf(table[q]) <= 127.0f;
    }
    return integral || !(mx > 0.0f) ? 1.0f : 127.0f / mx;
}

void msbnb__fi8_row_scales(const msbnb__w4 *w, int64_t row, int64_t c0, int64_t ce, const int64_t *kblk, int bs_shift,
                           float *buf) {
    for (int64_t c = c0; c < ce; c++) {
        const int64_t si = w->flat_blocks ? (row * w->cols + c * 64) >> bs_shift : kblk[c] * w->rows + row;
        buf[c - c0] = msbnb__w4_stat(w, si);
    }
}

msbnb_status msbnb__matmul_4bit_fast_int8(const msbnb__fi8_kernels *k, const msbnb__w4 *w, const float *X, int64_t n,
                                          const float *bias, float *Y, int any_n) {
    const int64_t in = w->cols, out = w->rows;
    if (n > k->max_n) {
        /* passes only pay on long rows: at in = 768, n = 128 they ran at 0.8x the EXACT tiles (the
         * per-row work of the int8 loops), at in >= 2048 at 1.1-1.4x */
        if (!any_n || in < MSBNB__FI8_PASSES_MIN_IN) return MSBNB_ERR_UNSUPPORTED;
        /* passes of max_n rows: each row's arithmetic is that of n = 1 whatever the pass */
        for (int64_t i0 = 0; i0 < n; i0 += k->max_n) {
            const int64_t m = n - i0 < k->max_n ? n - i0 : k->max_n;
            TRY(msbnb__matmul_4bit_fast_int8(k, w, X + i0 * in, m, bias, Y + i0 * out, 0));
        }
        return MSBNB_OK;
    }
    if (in % 64 || w->block % 64) return MSBNB_ERR_UNSUPPORTED;
    int bs_shift = -1;
    for (int b = 0; b < 62; b++)
        if (((int64_t)1 << b) == w->block) bs_shift = b;
    if (w->flat_blocks && bs_shift < 0) return MSBNB_ERR_UNSUPPORTED;
    for (int q = 0; q < 16; q++)
        if (!(fabsf(w->table[q]) <= FLT_MAX)) return MSBNB_ERR_UNSUPPORTED;
    const float m = code_multiplier(w->table);
    uint8_t tb[16]; /* t̂ + 128: vpdpbusd's unsigned operand */
    for (int q = 0; q < 16; q++) tb[q] = (uint8_t)((int)rintf(w->table[q] * m) + 128);

    const int64_t chunks = in / 64, pairs = (chunks + 1) / 2;
    const size_t row_bytes = (size_t)pairs * (64 + 64 + 8 + 8) + 2 * 16 * sizeof(float);
    uint8_t *scratch = msbnb__alloc_aligned((size_t)n * row_bytes + (size_t)chunks * sizeof(int64_t));
    RETURN_IF(!scratch, MSBNB_ERR_OUT_OF_MEMORY, "no memory for [%lld, %lld] int8 activations", (long long)n,
              (long long)in);
    memset(scratch, 0, (size_t)n * row_bytes);
    msbnb__fi8_act a;
    memset(&a, 0, sizeof a);
    int finite = 1;
    for (int64_t i = 0; i < n && finite; i++) {
        uint8_t *base = scratch + (size_t)i * row_bytes;
        int8_t *xo = (int8_t *)base, *xe = xo + pairs * 64;
        float *xcorr = (float *)(base + pairs * 128); /* [2*pairs + 16] */
        float *sxm = xcorr + 2 * pairs + 16;          /* [2*pairs + 16] */
        finite = k->quantize_row(X + i * in, in, 1.0f / m, xo, xe, xcorr, sxm);
        a.xo[i] = xo, a.xe[i] = xe, a.xcorr[i] = xcorr, a.sxm[i] = sxm;
    }
    if (!finite) {
        msbnb__free_aligned(scratch);
        return MSBNB_ERR_UNSUPPORTED; /* non-finite activations: the EXACT kernels carry them */
    }
    int64_t *kblk = (int64_t *)(scratch + (size_t)n * row_bytes);
    for (int64_t c = 0; c < chunks; c++) kblk[c] = c * 64 / w->block;
    const double work = (double)n * (double)out * (double)in;
#pragma omp parallel num_threads(msbnb__threads()) if (work >= MSBNB__PARALLEL_MIN_WORK)
    {
        const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
        k->rows(w, &a, n, tb, out * id / nt, out * (id + 1) / nt, kblk, bs_shift, bias, Y);
    }
    msbnb__free_aligned(scratch);
    return MSBNB_OK;
}
