/*
 * int_avx512.c — AVX-512 (F/BW/DQ/VL) variants of the INT8 / INT4 row kernels.
 * Bit-identical to the scalar references in int8.c / int4.c (see int_internal.h for the element
 * rules): the same float32 multiply, NaN masked to 0 before the min/max clamp, rounding by
 * cvtps2dq under the current MXCSR mode exactly as rintf. Tails use masked loads/stores, or the
 * scalar reference for INT4 (which is the same function by definition).
 */
#include "quant/int_internal.h"

#include <float.h>
#include <immintrin.h>
#include <stdint.h>

static inline __mmask16 tail_mask(int64_t n) { return (__mmask16)((1u << n) - 1u); }

/* ---------------------------------------------------------------- statistics */

float msbnb__absmax_avx512(const float *x, int64_t n) {
    const __m512 big = _mm512_set1_ps(FLT_MAX);
    __m512 m = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 a = _mm512_abs_ps(_mm512_loadu_ps(x + i));
        __mmask16 fin = _mm512_cmp_ps_mask(a, big, _CMP_LE_OQ); /* false for NaN and Inf */
        m = _mm512_mask_max_ps(m, fin, m, a);
    }
    if (i < n) {
        __mmask16 t = tail_mask(n - i);
        __m512 a = _mm512_abs_ps(_mm512_maskz_loadu_ps(t, x + i));
        __mmask16 fin = _mm512_mask_cmp_ps_mask(t, a, big, _CMP_LE_OQ);
        m = _mm512_mask_max_ps(m, fin, m, a);
    }
    return _mm512_reduce_max_ps(m);
}

void msbnb__minmax_avx512(const float *x, int64_t n, float *lo, float *hi) {
    const __m512 big = _mm512_set1_ps(FLT_MAX);
    __m512 l = _mm512_set1_ps(*lo), h = _mm512_set1_ps(*hi);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __mmask16 fin = _mm512_cmp_ps_mask(_mm512_abs_ps(v), big, _CMP_LE_OQ);
        l = _mm512_mask_min_ps(l, fin, l, v);
        h = _mm512_mask_max_ps(h, fin, h, v);
    }
    if (i < n) {
        __mmask16 t = tail_mask(n - i);
        __m512 v = _mm512_maskz_loadu_ps(t, x + i);
        __mmask16 fin = _mm512_mask_cmp_ps_mask(t, _mm512_abs_ps(v), big, _CMP_LE_OQ);
        l = _mm512_mask_min_ps(l, fin, l, v);
        h = _mm512_mask_max_ps(h, fin, h, v);
    }
    *lo = _mm512_reduce_min_ps(l);
    *hi = _mm512_reduce_max_ps(h);
}

/* Store 16 floats: streaming when asked and the address is 64-byte aligned (rows of a large
 * aligned output usually are), plain otherwise. */
static inline void store16(float *y, __m512 v, int nt) {
    if (nt && ((uintptr_t)y & 63) == 0)
        _mm512_stream_ps(y, v);
    else
        _mm512_storeu_ps(y, v);
}

/* ---------------------------------------------------------------- INT8 */

/* v = x * f, NaN -> 0, clamp [lo, hi], round to nearest even (MXCSR) -> int32. */
static inline __m512i code_i32(__m512 x, __m512 f, __m512 lo, __m512 hi) {
    __m512 v = _mm512_mul_ps(x, f);
    v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
    v = _mm512_max_ps(_mm512_min_ps(v, hi), lo);
    return _mm512_cvtps_epi32(v);
}

void msbnb__i8_quant_avx512(const float *x, int64_t n, float f, int8_t *q) {
    const __m512 vf = _mm512_set1_ps(f), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtsepi32_epi8(code_i32(_mm512_loadu_ps(x + i), vf, lo, hi)));
    if (i < n) {
        __mmask16 t = tail_mask(n - i);
        _mm512_mask_cvtsepi32_storeu_epi8(q + i, t, code_i32(_mm512_maskz_loadu_ps(t, x + i), vf, lo, hi));
    }
}

void msbnb__i8_dequant_avx512(const int8_t *q, int64_t n, float absmax, float *y, int nt) {
    const __m512 a = _mm512_set1_ps(absmax), r = _mm512_set1_ps(MSBNB__INV127);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 c = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + i))));
        store16(y + i, _mm512_mul_ps(_mm512_mul_ps(c, a), r), nt);
    }
    if (i < n) {
        __mmask16 t = tail_mask(n - i);
        __m512 c = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(t, q + i)));
        _mm512_mask_storeu_ps(y + i, t, _mm512_mul_ps(_mm512_mul_ps(c, a), r));
    }
}

static inline __m512i u8_code(__m512 x, __m512 vf, __m512 lo, __m512 hi, __m512i z) {
    __m512i c = _mm512_add_epi32(code_i32(x, vf, lo, hi), z);
    return _mm512_min_epi32(_mm512_max_epi32(c, _mm512_setzero_si512()), _mm512_set1_epi32(255));
}

void msbnb__u8_quant_avx512(const float *x, int64_t n, float inv, float zp, uint8_t *q) {
    const __m512 vf = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-256.0f), hi = _mm512_set1_ps(256.0f);
    const __m512i z = _mm512_set1_epi32((int)zp);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtusepi32_epi8(u8_code(_mm512_loadu_ps(x + i), vf, lo, hi, z)));
    if (i < n) {
        __mmask16 t = tail_mask(n - i);
        _mm512_mask_cvtusepi32_storeu_epi8(q + i, t, u8_code(_mm512_maskz_loadu_ps(t, x + i), vf, lo, hi, z));
    }
}

void msbnb__u8_dequant_avx512(const uint8_t *q, int64_t n, float scale, int32_t zp, float *y, int nt) {
    const __m512 s = _mm512_set1_ps(scale);
    const __m512i z = _mm512_set1_epi32(zp);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i c = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + i))), z);
        store16(y + i, _mm512_mul_ps(_mm512_cvtepi32_ps(c), s), nt);
    }
    if (i < n) {
        __mmask16 t = tail_mask(n - i);
        __m512i c = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(t, q + i)), z);
        _mm512_mask_storeu_ps(y + i, t, _mm512_mul_ps(_mm512_cvtepi32_ps(c), s));
    }
}

/* ---------------------------------------------------------------- INT4 */

/* 16 codes (int32 lanes, element order) -> 8 packed bytes: each 64-bit lane holds (even, odd);
 * (even & 15) << 4 | (odd & 15) lands in its low byte, which vpmovqb keeps. */
static inline __m128i pack16_nibbles(__m512i c) {
    __m512i t = _mm512_and_si512(c, _mm512_set1_epi64(0x0000000F0000000FLL));
    return _mm512_cvtepi64_epi8(_mm512_or_si512(_mm512_slli_epi64(t, 4), _mm512_srli_epi64(t, 32)));
}

/* v = x * f, clamp [-8, 7], NaN lanes -> 0 through the conversion mask. */
static inline __m512i i4_code(__m512 x, __m512 f, __m512 lo, __m512 hi) {
    __m512 v = _mm512_mul_ps(x, f);
    __mmask16 ord = _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q);
    return _mm512_maskz_cvtps_epi32(ord, _mm512_max_ps(_mm512_min_ps(v, hi), lo));
}

void msbnb__i4_quant_avx512(const float *x, int64_t n, float f, uint8_t *packed) {
    const __m512 vf = _mm512_set1_ps(f), lo = _mm512_set1_ps(-8.0f), hi = _mm512_set1_ps(7.0f);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m128i p0 = pack16_nibbles(i4_code(_mm512_loadu_ps(x + i), vf, lo, hi));
        __m128i p1 = pack16_nibbles(i4_code(_mm512_loadu_ps(x + i + 16), vf, lo, hi));
        _mm_storeu_si128((__m128i *)(packed + i / 2), _mm_unpacklo_epi64(p0, p1));
    }
    if (i < n) msbnb__i4_quant_ref(x + i, n - i, f, packed + i / 2);
}

void msbnb__i4_dequant_avx512(const uint8_t *packed, int64_t n, float scale, float *y, int nt) {
    /* nibble -> its signed value as float, by a 16-entry permute (index = nibble) */
    const __m512 table = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1);
    const __m512 s = _mm512_set1_ps(scale);
    const __m128i m = _mm_set1_epi8(0x0F);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m128i b = _mm_loadu_si128((const __m128i *)(packed + i / 2));
        __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), m), lo = _mm_and_si128(b, m);
        __m128i c0 = _mm_unpacklo_epi8(hi, lo), c1 = _mm_unpackhi_epi8(hi, lo); /* element order */
        __m512 v0 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(c0), table);
        __m512 v1 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(c1), table);
        store16(y + i, _mm512_mul_ps(v0, s), nt);
        store16(y + i + 16, _mm512_mul_ps(v1, s), nt);
    }
    if (i < n) msbnb__i4_dequant_ref(packed + i / 2, n - i, scale, y + i, 0);
}

/* ---------------------------------------------------------------- float32 -> fp16 / bf16 */

void msbnb__f32_to_half_avx512(const float *x, int64_t n, uint16_t *h, int bf16) {
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff), quiet = _mm512_set1_epi32(0x40);
    const __m512i absm = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 t = n - i >= 16 ? (__mmask16)0xFFFF : tail_mask(n - i);
        __m512 v = _mm512_maskz_loadu_ps(t, x + i);
        __m256i r;
        if (bf16) {
            /* msbnb_f32_to_bf16's integer rounding: (u + 0x7fff + lsb) >> 16; NaN -> (u >> 16) | 0x40 */
            __m512i u = _mm512_castps_si512(v);
            __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
            __m512i rr = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, bias)), 16);
            __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, absm), inf);
            rr = _mm512_mask_mov_epi32(rr, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), quiet));
            r = _mm512_cvtepi32_epi16(rr);
        } else {
            r = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
        }
        _mm256_mask_storeu_epi16(h + i, t, r);
    }
}
