/*
 * kernels.h — fused matrix products that read quantized weights directly.
 *
 * Shapes (row-major):  W: msbnb_qtensor with rows = out_features, cols = in_features
 *                      X: [n, in]   Y: [n, out]   bias: [out] or NULL
 * Forward:    Y = X · deq(W)ᵀ + bias
 * Transposed: dX = dY · deq(W)          (dY: [n, out], dX: [n, in]) — for backward passes.
 *
 * Alignment: W's buffers need only their natural alignment — 4 bytes for float/int32 statistics,
 * none for the codes — as a safetensors memory map or numpy gives them (msbnb_qtensor_wrap);
 * X, Y and bias likewise (4 bytes). Every product is tested on such buffers
 * (tests/quant/test_qtensor_wrap.c: exact-size parts 4 bytes past an allocation, every ISA level).
 *
 * No full dequantized copy of W is made: scratch memory is bounded by a tile, independent of the
 * matrix size (plus, for some paths, activation-sized buffers: see docs/kernels.md). Work is split
 * over output rows/tiles on msbnb_get_num_threads() threads; results are bit-identical for every
 * thread count. Which kernel runs may depend on n (e.g. a streaming kernel for n <= 16), so the
 * last bits of a row can differ between very small and larger batches — never between runs or
 * thread counts.
 *
 * Precision:
 *  EXACT  weights dequantized to fp32 exactly as msbnb_dequantize does, fp32 accumulation: the
 *         reference semantics and the default. Differs from dequantize + a plain fp32 product only
 *         by summation order: |Y - Σ x·ŵ - b| <= (in + 3)·2^-24·(Σ|x·ŵ| + |b|) (docs/kernels.md).
 *  FAST   activations (and, for 4-bit weights, the dequantized weights) may be rounded:
 *         4-bit weights, n <= 16 on AVX2 CPUs and those with AVX512-VNNI (any n on those without
 *         AVX512-BF16 when W has >= 2048 columns): activations rounded to int8 per 64-element
 *         chunk and code values to 1/254 of the block scale, integer dot products (~1 %
 *         relative to EXACT; a row's result does not depend on n there); n >= 17 on AVX512-BF16
 *         CPUs: bf16 with vdpbf16ps (~0.2 %);
 *         otherwise (scalar, AVX-512 without VNNI): as EXACT (docs/kernels.md);
 *         INT8 weights: int8 activations with per-row scales and integer dot products
 *         (docs/kernels_int8.md).
 */
#ifndef MSBNB_KERNELS_H
#define MSBNB_KERNELS_H

#include "msbnb.h"
#include "quant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum msbnb_precision {
    MSBNB_PRECISION_EXACT = 0,
    MSBNB_PRECISION_FAST = 1
} msbnb_precision;

/* Y[n, out] = X[n, in] · deq(W)ᵀ (+ bias). Any n ≥ 1, any in/out (tails handled).
 * W: INT8, INT4, NF4 or FP4 (plain or double-quantized statistics), borrowed. X [n, in], bias [out]
 * or NULL: borrowed, read only. Y [n, out]: caller-allocated, overwritten (never read; must not
 * overlap X or bias). precision: MSBNB_PRECISION_EXACT or _FAST.
 * Errors: INVALID_ARG (NULL W/X/Y, W of another type or without codes/statistics, bad precision),
 * SHAPE (n < 1 or n too large; activation sizes overflowing size_t), OUT_OF_MEMORY (tile scratch).
 * Thread-safe for concurrent calls on the same W (W is only read). */
msbnb_status msbnb_matmul(const msbnb_qtensor *W, const float *X, int64_t n, const float *bias, float *Y,
                          msbnb_precision precision);

/* As msbnb_matmul with X [n, in] given as float32 (MSBNB_DTYPE_F32) or as fp16 / bf16 bit patterns
 * (MSBNB_DTYPE_F16 / _BF16, uint16_t elements). Half inputs are converted to float32 in blocks of at
 * most 67 rows (scratch [67, in] floats; [n, in] when the oneDNN engine takes the product, as it
 * does only for whole batches); the result equals msbnb_matmul on the converted rows.
 * Errors: those of msbnb_matmul, INVALID_ARG for another x_dtype. */
msbnb_status msbnb_matmul_ex(const msbnb_qtensor *W, const void *X, msbnb_dtype x_dtype, int64_t n,
                             const float *bias, float *Y, msbnb_precision precision);

/* dX[n, in] = dY[n, out] · deq(W) (EXACT semantics, fp32 accumulation: in increasing out in msbnb's
 * tiles, in oneDNN's fixed order where the `onednn` level takes it; within (out + 3)·u·Σ|dy·w|
 * either way); accumulate != 0 adds into dX instead of overwriting (accumulate == 0: dX is never
 * read). dY borrowed; dX caller-allocated, must not overlap dY. Errors: as msbnb_matmul. */
msbnb_status msbnb_matmul_t(const msbnb_qtensor *W, const float *dY, int64_t n, float *dX, int accumulate);

/* As msbnb_matmul_t; precision FAST: bf16 numerics for 4-bit weights — dY and the dequantized
 * weights rounded to bf16, fp32 products and sums, within (2·2^-9 + 2^-17 + (out + 3)·u)·Σ|dy·w| —
 * natively where the CPU has bf16 dot products (oneDNN's bf16 matmul at the onednn level), else the
 * same numbers through the fp32 engines on rounded operands (fp32 speed); INT8 weights: EXACT.
 * Bf16 training (train.h, MSBNB_COMPUTE_BF16) uses it. */
msbnb_status msbnb_matmul_t_ex(const msbnb_qtensor *W, const float *dY, int64_t n, float *dX, int accumulate,
                               msbnb_precision precision);

/* 1 when the CPU has native bf16 dot products (AVX512-BF16; every AMX CPU has it too) and the current
 * level uses them (avx512_bf16 or onednn), else 0: where FAST products of more than 16 rows are
 * bf16 products at bf16 speed, and where training defaults to bf16 compute. */
int msbnb_bf16_native(void);

/* Optional: prepare W for faster products. Validates W (INVALID_ARG as msbnb_matmul). The current
 * 4-bit kernels read the bitsandbytes layout directly, so nothing is built for them and W is left
 * unchanged; the functional view and the on-disk format never change. Not thread-safe against
 * concurrent products on the same W. */
msbnb_status msbnb_qtensor_prepare(msbnb_qtensor *W);

/* Dense fp32 product (OpenBLAS sgemm): Y[n, out] = X[n, in] · Wᵀ (+ bias), W: [out, in]. */
msbnb_status msbnb_matmul_f32(const float *W, int64_t out, int64_t in, const float *X, int64_t n,
                              const float *bias, float *Y);
/* Dense transposed: dX[n, in] (+)= dY[n, out] · W. */
msbnb_status msbnb_matmul_f32_t(const float *W, int64_t out, int64_t in, const float *dY, int64_t n, float *dX,
                                int accumulate);

/* ---------------------------------------------------------------- LLM.int8() */

/* Row-wise int8 quantization of activations X [rows, cols] (bitsandbytes int8_vectorwise_quant):
 * row_stats[r] = max |X[r, c]| over the ELEMENTS with |x| < threshold (bnb zeroes only the
 * outlier elements before its row max, so the other elements of an outlier column still count);
 * codes[r, c] = round_half_even(X[r, c] * (127 / row_stats[r])) (float32 division, then
 * multiply), clamped to ±127, and 0 in every outlier column.
 * An outlier column is one holding any |x| ≥ threshold (threshold 0 = none).
 * A row whose row_stats is 0 gets all-zero codes; NaN elements are ignored by the max and coded 0.
 * codes [rows, cols] and row_stats [rows] are caller-allocated (NULL rejected); outlier_cols (may
 * be NULL) receives the column indices, ascending, *n_outliers (may be NULL) their count;
 * outlier_cols must hold cols entries. Errors: INVALID_ARG (NULL, threshold < 0, NaN or Inf),
 * SHAPE (rows or cols < 1), OUT_OF_MEMORY. */
msbnb_status msbnb_int8_vectorwise_quant(const float *X, int64_t rows, int64_t cols, float threshold,
                                         int8_t *codes, float *row_stats, int32_t *outlier_cols,
                                         int64_t *n_outliers);

/* LLM.int8() product: Y[n, out] = X · deq(W)ᵀ + bias with W INT8 symmetric per-row (bnb CB/SCB).
 * Columns of X with any |x| ≥ threshold go through an fp32 product against the dequantized W
 * columns; the rest through int8×int8→int32 rescaled by C·rowstat·SCB/127². threshold = 0
 * disables the decomposition (everything int8). Exactly: Y = (float)C·(rowstat·SCB)·6.200124e-05
 * + bias (bnb int8_mm_dequant), then + X[:, outliers]·Ŵ[:, outliers]ᵀ (fp32, OpenBLAS sgemm).
 * Per-tensor symmetric W uses its single absmax as SCB. X [n, in] and Y [n, out] borrowed;
 * scratch of n·in bytes (the int8 activations) is allocated inside. Results are the same bits
 * on every ISA level and thread count. Errors: INVALID_ARG (NULL, non-INT8 W, n < 0, threshold
 * < 0 / NaN / Inf), UNSUPPORTED (asymmetric W), OUT_OF_MEMORY. */
msbnb_status msbnb_matmul_int8_lt(const msbnb_qtensor *W, const float *X, int64_t n, const float *bias,
                                  float threshold, float *Y);

#ifdef __cplusplus
}
#endif
#endif /* MSBNB_KERNELS_H */
