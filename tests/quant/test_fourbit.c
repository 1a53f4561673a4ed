/*
 * test_fourbit.c — NF4 / FP4 blockwise quantization: the decision rule, SIMD variants against the
 * scalar reference, the non-finite policy, thread invariance, round-trip bounds, bad arguments.
 * Bit-exactness against bitsandbytes itself is in test_golden_bnb.c.
 */
#include "test.h"

#include <msbnb/quant.h>

#include "q4_testdata.h"
#include "quant/fourbit_internal.h"

/* ---------------------------------------------------------------- the decision rule */

/* bitsandbytes' dQuantizeNF4 / dQuantizeFP4 decision trees (csrc/kernels.cu), written out as
 * nested comparisons, independent of the library's search. */
static unsigned nf4_tree(float x) {
    const float *t = msbnb__nf4_thresholds;
    if (x > t[7]) {
        if (x > t[11]) {
            if (x > t[13]) return x > t[14] ? 15 : 14;
            return x > t[12] ? 13 : 12;
        }
        if (x > t[9]) return x > t[10] ? 11 : 10;
        return x > t[8] ? 9 : 8;
    }
    if (x > t[3]) {
        if (x > t[5]) return x > t[6] ? 7 : 6;
        return x > t[4] ? 5 : 4;
    }
    if (x > t[1]) return x > t[2] ? 3 : 2;
    return x > t[0] ? 1 : 0;
}

static unsigned fp4_tree(float x) {
    unsigned sign = x < 0 ? 8 : 0;
    x = fabsf(x);
    if (x > 0.29166667f) {
        if (x > 0.583333f) return (x > 0.8333333f ? 3 : 2) + sign;
        return (x > 0.4166667f ? 5 : 4) + sign;
    }
    if (x > 0.0859375f) return (x > 0.20833333f ? 7 : 6) + sign;
    return (x > 0.00260417f ? 1 : 0) + sign;
}

TEST(search_equals_cuda_tree) {
    test_rng r = {1};
    float probe[4096];
    int np = 0;
    for (int k = 0; k < 15; k++) { /* each threshold and its neighbours, both signs */
        float t = msbnb__nf4_thresholds[k];
        float v[] = {t, nextafterf(t, INFINITY), nextafterf(t, -INFINITY)};
        for (int j = 0; j < 3; j++) probe[np++] = v[j];
    }
    for (int k = 0; k < 7; k++) {
        float t = msbnb__fp4_thresholds[k];
        float v[] = {t, nextafterf(t, INFINITY), nextafterf(t, -INFINITY)};
        for (int j = 0; j < 3; j++) {
            probe[np++] = v[j];
            probe[np++] = -v[j];
        }
    }
    for (int k = 0; k < 16; k++) {
        probe[np++] = msbnb_nf4_code()[k];
        probe[np++] = msbnb_fp4_code()[k];
    }
    float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, 1e-45f, -1e-45f, FLT_MAX, -FLT_MAX, 2.0f, -2.0f};
    for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) probe[np++] = specials[k];
    while (np < 4096) probe[np++] = (float)(test_rng_uniform(&r) * 2.4 - 1.2);
    for (int i = 0; i < np; i++) {
        CHECK_MSG_(msbnb__nf4_index(probe[i]) == nf4_tree(probe[i]), "nf4 %a: %u vs tree %u", (double)probe[i],
                   msbnb__nf4_index(probe[i]), nf4_tree(probe[i]));
        CHECK_MSG_(msbnb__fp4_index(probe[i]) == fp4_tree(probe[i]), "fp4 %a: %u vs tree %u", (double)probe[i],
                   msbnb__fp4_index(probe[i]), fp4_tree(probe[i]));
    }
    /* ties go to the lower code: exactly on threshold k is code k, just above is k+1 */
    for (int k = 0; k < 15; k++) {
        CHECK_EQ_INT(msbnb__nf4_index(msbnb__nf4_thresholds[k]), k);
        CHECK_EQ_INT(msbnb__nf4_index(nextafterf(msbnb__nf4_thresholds[k], INFINITY)), k + 1);
    }
    /* policy: NaN is the code of 0.0 for both formats */
    CHECK_EQ_INT(msbnb__nf4_index(NAN), MSBNB_NF4_ZERO_CODE);
    CHECK_EQ_INT(msbnb__fp4_index(NAN), MSBNB_FP4_ZERO_CODE);
    CHECK(msbnb_nf4_code()[MSBNB_NF4_ZERO_CODE] == 0.0f && msbnb_fp4_code()[MSBNB_FP4_ZERO_CODE] == 0.0f);
}

/* ---------------------------------------------------------------- SIMD == reference */

typedef struct {
    size_t n;
    int bs;
    msbnb_qtype type;
} q4_case;

/* Quantize and dequantize x with the current ISA and compare every bit with the reference. */
static void compare_with_ref(msbnb_isa isa, const float *x, size_t n, int bs, msbnb_qtype type) {
    const int is_fp4 = type == MSBNB_QTYPE_FP4;
    size_t nb = (n + (size_t)bs - 1) / (size_t)bs, nbytes = (n + 1) / 2;
    uint8_t *p_ref = malloc(nbytes), *p = malloc(nbytes);
    float *a_ref = malloc(nb * 4), *a = malloc(nb * 4), *y_ref = malloc(n * 4);
    /* 64-byte aligned so that large outputs take the streaming-store path */
    float *y = aligned_alloc(64, (n * 4 + 63) / 64 * 64);
    msbnb__q4_quantize_ref(is_fp4, x, n, (size_t)bs, p_ref, a_ref);
    msbnb__q4_dequantize_ref(is_fp4 ? msbnb_fp4_code() : msbnb_nf4_code(), p_ref, a_ref, n, (size_t)bs, y_ref, 0);
    CHECK_OK(msbnb_quantize_4bit_blockwise(type, x, n, bs, p, a));
    CHECK_OK(msbnb_dequantize_4bit_blockwise(type, p_ref, a_ref, n, bs, y));
    size_t d;
    d = q4_first_byte_diff(p, p_ref, nbytes);
    CHECK_MSG_(d == nbytes, "[%s] %s n=%zu bs=%d: byte %zu is %02x, reference %02x (x %a %a)", msbnb_isa_name(isa),
               msbnb_qtype_name(type), n, bs, d, d < nbytes ? p[d] : 0, d < nbytes ? p_ref[d] : 0,
               d < nbytes ? (double)x[2 * d] : 0.0, d < nbytes && 2 * d + 1 < n ? (double)x[2 * d + 1] : 0.0);
    d = q4_first_bit_diff(a, a_ref, nb);
    CHECK_MSG_(d == nb, "[%s] %s n=%zu bs=%d: absmax %zu differs", msbnb_isa_name(isa), msbnb_qtype_name(type), n,
               bs, d);
    d = q4_first_bit_diff(y, y_ref, n);
    CHECK_MSG_(d == n, "[%s] %s n=%zu bs=%d: y[%zu] differs", msbnb_isa_name(isa), msbnb_qtype_name(type), n, bs,
               d);
    free(p_ref);
    free(p);
    free(a_ref);
    free(a);
    free(y_ref);
    free(y);
}

static void simd_vs_ref(msbnb_isa isa, void *ctx) {
    (void)ctx;
    static const size_t lens[] = {1, 2, 3, 31, 32, 33, 63, 64, 65, 127, 129, 1000, 4095, 4096, 4097, 12345};
    static const int sizes[] = {32, 64, 128, 256, 1024, 4096};
    test_rng r = {42};
    float *x = malloc(12345 * 4);
    for (int f = 0; f < 2; f++) {
        msbnb_qtype type = f ? MSBNB_QTYPE_FP4 : MSBNB_QTYPE_NF4;
        const float *thr = f ? msbnb__fp4_thresholds : msbnb__nf4_thresholds;
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
                q4_fill(&r, x, lens[l], (size_t)sizes[s], thr, f ? 7 : 15);
                compare_with_ref(isa, x, lens[l], sizes[s], type);
            }
    }
    free(x);
}
TEST(simd_matches_reference) { test_for_each_isa(simd_vs_ref, NULL); }

static void simd_vs_ref_large(msbnb_isa isa, void *ctx) {
    (void)ctx;
    /* levels above AVX512 dispatch to the same kernels: keep the suite fast under ASan */
    if (isa > MSBNB_ISA_AVX512) return;
    const size_t n = ((size_t)5 << 20) + 37; /* 20 MB of float32 (streaming stores), odd length */
    float *x = malloc(n * 4);
    test_rng r = {7};
    q4_fill(&r, x, n, 64, msbnb__nf4_thresholds, 15);
    compare_with_ref(isa, x, n, 64, MSBNB_QTYPE_NF4);
    compare_with_ref(isa, x, n, 4096, MSBNB_QTYPE_FP4);
    free(x);
}
TEST(simd_matches_reference_multi_mb) { test_for_each_isa(simd_vs_ref_large, NULL); }

/* ---------------------------------------------------------------- the documented policy */

static void policy(msbnb_isa isa, void *ctx) {
    (void)ctx;
    float x[64];
    uint8_t p[32];
    float a[1], y[64];
    const char *nm = msbnb_isa_name(isa);

    /* all-zero block: absmax 0, every code the code of 0.0, dequantized to +0 */
    for (int i = 0; i < 64; i++) x[i] = (i & 1) ? -0.0f : 0.0f;
    CHECK_OK(msbnb_quantize_4bit_blockwise(MSBNB_QTYPE_NF4, x, 64, 64, p, a));
    CHECK(a[0] == 0.0f);
    for (int i = 0; i < 32; i++) CHECK_MSG_(p[i] == 0x77, "[%s] zero block byte %d = %02x", nm, i, p[i]);
    CHECK_OK(msbnb_dequantize_4bit_blockwise(MSBNB_QTYPE_NF4, p, a, 64, 64, y));
    for (int i = 0; i < 64; i++) CHECK(y[i] == 0.0f && !signbit(y[i]));
    CHECK_OK(msbnb_quantize_4bit_blockwise(MSBNB_QTYPE_FP4, x, 64, 64, p, a));
    for (int i = 0; i < 32; i++) CHECK(p[i] == 0x00);

    /* ±Inf: absmax clamps to FLT_MAX, Inf saturates to the ±1 codes, finite elements go to 0 */
    for (int i = 0; i < 64; i++) x[i] = 1.0f;
    x[0] = INFINITY;
    x[1] = -INFINITY;
    x[2] = NAN;
    CHECK_OK(msbnb_quantize_4bit_blockwise(MSBNB_QTYPE_NF4, x, 64, 64, p, a));
    CHECK(a[0] == FLT_MAX);
    CHECK_MSG_(p[0] == 0xF0, "[%s] +Inf,-Inf -> %02x", nm, p[0]);
    CHECK_MSG_(p[1] == 0x77, "[%s] NaN,1 -> %02x", nm, p[1]);
    CHECK_OK(msbnb_dequantize_4bit_blockwise(MSBNB_QTYPE_NF4, p, a, 64, 64, y));
    CHECK(y[0] == FLT_MAX && y[1] == -FLT_MAX && y[2] == 0.0f);
    CHECK_OK(msbnb_quantize_4bit_blockwise(MSBNB_QTYPE_FP4, x, 64, 64, p, a));
    CHECK_MSG_(p[0] == 0x3B, "[%s] fp4 +Inf,-Inf -> %02x", nm, p[0]);

    /* NaN is ignored by absmax and becomes the code of 0.0 */
    for (int i = 0; i < 64; i++) x[i] = (float)(i - 32) / 16.0f;
    x[5] = NAN;
    CHECK_OK(msbnb_quantize_4bit_blockwise(MSBNB_QTYPE_NF4, x, 64, 64, p, a));
    CHECK(a[0] == 2.0f);
    CHECK_MSG_((p[2] & 15) == MSBNB_NF4_ZERO_CODE, "[%s] NaN -> %x", nm, p[2] & 15);
    for (int i = 0; i < 64; i++) x[i] = NAN;
    CHECK_OK(msbnb_quantize_4bit_blockwise(MSBNB_QTYPE_NF4, x, 64, 64, p, a));
    CHECK(a[0] == 0.0f && p[0] == 0x77);

    /* subnormal absmax whose reciprocal overflows: treated as a zero block (recip 0) */
    for (int i = 0; i < 64; i++) x[i] = (i & 1) ? -1e-40f : 1e-41f;
    CHECK_OK(msbnb_quantize_4bit_blockwise(MSBNB_QTYPE_NF4, x, 64, 64, p, a));
    CHECK(a[0] == 1e-40f);
    for (int i = 0; i < 32; i++) CHECK(p[i] == 0x77);
    /* subnormal absmax with a finite reciprocal (2^-127 -> 2^127) quantizes normally */
    for (int i = 0; i < 64; i++) x[i] = (i & 1) ? -0x1p-127f : 0.0f;
    CHECK_OK(msbnb_quantize_4bit_blockwise(MSBNB_QTYPE_NF4, x, 64, 64, p, a));
    CHECK(a[0] == 0x1p-127f && p[0] == 0x70);

    /* -0 has no sign in FP4 (s < 0 is false) and a tiny negative value keeps it */
    for (int i = 0; i < 64; i++) x[i] = 1.0f;
    x[0] = -0.0f;
    x[1] = -1e-4f;
    CHECK_OK(msbnb_quantize_4bit_blockwise(MSBNB_QTYPE_FP4, x, 64, 64, p, a));
    CHECK_MSG_(p[0] == 0x08, "[%s] fp4 (-0, -1e-4) -> %02x", nm, p[0]);

    /* odd n: the last low nibble is the code of 0.0 */
    for (int i = 0; i < 3; i++) x[i] = 1.0f;
    CHECK_OK(msbnb_quantize_4bit_blockwise(MSBNB_QTYPE_NF4, x, 3, 64, p, a));
    CHECK(p[0] == 0xFF && p[1] == 0xF7);
    CHECK_OK(msbnb_quantize_4bit_blockwise(MSBNB_QTYPE_FP4, x, 3, 64, p, a));
    CHECK(p[0] == 0x33 && p[1] == 0x30);
}
TEST(nonfinite_and_edge_policy) { test_for_each_isa(policy, NULL); }

/* Values placed exactly on thresholds: x = t * 4 with absmax 4, so s == t exactly. */
static void thresholds_exact(msbnb_isa isa, void *ctx) {
    (void)ctx;
    float x[32];
    uint8_t p[16];
    float a[1];
    for (int k = 0; k < 15; k++) {
        for (int i = 0; i < 32; i++) x[i] = msbnb__nf4_thresholds[k] * 4.0f;
        x[0] = 4.0f;
        x[3] = nextafterf(x[2], INFINITY);
        CHECK_OK(msbnb_quantize_4bit_blockwise(MSBNB_QTYPE_NF4, x, 32, 32, p, a));
        CHECK_MSG_((p[1] >> 4) == (unsigned)k && (p[1] & 15) == (unsigned)k + 1, "[%s] threshold %d -> %02x",
                   msbnb_isa_name(isa), k, p[1]);
    }
    /* FP4: on magnitude threshold k -> magnitude rank k; next float up -> rank k+1; sign kept */
    for (int k = 0; k < 7; k++) {
        const float t = msbnb__fp4_thresholds[k] * 4.0f;
        for (int i = 0; i < 32; i++) x[i] = t;
        x[0] = 4.0f;
        x[3] = nextafterf(t, INFINITY);
        x[4] = -t;
        x[5] = -nextafterf(t, INFINITY);
        CHECK_OK(msbnb_quantize_4bit_blockwise(MSBNB_QTYPE_FP4, x, 32, 32, p, a));
        const unsigned lo = msbnb__fp4_rank_to_code[k], hi = msbnb__fp4_rank_to_code[k + 1];
        CHECK_MSG_(p[1] == (lo << 4 | hi) && p[2] == ((lo | 8) << 4 | (hi | 8)), "[%s] fp4 threshold %d -> %02x %02x",
                   msbnb_isa_name(isa), k, p[1], p[2]);
    }
}
TEST(values_on_thresholds) { test_for_each_isa(thresholds_exact, NULL); }

/* ---------------------------------------------------------------- threads */

TEST(thread_count_invariance) {
    const size_t n = ((size_t)1 << 20) + 3;
    float *x = malloc(n * 4);
    test_rng r = {9};
    q4_fill(&r, x, n, 128, msbnb__nf4_thresholds, 15);
    uint8_t *p[3];
    float *a[3], *y[3];
    int saved = msbnb_get_num_threads();
    for (int t = 0; t < 3; t++) {
        p[t] = malloc((n + 1) / 2);
        a[t] = malloc(n / 128 * 4 + 4);
        y[t] = malloc(n * 4);
        msbnb_set_num_threads(t + 1);
        CHECK_OK(msbnb_quantize_4bit_blockwise(MSBNB_QTYPE_NF4, x, n, 128, p[t], a[t]));
        CHECK_OK(msbnb_dequantize_4bit_blockwise(MSBNB_QTYPE_NF4, p[t], a[t], n, 128, y[t]));
    }
    msbnb_set_num_threads(saved);
    for (int t = 1; t < 3; t++) {
        CHECK(memcmp(p[t], p[0], (n + 1) / 2) == 0);
        CHECK(memcmp(a[t], a[0], (n + 127) / 128 * 4) == 0);
        CHECK(memcmp(y[t], y[0], n * 4) == 0);
    }
    for (int t = 0; t < 3; t++) {
        free(p[t]);
        free(a[t]);
        free(y[t]);
    }
    free(x);
}

/* ---------------------------------------------------------------- round-trip bounds */

/* Largest gap between adjacent values of a sorted table. */
static double max_gap(const float *sorted, int n) {
    double g = 0;
    for (int i = 1; i < n; i++) g = fmax(g, (double)sorted[i] - (double)sorted[i - 1]);
    return g;
}

static void roundtrip(msbnb_qtype type) {
    const size_t n = 100003;
    const int bs = 64;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    uint8_t *p = malloc((n + 1) / 2);
    float *a = malloc((n / bs + 1) * 4);
    test_rng r = {11};
    for (size_t i = 0; i < n; i++) { /* normal, uniform and heavy-tailed thirds */
        double u = test_rng_uniform(&r);
        x[i] = (float)(i % 3 == 0 ? test_rng_normal(&r) : i % 3 == 1 ? 4 * u - 2 : test_rng_normal(&r) / (u + 0.01));
    }
    CHECK_OK(msbnb_quantize_4bit_blockwise(type, x, n, bs, p, a));
    CHECK_OK(msbnb_dequantize_4bit_blockwise(type, p, a, n, bs, y));

    /* sorted code values: NF4 is sorted; FP4 magnitudes sorted with their negatives */
    float sorted[16];
    int ns = 16;
    if (type == MSBNB_QTYPE_NF4) {
        memcpy(sorted, msbnb_nf4_code(), sizeof sorted);
    } else {
        const float mags[8] = {0.0f, 1 / 192.f, 1 / 6.f, 0.25f, 1 / 3.f, 0.5f, 2 / 3.f, 1.0f};
        ns = 15;
        for (int i = 0; i < 7; i++) sorted[i] = -mags[7 - i];
        for (int i = 0; i < 8; i++) sorted[7 + i] = mags[i];
    }
    /* the thresholds are float32 midpoints (FP4's 0.583333 is 3.3e-7 off), plus product rounding */
    const double half_gap = max_gap(sorted, ns) / 2 + 1e-6;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double am = a[i / bs];
        double err = fabs((double)x[i] - (double)y[i]);
        if (err > am * half_gap) bad++;
        /* nearest code: no table value is closer to x/absmax than the chosen one (up to 1e-6) */
        double s = (double)x[i] / am, chosen = (double)y[i] / am, best = 1e9;
        for (int k = 0; k < ns; k++) best = fmin(best, fabs(s - sorted[k]));
        if (fabs(s - chosen) > best + 1e-6) bad++;
    }
    CHECK_MSG_(bad == 0, "%s: %d elements outside the round-trip bound", msbnb_qtype_name(type), bad);
    /* the bound is not vacuous: some element comes close to it */
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)x[i] - (double)y[i]) / a[i / bs]);
    CHECK_MSG_(worst > 0.8 * (half_gap - 1e-6), "%s: worst relative error %g", msbnb_qtype_name(type), worst);
    free(x);
    free(y);
    free(p);
    free(a);
}
TEST(roundtrip_error_within_bound) {
    roundtrip(MSBNB_QTYPE_NF4);
    roundtrip(MSBNB_QTYPE_FP4);
}

/* ---------------------------------------------------------------- bad arguments */

TEST(bad_arguments) {
    float x[64] = {0}, y[64], a[2];
    uint8_t p[32];
    const msbnb_qtype nf4 = MSBNB_QTYPE_NF4;
    int bad_bs[] = {0, -64, 16, 48, 100, 8192};
    for (size_t i = 0; i < sizeof bad_bs / sizeof bad_bs[0]; i++) {
        CHECK_STATUS(msbnb_quantize_4bit_blockwise(nf4, x, 64, bad_bs[i], p, a), MSBNB_ERR_INVALID_ARG);
        CHECK_STATUS(msbnb_dequantize_4bit_blockwise(nf4, p, a, 64, bad_bs[i], y), MSBNB_ERR_INVALID_ARG);
    }
    CHECK(strstr(msbnb_last_error(), "blocksize") != NULL);
    CHECK_STATUS(msbnb_quantize_4bit_blockwise(MSBNB_QTYPE_INT8, x, 64, 64, p, a), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_dequantize_4bit_blockwise(MSBNB_QTYPE_BLOCKWISE8, p, a, 64, 64, y), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_quantize_4bit_blockwise(nf4, NULL, 64, 64, p, a), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_quantize_4bit_blockwise(nf4, x, 64, 64, NULL, a), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_quantize_4bit_blockwise(nf4, x, 64, 64, p, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_dequantize_4bit_blockwise(nf4, NULL, a, 64, 64, y), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_dequantize_4bit_blockwise(nf4, p, NULL, 64, 64, y), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_dequantize_4bit_blockwise(nf4, p, a, 64, 64, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK(strstr(msbnb_last_error(), "NULL") != NULL);
    /* n = 0 is an error (SHAPE), as zero-sized tensors are for msbnb_quantize */
    CHECK_STATUS(msbnb_quantize_4bit_blockwise(nf4, x, 0, 64, p, a), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_dequantize_4bit_blockwise(nf4, p, a, 0, 64, y), MSBNB_ERR_SHAPE);
    /* sizes whose byte count overflows size_t are rejected before any access */
    CHECK_STATUS(msbnb_quantize_4bit_blockwise(nf4, x, SIZE_MAX, 64, p, a), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_dequantize_4bit_blockwise(nf4, p, a, SIZE_MAX / 2, 64, y), MSBNB_ERR_SHAPE);
    CHECK(strstr(msbnb_last_error(), "overflow") != NULL);
}

int main(void) {
    RUN(search_equals_cuda_tree);
    RUN(simd_matches_reference);
    RUN(simd_matches_reference_multi_mb);
    RUN(nonfinite_and_edge_policy);
    RUN(values_on_thresholds);
    RUN(thread_count_invariance);
    RUN(roundtrip_error_within_bound);
    RUN(bad_arguments);
    return test_report();
}
