/*
 * fourbit_avx2.c — NF4/FP4 quantize and dequantize with AVX2, bit-identical to the reference
 * (fourbit.c). Same plan as fourbit_avx512.c with 8 lanes and no mask registers:
 *   NF4 search: step 8 compares with t[7]; step 4 picks t[3] or t[11] with a blend; steps 2 and 1
 *   fetch t[r+1] (r in {0,4,8,12}) and t[r] (r even) with vpermps on 8-entry tables indexed by
 *   r>>2 and r>>1. Compare results are all-ones lanes, so "& 4" turns them into increments.
 *   FP4 search on |s|: t[3], then t[1]/t[5] by blend, then t[r] with vpermps; vpermd maps the rank
 *   to the 3-bit pattern and the sign bit is or-ed in where s < 0.
 *   Packing 32 codes: per qword (q << 4) | (q >> 32), vpermd gathers the 4 even dwords, then
 *   packus 32->16->8 joins four vectors into 16 bytes in element order.
 * Dequantize: 4 packed bytes -> 8 indices as in the AVX-512 file; the 16-entry table (scaled by the
 * block absmax) is split in two 8-entry halves looked up with vpermps and blended on bit 3.
 */
#include <immintrin.h>
#include <string.h>

#include "quant/fourbit_internal.h"

/* ---------------------------------------------------------------- helpers */

static inline float absmax8(const float *x, size_t len) { /* len multiple of 32 */
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
    for (size_t i = 0; i < len; i += 16) {
        /* vmaxps returns the second operand when the first is NaN: NaN lanes are ignored */
        m0 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask), m0);
        m1 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i + 8), abs_mask), m1);
    }
    float v[8];
    _mm256_storeu_ps(v, _mm256_max_ps(m0, m1));
    float m = 0.0f;
    for (int i = 0; i < 8; i++) m = v[i] > m ? v[i] : m;
    return msbnb__absmax_finish(m);
}

/* All-ones lanes where a > b (ordered: NaN compares false). */
static inline __m256i gt(__m256 a, __m256 b) { return _mm256_castps_si256(_mm256_cmp_ps(a, b, _CMP_GT_OQ)); }

typedef struct {
    __m256 t7, t3, t11, by4, by2; /* by4[k] = t[4k+1] (k<4), by2[k] = t[2k] (k<8) */
} nf4_tables;

static inline nf4_tables nf4_tables_load(void) {
    const float *t = msbnb__nf4_thresholds;
    nf4_tables k;
    float s4[8], s2[8];
    for (int i = 0; i < 8; i++) {
        s4[i] = t[((i & 3) << 2) + 1];
        s2[i] = t[i << 1];
    }
    k.t7 = _mm256_set1_ps(t[7]);
    k.t3 = _mm256_set1_ps(t[3]);
    k.t11 = _mm256_set1_ps(t[11]);
    k.by4 = _mm256_loadu_ps(s4);
    k.by2 = _mm256_loadu_ps(s2);
    return k;
}

static inline __m256i nf4_codes(__m256 s, const nf4_tables *k) {
    s = _mm256_andnot_ps(_mm256_cmp_ps(s, s, _CMP_UNORD_Q), s); /* NaN -> 0 */
    __m256i m = gt(s, k->t7);
    __m256i r = _mm256_and_si256(m, _mm256_set1_epi32(8));
    __m256 t = _mm256_blendv_ps(k->t3, k->t11, _mm256_castsi256_ps(m));
    r = _mm256_add_epi32(r, _mm256_and_si256(gt(s, t), _mm256_set1_epi32(4)));
    t = _mm256_permutevar8x32_ps(k->by4, _mm256_srli_epi32(r, 2));
    r = _mm256_add_epi32(r, _mm256_and_si256(gt(s, t), _mm256_set1_epi32(2)));
    t = _mm256_permutevar8x32_ps(k->by2, _mm256_srli_epi32(r, 1));
    return _mm256_add_epi32(r, _mm256_and_si256(gt(s, t), _mm256_set1_epi32(1)));
}

typedef struct {
    __m256 t3, t1, t5, all;
    __m256i rank_to_code;
} fp4_tables;

static inline fp4_tables fp4_tables_load(void) {
    const float *t = msbnb__fp4_thresholds;
    fp4_tables k;
    int32_t map[8];
    for (int i = 0; i < 8; i++) map[i] = msbnb__fp4_rank_to_code[i];
    k.t3 = _mm256_set1_ps(t[3]);
    k.t1 = _mm256_set1_ps(t[1]);
    k.t5 = _mm256_set1_ps(t[5]);
    k.all = _mm256_loadu_ps(t);
    k.rank_to_code = _mm256_loadu_si256((const __m256i *)map);
    return k;
}

static inline __m256i fp4_codes(__m256 s, const fp4_tables *k) {
    __m256i neg = _mm256_castps_si256(_mm256_cmp_ps(s, _mm256_setzero_ps(), _CMP_LT_OQ));
    __m256 a = _mm256_and_ps(s, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
    __m256i m = gt(a, k->t3);
    __m256i r = _mm256_and_si256(m, _mm256_set1_epi32(4));
    __m256 t = _mm256_blendv_ps(k->t1, k->t5, _mm256_castsi256_ps(m));
    r = _mm256_add_epi32(r, _mm256_and_si256(gt(a, t), _mm256_set1_epi32(2)));
    t = _mm256_permutevar8x32_ps(k->all, r);
    r = _mm256_add_epi32(r, _mm256_and_si256(gt(a, t), _mm256_set1_epi32(1)));
    __m256i c = _mm256_permutevar8x32_epi32(k->rank_to_code, r);
    return _mm256_or_si256(c, _mm256_and_si256(neg, _mm256_set1_epi32(8)));
}

/* 8 dword codes -> 4 dwords holding one packed byte each (element 2i in the high nibble). */
static inline __m128i pair8(__m256i c) {
    __m256i t = _mm256_or_si256(_mm256_slli_epi64(c, 4), _mm256_srli_epi64(c, 32));
    t = _mm256_and_si256(t, _mm256_set1_epi64x(0xff));
    return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(t, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
}

/* 4 vectors of codes (32 elements) -> 16 bytes in element order. */
static inline __m128i pack32(__m256i c0, __m256i c1, __m256i c2, __m256i c3) {
    __m128i w01 = _mm_packus_epi32(pair8(c0), pair8(c1));
    __m128i w23 = _mm_packus_epi32(pair8(c2), pair8(c3));
    return _mm_packus_epi16(w01, w23);
}

/* ---------------------------------------------------------------- quantize */

void msbnb__q4_quantize_avx2(int is_fp4, const float *x, size_t n, size_t bs, uint8_t *packed, float *absmax) {
    const nf4_tables kn = nf4_tables_load();
    const fp4_tables kf = fp4_tables_load();
    size_t b0 = 0, blk = 0;
    for (; b0 + bs <= n; b0 += bs, blk++) {
        const float *xb = x + b0;
        uint8_t *pb = packed + b0 / 2;
        const float m = absmax8(xb, bs);
        absmax[blk] = m;
        const __m256 r = _mm256_set1_ps(msbnb__block_recip(m));
        for (size_t i = 0; i < bs; i += 32) { /* bs is a multiple of 32 */
            __m256 s0 = _mm256_mul_ps(_mm256_loadu_ps(xb + i), r);
            __m256 s1 = _mm256_mul_ps(_mm256_loadu_ps(xb + i + 8), r);
            __m256 s2 = _mm256_mul_ps(_mm256_loadu_ps(xb + i + 16), r);
            __m256 s3 = _mm256_mul_ps(_mm256_loadu_ps(xb + i + 24), r);
            __m128i bytes = is_fp4 ? pack32(fp4_codes(s0, &kf), fp4_codes(s1, &kf), fp4_codes(s2, &kf),
                                            fp4_codes(s3, &kf))
                                   : pack32(nf4_codes(s0, &kn), nf4_codes(s1, &kn), nf4_codes(s2, &kn),
                                            nf4_codes(s3, &kn));
            _mm_storeu_si128((__m128i *)(pb + i / 2), bytes);
        }
    }
    if (b0 < n) absmax[blk] = msbnb__q4_quantize_block(is_fp4, x + b0, n - b0, packed + b0 / 2);
}

/* ---------------------------------------------------------------- dequantize */

/* 4 packed bytes -> 8 dword codes (0..15) in element order. */
static inline __m256i unpack8(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    __m128i b = _mm_cvtsi32_si128(v);
    __m256i d = _mm256_cvtepu8_epi32(_mm_unpacklo_epi8(b, b));
    d = _mm256_srlv_epi32(d, _mm256_setr_epi32(4, 0, 4, 0, 4, 0, 4, 0));
    return _mm256_and_si256(d, _mm256_set1_epi32(15));
}

static inline __m256 lookup16(__m256i c, __m256 lo, __m256 hi) {
    __m256 sel = _mm256_castsi256_ps(_mm256_slli_epi32(c, 28)); /* bit 3 -> sign bit for blendv */
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, c), _mm256_permutevar8x32_ps(hi, c), sel);
}

void msbnb__q4_dequantize_avx2(const float *code16, const uint8_t *packed, const float *absmax, size_t n,
                               size_t bs, float *y, int nt) {
    const __m256 code_lo = _mm256_loadu_ps(code16), code_hi = _mm256_loadu_ps(code16 + 8);
    size_t b0 = 0, blk = 0;
    for (; b0 + bs <= n; b0 += bs, blk++) {
        const uint8_t *pb = packed + b0 / 2;
        float *yb = y + b0;
        const __m256 m = _mm256_set1_ps(absmax[blk]);
        const __m256 lo = _mm256_mul_ps(code_lo, m), hi = _mm256_mul_ps(code_hi, m);
        if (nt) { /* yb is 64-byte aligned: y is, and bs * 4 is a multiple of 128 */
            for (size_t i = 0; i < bs; i += 16) {
                _mm256_stream_ps(yb + i, lookup16(unpack8(pb + i / 2), lo, hi));
                _mm256_stream_ps(yb + i + 8, lookup16(unpack8(pb + i / 2 + 4), lo, hi));
            }
        } else {
            for (size_t i = 0; i < bs; i += 16) {
                _mm256_storeu_ps(yb + i, lookup16(unpack8(pb + i / 2), lo, hi));
                _mm256_storeu_ps(yb + i + 8, lookup16(unpack8(pb + i / 2 + 4), lo, hi));
            }
        }
    }
    if (nt) _mm_sfence(); /* order the streaming stores before the caller (or another thread) reads y */
    if (b0 < n) msbnb__q4_dequantize_block(code16, packed + b0 / 2, absmax[blk], n - b0, y + b0);
}
