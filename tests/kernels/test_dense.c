/*
 * test_dense.c — msbnb_matmul_f32 / msbnb_matmul_f32_t (OpenBLAS sgemm) against a naive double
 * loop, within |Δ| ≤ (K + 2)·u·Σ|x w| (+|bias|, +|old dX|); n = 0, bias, accumulate, bad args.
 * Every ISA level the CPU has: from n = 16 on, AVX-512 runs msbnb's tiled kernels instead of sgemm
 * (shapes with in not a multiple of the 512-wide k chunk, out not a multiple of the 64-row tile).
 */
#include "int8_test_util.h"

static void check_forward(int64_t n, int64_t out, int64_t in, int with_bias, uint64_t seed) {
    test_rng rng = {seed};
    float *w = falloc((size_t)(out * in)), *x = falloc((size_t)(n * in)), *b = falloc((size_t)out);
    float *y = falloc((size_t)(n * out));
    double *r = dalloc((size_t)(n * out)), *m = dalloc((size_t)(n * out));
    test_fill_normal(&rng, w, (size_t)(out * in), 0.1f);
    test_fill_normal(&rng, x, (size_t)(n * in), 1.0f);
    test_fill_normal(&rng, b, (size_t)out, 1.0f);
    CHECK_OK(msbnb_matmul_f32(w, out, in, x, n, with_bias ? b : NULL, y));
    ref_product(w, out, in, x, n, with_bias ? b : NULL, r, m);
    for (int64_t j = 0; j < n * out; j++) {
        double tol = (double)(in + 2) * FLT_EPSILON * m[j];
        CHECK_MSG_(fabs(y[j] - r[j]) <= tol, "[%lld,%lld,%lld] %lld: %.9g vs %.9g", (long long)n, (long long)out,
                   (long long)in, (long long)j, y[j], r[j]);
    }
    free(w), free(x), free(b), free(y), free(r), free(m);
}

static void forward_shapes(msbnb_isa isa, void *ctx) {
    (void)isa, (void)ctx;
    const int64_t shapes[][3] = {{1, 1, 1},    {1, 7, 63},    {3, 17, 65},  {17, 1, 129},
                                 {64, 96, 300}, {16, 65, 513}, {23, 130, 1100}};
    for (int s = 0; s < 7; s++) {
        check_forward(shapes[s][0], shapes[s][1], shapes[s][2], 0, 1 + (uint64_t)s);
        check_forward(shapes[s][0], shapes[s][1], shapes[s][2], 1, 11 + (uint64_t)s);
    }
}

TEST(forward_vs_double) { test_for_each_isa(forward_shapes, NULL); }

static void transposed_shapes(msbnb_isa isa, void *ctx) {
    (void)isa, (void)ctx;
    const int64_t shapes[][3] = {{1, 1, 1}, {3, 17, 65}, {17, 33, 129}, {40, 70, 200}, {16, 65, 513}, {23, 130, 1100}};
    for (int s = 0; s < 6; s++) {
        int64_t n = shapes[s][0], out = shapes[s][1], in = shapes[s][2];
        test_rng rng = {50 + (uint64_t)s};
        float *w = falloc((size_t)(out * in)), *dy = falloc((size_t)(n * out));
        float *dx = falloc((size_t)(n * in)), *dx0 = falloc((size_t)(n * in));
        test_fill_normal(&rng, w, (size_t)(out * in), 0.1f);
        test_fill_normal(&rng, dy, (size_t)(n * out), 1.0f);
        test_fill_normal(&rng, dx0, (size_t)(n * in), 1.0f);
        for (int acc = 0; acc < 2; acc++) {
            memcpy(dx, dx0, (size_t)(n * in) * sizeof(float));
            CHECK_OK(msbnb_matmul_f32_t(w, out, in, dy, n, dx, acc));
            for (int64_t i = 0; i < n; i++)
                for (int64_t k = 0; k < in; k++) {
                    double r = acc ? dx0[i * in + k] : 0.0, m = fabs(r);
                    for (int64_t o = 0; o < out; o++) {
                        double t = (double)dy[i * out + o] * w[o * in + k];
                        r += t;
                        m += fabs(t);
                    }
                    CHECK_MSG_(fabs(dx[i * in + k] - r) <= (double)(out + 2) * FLT_EPSILON * m,
                               "shape %d acc %d (%lld,%lld): %.9g vs %.9g", s, acc, (long long)i, (long long)k,
                               dx[i * in + k], r);
                }
        }
        free(w), free(dy), free(dx), free(dx0);
    }
}

TEST(transposed_vs_double) { test_for_each_isa(transposed_shapes, NULL); }

TEST(bad_args_and_empty) {
    float w[6] = {1, 2, 3, 4, 5, 6}, x[3] = {1, 1, 1}, y[2] = {0, 0};
    CHECK_OK(msbnb_matmul_f32(w, 2, 3, NULL, 0, NULL, NULL));
    CHECK_OK(msbnb_matmul_f32_t(w, 2, 3, NULL, 0, NULL, 0));
    CHECK_STATUS(msbnb_matmul_f32(NULL, 2, 3, x, 1, NULL, y), MSBNB_ERR_INVALID_ARG);
    CHECK(strstr(msbnb_last_error(), "W") != NULL);
    CHECK_STATUS(msbnb_matmul_f32(w, 2, 3, NULL, 1, NULL, y), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_matmul_f32(w, 2, 3, x, 1, NULL, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_matmul_f32(w, 2, 3, x, -1, NULL, y), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_matmul_f32(w, 0, 3, x, 1, NULL, y), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_matmul_f32(w, 2, -3, x, 1, NULL, y), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_matmul_f32(w, (int64_t)1 << 32, 3, x, 1, NULL, y), MSBNB_ERR_UNSUPPORTED);
    CHECK_STATUS(msbnb_matmul_f32_t(w, 2, 3, x, 1, NULL, 0), MSBNB_ERR_INVALID_ARG);
    /* exact small case with bias: y = W·x + b */
    float b[2] = {0.5f, -1.0f};
    CHECK_OK(msbnb_matmul_f32(w, 2, 3, x, 1, b, y));
    CHECK(y[0] == 6.5f && y[1] == 14.0f);
}

/* The chunked split never depends on the thread count: 1, 2 and 3 threads give identical bits
 * (OpenBLAS alone does not guarantee this — its threaded gemv splits the K sum). */
static void thread_invariance_shape(int64_t n, int64_t out, int64_t in) {
    test_rng rng = {77 + (uint64_t)n};
    float *w = falloc((size_t)(out * in)), *x = falloc((size_t)(n * in)), *dy = falloc((size_t)(n * out));
    float *y[3], *dx[3];
    test_fill_normal(&rng, w, (size_t)(out * in), 0.1f);
    test_fill_normal(&rng, x, (size_t)(n * in), 1.0f);
    test_fill_normal(&rng, dy, (size_t)(n * out), 1.0f);
    for (int t = 0; t < 3; t++) {
        y[t] = falloc((size_t)(n * out));
        dx[t] = falloc((size_t)(n * in));
        msbnb_set_num_threads(t + 1);
        CHECK_OK(msbnb_matmul_f32(w, out, in, x, n, NULL, y[t]));
        CHECK_OK(msbnb_matmul_f32_t(w, out, in, dy, n, dx[t], 0));
    }
    msbnb_set_num_threads(0);
    for (int t = 1; t < 3; t++) {
        CHECK(memcmp(y[0], y[t], (size_t)(n * out) * sizeof(float)) == 0);
        CHECK(memcmp(dx[0], dx[t], (size_t)(n * in) * sizeof(float)) == 0);
    }
    for (int t = 0; t < 3; t++) free(y[t]), free(dx[t]);
    free(w), free(x), free(dy);
}

/* sgemm path (n = 5) and, on AVX-512, the tiled path (n = 30: 3 row tiles of W with a partial one,
 * a 512 + 88 column k split, transposed column ranges that follow the thread count) */
static void thread_invariance_shapes(msbnb_isa isa, void *ctx) {
    (void)isa, (void)ctx;
    thread_invariance_shape(5, 700, 300);
    thread_invariance_shape(30, 150, 600);
}

TEST(thread_invariance) { test_for_each_isa(thread_invariance_shapes, NULL); }

int main(void) {
    RUN(forward_vs_double);
    RUN(transposed_vs_double);
    RUN(bad_args_and_empty);
    RUN(thread_invariance);
    return test_report();
}
