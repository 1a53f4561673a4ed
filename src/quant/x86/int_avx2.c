/*
 * int_avx2.c — AVX2 variants of the INT8 / INT4 row kernels, bit-identical to the scalar
 * references in int8.c / int4.c (element rules in int_internal.h): same float32 multiply, NaN
 * masked to 0 before the min/max clamp, cvtps2dq rounding under the current MXCSR mode exactly as
 * rintf. Tails run the scalar reference, which is the definition of the result. The `nt`
 * (streaming store) hint of the dequant kernels is ignored here.
 */
#include "quant/int_internal.h"

#include <float.h>
#include <immintrin.h>

static inline float hmax256(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
static inline float hmin256(__m256 v) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

/* ---------------------------------------------------------------- statistics */

float msbnb__absmax_avx2(const float *x, int64_t n) {
    const __m256 sign = _mm256_set1_ps(-0.0f), big = _mm256_set1_ps(FLT_MAX);
    __m256 m = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i));
        a = _mm256_and_ps(a, _mm256_cmp_ps(a, big, _CMP_LE_OQ)); /* NaN/Inf -> 0 */
        m = _mm256_max_ps(m, a);
    }
    float r = hmax256(m), t = msbnb__absmax_ref(x + i, n - i);
    return t > r ? t : r;
}

void msbnb__minmax_avx2(const float *x, int64_t n, float *lo, float *hi) {
    const __m256 sign = _mm256_set1_ps(-0.0f), big = _mm256_set1_ps(FLT_MAX);
    __m256 l = _mm256_set1_ps(*lo), h = _mm256_set1_ps(*hi);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 fin = _mm256_cmp_ps(_mm256_andnot_ps(sign, v), big, _CMP_LE_OQ);
        l = _mm256_min_ps(l, _mm256_blendv_ps(l, v, fin));
        h = _mm256_max_ps(h, _mm256_blendv_ps(h, v, fin));
    }
    float rl = hmin256(l), rh = hmax256(h);
    msbnb__minmax_ref(x + i, n - i, &rl, &rh);
    *lo = rl;
    *hi = rh;
}

/* ---------------------------------------------------------------- INT8 */

static inline __m256i code_i32(__m256 x, __m256 f, __m256 lo, __m256 hi) {
    __m256 v = _mm256_mul_ps(x, f);
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q)); /* NaN -> +0 */
    v = _mm256_max_ps(_mm256_min_ps(v, hi), lo);
    return _mm256_cvtps_epi32(v);
}

/* 32 int32 (four vectors, element order) -> 32 int8 with signed saturation, element order. */
static inline __m256i pack32_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    __m256i abcd = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

void msbnb__i8_quant_avx2(const float *x, int64_t n, float f, int8_t *q) {
    const __m256 vf = _mm256_set1_ps(f), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i r = pack32_i8(code_i32(_mm256_loadu_ps(x + i), vf, lo, hi),
                              code_i32(_mm256_loadu_ps(x + i + 8), vf, lo, hi),
                              code_i32(_mm256_loadu_ps(x + i + 16), vf, lo, hi),
                              code_i32(_mm256_loadu_ps(x + i + 24), vf, lo, hi));
        _mm256_storeu_si256((__m256i *)(q + i), r);
    }
    if (i < n) msbnb__i8_quant_ref(x + i, n - i, f, q + i);
}

void msbnb__i8_dequant_avx2(const int8_t *q, int64_t n, float absmax, float *y, int nt) {
    const __m256 a = _mm256_set1_ps(absmax), r = _mm256_set1_ps(MSBNB__INV127);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 c = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + i))));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(c, a), r));
    }
    if (i < n) msbnb__i8_dequant_ref(q + i, n - i, absmax, y + i, nt);
}

void msbnb__u8_quant_avx2(const float *x, int64_t n, float inv, float zp, uint8_t *q) {
    const __m256 vf = _mm256_set1_ps(inv), lo = _mm256_set1_ps(-256.0f), hi = _mm256_set1_ps(256.0f);
    const __m256i z = _mm256_set1_epi32((int)zp), zero = _mm256_setzero_si256(), top = _mm256_set1_epi32(255);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i c[4];
        for (int j = 0; j < 4; j++) {
            __m256i t = _mm256_add_epi32(code_i32(_mm256_loadu_ps(x + i + 8 * j), vf, lo, hi), z);
            c[j] = _mm256_min_epi32(_mm256_max_epi32(t, zero), top);
        }
        __m256i ab = _mm256_packs_epi32(c[0], c[1]), cd = _mm256_packs_epi32(c[2], c[3]);
        __m256i r = _mm256_packus_epi16(ab, cd); /* values already in 0..255 */
        r = _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + i), r);
    }
    if (i < n) msbnb__u8_quant_ref(x + i, n - i, inv, zp, q + i);
}

void msbnb__u8_dequant_avx2(const uint8_t *q, int64_t n, float scale, int32_t zp, float *y, int nt) {
    const __m256 s = _mm256_set1_ps(scale);
    const __m256i z = _mm256_set1_epi32(zp);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i c = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(q + i))), z);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(c), s));
    }
    if (i < n) msbnb__u8_dequant_ref(q + i, n - i, scale, zp, y + i, nt);
}

/* ---------------------------------------------------------------- INT4 */

void msbnb__i4_quant_avx2(const float *x, int64_t n, float f, uint8_t *packed) {
    const __m256 vf = _mm256_set1_ps(f), lo = _mm256_set1_ps(-8.0f), hi = _mm256_set1_ps(7.0f);
    const __m256i m = _mm256_set1_epi16(0x000F);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i c = pack32_i8(code_i32(_mm256_loadu_ps(x + i), vf, lo, hi),
                              code_i32(_mm256_loadu_ps(x + i + 8), vf, lo, hi),
                              code_i32(_mm256_loadu_ps(x + i + 16), vf, lo, hi),
                              code_i32(_mm256_loadu_ps(x + i + 24), vf, lo, hi));
        /* each 16-bit lane = (even element | odd element << 8) -> (even & 15) << 4 | (odd & 15) */
        __m256i r = _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(c, m), 4),
                                    _mm256_and_si256(_mm256_srli_epi16(c, 8), m));
        __m128i p = _mm_packus_epi16(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        _mm_storeu_si128((__m128i *)(packed + i / 2), p);
    }
    if (i < n) msbnb__i4_quant_ref(x + i, n - i, f, packed + i / 2);
}

void msbnb__i4_dequant_avx2(const uint8_t *packed, int64_t n, float scale, float *y, int nt) {
    /* nibble -> signed int8 by one byte shuffle (index = nibble) */
    const __m128i table = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1);
    const __m128i m = _mm_set1_epi8(0x0F);
    const __m256 s = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m128i b = _mm_loadu_si128((const __m128i *)(packed + i / 2));
        __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), m), lo = _mm_and_si128(b, m);
        __m128i c0 = _mm_shuffle_epi8(table, _mm_unpacklo_epi8(hi, lo)); /* elements 0..15 */
        __m128i c1 = _mm_shuffle_epi8(table, _mm_unpackhi_epi8(hi, lo)); /* elements 16..31 */
        __m128i parts[4] = {c0, _mm_srli_si128(c0, 8), c1, _mm_srli_si128(c1, 8)};
        for (int j = 0; j < 4; j++) {
            __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[j]));
            _mm256_storeu_ps(y + i + 8 * j, _mm256_mul_ps(v, s));
        }
    }
    if (i < n) msbnb__i4_dequant_ref(packed + i / 2, n - i, scale, y + i, nt);
}

/* ---------------------------------------------------------------- float32 -> fp16 / bf16 */

/* bf16 of 8 floats, same integer rounding as msbnb_f32_to_bf16: (u + 0x7fff + lsb) >> 16, NaN ->
 * (u >> 16) | 0x40 (quiet). Result in the low 16 bits of each 32-bit lane. */
static inline __m256i bf16_lanes(__m256 v) {
    __m256i u = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    __m256i nanv = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    __m256i isnan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    return _mm256_and_si256(_mm256_blendv_epi8(r, nanv, isnan), _mm256_set1_epi32(0xffff));
}

void msbnb__f32_to_half_avx2(const float *x, int64_t n, uint16_t *h, int bf16) {
    int64_t i = 0;
    if (bf16) {
        for (; i + 16 <= n; i += 16) {
            __m256i a = bf16_lanes(_mm256_loadu_ps(x + i)), b = bf16_lanes(_mm256_loadu_ps(x + i + 8));
            __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8); /* undo lane interleave */
            _mm256_storeu_si256((__m256i *)(h + i), p);
        }
    } else {
        /* F16C rounds to nearest even and converts NaN, overflow and subnormals as msbnb_f32_to_f16 */
        for (; i + 8 <= n; i += 8)
            _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    }
    if (i < n) msbnb__f32_to_half_ref(x + i, n - i, h + i, bf16);
}
