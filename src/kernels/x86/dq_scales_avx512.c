/*
 * dq_scales_avx512.c — decoding double-quantized block statistics on AVX-512, for the streaming
 * (n <= few rows) 4-bit kernels that need a row's scales as fp32 before its codes:
 *     scale[i] = nested_code[stats_q[i]] * nested_absmax[i >> nested_shift], then + nested_offset
 * (two fp32 roundings, no FMA: exactly msbnb__w4_stat's value, so fused products equal
 * msbnb_dequantize's bit for bit).
 *
 * The cost is the 256-entry lookup. Two ways, both here:
 *   - AVX512-VBMI (byte lookups): the table is kept as four byte planes of 256 bytes
 *     (msbnb__w4.dq_planes, built by msbnb__w4_init). For 64 statistics at once, each plane is
 *     looked up with two vpermt2b (128-byte tables, index bits [6:0]) merged by bit 7, and the four
 *     plane bytes are interleaved back into 64 floats with two rounds of unpacks. The unpacks work
 *     within 128-bit lanes, so the 64 code bytes are first permuted (one vpermb) into the order
 *     that makes the result come out sequential. 22 operations for 64 scales + 8 for the scaling.
 *   - AVX-512F only: 16 at a time, 8 two-table permutes of fp32 (vpermt2ps, index bits [4:0])
 *     merged by bits [7:5]; ~26 operations for 16 scales. A gather or 16 scalar loads cost more on
 *     the cores measured.
 * Measured for 64 statistics per call (one 4096-input row): 11.7 vs 12.9 ns, a fixed cost per
 * call dominating; for 1024 per call: 3.4 vs 10.4 ns per 64 — so callers decode many rows at once
 * (x86/matmul_4bit_avx512vnni.c: 16 rows of 4096).
 */
#include "kernels/x86/matmul_4bit_avx512.h"

/* Position p = 16L + 4r + t (L: 128-bit lane, r: unpack output, t: byte) of the permuted code
 * vector takes code 16r + 4L + t: after the unpacks, output r lane L holds codes 16r+4L .. +3. */
static const uint8_t vbmi_order[64] = {
    0,  1,  2,  3,  16, 17, 18, 19, 32, 33, 34, 35, 48, 49, 50, 51, 4,  5,  6,  7,  20, 21,
    22, 23, 36, 37, 38, 39, 52, 53, 54, 55, 8,  9,  10, 11, 24, 25, 26, 27, 40, 41, 42, 43,
    56, 57, 58, 59, 12, 13, 14, 15, 28, 29, 30, 31, 44, 45, 46, 47, 60, 61, 62, 63,
};

/* Statistics i0 .. i0 + 64k - 1 (k = n / 64) into out; returns 64k. Needs nested_shift >= 4 and
 * i0 a multiple of 16 (each run of 16 has one nested absmax). */
__attribute__((target("avx512vbmi"))) static int64_t dq_scales_vbmi(const msbnb__w4 *w, int64_t i0, int64_t n,
                                                                    float *out) {
    __m512i plane[4][4]; /* [byte b][codes 64h .. 64h + 63] */
    for (int b = 0; b < 4; b++)
        for (int h = 0; h < 4; h++) plane[b][h] = _mm512_loadu_si512((const void *)(w->dq_planes[b] + 64 * h));
    const __m512i order = _mm512_loadu_si512((const void *)vbmi_order);
    const __m512 off = _mm512_set1_ps(w->nested_offset);
    int64_t j = 0;
    for (; j + 64 <= n; j += 64) {
        const __m512i q = _mm512_permutexvar_epi8(order, _mm512_loadu_si512((const void *)(w->stats_q + i0 + j)));
        const __mmask64 high = _mm512_movepi8_mask(q); /* codes 128 .. 255 */
        __m512i by[4];
        for (int b = 0; b < 4; b++)
            by[b] = _mm512_mask_blend_epi8(high, _mm512_permutex2var_epi8(plane[b][0], q, plane[b][1]),
                                           _mm512_permutex2var_epi8(plane[b][2], q, plane[b][3]));
        const __m512i lo01 = _mm512_unpacklo_epi8(by[0], by[1]), hi01 = _mm512_unpackhi_epi8(by[0], by[1]);
        const __m512i lo23 = _mm512_unpacklo_epi8(by[2], by[3]), hi23 = _mm512_unpackhi_epi8(by[2], by[3]);
        const __m512i f[4] = {_mm512_unpacklo_epi16(lo01, lo23), _mm512_unpackhi_epi16(lo01, lo23),
                              _mm512_unpacklo_epi16(hi01, hi23), _mm512_unpackhi_epi16(hi01, hi23)};
        for (int r = 0; r < 4; r++) {
            const int64_t i = i0 + j + 16 * r;
            const __m512 sc = _mm512_mul_ps(_mm512_castsi512_ps(f[r]), _mm512_set1_ps(w->nested_absmax[i >> w->nested_shift]));
            _mm512_storeu_ps(out + j + 16 * r, _mm512_add_ps(sc, off));
        }
    }
    return j;
}

static int force_no_vbmi;
void msbnb__mm4_dq_force_no_vbmi(int on) { force_no_vbmi = on != 0; }

/* (declared in matmul_4bit_avx512.h) */
void msbnb__mm4_dq_scales_avx512(const msbnb__w4 *w, int64_t i0, int64_t n, float *out) {
    int64_t j = 0;
    if (w->nested_shift >= 4) { /* a nested block holds whole 16-aligned runs: one absmax per run */
        for (; j < n && ((i0 + j) & 15); j++) out[j] = msbnb__w4_stat(w, i0 + j);
        if (!force_no_vbmi && __builtin_cpu_supports("avx512vbmi")) j += dq_scales_vbmi(w, i0 + j, n - j, out + j);
    }
    if (w->nested_shift >= 4 && n - j >= 16) {
        __m512 code[16];
        for (int p = 0; p < 16; p++) code[p] = _mm512_loadu_ps(w->nested_code + 16 * p);
        const __m512 off = _mm512_set1_ps(w->nested_offset);
        for (; j + 16 <= n; j += 16) {
            const int64_t i = i0 + j;
            const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(w->stats_q + i)));
            const __m512i pair = _mm512_srli_epi32(q, 5);
            __m512 v = _mm512_permutex2var_ps(code[0], q, code[1]);
            for (int p = 1; p < 8; p++) {
                const __mmask16 m = _mm512_cmpeq_epi32_mask(pair, _mm512_set1_epi32(p));
                v = _mm512_mask_mov_ps(v, m, _mm512_permutex2var_ps(code[2 * p], q, code[2 * p + 1]));
            }
            const __m512 sc = _mm512_mul_ps(v, _mm512_set1_ps(w->nested_absmax[i >> w->nested_shift]));
            _mm512_storeu_ps(out + j, _mm512_add_ps(sc, off));
        }
    }
    for (; j < n; j++) out[j] = msbnb__w4_stat(w, i0 + j);
}
