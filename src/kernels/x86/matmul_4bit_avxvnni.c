/*
 * matmul_4bit_avxvnni.c — FAST int8 loops for up to MSBNB__FI8_MAX_N activation rows (token
 * generation, small batches) at the AVX2 level, on CPUs with AVX-VNNI (the VEX-encoded, 256-bit
 * vpdpbusd: Alder Lake and later Intel client cores, Zen 5). Same arithmetic and activation layout as the AVX512-VNNI unit
 * (matmul_4bit.h, "FAST int8 products"; the driver is matmul_4bit_fast_int8.c); the activation
 * bytes are identical, the fp32 sums are grouped differently (8 lanes).
 *
 * Per chunk (64 weights = 32 code bytes, one ymm): one 16-bit shift and two `and`s expose the
 * nibbles, two vpshufb look up the unsigned bytes t̂ + 128 (the table repeated in both 128-bit
 * lanes), two vpdpbusd against the chunk's odd and even activation bytes leave in int32 lane j the
 * sum over elements 8j..8j+7 — all 8 lanes belong to the chunk, so one vcvtdq2ps and one FMA by the
 * chunk's broadcast scale (statistic · step ÷ m) accumulate it. Four accumulators per activation
 * row hide the FMA latency; the +128 offset is removed per 8 chunks by one FMA of the chunk scales
 * with xcorr. Rows one after the other, prefetch 6 KiB ahead once per 64-byte line.
 * Compiled with -mavx2 -mfma -mavxvnni only (src/kernels/fourbit.cmake); reached at the AVX2 level
 * when msbnb__cpu()->avxvnni.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/matmul_4bit.h"

#define AV_INLINE static inline __attribute__((always_inline))
#define AV_ACC 4    /* accumulator chains per activation row                     */
#define AV_PF 6144  /* prefetch distance along W, bytes (as the AVX-512 unit)     */
#define AV_SEG 128  /* chunks per segment of decoded statistics (multiple of 8)  */

/* ---------------------------------------------------------------- activations */

/* One activation row into the layout of matmul_4bit.h (arrays pre-zeroed); 0 if some x is not
 * finite. x̂ = rint(x · (127/a)) with round-half-even, as the AVX-512 unit computes it. */
static int quantize_row(const float *x, int64_t in, float inv_m, int8_t *xo, int8_t *xe, float *xcorr, float *sxm) {
    const int64_t chunks = in / 64;
    const __m256 sign = _mm256_set1_ps(-0.0f), big = _mm256_set1_ps(3.402823466e38f);
    for (int64_t c = 0; c < chunks; c++) {
        __m256 v[8], mx = _mm256_setzero_ps();
        int bad = 0;
        for (int t = 0; t < 8; t++) {
            v[t] = _mm256_loadu_ps(x + 64 * c + 8 * t);
            const __m256 av = _mm256_andnot_ps(sign, v[t]);
            mx = _mm256_max_ps(mx, av);
            bad |= _mm256_movemask_ps(_mm256_cmp_ps(av, big, _CMP_NLE_UQ)); /* NaN or Inf */
        }
        if (bad) return 0;
        float lanes[8], amax = 0.0f;
        _mm256_storeu_ps(lanes, mx);
        for (int l = 0; l < 8; l++) amax = lanes[l] > amax ? lanes[l] : amax;
        const __m256 inv = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
        sxm[c] = amax / 127.0f * inv_m;
        int32_t q[64], sum = 0;
        for (int t = 0; t < 8; t++) {
            const __m256 r = _mm256_round_ps(_mm256_mul_ps(v[t], inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm256_storeu_si256((__m256i *)(q + 8 * t), _mm256_cvttps_epi32(r));
        }
        for (int b = 0; b < 32; b++) { /* |q| <= 127: the bytes are exact */
            xe[32 * c + b] = (int8_t)q[2 * b];
            xo[32 * c + b] = (int8_t)q[2 * b + 1];
            sum += q[2 * b] + q[2 * b + 1];
        }
        xcorr[c] = (float)(-128 * sum);
    }
    return 1;
}

/* ---------------------------------------------------------------- rows */

/* Chunk c of a row for nn activation rows; s[i] = the chunk's scale for activation row i. */
AV_INLINE void av_chunk(const uint8_t *src, int64_t c, const msbnb__fi8_act *a, __m256i T, const float *s,
                        __m256 *acc, const int nn, const int pf) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    if (pf && !(c & 1)) _mm_prefetch((const char *)((uintptr_t)src + (uintptr_t)(32 * c + AV_PF)), _MM_HINT_T0);
    const __m256i v = _mm256_loadu_si256((const __m256i *)(src + 32 * c));
    const __m256i wl = _mm256_shuffle_epi8(T, _mm256_and_si256(v, low4));
    const __m256i wh = _mm256_shuffle_epi8(T, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
    for (int i = 0; i < nn; i++) {
        __m256i d = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), wl,
                                            _mm256_loadu_si256((const __m256i *)(a->xo[i] + 32 * c)));
        d = _mm256_dpbusd_avx_epi32(d, wh, _mm256_loadu_si256((const __m256i *)(a->xe[i] + 32 * c)));
        acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_broadcast_ss(s + 8 * i), acc[i]);
    }
}

/* Row `row` of W against nn activation rows (a compile-time constant): Y[i * w->rows + row] for
 * i < nn. buf: AV_SEG + 8 floats of scratch; pf: issue the W prefetches (first pass over the row). */
AV_INLINE void av_row(const msbnb__w4 *w, const msbnb__fi8_act *a, __m256i T, int64_t row, const int nn, const int pf,
                      const int64_t *kblk, int bs_shift, float *buf, const float *bias, float *Y) {
    const int64_t chunks = w->cols / 64;
    const int direct = w->stats && w->flat_blocks && w->block == 64;
    const int dq = !w->stats && w->flat_blocks && w->block == 64; /* statistics in place, double-quantized */
    const uint8_t *src = w->data + row * (w->cols / 2);
    __m256 acc[AV_ACC][2], corr[2];
    for (int i = 0; i < nn; i++) {
        corr[i] = _mm256_setzero_ps();
        for (int k = 0; k < AV_ACC; k++) acc[k][i] = _mm256_setzero_ps();
    }
    for (int64_t c0 = 0; c0 < chunks; c0 += AV_SEG) {
        const int64_t ce = c0 + AV_SEG < chunks ? c0 + AV_SEG : chunks;
        const float *scp = buf;
        if (direct) scp = w->stats + row * chunks + c0;
        else if (dq) msbnb__mm4_dq_scales_avx2(w, row * chunks + c0, ce - c0, buf);
        else msbnb__fi8_row_scales(w, row, c0, ce, kblk, bs_shift, buf);
        for (int64_t g = c0; g < ce; g += 8) { /* 8 chunks share one vector of scales */
            const int64_t gc = ce - g < 8 ? ce - g : 8;
            float s[2][8]; /* [activation row][chunk of the group] */
            __m256 st;
            if (gc == 8) {
                st = _mm256_loadu_ps(scp + (g - c0));
            } else { /* the row's last group: only gc scales exist (a scalar copy: no masked loads) */
                float tmp[8] = {0};
                memcpy(tmp, scp + (g - c0), (size_t)gc * sizeof(float));
                st = _mm256_loadu_ps(tmp);
            }
            for (int i = 0; i < nn; i++) { /* sxm and xcorr are 0 past the row's chunks (padded) */
                const __m256 sg = _mm256_mul_ps(st, _mm256_loadu_ps(a->sxm[i] + g));
                corr[i] = _mm256_fmadd_ps(sg, _mm256_loadu_ps(a->xcorr[i] + g), corr[i]);
                _mm256_storeu_ps(s[i], sg);
            }
            if (gc == 8) {
                for (int q = 0; q < 8; q++) av_chunk(src, g + q, a, T, &s[0][q], acc[q % AV_ACC], nn, pf);
            } else {
                for (int q = 0; q < gc; q++) av_chunk(src, g + q, a, T, &s[0][q], acc[0], nn, pf);
            }
        }
    }
    for (int i = 0; i < nn; i++) {
        __m256 t = _mm256_add_ps(acc[0][i], corr[i]);
        for (int k = 1; k < AV_ACC; k++) t = _mm256_add_ps(t, acc[k][i]);
        const __m128 h = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
        const __m128 h2 = _mm_add_ps(h, _mm_movehl_ps(h, h));
        const float y = _mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)));
        Y[i * w->rows + row] = bias ? y + bias[row] : y;
    }
}

/* Rows [rb, re) for n activation rows (1 <= n <= MSBNB__FI8_MAX_N): each W row meets them two at a
 * time, as in the AVX-512 unit, so every activation row sees the operations of n = 1. */
static void av_range(const msbnb__w4 *w, const msbnb__fi8_act *a, __m256i T, int64_t n, int64_t rb, int64_t re,
                     const int64_t *kblk, int bs_shift, const float *bias, float *Y) {
    const int64_t chunks = w->cols / 64, row_bytes = w->cols / 2;
    const int dq = !w->stats && w->flat_blocks && w->block == 64;
    float buf[AV_SEG + 8]; /* + 8: the partial group's full-width load */
    for (int64_t o = 0; o < AV_PF && rb < re; o += 64)
        _mm_prefetch((const char *)((uintptr_t)(w->data + rb * row_bytes) + (uintptr_t)o), _MM_HINT_T0);
    for (int64_t row = rb; row < re; row++) {
        if (dq) { /* the statistics' codes 4 rows ahead: a thin stream the hardware follows late */
            const uintptr_t q0 = (uintptr_t)w->stats_q + (uintptr_t)((row + 4) * chunks);
            for (uintptr_t o = 0; o < (uintptr_t)chunks; o += 64) _mm_prefetch((const char *)(q0 + o), _MM_HINT_T0);
        }
        for (int64_t i0 = 0; i0 < n; i0 += 2) {
            msbnb__fi8_act ai; /* activation rows i0, i0 + 1 (entries 0 and 1 only) */
            msbnb__fi8_act_pair(a, n, i0, &ai);
            float *Yi = Y + i0 * w->rows;
            if (n - i0 >= 2) av_row(w, &ai, T, row, 2, i0 == 0, kblk, bs_shift, buf, bias, Yi);
            else av_row(w, &ai, T, row, 1, i0 == 0, kblk, bs_shift, buf, bias, Yi);
        }
    }
}

static void rows_avxvnni(const msbnb__w4 *w, const msbnb__fi8_act *a, int64_t n, const uint8_t tb[16], int64_t rb,
                         int64_t re, const int64_t *kblk, int bs_shift, const float *bias, float *Y) {
    const __m256i T = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)tb));
    av_range(w, a, T, n, rb, re, kblk, bs_shift, bias, Y);
}

const msbnb__fi8_kernels msbnb__fi8_avxvnni = {quantize_row, rows_avxvnni, MSBNB__FI8_MAX_N};
