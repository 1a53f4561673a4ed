/*
 * test_onednn.c — the oneDNN engine (src/kernels/onednn*.c), at the ONEDNN level where this build
 * and CPU have it (else each test says it skipped and checks that the level is refused):
 *   - 4-bit products on oneDNN (every 4-bit format, plain and double-quantized statistics; shapes
 *     with partial tiles in every direction) within the floating-point bound of the exact product
 *     of the dequantized weights, |Δ| <= (K + 3)·u·Σ|x·w|, forward and transposed (overwrite and
 *     accumulate), and bit-identical for 1, 2 and 3 threads — through the public calls where the
 *     dispatcher picks the engine, and the forward tile path called directly (this host's
 *     dispatcher keeps msbnb's forward, bf16 hosts use it);
 *   - bf16 products (CPUs with native bf16 dot products only): within the stated bound
 *     |Δ| <= (2·2^-9 + 2^-17 + (K + 3)·u)·Σ|x·w| of the exact product (x and w each rounded to
 *     bf16, products and sums in fp32);
 *   - bf16 numerics at every level (msbnb__matmul_bf16, msbnb_matmul_t_ex FAST: native or on fp32
 *     hardware): within that bound of the exact product, and within (K + 3)·u·Σ|r(x)·r(w)| + 2^-17 of
 *     the exact product of the bf16-rounded operands r(x), r(w) (so the rounding is really there);
 *   - dense bf16 products (the output matrix in bf16 training): the same two bounds, thread
 *     invariance, through native bf16 or oneDNN's f32 tiles on rounded operands;
 *   - the engine was really reached (its call counter moved), and the impl string is named.
 */
#include <msbnb/kernels.h>
#include <msbnb/quant.h>

#include "kernels/kernels_internal.h"
#include "kernels/onednn_matmul.h"
#include "test.h"
#include "fourbit_fixtures.h"

#define U 0x1p-24

static const fmt FORMATS[] = {
    {MSBNB_QTYPE_NF4, 0, 64}, {MSBNB_QTYPE_NF4, 1, 64}, {MSBNB_QTYPE_FP4, 1, 128}, {MSBNB_QTYPE_INT4, 0, 100},
    {MSBNB_QTYPE_INT4, 1, 50}, /* INT4 groups divide in = 1100 */
};
#define N_FORMATS (int)(sizeof FORMATS / sizeof FORMATS[0])

static uint64_t rng_state = 99;
static float frand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 11) * 0x1p-53 * 2.0 - 1.0);
}

/* |Y - exact| / bound, worst element; the exact value and Σ|terms| in double from D = deq(W). For
 * the transposed product (t = 1) Y is dX[n, in] and the sum runs over out. */
static double worst(const float *Y, const float *X, const float *D, const float *Y0, int64_t n, int64_t out,
                    int64_t in, int t, double unit) {
    double w = 0;
    const int64_t cols = t ? in : out, K = t ? out : in;
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < cols; c++) {
            double s = Y0 ? Y0[i * cols + c] : 0.0, a = fabs(s);
            for (int64_t k = 0; k < K; k++) {
                const double p = t ? (double)X[i * out + k] * D[k * in + c] : (double)X[i * in + k] * D[c * in + k];
                s += p, a += fabs(p);
            }
            const double r = fabs((double)Y[i * cols + c] - s) / (unit * a + 1e-37);
            if (!(r <= w)) w = r;
        }
    return w;
}

TEST(level_available_or_refused) {
    printf("  %s; f32 impl %s\n", msbnb__od_version(),
           msbnb__od_impl(&(msbnb__od_gemm){MSBNB__OD_F32, 64, 64, 64, 64, 64, 64, 1, 0}));
    if (!msbnb_onednn_available()) {
        CHECK_STATUS(msbnb_isa_set(MSBNB_ISA_ONEDNN), MSBNB_ERR_UNSUPPORTED);
        printf("  skipped: no oneDNN level in this build / on this CPU\n");
        return;
    }
    CHECK(msbnb__od_has(MSBNB__OD_F32));
}

/* n rows through a product big enough for the engine (forward: n >= 256 on AVX2), partial tiles in
 * every direction (out 300 = 256 + 44, in 1100 = 1024 + 76 = 4·256 + 76). */
TEST(products_bound_and_thread_invariance) {
    if (!msbnb_onednn_available()) return;
    const msbnb_isa prev = msbnb_isa_current();
    CHECK_OK(msbnb_isa_set(MSBNB_ISA_ONEDNN));
    const int64_t n = 300, out = 300, in = 1100;
    float *w = malloc((size_t)(out * in) * sizeof(float)), *d = malloc((size_t)(out * in) * sizeof(float));
    float *x = malloc((size_t)(n * in) * sizeof(float)), *dy = malloc((size_t)(n * out) * sizeof(float));
    float *y[3], *dx[3], *dx0 = malloc((size_t)(n * in) * sizeof(float));
    for (int t = 0; t < 3; t++) {
        y[t] = malloc((size_t)(n * out) * sizeof(float));
        dx[t] = malloc((size_t)(n * in) * sizeof(float));
    }
    for (int64_t e = 0; e < out * in; e++) w[e] = 0.05f * frand();
    for (int64_t e = 0; e < n * in; e++) x[e] = frand(), dx0[e] = 0.1f * frand();
    for (int64_t e = 0; e < n * out; e++) dy[e] = frand();
    double wf = 0, wt = 0;
    const msbnb__mm4_kernels *kern = NULL;
#if MSBNB_HAVE_X86
    kern = msbnb_isa_detected() >= MSBNB_ISA_AVX512 ? &msbnb__mm4_avx512 : &msbnb__mm4_avx2;
#endif
    for (int fi = 0; fi < N_FORMATS; fi++) {
        msbnb_qtensor *q = make_w(FORMATS[fi], w, out, in);
        CHECK(q != NULL);
        if (!q) continue;
        CHECK_OK(msbnb_dequantize(q, d));
        for (int acc = 0; acc < 2; acc++) {
            const int direct = acc == 1 && kern; /* the second pass drives the forward tile path itself */
            const int64_t calls0 = msbnb__od_calls();
            for (int t = 0; t < 3; t++) {
                msbnb_set_num_threads(t + 1);
                if (direct) {
                    msbnb__w4 w4;
                    msbnb__w4_init(q, &w4);
                    CHECK_OK(msbnb__matmul_4bit_onednn(kern, &w4, x, n, NULL, y[t], MSBNB__OD_F32, 0));
                } else {
                    CHECK_OK(msbnb_matmul(q, x, n, NULL, y[t], MSBNB_PRECISION_EXACT));
                }
                if (acc) memcpy(dx[t], dx0, (size_t)(n * in) * sizeof(float));
                CHECK_OK(msbnb_matmul_t(q, dy, n, dx[t], acc));
            }
            msbnb_set_num_threads(0);
            CHECK_MSG_(msbnb__od_calls() > calls0, "%s: the products did not reach oneDNN", fmt_name(FORMATS[fi]));
            for (int t = 1; t < 3; t++) {
                CHECK_MSG_(!memcmp(y[0], y[t], (size_t)(n * out) * sizeof(float)), "%s%s: forward differs at %d threads",
                           fmt_name(FORMATS[fi]), direct ? " (oneDNN tiles)" : "", t + 1);
                CHECK_MSG_(!memcmp(dx[0], dx[t], (size_t)(n * in) * sizeof(float)),
                           "%s acc=%d: transposed differs at %d threads", fmt_name(FORMATS[fi]), acc, t + 1);
            }
            const double rf = worst(y[0], x, d, NULL, n, out, in, 0, (double)(in + 3) * U);
            const double rt = worst(dx[0], dy, d, acc ? dx0 : NULL, n, out, in, 1, (double)(out + 3) * U);
            CHECK_MSG_(rf <= 1.0, "%s: forward |Δ| is %.3g of the bound", fmt_name(FORMATS[fi]), rf);
            CHECK_MSG_(rt <= 1.0, "%s acc=%d: transposed |Δ| is %.3g of the bound", fmt_name(FORMATS[fi]), acc, rt);
            wf = fmax(wf, rf), wt = fmax(wt, rt);
        }
        msbnb_qtensor_free(q);
    }
    printf("  worst |Δ| / fp32 bound: forward %.3g, transposed %.3g (%s)\n", wf, wt, msbnb__od_version());
    for (int t = 0; t < 3; t++) free(y[t]), free(dx[t]);
    free(w), free(d), free(x), free(dy), free(dx0);
    msbnb_isa_set(prev);
}

/* FAST products in bf16 on oneDNN (native bf16 CPUs): the bf16 bound against the exact product. */
TEST(bf16_products_bound) {
    if (!msbnb_onednn_available() || !msbnb__od_has(MSBNB__OD_BF16)) {
        printf("  skipped: no native bf16 oneDNN matmul on this CPU (%s)\n", msbnb__od_version());
        return;
    }
    const msbnb_isa prev = msbnb_isa_current();
    CHECK_OK(msbnb_isa_set(MSBNB_ISA_ONEDNN));
    const int64_t n = 64, out = 300, in = 1100;
    float *w = malloc((size_t)(out * in) * sizeof(float)), *d = malloc((size_t)(out * in) * sizeof(float));
    float *x = malloc((size_t)(n * in) * sizeof(float)), *y = malloc((size_t)(n * out) * sizeof(float));
    for (int64_t e = 0; e < out * in; e++) w[e] = 0.05f * frand();
    for (int64_t e = 0; e < n * in; e++) x[e] = frand();
    for (int fi = 0; fi < N_FORMATS; fi++) {
        msbnb_qtensor *q = make_w(FORMATS[fi], w, out, in);
        CHECK(q != NULL);
        if (!q) continue;
        CHECK_OK(msbnb_dequantize(q, d));
        const int64_t calls0 = msbnb__od_calls();
        CHECK_OK(msbnb_matmul(q, x, n, NULL, y, MSBNB_PRECISION_FAST));
        CHECK(msbnb__od_calls() > calls0);
        const double r = worst(y, x, d, NULL, n, out, in, 0, 2 * 0x1p-9 + 0x1p-17 + (double)(in + 3) * U);
        CHECK_MSG_(r <= 1.0, "%s: bf16 |Δ| is %.3g of the bound", fmt_name(FORMATS[fi]), r);
        printf("  %s bf16: worst |Δ| / bound %.3g\n", fmt_name(FORMATS[fi]), r);
        msbnb_qtensor_free(q);
    }
    free(w), free(d), free(x), free(y);
    msbnb_isa_set(prev);
}

static float round_bf16(float x) { return msbnb_bf16_to_f32(msbnb_f32_to_bf16(x)); }

typedef struct bf16_ctx {
    double worst_exact, worst_rounded;
} bf16_ctx;

static void bf16_level(msbnb_isa simd, void *vctx) {
    bf16_ctx *ctx = vctx;
    const int64_t n = 64, out = 300, in = 1100;
    float *w = malloc((size_t)(out * in) * sizeof(float)), *d = malloc((size_t)(out * in) * sizeof(float));
    float *dr = malloc((size_t)(out * in) * sizeof(float)), *x = malloc((size_t)(n * in) * sizeof(float));
    float *xr = malloc((size_t)(n * in) * sizeof(float)), *y = malloc((size_t)(n * out) * sizeof(float));
    float *dy = malloc((size_t)(n * out) * sizeof(float)), *dyr = malloc((size_t)(n * out) * sizeof(float));
    float *dx = malloc((size_t)(n * in) * sizeof(float));
    for (int64_t e = 0; e < out * in; e++) w[e] = 0.05f * frand();
    for (int64_t e = 0; e < n * in; e++) x[e] = frand(), xr[e] = round_bf16(x[e]);
    for (int64_t e = 0; e < n * out; e++) dy[e] = frand(), dyr[e] = round_bf16(dy[e]);
    const double bf = 2 * 0x1p-9 + 0x1p-17;
    for (int fi = 0; fi < N_FORMATS; fi++) {
        msbnb_qtensor *q = make_w(FORMATS[fi], w, out, in);
        CHECK(q != NULL);
        if (!q) continue;
        CHECK_OK(msbnb_dequantize(q, d));
        for (int64_t e = 0; e < out * in; e++) dr[e] = round_bf16(d[e]);
        CHECK_OK(msbnb__matmul_bf16(q, x, n, NULL, y));
        CHECK_OK(msbnb_matmul_t_ex(q, dy, n, dx, 0, MSBNB_PRECISION_FAST));
        const double r[4] = {worst(y, x, d, NULL, n, out, in, 0, bf + (double)(in + 3) * U),
                             worst(dx, dy, d, NULL, n, out, in, 1, bf + (double)(out + 3) * U),
                             worst(y, xr, dr, NULL, n, out, in, 0, (double)(in + 3) * U + 0x1p-17),
                             worst(dx, dyr, dr, NULL, n, out, in, 1, (double)(out + 3) * U + 0x1p-17)};
        CHECK_MSG_(r[0] <= 1 && r[1] <= 1, "%s %s: bf16 |Δ| vs exact is %.3g / %.3g of the bound",
                   msbnb_isa_name(msbnb_isa_current()), fmt_name(FORMATS[fi]), r[0], r[1]);
        CHECK_MSG_(r[2] <= 1 && r[3] <= 1, "%s %s: |Δ| vs the rounded operands' product is %.3g / %.3g of the bound",
                   msbnb_isa_name(msbnb_isa_current()), fmt_name(FORMATS[fi]), r[2], r[3]);
        ctx->worst_exact = fmax(ctx->worst_exact, fmax(r[0], r[1]));
        ctx->worst_rounded = fmax(ctx->worst_rounded, fmax(r[2], r[3]));
        msbnb_qtensor_free(q);
    }
    (void)simd;
    free(w), free(d), free(dr), free(x), free(xr), free(y), free(dy), free(dyr), free(dx);
}

TEST(bf16_numerics_every_level) {
    bf16_ctx ctx = {0, 0};
    test_for_each_isa(bf16_level, &ctx);
    printf("  worst |Δ| / bound: vs exact %.3g, vs the bf16-rounded operands' fp32 product %.3g\n", ctx.worst_exact,
           ctx.worst_rounded);
}

/* The dense bf16 products (the output matrix in bf16 training, msbnb__matmul_f32_bf16 / _t_bf16):
 * native oneDNN bf16 tiles where the CPU has them, else oneDNN's f32 tiles on rounded operands.
 * Both within the bf16 bound of the exact product and within the fp32 bound of the rounded
 * operands' product (so the rounding is there), identical for 1, 2 and 3 threads. Shapes with
 * partial tiles (out 300, in 1100), overwrite and accumulate. */
TEST(dense_bf16_bound_and_thread_invariance) {
    if (!msbnb_onednn_available()) return;
    const msbnb_isa prev = msbnb_isa_current();
    CHECK_OK(msbnb_isa_set(MSBNB_ISA_ONEDNN));
    const int64_t n = 40, out = 300, in = 1100;
    float *w = malloc((size_t)(out * in) * sizeof(float)), *wr = malloc((size_t)(out * in) * sizeof(float));
    float *x = malloc((size_t)(n * in) * sizeof(float)), *xr = malloc((size_t)(n * in) * sizeof(float));
    float *dy = malloc((size_t)(n * out) * sizeof(float)), *dyr = malloc((size_t)(n * out) * sizeof(float));
    float *dx0 = malloc((size_t)(n * in) * sizeof(float));
    float *y[3], *dx[3];
    for (int t = 0; t < 3; t++) y[t] = malloc((size_t)(n * out) * sizeof(float)), dx[t] = malloc((size_t)(n * in) * sizeof(float));
    for (int64_t e = 0; e < out * in; e++) w[e] = 0.05f * frand(), wr[e] = round_bf16(w[e]);
    for (int64_t e = 0; e < n * in; e++) x[e] = frand(), xr[e] = round_bf16(x[e]), dx0[e] = 0.1f * frand();
    for (int64_t e = 0; e < n * out; e++) dy[e] = frand(), dyr[e] = round_bf16(dy[e]);
    const double bf = 2 * 0x1p-9 + 0x1p-17;
    double worst_exact = 0, worst_rounded = 0;
    for (int acc = 0; acc < 2; acc++) {
        const int64_t calls0 = msbnb__od_calls();
        for (int t = 0; t < 3; t++) {
            msbnb_set_num_threads(t + 1);
            CHECK_OK(msbnb__matmul_f32_bf16(w, out, in, x, n, NULL, y[t]));
            if (acc) memcpy(dx[t], dx0, (size_t)(n * in) * sizeof(float));
            CHECK_OK(msbnb__matmul_f32_t_bf16(w, out, in, dy, n, dx[t], acc));
        }
        msbnb_set_num_threads(0);
        CHECK_MSG_(msbnb__od_calls() > calls0, "the dense bf16 products did not reach oneDNN");
        for (int t = 1; t < 3; t++) {
            CHECK_MSG_(!memcmp(y[0], y[t], (size_t)(n * out) * sizeof(float)), "dense bf16 forward differs at %d threads", t + 1);
            CHECK_MSG_(!memcmp(dx[0], dx[t], (size_t)(n * in) * sizeof(float)), "dense bf16 dX differs at %d threads", t + 1);
        }
        /* the accumulated start value enters unrounded: its term is exact, so only the products count */
        const double r[4] = {worst(y[0], x, w, NULL, n, out, in, 0, bf + (double)(in + 3) * U),
                             worst(dx[0], dy, w, acc ? dx0 : NULL, n, out, in, 1, bf + (double)(out + 3) * U),
                             worst(y[0], xr, wr, NULL, n, out, in, 0, (double)(in + 3) * U + 0x1p-17),
                             worst(dx[0], dyr, wr, acc ? dx0 : NULL, n, out, in, 1, (double)(out + 3) * U + 0x1p-17)};
        CHECK_MSG_(r[0] <= 1 && r[1] <= 1, "acc=%d: dense bf16 |Δ| vs exact is %.3g / %.3g of the bound", acc, r[0], r[1]);
        CHECK_MSG_(r[2] <= 1 && r[3] <= 1, "acc=%d: |Δ| vs the rounded operands' product is %.3g / %.3g of the bound",
                   acc, r[2], r[3]);
        worst_exact = fmax(worst_exact, fmax(r[0], r[1]));
        worst_rounded = fmax(worst_rounded, fmax(r[2], r[3]));
    }
    printf("  dense bf16 (%s): worst |Δ| / bound vs exact %.3g, vs the rounded operands' product %.3g\n",
           msbnb__od_has(MSBNB__OD_BF16) ? "native oneDNN bf16" : "oneDNN f32 on rounded operands", worst_exact,
           worst_rounded);
    for (int t = 0; t < 3; t++) free(y[t]), free(dx[t]);
    free(w), free(wr), free(x), free(xr), free(dy), free(dyr), free(dx0);
    msbnb_isa_set(prev);
}

int main(void) {
    RUN(level_available_or_refused);
    RUN(products_bound_and_thread_invariance);
    RUN(bf16_products_bound);
    RUN(bf16_numerics_every_level);
    RUN(dense_bf16_bound_and_thread_invariance);
    return test_report();
}
