/*
 * test_matmul_4bit_fast.c — the FAST int8 product of 4-bit weights for small n (token generation;
 * matmul_4bit_fast_int8.c with the loops of x86/matmul_4bit_avx512vnni.c, and at the AVX2 and
 * AVX-512 levels those of x86/matmul_4bit_av_loop.h: AVX-VNNI or plain AVX2). Its arithmetic
 * against its model is checked for
 * every format and shape in test_matmul_4bit.c (three-way test); here:
 *   - the mode's error, measured: against EXACT and against the unquantized fp32 weights, which it
 *     must stay close to (the format's own error dominates);
 *   - the int8 path is really taken for n = 1 .. max_n (16) and, on levels without bf16 tiles,
 *     beyond; each row of such a product equals its own n = 1 product bit for bit;
 *   - both byte-lookup variants (vpermb where the CPU has AVX512-VBMI, vpshufb) give identical bits;
 *   - a non-finite activation makes the product fall back to EXACT (int8 cannot carry it).
 * Every level with int8 loops runs: the AVX512-VNNI levels, and AVX2 — its AVX-VNNI loops where
 * the CPU has them, and its plain-AVX2 loops (forced there). Skipped (reported) elsewhere (scalar;
 * AVX512 without VNNI, whose EXACT kernels are faster), where FAST for small n is EXACT.
 */
#include <msbnb/kernels.h>
#include <msbnb/quant.h>

#include "kernels/matmul_4bit.h"
#include "test.h"
#include "fourbit_fixtures.h"

static const fmt FORMATS[] = {{MSBNB_QTYPE_NF4, 0, 64},  {MSBNB_QTYPE_NF4, 1, 64},  {MSBNB_QTYPE_FP4, 0, 64},
                              {MSBNB_QTYPE_INT4, 0, 128}, {MSBNB_QTYPE_NF4, 1, 256}, {MSBNB_QTYPE_INT4, 1, 64}};
#define N_FORMATS (int)(sizeof FORMATS / sizeof FORMATS[0])

static int int8_level(msbnb_isa isa) {
    return isa == MSBNB_ISA_AVX2 || isa >= MSBNB_ISA_AVX512_VNNI;
}

/* Some level up to the one in use (MSBNB_ISA may cap it) has an int8 path; `current`: the level in
 * use itself has one. */
static int have_int8_path(int current) {
    const msbnb_isa top = msbnb_isa_current();
    int any = int8_level(top);
    for (int l = 0; l < (int)top && !current; l++) any |= int8_level((msbnb_isa)l);
    if (!any)
        printf("  (no int8 path at level %s%s: FAST for small n is EXACT there; nothing to test)\n", msbnb_isa_name(top),
               current ? "" : " or below");
    return any;
}

/* The mode's error on [64, 2048] weights, 16 activation rows each multiplied alone (n = 1):
 * FAST vs EXACT and both vs the product with the unquantized weights. With random activations the
 * per-weight errors add in quadrature, so the product's error must stay near the weights' own
 * (msbnb_estimate_quantization_error), as for EXACT; FAST's own rounding is printed. */
TEST(error_measured_against_exact_and_fp32) {
    if (!have_int8_path(1)) return;
    const int64_t rows = 16, out = 64, in = 2048;
    test_rng rng = {41};
    float *w = malloc((size_t)(out * in) * sizeof(float)), *x = malloc((size_t)(rows * in) * sizeof(float));
    float *ye = malloc((size_t)(rows * out) * sizeof(float)), *yf = malloc((size_t)(rows * out) * sizeof(float));
    double *F = malloc((size_t)(rows * out) * sizeof(double)), *E = malloc((size_t)(rows * out) * sizeof(double));
    test_fill_normal(&rng, w, (size_t)(out * in), 0.05f);
    test_fill_normal(&rng, x, (size_t)(rows * in), 1.0f);
    for (int64_t i = 0; i < rows; i++) /* a few large activations, as in real layers */
        x[i * in + (i * 37) % in] = 12.0f;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t o = 0; o < out; o++) {
            double s = 0;
            for (int64_t k = 0; k < in; k++) s += (double)x[i * in + k] * w[o * in + k];
            F[i * out + o] = s;
        }
    for (int fi = 0; fi < N_FORMATS; fi++) {
        double werr = 0;
        msbnb_qtensor *q = make_w_err(FORMATS[fi], w, out, in, &werr);
        CHECK(q != NULL);
        if (!q) continue;
        for (int64_t i = 0; i < rows; i++) {
            CHECK_OK(msbnb_matmul(q, x + i * in, 1, NULL, ye + i * out, MSBNB_PRECISION_EXACT));
            CHECK_OK(msbnb_matmul(q, x + i * in, 1, NULL, yf + i * out, MSBNB_PRECISION_FAST));
        }
        for (int64_t e = 0; e < rows * out; e++) E[e] = ye[e];
        const double exact_err = rel_l2(ye, F, rows * out), fast_err = rel_l2(yf, F, rows * out);
        const double fast_vs_exact = rel_l2(yf, E, rows * out);
        printf("  %-12s weights %.4f; product vs fp32 weights: exact %.4f, fast int8 %.4f; fast vs exact %.2e\n",
               fmt_name(FORMATS[fi]), werr, exact_err, fast_err, fast_vs_exact);
        CHECK_MSG_(fast_err >= 0.8 * werr && fast_err <= 1.25 * werr, "%s: FAST product error %.4f far from %.4f",
                   fmt_name(FORMATS[fi]), fast_err, werr);
        /* int8 activations (steps of 1/254 of a 64-chunk's max) and codes rounded to 1/254 of the
         * block scale: ~1e-2 at most against the exact product, far below the format's ~1e-1 */
        CHECK_MSG_(fast_vs_exact > 0 && fast_vs_exact < 2e-2, "%s: FAST vs EXACT %.3g", fmt_name(FORMATS[fi]),
                   fast_vs_exact);
        msbnb_qtensor_free(q);
    }
    free(w), free(x), free(ye), free(yf), free(F), free(E);
}

/* Levels with an int8 path: the AVX512-VNNI levels, and AVX2 on CPUs with AVX-VNNI. */

/* Rows of activations the level's int8 loops take (0: none). */
static int64_t int8_max_n(msbnb_isa isa) {
    return isa >= MSBNB_ISA_AVX512_VNNI ? msbnb__fi8_avx512vnni.max_n
           : int8_level(isa)            ? msbnb__fi8_avx2.max_n
                                        : 0;
}

/* n = 1 .. max_n take the int8 path: FAST differs from EXACT, and every row of an n-row product
 * equals that row's own n = 1 product bit for bit (batching does not change a token's result).
 * n = max_n + 1 takes the bf16 tiles where the level has them (rows differ from the int8 ones), and
 * the int8 loops again, in passes of max_n rows, where it has not. On AVX-512 both byte-lookup
 * variants agree bit for bit. */
static void path_level(msbnb_isa isa, void *unused) {
    (void)unused;
    if (!int8_level(isa)) return;
    const int64_t out = 37, in = 1344, max_n = int8_max_n(isa), N = max_n + 1; /* 21 chunks: a half pair per row */
    /* no bf16 tiles and long rows: int8 for every n (this shape's rows are short: tiles beyond) */
    const int int8_beyond = isa < MSBNB_ISA_AVX512_BF16 && in >= MSBNB__FI8_PASSES_MIN_IN;
    test_rng rng = {43};
    float *w = malloc((size_t)(out * in) * sizeof(float)), *x = malloc((size_t)(N * in) * sizeof(float));
    float *y[4];
    for (int v = 0; v < 4; v++) y[v] = malloc((size_t)(N * out) * sizeof(float));
    test_fill_normal(&rng, w, (size_t)(out * in), 0.05f);
    test_fill_normal(&rng, x, (size_t)(N * in), 1.0f);
    for (int fi = 0; fi < N_FORMATS; fi++) {
        if (FORMATS[fi].type == MSBNB_QTYPE_INT4 && in % FORMATS[fi].block) continue; /* groups must divide */
        msbnb_qtensor *q = make_w(FORMATS[fi], w, out, in);
        CHECK(q != NULL);
        if (!q) continue;
        for (int64_t i = 0; i < N; i++) /* y[3]: each row's own n = 1 FAST product */
            CHECK_OK(msbnb_matmul(q, x + i * in, 1, NULL, y[3] + i * out, MSBNB_PRECISION_FAST));
        for (int64_t n = 1; n <= N; n++) {
            if (n > 4 && n < max_n - 1) continue; /* 1-4, both ends of the range, and past it */
            CHECK_OK(msbnb_matmul(q, x, n, NULL, y[0], MSBNB_PRECISION_EXACT));
            CHECK_OK(msbnb_matmul(q, x, n, NULL, y[1], MSBNB_PRECISION_FAST));
            const size_t bytes = (size_t)(n * out) * sizeof(float);
            const int differs = memcmp(y[0], y[1], bytes) != 0, rowwise = !memcmp(y[1], y[3], bytes);
            /* beyond max_n: bf16 tiles, int8 passes, or (short rows without bf16) EXACT itself */
            const int fast_form = n <= max_n || int8_beyond || isa >= MSBNB_ISA_AVX512_BF16;
            CHECK_MSG_(differs == fast_form, "%s %s n=%lld: FAST %s EXACT", msbnb_isa_name(isa), fmt_name(FORMATS[fi]),
                       (long long)n, differs ? "differs from" : "equals");
            CHECK_MSG_(rowwise == (n <= max_n || int8_beyond), "%s %s n=%lld: rows %s their n = 1 products",
                       msbnb_isa_name(isa), fmt_name(FORMATS[fi]), (long long)n, rowwise ? "equal" : "differ from");
            if (isa >= MSBNB_ISA_AVX512_VNNI && (n <= max_n || int8_beyond)) {
                msbnb__mm4_fast_force_shufb(1);
                CHECK_OK(msbnb_matmul(q, x, n, NULL, y[2], MSBNB_PRECISION_FAST));
                msbnb__mm4_fast_force_shufb(0);
                CHECK_MSG_(!memcmp(y[1], y[2], bytes), "%s n=%lld: vpermb and vpshufb variants differ",
                           fmt_name(FORMATS[fi]), (long long)n);
            }
        }
        msbnb_qtensor_free(q);
    }
    for (int v = 0; v < 4; v++) free(y[v]);
    free(w), free(x);
}

/* Levels without bf16 tiles run larger n through the int8 loops in passes of max_n rows when rows
 * are long (in >= MSBNB__FI8_PASSES_MIN_IN): n = 20 on [5, 2048], each row equal to its n = 1
 * product, and different from EXACT. */
static void passes_level(msbnb_isa isa, void *unused) {
    (void)unused;
    if (!int8_level(isa) || isa >= MSBNB_ISA_AVX512_BF16) return;
    const int64_t out = 5, in = MSBNB__FI8_PASSES_MIN_IN, n = 20;
    test_rng rng = {59};
    float *w = malloc((size_t)(out * in) * sizeof(float)), *x = malloc((size_t)(n * in) * sizeof(float));
    float *yf = malloc((size_t)(n * out) * sizeof(float)), *y1 = malloc((size_t)(n * out) * sizeof(float));
    float *ye = malloc((size_t)(n * out) * sizeof(float));
    test_fill_normal(&rng, w, (size_t)(out * in), 0.05f);
    test_fill_normal(&rng, x, (size_t)(n * in), 1.0f);
    msbnb_qtensor *q = make_w(FORMATS[0], w, out, in);
    CHECK(q != NULL);
    if (q) {
        CHECK_OK(msbnb_matmul(q, x, n, NULL, yf, MSBNB_PRECISION_FAST));
        CHECK_OK(msbnb_matmul(q, x, n, NULL, ye, MSBNB_PRECISION_EXACT));
        for (int64_t i = 0; i < n; i++) CHECK_OK(msbnb_matmul(q, x + i * in, 1, NULL, y1 + i * out, MSBNB_PRECISION_FAST));
        CHECK_MSG_(!memcmp(yf, y1, (size_t)(n * out) * sizeof(float)), "%s: n=20 rows differ from their n = 1 products",
                   msbnb_isa_name(isa));
        CHECK_MSG_(memcmp(yf, ye, (size_t)(n * out) * sizeof(float)) != 0, "%s: n=20 FAST equals EXACT",
                   msbnb_isa_name(isa));
    }
    msbnb_qtensor_free(q);
    free(w), free(x), free(yf), free(y1), free(ye);
}

TEST(int8_passes_beyond_max_n_without_bf16) {
    if (!have_int8_path(0)) return;
    test_for_each_isa(passes_level, NULL);
}

TEST(int8_path_taken_and_variants_identical) {
    if (!have_int8_path(0)) return;
    test_for_each_isa(path_level, NULL);
#if MSBNB_HAVE_X86
    const msbnb_isa top = msbnb_isa_current();
    if (msbnb__cpu()->avxvnni && top >= MSBNB_ISA_AVX2) { /* the AVX2 level's plain loops too */
        msbnb__mm4_fast_force_no_avxvnni(1);
        CHECK_OK(msbnb_isa_set(MSBNB_ISA_AVX2));
        path_level(MSBNB_ISA_AVX2, NULL);
        CHECK_OK(msbnb_isa_set(top));
        msbnb__mm4_fast_force_no_avxvnni(0);
    }
#endif
}

/* An Inf or NaN activation: FAST falls back to EXACT for that product (same bits, incl. NaN/Inf). */
static void non_finite_level(msbnb_isa isa, void *unused) {
    (void)unused;
    if (!int8_level(isa)) return;
    const int64_t out = 9, in = 256;
    test_rng rng = {47};
    float *w = malloc((size_t)(out * in) * sizeof(float)), x[3 * 256], ye[3 * 9], yf[3 * 9];
    test_fill_normal(&rng, w, (size_t)(out * in), 0.05f);
    test_fill_normal(&rng, x, 3 * 256, 1.0f);
    msbnb_qtensor *q = make_w(FORMATS[0], w, out, in);
    CHECK(q != NULL);
    const float bad[] = {INFINITY, -INFINITY, NAN};
    for (int b = 0; q && b < 3; b++)
        for (int64_t n = 1; n <= 3; n++) { /* (n = 3: EXACT or int8 on every level, never bf16) */
            float xs[3 * 256];
            memcpy(xs, x, sizeof xs);
            xs[(n - 1) * in + 100] = bad[b];
            CHECK_OK(msbnb_matmul(q, xs, n, NULL, ye, MSBNB_PRECISION_EXACT));
            CHECK_OK(msbnb_matmul(q, xs, n, NULL, yf, MSBNB_PRECISION_FAST));
            CHECK_MSG_(!memcmp(ye, yf, (size_t)(n * out) * sizeof(float)), "%s: x has %g, n=%lld: FAST is not EXACT",
                       msbnb_isa_name(isa), (double)bad[b], (long long)n);
            int nonfinite = 0;
            for (int64_t e = (n - 1) * out; e < n * out; e++) nonfinite += !isfinite(yf[e]);
            CHECK(nonfinite == out);
        }
    msbnb_qtensor_free(q);
    free(w);
}

TEST(non_finite_activations_fall_back_to_exact) {
    if (!have_int8_path(0)) return;
    test_for_each_isa(non_finite_level, NULL);
}

int main(void) {
    RUN(error_measured_against_exact_and_fp32);
    RUN(int8_path_taken_and_variants_identical);
    RUN(int8_passes_beyond_max_n_without_bf16);
    RUN(non_finite_activations_fall_back_to_exact);
    return test_report();
}
