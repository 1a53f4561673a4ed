/*
 * fourbit_fixtures.h — fixtures shared by the 4-bit product tests (test_matmul_4bit.c,
 * test_matmul_4bit_fast.c): a format description, its quantized tensor, and the relative error.
 */
#ifndef MSBNB_TESTS_FOURBIT_FIXTURES_H
#define MSBNB_TESTS_FOURBIT_FIXTURES_H

#include <math.h>
#include <stdio.h>

#include <msbnb/quant.h>

typedef struct fmt {
    msbnb_qtype type;
    int dq;
    int block; /* blocksize (NF4/FP4) or group size (INT4) */
} fmt;

/* "nf4+dq/64" etc.; a static buffer (tests are single-threaded). */
static inline const char *fmt_name(fmt f) {
    static char buf[64];
    snprintf(buf, sizeof buf, "%s%s/%d", msbnb_qtype_name(f.type), f.dq ? "+dq" : "", f.block);
    return buf;
}

/* W [rows, cols] quantized to f; NULL (message printed) on failure. The caller frees it. */
static inline msbnb_qtensor *make_w(fmt f, const float *w, int64_t rows, int64_t cols) {
    msbnb_quant_config cfg = msbnb_quant_config_default(f.type);
    cfg.double_quant = f.dq;
    if (f.type == MSBNB_QTYPE_INT4) cfg.group_size = f.block;
    else cfg.blocksize = f.block;
    msbnb_qtensor *q = NULL;
    msbnb_status st = msbnb_quantize(w, rows, cols, &cfg, &q);
    if (st != MSBNB_OK)
        printf("  quantize %s [%lld, %lld]: %s\n", fmt_name(f), (long long)rows, (long long)cols, msbnb_last_error());
    return q;
}

/* make_w, plus the weights' relative L2 error against w (msbnb_estimate_quantization_error) in
 * *werr; NULL (message printed) on failure. */
static inline msbnb_qtensor *make_w_err(fmt f, const float *w, int64_t rows, int64_t cols, double *werr) {
    msbnb_qtensor *q = make_w(f, w, rows, cols);
    msbnb_error_stats st;
    if (q && msbnb_estimate_quantization_error(w, q, &st) != MSBNB_OK) {
        printf("  error estimate %s: %s\n", fmt_name(f), msbnb_last_error());
        msbnb_qtensor_free(q);
        return NULL;
    }
    if (q) *werr = st.relative_error_pct / 100.0;
    return q;
}

/* ||Y - R|| / ||R|| over count elements (R in double). */
static inline double rel_l2(const float *Y, const double *R, int64_t count) {
    double num = 0, den = 0;
    for (int64_t e = 0; e < count; e++) {
        num += ((double)Y[e] - R[e]) * ((double)Y[e] - R[e]);
        den += R[e] * R[e];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

#endif
