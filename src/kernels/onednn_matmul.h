/*
 * onednn_matmul.h — the 4-bit products on the oneDNN engine (onednn_matmul.c) and the rule that
 * picks them (by level, precision and n; measured crossovers in onednn_matmul.c). kernels/ only.
 */
#ifndef MSBNB_KERNELS_ONEDNN_MATMUL_H
#define MSBNB_KERNELS_ONEDNN_MATMUL_H

#include "kernels/matmul_4bit.h"
#include "kernels/onednn.h"

/* 1 (and *dt) when the forward 4-bit product of n rows at SIMD level isa and this precision runs on
 * oneDNN (the ONEDNN level is on and it was measured faster there), else 0. */
int msbnb__od4_forward_dtype(msbnb_isa isa, int64_t n, msbnb_precision precision, msbnb__od_dtype *dt);
/* The same for the transposed product; bf16 != 0 allows bf16 operands (bf16 training). */
int msbnb__od4_transposed_dtype(msbnb_isa isa, int64_t n, int bf16, msbnb__od_dtype *dt);

/* 1 when the INT8 integer product (FAST mode, LLM.int8(); matmul_int8.c) of n activation rows runs
 * on oneDNN's s8 matmul at the current level on this CPU (msbnb__od8_min_n), else 0. */
int msbnb__od8_pick(int64_t n);
/* The smallest n from which that product takes oneDNN on this CPU class (measured thresholds in
 * onednn_matmul.c); 0 = never. */
int64_t msbnb__od8_min_n(msbnb__od_class c);

/* Same contracts as msbnb__matmul_4bit_tiled / msbnb__matmul_4bit_t_tiled with the level's kernel
 * table kern (its decoder; to_bf16 for bf16). round_bf16 != 0 (with dt F32): each decoded tile is
 * rounded to bf16 values (bf16 numerics on fp32 hardware, matmul_bf16.c). MSBNB_ERR_UNSUPPORTED (no
 * message, outputs untouched) when oneDNN cannot run a shape of the call: then the caller runs
 * msbnb's tiles. */
msbnb_status msbnb__matmul_4bit_onednn(const msbnb__mm4_kernels *kern, const msbnb__w4 *w, const float *X, int64_t n,
                                       const float *bias, float *Y, msbnb__od_dtype dt, int round_bf16);
msbnb_status msbnb__matmul_4bit_t_onednn(const msbnb__mm4_kernels *kern, const msbnb__w4 *w, const float *dY,
                                         int64_t n, float *dX, int accumulate, msbnb__od_dtype dt, int round_bf16);

/* The same drivers on a dense fp32 W [out][in] (tiles copied instead of decoded; to_bf16 by
 * msbnb_f32_to_bf16_array): the output matrix in bf16 training (matmul_bf16.c). */
msbnb_status msbnb__matmul_dense_onednn(const float *W, int64_t out, int64_t in, const float *X, int64_t n,
                                        const float *bias, float *Y, msbnb__od_dtype dt, int round_bf16);
msbnb_status msbnb__matmul_dense_t_onednn(const float *W, int64_t out, int64_t in, const float *dY, int64_t n,
                                          float *dX, int accumulate, msbnb__od_dtype dt, int round_bf16);

#endif
