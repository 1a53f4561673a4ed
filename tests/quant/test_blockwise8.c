/*
 * test_blockwise8.c — BLOCKWISE8 (bitsandbytes quantize_blockwise): the search against the CUDA
 * kernel's dQuantize<0> and brute-force nearest, SIMD against the reference, the non-finite
 * policy, thread invariance, round-trip bounds, bad arguments. Golden vectors: test_golden_bnb.c.
 */
#include "test.h"

#include <msbnb/quant.h>

#include "q4_testdata.h"
#include "quant/fourbit_internal.h"

/* ---------------------------------------------------------------- the search */

/* bitsandbytes' dQuantize<0> (csrc/kernels.cu) as the kernel writes it, with its running
 * lower/upper values, independent of the library's branch-free form. */
static unsigned cuda_dquantize(const float *code, float x) {
    int pivot = 127, upper_pivot = 255, lower_pivot = 0;
    float lower = -1.0f, upper = 1.0f, val = code[pivot];
    for (int i = 64; i > 0; i >>= 1) {
        if (x > val) {
            lower_pivot = pivot;
            lower = val;
            pivot += i;
        } else {
            upper_pivot = pivot;
            upper = val;
            pivot -= i;
        }
        val = code[pivot];
    }
    if (upper_pivot == 255) upper = code[upper_pivot];
    if (lower_pivot == 0) lower = code[lower_pivot];
    if (x > val) return x > (upper + val) * 0.5f ? (unsigned)upper_pivot : (unsigned)pivot;
    return x < (lower + val) * 0.5f ? (unsigned)lower_pivot : (unsigned)pivot;
}

/* A sorted custom map with repeated entries and an uneven spread. */
static void custom_map(float *m) {
    for (int i = 0; i < 256; i++) m[i] = (float)((i - 100) * fabs((double)(i - 100)) / 20000.0);
    m[50] = m[51] = m[52];
    m[200] = m[201];
}

static void check_search(const float *code, const char *name) {
    test_rng r = {3};
    float probe[6000];
    int np = 0;
    for (int i = 0; i < 256; i++) {
        probe[np++] = code[i];
        if (i < 255) {
            float mid = (code[i] + code[i + 1]) * 0.5f;
            probe[np++] = mid;
            probe[np++] = nextafterf(mid, INFINITY);
            probe[np++] = nextafterf(mid, -INFINITY);
        }
    }
    float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, 2.0f, -2.0f, 1e-30f, -1e-30f};
    for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) probe[np++] = specials[k];
    while (np < 6000) probe[np++] = (float)(test_rng_uniform(&r) * 2.2 - 1.1);
    int bad_cuda = 0, bad_nearest = 0;
    for (int i = 0; i < np; i++) {
        unsigned q = msbnb__bw8_index(code, probe[i]);
        if (q != cuda_dquantize(code, probe[i])) bad_cuda++;
        /* nearest entry (ties may go either way, the midpoint is rounded to float32) */
        double best = INFINITY;
        for (int k = 0; k < 256; k++) best = fmin(best, fabs((double)probe[i] - code[k]));
        double got = fabs((double)probe[i] - code[q]);
        /* the float32 midpoint may sit up to half an ulp off the true one */
        double ulp = (double)nextafterf(fabsf(probe[i]), INFINITY) - fabsf(probe[i]);
        if (isfinite(probe[i]) && got > best + ulp) {
            if (bad_nearest < 3)
                printf("  %s: s=%a -> q=%u (%a), best distance %g, got %g\n", name, (double)probe[i], q,
                       (double)code[q], best, got);
            bad_nearest++;
        }
    }
    CHECK_MSG_(bad_cuda == 0, "%s: %d probes differ from dQuantize<0>", name, bad_cuda);
    CHECK_MSG_(bad_nearest == 0, "%s: %d probes not nearest", name, bad_nearest);
}

TEST(search_equals_cuda_and_nearest) {
    float m[256];
    custom_map(m);
    check_search(msbnb_dynamic_map_signed(), "signed");
    check_search(msbnb_dynamic_map_unsigned(), "unsigned");
    check_search(m, "custom");
}

/* ---------------------------------------------------------------- SIMD == reference */

static void compare_with_ref(msbnb_isa isa, const float *code, const float *x, size_t n, int bs) {
    size_t nb = (n + (size_t)bs - 1) / (size_t)bs;
    uint8_t *q_ref = malloc(n), *q = malloc(n);
    float *a_ref = malloc(nb * 4), *a = malloc(nb * 4), *y_ref = malloc(n * 4), *y = malloc(n * 4);
    const float *map = code ? code : msbnb_dynamic_map_signed();
    msbnb__bw8_quantize_ref(map, x, 0.0f, n, (size_t)bs, q_ref, a_ref);
    msbnb__bw8_dequantize_ref(map, q_ref, a_ref, n, (size_t)bs, y_ref);
    CHECK_OK(msbnb_quantize_blockwise8(code, x, n, bs, q, a));
    CHECK_OK(msbnb_dequantize_blockwise8(code, q_ref, a_ref, n, bs, y));
    size_t d = q4_first_byte_diff(q, q_ref, n);
    CHECK_MSG_(d == n, "[%s] n=%zu bs=%d: q[%zu] = %u, reference %u (x %a)", msbnb_isa_name(isa), n, bs, d,
               d < n ? q[d] : 0, d < n ? q_ref[d] : 0, d < n ? (double)x[d] : 0.0);
    d = q4_first_bit_diff(a, a_ref, nb);
    CHECK_MSG_(d == nb, "[%s] n=%zu bs=%d: absmax %zu differs", msbnb_isa_name(isa), n, bs, d);
    d = q4_first_bit_diff(y, y_ref, n);
    CHECK_MSG_(d == n, "[%s] n=%zu bs=%d: y[%zu] differs", msbnb_isa_name(isa), n, bs, d);
    free(q_ref);
    free(q);
    free(a_ref);
    free(a);
    free(y_ref);
    free(y);
}

static void simd_vs_ref(msbnb_isa isa, void *ctx) {
    (void)ctx;
    static const size_t lens[] = {1, 2, 3, 63, 64, 65, 255, 257, 1000, 4095, 4097, 20000};
    static const int sizes[] = {64, 256, 4096};
    float custom[256], mids[255];
    custom_map(custom);
    const float *maps[] = {NULL, msbnb_dynamic_map_unsigned(), custom};
    test_rng r = {5};
    float *x = malloc(20000 * 4);
    for (size_t m = 0; m < 3; m++) {
        const float *map = maps[m] ? maps[m] : msbnb_dynamic_map_signed();
        /* values exactly on the float32 midpoints (KIND_THRESHOLD scales them by 4 exactly) */
        for (int i = 0; i < 255; i++) mids[i] = (map[i] + map[i + 1]) * 0.5f;
        for (size_t s = 0; s < 3; s++)
            for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
                q4_fill(&r, x, lens[l], (size_t)sizes[s], mids, 255);
                compare_with_ref(isa, maps[m], x, lens[l], sizes[s]);
            }
    }
    free(x);
    /* one multi-MB array (levels above AVX512 run the same kernels as AVX512) */
    if (isa > MSBNB_ISA_AVX512) return;
    const size_t n = ((size_t)1 << 20) + 5;
    x = malloc(n * 4);
    q4_fill(&r, x, n, 256, mids, 255);
    compare_with_ref(isa, NULL, x, n, 256);
    free(x);
}
TEST(simd_matches_reference) { test_for_each_isa(simd_vs_ref, NULL); }

/* ---------------------------------------------------------------- policy */

static void policy(msbnb_isa isa, void *ctx) {
    (void)ctx;
    const float *code = msbnb_dynamic_map_signed();
    const unsigned zero = msbnb__bw8_index(code, 0.0f);
    CHECK(code[zero] == 0.0f);
    float x[64], a[1], y[64];
    uint8_t q[64];
    for (int i = 0; i < 64; i++) x[i] = (i & 1) ? -0.0f : 0.0f;
    CHECK_OK(msbnb_quantize_blockwise8(NULL, x, 64, 64, q, a));
    CHECK(a[0] == 0.0f);
    for (int i = 0; i < 64; i++) CHECK_MSG_(q[i] == zero, "[%s] zero block q[%d] = %u", msbnb_isa_name(isa), i, q[i]);
    CHECK_OK(msbnb_dequantize_blockwise8(NULL, q, a, 64, 64, y));
    for (int i = 0; i < 64; i++) CHECK(y[i] == 0.0f);

    for (int i = 0; i < 64; i++) x[i] = 0.5f;
    x[0] = INFINITY;
    x[1] = -INFINITY;
    x[2] = NAN;
    CHECK_OK(msbnb_quantize_blockwise8(NULL, x, 64, 64, q, a));
    CHECK(a[0] == FLT_MAX);
    CHECK(q[0] == 255 && q[1] == 0 && q[2] == zero && q[3] == zero);
    CHECK_OK(msbnb_dequantize_blockwise8(NULL, q, a, 64, 64, y));
    CHECK(y[0] == FLT_MAX && y[1] == code[0] * FLT_MAX && y[2] == 0.0f);

    /* the extremes of a block map to the end codes (absmax -> code 1.0, -absmax -> -1.0) */
    for (int i = 0; i < 64; i++) x[i] = (float)(i - 32) / 32.0f; /* -1 .. 0.97 */
    CHECK_OK(msbnb_quantize_blockwise8(NULL, x, 64, 64, q, a));
    CHECK(a[0] == 1.0f && q[0] == 0 && q[32] == zero);

    /* subnormal absmax whose reciprocal overflows: all codes of 0.0 */
    for (int i = 0; i < 64; i++) x[i] = (i & 1) ? -1e-40f : 3e-41f;
    CHECK_OK(msbnb_quantize_blockwise8(NULL, x, 64, 64, q, a));
    for (int i = 0; i < 64; i++) CHECK(q[i] == zero);
}
TEST(nonfinite_and_edge_policy) { test_for_each_isa(policy, NULL); }

/* ---------------------------------------------------------------- threads */

TEST(thread_count_invariance) {
    const size_t n = ((size_t)1 << 19) + 77;
    float *x = malloc(n * 4);
    test_rng r = {13};
    float mids[255];
    const float *code = msbnb_dynamic_map_signed();
    for (int i = 0; i < 255; i++) mids[i] = (code[i] + code[i + 1]) * 0.5f;
    q4_fill(&r, x, n, 256, mids, 255);
    uint8_t *q[3];
    float *a[3], *y[3];
    size_t nb = (n + 255) / 256;
    int saved = msbnb_get_num_threads();
    for (int t = 0; t < 3; t++) {
        q[t] = malloc(n);
        a[t] = malloc(nb * 4);
        y[t] = malloc(n * 4);
        msbnb_set_num_threads(t + 1);
        CHECK_OK(msbnb_quantize_blockwise8(NULL, x, n, 256, q[t], a[t]));
        CHECK_OK(msbnb_dequantize_blockwise8(NULL, q[t], a[t], n, 256, y[t]));
    }
    msbnb_set_num_threads(saved);
    for (int t = 1; t < 3; t++) {
        CHECK(memcmp(q[t], q[0], n) == 0);
        CHECK(memcmp(a[t], a[0], nb * 4) == 0);
        CHECK(memcmp(y[t], y[0], n * 4) == 0);
    }
    for (int t = 0; t < 3; t++) {
        free(q[t]);
        free(a[t]);
        free(y[t]);
    }
    free(x);
}

/* ---------------------------------------------------------------- round-trip bound */

static void roundtrip(const float *code, const char *name, int positive) {
    const size_t n = 50021;
    const int bs = 256;
    float *x = malloc(n * 4), *y = malloc(n * 4), *a = malloc((n / bs + 1) * 4);
    uint8_t *q = malloc(n);
    test_rng r = {17};
    for (size_t i = 0; i < n; i++) {
        double v = test_rng_normal(&r) * (i % 2 ? 1.0 : 1e-3);
        x[i] = (float)(positive ? fabs(v) : v);
    }
    CHECK_OK(msbnb_quantize_blockwise8(code, x, n, bs, q, a));
    CHECK_OK(msbnb_dequantize_blockwise8(code, q, a, n, bs, y));
    const float *map = code ? code : msbnb_dynamic_map_signed();
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double am = a[i / bs], s = x[i] / am;
        /* the local gap around s: the error is at most half of it (plus float32 rounding) */
        unsigned k = 0;
        while (k < 255 && map[k + 1] < s) k++;
        double gap = (k < 255) ? map[k + 1] - map[k] : 0;
        double err = fabs((double)x[i] - y[i]) / am;
        if (err > gap / 2 + 1e-6) bad++;
        worst = fmax(worst, err);
    }
    CHECK_MSG_(bad == 0, "%s: %d elements outside half the local gap", name, bad);
    CHECK_MSG_(worst > 1e-3, "%s: worst relative error %g: bound never approached", name, worst);
    free(x);
    free(y);
    free(a);
    free(q);
}
TEST(roundtrip_error_within_bound) {
    roundtrip(NULL, "signed", 0);
    roundtrip(msbnb_dynamic_map_unsigned(), "unsigned", 1);
}

/* ---------------------------------------------------------------- bad arguments */

TEST(bad_arguments) {
    float x[64] = {0}, y[64], a[1], m[256];
    uint8_t q[64];
    int bad_bs[] = {0, 32, 63, 100, 8192, -256};
    for (size_t i = 0; i < sizeof bad_bs / sizeof bad_bs[0]; i++) {
        CHECK_STATUS(msbnb_quantize_blockwise8(NULL, x, 64, bad_bs[i], q, a), MSBNB_ERR_INVALID_ARG);
        CHECK_STATUS(msbnb_dequantize_blockwise8(NULL, q, a, 64, bad_bs[i], y), MSBNB_ERR_INVALID_ARG);
    }
    CHECK_STATUS(msbnb_quantize_blockwise8(NULL, NULL, 64, 64, q, a), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_quantize_blockwise8(NULL, x, 64, 64, NULL, a), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_quantize_blockwise8(NULL, x, 64, 64, q, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_dequantize_blockwise8(NULL, q, a, 64, 64, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_quantize_blockwise8(NULL, x, 0, 64, q, a), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_quantize_blockwise8(NULL, x, SIZE_MAX, 64, q, a), MSBNB_ERR_SHAPE);
    /* a quantization map must be sorted and NaN-free; dequantization accepts any map */
    memcpy(m, msbnb_dynamic_map_signed(), sizeof m);
    m[10] = 0.5f;
    CHECK_STATUS(msbnb_quantize_blockwise8(m, x, 64, 64, q, a), MSBNB_ERR_INVALID_ARG);
    CHECK(strstr(msbnb_last_error(), "sorted") != NULL);
    memset(q, 10, sizeof q);
    a[0] = 2.0f;
    CHECK_OK(msbnb_dequantize_blockwise8(m, q, a, 64, 64, y));
    CHECK(y[0] == 1.0f);
    m[10] = NAN;
    CHECK_STATUS(msbnb_quantize_blockwise8(m, x, 64, 64, q, a), MSBNB_ERR_INVALID_ARG);
}

int main(void) {
    RUN(search_equals_cuda_and_nearest);
    RUN(simd_matches_reference);
    RUN(nonfinite_and_edge_policy);
    RUN(thread_count_invariance);
    RUN(roundtrip_error_within_bound);
    RUN(bad_arguments);
    return test_report();
}
