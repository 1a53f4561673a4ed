/*
 * matmul_4bit_avxvnni.c — FAST int8 loops for up to MSBNB__FI8_MAX_N activation rows (token
 * generation, small batches) at the AVX2 level, on CPUs with AVX-VNNI (the VEX-encoded, 256-bit
 * vpdpbusd: Alder Lake and later Intel client cores, Zen 5). Same arithmetic and activation layout
 * as the AVX512-VNNI unit (matmul_4bit.h, "FAST int8 products"; the driver is
 * matmul_4bit_fast_int8.c); the activation bytes are identical, the fp32 sums are grouped
 * differently (8 lanes).
 *
 * The loops are x86/matmul_4bit_av_loop.h with AV_VNNI 1: two vpdpbusd per chunk against the
 * unsigned bytes t̂ + 128, the +128 offset removed per 8 chunks by one FMA of the chunk scales with
 * xcorr. The activations are quantized by the plain-AVX2 unit's msbnb__fi8_quantize_row_avx2.
 * Compiled with -mavx2 -mfma -mavxvnni only (src/kernels/fourbit.cmake); reached at the AVX2 level
 * when msbnb__cpu()->avxvnni.
 */
#define AV_VNNI 1
#include "kernels/x86/matmul_4bit_av_loop.h"

static void rows_avxvnni(const msbnb__w4 *w, const msbnb__fi8_act *a, int64_t n, const uint8_t tb[16], int64_t rb,
                         int64_t re, const int64_t *kblk, int bs_shift, const float *bias, float *Y) {
    const __m256i T = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)tb));
    av_range(w, a, T, n, rb, re, kblk, bs_shift, bias, Y);
}

const msbnb__fi8_kernels msbnb__fi8_avxvnni = {msbnb__fi8_quantize_row_avx2, rows_avxvnni, MSBNB__FI8_MAX_N};
