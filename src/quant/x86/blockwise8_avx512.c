/*
 * blockwise8_avx512.c — BLOCKWISE8 quantize and dequantize with AVX-512, bit-identical to the
 * reference (blockwise8.c, msbnb__bw8_index).
 *
 * Map lookups: the 256-entry map lives in 16 registers; lookup256 picks within each 32-entry pair
 * with vpermt2ps and selects the pair by index bits 5..7 (3x faster than vgatherdps on Zen 5).
 * Quantize, 16 values per step, following the branch-free form of dQuantize<0>:
 *   c = #{odd i <= 253 : code[i] < s} grows by 64, 32, ..., 1. After the first four steps c is a
 *   multiple of 8 and the pivots compared so far are code[16m - 1], m = 1..15: a 16-entry table,
 *   searched like the NF4 thresholds (one vpermps + compare per step on the lanes' group g = c/8).
 *   The last three steps and the final choice between p = 2c and its neighbour read arbitrary map
 *   entries through lookup256.
 * Dequantize: y = lookup256(q) * absmax.
 * A partial last block goes through the scalar per-block code of fourbit_internal.h.
 */
#include <immintrin.h>

#include "quant/fourbit_internal.h"

/* max |x - offset| over len (multiple of 16) floats, NaN ignored as in msbnb__absmax_step. */
static inline float absmax16(const float *x, float offset, size_t len) {
    const __m512 off = _mm512_set1_ps(offset);
    __m512 m = _mm512_setzero_ps();
    for (size_t i = 0; i < len; i += 16) m = _mm512_max_ps(_mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), off)), m);
    return msbnb__absmax_finish(_mm512_reduce_max_ps(m));
}

/* code[idx] for 16 indices 0..255 from the map held in 16 registers: vpermt2ps picks within each
 * 32-entry pair by the low 5 bits, then bits 5, 6 and 7 select among the eight pairs. Exact loads,
 * so the same values as a gather. */
static inline __m512 lookup256(const __m512 *t, __m512i idx) {
    const __mmask16 b5 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(32));
    const __mmask16 b6 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(64));
    const __mmask16 b7 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(128));
    __m512 r[8];
    for (int k = 0; k < 8; k++) r[k] = _mm512_permutex2var_ps(t[2 * k], idx, t[2 * k + 1]);
    __m512 a0 = _mm512_mask_mov_ps(r[0], b5, r[1]), a1 = _mm512_mask_mov_ps(r[2], b5, r[3]);
    __m512 a2 = _mm512_mask_mov_ps(r[4], b5, r[5]), a3 = _mm512_mask_mov_ps(r[6], b5, r[7]);
    __m512 c0 = _mm512_mask_mov_ps(a0, b6, a1), c1 = _mm512_mask_mov_ps(a2, b6, a3);
    return _mm512_mask_mov_ps(c0, b7, c1);
}

typedef struct {
    __m512 g8, g4, g2, g1; /* group pivots code[16m-1] for m = g+8, g+4, g+2, g+1 */
    __m512 map[16];        /* the whole map, for lookup256                            */
} bw8_tables;

static inline bw8_tables bw8_tables_load(const float *code) {
    float t4[16], t2[16], t1[16];
    for (int g = 0; g < 16; g++) {
        t4[g] = code[16 * ((g & 8) + 4) - 1];
        t2[g] = code[16 * ((g & 12) + 2) - 1];
        t1[g] = code[16 * ((g & 14) + 1) - 1];
    }
    bw8_tables k;
    k.g8 = _mm512_set1_ps(code[127]);
    k.g4 = _mm512_loadu_ps(t4);
    k.g2 = _mm512_loadu_ps(t2);
    k.g1 = _mm512_loadu_ps(t1);
    for (int i = 0; i < 16; i++) k.map[i] = _mm512_loadu_ps(code + 16 * i);
    return k;
}

static inline __m512i bw8_codes(__m512 s, const bw8_tables *k) {
    s = _mm512_mask_mov_ps(s, _mm512_cmp_ps_mask(s, s, _CMP_UNORD_Q), _mm512_setzero_ps()); /* NaN -> 0 */
    /* steps 64..8 on the group g = c / 8 */
    __m512i g = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(s, k->g8, _CMP_GT_OQ), _mm512_set1_epi32(8));
    __mmask16 m = _mm512_cmp_ps_mask(s, _mm512_permutexvar_ps(g, k->g4), _CMP_GT_OQ);
    g = _mm512_mask_add_epi32(g, m, g, _mm512_set1_epi32(4));
    m = _mm512_cmp_ps_mask(s, _mm512_permutexvar_ps(g, k->g2), _CMP_GT_OQ);
    g = _mm512_mask_add_epi32(g, m, g, _mm512_set1_epi32(2));
    m = _mm512_cmp_ps_mask(s, _mm512_permutexvar_ps(g, k->g1), _CMP_GT_OQ);
    g = _mm512_mask_add_epi32(g, m, g, _mm512_set1_epi32(1));
    __m512i c = _mm512_slli_epi32(g, 3);
    /* steps 4, 2, 1: pivot 2(c+step)-1 */
    for (int step = 4; step > 0; step >>= 1) {
        __m512i piv = _mm512_sub_epi32(_mm512_slli_epi32(_mm512_add_epi32(c, _mm512_set1_epi32(step)), 1),
                                       _mm512_set1_epi32(1));
        m = _mm512_cmp_ps_mask(s, lookup256(k->map, piv), _CMP_GT_OQ);
        c = _mm512_mask_add_epi32(c, m, c, _mm512_set1_epi32(step));
    }
    /* p = 2c; neighbour on s's side: p+1 if s > code[p], else p-1 (0 at the bottom) */
    const __m512i p = _mm512_slli_epi32(c, 1);
    const __m512 v = lookup256(k->map, p);
    const __mmask16 up = _mm512_cmp_ps_mask(s, v, _CMP_GT_OQ);
    __m512i nb = _mm512_mask_add_epi32(p, up, p, _mm512_set1_epi32(2));
    nb = _mm512_mask_sub_epi32(nb, _mm512_test_epi32_mask(nb, nb), nb, _mm512_set1_epi32(1));
    const __m512 mid = _mm512_mul_ps(_mm512_add_ps(lookup256(k->map, nb), v), _mm512_set1_ps(0.5f));
    const __mmask16 take = (__mmask16)((up & _mm512_cmp_ps_mask(s, mid, _CMP_GT_OQ)) |
                                       ((__mmask16)~up & _mm512_cmp_ps_mask(s, mid, _CMP_LT_OQ)));
    return _mm512_mask_mov_epi32(p, take, nb);
}

void msbnb__bw8_quantize_avx512(const float *code256, const float *x, float offset, size_t n, size_t bs,
                                uint8_t *q, float *absmax) {
    const bw8_tables k = bw8_tables_load(code256);
    const __m512 off = _mm512_set1_ps(offset);
    size_t b0 = 0, blk = 0;
    for (; b0 + bs <= n; b0 += bs, blk++) {
        const float m = absmax16(x + b0, offset, bs);
        absmax[blk] = m;
        const __m512 r = _mm512_set1_ps(msbnb__block_recip(m));
        for (size_t i = b0; i < b0 + bs; i += 16) { /* bs is a multiple of 64 */
            __m512 s = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), off), r);
            _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtepi32_epi8(bw8_codes(s, &k)));
        }
    }
    if (b0 < n) absmax[blk] = msbnb__bw8_quantize_block(code256, x + b0, offset, n - b0, q + b0);
}

void msbnb__bw8_dequantize_avx512(const float *code256, const uint8_t *q, const float *absmax, size_t n,
                                  size_t bs, float *y) {
    __m512 t[16];
    for (int k = 0; k < 16; k++) t[k] = _mm512_loadu_ps(code256 + 16 * k);
    size_t b0 = 0, blk = 0;
    for (; b0 + bs <= n; b0 += bs, blk++) {
        const __m512 m = _mm512_set1_ps(absmax[blk]);
        for (size_t i = b0; i < b0 + bs; i += 16) { /* bs is a multiple of 64 */
            __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + i)));
            _mm512_storeu_ps(y + i, _mm512_mul_ps(lookup256(t, idx), m));
        }
    }
    if (b0 < n) msbnb__bw8_dequantize_block(code256, q + b0, absmax[blk], n - b0, y + b0);
}
