/* bench_common.c — timers and machine limits (memory read bandwidth, FMA peak), measured in the
 * same run as the figures they put in context. The vector loops live in bench_simd_avx512.c
 * (compiled with AVX-512 flags, called only when the CPU has it); the plain C loops here are the
 * fallback for other CPUs. */
#define _DEFAULT_SOURCE /* madvise */
#include "bench.h"

#include <msbnb/msbnb.h>
#include <msbnb/quant.h>
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "bench_simd.h"

double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the calling thread: the 1-thread probes use it, as the 1-thread figures they are
 * compared with use CPU time, so a preempted pass on a shared host counts as slow on neither side. */
double bench_thread_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void bench_fill_uniform(float *x, size_t n, uint64_t seed, float scale) {
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = scale * ((float)(int64_t)(s >> 40) / (float)(1 << 23) - 1.0f);
    }
}

/* Clock for a probe at `threads` threads: thread CPU time for 1 (the region runs on the calling
 * thread), wall time otherwise. */
static double probe_now(int threads) { return threads == 1 ? bench_thread_cpu_now() : bench_now(); }

static int have_avx512(void) {
#if defined(__x86_64__)
    return msbnb_isa_detected() >= MSBNB_ISA_AVX512;
#else
    return 0;
#endif
}

/* Plain C read loop: four independent sums so the compiler can keep loads in flight. */
static float sum_plain(const float *x, size_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= n; i += 4) s0 += x[i], s1 += x[i + 1], s2 += x[i + 2], s3 += x[i + 3];
    return s0 + s1 + s2 + s3;
}

/* Read bandwidth: a 1 GiB buffer (32x a typical LLC; halved until malloc succeeds), touched
 * once so page faults are not timed, then summed by `threads` threads over disjoint slices.
 * Best of 5 passes (1 thread: CPU time of the thread; more: wall time), in 1e9 bytes per second. Measured once per thread count per run (sections
 * share the figure). */
static double measure_read_bandwidth(int threads);

double bench_read_bandwidth_gbs(int threads) {
    static double cache[65];
    if (threads < 1) threads = 1;
    if (threads > 64) return measure_read_bandwidth(threads);
    if (cache[threads] <= 0.0) cache[threads] = measure_read_bandwidth(threads);
    return cache[threads];
}

void *bench_alloc_huge(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    void *p = aligned_alloc(huge, (bytes + huge - 1) / huge * huge);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p) (void)madvise(p, (bytes + huge - 1) / huge * huge, MADV_HUGEPAGE);
#endif
    return p;
}

static double measure_read_bandwidth(int threads) {
    size_t bytes = (size_t)1 << 30;
    float *buf = NULL;
    while (bytes >= ((size_t)1 << 26) && !(buf = bench_alloc_huge(bytes))) bytes /= 2;
    if (!buf) return 0.0;
    size_t n = bytes / sizeof(float);
    memset(buf, 0, bytes);
    int simd = have_avx512();
    double best = 1e30;
    volatile float sink = 0;
    for (int pass = 0; pass < 5; pass++) {
        double t0 = probe_now(threads);
        float total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
        {
            int nt = omp_get_num_threads(), id = omp_get_thread_num();
            size_t per = (n / (size_t)nt) & ~(size_t)63, lo = per * (size_t)id;
            size_t hi = id == nt - 1 ? n : lo + per;
            total += simd ? bench_sum_avx512(buf + lo, hi - lo) : sum_plain(buf + lo, hi - lo);
        }
        double dt = probe_now(threads) - t0;
        sink += total;
        if (dt < best) best = dt;
    }
    (void)sink;
    free(buf);
    return (double)bytes / best * 1e-9;
}

double bench_read_pass_gbs(const float *buf, size_t n, float *sink) {
    double t0 = bench_thread_cpu_now();
    *sink = have_avx512() ? bench_sum_avx512(buf, n) : sum_plain(buf, n);
    double dt = bench_thread_cpu_now() - t0;
    return dt > 0 ? (double)n * sizeof(float) / dt * 1e-9 : 0.0;
}

/* 128 MiB of other memory, read once per call: more than the host's last-level cache (32 MB). */
#define EVICT_BYTES ((size_t)128 << 20)

/* Keeps the eviction read from being optimized away (external linkage: a static one that is only
 * written trips clang's -Wunused-but-set-variable). */
volatile float bench_evict_sink;

double bench_evict_caches(void) {
    static float *buf;
    const size_t n = EVICT_BYTES / sizeof(float);
    if (!buf) {
        buf = bench_alloc_huge(EVICT_BYTES);
        if (!buf) return 0.0;
        for (size_t i = 0; i < n; i++) buf[i] = (float)(i & 7);
    }
    float s;
    const double gbs = bench_read_pass_gbs(buf, n, &s);
    bench_evict_sink += s;
    return gbs;
}

void bench_flush_lines(const void *p, size_t bytes) {
    if (!p) return;
    const char *c = (const char *)p;
    for (size_t o = 0; o < bytes; o += 64) _mm_clflush(c + o);
    if (bytes) _mm_clflush(c + bytes - 1);
    _mm_mfence();
}

void bench_flush_weights(const msbnb_qtensor *q) {
    msbnb_qtensor_view v;
    if (!q || msbnb_qtensor_get_view(q, &v) != MSBNB_OK) return;
    bench_flush_lines(v.data, v.data_bytes);
    if (v.double_quant) {
        bench_flush_lines(v.stats_q, v.n_stats);
        const size_t nb = (size_t)(v.nested_blocksize > 0 ? v.nested_blocksize : 256);
        bench_flush_lines(v.nested_absmax, (v.n_stats + nb - 1) / nb * sizeof(float));
    } else {
        bench_flush_lines(v.stats, v.n_stats * sizeof(float));
    }
    bench_flush_lines(v.zero_point, (v.per_row ? (size_t)v.rows : 1) * sizeof(int32_t));
}

/* Plain C FMA chains (fallback): 8 independent multiply-adds per iteration. */
static double fma_plain(long iters) {
    float a[8] = {1, 1, 1, 1, 1, 1, 1, 1}, m = 0.999999f, c = 1e-7f;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 8; j++) a[j] = a[j] * m + c;
    return (double)(a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7]);
}

#if defined(__x86_64__)
/* AVX2 + FMA chains (CPUs without AVX-512): 10 chains of 8 lanes, enough to cover the FMA latency
 * on two ports. Compiled for AVX2 by attribute, called only where the CPU has it. */
#define FMA_AVX2_FLOPS_PER_ITER (10.0 * 8.0 * 2.0)
__attribute__((target("avx2,fma"))) static double fma_avx2(long iters) {
    __m256 a[10], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int j = 0; j < 10; j++) a[j] = _mm256_set1_ps(1.0f + (float)j);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 10; j++) a[j] = _mm256_fmadd_ps(a[j], m, c);
    __m256 s = a[0];
    for (int j = 1; j < 10; j++) s = _mm256_add_ps(s, a[j]);
    float out[8];
    _mm256_storeu_ps(out, s);
    double r = 0;
    for (int j = 0; j < 8; j++) r += out[j];
    _mm256_zeroupper();
    return r;
}
static int have_avx2(void) { return msbnb_isa_detected() >= MSBNB_ISA_AVX2; }
#else
#define FMA_AVX2_FLOPS_PER_ITER 0.0
static double fma_avx2(long iters) { return (double)iters; }
static int have_avx2(void) { return 0; }
#endif

/* FMA peak: each thread runs independent FMA chains in registers (AVX-512: 12 chains of 16
 * lanes, enough to cover the FMA latency on two ports; AVX2: 10 chains of 8). GFLOP/s = 2 flops
 * per lane per FMA. 1 thread: CPU time of the thread; more: wall time. */
double bench_fma_peak_gflops(int threads) {
    const long iters = 20000000;
    int simd = have_avx512(), simd2 = !simd && have_avx2();
    double best = 1e30;
    volatile double sink = 0;
    for (int pass = 0; pass < 3; pass++) {
        double t0 = probe_now(threads), acc = 0;
#pragma omp parallel num_threads(threads) reduction(+ : acc)
        acc += simd ? bench_fma_avx512(iters) : simd2 ? fma_avx2(iters) : fma_plain(iters / 16);
        double dt = probe_now(threads) - t0;
        sink += acc;
        if (dt < best) best = dt;
    }
    (void)sink;
    double flops_per_thread = simd    ? (double)iters * BENCH_FMA_AVX512_FLOPS_PER_ITER
                              : simd2 ? (double)iters * FMA_AVX2_FLOPS_PER_ITER
                                      : (double)(iters / 16) * 16.0;
    return flops_per_thread * threads / best * 1e-9;
}
