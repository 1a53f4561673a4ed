/*
 * dq_scales_avx2.c — decoding double-quantized block statistics on AVX2 for the streaming 4-bit
 * kernels of that level (the AVX-512 version, with its reasons, is dq_scales_avx512.c):
 *     scale[i] = nested_code[stats_q[i]] * nested_absmax[i >> nested_shift], then + nested_offset
 * (two fp32 roundings, no FMA: msbnb__w4_stat's value bit for bit).
 * Eight at a time: the codes zero-extended to dwords index the 256-entry table with one gather.
 * A scalar decoding costs ~6 operations per statistic, as much as the n = 1 int8 product spends on
 * the statistic's 64 weights (FAST NF4+DQ at this level ran at 0.62 of the read bandwidth, NF4 at
 * 1.0; docs/kernels.md).
 */
#include <immintrin.h>

#include "kernels/matmul_4bit.h"

/* (declared in matmul_4bit.h) */
void msbnb__mm4_dq_scales_avx2(const msbnb__w4 *w, int64_t i0, int64_t n, float *out) {
    int64_t j = 0;
    if (w->nested_shift >= 3) { /* a nested block holds whole 8-aligned runs: one absmax per run */
        for (; j < n && ((i0 + j) & 7); j++) out[j] = msbnb__w4_stat(w, i0 + j);
        const __m256 off = _mm256_set1_ps(w->nested_offset);
        for (; j + 8 <= n; j += 8) {
            const int64_t i = i0 + j;
            const __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(w->stats_q + i)));
            const __m256 v = _mm256_i32gather_ps(w->nested_code, q, 4);
            const __m256 sc = _mm256_mul_ps(v, _mm256_set1_ps(w->nested_absmax[i >> w->nested_shift]));
            _mm256_storeu_ps(out + j, _mm256_add_ps(sc, off));
        }
    }
    for (; j < n; j++) out[j] = msbnb__w4_stat(w, i0 + j);
}
