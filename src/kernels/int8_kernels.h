/*
 * int8_kernels.h — the INT8 product family inside kernels/: element rules, the per-ISA kernel
 * table, and the scalar references every SIMD variant is proven against.
 *
 * Two kinds of inner kernels:
 *
 *  EXACT  fp32 dot products against weights dequantized on the fly, element by element, with
 *         the very rule msbnb_dequantize uses (src/quant/int8.c):
 *             symmetric   ŵ = ((float)code * absmax) * (1.0f/127.0f)
 *             asymmetric  ŵ = (float)(code - zp) * scale
 *         Variants differ only in the order of the fp32 sums (the bound in docs/kernels.md).
 *
 *  INT    exact integer dot products C[i, o] = Σ_k a[i, k] · w[o, k] of int8 activation codes
 *         (|a| ≤ 127) with int8 (symmetric) or uint8 (asymmetric) weight codes. Integer sums do
 *         not depend on order, so every ISA gives the same int32 bits and the fp32 epilogue (in
 *         plain C, shared) makes FAST mode and LLM.int8() bit-identical across ISAs.
 *         The SIMD kernels run while K ≤ MSBNB__INT8_MAX_K (no int32 overflow, even for the +128
 *         trick's intermediate sums, which wrap harmlessly modulo 2³²); beyond it the driver
 *         sums in int64 in plain C (same values, so the same bits).
 */
#ifndef MSBNB_KERNELS_INT8_KERNELS_H
#define MSBNB_KERNELS_INT8_KERNELS_H

#include "core/internal.h"
#include "kernels/kernels_internal.h"

/* 1/127 rounded to float32 (bitsandbytes multiplies by 7.874015718698502e-3). */
#define MSBNB__I8_INV127 (1.0f / 127.0f)
/* bitsandbytes' int8_mm_dequant constant, ≈ 1/127² rounded as written in bnb. */
#define MSBNB__I8_INV127SQ 6.200124e-05f
/* Largest K the integer kernels take: 255·127·K < 2³¹ (asymmetric weights against int8 codes). */
#define MSBNB__INT8_MAX_K ((int64_t)65536)

/* A weight matrix as the kernels see it: codes [rows, cols] (int8 when !asym, uint8 when asym),
 * stats [rows] or [1] (absmax when sym, scale when asym), zp [rows] or [1] (asym only). */
typedef struct msbnb__i8w {
    const uint8_t *codes;
    int64_t rows, cols;
    int asym, per_row;
    const float *stats;
    const int32_t *zp;
} msbnb__i8w;

static inline msbnb__i8w msbnb__i8w_of(const msbnb_qtensor *W) {
    msbnb__i8w w;
    w.codes = W->v.data;
    w.rows = W->v.rows;
    w.cols = W->v.cols;
    w.asym = W->v.asymmetric != 0;
    w.per_row = W->v.per_row != 0;
    w.stats = W->v.stats;
    w.zp = W->v.zero_point;
    return w;
}

/* Stat / zero point of row o (per-tensor tensors have one of each). */
static inline float msbnb__i8w_stat(const msbnb__i8w *w, int64_t o) { return w->stats[w->per_row ? o : 0]; }
static inline int32_t msbnb__i8w_zp(const msbnb__i8w *w, int64_t o) { return w->asym ? w->zp[w->per_row ? o : 0] : 0; }

/* Dequantized weight element, bit-identical to msbnb_dequantize. */
static inline float msbnb__i8_deq(const msbnb__i8w *w, int64_t o, int64_t k) {
    uint8_t c = w->codes[o * w->cols + k];
    if (w->asym) return (float)((int32_t)c - msbnb__i8w_zp(w, o)) * msbnb__i8w_stat(w, o);
    return ((float)(int8_t)c * msbnb__i8w_stat(w, o)) * MSBNB__I8_INV127;
}

/* ---------------------------------------------------------------- kernel signatures */

/* EXACT forward on a tile: Y[i, o] = Σ_k X[i, k] · ŵ[o, k] for i < n, o in [o0, o1), overwriting Y
 * (no bias). X [n, ldx], Y [n, ldy]. scratch: msbnb__I8_EXACT_SCRATCH bytes, 64-aligned. */
#define MSBNB__I8_EXACT_SCRATCH ((size_t)48 * 1024)
typedef void (*msbnb__i8_exact_fn)(const msbnb__i8w *w, int64_t o0, int64_t o1, const float *X, int64_t ldx,
                                   int64_t n, float *Y, int64_t ldy, void *scratch);

/* Transposed on a tile of columns: dX[i, k] (+)= Σ_o dY[i, o] · ŵ[o, k] for i in [i0, i1),
 * k in [k0, k1), k1 − k0 ≤ MSBNB__I8_T_KB_MAX. Every element is one fp32 chain over o = 0, 1, ..., out-1 started at 0 (or at
 * the old dX when accumulate), one fused multiply-add per step: all variants bit-identical.
 * scratch: msbnb__I8_T_SCRATCH bytes. */
#define MSBNB__I8_T_KB 512      /* dX columns per tile (narrowest; k1 − k0 may be larger)     */
#define MSBNB__I8_T_KB_MAX 4096 /* widest tile, the scratch's capacity                          */
#define MSBNB__I8_T_OB 8        /* weight rows dequantized per step (each dX vector loaded once) */
#define MSBNB__I8_T_SCRATCH ((size_t)MSBNB__I8_T_OB * MSBNB__I8_T_KB_MAX * sizeof(float))
typedef void (*msbnb__i8_t_fn)(const msbnb__i8w *w, const float *dY, int64_t i0, int64_t i1, int64_t k0,
                               int64_t k1, float *dX, int accumulate, void *scratch);

/* INT dot products: C[i, o - o0] = Σ_k a[i, k] · code[o, k] for i < m, o in [o0, o1).
 * a: int8 [m, lda] in [-127, 127]; asum [m] = Σ_k a[i, k] (variants that bias the weight codes
 * need it); C: int32 [m, ldc]. K = w->cols ≤ MSBNB__INT8_MAX_K. */
typedef void (*msbnb__i8_dot_fn)(const msbnb__i8w *w, int64_t o0, int64_t o1, const int8_t *a, int64_t lda,
                                 const int32_t *asum, int64_t m, int32_t *C, int64_t ldc);

typedef struct msbnb__i8_kernels {
    const char *name;
    msbnb__i8_exact_fn exact;
    msbnb__i8_t_fn transposed;
    msbnb__i8_dot_fn dot;
} msbnb__i8_kernels;

/* Table for the current ISA level (msbnb__isa()). */
const msbnb__i8_kernels *msbnb__i8_kernels_get(void);

/* Scalar references (matmul_int8_ref.c). */
void msbnb__i8_exact_ref(const msbnb__i8w *w, int64_t o0, int64_t o1, const float *X, int64_t ldx, int64_t n,
                         float *Y, int64_t ldy, void *scratch);
void msbnb__i8_t_ref(const msbnb__i8w *w, const float *dY, int64_t i0, int64_t i1, int64_t k0, int64_t k1,
                     float *dX, int accumulate, void *scratch);
void msbnb__i8_dot_ref(const msbnb__i8w *w, int64_t o0, int64_t o1, const int8_t *a, int64_t lda,
                       const int32_t *asum, int64_t m, int32_t *C, int64_t ldc);

#if MSBNB_HAVE_X86
void msbnb__i8_exact_avx2(const msbnb__i8w *w, int64_t o0, int64_t o1, const float *X, int64_t ldx, int64_t n,
                          float *Y, int64_t ldy, void *scratch);
void msbnb__i8_t_avx2(const msbnb__i8w *w, const float *dY, int64_t i0, int64_t i1, int64_t k0, int64_t k1,
                      float *dX, int accumulate, void *scratch);
void msbnb__i8_dot_avx2(const msbnb__i8w *w, int64_t o0, int64_t o1, const int8_t *a, int64_t lda,
                        const int32_t *asum, int64_t m, int32_t *C, int64_t ldc);
void msbnb__i8_exact_avx512(const msbnb__i8w *w, int64_t o0, int64_t o1, const float *X, int64_t ldx, int64_t n,
                            float *Y, int64_t ldy, void *scratch);
void msbnb__i8_t_avx512(const msbnb__i8w *w, const float *dY, int64_t i0, int64_t i1, int64_t k0, int64_t k1,
                        float *dX, int accumulate, void *scratch);
void msbnb__i8_dot_avx512(const msbnb__i8w *w, int64_t o0, int64_t o1, const int8_t *a, int64_t lda,
                          const int32_t *asum, int64_t m, int32_t *C, int64_t ldc);
void msbnb__i8_dot_avx512vnni(const msbnb__i8w *w, int64_t o0, int64_t o1, const int8_t *a, int64_t lda,
                              const int32_t *asum, int64_t m, int32_t *C, int64_t ldc);
/* AVX-VNNI (VEX, 256-bit): only when msbnb__cpu()->avxvnni. */
void msbnb__i8_dot_avxvnni(const msbnb__i8w *w, int64_t o0, int64_t o1, const int8_t *a, int64_t lda,
                           const int32_t *asum, int64_t m, int32_t *C, int64_t ldc);
/* The same product on oneDNN's s8 matmul, whatever msbnb__od8_pick says (msbnb__i8_int_product
 * calls it where the rule picks it; tests and the bench force it): same contract and bits.
 * MSBNB_ERR_UNSUPPORTED (no message, Y and subB untouched) when oneDNN has no exact s8 product for
 * one of its shapes here (msbnb__od_supported) or K > MSBNB__INT8_MAX_K. */
msbnb_status msbnb__i8_int_product_onednn(const msbnb__i8w *w, const int8_t *a, const int32_t *asum,
                                          const float *row_stats, int64_t n, const float *bias, float *Y,
                                          const int32_t *ocols, int64_t nout, float *subB);

#endif

/* ---------------------------------------------------------------- shared drivers */

/* Row-wise int8 quantization of activations, the LLM.int8() rule (llm_int8.c); see
 * msbnb_int8_vectorwise_quant. is_outlier: [cols] flags (NULL = no outliers). codes [rows, ldc]
 * (columns beyond cols untouched), row_stats [rows], asum [rows] (may be NULL). */
void msbnb__i8_quant_rows(const float *X, int64_t rows, int64_t cols, const uint8_t *is_outlier, float threshold,
                          int8_t *codes, int64_t ldc, float *row_stats, int32_t *asum);

/* Integer product of quantized activations with the weights, rescaled (matmul_int8.c):
 * Y[i, o] = epilogue(C[i, o]) with, for symmetric weights,
 *     (float)C · (row_stats[i] · absmax[o]) · MSBNB__I8_INV127SQ           (bnb int8_mm_dequant)
 * and for asymmetric weights (C corrected by − zp·Σa, in int64)
 *     (float)C · (row_stats[i] · scale[o]) · MSBNB__I8_INV127
 * then + bias[o] when bias is given. a: int8 [n, K], asum [n], row_stats [n].
 * nout > 0 (LLM.int8()): also subB[o, j] = msbnb__i8_deq(w, o, ocols[j]) for j < nout, the
 * dequantized outlier columns [out, nout], gathered tile by tile while the tile's weight rows are
 * still in cache (a second pass would read W from memory again). */
msbnb_status msbnb__i8_int_product(const msbnb__i8w *w, const int8_t *a, const int32_t *asum,
                                   const float *row_stats, int64_t n, const float *bias, float *Y,
                                   const int32_t *ocols, int64_t nout, float *subB);

/* The same product on oneDNN's s8 matmul, whatever msbnb__od8_pick says (msbnb__i8_int_product
 * calls it where the rule picks it; tests and the bench force it): same contract and bits.
 * MSBNB_ERR_UNSUPPORTED (no message, Y and subB untouched) when oneDNN has no exact s8 product for
 * one of its shapes here (msbnb__od_supported) or K > MSBNB__INT8_MAX_K. */
msbnb_status msbnb__i8_int_product_onednn(const msbnb__i8w *w, const int8_t *a, const int32_t *asum,
                                          const float *row_stats, int64_t n, const float *bias, float *Y,
                                          const int32_t *ocols, int64_t nout, float *subB);

#endif
