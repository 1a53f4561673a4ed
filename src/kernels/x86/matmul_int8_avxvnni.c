/*
 * matmul_int8_avxvnni.c — integer dot products with AVX-VNNI (the VEX-encoded, 256-bit vpdpbusd
 * of Alder Lake / Zen 5 class CPUs). Used at the AVX2 level when the CPU reports AVX-VNNI; the
 * EXACT and transposed kernels of that level are the AVX2 ones. Compiled with -mavx2 -mfma
 * -mavxvnni only (see src/kernels/int8.cmake).
 *
 * vpdpbusd multiplies an unsigned byte by a signed byte, four products per int32 lane, with no
 * intermediate saturation:
 *  - uint8 weights (asymmetric) are the unsigned side as they are: Σ code·a;
 *  - int8 weights (symmetric): |w| is the unsigned side and a·sign(w) (vpsignb) the signed one,
 *    |w|·(a·sign w) = w·a, so no correction term is needed (|w| ≤ 128 fits a byte);
 *  - up to 8 activation rows (token generation, small batches): the weights become unsigned as
 *    w + 128 (xor 0x80) and 128·Σ a (the driver's asum) is subtracted — one xor per weight vector
 *    instead of abs + sign per activation row — with weight rows read one after the other and
 *    prefetched ahead (dot_rows_few).
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/int8_kernels.h"

#define DR 2 /* activation rows per register tile (8 accumulators + 4 weights fit 16 ymm) */
#define DO 4 /* weight rows per register tile                                              */
#define INLINE static inline __attribute__((always_inline))

/* Sum of the 8 int32 lanes in uint32 arithmetic (wraps modulo 2³², never signed overflow). */
static uint32_t hsum_u32(__m256i v) {
    uint32_t t[8], s = 0;
    _mm256_storeu_si256((__m256i *)t, v);
    for (int l = 0; l < 8; l++) s += t[l];
    return s;
}

/* acc[i][j] += 32 bytes of a_i · w_j (see the header for the sign handling). */
INLINE void dot_step(const uint8_t *w0, int64_t ldw, const int8_t *a, int64_t lda, const int r, const int q,
                     const int asym, __m256i acc[DR][DO]) {
    __m256i wv[DO];
    for (int j = 0; j < q; j++) wv[j] = _mm256_loadu_si256((const __m256i *)(w0 + j * ldw));
    for (int i = 0; i < r; i++) {
        __m256i av = _mm256_loadu_si256((const __m256i *)(a + i * lda));
        for (int j = 0; j < q; j++)
            acc[i][j] = asym ? _mm256_dpbusd_avx_epi32(acc[i][j], wv[j], av)
                             : _mm256_dpbusd_avx_epi32(acc[i][j], _mm256_abs_epi8(wv[j]), _mm256_sign_epi8(av, wv[j]));
    }
}

INLINE void dot_tile(const msbnb__i8w *w, int64_t o, const int8_t *a, int64_t lda, const int r, const int q,
                     const int asym, int32_t *C, int64_t ldc) {
    const int64_t K = w->cols, kv = K & ~(int64_t)31;
    const uint8_t *w0 = w->codes + o * K;
    __m256i acc[DR][DO];
    for (int i = 0; i < r; i++)
        for (int j = 0; j < q; j++) acc[i][j] = _mm256_setzero_si256();
    for (int64_t k = 0; k < kv; k += 32) dot_step(w0 + k, K, a + k, lda, r, q, asym, acc);
    if (kv < K) {
        /* The < 32 last columns, zero-padded into one more vector step. (Not a scalar loop:
         * gcc 12 -O3 auto-vectorizes such a mixed-sign loop into a wrong AVX-VNNI dot product.) */
        uint8_t wt[DO][32] = {{0}};
        int8_t at[DR][32] = {{0}};
        for (int j = 0; j < q; j++) memcpy(wt[j], w0 + j * K + kv, (size_t)(K - kv));
        for (int i = 0; i < r; i++) memcpy(at[i], a + i * lda + kv, (size_t)(K - kv));
        dot_step(&wt[0][0], 32, &at[0][0], 32, r, q, asym, acc);
    }
    for (int i = 0; i < r; i++)
        for (int j = 0; j < q; j++) C[i * ldc + j] = (int32_t)hsum_u32(acc[i][j]);
}

#define FEW_PF 6144 /* weight bytes prefetched ahead by the few-row loop, one line per 64 bytes     */
#define FEW_G 2      /* activation rows met by a weight row at a time (2 x 4 ymm accumulators)       */
#define FEW_MAX 8    /* up to this many activation rows the few-row loop runs; beyond, the tiles      */

/* Weight row o against m <= FEW_G activation rows (m, asym compile-time constants), four
 * accumulators per activation row; pf: issue the prefetches (the first group over the row).
 * C[i * ldc] = Σ_k a[i, k]·code[o, k] (the same int32 values as the tiles). */
INLINE void dot_row_group(const msbnb__i8w *w, int64_t o, const int8_t *a, int64_t lda, const int32_t *asum,
                          int32_t *C, int64_t ldc, const int m, const int asym, const int pf) {
    const int64_t K = w->cols, kv = K & ~(int64_t)127, k32 = K & ~(int64_t)31;
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    const uint8_t *wr = w->codes + o * K;
    __m256i acc[FEW_G][4];
    for (int i = 0; i < m; i++)
        for (int u = 0; u < 4; u++) acc[i][u] = _mm256_setzero_si256();
    int64_t k = 0;
    for (; k < kv; k += 128) {
        if (pf) { /* the addresses as integers: past the tensor's end is fine for a prefetch */
            _mm_prefetch((const char *)((uintptr_t)wr + (uintptr_t)(k + FEW_PF)), _MM_HINT_T0);
            _mm_prefetch((const char *)((uintptr_t)wr + (uintptr_t)(k + 64 + FEW_PF)), _MM_HINT_T0);
        }
        for (int u = 0; u < 4; u++) {
            __m256i wv = _mm256_loadu_si256((const __m256i *)(wr + k + 32 * u));
            if (!asym) wv = _mm256_xor_si256(wv, flip); /* w + 128 as unsigned */
            for (int i = 0; i < m; i++)
                acc[i][u] = _mm256_dpbusd_avx_epi32(acc[i][u], wv, _mm256_loadu_si256((const __m256i *)(a + i * lda + k + 32 * u)));
        }
    }
    for (; k < k32; k += 32) {
        __m256i wv = _mm256_loadu_si256((const __m256i *)(wr + k));
        if (!asym) wv = _mm256_xor_si256(wv, flip);
        for (int i = 0; i < m; i++)
            acc[i][0] = _mm256_dpbusd_avx_epi32(acc[i][0], wv, _mm256_loadu_si256((const __m256i *)(a + i * lda + k)));
    }
    if (k < K) { /* the last < 32 columns, zero-padded on both sides (a zero activation meets the
                  * padded weight whatever its bias) */
        uint8_t wt[32] = {0};
        memcpy(wt, wr + k, (size_t)(K - k));
        __m256i wv = _mm256_loadu_si256((const __m256i *)wt);
        if (!asym) wv = _mm256_xor_si256(wv, flip);
        for (int i = 0; i < m; i++) {
            int8_t at[32] = {0};
            memcpy(at, a + i * lda + k, (size_t)(K - k));
            acc[i][1] = _mm256_dpbusd_avx_epi32(acc[i][1], wv, _mm256_loadu_si256((const __m256i *)at));
        }
    }
    for (int i = 0; i < m; i++) {
        const __m256i t = _mm256_add_epi32(_mm256_add_epi32(acc[i][0], acc[i][1]), _mm256_add_epi32(acc[i][2], acc[i][3]));
        C[i * ldc] = (int32_t)(hsum_u32(t) - (asym ? 0u : 128u * (uint32_t)asum[i]));
    }
}

/* m <= FEW_MAX activation rows: weight rows o0 .. o1-1 one after the other (one sequential stream),
 * each meeting the activation rows FEW_G at a time while it stays in L1. */
INLINE void dot_rows_few(const msbnb__i8w *w, int64_t o0, int64_t o1, const int8_t *a, int64_t lda,
                         const int32_t *asum, int64_t m, int32_t *C, int64_t ldc, const int asym) {
    for (int64_t o = o0; o < o1; o++)
        for (int64_t i0 = 0; i0 < m; i0 += FEW_G) {
            const int8_t *ai = a + i0 * lda;
            int32_t *c = C + i0 * ldc + (o - o0);
            if (m - i0 >= 2) dot_row_group(w, o, ai, lda, asum + i0, c, ldc, 2, asym, i0 == 0);
            else dot_row_group(w, o, ai, lda, asum + i0, c, ldc, 1, asym, i0 == 0);
        }
}

void msbnb__i8_dot_avxvnni(const msbnb__i8w *w, int64_t o0, int64_t o1, const int8_t *a, int64_t lda,
                           const int32_t *asum, int64_t m, int32_t *C, int64_t ldc) {
    if (m <= FEW_MAX) {
        if (w->asym) dot_rows_few(w, o0, o1, a, lda, asum, m, C, ldc, 1);
        else dot_rows_few(w, o0, o1, a, lda, asum, m, C, ldc, 0);
        return;
    }
    for (int64_t i = 0; i < m; i += DR)
        for (int64_t o = o0; o < o1; o += DO) {
            int r = (int)(m - i < DR ? m - i : DR), q = (int)(o1 - o < DO ? o1 - o : DO);
            const int8_t *ai = a + i * lda;
            int32_t *c = C + i * ldc + (o - o0);
            if (r == DR && q == DO) {
                if (w->asym) dot_tile(w, o, ai, lda, DR, DO, 1, c, ldc);
                else dot_tile(w, o, ai, lda, DR, DO, 0, c, ldc);
            } else {
                dot_tile(w, o, ai, lda, r, q, w->asym, c, ldc);
            }
        }
}
