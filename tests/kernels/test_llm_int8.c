/*
 * test_llm_int8.c — LLM.int8(): msbnb_int8_vectorwise_quant golden cases (bitsandbytes'
 * default-backend rule) and msbnb_matmul_int8_lt (decomposition, formula, ISA and thread
 * invariance, bad arguments).
 */
#include "int8_test_util.h"

#include "kernels/int8_kernels.h"

/* ---------------------------------------------------------------- vectorwise quant goldens */

TEST(vectorwise_quant_golden_no_threshold) {
    /* row 0: absmax 2 → factor 63.5: 1 → 63.5 → 64 (tie to even), 0.5 → 31.75 → 32, -2 → -127
     * row 1: absmax 127 → factor 1: 0.5 → 0 (tie to even), 1.5 → 2, 2.5 → 2 (ties to even) */
    const float X[2][4] = {{1.0f, 0.5f, -2.0f, 0.0f}, {0.5f, 1.5f, 2.5f, -127.0f}};
    const int8_t want[2][4] = {{64, 32, -127, 0}, {0, 2, 2, -127}};
    int8_t codes[8];
    float rs[2];
    int32_t cols[4];
    int64_t nout = -1;
    CHECK_OK(msbnb_int8_vectorwise_quant(&X[0][0], 2, 4, 0.0f, codes, rs, cols, &nout));
    CHECK_EQ_INT(nout, 0);
    CHECK(rs[0] == 2.0f && rs[1] == 127.0f);
    for (int j = 0; j < 8; j++) CHECK_EQ_INT(codes[j], want[j / 4][j % 4]);
}

TEST(vectorwise_quant_golden_outliers) {
    /* threshold 6: element (0,1) = 10 and (2,3) = -7 are outliers → columns 1 and 3.
     * Row stats leave out the outlier ELEMENTS only (bnb zeroes A[outliers] before the max): row 1
     * keeps 5.0 from column 3, which is an outlier column but not an outlier element there.
     * Every code in columns 1 and 3 is 0. */
    const float X[3][4] = {{1.0f, 10.0f, -0.5f, 0.25f}, {2.0f, 1.0f, -1.0f, 5.0f}, {0.0f, 0.0f, 3.0f, -7.0f}};
    int8_t codes[12];
    float rs[3];
    int32_t cols[4];
    int64_t nout = -1;
    CHECK_OK(msbnb_int8_vectorwise_quant(&X[0][0], 3, 4, 6.0f, codes, rs, cols, &nout));
    CHECK_EQ_INT(nout, 2);
    CHECK_EQ_INT(cols[0], 1);
    CHECK_EQ_INT(cols[1], 3);
    CHECK(rs[0] == 1.0f);
    CHECK(rs[1] == 5.0f);
    CHECK(rs[2] == 3.0f);
    /* row 0: factor 127: 1 → 127, -0.5 → -63.5 → -64 (tie to even) */
    const int8_t want[12] = {127, 0, -64, 0, /* row 1: factor 25.4: 2 → 50.8 → 51, -1 → -25.4 → -25 */
                             51, 0, -25, 0, 0, 0, 127, 0};
    for (int j = 0; j < 12; j++) CHECK_EQ_INT(codes[j], want[j]);
    /* threshold 0 disables: the same matrix has no outlier columns and full row maxima */
    CHECK_OK(msbnb_int8_vectorwise_quant(&X[0][0], 3, 4, 0.0f, codes, rs, NULL, &nout));
    CHECK_EQ_INT(nout, 0);
    CHECK(rs[0] == 10.0f && rs[2] == 7.0f);
    CHECK_EQ_INT(codes[1], 127);
}

TEST(vectorwise_quant_bad_args) {
    float x[4] = {0};
    int8_t c[4];
    float rs[1];
    CHECK_STATUS(msbnb_int8_vectorwise_quant(NULL, 1, 4, 0, c, rs, NULL, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK(strstr(msbnb_last_error(), "NULL") != NULL);
    CHECK_STATUS(msbnb_int8_vectorwise_quant(x, 1, 4, 0, NULL, rs, NULL, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_int8_vectorwise_quant(x, 0, 4, 0, c, rs, NULL, NULL), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_int8_vectorwise_quant(x, 1, 4, -1.0f, c, rs, NULL, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK(strstr(msbnb_last_error(), "threshold") != NULL);
    CHECK_STATUS(msbnb_int8_vectorwise_quant(x, 1, 4, NAN, c, rs, NULL, NULL), MSBNB_ERR_INVALID_ARG);
    /* NaN is ignored by the row max and coded 0 */
    float xn[3] = {NAN, 1.0f, -2.0f};
    int8_t cn[3];
    CHECK_OK(msbnb_int8_vectorwise_quant(xn, 1, 3, 6.0f, cn, rs, NULL, NULL));
    CHECK(rs[0] == 2.0f && cn[0] == 0 && cn[1] == 64 && cn[2] == -127);
    /* an all-zero row: stats 0, codes 0 (bnb would divide by zero) */
    CHECK_OK(msbnb_int8_vectorwise_quant(x, 1, 4, 0, c, rs, NULL, NULL));
    CHECK(rs[0] == 0.0f && c[0] == 0 && c[3] == 0);
}

/* ---------------------------------------------------------------- the decomposed product */

typedef struct lt_problem {
    int64_t n, out, in;
    float *w, *wd, *x, *bias;
    msbnb_qtensor *q;
} lt_problem;

/* Heavy-tailed activations: N(0,1) plus columns 7, 200, 411 holding ±(20..60) in every row. */
static void lt_make(lt_problem *p, int64_t n, int64_t out, int64_t in, uint64_t seed) {
    test_rng rng = {seed};
    p->n = n, p->out = out, p->in = in;
    p->w = falloc((size_t)(out * in));
    p->wd = falloc((size_t)(out * in));
    p->x = falloc((size_t)(n * in));
    p->bias = falloc((size_t)out);
    test_fill_normal(&rng, p->w, (size_t)(out * in), 0.05f);
    test_fill_normal(&rng, p->x, (size_t)(n * in), 1.0f);
    test_fill_normal(&rng, p->bias, (size_t)out, 0.1f);
    const int64_t oc[3] = {7, 200, 411};
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < 3; j++)
            if (oc[j] < in) {
                double mag = 20.0 + 40.0 * test_rng_uniform(&rng);
                p->x[i * in + oc[j]] = (float)(test_rng_uniform(&rng) < 0.5 ? -mag : mag);
            }
    p->q = i8_quantize(p->w, out, in, I8_VARIANTS[0]);
    i8_dequantize(p->q, p->wd);
}

static void lt_free(lt_problem *p) {
    free(p->w);
    free(p->wd);
    free(p->x);
    free(p->bias);
    i8_free(p->q);
}

static double max_err(const float *y, const double *r, size_t n) {
    double m = 0;
    for (size_t j = 0; j < n; j++)
        if (fabs(y[j] - r[j]) > m) m = fabs(y[j] - r[j]);
    return m;
}

TEST(decomposition_beats_threshold_zero) {
    lt_problem p;
    lt_make(&p, 16, 64, 512, 11);
    size_t ny = (size_t)(p.n * p.out);
    float *y6 = falloc(ny), *y0 = falloc(ny);
    double *r = dalloc(ny), *mag = dalloc(ny);
    CHECK_OK(msbnb_matmul_int8_lt(p.q, p.x, p.n, p.bias, 6.0f, y6));
    CHECK_OK(msbnb_matmul_int8_lt(p.q, p.x, p.n, p.bias, 0.0f, y0));
    ref_product(p.wd, p.out, p.in, p.x, p.n, p.bias, r, mag); /* fp32 product, same Ŵ */
    double e6 = max_err(y6, r, ny), e0 = max_err(y0, r, ny);
    printf("  max |err| vs fp32 (same dequantized W): threshold 6: %.4g, threshold 0: %.4g, ratio %.1fx\n", e6, e0,
           e0 / e6);
    CHECK(e0 >= 5.0 * e6);
    /* and the decomposed product is within its own derived bound: the non-outlier activations
     * move by at most rs/254, the outlier columns are exact up to fp32 rounding */
    int8_t *codes = (int8_t *)malloc((size_t)(p.n * p.in));
    float *rs = falloc((size_t)p.n);
    int64_t nout = 0;
    CHECK_OK(msbnb_int8_vectorwise_quant(p.x, p.n, p.in, 6.0f, codes, rs, NULL, &nout));
    CHECK_EQ_INT(nout, 3);
    for (int64_t i = 0; i < p.n; i++)
        for (int64_t o = 0; o < p.out; o++) {
            double wsum = 0;
            for (int64_t k = 0; k < p.in; k++) wsum += fabs(p.wd[o * p.in + k]);
            double act = rs[i] / 254.0 * wsum;
            size_t j = (size_t)(i * p.out + o);
            double tol = act + (double)(p.in + 8) * FLT_EPSILON * (mag[j] + act);
            CHECK_MSG_(fabs(y6[j] - r[j]) <= tol, "(%lld,%lld) %.9g vs %.9g tol %g", (long long)i, (long long)o, y6[j],
                       r[j], tol);
        }
    free(codes);
    free(rs);
    free(y6);
    free(y0);
    free(r);
    free(mag);
    lt_free(&p);
}

/* The product equals bnb's formula evaluated in the test from msbnb_int8_vectorwise_quant's
 * output: (float)C·(rs·SCB)·6.200124e-05 + bias, then + the fp32 outlier sum. The int8 part is
 * checked alone, bit for bit, on data without outliers. */
static void formula_check(int clamp) {
    lt_problem p;
    lt_make(&p, 5, 33, 450, 12);
    if (clamp) /* no outliers: the whole product is the int8 formula, bit for bit */
        for (int64_t j = 0; j < p.n * p.in; j++) p.x[j] = fmaxf(-5.0f, fminf(5.0f, p.x[j]));
    size_t ny = (size_t)(p.n * p.out);
    float *y = falloc(ny);
    CHECK_OK(msbnb_matmul_int8_lt(p.q, p.x, p.n, p.bias, 6.0f, y));
    int8_t *a = (int8_t *)malloc((size_t)(p.n * p.in));
    float *rs = falloc((size_t)p.n);
    int32_t *cols = (int32_t *)malloc((size_t)p.in * sizeof(int32_t));
    int64_t nout = 0;
    CHECK_OK(msbnb_int8_vectorwise_quant(p.x, p.n, p.in, 6.0f, a, rs, cols, &nout));
    msbnb_qtensor_view view;
    CHECK_OK(msbnb_qtensor_get_view(p.q, &view));
    const int8_t *cb = (const int8_t *)view.data;
    for (int64_t i = 0; i < p.n; i++)
        for (int64_t o = 0; o < p.out; o++) {
            int32_t c = 0;
            for (int64_t k = 0; k < p.in; k++) c += (int32_t)a[i * p.in + k] * cb[o * p.in + k];
            float v = ((float)c * (rs[i] * view.stats[o])) * 6.200124e-05f + p.bias[o];
            double s = 0.0, m = fabs(v);
            for (int64_t j = 0; j < nout; j++) {
                double t = (double)p.x[i * p.in + cols[j]] * p.wd[o * p.in + cols[j]];
                s += t;
                m += fabs(t);
            }
            /* the int8 part is bnb's formula bit for bit; the fp32 outlier sum (sgemm) and its
             * addition round at most (nout + 1) times */
            double tol = (double)(nout + 2) * FLT_EPSILON * m;
            CHECK_MSG_(fabs((double)v + s - y[i * p.out + o]) <= tol, "(%lld,%lld) %.9g vs %.9g tol %g", (long long)i,
                       (long long)o, (double)v + s, y[i * p.out + o], tol);
            if (clamp) CHECK_MSG_(v == y[i * p.out + o], "(%lld,%lld) %.9g vs %.9g", (long long)i, (long long)o, v, y[i * p.out + o]);
        }
    CHECK_EQ_INT(nout, clamp ? 0 : 3);
    free(a);
    free(rs);
    free(cols);
    free(y);
    lt_free(&p);
}

TEST(formula_matches_bnb) {
    formula_check(0);
    formula_check(1);
}

static float *isa_ref_y;
static void lt_isa_one(msbnb_isa isa, void *ctx) {
    lt_problem *p = (lt_problem *)ctx;
    size_t ny = (size_t)(p->n * p->out);
    float *y = falloc(ny);
    CHECK_OK(msbnb_matmul_int8_lt(p->q, p->x, p->n, p->bias, 6.0f, y));
    if (!isa_ref_y) {
        isa_ref_y = y;
        return;
    }
    CHECK_MSG_(memcmp(y, isa_ref_y, ny * sizeof(float)) == 0, "%s differs from scalar", msbnb_isa_name(isa));
    free(y);
}

TEST(isa_and_thread_invariance) {
    const int64_t shapes[][3] = {{1, 1, 1}, {1, 3, 63}, {3, 17, 520}, {17, 65, 129}, {70, 130, 600}};
    for (int si = 0; si < 5; si++) {
        lt_problem p;
        lt_make(&p, shapes[si][0], shapes[si][1], shapes[si][2], 20 + (uint64_t)si);
        isa_ref_y = NULL;
        test_for_each_isa(lt_isa_one, &p);
        size_t ny = (size_t)(p.n * p.out);
        for (int t = 1; t <= 3; t++) {
            float *y = falloc(ny);
            msbnb_set_num_threads(t);
            CHECK_OK(msbnb_matmul_int8_lt(p.q, p.x, p.n, p.bias, 6.0f, y));
            CHECK_MSG_(memcmp(y, isa_ref_y, ny * sizeof(float)) == 0, "shape %d: %d threads differ", si, t);
            free(y);
        }
        msbnb_set_num_threads(0);
        /* threshold 0 is the FAST product of symmetric weights, bit for bit */
        float *y0 = falloc(ny), *yf = falloc(ny);
        CHECK_OK(msbnb_matmul_int8_lt(p.q, p.x, p.n, p.bias, 0.0f, y0));
        CHECK_OK(msbnb__matmul_int8(p.q, p.x, p.n, p.bias, yf, MSBNB_PRECISION_FAST));
        CHECK(memcmp(y0, yf, ny * sizeof(float)) == 0);
        free(y0);
        free(yf);
        free(isa_ref_y);
        isa_ref_y = NULL;
        lt_free(&p);
    }
}

TEST(lt_bad_args) {
    lt_problem p;
    lt_make(&p, 2, 3, 8, 30);
    float y[6];
    CHECK_STATUS(msbnb_matmul_int8_lt(NULL, p.x, 2, NULL, 6.0f, y), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_matmul_int8_lt(p.q, NULL, 2, NULL, 6.0f, y), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_matmul_int8_lt(p.q, p.x, 2, NULL, 6.0f, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_matmul_int8_lt(p.q, p.x, -1, NULL, 6.0f, y), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_matmul_int8_lt(p.q, p.x, 2, NULL, -6.0f, y), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_matmul_int8_lt(p.q, p.x, 2, NULL, INFINITY, y), MSBNB_ERR_INVALID_ARG);
    CHECK_OK(msbnb_matmul_int8_lt(p.q, NULL, 0, NULL, 6.0f, NULL));
    msbnb_qtensor *qa = i8_quantize(p.w, 3, 8, I8_VARIANTS[2]);
    CHECK_STATUS(msbnb_matmul_int8_lt(qa, p.x, 2, NULL, 6.0f, y), MSBNB_ERR_UNSUPPORTED);
    CHECK(strstr(msbnb_last_error(), "asymmetric") != NULL);
    i8_free(qa);
    msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    msbnb_qtensor *q4 = NULL;
    CHECK_OK(msbnb_quantize(p.w, 3, 8, &cfg, &q4));
    CHECK_STATUS(msbnb_matmul_int8_lt(q4, p.x, 2, NULL, 6.0f, y), MSBNB_ERR_INVALID_ARG);
    CHECK(strstr(msbnb_last_error(), "nf4") != NULL);
    msbnb_qtensor_free(q4);
    lt_free(&p);
}

int main(void) {
    RUN(vectorwise_quant_golden_no_threshold);
    RUN(vectorwise_quant_golden_outliers);
    RUN(vectorwise_quant_bad_args);
    RUN(decomposition_beats_threshold_zero);
    RUN(formula_matches_bnb);
    RUN(isa_and_thread_invariance);
    RUN(lt_bad_args);
    return test_report();
}
