/*
 * fourbit_avx512.c — NF4/FP4 quantize and dequantize with AVX-512 (F, BW, DQ, VL), bit-identical
 * to msbnb__q4_quantize_ref / msbnb__q4_dequantize_ref (fourbit.c).
 *
 * Quantize, 16 floats per step:
 *   s = x * recip                       (the same float32 product as the reference)
 *   NF4: a 4-step binary search over the 15 sorted thresholds: each step fetches the threshold
 *        for every lane's current rank with one vpermps and adds 8/4/2/1 where s > threshold.
 *        The rank is the number of thresholds strictly below s, i.e. the NF4 code. NaN lanes are
 *        set to 0 first (policy: NaN -> code of 0.0).
 *   FP4: the same search on |s| over the 7 magnitude thresholds, the rank mapped to the 3-bit
 *        pattern with vpermd, bit 3 set where s < 0.
 *   Packing: ranks are dwords; in each qword (lanes 2i, 2i+1) (q << 4) | (q >> 32) leaves
 *   code[2i] << 4 | code[2i+1] in the low byte, and vpmovqb gathers the 8 low bytes.
 * Dequantize, 16 floats per step: the 16-entry table is pre-multiplied by the block's absmax
 * (code[c] * absmax is the reference's product, so this changes no bit); 8 packed bytes are
 * duplicated (b0 b0 b1 b1 ...), widened to dwords, the even lanes shifted right by 4 (vpermps
 * reads only the low 4 index bits, so the odd lanes need no mask) and looked up with vpermps.
 * A partial last block goes through the scalar per-block code of fourbit_internal.h.
 */
#include <immintrin.h>
#include <string.h>

#include "quant/fourbit_internal.h"

/* ---------------------------------------------------------------- helpers */

/* max |x| over len (multiple of 16) floats; NaN lanes lose (vmaxps returns its second operand
 * when the first is NaN), so the result equals the scalar msbnb__absmax_step loop. */
static inline float absmax16(const float *x, size_t len) {
    __m512 m0 = _mm512_setzero_ps(), m1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        m0 = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), m0);
        m1 = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i + 16)), m1);
    }
    if (i < len) m0 = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), m0);
    return msbnb__absmax_finish(_mm512_reduce_max_ps(_mm512_max_ps(m0, m1)));
}

/* Threshold tables indexed by the rank reached so far (lanes not reachable are don't-care). */
typedef struct {
    __m512 t7, step4, step2, step1; /* NF4: t[7]; t[r+3] at r in {0,8}; t[r+1] at r%4==0; t[r] */
} nf4_tables;

static inline nf4_tables nf4_tables_load(void) {
    const float *t = msbnb__nf4_thresholds;
    nf4_tables k;
    float s4[16], s2[16];
    for (int r = 0; r < 16; r++) {
        s4[r] = t[(r & 8) + 3];
        s2[r] = t[(r & 12) + 1];
    }
    k.t7 = _mm512_set1_ps(t[7]);
    k.step4 = _mm512_loadu_ps(s4);
    k.step2 = _mm512_loadu_ps(s2);
    k.step1 = _mm512_loadu_ps(t);
    return k;
}

/* NF4 codes of 16 scaled values, as dwords. */
static inline __m512i nf4_codes(__m512 s, const nf4_tables *k) {
    s = _mm512_mask_mov_ps(s, _mm512_cmp_ps_mask(s, s, _CMP_UNORD_Q), _mm512_setzero_ps());
    __m512i r = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(s, k->t7, _CMP_GT_OQ), _mm512_set1_epi32(8));
    __mmask16 m = _mm512_cmp_ps_mask(s, _mm512_permutexvar_ps(r, k->step4), _CMP_GT_OQ);
    r = _mm512_mask_add_epi32(r, m, r, _mm512_set1_epi32(4));
    m = _mm512_cmp_ps_mask(s, _mm512_permutexvar_ps(r, k->step2), _CMP_GT_OQ);
    r = _mm512_mask_add_epi32(r, m, r, _mm512_set1_epi32(2));
    m = _mm512_cmp_ps_mask(s, _mm512_permutexvar_ps(r, k->step1), _CMP_GT_OQ);
    return _mm512_mask_add_epi32(r, m, r, _mm512_set1_epi32(1));
}

typedef struct {
    __m512 t3, step2, step1; /* FP4 magnitudes: t[3]; t[r+1] at r in {0,4}; t[r] */
    __m512i rank_to_code;
} fp4_tables;

static inline fp4_tables fp4_tables_load(void) {
    const float *t = msbnb__fp4_thresholds;
    fp4_tables k;
    float s2[16], s1[16];
    int32_t map[16];
    for (int r = 0; r < 16; r++) {
        s2[r] = t[(r & 4) + 1];
        s1[r] = t[r & 7];
        map[r] = msbnb__fp4_rank_to_code[r & 7];
    }
    k.t3 = _mm512_set1_ps(t[3]);
    k.step2 = _mm512_loadu_ps(s2);
    k.step1 = _mm512_loadu_ps(s1);
    k.rank_to_code = _mm512_loadu_si512(map);
    return k;
}

/* FP4 codes of 16 scaled values. NaN: not < 0 and |NaN| above no threshold -> code 0, which is
 * what the reference gets after mapping NaN to 0. */
static inline __m512i fp4_codes(__m512 s, const fp4_tables *k) {
    __mmask16 neg = _mm512_cmp_ps_mask(s, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 a = _mm512_abs_ps(s);
    __m512i r = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(a, k->t3, _CMP_GT_OQ), _mm512_set1_epi32(4));
    __mmask16 m = _mm512_cmp_ps_mask(a, _mm512_permutexvar_ps(r, k->step2), _CMP_GT_OQ);
    r = _mm512_mask_add_epi32(r, m, r, _mm512_set1_epi32(2));
    m = _mm512_cmp_ps_mask(a, _mm512_permutexvar_ps(r, k->step1), _CMP_GT_OQ);
    r = _mm512_mask_add_epi32(r, m, r, _mm512_set1_epi32(1));
    __m512i c = _mm512_permutexvar_epi32(r, k->rank_to_code);
    return _mm512_mask_or_epi32(c, neg, c, _mm512_set1_epi32(8));
}

/* 16 dword codes -> 8 packed bytes (element 2i in the high nibble). */
static inline __m128i pack16(__m512i c) {
    __m512i t = _mm512_or_si512(_mm512_slli_epi64(c, 4), _mm512_srli_epi64(c, 32));
    return _mm512_cvtepi64_epi8(t);
}

/* ---------------------------------------------------------------- quantize */

static void quantize_nf4(const float *x, size_t n, size_t bs, uint8_t *packed, float *absmax) {
    const nf4_tables k = nf4_tables_load();
    size_t b0 = 0, blk = 0;
    for (; b0 + bs <= n; b0 += bs, blk++) {
        const float *xb = x + b0;
        uint8_t *pb = packed + b0 / 2;
        const float m = absmax16(xb, bs);
        absmax[blk] = m;
        const __m512 r = _mm512_set1_ps(msbnb__block_recip(m));
        for (size_t i = 0; i < bs; i += 32) { /* bs is a multiple of 32 */
            __m128i lo = pack16(nf4_codes(_mm512_mul_ps(_mm512_loadu_ps(xb + i), r), &k));
            __m128i hi = pack16(nf4_codes(_mm512_mul_ps(_mm512_loadu_ps(xb + i + 16), r), &k));
            _mm_storeu_si128((__m128i *)(pb + i / 2), _mm_unpacklo_epi64(lo, hi));
        }
    }
    if (b0 < n) absmax[blk] = msbnb__q4_quantize_block(0, x + b0, n - b0, packed + b0 / 2);
}

static void quantize_fp4(const float *x, size_t n, size_t bs, uint8_t *packed, float *absmax) {
    const fp4_tables k = fp4_tables_load();
    size_t b0 = 0, blk = 0;
    for (; b0 + bs <= n; b0 += bs, blk++) {
        const float *xb = x + b0;
        uint8_t *pb = packed + b0 / 2;
        const float m = absmax16(xb, bs);
        absmax[blk] = m;
        const __m512 r = _mm512_set1_ps(msbnb__block_recip(m));
        for (size_t i = 0; i < bs; i += 32) {
            __m128i lo = pack16(fp4_codes(_mm512_mul_ps(_mm512_loadu_ps(xb + i), r), &k));
            __m128i hi = pack16(fp4_codes(_mm512_mul_ps(_mm512_loadu_ps(xb + i + 16), r), &k));
            _mm_storeu_si128((__m128i *)(pb + i / 2), _mm_unpacklo_epi64(lo, hi));
        }
    }
    if (b0 < n) absmax[blk] = msbnb__q4_quantize_block(1, x + b0, n - b0, packed + b0 / 2);
}

void msbnb__q4_quantize_avx512(int is_fp4, const float *x, size_t n, size_t bs, uint8_t *packed, float *absmax) {
    if (is_fp4)
        quantize_fp4(x, n, bs, packed, absmax);
    else
        quantize_nf4(x, n, bs, packed, absmax);
}

/* ---------------------------------------------------------------- dequantize */

/* 8 packed bytes -> 16 dword indices whose low 4 bits are the codes in element order. */
static inline __m512i unpack16(const uint8_t *p) {
    __m128i b = _mm_loadl_epi64((const __m128i *)p);
    __m512i d = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(b, b));
    return _mm512_srlv_epi32(d, _mm512_set_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4));
}

void msbnb__q4_dequantize_avx512(const float *code16, const uint8_t *packed, const float *absmax, size_t n,
                                 size_t bs, float *y, int nt) {
    const __m512 code = _mm512_loadu_ps(code16);
    size_t b0 = 0, blk = 0;
    for (; b0 + bs <= n; b0 += bs, blk++) {
        const uint8_t *pb = packed + b0 / 2;
        float *yb = y + b0;
        const __m512 table = _mm512_mul_ps(code, _mm512_set1_ps(absmax[blk]));
        if (nt) { /* yb is 64-byte aligned: y is, and bs * 4 is a multiple of 128 */
            for (size_t i = 0; i < bs; i += 32) {
                _mm512_stream_ps(yb + i, _mm512_permutexvar_ps(unpack16(pb + i / 2), table));
                _mm512_stream_ps(yb + i + 16, _mm512_permutexvar_ps(unpack16(pb + i / 2 + 8), table));
            }
        } else {
            for (size_t i = 0; i < bs; i += 32) {
                _mm512_storeu_ps(yb + i, _mm512_permutexvar_ps(unpack16(pb + i / 2), table));
                _mm512_storeu_ps(yb + i + 16, _mm512_permutexvar_ps(unpack16(pb + i / 2 + 8), table));
            }
        }
    }
    if (nt) _mm_sfence(); /* order the streaming stores before the caller (or another thread) reads y */
    if (b0 < n) msbnb__q4_dequantize_block(code16, packed + b0 / 2, absmax[blk], n - b0, y + b0);
}
