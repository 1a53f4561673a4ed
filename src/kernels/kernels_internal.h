/*
 * kernels_internal.h — entry points shared inside kernels/: msbnb_matmul (matmul.c) routes by
 * weight type to the family implementations below.
 */
#ifndef MSBNB_KERNELS_INTERNAL_H
#define MSBNB_KERNELS_INTERNAL_H

#include <msbnb/kernels.h>

#include "quant/qtensor_internal.h"

/* Below this many multiply-adds a product runs on the calling thread: waking a team costs more
 * than it saves (stories260K's 64 x 64 projections at n = 1 are 4096), and on an oversubscribed
 * host spinning workers make it far worse. Work split and operation order are the same either way,
 * so the bits are too. */
#define MSBNB__PARALLEL_MIN_WORK ((double)(1 << 18))

/* x86 SIMD units end every function that returns to generic code with MSBNB__SIMD_LEAVE().
 * Non-AVX code that runs afterwards (the caller's, libm's, the model's loops, other OpenMP
 * regions on the same worker) is slowed down by dirty upper halves of ymm/zmm0-15: measured here,
 * a loop of 2048 expf ran 4x slower after a FAST product and d768 token generation ran at 0.8x
 * EXACT. gcc 12 drops its automatic vzeroupper at the return of kernels that call helpers inside
 * their loops (it assumes a call returns clean), so the units say it themselves.
 * tests/kernels/test_simd_exit_state.c reads the state (XINUSE) after every entry point. */
#ifdef __AVX__
#define MSBNB__SIMD_LEAVE() _mm256_zeroupper()
#endif

/* INT8 weights (symmetric or asymmetric, per row or per tensor), implemented in the int8 family
 * files. Same contract as msbnb_matmul / msbnb_matmul_t; arguments already validated. */
msbnb_status msbnb__matmul_int8(const msbnb_qtensor *W, const float *X, int64_t n, const float *bias, float *Y,
                                msbnb_precision precision);
msbnb_status msbnb__matmul_int8_t(const msbnb_qtensor *W, const float *dY, int64_t n, float *dX, int accumulate);

/* Y = X · deq(W)ᵀ (+ bias) with bf16 numerics: X and the dequantized weights rounded to bf16, fp32
 * products and sums (kernels/matmul_bf16.c; native bf16 where the CPU has it); INT8 weights run
 * EXACT. Validates like msbnb_matmul. Bf16 training's forward (train.h, MSBNB_COMPUTE_BF16). */
msbnb_status msbnb__matmul_bf16(const msbnb_qtensor *W, const float *X, int64_t n, const float *bias, float *Y);

/* Dense fp32 W [out][in] with the same bf16 numerics (kernels/matmul_bf16.c), on the oneDNN engine:
 * native bf16 tiles where the CPU has bf16 dot products, else oneDNN's f32 tiles on bf16-rounded
 * operands (the same numbers at fp32 speed). Y = r(X)·r(W)ᵀ (+ bias); dX (+)= r(dY)·r(W). Scratch:
 * the rounded activations and one weight tile per thread. MSBNB_ERR_UNSUPPORTED (no message,
 * outputs untouched) without the oneDNN engine; the caller then keeps its fp32 product. */
msbnb_status msbnb__matmul_f32_bf16(const float *W, int64_t out, int64_t in, const float *X, int64_t n,
                                    const float *bias, float *Y);
msbnb_status msbnb__matmul_f32_t_bf16(const float *W, int64_t out, int64_t in, const float *dY, int64_t n, float *dX,
                                      int accumulate);
/* 1 when bf16 training runs the model's dense products of n rows (the output matrix) through
 * msbnb__matmul_f32_bf16: the `onednn` level, native bf16 (oneDNN bf16 implemented and not a
 * reference) and n >= 32 (kernels/matmul_bf16.c: why); elsewhere they stay fp32 on OpenBLAS.
 * msbnb__dense_bf16_force(1) (tests) makes it 1 wherever the engine runs; returns the previous. */
int msbnb__dense_bf16_pick(int64_t n);
int msbnb__dense_bf16_force(int on);

/* ---------------------------------------------------------------- dense fp32 (dense.c)
 * OpenBLAS's own threading is not bit-stable across thread counts, so every OpenBLAS call in
 * msbnb runs single-threaded inside a begin/end pair, which saves and restores the process's
 * OpenBLAS thread setting (msbnb never leaves it changed), and msbnb splits the work itself. */
int msbnb__blas_single_thread_begin(void);   /* returns the previous setting for _end */
/* OUT_OF_MEMORY when an address-space limit leaves too little for OpenBLAS's per-thread buffers
 * (it would loop forever trying to map them); call before the first BLAS use of a model. */
msbnb_status msbnb__blas_check_memory(void);
void msbnb__blas_single_thread_end(int prev);

/* C[M, Nc] = alpha · op(A) · op(B) + beta · C (row-major, op = transpose when trans_* != 0), as
 * cblas_sgemm, split over msbnb's threads in fixed blocks of C (128 rows, or 256 columns when C has
 * at most 128 rows), each one single-threaded sgemm call: bit-identical for every thread count.
 * Sizes must fit cblas' int. */
void msbnb__sgemm_fixed(int trans_a, int trans_b, int64_t M, int64_t Nc, int64_t K, float alpha, const float *A,
                        int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

#endif
