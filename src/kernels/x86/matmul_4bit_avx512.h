/*
 * matmul_4bit_avx512.h — inline helpers shared by the AVX-512 translation units of the 4-bit
 * products (matmul_4bit_avx512.c, matmul_4bit_avx512bf16.c). Include only from units compiled
 * with at least the AVX512 flags.
 */
#ifndef MSBNB_KERNELS_X86_MATMUL_4BIT_AVX512_H
#define MSBNB_KERNELS_X86_MATMUL_4BIT_AVX512_H

#include <immintrin.h>

#include "kernels/matmul_4bit.h"

#define MM4_INLINE static inline __attribute__((always_inline))

/* Full-width loads whose lanes are then masked, kept full width: gcc folds
 * _mm512_maskz_mov_*(m, _mm512_loadu_*(p)) into one zero-masking load, and a masked load that
 * misses the caches holds up the loads behind it on this core (from DRAM the FAST row loop ran at
 * half speed with masked statistics loads; in a d768 model a third of the FAST kernel's time sat
 * on the folded masked load of each 768-input row's statistics). The empty asm makes the full
 * load's value opaque, so it cannot be merged with the masking. Only for memory that is readable
 * for all 64 bytes. */
MM4_INLINE __m512 mm4_load_full_ps(const float *p) {
    __m512 v = _mm512_loadu_ps(p);
    __asm__("" : "+v"(v));
    return v;
}
MM4_INLINE __m512i mm4_load_full_si512(const void *p) {
    __m512i v = _mm512_loadu_si512(p);
    __asm__("" : "+v"(v));
    return v;
}

/* Register tile of the forward kernels: MR rows of X × NR rows of W, one zmm accumulator each. */
#define MM4_MR 6
#define MM4_NR 4

/* Lane sums of four accumulators, returned as [sum a, sum b, sum c, sum d]. Every sum is formed by
 * the same fixed tree (128-bit halves, then 64-bit, then 32-bit pairs) whatever its partners, so
 * a value never depends on which kernel variant (tile shape) produced it. */
MM4_INLINE __m128 mm4_hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
    /* 128-bit lane q of s holds four partials of the q-th input */
    __m512 s = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0x4E)); /* swap 64-bit pairs   */
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0xB1)); /* swap adjacent lanes */
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                                          0, 0, 0),
                                                        s));
}

/* Store the nr (<= 4) row sums s into y[0 .. nr): y = s on the first K chunk, else y = y + s. */
MM4_INLINE void mm4_store_row(float *y, __m128 s, int nr, int first) {
    __mmask8 m = (__mmask8)((1u << nr) - 1u);
    if (!first) s = _mm_add_ps(_mm_maskz_loadu_ps(m, y), s);
    _mm_mask_storeu_ps(y, m, s);
}

/* The forward register-blocked driver of one element type, shared by the fp32 (EXACT) and bf16
 * (FAST) units: instantiates TILE(X, ldx, Wt, ldw, kc, Y, ldy, first, mr, nr) for every mr <= 6,
 * nr <= 4 (compile-time constants, so the accumulators stay in registers) and defines
 *   static void NAME(const ELEM *X, int64_t ldx, int64_t n, const ELEM *Wt, int64_t ldw, int64_t nr,
 *                    int64_t kc, float *Y, int64_t ldy, int first)
 * walking X [n][ldx] in 6-row and Wt [nr][ldw] in 4-row register tiles into Y [n][ldy]. */
#define MM4_FWD_DRIVER(NAME, ELEM, TILE)                                                                      \
    typedef void (*NAME##_fn)(const ELEM *, int64_t, const ELEM *, int64_t, int64_t, float *, int64_t, int); \
    MM4_FWD_ROW(NAME, ELEM, TILE, 1) MM4_FWD_ROW(NAME, ELEM, TILE, 2) MM4_FWD_ROW(NAME, ELEM, TILE, 3)        \
    MM4_FWD_ROW(NAME, ELEM, TILE, 4) MM4_FWD_ROW(NAME, ELEM, TILE, 5) MM4_FWD_ROW(NAME, ELEM, TILE, 6)        \
    static const NAME##_fn NAME##_table[MM4_MR][MM4_NR] = {                                                    \
        {NAME##_1x1, NAME##_1x2, NAME##_1x3, NAME##_1x4}, {NAME##_2x1, NAME##_2x2, NAME##_2x3, NAME##_2x4},    \
        {NAME##_3x1, NAME##_3x2, NAME##_3x3, NAME##_3x4}, {NAME##_4x1, NAME##_4x2, NAME##_4x3, NAME##_4x4},    \
        {NAME##_5x1, NAME##_5x2, NAME##_5x3, NAME##_5x4}, {NAME##_6x1, NAME##_6x2, NAME##_6x3, NAME##_6x4},    \
    };                                                                                                         \
    static void NAME(const ELEM *X, int64_t ldx, int64_t n, const ELEM *Wt, int64_t ldw, int64_t nr,         \
                     int64_t kc, float *Y, int64_t ldy, int first) {                                          \
        for (int64_t i0 = 0; i0 < n; i0 += MM4_MR) {                                                          \
            const int mr = (int)(n - i0 < MM4_MR ? n - i0 : MM4_MR);                                          \
            for (int64_t j0 = 0; j0 < nr; j0 += MM4_NR) {                                                     \
                const int jr = (int)(nr - j0 < MM4_NR ? nr - j0 : MM4_NR);                                    \
                NAME##_table[mr - 1][jr - 1](X + i0 * ldx, ldx, Wt + j0 * ldw, ldw, kc, Y + i0 * ldy + j0,    \
                                             ldy, first);                                                     \
            }                                                                                                  \
        }                                                                                                      \
    }
#define MM4_FWD_ROW(NAME, ELEM, TILE, M)                                                                      \
    MM4_FWD_ONE(NAME, ELEM, TILE, M, 1) MM4_FWD_ONE(NAME, ELEM, TILE, M, 2) MM4_FWD_ONE(NAME, ELEM, TILE, M, 3) \
    MM4_FWD_ONE(NAME, ELEM, TILE, M, 4)
#define MM4_FWD_ONE(NAME, ELEM, TILE, M, N)                                                                   \
    static void NAME##_##M##x##N(const ELEM *X, int64_t ldx, const ELEM *Wt, int64_t ldw, int64_t kc, float *Y, \
                                 int64_t ldy, int first) {                                                    \
        TILE(X, ldx, Wt, ldw, kc, Y, ldy, first, M, N);                                                       \
    }

#endif
