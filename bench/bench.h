/* bench.h — the benchmark sections and their shared measuring tools. */
#ifndef MSBNB_BENCH_H
#define MSBNB_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic wall-clock seconds. */
double bench_now(void);
/* CPU seconds of the calling thread (CLOCK_THREAD_CPUTIME_ID): one-thread figures that other
 * processes on a shared host don't inflate. */
double bench_thread_cpu_now(void);
/* x[0..n) = scale * uniform(-1, 1) from a 64-bit LCG seeded with seed: the same values on every
 * host, so benches compare like with like. */
void bench_fill_uniform(float *x, size_t n, uint64_t seed, float scale);
/* Measured memory read bandwidth in GB/s (1e9 B/s) at `threads` threads, over a buffer much
 * larger than the last-level cache (on huge pages, see bench_alloc_huge); best of a few passes. */
double bench_read_bandwidth_gbs(int threads);
/* One timed read of buf [n] floats on the calling thread (thread CPU time, 512-bit loads where the
 * CPU has AVX-512), in GB/s; the same loop as bench_read_bandwidth_gbs(1). *sink receives the sum so
 * the read is not optimized away. */
double bench_read_pass_gbs(const float *buf, size_t n, float *sink);
/* bytes of memory (free() it) on 2 MiB transparent huge pages where Linux allows, as the library
 * allocates large tensors (msbnb__alloc_large): the bandwidth probes read memory of the same kind
 * as the products they are compared with. */
void *bench_alloc_huge(size_t bytes);
/* Evicts the caches of everything else by reading 128 MiB of other memory (allocated on first
 * use, never freed) with bench_read_pass_gbs' loop, and returns that read's GB/s: the n = 1
 * products, which must stream their weights from DRAM, call it (untimed) before each timed call and
 * compare themselves with these samples (taken in the same seconds). */
double bench_evict_caches(void);
/* Flushes the cache lines of [p, p + bytes) (clflush), or of a quantized tensor's codes and
 * statistics: after bench_evict_caches and one untimed call, the weights alone are cold — as for a
 * layer's weights during generation, while code, activations, scratch and page tables stay warm. */
void bench_flush_lines(const void *p, size_t bytes);
struct msbnb_qtensor;
void bench_flush_weights(const struct msbnb_qtensor *q);
/* Measured fp32 FMA peak in GFLOP/s (2 flops per FMA lane) at `threads` threads. */
double bench_fma_peak_gflops(int threads);

/* The CPU's name (/proc/cpuinfo "model name") and the engine (msbnb's level, oneDNN's version and
 * ISA); static storage. Every section prints both. */
const char *bench_cpu_model(void);
const char *bench_engine(void);
/* Every figure also goes to results.jsonl beside the bench binary (build/bench/results.jsonl), one
 * JSON object per measurement: section, what, shape, n, threads, value + unit, the same run's
 * limit it is quoted against (name, value, ratio), oneDNN's implementation string where one ran,
 * the CPU and the engine. bench_jsonl_open truncates the file (main does it once per run). */
int bench_jsonl_open(const char *argv0);
const char *bench_jsonl_path(void);
void bench_jsonl_close(void);
void bench_record(const char *section, const char *what, const char *shape, long long n, int threads, double value,
                  const char *unit, const char *limit_name, double limit_value, const char *impl);

/* Sections: each prints its own tables. quick != 0 = smaller sizes (smoke runs). */
int bench_formats(int quick);
int bench_matmul(int quick);
int bench_matmul_int8(int quick);
int bench_train(int quick);
int bench_onednn(int quick);
/* its INT8 part (bench_onednn_int8.c): msbnb's int8 dot kernels against oneDNN's s8 matmul */
int bench_onednn_int8(int quick);
/* and the model's dense products (bench_onednn_dense.c): output matrix, attention, against oneDNN */
int bench_onednn_dense(int quick);
int bench_parsers(int quick);
int bench_tokenizer(int quick);

#endif
