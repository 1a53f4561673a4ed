/* bench.h — the benchmark sections and their shared measuring tools. */
#ifndef MSBNB_BENCH_H
#define MSBNB_BENCH_H

#include <stddef.h>

/* Monotonic wall-clock seconds. */
double bench_now(void);
/* Measured memory read bandwidth in GB/s (1e9 B/s) at `threads` threads, over a buffer much
 * larger than the last-level cache; best of a few passes. */
double bench_read_bandwidth_gbs(int threads);
/* Measured fp32 FMA peak in GFLOP/s (2 flops per FMA lane) at `threads` threads. */
double bench_fma_peak_gflops(int threads);

/* Sections: each prints its own tables. quick != 0 = smaller sizes (smoke runs). */
int bench_formats(int quick);
int bench_matmul(int quick);
int bench_matmul_int8(int quick);
int bench_train(int quick);

#endif
