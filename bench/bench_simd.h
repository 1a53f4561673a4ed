/* bench_simd.h — vector loops of the machine-limit probes (bench_simd_avx512.c, built with
 * AVX-512 flags; call only when msbnb_isa_detected() >= MSBNB_ISA_AVX512). */
#ifndef MSBNB_BENCH_SIMD_H
#define MSBNB_BENCH_SIMD_H

#include <stddef.h>

/* Sum of x [n] with 512-bit loads (n any; tail summed in scalar). */
float bench_sum_avx512(const float *x, size_t n);
/* iters iterations of 12 independent 16-lane FMA chains; returns a value to keep it alive. */
double bench_fma_avx512(long iters);
#define BENCH_FMA_AVX512_FLOPS_PER_ITER (12.0 * 16.0 * 2.0)

#endif
