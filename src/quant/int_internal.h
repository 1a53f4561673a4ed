/*
 * int_internal.h — INT8 / INT4 row kernels and their dispatch (quant/ only).
 *
 * Every kernel works on ONE row (or one row's groups) so the drivers in int8.c / int4.c can split
 * rows across threads with disjoint outputs. Each kernel has a scalar reference (the `_ref`
 * functions, which are the specification) and AVX2 / AVX-512 variants in src/quant/x86/ that are
 * bit-identical to it: same operations in the same order, one rounding per operation, no FMA.
 *
 * Element rules shared by every variant (see docs/formats_int.md):
 *   v = x * f                          one float32 multiply by the precomputed factor f
 *   NaN v -> 0                          (x NaN, or 0 * Inf never happens: f is finite here)
 *   v clamped to [lo, hi] in float      (±Inf x saturate to the extreme code)
 *   code = round_half_even(v)           (rintf; cvtps2dq / roundscale under the default MXCSR)
 * The drivers only call the vector kernels with a finite factor; rows whose factor overflows
 * (absmax below ~3.7e-37) take the scalar `tiny` path in the driver.
 */
#ifndef MSBNB_QUANT_INT_INTERNAL_H
#define MSBNB_QUANT_INT_INTERNAL_H

#include "core/internal.h"

#include <msbnb/quant.h>

#if MSBNB_HAVE_X86
#include <xmmintrin.h> /* _mm_sfence: SSE, part of the x86-64 baseline */
#endif

/* Max |x| over the finite elements of x [n] (NaN and ±Inf ignored); 0 if none. Exact for any
 * order of evaluation (max is associative), so SIMD and scalar agree bit for bit. */
typedef float (*msbnb__absmax_fn)(const float *x, int64_t n);
/* Min and max over finite elements of x [n]; *lo = +0 / *hi = -0 style sentinels are not used:
 * the caller starts from lo = hi = 0 (zero is always inside the asymmetric range). */
typedef void (*msbnb__minmax_fn)(const float *x, int64_t n, float *lo, float *hi);

/* INT8 symmetric: q[i] = rne(clamp(x[i] * f, -127, 127)), NaN -> 0. x [n], q [n]. */
typedef void (*msbnb__i8_quant_fn)(const float *x, int64_t n, float f, int8_t *q);
/* INT8 symmetric dequant: y[i] = ((float)q[i] * absmax) * (1/127 as float). */
typedef void (*msbnb__i8_dequant_fn)(const int8_t *q, int64_t n, float absmax, float *y, int nt);
/* INT8 asymmetric: q[i] = clamp(rne(clamp(x[i] * inv, -256, 256)) + zp, 0, 255), NaN -> zp. */
typedef void (*msbnb__u8_quant_fn)(const float *x, int64_t n, float inv, float zp, uint8_t *q);
/* INT8 asymmetric dequant: y[i] = (float)(q[i] - zp) * scale. */
typedef void (*msbnb__u8_dequant_fn)(const uint8_t *q, int64_t n, float scale, int32_t zp, float *y, int nt);
/* INT4 codes of ONE group: packed [n/2] (n even) from x [n] with factor f = 7/absmax:
 * code = rne(clamp(x * f, -8, 7)), NaN -> 0; element 2i in the high nibble. */
typedef void (*msbnb__i4_quant_fn)(const float *x, int64_t n, float f, uint8_t *packed);
/* INT4 dequant of ONE group: y [n] = (float)code * scale, packed [n/2].
 * Dequant kernels take nt: non-zero asks for streaming stores where y is 64-byte aligned (the
 * AVX-512 variants; others ignore it) — set by the drivers when the whole output is far larger
 * than the caches (msbnb__use_nt_stores). The values written are the same either way. Kernels do
 * not fence: the driver calls msbnb__stream_fence after each row it dequantized. */
typedef void (*msbnb__i4_dequant_fn)(const uint8_t *packed, int64_t n, float scale, float *y, int nt);

/* float32 -> fp16 (bf16 != 0: bfloat16) bit patterns, round to nearest even, exactly as
 * msbnb_f32_to_f16 / msbnb_f32_to_bf16 (NaN stays a quiet NaN, overflow -> ±Inf). x [n], h [n]. */
typedef void (*msbnb__f32_to_half_fn)(const float *x, int64_t n, uint16_t *h, int bf16);

typedef struct msbnb__int_kernels {
    msbnb__absmax_fn absmax;
    msbnb__minmax_fn minmax;
    msbnb__i8_quant_fn i8_quant;
    msbnb__i8_dequant_fn i8_dequant;
    msbnb__u8_quant_fn u8_quant;
    msbnb__u8_dequant_fn u8_dequant;
    msbnb__i4_quant_fn i4_quant;
    msbnb__i4_dequant_fn i4_dequant;
    msbnb__f32_to_half_fn f32_to_half;
} msbnb__int_kernels;

/* Kernels for the current ISA level (msbnb__isa()); never NULL entries. */
const msbnb__int_kernels *msbnb__int_kernels_get(void);

/* Scalar references (int8.c, int4.c). */
float msbnb__absmax_ref(const float *x, int64_t n);
void msbnb__minmax_ref(const float *x, int64_t n, float *lo, float *hi);
void msbnb__i8_quant_ref(const float *x, int64_t n, float f, int8_t *q);
void msbnb__i8_dequant_ref(const int8_t *q, int64_t n, float absmax, float *y, int nt);
void msbnb__u8_quant_ref(const float *x, int64_t n, float inv, float zp, uint8_t *q);
void msbnb__u8_dequant_ref(const uint8_t *q, int64_t n, float scale, int32_t zp, float *y, int nt);
void msbnb__i4_quant_ref(const float *x, int64_t n, float f, uint8_t *packed);
void msbnb__i4_dequant_ref(const uint8_t *packed, int64_t n, float scale, float *y, int nt);
void msbnb__f32_to_half_ref(const float *x, int64_t n, uint16_t *h, int bf16);

#if MSBNB_HAVE_X86
float msbnb__absmax_avx2(const float *x, int64_t n);
void msbnb__minmax_avx2(const float *x, int64_t n, float *lo, float *hi);
void msbnb__i8_quant_avx2(const float *x, int64_t n, float f, int8_t *q);
void msbnb__i8_dequant_avx2(const int8_t *q, int64_t n, float absmax, float *y, int nt);
void msbnb__u8_quant_avx2(const float *x, int64_t n, float inv, float zp, uint8_t *q);
void msbnb__u8_dequant_avx2(const uint8_t *q, int64_t n, float scale, int32_t zp, float *y, int nt);
void msbnb__i4_quant_avx2(const float *x, int64_t n, float f, uint8_t *packed);
void msbnb__i4_dequant_avx2(const uint8_t *packed, int64_t n, float scale, float *y, int nt);
void msbnb__f32_to_half_avx2(const float *x, int64_t n, uint16_t *h, int bf16);

float msbnb__absmax_avx512(const float *x, int64_t n);
void msbnb__minmax_avx512(const float *x, int64_t n, float *lo, float *hi);
void msbnb__i8_quant_avx512(const float *x, int64_t n, float f, int8_t *q);
void msbnb__i8_dequant_avx512(const int8_t *q, int64_t n, float absmax, float *y, int nt);
void msbnb__u8_quant_avx512(const float *x, int64_t n, float inv, float zp, uint8_t *q);
void msbnb__u8_dequant_avx512(const uint8_t *q, int64_t n, float scale, int32_t zp, float *y, int nt);
void msbnb__i4_quant_avx512(const float *x, int64_t n, float f, uint8_t *packed);
void msbnb__i4_dequant_avx512(const uint8_t *packed, int64_t n, float scale, float *y, int nt);
void msbnb__f32_to_half_avx512(const float *x, int64_t n, uint16_t *h, int bf16);
#endif

/* Checks a [rows, cols] matrix shape (positive, <= 2^40 per axis, rows*cols*4 fits size_t) and
 * sets *n = rows*cols; MSBNB_ERR_SHAPE with a message naming fn otherwise. (int8.c) */
msbnb_status msbnb__check_matrix_shape(const char *fn, int64_t rows, int64_t cols, size_t *n);

/* ---------------------------------------------------------------- row-range drivers */
/* Used by qtensor.c for msbnb_dequantize_rows; rows [row0, row0+nrows) of a [rows, cols] tensor,
 * y is [nrows, cols]. Arguments are already validated. */
void msbnb__dequantize_int8_rows(const int8_t *codes, const float *absmax, int64_t cols, int per_row,
                                 int64_t row0, int64_t nrows, float *y);
void msbnb__dequantize_int8_asym_rows(const uint8_t *codes, const float *scale, const int32_t *zero_point,
                                      int64_t cols, int per_row, int64_t row0, int64_t nrows, float *y);
/* scales [cols/group_size, rows] (full tensor's), packed [rows, cols/2]. */
void msbnb__dequantize_int4_rows(const uint8_t *packed, const float *scales, int64_t rows, int64_t cols,
                                 int group_size, int64_t row0, int64_t nrows, float *y);

/* Order a thread's streaming stores before anyone reads them (after each dequantized row). */
static inline void msbnb__stream_fence(int nt) {
#if MSBNB_HAVE_X86
    if (nt) _mm_sfence();
#else
    (void)nt;
#endif
}

/* 1/127 as bitsandbytes' int8_vectorwise_dequant multiplies by it (7.874015718698502e-3 rounded
 * to float32 = 0x1.020408p-7). */
#define MSBNB__INV127 (1.0f / 127.0f)

#endif
