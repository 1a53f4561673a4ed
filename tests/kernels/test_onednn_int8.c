/*
 * test_onednn_int8.c — INT8 integer products on oneDNN's s8 matmul (msbnb__i8_int_product_onednn,
 * src/kernels/matmul_int8.c; the S8 exactness probe in src/kernels/onednn.c):
 *   - the probe's verdict agrees with an independent exactness check: a product of extreme codes
 *     (a pattern the probe does not use) run through oneDNN with inexact primitives allowed is exact
 *     exactly when msbnb__od_supported says the shape may run;
 *   - the oneDNN driver gives Y (and LLM.int8()'s outlier columns) bit-identical to the scalar
 *     reference (msbnb__i8_dot_ref + the shared epilogue) — integer sums are exact, so equality,
 *     not a tolerance — for symmetric and asymmetric, per-row and per-tensor codes, with and
 *     without bias, shapes with partial tiles in both directions, and for 1, 2 and 3 threads.
 *     Where oneDNN's int8 is exact here (VNNI / AMX) the codes span their full range; where it is
 *     not (AVX2: int16 saturation) inexact primitives are allowed and the codes are kept small
 *     enough not to saturate (|weight code − shift| ≤ 64), which still exercises every line of the
 *     driver;
 *   - the dispatcher follows its table: FAST products at n >= msbnb__od8_min_n reach oneDNN where
 *     the class has a threshold and an exact implementation, and never elsewhere; either way they
 *     equal the scalar level bit for bit.
 */
#include <msbnb/kernels.h>
#include <msbnb/quant.h>

#include "kernels/int8_kernels.h"
#include "kernels/onednn_matmul.h"
#include "test.h"

static uint64_t rng_state = 7;
static uint32_t urand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static float frand(void) { return (float)urand() * 0x1p-31f * 2.0f - 1.0f; }

/* Probe cross-check on one shape: codes a = -127 / +127 in runs of three, weights -128 / +127 in
 * runs of five (pairs of equal large products appear in every alignment). */
TEST(probe_agrees_with_exactness) {
    if (!msbnb_onednn_available()) {
        printf("  skipped: no oneDNN level in this build / on this CPU\n");
        return;
    }
    const int64_t m = 48, nn = 40, k = 520;
    const msbnb__od_gemm g = {MSBNB__OD_S8, m, nn, k, k, k, nn, 1, 0};
    int8_t *A = malloc((size_t)(m * k)), *B = malloc((size_t)(nn * k));
    int32_t *C = malloc((size_t)(m * nn) * sizeof(int32_t));
    for (int64_t i = 0; i < m * k; i++) A[i] = (i / 3) % 2 ? 127 : -127;
    for (int64_t i = 0; i < nn * k; i++) B[i] = (int8_t)((i / 5) % 2 ? 127 : -128);
    const int verdict = msbnb__od_supported(&g);
    const int prev = msbnb__od_s8_accept_inexact(1);
    CHECK_OK(msbnb__od_run(&g, A, B, C));
    msbnb__od_s8_accept_inexact(prev);
    int exact = 1;
    for (int64_t i = 0; i < m && exact; i++)
        for (int64_t j = 0; j < nn && exact; j++) {
            int64_t s = 0;
            for (int64_t kk = 0; kk < k; kk++) s += (int64_t)A[i * k + kk] * B[j * k + kk];
            exact = s == C[i * nn + j];
        }
    printf("  oneDNN class %s, s8 impl %s: exact on extreme codes %d, probe verdict %d\n",
           msbnb__od_class_name(msbnb__od_cpu_class()), msbnb__od_impl(&g), exact, verdict);
    CHECK_MSG_(exact == verdict, "the probe says %d but the extreme-code product is %s", verdict,
               exact ? "exact" : "inexact");
    free(A), free(B), free(C);
}

/* A hand-built weight: codes [out, K] (int8 or uint8), stats and zero points per row or per tensor.
 * span: codes within ±span of the shift (0 for int8, 128 for uint8). */
typedef struct wbuf {
    uint8_t *codes;
    float stats[512];
    int32_t zp[512];
    msbnb__i8w w;
} wbuf;
static void make_w(wbuf *b, int64_t out, int64_t K, int asym, int per_row, int span) {
    b->codes = malloc((size_t)(out * K));
    for (int64_t e = 0; e < out * K; e++) {
        const int v = (int)(urand() % (uint32_t)(2 * span + 1)) - span;
        b->codes[e] = asym ? (uint8_t)(128 + (v > 127 ? 127 : v)) : (uint8_t)(int8_t)(v < -127 ? -127 : v);
    }
    for (int64_t o = 0; o < out; o++) b->stats[o] = 0.01f + 0.02f * (float)(urand() % 100), b->zp[o] = 100 + (int32_t)(o % 57);
    b->w = (msbnb__i8w){b->codes, out, K, asym, per_row, b->stats, asym ? b->zp : NULL};
}

TEST(driver_equals_reference) {
    if (!msbnb_onednn_available()) return;
    const int64_t n = 300, out = 300, K = 200, nout = 3; /* tiles 256 + 44 both ways */
    const int32_t ocols[3] = {0, 77, 199};
    const msbnb__od_gemm g = {MSBNB__OD_S8, 256, 256, K, K, K, 256, 1, 0};
    const int exact_here = msbnb__od_supported(&g);
    const int span = exact_here ? 128 : 64;
    const int prev_accept = msbnb__od_s8_accept_inexact(!exact_here);
    const msbnb_isa prev = msbnb_isa_current();
    int8_t *a = malloc((size_t)(n * K));
    int32_t *asum = malloc((size_t)n * sizeof(int32_t));
    float *rs = malloc((size_t)n * sizeof(float)), *bias = malloc((size_t)out * sizeof(float));
    float *yr = malloc((size_t)(n * out) * sizeof(float)), *y = malloc((size_t)(n * out) * sizeof(float));
    float *sr = malloc((size_t)(out * nout) * sizeof(float)), *sb = malloc((size_t)(out * nout) * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        asum[i] = 0;
        for (int64_t k = 0; k < K; k++) {
            a[i * K + k] = (int8_t)((int)(urand() % 255u) - 127);
            asum[i] += a[i * K + k];
        }
        rs[i] = 1.0f + 3.0f * (float)(urand() % 1000) * 1e-3f;
    }
    for (int64_t o = 0; o < out; o++) bias[o] = frand();
    int64_t cases = 0;
    for (int v = 0; v < 4; v++) {
        wbuf b;
        make_w(&b, out, K, v >= 2, v % 2 == 0, span);
        for (int withb = 0; withb < 2; withb++) {
            const float *bi = withb ? bias : NULL;
            CHECK_OK(msbnb_isa_set(MSBNB_ISA_SCALAR)); /* the reference: msbnb__i8_dot_ref */
            CHECK_OK(msbnb__i8_int_product(&b.w, a, asum, rs, n, bi, yr, ocols, nout, sr));
            CHECK_OK(msbnb_isa_set(MSBNB_ISA_ONEDNN));
            for (int t = 1; t <= 3; t++) {
                msbnb_set_num_threads(t);
                memset(y, 0xff, (size_t)(n * out) * sizeof(float));
                const int64_t calls0 = msbnb__od_calls();
                CHECK_OK(msbnb__i8_int_product_onednn(&b.w, a, asum, rs, n, bi, y, ocols, nout, sb));
                CHECK_MSG_(msbnb__od_calls() > calls0, "variant %d: oneDNN was not reached", v);
                CHECK_MSG_(!memcmp(y, yr, (size_t)(n * out) * sizeof(float)),
                           "variant %d bias %d: Y differs from the reference at %d threads", v, withb, t);
                CHECK_MSG_(!memcmp(sb, sr, (size_t)(out * nout) * sizeof(float)),
                           "variant %d: outlier columns differ at %d threads", v, t);
                cases++;
            }
            msbnb_set_num_threads(0);
        }
        free(b.codes);
    }
    printf("  %lld products bit-identical to the scalar reference (codes within +-%d; %s)\n", (long long)cases, span,
           exact_here ? "oneDNN's int8 exact here" : "inexact primitives allowed for the test");
    msbnb__od_s8_accept_inexact(prev_accept);
    msbnb_isa_set(prev);
    free(a), free(asum), free(rs), free(bias), free(yr), free(y), free(sr), free(sb);
}

/* The public FAST product at a large n: oneDNN exactly where the table and the probe allow it,
 * and the same bits as the scalar level either way. */
TEST(dispatch_follows_table) {
    if (!msbnb_onednn_available()) return;
    const msbnb_isa prev = msbnb_isa_current();
    const int64_t min_n = msbnb__od8_min_n(msbnb__od_cpu_class());
    const int64_t n = min_n > 0 ? min_n + 3 : 67, out = 96, in = 160;
    float *w = malloc((size_t)(out * in) * sizeof(float)), *x = malloc((size_t)(n * in) * sizeof(float));
    float *yr = malloc((size_t)(n * out) * sizeof(float)), *y = malloc((size_t)(n * out) * sizeof(float));
    for (int64_t e = 0; e < out * in; e++) w[e] = frand();
    for (int64_t e = 0; e < n * in; e++) x[e] = frand();
    msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
    msbnb_qtensor *q = NULL;
    CHECK_OK(msbnb_quantize(w, out, in, &cfg, &q));
    const msbnb__od_gemm g = {MSBNB__OD_S8, n, out, in, in, in, 256, 1, 0};
    CHECK_OK(msbnb_isa_set(MSBNB_ISA_SCALAR));
    CHECK_OK(msbnb_matmul(q, x, n, NULL, yr, MSBNB_PRECISION_FAST));
    CHECK_OK(msbnb_isa_set(MSBNB_ISA_ONEDNN));
    const int64_t calls0 = msbnb__od_calls();
    CHECK_OK(msbnb_matmul(q, x, n, NULL, y, MSBNB_PRECISION_FAST));
    const int want = min_n > 0 && msbnb__od_supported(&g);
    printf("  class %s: threshold n >= %lld, n = %lld %s oneDNN\n", msbnb__od_class_name(msbnb__od_cpu_class()),
           (long long)min_n, (long long)n, want ? "takes" : "does not take");
    CHECK_MSG_((msbnb__od_calls() > calls0) == want, "oneDNN reached: %d, expected %d",
               msbnb__od_calls() > calls0, want);
    CHECK_MSG_(!memcmp(y, yr, (size_t)(n * out) * sizeof(float)), "FAST INT8 differs from the scalar level");
    msbnb_qtensor_free(q);
    msbnb_isa_set(prev);
    free(w), free(x), free(yr), free(y);
}

int main(void) {
    RUN(probe_agrees_with_exactness);
    RUN(driver_equals_reference);
    RUN(dispatch_follows_table);
    return test_report();
}
