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
 *  - up to 8 activation rows (token generation, small batches): the weights become unsigned
 *    instead, w + 128 (xor 0x80), against the signed activations, and 128·Σ a — the driver's
 *    asum — is subtracted: one xor per 64 weights and one vpdpbusd per activation row, weight
 *    rows read one after the other with a software prefetch ahead (see dot_rows_few).
 * Every way gives the same int32 values, so results do not depend on the path or the ISA.
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

/* One 64-byte step of an r×q tile: ASYM and the shapes are compile-time constants at every call
 * so the accumulators stay in registers. */
INLINE void dot_step(const uint8_t *w0, int64_t K, const int8_t *a, int64_t lda, const int r, const int q,
                     const int asym, __mmask64 m, const int masked, __m512i acc[DR][DO], __m512i wsum[DO]) {
    const __m512i flip = _mm512_set1_epi8((char)0x80), ones = _mm512_set1_epi8(1);
    __m512i wv[DO];
    for (int j = 0; j < q; j++) {
        wv[j] = masked ? _mm512_maskz_loadu_epi8(m, w0 + j * K) : _mm512_loadu_si512((const void *)(w0 + j * K));
        if (!asym) wsum[j] = _mm512_dpbusd_epi32(wsum[j], ones, wv[j]);
    }
    for (int i = 0; i < r; i++) {
        __m512i av = masked ? _mm512_maskz_loadu_epi8(m, a + i * lda) : _mm512_loadu_si512((const void *)(a + i * lda));
        if (asym) {
            for (int j = 0; j < q; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], wv[j], av);
        } else {
            __m512i au = _mm512_xor_si512(av, flip); /* a + 128 as unsigned */
            for (int j = 0; j < q; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], au, wv[j]);
        }
    }
}

INLINE void dot_tile(const msbnb__i8w *w, int64_t o, const int8_t *a, int64_t lda, const int r, const int q,
                     const int asym, int32_t *C, int64_t ldc) {
    const int64_t K = w->cols, kv = K & ~(int64_t)63;
    const uint8_t *w0 = w->codes + o * K;
    __m512i acc[DR][DO], wsum[DO];
    for (int j = 0; j < q; j++) {
        wsum[j] = _mm512_setzero_si512();
        for (int i = 0; i < r; i++) acc[i][j] = _mm512_setzero_si512();
    }
    for (int64_t k = 0; k < kv; k += 64) dot_step(w0 + k, K, a + k, lda, r, q, asym, 0, 0, acc, wsum);
    if (kv < K) dot_step(w0 + kv, K, a + kv, lda, r, q, asym, mask64(K - kv), 1, acc, wsum); /* zeros past K */
    for (int j = 0; j < q; j++) {
        uint32_t ws = asym ? 0u : hsum_u32(wsum[j]);
        for (int i = 0; i < r; i++) C[i * ldc + j] = (int32_t)(hsum_u32(acc[i][j]) - 128u * ws);
    }
}

/* The full 4×4 tile spelled out with named accumulators (16 + 4 weight sums + 4 weight vectors
 * + constants fit the 32 zmm registers; arrays passed around spill). Unmasked steps; the tail
 * step, if any, goes through dot_step. */
#define ROW_SYM(i)                                                                                            \
    do {                                                                                                      \
        __m512i au = _mm512_xor_si512(_mm512_loadu_si512((const void *)(a + (i) * lda + k)), flip);           \
        c##i##0 = _mm512_dpbusd_epi32(c##i##0, au, w0v);                                                      \
        c##i##1 = _mm512_dpbusd_epi32(c##i##1, au, w1v);                                                      \
        c##i##2 = _mm512_dpbusd_epi32(c##i##2, au, w2v);                                                      \
        c##i##3 = _mm512_dpbusd_epi32(c##i##3, au, w3v);                                                      \
    } while (0)
#define ROW_ASYM(i)                                                                                           \
    do {                                                                                                      \
        __m512i av = _mm512_loadu_si512((const void *)(a + (i) * lda + k));                                   \
        c##i##0 = _mm512_dpbusd_epi32(c##i##0, w0v, av);                                                      \
        c##i##1 = _mm512_dpbusd_epi32(c##i##1, w1v, av);                                                      \
        c##i##2 = _mm512_dpbusd_epi32(c##i##2, w2v, av);                                                      \
        c##i##3 = _mm512_dpbusd_epi32(c##i##3, w3v, av);                                                      \
    } while (0)

INLINE void tile44(const msbnb__i8w *w, int64_t o, const int8_t *a, int64_t lda, const int asym, int32_t *C,
                   int64_t ldc) {
    const int64_t K = w->cols, kv = K & ~(int64_t)63;
    const uint8_t *w0 = w->codes + o * K;
    const __m512i flip = _mm512_set1_epi8((char)0x80), ones = _mm512_set1_epi8(1), z = _mm512_setzero_si512();
    __m512i c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
    __m512i c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z;
    __m512i s0 = z, s1 = z, s2 = z, s3 = z;
    for (int64_t k = 0; k < kv; k += 64) {
        __m512i w0v = _mm512_loadu_si512((const void *)(w0 + k));
        __m512i w1v = _mm512_loadu_si512((const void *)(w0 + K + k));
        __m512i w2v = _mm512_loadu_si512((const void *)(w0 + 2 * K + k));
        __m512i w3v = _mm512_loadu_si512((const void *)(w0 + 3 * K + k));
        if (asym) {
            ROW_ASYM(0);
            ROW_ASYM(1);
            ROW_ASYM(2);
            ROW_ASYM(3);
        } else {
            s0 = _mm512_dpbusd_epi32(s0, ones, w0v);
            s1 = _mm512_dpbusd_epi32(s1, ones, w1v);
            s2 = _mm512_dpbusd_epi32(s2, ones, w2v);
            s3 = _mm512_dpbusd_epi32(s3, ones, w3v);
            ROW_SYM(0);
            ROW_SYM(1);
            ROW_SYM(2);
            ROW_SYM(3);
        }
    }
    __m512i acc[DR][DO] = {{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23}, {c30, c31, c32, c33}};
    __m512i wsum[DO] = {s0, s1, s2, s3};
    if (kv < K) dot_step(w0 + kv, K, a + kv, lda, DR, DO, asym, mask64(K - kv), 1, acc, wsum);
    for (int j = 0; j < DO; j++) {
        uint32_t ws = asym ? 0u : hsum_u32(wsum[j]);
        for (int i = 0; i < DR; i++) C[i * ldc + j] = (int32_t)(hsum_u32(acc[i][j]) - 128u * ws);
    }
}

/* Weight bytes the few-row loop prefetches ahead, one line per 64 bytes (the 4-bit int8 kernel's
 * distance; rows follow each other in memory, so it runs on into the next rows). */
#define FEW_PF 6144
#define FEW_G 4      /* activation rows met by a weight row at a time (4 x 4 accumulators)          */
#define FEW_MAX 8    /* up to this many activation rows the few-row loop runs (at 12-16 their bytes
                      * outgrow L1: 250 / 186 against the tiles 250-270 GFLOP/s); beyond, the tiles */

/* Weight row o against m <= FEW_G activation rows (m, asym compile-time constants): each 64-byte
 * step loaded and xor'd once and met by every activation row, four accumulators per activation
 * row; pf: issue the prefetches (the first group over the row). C[i * ldc] = Σ_k a[i, k]·code[o, k]. */
INLINE void dot_row_group(const msbnb__i8w *w, int64_t o, const int8_t *a, int64_t lda, const int32_t *asum,
                          int32_t *C, int64_t ldc, const int m, const int asym, const int pf) {
    const int64_t K = w->cols, kv = K & ~(int64_t)255, k64 = K & ~(int64_t)63;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const uint8_t *wr = w->codes + o * K;
    __m512i acc[FEW_G][4];
    for (int i = 0; i < m; i++)
        for (int u = 0; u < 4; u++) acc[i][u] = _mm512_setzero_si512();
    int64_t k = 0;
    for (; k < kv; k += 256)
        for (int u = 0; u < 4; u++) {
            /* the address as an integer: past the tensor's end is fine for a prefetch */
            if (pf) _mm_prefetch((const char *)((uintptr_t)wr + (uintptr_t)(k + 64 * u + FEW_PF)), _MM_HINT_T0);
            __m512i wv = _mm512_loadu_si512((const void *)(wr + k + 64 * u));
            if (!asym) wv = _mm512_xor_si512(wv, flip); /* w + 128 as unsigned */
            for (int i = 0; i < m; i++)
                acc[i][u] = _mm512_dpbusd_epi32(acc[i][u], wv, _mm512_loadu_si512((const void *)(a + i * lda + k + 64 * u)));
        }
    for (; k < K; k += 64) { /* zeros past K on both sides: the xor'd zero weight meets a zero */
        const __mmask64 mk = k < k64 ? ~(__mmask64)0 : mask64(K - k);
        __m512i wv = _mm512_maskz_loadu_epi8(mk, wr + k);
        if (!asym) wv = _mm512_xor_si512(wv, flip);
        for (int i = 0; i < m; i++)
            acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], wv, _mm512_maskz_loadu_epi8(mk, a + i * lda + k));
    }
    for (int i = 0; i < m; i++) {
        const __m512i t = _mm512_add_epi32(_mm512_add_epi32(acc[i][0], acc[i][1]), _mm512_add_epi32(acc[i][2], acc[i][3]));
        C[i * ldc] = (int32_t)(hsum_u32(t) - (asym ? 0u : 128u * (uint32_t)asum[i]));
    }
}

/* m <= FEW_MAX activation rows: weight rows o0 .. o1-1 one after the other (a single sequential
 * stream per thread; the tiles interleave four rows, four streams the prefetchers follow badly),
 * each meeting the activation rows FEW_G at a time while it stays in L1. */
INLINE void dot_rows_few(const msbnb__i8w *w, int64_t o0, int64_t o1, const int8_t *a, int64_t lda,
                         const int32_t *asum, int64_t m, int32_t *C, int64_t ldc, const int asym) {
    for (int64_t o = o0; o < o1; o++)
        for (int64_t i0 = 0; i0 < m; i0 += FEW_G) {
            const int8_t *ai = a + i0 * lda;
            int32_t *c = C + i0 * ldc + (o - o0);
            const int pf = i0 == 0;
            switch (m - i0 < FEW_G ? m - i0 : FEW_G) {
            case 1: dot_row_group(w, o, ai, lda, asum + i0, c, ldc, 1, asym, pf); break;
            case 2: dot_row_group(w, o, ai, lda, asum + i0, c, ldc, 2, asym, pf); break;
            case 3: dot_row_group(w, o, ai, lda, asum + i0, c, ldc, 3, asym, pf); break;
            default: dot_row_group(w, o, ai, lda, asum + i0, c, ldc, 4, asym, pf); break;
            }
        }
}

void msbnb__i8_dot_avx512vnni(const msbnb__i8w *w, int64_t o0, int64_t o1, const int8_t *a, int64_t lda,
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
                if (w->asym) tile44(w, o, ai, lda, 1, c, ldc);
                else tile44(w, o, ai, lda, 0, c, ldc);
            } else if (r == 1 && q == DO) { /* n = 1 (decode): keep it specialised too */
                if (w->asym) dot_tile(w, o, ai, lda, 1, DO, 1, c, ldc);
                else dot_tile(w, o, ai, lda, 1, DO, 0, c, ldc);
            } else {
                dot_tile(w, o, ai, lda, r, q, w->asym, c, ldc);
            }
        }
}
