/*
 * test_matmul_int8.c — INT8-weight products (EXACT and FAST forward, transposed) on every ISA
 * level of the host, for symmetric/asymmetric × per-row/per-tensor weights.
 *
 * Bounds (u = FLT_EPSILON = 2⁻²³, mag = Σ_k |x_k ŵ_k| (+|bias|), double reference):
 *  EXACT       |Y − Y_ref| ≤ (K + 2)·u·mag           fp32 sums of K products in any order, + bias
 *  FAST        |Y − Y_ref| ≤ (rs/254)·Σ_k|ŵ_k| + (K + 8)·u·(mag + (rs/254)·Σ|ŵ|)
 *              activation codes are x rounded to a grid of step rs/127 (rs = row absmax), so each
 *              activation moves by at most half a step; the integer sum is exact, the epilogue
 *              rounds a few times.
 *  unquantized |Y − Y_f32| ≤ Σ_k |x_k|·|w_k − ŵ_k| + EXACT bound — the format's own error,
 *              reported as a relative figure.
 */
#include "int8_test_util.h"

#include "kernels/int8_kernels.h"

typedef struct shape {
    int64_t n, out, in;
} shape;
static const shape SHAPES[] = {{1, 1, 1}, {1, 5, 63}, {3, 17, 65}, {17, 70, 129}, {5, 130, 300},
                               {3, 1, 1000}, {50, 67, 257}, {2, 9, 4100}, {2, 3, 65600}};
#define N_SHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

typedef struct problem {
    shape s;
    i8_variant v;
    float *w, *wd, *x, *bias; /* w: [out, in] fp32, wd: dequantized, x: [n, in], bias: [out] */
    msbnb_qtensor *q;
} problem;

static void problem_make(problem *p, shape s, i8_variant v, uint64_t seed) {
    test_rng rng = {seed};
    p->s = s;
    p->v = v;
    p->w = falloc((size_t)(s.out * s.in));
    p->wd = falloc((size_t)(s.out * s.in));
    p->x = falloc((size_t)(s.n * s.in));
    p->bias = falloc((size_t)s.out);
    test_fill_normal(&rng, p->w, (size_t)(s.out * s.in), 0.05f);
    /* asymmetric weights get a shifted distribution so the zero point matters */
    if (v.asym)
        for (int64_t i = 0; i < s.out * s.in; i++) p->w[i] += 0.03f;
    test_fill_normal(&rng, p->x, (size_t)(s.n * s.in), 1.0f);
    test_fill_normal(&rng, p->bias, (size_t)s.out, 0.5f);
    p->q = i8_quantize(p->w, s.out, s.in, v);
    i8_dequantize(p->q, p->wd);
}

static void problem_free(problem *p) {
    free(p->w);
    free(p->wd);
    free(p->x);
    free(p->bias);
    i8_free(p->q);
}

/* ---------------------------------------------------------------- EXACT: three-way */

static double worst_rel_format_err = 0;

static void exact_one(msbnb_isa isa, void *ctx) {
    (void)ctx;
    if (isa == MSBNB_ISA_AVX512_BF16) return; /* same INT8 kernel table as AVX512_VNNI */
    for (int vi = 0; vi < 4; vi++)
        for (int si = 0; si < N_SHAPES; si++) {
            problem p;
            shape s = SHAPES[si];
            problem_make(&p, s, I8_VARIANTS[vi], 100 + (uint64_t)si);
            size_t ny = (size_t)(s.n * s.out);
            float *y = falloc(ny);
            double *yr = dalloc(ny), *mag = dalloc(ny), *yf = dalloc(ny), *magf = dalloc(ny);
            CHECK_OK(msbnb__matmul_int8(p.q, p.x, s.n, p.bias, y, MSBNB_PRECISION_EXACT));
            ref_product(p.wd, s.out, s.in, p.x, s.n, p.bias, yr, mag);
            ref_product(p.w, s.out, s.in, p.x, s.n, p.bias, yf, magf);
            double num = 0, den = 0;
            for (int64_t i = 0; i < s.n; i++)
                for (int64_t o = 0; o < s.out; o++) {
                    size_t j = (size_t)(i * s.out + o);
                    double tol = (double)(s.in + 2) * FLT_EPSILON * mag[j];
                    CHECK_MSG_(fabs(y[j] - yr[j]) <= tol, "%s %s [%lld,%lld,%lld] (%lld,%lld): %.9g vs %.9g tol %g",
                               msbnb_isa_name(isa), p.v.name, (long long)s.n, (long long)s.out, (long long)s.in,
                               (long long)i, (long long)o, y[j], yr[j], tol);
                    /* vs the unquantized product: the quantization error of these weights */
                    double qerr = 0;
                    for (int64_t k = 0; k < s.in; k++)
                        qerr += fabs((double)p.x[i * s.in + k]) * fabs((double)p.w[o * s.in + k] - p.wd[o * s.in + k]);
                    CHECK_MSG_(fabs(y[j] - yf[j]) <= qerr + tol + 1e-12, "%s unquantized bound: %.9g vs %.9g",
                               p.v.name, y[j], yf[j]);
                    num += (y[j] - yf[j]) * (y[j] - yf[j]);
                    den += (yf[j] - p.bias[o]) * (yf[j] - p.bias[o]);
                }
            if (den > 0 && s.in >= 64 && sqrt(num / den) > worst_rel_format_err) worst_rel_format_err = sqrt(num / den);
            free(y);
            free(yr);
            free(mag);
            free(yf);
            free(magf);
            problem_free(&p);
        }
}

TEST(exact_three_way_every_isa) {
    test_for_each_isa(exact_one, NULL);
    printf("  exact: worst relative L2 error vs the unquantized fp32 product (in >= 64): %.3g%%\n",
           100 * worst_rel_format_err);
}

/* With X = identity rows, Y[i, o] = 1·ŵ[o, i] exactly (every other term is +0): EXACT mode
 * dequantizes each weight to msbnb_dequantize's value bit for bit, on every ISA and both paths
 * (register path for few rows, panel path for n ≥ 48 on AVX-512 and n ≥ 8 on AVX2). */
static void deq_identity_one(msbnb_isa isa, void *ctx) {
    (void)ctx;
    if (isa == MSBNB_ISA_AVX512_BF16) return; /* same INT8 kernel table as AVX512_VNNI */
    const int64_t out = 37, in = 70;
    for (int vi = 0; vi < 4; vi++) {
        problem p;
        shape s = {in, out, in};
        problem_make(&p, s, I8_VARIANTS[vi], 600 + (uint64_t)vi);
        float *eye = falloc((size_t)(in * in)), *y = falloc((size_t)(in * out));
        for (int64_t i = 0; i < in; i++) eye[i * in + i] = 1.0f;
        const int64_t ns[2] = {5, in};
        for (int t = 0; t < 2; t++) {
            CHECK_OK(msbnb__matmul_int8(p.q, eye, ns[t], NULL, y, MSBNB_PRECISION_EXACT));
            for (int64_t i = 0; i < ns[t]; i++)
                for (int64_t o = 0; o < out; o++)
                    CHECK_MSG_(y[i * out + o] == p.wd[o * in + i], "%s %s n=%lld: y[%lld,%lld] %.9g vs deq %.9g",
                               msbnb_isa_name(isa), p.v.name, (long long)ns[t], (long long)i, (long long)o,
                               y[i * out + o], p.wd[o * in + i]);
        }
        free(eye);
        free(y);
        problem_free(&p);
    }
}

TEST(exact_dequantizes_like_msbnb_dequantize) { test_for_each_isa(deq_identity_one, NULL); }

/* ---------------------------------------------------------------- FAST */

static float *fast_scalar_y[4][N_SHAPES];
static double fast_num[4], fast_den[4]; /* Σ (y_fast − y_exact)², Σ (y_exact − bias)², in ≥ 64 */

static void fast_one(msbnb_isa isa, void *ctx) {
    (void)ctx;
    if (isa == MSBNB_ISA_AVX512_BF16) return; /* same INT8 kernel table as AVX512_VNNI */
    for (int vi = 0; vi < 4; vi++)
        for (int si = 0; si < N_SHAPES; si++) {
            problem p;
            shape s = SHAPES[si];
            problem_make(&p, s, I8_VARIANTS[vi], 200 + (uint64_t)si);
            size_t ny = (size_t)(s.n * s.out);
            float *y = falloc(ny);
            double *yr = dalloc(ny), *mag = dalloc(ny);
            CHECK_OK(msbnb__matmul_int8(p.q, p.x, s.n, p.bias, y, MSBNB_PRECISION_FAST));
            ref_product(p.wd, s.out, s.in, p.x, s.n, p.bias, yr, mag);
            for (int64_t i = 0; i < s.n; i++) {
                float rs = 0;
                for (int64_t k = 0; k < s.in; k++)
                    if (fabsf(p.x[i * s.in + k]) > rs) rs = fabsf(p.x[i * s.in + k]);
                for (int64_t o = 0; o < s.out; o++) {
                    size_t j = (size_t)(i * s.out + o);
                    double wsum = 0;
                    for (int64_t k = 0; k < s.in; k++) wsum += fabs((double)p.wd[o * s.in + k]);
                    double act = (double)rs / 254.0 * wsum * (1 + 1e-6);
                    double tol = act + (double)(s.in + 8) * FLT_EPSILON * (mag[j] + act);
                    if (isa == MSBNB_ISA_SCALAR && s.in >= 64) {
                        fast_num[vi] += (y[j] - yr[j]) * (y[j] - yr[j]);
                        fast_den[vi] += (yr[j] - p.bias[o]) * (yr[j] - p.bias[o]);
                    }
                    CHECK_MSG_(fabs(y[j] - yr[j]) <= tol, "%s fast %s [%lld,%lld,%lld]: %.9g vs %.9g tol %g",
                               msbnb_isa_name(isa), p.v.name, (long long)s.n, (long long)s.out, (long long)s.in,
                               y[j], yr[j], tol);
                }
            }
            /* integer sums are exact and the epilogue is shared C: every ISA gives the same bits */
            if (isa == MSBNB_ISA_SCALAR) {
                fast_scalar_y[vi][si] = y;
                y = NULL;
            } else if (fast_scalar_y[vi][si]) {
                CHECK_MSG_(memcmp(y, fast_scalar_y[vi][si], ny * sizeof(float)) == 0,
                           "%s fast %s shape %d differs from scalar", msbnb_isa_name(isa), p.v.name, si);
            }
            free(y);
            free(yr);
            free(mag);
            problem_free(&p);
        }
}

TEST(fast_bound_and_isa_identical) {
    test_for_each_isa(fast_one, NULL);
    for (int vi = 0; vi < 4; vi++)
        printf("  fast %-11s relative L2 error vs the exact product (same Ŵ, N(0,1) activations): %.3g%%\n",
               I8_VARIANTS[vi].name, 100 * sqrt(fast_num[vi] / fast_den[vi]));
    for (int vi = 0; vi < 4; vi++)
        for (int si = 0; si < N_SHAPES; si++) {
            free(fast_scalar_y[vi][si]);
            fast_scalar_y[vi][si] = NULL;
        }
}

/* ---------------------------------------------------------------- integer dot kernels */

/* Every integer dot kernel the CPU can run, called directly (the dispatch picks only one per
 * level, e.g. AVX-VNNI over vpmaddubsw at the AVX2 level): exact int32 sums, so all must agree
 * with the reference bit for bit — including code −128, which quantize never writes but a
 * checkpoint could hold. */
TEST(dot_kernels_bit_exact) {
    typedef struct { const char *name; msbnb__i8_dot_fn fn; int ok; } dotk;
    msbnb_isa top = msbnb_isa_detected();
    (void)top;
    dotk ks[] = {
        {"ref", msbnb__i8_dot_ref, 1},
#if MSBNB_HAVE_X86
        {"avx2", msbnb__i8_dot_avx2, top >= MSBNB_ISA_AVX2},
        {"avxvnni", msbnb__i8_dot_avxvnni, top >= MSBNB_ISA_AVX2 && msbnb__cpu()->avxvnni},
        {"avx512", msbnb__i8_dot_avx512, top >= MSBNB_ISA_AVX512},
        {"avx512vnni", msbnb__i8_dot_avx512vnni, top >= MSBNB_ISA_AVX512_VNNI},
#endif
    };
    const int nk = (int)(sizeof ks / sizeof ks[0]);
    const int64_t Ks[] = {1, 31, 32, 33, 63, 64, 65, 200, 256, 300, 1000};
    test_rng rng = {900};
    for (int asym = 0; asym < 2; asym++)
        for (size_t ki = 0; ki < 5 * (sizeof Ks / sizeof Ks[0]); ki++) {
            /* m = 9 (tiles and their tails where the few-row loops stop at 8), then 7, 1, 2, 3
             * (the few-row loops: one group of up to 4 rows, and 4 + 3) */
            static const int64_t ms[5] = {9, 7, 1, 2, 3};
            const int64_t K = Ks[ki % (sizeof Ks / sizeof Ks[0])], rows = 11;
            const int64_t m = ms[ki / (sizeof Ks / sizeof Ks[0])];
            uint8_t *codes = (uint8_t *)malloc((size_t)(rows * K));
            int8_t *a = (int8_t *)malloc((size_t)(m * K));
            int32_t asum[9], C0[9 * 11], C1[9 * 11];
            for (int64_t j = 0; j < rows * K; j++) codes[j] = (uint8_t)(test_rng_u64(&rng) & 0xff);
            if (K >= 3) codes[2] = asym ? 255 : 0x80; /* extremes: 255 / −128 */
            for (int64_t i = 0; i < m; i++) {
                asum[i] = 0;
                for (int64_t k = 0; k < K; k++) {
                    int v = (int)(test_rng_u64(&rng) % 255) - 127;
                    if (k == 0 && i == 0) v = -127;
                    a[i * K + k] = (int8_t)v;
                    asum[i] += v;
                }
            }
            msbnb__i8w w = {codes, rows, K, asym, 1, NULL, NULL};
            for (int t = 0; t < nk; t++) {
                if (!ks[t].ok) continue;
                /* o range [1, 11): 10 rows (tails of the 4-row tiles) */
                int32_t *C = t == 0 ? C0 : C1;
                memset(C, 0x55, sizeof C0);
                ks[t].fn(&w, 1, rows, a, K, asum, m, C, 11);
                if (t > 0)
                    for (int j = 0; j < m * 11; j++)
                        if ((j % 11) < 10)
                            CHECK_MSG_(C1[j] == C0[j], "%s asym %d K %lld m %lld: C[%d] %d vs ref %d", ks[t].name,
                                       asym, (long long)K, (long long)m, j, C1[j], C0[j]);
            }
            free(codes);
            free(a);
        }
}

/* ---------------------------------------------------------------- transposed */

static float *t_scalar_dx[4][N_SHAPES];

static void transposed_one(msbnb_isa isa, void *ctx) {
    (void)ctx;
    if (isa == MSBNB_ISA_AVX512_BF16) return; /* same INT8 kernel table as AVX512_VNNI */
    for (int vi = 0; vi < 4; vi++)
        for (int si = 0; si < N_SHAPES; si++) {
            problem p;
            shape s = SHAPES[si];
            problem_make(&p, s, I8_VARIANTS[vi], 300 + (uint64_t)si);
            test_rng rng = {77};
            size_t nx = (size_t)(s.n * s.in);
            float *dy = falloc((size_t)(s.n * s.out)), *dx = falloc(nx), *dx0 = falloc(nx);
            test_fill_normal(&rng, dy, (size_t)(s.n * s.out), 1.0f);
            test_fill_normal(&rng, dx0, nx, 1.0f);
            memcpy(dx, dx0, nx * sizeof(float));
            int acc = si & 1; /* odd shapes accumulate into dx0 */
            CHECK_OK(msbnb__matmul_int8_t(p.q, dy, s.n, dx, acc));
            for (int64_t i = 0; i < s.n; i++)
                for (int64_t k = 0; k < s.in; k++) {
                    double r = acc ? dx0[i * s.in + k] : 0.0, m = fabs(r);
                    for (int64_t o = 0; o < s.out; o++) {
                        double t = (double)dy[i * s.out + o] * p.wd[o * s.in + k];
                        r += t;
                        m += fabs(t);
                    }
                    double got = dx[i * s.in + k], tol = (double)(s.out + 1) * FLT_EPSILON * m;
                    CHECK_MSG_(fabs(got - r) <= tol, "%s transposed %s shape %d acc %d: %.9g vs %.9g tol %g",
                               msbnb_isa_name(isa), p.v.name, si, acc, got, r, tol);
                }
            /* one fused multiply-add chain per element in a fixed order: identical on every ISA */
            if (isa == MSBNB_ISA_SCALAR) {
                t_scalar_dx[vi][si] = dx;
                dx = NULL;
            } else if (t_scalar_dx[vi][si]) {
                CHECK_MSG_(memcmp(dx, t_scalar_dx[vi][si], nx * sizeof(float)) == 0,
                           "%s transposed %s shape %d differs from scalar", msbnb_isa_name(isa), p.v.name, si);
            }
            free(dy);
            free(dx);
            free(dx0);
            problem_free(&p);
        }
}

TEST(transposed_every_isa) {
    test_for_each_isa(transposed_one, NULL);
    for (int vi = 0; vi < 4; vi++)
        for (int si = 0; si < N_SHAPES; si++) {
            free(t_scalar_dx[vi][si]);
            t_scalar_dx[vi][si] = NULL;
        }
}

/* ---------------------------------------------------------------- thread invariance */

TEST(thread_invariance) {
    /* 2 and 3 threads split the forward into 3 output tiles and the transposed product into 2 and
     * 3 column ranges of different widths (the width follows the thread count): same bits. */
    shape s = {9, 130, 1100};
    for (int vi = 0; vi < 4; vi++) {
        problem p;
        problem_make(&p, s, I8_VARIANTS[vi], 400);
        size_t ny = (size_t)(s.n * s.out), nx = (size_t)(s.n * s.in);
        float *y[3][2], *dx[3];
        for (int t = 0; t < 3; t++) {
            msbnb_set_num_threads(t + 1);
            for (int mode = 0; mode < 2; mode++) {
                y[t][mode] = falloc(ny);
                CHECK_OK(msbnb__matmul_int8(p.q, p.x, s.n, p.bias, y[t][mode], (msbnb_precision)mode));
            }
            dx[t] = falloc(nx);
            float *dy = p.x; /* any [n, ≥out] data serves as dY: reuse x's first n·out values */
            float *dyb = falloc((size_t)(s.n * s.out));
            for (size_t j = 0; j < (size_t)(s.n * s.out); j++) dyb[j] = dy[j % nx];
            CHECK_OK(msbnb__matmul_int8_t(p.q, dyb, s.n, dx[t], 0));
            free(dyb);
        }
        msbnb_set_num_threads(0);
        for (int t = 1; t < 3; t++) {
            for (int mode = 0; mode < 2; mode++)
                CHECK_MSG_(memcmp(y[0][mode], y[t][mode], ny * sizeof(float)) == 0, "%s mode %d: %d threads differ",
                           p.v.name, mode, t + 1);
            CHECK_MSG_(memcmp(dx[0], dx[t], nx * sizeof(float)) == 0, "%s transposed: %d threads differ", p.v.name,
                       t + 1);
        }
        for (int t = 0; t < 3; t++) {
            free(y[t][0]);
            free(y[t][1]);
            free(dx[t]);
        }
        problem_free(&p);
    }
}

/* ---------------------------------------------------------------- edge cases */

/* Zero rows of X, an all-zero weight row (absmax 0), n = 0. */
TEST(edges) {
    shape s = {3, 4, 70};
    problem p;
    problem_make(&p, s, I8_VARIANTS[0], 500);
    for (int64_t k = 0; k < s.in; k++) p.x[k] = 0.0f; /* row 0 of X is zero */
    i8_free(p.q);
    for (int64_t k = 0; k < s.in; k++) p.w[2 * s.in + k] = 0.0f; /* weight row 2 is zero */
    p.q = i8_quantize(p.w, s.out, s.in, p.v);
    float y[12];
    for (int mode = 0; mode < 2; mode++) {
        CHECK_OK(msbnb__matmul_int8(p.q, p.x, s.n, p.bias, y, (msbnb_precision)mode));
        for (int64_t o = 0; o < s.out; o++) CHECK(y[o] == p.bias[o]);
        for (int64_t i = 0; i < s.n; i++) CHECK(y[i * s.out + 2] == p.bias[2]);
        for (size_t j = 0; j < 12; j++) CHECK(isfinite(y[j]));
    }
    CHECK_OK(msbnb__matmul_int8(p.q, NULL, 0, NULL, NULL, MSBNB_PRECISION_EXACT));
    CHECK_OK(msbnb__matmul_int8_t(p.q, NULL, 0, NULL, 0));
    problem_free(&p);
}

/* The public entry points route INT8 weights here and validate first. */
TEST(public_api_routes_and_validates) {
    shape s = {3, 20, 77};
    for (int vi = 0; vi < 4; vi++) {
        problem p;
        problem_make(&p, s, I8_VARIANTS[vi], 700 + (uint64_t)vi);
        float y1[60], y2[60], d1[231], d2[231];
        for (int mode = 0; mode < 2; mode++) {
            CHECK_OK(msbnb_matmul(p.q, p.x, s.n, p.bias, y1, (msbnb_precision)mode));
            CHECK_OK(msbnb__matmul_int8(p.q, p.x, s.n, p.bias, y2, (msbnb_precision)mode));
            CHECK(memcmp(y1, y2, sizeof y1) == 0);
        }
        CHECK_OK(msbnb_matmul_t(p.q, y1, s.n, d1, 0));
        CHECK_OK(msbnb__matmul_int8_t(p.q, y1, s.n, d2, 0));
        CHECK(memcmp(d1, d2, sizeof d1) == 0);
        CHECK_STATUS(msbnb_matmul(p.q, NULL, s.n, NULL, y1, MSBNB_PRECISION_EXACT), MSBNB_ERR_INVALID_ARG);
        CHECK(strlen(msbnb_last_error()) > 0);
        CHECK_STATUS(msbnb_matmul(p.q, p.x, s.n, NULL, NULL, MSBNB_PRECISION_EXACT), MSBNB_ERR_INVALID_ARG);
        CHECK_STATUS(msbnb_matmul(NULL, p.x, s.n, NULL, y1, MSBNB_PRECISION_EXACT), MSBNB_ERR_INVALID_ARG);
        CHECK_STATUS(msbnb_matmul_t(p.q, NULL, s.n, d1, 0), MSBNB_ERR_INVALID_ARG);
        problem_free(&p);
    }
}

int main(void) {
    RUN(exact_three_way_every_isa);
    RUN(exact_dequantizes_like_msbnb_dequantize);
    RUN(fast_bound_and_isa_identical);
    RUN(dot_kernels_bit_exact);
    RUN(transposed_every_isa);
    RUN(thread_invariance);
    RUN(edges);
    RUN(public_api_routes_and_validates);
    return test_report();
}
