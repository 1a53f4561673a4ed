/* bench_simd_avx512.c — AVX-512 loops for the machine-limit probes in bench_common.c. */
#include "bench_simd.h"

#if defined(__AVX512F__)
#include <immintrin.h>

float bench_sum_avx512(const float *x, size_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(x + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(x + i + 48));
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    for (; i < n; i++) s += x[i];
    return s;
}

double bench_fma_avx512(long iters) {
    __m512 a[12];
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int j = 0; j < 12; j++) a[j] = _mm512_set1_ps(1.0f + (float)j);
    for (long i = 0; i < iters; i++) {
        /* written out so every chain stays in its own register */
        a[0] = _mm512_fmadd_ps(a[0], m, c), a[1] = _mm512_fmadd_ps(a[1], m, c);
        a[2] = _mm512_fmadd_ps(a[2], m, c), a[3] = _mm512_fmadd_ps(a[3], m, c);
        a[4] = _mm512_fmadd_ps(a[4], m, c), a[5] = _mm512_fmadd_ps(a[5], m, c);
        a[6] = _mm512_fmadd_ps(a[6], m, c), a[7] = _mm512_fmadd_ps(a[7], m, c);
        a[8] = _mm512_fmadd_ps(a[8], m, c), a[9] = _mm512_fmadd_ps(a[9], m, c);
        a[10] = _mm512_fmadd_ps(a[10], m, c), a[11] = _mm512_fmadd_ps(a[11], m, c);
    }
    __m512 s = a[0];
    for (int j = 1; j < 12; j++) s = _mm512_add_ps(s, a[j]);
    return (double)_mm512_reduce_add_ps(s);
}
#else
/* Non-x86 builds never call these (the AVX-512 check fails); keep the symbols defined. */
float bench_sum_avx512(const float *x, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s;
}
double bench_fma_avx512(long iters) { return (double)iters; }
#endif
