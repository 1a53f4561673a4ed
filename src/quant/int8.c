/*
 * int8.c — INT8 absmax quantization, symmetric (bitsandbytes' row-wise CB/SCB) and asymmetric
 * (min/max with an integer zero point), per row or per tensor. Also holds the kernel dispatch
 * table shared with int4.c.
 *
 * Symmetric, per row r (per tensor: one absmax over the whole matrix):
 *   absmax[r] = max |x[r, c]| over finite elements                      (bnb SCB)
 *   f         = (1.0f / absmax[r]) * 127.0f     two float32 roundings: reciprocal, then * 127
 *   code      = round_half_even(x * f)          float32 multiply, clamp [-127, 127]   (bnb CB)
 *   x̂         = ((float)code * absmax[r]) * (1.0f/127.0f)
 * This is bitsandbytes' default/CPU backend exactly: int8_vectorwise_quant computes
 * round(A * (127.0 / row_stats)), and PyTorch evaluates `scalar / tensor` as
 * tensor.reciprocal() * scalar — so the factor is fl(fl(1/absmax) * 127), not fl(127/absmax)
 * (they differ by one ulp for many absmax, which moves codes on near-ties; checked against
 * bitsandbytes 0.50.2 output in tests/quant/golden). int8_vectorwise_dequant computes
 * A * stats * 7.874015718698502e-3 = ((float)code * absmax) * fl(1/127). bitsandbytes' CUDA
 * kernel uses __fdividef(127, absmax), an approximate division, and can differ on rare ties.
 *
 * Asymmetric, per row r (or per tensor):
 *   lo = min(0, min finite x), hi = max(0, max finite x)   (zero is always representable)
 *   scale = (float)(((double)hi - (double)lo) / 255)        (no overflow for any finite inputs)
 *   inv   = 1.0f / scale
 *   zp    = clamp(round_half_even(-lo * inv), 0, 255)       stored as int32
 *   code  = clamp(round_half_even(clamp(x * inv, -256, 256)) + zp, 0, 255)   (uint8)
 *   x̂     = (float)(code - zp) * scale
 *
 * Non-finite inputs (both forms): statistics use finite elements only; NaN encodes as the code of
 * 0.0 (0, or zp); +Inf / -Inf saturate to the largest / smallest code. A row with no nonzero
 * finite element gets absmax (scale) 0 and all-zero codes (zp 0). Rows whose factor overflows
 * float (absmax < ~3.7e-37, scale < ~2.9e-39) are coded in double precision by a scalar path
 * (bitsandbytes has no defined result there: its factor is Inf).
 */
#include "quant/fourbit_internal.h"
#include "quant/int_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- scalar references */

float msbnb__absmax_ref(const float *x, int64_t n) {
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a <= FLT_MAX && a > m) m = a; /* NaN and Inf fail the first test */
    }
    return m;
}

void msbnb__minmax_ref(const float *x, int64_t n, float *lo, float *hi) {
    float l = *lo, h = *hi;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (!(fabsf(v) <= FLT_MAX)) continue;
        if (v < l) l = v;
        if (v > h) h = v;
    }
    *lo = l;
    *hi = h;
}

/* Clamp in float, NaN -> 0. Written with explicit comparisons so the order of NaN handling is
 * the same as the vector variants (NaN masked to 0 first, then min/max). */
static inline float clamp_nan0(float v, float lo, float hi) {
    if (v != v) return 0.0f;
    if (v > hi) return hi;
    if (v < lo) return lo;
    return v;
}

void msbnb__i8_quant_ref(const float *x, int64_t n, float f, int8_t *q) {
    for (int64_t i = 0; i < n; i++) q[i] = (int8_t)(int)rintf(clamp_nan0(x[i] * f, -127.0f, 127.0f));
}

void msbnb__i8_dequant_ref(const int8_t *q, int64_t n, float absmax, float *y, int nt) {
    (void)nt;
    for (int64_t i = 0; i < n; i++) y[i] = ((float)q[i] * absmax) * MSBNB__INV127;
}

void msbnb__u8_quant_ref(const float *x, int64_t n, float inv, float zp, uint8_t *q) {
    for (int64_t i = 0; i < n; i++) {
        float v = rintf(clamp_nan0(x[i] * inv, -256.0f, 256.0f)) + zp;
        q[i] = (uint8_t)(int)clamp_nan0(v, 0.0f, 255.0f);
    }
}

void msbnb__u8_dequant_ref(const uint8_t *q, int64_t n, float scale, int32_t zp, float *y, int nt) {
    (void)nt;
    for (int64_t i = 0; i < n; i++) y[i] = (float)((int32_t)q[i] - zp) * scale;
}

void msbnb__f32_to_half_ref(const float *x, int64_t n, uint16_t *h, int bf16) {
    for (int64_t i = 0; i < n; i++) h[i] = bf16 ? msbnb_f32_to_bf16(x[i]) : msbnb_f32_to_f16(x[i]);
}

/* ---------------------------------------------------------------- dispatch */

static const msbnb__int_kernels kernels_ref = {
    msbnb__absmax_ref,     msbnb__minmax_ref,     msbnb__i8_quant_ref, msbnb__i8_dequant_ref,
    msbnb__u8_quant_ref,   msbnb__u8_dequant_ref, msbnb__i4_quant_ref, msbnb__i4_dequant_ref,
    msbnb__f32_to_half_ref,
};
#if MSBNB_HAVE_X86
static const msbnb__int_kernels kernels_avx2 = {
    msbnb__absmax_avx2,   msbnb__minmax_avx2,     msbnb__i8_quant_avx2, msbnb__i8_dequant_avx2,
    msbnb__u8_quant_avx2, msbnb__u8_dequant_avx2, msbnb__i4_quant_avx2, msbnb__i4_dequant_avx2,
    msbnb__f32_to_half_avx2,
};
static const msbnb__int_kernels kernels_avx512 = {
    msbnb__absmax_avx512,   msbnb__minmax_avx512,     msbnb__i8_quant_avx512, msbnb__i8_dequant_avx512,
    msbnb__u8_quant_avx512, msbnb__u8_dequant_avx512, msbnb__i4_quant_avx512, msbnb__i4_dequant_avx512,
    msbnb__f32_to_half_avx512,
};
#endif

const msbnb__int_kernels *msbnb__int_kernels_get(void) {
#if MSBNB_HAVE_X86
    msbnb_isa isa = msbnb__isa();
    if (isa >= MSBNB_ISA_AVX512) return &kernels_avx512;
    if (isa >= MSBNB_ISA_AVX2) return &kernels_avx2;
#endif
    return &kernels_ref;
}

/* ---------------------------------------------------------------- argument checks */

msbnb_status msbnb__check_matrix_shape(const char *fn, int64_t rows, int64_t cols, size_t *n) {
    if (rows <= 0 || cols <= 0 || rows > MSBNB_MAX_DIM || cols > MSBNB_MAX_DIM)
        return msbnb__fail(MSBNB_ERR_SHAPE, fn, "shape [%lld, %lld] must be positive and at most 2^40 per axis",
                           (long long)rows, (long long)cols);
    size_t bytes;
    if (!msbnb__mul_ok((size_t)rows, (size_t)cols, n) || !msbnb__mul_ok(*n, sizeof(float), &bytes))
        return msbnb__fail(MSBNB_ERR_SHAPE, fn, "shape [%lld, %lld] overflows size_t", (long long)rows,
                           (long long)cols);
    return MSBNB_OK;
}

static msbnb_status check_shape(const char *fn, int64_t rows, int64_t cols) {
    size_t n;
    return msbnb__check_matrix_shape(fn, rows, cols, &n);
}

/* ---------------------------------------------------------------- symmetric */

/* Codes of one row with absmax a (already computed). */
static void sym_row(const msbnb__int_kernels *k, const float *x, int64_t cols, float a, int8_t *q) {
    float f = (1.0f / a) * 127.0f; /* PyTorch's 127.0 / t == t.reciprocal() * 127.0 */
    if (f <= FLT_MAX) {
        k->i8_quant(x, cols, f, q);
        return;
    }
    /* a == 0 (no nonzero finite element) or a so small that 127/a overflows: double precision. */
    if (a == 0.0f) {
        memset(q, 0, (size_t)cols);
        return;
    }
    double fd = 127.0 / (double)a;
    for (int64_t i = 0; i < cols; i++) {
        double v = (double)x[i] * fd;
        v = v != v ? 0.0 : v > 127.0 ? 127.0 : v < -127.0 ? -127.0 : v;
        q[i] = (int8_t)(int)rint(v);
    }
}

/* Tensor-wide max of finite |x|: per-row maxima in parallel, then a max over them (exact in any
 * order, so the result does not depend on the thread count). */
static float tensor_absmax(const msbnb__int_kernels *k, const float *x, int64_t rows, int64_t cols) {
    float m = 0.0f;
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) reduction(max : m)
    for (int64_t r = 0; r < rows; r++) {
        float a = k->absmax(x + r * cols, cols);
        if (a > m) m = a;
    }
    return m;
}

msbnb_status msbnb_quantize_int8(const float *x, int64_t rows, int64_t cols, int per_row, int8_t *codes,
                                 float *absmax) {
    RETURN_IF(!x || !codes || !absmax, MSBNB_ERR_INVALID_ARG, "NULL buffer");
    TRY(check_shape(__func__, rows, cols));
    const msbnb__int_kernels *k = msbnb__int_kernels_get();
    if (!per_row) absmax[0] = tensor_absmax(k, x, rows, cols);
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float a = per_row ? (absmax[r] = k->absmax(xr, cols)) : absmax[0];
        sym_row(k, xr, cols, a, codes + r * cols);
    }
    return MSBNB_OK;
}

void msbnb__dequantize_int8_rows(const int8_t *codes, const float *absmax, int64_t cols, int per_row,
                                 int64_t row0, int64_t nrows, float *y) {
    const msbnb__int_kernels *k = msbnb__int_kernels_get();
    const int nt = msbnb__use_nt_stores(y, (size_t)(nrows * cols) * sizeof(float));
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static)
    for (int64_t i = 0; i < nrows; i++) {
        int64_t r = row0 + i;
        k->i8_dequant(codes + r * cols, cols, per_row ? absmax[r] : absmax[0], y + i * cols, nt);
        msbnb__stream_fence(nt);
    }
}

msbnb_status msbnb_dequantize_int8(const int8_t *codes, const float *absmax, int64_t rows, int64_t cols,
                                   int per_row, float *y) {
    RETURN_IF(!codes || !absmax || !y, MSBNB_ERR_INVALID_ARG, "NULL buffer");
    TRY(check_shape(__func__, rows, cols));
    msbnb__dequantize_int8_rows(codes, absmax, cols, per_row, 0, rows, y);
    return MSBNB_OK;
}

/* ---------------------------------------------------------------- asymmetric */

/* scale and zero point from the finite range [lo, hi] (lo <= 0 <= hi). */
static void asym_params(float lo, float hi, float *scale, int32_t *zp) {
    float s = (float)(((double)hi - (double)lo) / 255.0);
    *scale = s;
    if (s == 0.0f) {
        *zp = 0;
        return;
    }
    float inv = 1.0f / s;
    if (inv <= FLT_MAX) {
        float z = rintf(-lo * inv);
        *zp = (int32_t)(z > 255.0f ? 255.0f : z < 0.0f ? 0.0f : z);
    } else {
        double z = rint(-(double)lo / (double)s);
        *zp = (int32_t)(z > 255.0 ? 255.0 : z < 0.0 ? 0.0 : z);
    }
}

static void asym_row(const msbnb__int_kernels *k, const float *x, int64_t cols, float scale, int32_t zp,
                     uint8_t *q) {
    if (scale == 0.0f) {
        memset(q, 0, (size_t)cols); /* zp is 0 then */
        return;
    }
    float inv = 1.0f / scale;
    if (inv <= FLT_MAX) {
        k->u8_quant(x, cols, inv, (float)zp, q);
        return;
    }
    double invd = 1.0 / (double)scale; /* denormal scale: code in double precision */
    for (int64_t i = 0; i < cols; i++) {
        double v = (double)x[i] * invd;
        v = v != v ? 0.0 : v > 256.0 ? 256.0 : v < -256.0 ? -256.0 : v;
        v = rint(v) + (double)zp;
        q[i] = (uint8_t)(int)(v > 255.0 ? 255.0 : v < 0.0 ? 0.0 : v);
    }
}

msbnb_status msbnb_quantize_int8_asym(const float *x, int64_t rows, int64_t cols, int per_row, uint8_t *codes,
                                      float *scale, int32_t *zero_point) {
    RETURN_IF(!x || !codes || !scale || !zero_point, MSBNB_ERR_INVALID_ARG, "NULL buffer");
    TRY(check_shape(__func__, rows, cols));
    const msbnb__int_kernels *k = msbnb__int_kernels_get();
    if (!per_row) {
        float lo = 0.0f, hi = 0.0f;
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) reduction(min : lo) reduction(max : hi)
        for (int64_t r = 0; r < rows; r++) {
            float l = 0.0f, h = 0.0f;
            k->minmax(x + r * cols, cols, &l, &h);
            if (l < lo) lo = l;
            if (h > hi) hi = h;
        }
        asym_params(lo, hi, &scale[0], &zero_point[0]);
    }
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        int64_t s = per_row ? r : 0;
        if (per_row) {
            float l = 0.0f, h = 0.0f;
            k->minmax(xr, cols, &l, &h);
            asym_params(l, h, &scale[r], &zero_point[r]);
        }
        asym_row(k, xr, cols, scale[s], zero_point[s], codes + r * cols);
    }
    return MSBNB_OK;
}

void msbnb__dequantize_int8_asym_rows(const uint8_t *codes, const float *scale, const int32_t *zero_point,
                                      int64_t cols, int per_row, int64_t row0, int64_t nrows, float *y) {
    const msbnb__int_kernels *k = msbnb__int_kernels_get();
    const int nt = msbnb__use_nt_stores(y, (size_t)(nrows * cols) * sizeof(float));
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static)
    for (int64_t i = 0; i < nrows; i++) {
        int64_t r = row0 + i, s = per_row ? r : 0;
        k->u8_dequant(codes + r * cols, cols, scale[s], zero_point[s], y + i * cols, nt);
        msbnb__stream_fence(nt);
    }
}

msbnb_status msbnb_dequantize_int8_asym(const uint8_t *codes, const float *scale, const int32_t *zero_point,
                                        int64_t rows, int64_t cols, int per_row, float *y) {
    RETURN_IF(!codes || !scale || !zero_point || !y, MSBNB_ERR_INVALID_ARG, "NULL buffer");
    TRY(check_shape(__func__, rows, cols));
    int64_t ns = per_row ? rows : 1;
    for (int64_t s = 0; s < ns; s++)
        RETURN_IF(zero_point[s] < 0 || zero_point[s] > 255, MSBNB_ERR_INVALID_ARG,
                  "zero_point[%lld] = %d outside 0..255", (long long)s, (int)zero_point[s]);
    msbnb__dequantize_int8_asym_rows(codes, scale, zero_point, cols, per_row, 0, rows, y);
    return MSBNB_OK;
}
