/*
 * test_double_quant.c — double quantization of 4-bit statistics: the offset is the mean, the codes
 * are BLOCKWISE8 of (s - offset), the round trip stays within the nested format's bound, results do
 * not depend on threads or ISA, and bad input is refused. Golden vectors: test_golden_bnb.c.
 */
#include "test.h"

#include <msbnb/quant.h>

#include "quant/fourbit_internal.h"

/* absmax-like statistics: positive, spread over two orders of magnitude */
static void fill_stats(float *s, size_t n, uint64_t seed) {
    test_rng r = {seed};
    for (size_t i = 0; i < n; i++) s[i] = (float)(fabs(test_rng_normal(&r)) * (i % 7 == 0 ? 30.0 : 1.0) + 0.01);
}

static void roundtrip(msbnb_isa isa, void *ctx) {
    (void)ctx;
    static const size_t lens[] = {1, 2, 255, 256, 257, 313, 1000, 65537};
    static const int nbs[] = {64, 256, 4096};
    const float *code = msbnb_dynamic_map_signed();
    for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
        for (size_t b = 0; b < 3; b++) {
            const size_t n = lens[l];
            const int bs = nbs[b];
            const size_t nn = (n + (size_t)bs - 1) / (size_t)bs;
            float *s = malloc(n * 4), *back = malloc(n * 4), *nested = malloc(nn * 4), *nested2 = malloc(nn * 4);
            float *centered = malloc(n * 4);
            uint8_t *q = malloc(n), *q2 = malloc(n);
            fill_stats(s, n, 100 + n);
            float offset = NAN;
            CHECK_OK(msbnb_double_quantize(s, n, bs, q, nested, &offset));

            /* offset: the mean, summed in double and rounded once */
            double sum = 0;
            for (size_t i = 0; i < n; i++) sum += s[i];
            CHECK_MSG_(offset == (float)(sum / (double)n), "[%s] offset %a", msbnb_isa_name(isa), (double)offset);

            /* codes and nested absmax: exactly BLOCKWISE8 of the float32 differences */
            for (size_t i = 0; i < n; i++) centered[i] = s[i] - offset;
            CHECK_OK(msbnb_quantize_blockwise8(NULL, centered, n, bs, q2, nested2));
            CHECK(memcmp(q, q2, n) == 0);
            CHECK(memcmp(nested, nested2, nn * 4) == 0);

            /* dequantized: code[q] * nested_absmax + offset, within half the local map gap */
            CHECK_OK(msbnb_double_dequantize(q, nested, offset, NULL, n, bs, back));
            int bad = 0;
            for (size_t i = 0; i < n; i++) {
                float want = code[q[i]] * nested[i / (size_t)bs] + offset;
                if (memcmp(&want, &back[i], 4) != 0) bad++;
                double am = nested[i / (size_t)bs];
                double rel = am > 0 ? fabs((double)s[i] - back[i]) / am : fabs((double)s[i] - back[i]);
                /* half the largest gap of the signed dynamic map, plus the rounding of + offset */
                if (rel > 0.01407 / 2 + 1e-6 + 1.2e-7 * fabs(offset) / (am > 0 ? am : 1)) bad++;
            }
            CHECK_MSG_(bad == 0, "[%s] n=%zu bs=%d: %d bad elements", msbnb_isa_name(isa), n, bs, bad);
            free(s);
            free(back);
            free(nested);
            free(nested2);
            free(centered);
            free(q);
            free(q2);
        }
}
TEST(roundtrip_and_definition) { test_for_each_isa(roundtrip, NULL); }

TEST(largest_map_gap) { /* the constant used above */
    const float *code = msbnb_dynamic_map_signed();
    double g = 0;
    for (int i = 1; i < 256; i++) g = fmax(g, (double)code[i] - code[i - 1]);
    CHECK(g < 0.01407 && g > 0.014);
}

TEST(thread_count_invariance) {
    const size_t n = 300001;
    float *s = malloc(n * 4), *back[3];
    uint8_t *q[3];
    float nested[3][1200], offset[3];
    fill_stats(s, n, 5);
    int saved = msbnb_get_num_threads();
    for (int t = 0; t < 3; t++) {
        msbnb_set_num_threads(t + 1);
        q[t] = malloc(n);
        back[t] = malloc(n * 4);
        CHECK_OK(msbnb_double_quantize(s, n, 256, q[t], nested[t], &offset[t]));
        CHECK_OK(msbnb_double_dequantize(q[t], nested[t], offset[t], NULL, n, 256, back[t]));
    }
    msbnb_set_num_threads(saved);
    for (int t = 1; t < 3; t++) {
        CHECK(memcmp(&offset[t], &offset[0], 4) == 0);
        CHECK(memcmp(q[t], q[0], n) == 0);
        CHECK(memcmp(nested[t], nested[0], (n + 255) / 256 * 4) == 0);
        CHECK(memcmp(back[t], back[0], n * 4) == 0);
    }
    for (int t = 0; t < 3; t++) {
        free(q[t]);
        free(back[t]);
    }
    free(s);
}

/* NF4 bs64 with double quantization: bits per weight as the issue states (4.127). */
TEST(bits_per_weight) {
    const double n = 4096.0 * 4096.0;
    const double blocks = n / 64, nested = ceil(blocks / 256);
    double plain = (n / 2 + blocks * 4) * 8 / n;
    double dq = (n / 2 + blocks * 1 + nested * 4 + 4) * 8 / n;
    CHECK_NEAR(plain, 4.5, 1e-12);
    CHECK_NEAR(dq, 4.127, 5e-4);
}

TEST(bad_arguments) {
    float s[4] = {1, 2, 3, 4}, nested[1], off, back[4];
    uint8_t q[4];
    CHECK_STATUS(msbnb_double_quantize(s, 4, 32, q, nested, &off), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_double_quantize(s, 4, 300, q, nested, &off), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_double_quantize(NULL, 4, 256, q, nested, &off), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_double_quantize(s, 4, 256, NULL, nested, &off), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_double_quantize(s, 4, 256, q, NULL, &off), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_double_quantize(s, 4, 256, q, nested, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_double_quantize(s, 0, 256, q, nested, &off), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_double_quantize(s, SIZE_MAX, 256, q, nested, &off), MSBNB_ERR_SHAPE);
    s[2] = NAN;
    CHECK_STATUS(msbnb_double_quantize(s, 4, 256, q, nested, &off), MSBNB_ERR_NUMERIC);
    s[2] = INFINITY;
    CHECK_STATUS(msbnb_double_quantize(s, 4, 256, q, nested, &off), MSBNB_ERR_NUMERIC);
    CHECK(strstr(msbnb_last_error(), "not finite") != NULL);
    CHECK_STATUS(msbnb_double_dequantize(NULL, nested, 0.0f, NULL, 4, 256, back), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_double_dequantize(q, NULL, 0.0f, NULL, 4, 256, back), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_double_dequantize(q, nested, 0.0f, NULL, 4, 256, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_double_dequantize(q, nested, 0.0f, NULL, 0, 256, back), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_double_dequantize(q, nested, 0.0f, NULL, 4, 8192, back), MSBNB_ERR_INVALID_ARG);
}

int main(void) {
    RUN(roundtrip_and_definition);
    RUN(largest_map_gap);
    RUN(thread_count_invariance);
    RUN(bits_per_weight);
    RUN(bad_arguments);
    return test_report();
}
