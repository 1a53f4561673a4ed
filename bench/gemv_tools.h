/* gemv_tools.h — shared by the hand-built n = 1 profiling tools (gemv_profile.c, gemv_ab.c,
 * gemv_ladder.c; not part of the CMake build): the plain read used as bandwidth probe and cache
 * eviction, thread CPU time, huge-page buffers. Needs _GNU_SOURCE (madvise) before any include. */
#ifndef MSBNB_BENCH_GEMV_TOOLS_H
#define MSBNB_BENCH_GEMV_TOOLS_H

#include <immintrin.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

/* CPU seconds of the calling thread (the tools time one thread; preemption does not count). */
static inline double gemv_thread_cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* bytes (free() them) on 2 MiB transparent huge pages where the kernel allows, as the library
 * allocates large tensors */
static inline void *gemv_alloc_huge(size_t bytes) {
    const size_t h = (size_t)2 << 20, r = (bytes + h - 1) / h * h;
    void *p = aligned_alloc(h, r);
    if (p) (void)madvise(p, r, MADV_HUGEPAGE);
    return p;
}

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
