/*
 * matmul_int8_avx512vnni.c — integer dot products with AVX512-VNNI vpdpbusd (four u8×s8 products
 * summed into each int32 lane, no intermediate saturation). Reached when msbnb__isa() ≥
 * AVX512_VNNI; the EXACT and transposed kernels of that level are the AVX-512 ones.
 *
 * vpdpbusd multiplies an UNSIGNED byte by a SIGNED byte:
 *  - uint8 weights (asymmetric) are the unsigned side as they are: Σ code·a directly.
 *  - int8 weights (symmetric): the activations become unsigned as a + 128 (xor 0x80), and
 *    Σ (a + 128)·w = Σ a·w + 128·Σ w, so 128·Σ w — itself a vpdpbusd of ones against w — is
 *    subtracted at the end. The raw sums may wrap in int32; the corrected result fits
 *    (K ≤ MSBNB__INT8_MAX_K), and wrapping arithmetic modulo 2³² makes it exact.
 */
#include <immintrin.h>

#include "kernels/int8_kernels.h"

#define DR 4 /* activation rows per register tile */
#define DO 4 /* weight rows per register tile     */
#define INLINE static inline __attribute__((always_inline))

/* Sum of the 16 int32 lanes in uint32 arithmetic (wraps modulo 2³², never signed overflow). */
static uint32_t hsum_u32(__m512i v) {
    uint32_t t[16], s = 0;
    _mm512_storeu_si512((void *)t, v);
    for (int l = 0; l < 16; l++) s += t[l];
    return s;
}

static __mmask64 mask64(int64_t left) { return left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1); }

INLINE void dot_tile(const msbnb__i8w *w, int64_t o, const int8_t *a, int64_t lda, const int r, const int q,
                     int32_t *C, int64_t ldc) {
    const int64_t K = w->cols;
    const int asym = w->asym;
    const __m512i flip = _mm512_set1_epi8((char)0x80), ones = _mm512_set1_epi8(1);
    __m512i acc[DR][DO], wsum[DO];
    for (int j = 0; j < q; j++) {
        wsum[j] = _mm512_setzero_si512();
        for (int i = 0; i < r; i++) acc[i][j] = _mm512_setzero_si512();
    }
    for (int64_t k = 0; k < K; k += 64) {
        __mmask64 m = mask64(K - k);
        __m512i wv[DO];
        for (int j = 0; j < q; j++) {
            wv[j] = _mm512_maskz_loadu_epi8(m, w->codes + (o + j) * K + k); /* zeros past K */
            if (!asym) wsum[j] = _mm512_dpbusd_epi32(wsum[j], ones, wv[j]);
        }
        for (int i = 0; i < r; i++) {
            __m512i av = _mm512_maskz_loadu_epi8(m, a + i * lda + k);
            if (asym) {
                for (int j = 0; j < q; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], wv[j], av);
            } else {
                __m512i au = _mm512_xor_si512(av, flip); /* a + 128 as unsigned */
                for (int j = 0; j < q; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], au, wv[j]);
            }
        }
    }
    for (int j = 0; j < q; j++) {
        uint32_t ws = asym ? 0u : hsum_u32(wsum[j]);
        for (int i = 0; i < r; i++)
            C[i * ldc + j] = (int32_t)(hsum_u32(acc[i][j]) - 128u * ws);
    }
}

void msbnb__i8_dot_avx512vnni(const msbnb__i8w *w, int64_t o0, int64_t o1, const int8_t *a, int64_t lda,
                              const int32_t *asum, int64_t m, int32_t *C, int64_t ldc) {
    (void)asum;
    for (int64_t i = 0; i < m; i += DR)
        for (int64_t o = o0; o < o1; o += DO) {
            int r = (int)(m - i < DR ? m - i : DR), q = (int)(o1 - o < DO ? o1 - o : DO);
            const int8_t *ai = a + i * lda;
            int32_t *c = C + i * ldc + (o - o0);
            if (r == DR && q == DO) dot_tile(w, o, ai, lda, DR, DO, c, ldc);
            else dot_tile(w, o, ai, lda, r, q, c, ldc);
        }
}
