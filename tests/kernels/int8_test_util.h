/*
 * int8_test_util.h — INT8 test weights for the product tests (header-only, static helpers).
 *
 * The three-way checks compare the fused product with a double precision product of exactly the
 * dequantized weights (i8_dequantize) and with the unquantized fp32 weights.
 */
#ifndef MSBNB_TESTS_INT8_TEST_UTIL_H
#define MSBNB_TESTS_INT8_TEST_UTIL_H

#include <float.h>

#include "test.h"

#include <msbnb/kernels.h>
#include <msbnb/quant.h>


/* The four INT8 variants. */
typedef struct i8_variant {
    int asym, per_row;
    const char *name;
} i8_variant;
static const i8_variant I8_VARIANTS[4] = {
    {0, 1, "sym/row"}, {0, 0, "sym/tensor"}, {1, 1, "asym/row"}, {1, 0, "asym/tensor"}};

/* Quantize w [out, in] with the library's msbnb_quantize; NULL on failure (reported). */
static inline msbnb_qtensor *i8_quantize(const float *w, int64_t out, int64_t in, i8_variant v) {
    msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
    cfg.asymmetric = v.asym;
    cfg.per_row = v.per_row;
    msbnb_qtensor *q = NULL;
    if (msbnb_quantize(w, out, in, &cfg, &q) != MSBNB_OK) {
        printf("  msbnb_quantize(%s, %lldx%lld) failed: %s\n", v.name, (long long)out, (long long)in,
               msbnb_last_error());
        return NULL;
    }
    return q;
}

static inline void i8_free(msbnb_qtensor *q) { msbnb_qtensor_free(q); }

/* Ŵ [rows, cols] through msbnb_dequantize: the values EXACT mode must use bit for bit. */
static inline void i8_dequantize(const msbnb_qtensor *q, float *outw) {
    if (msbnb_dequantize(q, outw) != MSBNB_OK) printf("  msbnb_dequantize failed: %s\n", msbnb_last_error());
}

/* Double-precision product with a dense weight: y[i, o] = Σ_k x[i, k] w[o, k] (+ bias[o]) and
 * mag[i, o] = Σ_k |x[i, k] w[o, k]| (+ |bias[o]|), the scale of every rounding bound. */
static inline void ref_product(const float *w, int64_t out, int64_t in, const float *x, int64_t n, const float *bias,
                        double *y, double *mag) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < out; o++) {
            double s = bias ? bias[o] : 0.0, m = bias ? fabs(bias[o]) : 0.0;
            for (int64_t k = 0; k < in; k++) {
                double p = (double)x[i * in + k] * (double)w[o * in + k];
                s += p;
                m += fabs(p);
            }
            y[i * out + o] = s;
            mag[i * out + o] = m;
        }
}

static inline float *falloc(size_t n) { return (float *)calloc(n ? n : 1, sizeof(float)); }
static inline double *dalloc(size_t n) { return (double *)calloc(n ? n : 1, sizeof(double)); }

#endif
