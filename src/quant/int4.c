/*
 * int4.c — INT4 per-group quantization along the input dimension, and nibble packing.
 *
 * For a weight [rows, cols] (= [out_features, in_features]) and group_size g (even, divides cols),
 * group j of row r covers x[r, j*g .. j*g+g-1]:
 *   absmax = max |x| over the group's finite elements
 *   scale  = absmax / 7.0f            stored at scales[j * rows + r]   (layout [cols/g, rows])
 *   f      = 7.0f / absmax            the precomputed reciprocal (same pattern as INT8's 127/absmax)
 *   code   = round_half_even(clamp(x * f, -8, 7)), NaN -> 0, ±Inf -> 7 / -8
 *   x̂      = (float)code * scale
 * Since |x| <= absmax, |x * f| <= 7 (1 + 2^-23) and finite codes stay in [-7, 7]: -8 is only
 * produced for -Inf, and the clamp never changes a finite element's code. Round-trip bound:
 * |x - x̂| <= scale/2 + 3 ulp(absmax) (half a step plus float rounding of f, x*f and code*scale).
 *
 * Packing: packed[r, i] = (code[r, 2i] & 0xF) << 4 | (code[r, 2i+1] & 0xF) — first element in the
 * HIGH nibble, codes in two's complement (code -2 is nibble 0xE).
 */
#include "quant/fourbit_internal.h"
#include "quant/int_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- scalar references */

static inline int8_t i4_code(float v) {
    if (v != v) return 0;
    if (v > 7.0f) v = 7.0f;
    if (v < -8.0f) v = -8.0f;
    return (int8_t)(int)rintf(v);
}

void msbnb__i4_quant_ref(const float *x, int64_t n, float f, uint8_t *packed) {
    for (int64_t i = 0; i + 1 < n; i += 2) {
        int8_t a = i4_code(x[i] * f), b = i4_code(x[i + 1] * f);
        packed[i / 2] = (uint8_t)(((unsigned)a & 0xFu) << 4 | ((unsigned)b & 0xFu));
    }
}

/* Sign-extend a 4-bit two's complement nibble. */
static inline int nibble_to_int(unsigned v) { return (int)((v ^ 8u) & 0xFu) - 8; }

void msbnb__i4_dequant_ref(const uint8_t *packed, int64_t n, float scale, float *y, int nt) {
    (void)nt;
    for (int64_t i = 0; i + 1 < n; i += 2) {
        uint8_t b = packed[i / 2];
        y[i] = (float)nibble_to_int(b >> 4) * scale;
        y[i + 1] = (float)nibble_to_int(b & 0xFu) * scale;
    }
}

/* ---------------------------------------------------------------- packing helpers */

int msbnb_int4_group_for(int64_t cols, int requested) {
    if (cols < 2 || cols % 2 != 0 || requested < 2) return 0;
    if (requested >= cols) return cols > INT32_MAX ? 0 : (int)cols;
    if (requested % 2 == 0 && cols % requested == 0) return requested;
    for (int64_t g = requested + 1; g < cols && g <= INT32_MAX; g++)
        if (g % 2 == 0 && cols % g == 0) return (int)g;
    return cols > INT32_MAX ? 0 : (int)cols;
}

msbnb_status msbnb_int4_pack(const int8_t *codes, size_t n, uint8_t *packed) {
    RETURN_IF(!codes || !packed, MSBNB_ERR_INVALID_ARG, "NULL buffer");
    for (size_t i = 0; i < n; i++)
        RETURN_IF(codes[i] < -8 || codes[i] > 7, MSBNB_ERR_INVALID_ARG, "codes[%zu] = %d outside [-8, 7]", i,
                  (int)codes[i]);
    for (size_t i = 0; i < n; i += 2) {
        unsigned hi = (unsigned)codes[i] & 0xFu;
        unsigned lo = i + 1 < n ? (unsigned)codes[i + 1] & 0xFu : 0u; /* odd n: pad with code 0 */
        packed[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return MSBNB_OK;
}

msbnb_status msbnb_int4_unpack(const uint8_t *packed, size_t n, int8_t *codes) {
    RETURN_IF(!codes || !packed, MSBNB_ERR_INVALID_ARG, "NULL buffer");
    for (size_t i = 0; i < n; i++) {
        uint8_t b = packed[i / 2];
        codes[i] = (int8_t)nibble_to_int(i % 2 == 0 ? (unsigned)(b >> 4) : (unsigned)(b & 0xFu));
    }
    return MSBNB_OK;
}

/* ---------------------------------------------------------------- drivers */

static msbnb_status check_int4_args(const char *fn, int64_t rows, int64_t cols, int group_size) {
    size_t n;
    TRY(msbnb__check_matrix_shape(fn, rows, cols, &n));
    if (group_size <= 0 || group_size % 2 != 0)
        return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "group_size %d must be positive and even", group_size);
    if (cols % group_size != 0)
        return msbnb__fail(MSBNB_ERR_SHAPE, fn, "group_size %d does not divide cols %lld", group_size,
                           (long long)cols);
    return MSBNB_OK;
}

/* Codes of one group with absmax a; f overflow (a == 0 or tiny) handled in double precision. */
static void group_quant(const msbnb__int_kernels *k, const float *x, int64_t g, float a, uint8_t *packed) {
    float f = 7.0f / a;
    if (f <= FLT_MAX) {
        k->i4_quant(x, g, f, packed);
        return;
    }
    if (a == 0.0f) {
        memset(packed, 0, (size_t)(g / 2));
        return;
    }
    double fd = 7.0 / (double)a;
    for (int64_t i = 0; i < g; i += 2) {
        unsigned nib[2];
        for (int j = 0; j < 2; j++) {
            double v = (double)x[i + j] * fd;
            v = v != v ? 0.0 : v > 7.0 ? 7.0 : v < -8.0 ? -8.0 : v;
            nib[j] = (unsigned)(int)rint(v) & 0xFu;
        }
        packed[i / 2] = (uint8_t)(nib[0] << 4 | nib[1]);
    }
}

msbnb_status msbnb_quantize_int4(const float *x, int64_t rows, int64_t cols, int group_size, uint8_t *packed,
                                 float *scales) {
    RETURN_IF(!x || !packed || !scales, MSBNB_ERR_INVALID_ARG, "NULL buffer");
    TRY(check_int4_args(__func__, rows, cols, group_size));
    const msbnb__int_kernels *k = msbnb__int_kernels_get();
    int64_t ng = cols / group_size;
    /* One task per row: the row's packed bytes and its column of scales are disjoint from others. */
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        /* Groups in chunks of 64: all maxima first, then all codes, so the reduction -> division
         * -> quantize chain of one group overlaps with the work of the others. */
        float amax[64];
        for (int64_t j0 = 0; j0 < ng; j0 += 64) {
            int64_t nj = ng - j0 < 64 ? ng - j0 : 64;
            for (int64_t j = 0; j < nj; j++) amax[j] = k->absmax(x + r * cols + (j0 + j) * group_size, group_size);
            for (int64_t j = 0; j < nj; j++) {
                int64_t c0 = (j0 + j) * group_size;
                scales[(j0 + j) * rows + r] = amax[j] / 7.0f;
                group_quant(k, x + r * cols + c0, group_size, amax[j], packed + (r * cols + c0) / 2);
            }
        }
    }
    return MSBNB_OK;
}

void msbnb__dequantize_int4_rows(const uint8_t *packed, const float *scales, int64_t rows, int64_t cols,
                                 int group_size, int64_t row0, int64_t nrows, float *y) {
    const msbnb__int_kernels *k = msbnb__int_kernels_get();
    int64_t ng = cols / group_size;
    const int nt = msbnb__use_nt_stores(y, (size_t)(nrows * cols) * sizeof(float));
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static)
    for (int64_t i = 0; i < nrows; i++) {
        int64_t r = row0 + i;
        for (int64_t j = 0; j < ng; j++)
            k->i4_dequant(packed + (r * cols + j * group_size) / 2, group_size, scales[j * rows + r],
                          y + i * cols + j * group_size, nt);
        msbnb__stream_fence(nt); /* once per row: a fence per group would cost more than the stores */
    }
}

msbnb_status msbnb_dequantize_int4(const uint8_t *packed, const float *scales, int64_t rows, int64_t cols,
                                   int group_size, float *y) {
    RETURN_IF(!packed || !scales || !y, MSBNB_ERR_INVALID_ARG, "NULL buffer");
    TRY(check_int4_args(__func__, rows, cols, group_size));
    msbnb__dequantize_int4_rows(packed, scales, rows, cols, group_size, 0, rows, y);
    return MSBNB_OK;
}
