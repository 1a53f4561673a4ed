/* gemv_tools.h — shared by the hand-built n = 1 profiling tools (gemv_profile.c, gemv_ab.c; not
 * part of the CMake build): the plain read used as bandwidth probe and cache eviction. */
#ifndef MSBNB_BENCH_GEMV_TOOLS_H
#define MSBNB_BENCH_GEMV_TOOLS_H

#include <immintrin.h>
#include <stddef.h>

/* Sum of buf [n] (n a multiple of 64, buf 64-byte aligned): four independent accumulators so the
 * loop is bound by the loads, not by the add latency. */
__attribute__((target("avx512f"))) static inline float gemv_read_sum(const float *buf, size_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_load_ps(buf + i));
        a1 = _mm512_add_ps(a1, _mm512_load_ps(buf + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_load_ps(buf + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_load_ps(buf + i + 48));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

#endif
