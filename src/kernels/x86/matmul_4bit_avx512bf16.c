/*
 * matmul_4bit_avx512bf16.c — FAST precision of the fused 4-bit products with AVX512-BF16.
 *
 * Activations and the (exactly) dequantized weights are rounded once to bf16 (round to nearest
 * even, 8 significant bits); vdpbf16ps multiplies pairs of bf16 and accumulates in float32. The
 * tile structure and the lane reduction are the EXACT kernel's (matmul_4bit_avx512.c), so
 * results again do not depend on the thread count. Measured error: docs/kernels.md.
 */
#include "kernels/x86/matmul_4bit_avx512.h"

/* dst [count] = bf16(src [count]), 16 at a time, the tail masked. */
static void to_bf16_avx512bf16(const float *src, uint16_t *dst, int64_t count) {
    for (int64_t i = 0; i < count; i += 16) {
        int64_t left = count - i;
        __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i));
        _mm256_mask_storeu_epi16(dst + i, m, (__m256i)h);
    }
}

/* acc[i][j] += pairwise bf16 products of X[i, k..k+31] and Wt[j, k..k+31] (kc multiple of 32,
 * rows zero-padded); then the same reduction and store as the EXACT kernel. */
MM4_INLINE void fwd_tile_bf16(const uint16_t *X, int64_t ldx, const uint16_t *Wt, int64_t ldw, int64_t kc,
                              float *Y, int64_t ldy, int first, const int mr, const int nr) {
    __m512 acc[MM4_MR][MM4_NR];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) acc[i][j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k += 32) {
        __m512bh wv[MM4_NR];
        for (int j = 0; j < nr; j++) wv[j] = (__m512bh)_mm512_loadu_si512(Wt + j * ldw + k);
        for (int i = 0; i < mr; i++) {
            __m512bh xv = (__m512bh)_mm512_loadu_si512(X + i * ldx + k);
            for (int j = 0; j < nr; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xv, wv[j]);
        }
    }
    const __m512 z = _mm512_setzero_ps();
    for (int i = 0; i < mr; i++) {
        __m128 s = mm4_hsum4(acc[i][0], nr > 1 ? acc[i][1] : z, nr > 2 ? acc[i][2] : z, nr > 3 ? acc[i][3] : z);
        mm4_store_row(Y + i * ldy, s, nr, first);
    }
}

MM4_FWD_DRIVER(block_bf16, uint16_t, fwd_tile_bf16)

const msbnb__mm4_kernels msbnb__mm4_avx512bf16 = {
    .small_n = NULL,
    .decode = NULL,
    .block = NULL,
    .block_t = NULL,
    .to_bf16 = to_bf16_avx512bf16,
    .block_bf16 = block_bf16,
};
