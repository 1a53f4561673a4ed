/*
 * blockwise8_avx2.c — BLOCKWISE8 quantize with AVX2, bit-identical to the reference
 * (blockwise8.c, msbnb__bw8_index). Same plan as blockwise8_avx512.c on 8 lanes: the first four
 * search steps run on the 15 group pivots code[16m - 1] (a blend, then vpermps on 8-entry tables,
 * as the NF4 search of fourbit_avx2.c), the last three steps and the final choice gather.
 * Dequantization has no AVX2 variant: a gather per 8 values is slower than the scalar loop
 * (measured on Zen 5), so the AVX2 level uses the reference for it.
 */
#include <immintrin.h>

#include "quant/fourbit_internal.h"

static inline float absmax8(const float *x, float offset, size_t len) { /* len multiple of 8 */
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), off = _mm256_set1_ps(offset);
    __m256 m = _mm256_setzero_ps();
    for (size_t i = 0; i < len; i += 8) /* vmaxps returns its second operand for a NaN first one */
        m = _mm256_max_ps(_mm256_and_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), off), abs_mask), m);
    float v[8];
    _mm256_storeu_ps(v, m);
    float r = 0.0f;
    for (int i = 0; i < 8; i++) r = v[i] > r ? v[i] : r;
    return msbnb__absmax_finish(r);
}

static inline __m256i gt(__m256 a, __m256 b) { return _mm256_castps_si256(_mm256_cmp_ps(a, b, _CMP_GT_OQ)); }

typedef struct {
    __m256 p127, p63, p191, by4, by2; /* by4[k] = code[64k + 31], by2[k] = code[32k + 15] */
} bw8_tables;

static inline bw8_tables bw8_tables_load(const float *code) {
    float t4[8], t2[8];
    for (int k = 0; k < 8; k++) {
        t4[k] = code[64 * (k & 3) + 31];
        t2[k] = code[32 * k + 15];
    }
    bw8_tables t;
    t.p127 = _mm256_set1_ps(code[127]);
    t.p63 = _mm256_set1_ps(code[63]);
    t.p191 = _mm256_set1_ps(code[191]);
    t.by4 = _mm256_loadu_ps(t4);
    t.by2 = _mm256_loadu_ps(t2);
    return t;
}

static inline __m256i bw8_codes(__m256 s, const float *code, const bw8_tables *k) {
    s = _mm256_andnot_ps(_mm256_cmp_ps(s, s, _CMP_UNORD_Q), s); /* NaN -> 0 */
    /* steps 64..8 on the group g = c / 8 */
    __m256i m = gt(s, k->p127);
    __m256i g = _mm256_and_si256(m, _mm256_set1_epi32(8));
    __m256 t = _mm256_blendv_ps(k->p63, k->p191, _mm256_castsi256_ps(m));
    g = _mm256_add_epi32(g, _mm256_and_si256(gt(s, t), _mm256_set1_epi32(4)));
    t = _mm256_permutevar8x32_ps(k->by4, _mm256_srli_epi32(g, 2));
    g = _mm256_add_epi32(g, _mm256_and_si256(gt(s, t), _mm256_set1_epi32(2)));
    t = _mm256_permutevar8x32_ps(k->by2, _mm256_srli_epi32(g, 1));
    g = _mm256_add_epi32(g, _mm256_and_si256(gt(s, t), _mm256_set1_epi32(1)));
    __m256i c = _mm256_slli_epi32(g, 3);
    /* steps 4, 2, 1: pivot 2(c+step)-1 */
    for (int step = 4; step > 0; step >>= 1) {
        __m256i piv = _mm256_sub_epi32(_mm256_slli_epi32(_mm256_add_epi32(c, _mm256_set1_epi32(step)), 1),
                                       _mm256_set1_epi32(1));
        c = _mm256_add_epi32(c, _mm256_and_si256(gt(s, _mm256_i32gather_ps(code, piv, 4)), _mm256_set1_epi32(step)));
    }
    /* p = 2c; neighbour on s's side: p+1 if s > code[p], else p-1 (0 at the bottom) */
    const __m256i p = _mm256_slli_epi32(c, 1);
    const __m256 v = _mm256_i32gather_ps(code, p, 4);
    const __m256i up = gt(s, v);
    __m256i nb = _mm256_add_epi32(p, _mm256_and_si256(up, _mm256_set1_epi32(2)));
    /* nb - (nb != 0) = nb - 1 + (nb == 0) */
    nb = _mm256_add_epi32(_mm256_sub_epi32(nb, _mm256_set1_epi32(1)),
                          _mm256_and_si256(_mm256_cmpeq_epi32(nb, _mm256_setzero_si256()), _mm256_set1_epi32(1)));
    const __m256 mid = _mm256_mul_ps(_mm256_add_ps(_mm256_i32gather_ps(code, nb, 4), v), _mm256_set1_ps(0.5f));
    const __m256i lt = _mm256_castps_si256(_mm256_cmp_ps(s, mid, _CMP_LT_OQ));
    const __m256i take = _mm256_or_si256(_mm256_and_si256(up, gt(s, mid)), _mm256_andnot_si256(up, lt));
    return _mm256_blendv_epi8(p, nb, take);
}

void msbnb__bw8_quantize_avx2(const float *code256, const float *x, float offset, size_t n, size_t bs, uint8_t *q,
                              float *absmax) {
    const bw8_tables k = bw8_tables_load(code256);
    const __m256 off = _mm256_set1_ps(offset);
    size_t b0 = 0, blk = 0;
    for (; b0 + bs <= n; b0 += bs, blk++) {
        const float m = absmax8(x + b0, offset, bs);
        absmax[blk] = m;
        const __m256 r = _mm256_set1_ps(msbnb__block_recip(m));
        for (size_t i = b0; i < b0 + bs; i += 8) { /* bs is a multiple of 64 */
            __m256 s = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), off), r);
            __m256i c = bw8_codes(s, code256, &k);
            __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
            _mm_storel_epi64((__m128i *)(q + i), _mm_packus_epi16(w, w));
        }
    }
    if (b0 < n) absmax[blk] = msbnb__bw8_quantize_block(code256, x + b0, offset, n - b0, q + b0);
}
