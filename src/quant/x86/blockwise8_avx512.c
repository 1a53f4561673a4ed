/*
 * blockwise8_avx512.c — BLOCKWISE8 dequantization with AVX-512, bit-identical to
 * msbnb__bw8_dequantize_ref: y = code[q] * absmax, 16 codes per step looked up with a gather
 * (the 256-entry map does not fit a register shuffle), one multiply, as in the reference.
 */
#include <immintrin.h>

#include "quant/fourbit_internal.h"

void msbnb__bw8_dequantize_avx512(const float *code256, const uint8_t *q, const float *absmax, size_t n,
                                  size_t bs, float *y) {
    size_t b0 = 0, blk = 0;
    for (; b0 + bs <= n; b0 += bs, blk++) {
        const __m512 m = _mm512_set1_ps(absmax[blk]);
        for (size_t i = b0; i < b0 + bs; i += 16) { /* bs is a multiple of 64 */
            __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + i)));
            _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_i32gather_ps(idx, code256, 4), m));
        }
    }
    if (b0 < n) msbnb__bw8_dequantize_block(code256, q + b0, absmax[blk], n - b0, y + b0);
}
