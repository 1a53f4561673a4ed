/*
 * test_matmul_4bit.c — fused 4-bit products (NF4, FP4, INT4; plain and double-quantized stats).
 *
 * Three-way check for every format, precision and ISA level present:
 *   fused  vs  msbnb_dequantize + a double-precision product  within the floating-point bound
 *        |Δ| <= (K + 3)·u·(Σ|x·w| + |b|)   (u = 2^-24; FAST bf16 adds 2·2^-9 + 2^-17 per product;
 *        FAST int8 (n <= max_n, VNNI) is held to its model in fast_int8_model.h: within the model's
 *        floating-point bound of the model's value, and within that + the model's rounding bound
 *        of the exact product)
 *   fused  vs  the unquantized fp32 weights: the format's error, printed and bounded by the
 *        weight-space relative error of the same tensor (the product cannot be much worse).
 * Plus: tile decoders bit-identical to msbnb_dequantize, every level against the scalar reference,
 * transposed products, bias / no bias, f16/bf16 input, thread-count invariance, bad arguments.
 */
#include <float.h>

#include <msbnb/kernels.h>
#include <msbnb/quant.h>

#include "kernels/matmul_4bit.h"
#include "test.h"
#include "fast_int8_model.h"
#include "fourbit_fixtures.h"

#define U 0x1p-24

/* ---------------------------------------------------------------- fixtures */

/* R[i, o] = Σ_k X[i,k]·D[o,k] (+ b[o]) and A[i, o] = Σ|X·D| + |b|, in double. */
static void ref_product(const float *X, const float *D, const float *b, int64_t n, int64_t out, int64_t in,
                        double *R, double *A) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < out; o++) {
            double s = 0, a = 0;
            for (int64_t k = 0; k < in; k++) {
                double p = (double)X[i * in + k] * (double)D[o * in + k];
                s += p;
                a += fabs(p);
            }
            if (b) {
                s += b[o];
                a += fabs((double)b[o]);
            }
            R[i * out + o] = s;
            A[i * out + o] = a;
        }
}

/* Max over elements of |Y - R| / bound(A); <= 1 passes. */
static double worst_ratio(const float *Y, const double *R, const double *A, int64_t count, double per_unit) {
    double worst = 0;
    for (int64_t e = 0; e < count; e++) {
        double bound = per_unit * A[e] + 1e-37;
        double r = fabs((double)Y[e] - R[e]) / bound;
        if (!(r <= worst)) worst = r; /* NaN makes it fail */
    }
    return worst;
}

static const fmt FORMATS[] = {
    {MSBNB_QTYPE_NF4, 0, 64}, {MSBNB_QTYPE_NF4, 1, 64}, {MSBNB_QTYPE_FP4, 0, 64},  {MSBNB_QTYPE_FP4, 1, 64},
    {MSBNB_QTYPE_NF4, 0, 32}, {MSBNB_QTYPE_FP4, 1, 128}, {MSBNB_QTYPE_INT4, 0, 32}, {MSBNB_QTYPE_INT4, 1, 32},
    {MSBNB_QTYPE_NF4, 1, 256}, {MSBNB_QTYPE_INT4, 0, 128}, {MSBNB_QTYPE_INT4, 1, 64}, {MSBNB_QTYPE_INT4, 0, 64},
};
#define N_FORMATS (int)(sizeof FORMATS / sizeof FORMATS[0])

/* Shapes (n, out, in): n = 1, 3, 17; out = 1; in odd; in not a multiple of the block (rows then
 * start inside a block); several K chunks (in > 512) with a tail; n <= 2 with in a multiple of 128
 * (the streaming kernel), rows not a multiple of its 4-row groups; in > 2048 (several FAST tiles);
 * n = 1 with 131 chunks of 64 (the streaming kernel's 128-chunk scale segments plus an odd tail,
 * rows starting at block 131·r, not 16-aligned for the vector double-quant scale decoder). */
typedef struct shape { int64_t n, out, in; } shape;
static const shape SHAPES[] = {{1, 1, 64},    {3, 5, 100},  {17, 9, 96}, {2, 7, 33}, {1, 18, 1056},
                               {17, 3, 1100}, {6, 21, 64}, {1, 5, 256}, {2, 9, 384}, {1, 1, 128},
                               {4, 5, 2112}, /* FAST's bf16 tiles are 2048 long */
                               {1, 6, 8384},
                               {1, 7, 1088}, {2, 3, 2240}, /* odd chunk counts: FAST int8's half pairs */
                               {2, 300, 64}, {1, 50, 768}}; /* several batches of decoded statistics */
#define N_SHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

static int shape_ok(fmt f, shape s) {
    if (f.type == MSBNB_QTYPE_INT4) return s.in % f.block == 0;
    return 1;
}

/* ---------------------------------------------------------------- decoders */

static void check_decoder(const char *isa, void (*decode)(const msbnb__w4 *, int64_t, int64_t, int64_t, int64_t,
                                                          float *, int64_t)) {
    test_rng rng = {11};
    const shape sh[] = {{0, 5, 100}, {0, 7, 1056}, {0, 3, 96}, {0, 4, 64}, {0, 9, 33}};
    for (int fi = 0; fi < N_FORMATS; fi++)
        for (size_t si = 0; si < sizeof sh / sizeof sh[0]; si++) {
            fmt f = FORMATS[fi];
            shape s = sh[si];
            if (!shape_ok(f, s)) continue;
            float *w = malloc((size_t)(s.out * s.in) * sizeof(float));
            float *d = malloc((size_t)(s.out * s.in) * sizeof(float));
            float *t = malloc((size_t)(s.out * s.in) * sizeof(float));
            test_fill_normal(&rng, w, (size_t)(s.out * s.in), 0.05f);
            msbnb_qtensor *q = make_w(f, w, s.out, s.in);
            CHECK(q != NULL);
            if (q) {
                CHECK_OK(msbnb_dequantize(q, d));
                msbnb__w4 w4;
                msbnb__w4_init(q, &w4);
                /* decode in tiles of 3 rows and 512-column chunks, as the drivers do */
                for (int64_t r0 = 0; r0 < s.out; r0 += 3)
                    for (int64_t k0 = 0; k0 < s.in; k0 += 512) {
                        int64_t nr = s.out - r0 < 3 ? s.out - r0 : 3, kc = s.in - k0 < 512 ? s.in - k0 : 512;
                        decode(&w4, r0, nr, k0, kc, t + r0 * s.in + k0, s.in);
                    }
                int64_t bad = 0;
                for (int64_t e = 0; e < s.out * s.in; e++) bad += memcmp(&t[e], &d[e], sizeof(float)) != 0;
                CHECK_MSG_(bad == 0, "%s decoder, %s [%lld, %lld]: %lld values differ from msbnb_dequantize", isa,
                           fmt_name(f), (long long)s.out, (long long)s.in, (long long)bad);
            }
            msbnb_qtensor_free(q);
            free(w);
            free(d);
            free(t);
        }
}

TEST(decoders_bit_identical_to_dequantize) {
    check_decoder("scalar", msbnb__w4_decode_ref);
#if MSBNB_HAVE_X86
    if (msbnb_isa_detected() >= MSBNB_ISA_AVX2) check_decoder("avx2", msbnb__mm4_avx2.decode);
    if (msbnb_isa_detected() >= MSBNB_ISA_AVX512) check_decoder("avx512", msbnb__mm4_avx512.decode);
#endif
}

/* ---------------------------------------------------------------- three-way, every level */

typedef struct threeway_ctx {
    double worst_exact, worst_fast, worst_vs_ref, worst_int8_model, worst_int8_mode;
    int int8_runs;
} threeway_ctx;

static void threeway_level(msbnb_isa isa, void *vctx) {
    threeway_ctx *ctx = vctx;
    test_rng rng = {2024};
    for (int fi = 0; fi < N_FORMATS; fi++)
        for (int si = 0; si < N_SHAPES; si++) {
            fmt f = FORMATS[fi];
            shape s = SHAPES[si];
            if (!shape_ok(f, s)) continue;
            const int64_t n = s.n, out = s.out, in = s.in;
            float *w = malloc((size_t)(out * in) * sizeof(float)), *d = malloc((size_t)(out * in) * sizeof(float));
            float *x = malloc((size_t)(n * in) * sizeof(float)), *b = malloc((size_t)out * sizeof(float));
            float *y = malloc((size_t)(n * out) * sizeof(float)), *yref = malloc((size_t)(n * out) * sizeof(float));
            double *R = malloc((size_t)(n * out) * sizeof(double)), *A = malloc((size_t)(n * out) * sizeof(double));
            double *A2 = malloc((size_t)(n * out) * sizeof(double)); /* bound weights in units of `unit` */
            double *I8 = malloc((size_t)(n * out) * sizeof(double)), *F8 = malloc((size_t)(n * out) * sizeof(double));
            double *M8 = malloc((size_t)(n * out) * sizeof(double)); /* FAST int8 model: value, fp, mode */
            test_fill_normal(&rng, w, (size_t)(out * in), 0.05f);
            test_fill_normal(&rng, x, (size_t)(n * in), 1.0f);
            test_fill_normal(&rng, b, (size_t)out, 0.5f);
            msbnb_qtensor *q = make_w(f, w, out, in);
            CHECK(q != NULL);
            if (!q) goto next;
            CHECK_OK(msbnb_dequantize(q, d));
            for (int use_bias = 0; use_bias < 2; use_bias++) {
                const float *bb = use_bias ? b : NULL;
                ref_product(x, d, bb, n, out, in, R, A);
                /* the scalar reference at this shape, for the level-vs-reference check */
                msbnb_isa_set(MSBNB_ISA_SCALAR);
                CHECK_OK(msbnb_matmul(q, x, n, bb, yref, MSBNB_PRECISION_EXACT));
                msbnb_isa_set(isa);
                for (int p = 0; p < 2; p++) {
                    msbnb_precision prec = p ? MSBNB_PRECISION_FAST : MSBNB_PRECISION_EXACT;
                    for (int64_t e = 0; e < n * out; e++) y[e] = NAN;
                    CHECK_OK(msbnb_matmul(q, x, n, bb, y, prec));
                    const int int8 = p && fast_int8_applies(isa, q, n);
                    const int bf16 = p && !int8 && n >= 4 && isa >= MSBNB_ISA_AVX512_BF16;
                    double unit = (double)(in + 3) * U + (bf16 ? 2 * 0x1p-9 + 0x1p-17 : 0.0);
                    if (int8) { /* bounds per element: stored into A2 = fp + mode, relative to 1 */
                        fast_int8_model(q, x, n, bb, I8, F8, M8);
                        double rm = 0;
                        for (int64_t e = 0; e < n * out; e++) {
                            double v = fabs((double)y[e] - I8[e]) / F8[e];
                            if (!(v <= rm)) rm = v;
                            A2[e] = (F8[e] + M8[e] + unit * A[e]) / unit; /* |y - R| <= unit·A2 */
                        }
                        CHECK_MSG_(rm <= 1.0, "%s %s fast int8 [%lld,%lld,%lld] bias=%d: |fused - model| is %.3g of the bound",
                                   msbnb_isa_name(isa), fmt_name(f), (long long)n, (long long)out, (long long)in, use_bias, rm);
                        ctx->worst_int8_model = fmax(ctx->worst_int8_model, rm);
                        ctx->int8_runs++;
                    } else {
                        memcpy(A2, A, (size_t)(n * out) * sizeof(double));
                    }
                    double r = worst_ratio(y, R, A2, n * out, unit);
                    if (int8) ctx->worst_int8_mode = fmax(ctx->worst_int8_mode, r);
                    CHECK_MSG_(r <= 1.0, "%s %s %s [%lld,%lld,%lld] bias=%d: |fused - deq·ref| is %.3g of the bound",
                               msbnb_isa_name(isa), fmt_name(f), p ? "fast" : "exact", (long long)n, (long long)out,
                               (long long)in, use_bias, r);
                    if (p) ctx->worst_fast = fmax(ctx->worst_fast, r);
                    else ctx->worst_exact = fmax(ctx->worst_exact, r);
                    /* this level against the scalar reference: both within the bound of the exact value */
                    double rr = 0;
                    for (int64_t e = 0; e < n * out; e++) {
                        double bound = unit * (A2[e] + A[e]) + 1e-37;
                        double v = fabs((double)y[e] - (double)yref[e]) / bound;
                        if (!(v <= rr)) rr = v;
                    }
                    CHECK_MSG_(rr <= 1.0, "%s %s %s: |level - scalar reference| is %.3g of the bound", msbnb_isa_name(isa),
                               fmt_name(f), p ? "fast" : "exact", rr);
                    ctx->worst_vs_ref = fmax(ctx->worst_vs_ref, rr);
                }
            }
        next:
            msbnb_qtensor_free(q);
            free(w);
            free(d);
            free(x);
            free(b);
            free(y);
            free(yref);
            free(R);
            free(A);
            free(A2);
            free(I8);
            free(F8);
            free(M8);
        }
}

TEST(three_way_every_format_mode_level) {
    threeway_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    test_for_each_isa(threeway_level, &ctx);
#if MSBNB_HAVE_X86
    const msbnb_isa cur = msbnb_isa_current();
    if (msbnb__cpu()->avxvnni && cur >= MSBNB_ISA_AVX2) { /* the AVX2 level's plain-AVX2 int8 loops too */
        msbnb__mm4_fast_force_no_avxvnni(1);
        CHECK_OK(msbnb_isa_set(MSBNB_ISA_AVX2));
        threeway_level(MSBNB_ISA_AVX2, &ctx);
        CHECK_OK(msbnb_isa_set(cur));
        msbnb__mm4_fast_force_no_avxvnni(0);
    }
#endif
    printf("  worst |fused - deq·ref| / bound: exact %.3g, fast %.3g; level vs scalar ref %.3g\n", ctx.worst_exact,
           ctx.worst_fast, ctx.worst_vs_ref);
    printf("  FAST int8 (n <= max_n): %d products; worst |fused - model| / fp bound %.3g, |fused - deq·ref| / (mode + fp) "
           "bound %.3g\n", ctx.int8_runs, ctx.worst_int8_model, ctx.worst_int8_mode);
    const msbnb_isa top = msbnb_isa_current(); /* the levels run: up to this one */
    if (top >= MSBNB_ISA_AVX2) CHECK(ctx.int8_runs > 0); /* (the AVX2 level has int8 loops) */
}

/* The format's error: the fused product (current level, both precisions) against the product with
 * the unquantized fp32 weights, on [16, 1024] x [1024 -> 64]. With random activations the weight
 * errors of a row add up in quadrature, so the product's relative L2 error must sit close to the
 * weights' own relative error (msbnb_estimate_quantization_error); FAST adds only ~2^-8 relative. */
TEST(format_error_vs_unquantized) {
    const int64_t n = 16, out = 64, in = 1024;
    test_rng rng = {31};
    float *w = malloc((size_t)(out * in) * sizeof(float)), *x = malloc((size_t)(n * in) * sizeof(float));
    float *y = malloc((size_t)(2 * n * out) * sizeof(float)); /* [2][n, out]: exact, fast */
    double *F = malloc((size_t)(n * out) * sizeof(double)), *FA = malloc((size_t)(n * out) * sizeof(double));
    test_fill_normal(&rng, w, (size_t)(out * in), 0.05f);
    test_fill_normal(&rng, x, (size_t)(n * in), 1.0f);
    ref_product(x, w, NULL, n, out, in, F, FA);
    for (int fi = 0; fi < N_FORMATS; fi++) {
        double werr = 0, perr[2];
        msbnb_qtensor *q = make_w_err(FORMATS[fi], w, out, in, &werr);
        CHECK(q != NULL);
        if (!q) continue;
        for (int p = 0; p < 2; p++) {
            CHECK_OK(msbnb_matmul(q, x, n, NULL, y + p * n * out, p ? MSBNB_PRECISION_FAST : MSBNB_PRECISION_EXACT));
            perr[p] = rel_l2(y + p * n * out, F, n * out);
            CHECK_MSG_(perr[p] >= 0.8 * werr && perr[p] <= 1.25 * werr,
                       "%s: product error %.4f far from the weight error %.4f", fmt_name(FORMATS[fi]), perr[p], werr);
        }
        /* FAST against EXACT: the rounding of activations (and weights) to bf16 alone */
        double num = 0, den = 0;
        for (int64_t e = 0; e < n * out; e++) {
            num += ((double)y[n * out + e] - y[e]) * ((double)y[n * out + e] - y[e]);
            den += (double)y[e] * y[e];
        }
        printf("  %-12s weight rel. error %.4f; product rel. error vs fp32 weights: exact %.4f, fast %.4f; "
               "fast vs exact %.2e (%s)\n",
               fmt_name(FORMATS[fi]), werr, perr[0], perr[1], sqrt(num / den), msbnb_isa_name(msbnb_isa_current()));
        msbnb_qtensor_free(q);
    }
    free(w);
    free(x);
    free(y);
    free(F);
    free(FA);
}

/* ---------------------------------------------------------------- transposed */

static void transposed_level(msbnb_isa isa, void *unused) {
    (void)unused;
    test_rng rng = {77};
    for (int fi = 0; fi < N_FORMATS; fi++)
        for (int si = 0; si < N_SHAPES; si++) {
            fmt f = FORMATS[fi];
            shape s = SHAPES[si];
            if (!shape_ok(f, s)) continue;
            const int64_t n = s.n, out = s.out, in = s.in;
            float *w = malloc((size_t)(out * in) * sizeof(float)), *d = malloc((size_t)(out * in) * sizeof(float));
            float *dy = malloc((size_t)(n * out) * sizeof(float)), *dx0 = malloc((size_t)(n * in) * sizeof(float));
            float *dx = malloc((size_t)(n * in) * sizeof(float));
            double *R = malloc((size_t)(n * in) * sizeof(double)), *A = malloc((size_t)(n * in) * sizeof(double));
            test_fill_normal(&rng, w, (size_t)(out * in), 0.05f);
            test_fill_normal(&rng, dy, (size_t)(n * out), 1.0f);
            test_fill_normal(&rng, dx0, (size_t)(n * in), 0.1f);
            msbnb_qtensor *q = make_w(f, w, out, in);
            CHECK(q != NULL);
            if (q) {
                CHECK_OK(msbnb_dequantize(q, d));
                for (int acc = 0; acc < 2; acc++) {
                    for (int64_t i = 0; i < n; i++)
                        for (int64_t k = 0; k < in; k++) {
                            double sum = acc ? dx0[i * in + k] : 0.0, a = fabs(sum);
                            for (int64_t o = 0; o < out; o++) {
                                double p = (double)dy[i * out + o] * (double)d[o * in + k];
                                sum += p;
                                a += fabs(p);
                            }
                            R[i * in + k] = sum;
                            A[i * in + k] = a;
                        }
                    for (int64_t e = 0; e < n * in; e++) dx[e] = acc ? dx0[e] : NAN; /* overwrite must not read */
                    CHECK_OK(msbnb_matmul_t(q, dy, n, dx, acc));
                    double r = worst_ratio(dx, R, A, n * in, (double)(out + 3) * U);
                    CHECK_MSG_(r <= 1.0, "%s %s [%lld,%lld,%lld] acc=%d: transposed |Δ| is %.3g of the bound",
                               msbnb_isa_name(isa), fmt_name(f), (long long)n, (long long)out, (long long)in, acc, r);
                }
            }
            msbnb_qtensor_free(q);
            free(w);
            free(d);
            free(dy);
            free(dx0);
            free(dx);
            free(R);
            free(A);
        }
}

TEST(transposed_every_format_level) { test_for_each_isa(transposed_level, NULL); }

/* ---------------------------------------------------------------- threads */

static void threads_level(msbnb_isa isa, void *unused) {
    (void)unused;
    test_rng rng = {5};
    const int64_t n = 7, out = 150, in = 1152; /* out: 3 row tiles (64) with a tail; in: 3 K chunks, a multiple of 128 */
    float *w = malloc((size_t)(out * in) * sizeof(float)), *x = malloc((size_t)(n * in) * sizeof(float));
    float *b = malloc((size_t)out * sizeof(float));
    float *y[3], *dx[3];
    for (int t = 0; t < 3; t++) {
        y[t] = malloc((size_t)(n * out) * sizeof(float));
        dx[t] = malloc((size_t)(n * in) * sizeof(float));
    }
    float *dy = malloc((size_t)(n * out) * sizeof(float));
    test_fill_normal(&rng, w, (size_t)(out * in), 0.05f);
    test_fill_normal(&rng, x, (size_t)(n * in), 1.0f);
    test_fill_normal(&rng, b, (size_t)out, 0.5f);
    test_fill_normal(&rng, dy, (size_t)(n * out), 1.0f);
    const fmt fs[] = {{MSBNB_QTYPE_NF4, 1, 64}, {MSBNB_QTYPE_INT4, 0, 64}, {MSBNB_QTYPE_FP4, 0, 64}, {MSBNB_QTYPE_INT4, 0, 96}};
    for (size_t fi = 0; fi < sizeof fs / sizeof fs[0]; fi++) {
        msbnb_qtensor *q = make_w(fs[fi], w, out, in);
        CHECK(q != NULL);
        if (!q) continue;
        for (int p = 0; p < 4; p++) { /* exact, fast, exact with n = 2 and n = 1 (streaming kernels) */
            const int64_t nn = p == 2 ? 2 : p == 3 ? 1 : n;
            for (int t = 0; t < 3; t++) {
                msbnb_set_num_threads(t + 1);
                CHECK_OK(msbnb_matmul(q, x, nn, b, y[t], p == 1 ? MSBNB_PRECISION_FAST : MSBNB_PRECISION_EXACT));
                if (p == 0) CHECK_OK(msbnb_matmul_t(q, dy, n, dx[t], 0));
            }
            for (int t = 1; t < 3; t++) {
                CHECK_MSG_(!memcmp(y[0], y[t], (size_t)(nn * out) * sizeof(float)), "%s %s %s n=%lld: 1 vs %d threads differ",
                           msbnb_isa_name(isa), fmt_name(fs[fi]), p == 1 ? "fast" : "exact", (long long)nn, t + 1);
                if (p == 0)
                    CHECK_MSG_(!memcmp(dx[0], dx[t], (size_t)(n * in) * sizeof(float)),
                               "%s %s transposed: 1 vs %d threads differ", msbnb_isa_name(isa), fmt_name(fs[fi]), t + 1);
            }
        }
        msbnb_qtensor_free(q);
    }
    msbnb_set_num_threads(0);
    for (int t = 0; t < 3; t++) {
        free(y[t]);
        free(dx[t]);
    }
    free(w);
    free(x);
    free(b);
    free(dy);
}

TEST(thread_count_invariance) { test_for_each_isa(threads_level, NULL); }

/* ---------------------------------------------------------------- half-precision input, prepare */

TEST(half_input_equals_converted_f32) {
    test_rng rng = {9};
    /* n > 64: the converter works in row blocks, and a remainder must stay in n's kernel class
     * (66: remainder 2; 80: 16, which on its own would take FAST's int8 loops, not the bf16 tiles) */
    const int64_t n = 80, out = 6, in = 128;
    float w[6 * 128], *x = malloc((size_t)(n * in) * sizeof(float)), *xr = malloc((size_t)(n * in) * sizeof(float));
    uint16_t *xh = malloc((size_t)(n * in) * sizeof(uint16_t));
    float *y1 = malloc((size_t)(n * out) * sizeof(float)), *y2 = malloc((size_t)(n * out) * sizeof(float));
    test_fill_normal(&rng, w, sizeof w / sizeof w[0], 0.05f);
    test_fill_normal(&rng, x, (size_t)(n * in), 1.0f);
    msbnb_qtensor *q = make_w((fmt){MSBNB_QTYPE_NF4, 0, 64}, w, out, in);
    CHECK(q != NULL);
    for (int dt = 1; q && dt <= 2; dt++) {
        if (dt == 1) {
            msbnb_f32_to_f16_array(x, xh, (size_t)(n * in));
            msbnb_f16_to_f32_array(xh, xr, (size_t)(n * in));
        } else {
            msbnb_f32_to_bf16_array(x, xh, (size_t)(n * in));
            msbnb_bf16_to_f32_array(xh, xr, (size_t)(n * in));
        }
        for (int64_t nn = 66; nn <= n; nn += n - 66)
            for (int p = 0; p < 2; p++) {
                const msbnb_precision prec = p ? MSBNB_PRECISION_FAST : MSBNB_PRECISION_EXACT;
                CHECK_OK(msbnb_matmul_ex(q, xh, (msbnb_dtype)dt, nn, NULL, y1, prec));
                CHECK_OK(msbnb_matmul(q, xr, nn, NULL, y2, prec));
                CHECK_MSG_(!memcmp(y1, y2, (size_t)(nn * out) * sizeof(float)), "dtype %d n %lld %s: differs", dt,
                           (long long)nn, p ? "FAST" : "EXACT");
            }
    }
    /* prepare keeps results unchanged */
    if (q) {
        CHECK_OK(msbnb_matmul(q, x, n, NULL, y1, MSBNB_PRECISION_EXACT));
        CHECK_OK(msbnb_qtensor_prepare(q));
        CHECK_OK(msbnb_matmul(q, x, n, NULL, y2, MSBNB_PRECISION_EXACT));
        CHECK(!memcmp(y1, y2, (size_t)(n * out) * sizeof(float)));
    }
    msbnb_qtensor_free(q);
    free(x);
    free(xr);
    free(xh);
    free(y1);
    free(y2);
}

/* ---------------------------------------------------------------- bad arguments */

static void check_msg(const char *want) {
    CHECK_MSG_(strstr(msbnb_last_error(), want) != NULL, "message \"%s\" lacks \"%s\"", msbnb_last_error(), want);
}

TEST(bad_arguments_rejected_with_messages) {
    float w[4 * 64] = {0}, x[64] = {0}, y[4], dx[64];
    for (int i = 0; i < 4 * 64; i++) w[i] = (float)(i % 7) - 3.0f;
    msbnb_qtensor *q = make_w((fmt){MSBNB_QTYPE_NF4, 0, 64}, w, 4, 64);
    msbnb_quant_config c8 = msbnb_quant_config_default(MSBNB_QTYPE_BLOCKWISE8);
    msbnb_qtensor *b8 = NULL;
    CHECK_OK(msbnb_quantize(w, 4, 64, &c8, &b8));
    CHECK_STATUS(msbnb_matmul(NULL, x, 1, NULL, y, MSBNB_PRECISION_EXACT), MSBNB_ERR_INVALID_ARG);
    check_msg("msbnb_matmul: W is NULL");
    CHECK_STATUS(msbnb_matmul(q, NULL, 1, NULL, y, MSBNB_PRECISION_EXACT), MSBNB_ERR_INVALID_ARG);
    check_msg("X or Y is NULL");
    CHECK_STATUS(msbnb_matmul(q, x, 1, NULL, NULL, MSBNB_PRECISION_EXACT), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_matmul(q, x, 0, NULL, y, MSBNB_PRECISION_EXACT), MSBNB_ERR_SHAPE);
    check_msg("n = 0");
    CHECK_STATUS(msbnb_matmul(q, x, -3, NULL, y, MSBNB_PRECISION_EXACT), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_matmul(q, x, (int64_t)1 << 62, NULL, y, MSBNB_PRECISION_EXACT), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_matmul(q, x, 1, NULL, y, (msbnb_precision)7), MSBNB_ERR_INVALID_ARG);
    check_msg("precision 7");
    CHECK_STATUS(msbnb_matmul(b8, x, 1, NULL, y, MSBNB_PRECISION_EXACT), MSBNB_ERR_INVALID_ARG);
    check_msg("blockwise8");
    CHECK_STATUS(msbnb_matmul_ex(q, x, (msbnb_dtype)9, 1, NULL, y, MSBNB_PRECISION_EXACT), MSBNB_ERR_INVALID_ARG);
    check_msg("x_dtype 9");
    CHECK_STATUS(msbnb_matmul_t(q, NULL, 1, dx, 0), MSBNB_ERR_INVALID_ARG);
    check_msg("msbnb_matmul_t: dY or dX is NULL");
    CHECK_STATUS(msbnb_matmul_t(q, y, 0, dx, 0), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_qtensor_prepare(NULL), MSBNB_ERR_INVALID_ARG);
    check_msg("msbnb_qtensor_prepare: W is NULL");
    msbnb_qtensor_free(q);
    msbnb_qtensor_free(b8);
}

int main(void) {
    RUN(decoders_bit_identical_to_dequantize);
    RUN(three_way_every_format_mode_level);
    RUN(format_error_vs_unquantized);
    RUN(transposed_every_format_level);
    RUN(thread_count_invariance);
    RUN(half_input_equals_converted_f32);
    RUN(bad_arguments_rejected_with_messages);
    return test_report();
}
