/*
 * matmul_4bit_avx2_int8.c — FAST int8 loops at the AVX2 level on CPUs without AVX-VNNI (Haswell to
 * Comet Lake, Zen 1-4 without AVX-512): the same FAST semantics, activation layout and row loops
 * as the AVX-VNNI unit (x86/matmul_4bit_av_loop.h with AV_VNNI 0), the four-byte dot products
 * built from vpmaddubsw (|t̂| × x̂·sign(t̂), never saturating) and vpmaddwd — the way llama.cpp's
 * AVX2 kernels form them. The inner int32 sums equal the VNNI units'. Also home of the activation
 * quantizer both AVX2-level units use (compiled without AVX-VNNI, so it runs on every AVX2 CPU).
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/matmul_4bit.h"

/* ---------------------------------------------------------------- activations */

/* (declared in matmul_4bit.h) One activation row into the layout of matmul_4bit.h (arrays
 * pre-zeroed); 0 if some x is not finite. x̂ = rint(x · (127/a)) with round-half-even, as the
 * AVX-512 unit computes it. Plain AVX2, shared with the AVX-VNNI unit. */
int msbnb__fi8_quantize_row_avx2(const float *x, int64_t in, float inv_m, int8_t *xo, int8_t *xe, float *xcorr,
                                 float *sxm) {
    const int64_t chunks = in / 64;
    const __m256 sign = _mm256_set1_ps(-0.0f), big = _mm256_set1_ps(3.402823466e38f);
    for (int64_t c = 0; c < chunks; c++) {
        __m256 v[8], mx = _mm256_setzero_ps();
        int bad = 0;
        for (int t = 0; t < 8; t++) {
            v[t] = _mm256_loadu_ps(x + 64 * c + 8 * t);
            const __m256 av = _mm256_andnot_ps(sign, v[t]);
            mx = _mm256_max_ps(mx, av);
            bad |= _mm256_movemask_ps(_mm256_cmp_ps(av, big, _CMP_NLE_UQ)); /* NaN or Inf */
        }
        if (bad) return 0;
        float lanes[8], amax = 0.0f;
        _mm256_storeu_ps(lanes, mx);
        for (int l = 0; l < 8; l++) amax = lanes[l] > amax ? lanes[l] : amax;
        const __m256 inv = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
        sxm[c] = amax / 127.0f * inv_m;
        int32_t q[64], sum = 0;
        for (int t = 0; t < 8; t++) {
            const __m256 r = _mm256_round_ps(_mm256_mul_ps(v[t], inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm256_storeu_si256((__m256i *)(q + 8 * t), _mm256_cvttps_epi32(r));
        }
        for (int b = 0; b < 32; b++) { /* |q| <= 127: the bytes are exact */
            xe[32 * c + b] = (int8_t)q[2 * b];
            xo[32 * c + b] = (int8_t)q[2 * b + 1];
            sum += q[2 * b] + q[2 * b + 1];
        }
        xcorr[c] = (float)(-128 * sum);
    }
    return 1;
}

#define AV_VNNI 0
#include "kernels/x86/matmul_4bit_av_loop.h"

static void rows_avx2(const msbnb__w4 *w, const msbnb__fi8_act *a, int64_t n, const uint8_t tb[16], int64_t rb,
                      int64_t re, const int64_t *kblk, int bs_shift, const float *bias, float *Y) {
    /* tb[q] = t̂ + 128: flipping the top bit gives t̂ as a signed byte */
    const __m256i T = _mm256_xor_si256(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)tb)),
                                       _mm256_set1_epi8((char)0x80));
    av_range(w, a, T, n, rb, re, kblk, bs_shift, bias, Y);
}

const msbnb__fi8_kernels msbnb__fi8_avx2 = {msbnb__fi8_quantize_row_avx2, rows_avx2, MSBNB__FI8_MAX_N};
