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

#include "quant/qtensor_internal.h"

/* The four INT8 variants. */
typedef struct i8_variant {
    int asym, per_row;
    const char *name;
} i8_variant;
static const i8_variant I8_VARIANTS[4] = {
    {0, 1, "sym/row"}, {0, 0, "sym/tensor"}, {1, 1, "asym/row"}, {1, 0, "asym/tensor"}};

/* A test-owned INT8 tensor. msbnb_quantize / msbnb_dequantize (quant/) were not in the tree when
 * these tests were written, so the tensor is filled by hand through the internal struct with the
 * rules documented in src/quant/int8.c (and msbnb_qtensor_view in quant.h):
 *   sym:  absmax = max|w| (row or tensor), code = rne(w · (127/absmax)), ŵ = (code·absmax)·(1/127)
 *   asym: scale = (hi − lo)/255 with lo = min(0, min w), hi = max(0, max w), zp = rne(−lo/scale),
 *         code = clamp(rne(w/scale) + zp, 0, 255), ŵ = (float)(code − zp)·scale
 * i8_dequantize is the element rule the EXACT kernels must reproduce bit for bit. */
static inline msbnb_qtensor *i8_quantize(const float *w, int64_t out, int64_t in, i8_variant v) {
    struct msbnb_qtensor *q = (struct msbnb_qtensor *)calloc(1, sizeof *q);
    int64_t ns = v.per_row ? out : 1, span = v.per_row ? in : out * in;
    q->data = (uint8_t *)malloc((size_t)(out * in));
    q->stats = (float *)malloc((size_t)ns * sizeof(float));
    q->zero_point = v.asym ? (int32_t *)malloc((size_t)ns * sizeof(int32_t)) : NULL;
    for (int64_t s = 0; s < ns; s++) {
        const float *x = w + s * span;
        uint8_t *c = q->data + s * span;
        float lo = 0.0f, hi = 0.0f, am = 0.0f;
        for (int64_t k = 0; k < span; k++) {
            if (x[k] < lo) lo = x[k];
            if (x[k] > hi) hi = x[k];
            if (fabsf(x[k]) > am) am = fabsf(x[k]);
        }
        if (!v.asym) {
            float f = am > 0 ? 127.0f / am : 0.0f;
            for (int64_t k = 0; k < span; k++) c[k] = (uint8_t)(int8_t)rintf(x[k] * f);
            q->stats[s] = am;
        } else {
            float scale = (float)(((double)hi - (double)lo) / 255.0);
            float inv = scale > 0 ? 1.0f / scale : 0.0f;
            float zp = rintf(-lo * inv);
            for (int64_t k = 0; k < span; k++) {
                float cv = rintf(x[k] * inv) + zp;
                c[k] = (uint8_t)(cv < 0 ? 0 : cv > 255 ? 255 : cv);
            }
            q->stats[s] = scale;
            q->zero_point[s] = (int32_t)zp;
        }
    }
    q->v.type = MSBNB_QTYPE_INT8;
    q->v.rows = out;
    q->v.cols = in;
    q->v.asymmetric = v.asym;
    q->v.per_row = v.per_row;
    q->v.threshold = 6.0f;
    q->v.data = q->data;
    q->v.data_bytes = (size_t)(out * in);
    q->v.stats = q->stats;
    q->v.n_stats = (size_t)ns;
    q->v.zero_point = q->zero_point;
    return q;
}

static inline void i8_free(msbnb_qtensor *q) {
    if (!q) return;
    free(q->data);
    free(q->stats);
    free(q->zero_point);
    free(q);
}

/* Dequantize the whole tensor into out [rows, cols]. */
static inline void i8_dequantize(const msbnb_qtensor *q, float *outw) {
    const msbnb_qtensor_view *v = &q->v;
    for (int64_t o = 0; o < v->rows; o++)
        for (int64_t k = 0; k < v->cols; k++) {
            int64_t s = v->per_row ? o : 0;
            uint8_t c = v->data[o * v->cols + k];
            outw[o * v->cols + k] = v->asymmetric ? (float)((int32_t)c - v->zero_point[s]) * v->stats[s]
                                                  : ((float)(int8_t)c * v->stats[s]) * (1.0f / 127.0f);
        }
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
