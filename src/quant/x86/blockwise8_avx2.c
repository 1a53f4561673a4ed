/*
 * blockwise8_avx2.c — BLOCKWISE8 dequantization with AVX2, bit-identical to
 * msbnb__bw8_dequantize_ref: y = code[q] * absmax, 8 codes per step looked up with a gather.
 */
#include <immintrin.h>

#include "quant/fourbit_internal.h"

void msbnb__bw8_dequantize_avx2(const float *code256, const uint8_t *q, const float *absmax, size_t n, size_t bs,
                                float *y) {
    size_t b0 = 0, blk = 0;
    for (; b0 + bs <= n; b0 += bs, blk++) {
        const __m256 m = _mm256_set1_ps(absmax[blk]);
        for (size_t i = b0; i < b0 + bs; i += 8) { /* bs is a multiple of 64 */
            __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(q + i)));
            _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_i32gather_ps(code256, idx, 4), m));
        }
    }
    if (b0 < n) msbnb__bw8_dequantize_block(code256, q + b0, absmax[blk], n - b0, y + b0);
}
