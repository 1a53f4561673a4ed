/* test_int4.c — INT4 per-group quantization: nibble order and packing goldens, hand-derived
 * codes, the scales layout [groups, rows], round-trip bound, SIMD == scalar, threads, errors. */
#include <float.h>
#include <msbnb/quant.h>

#include "test.h"

TEST(pack_golden) {
    const int8_t c[5] = {1, -2, -8, 7, -1};
    uint8_t p[3];
    CHECK_OK(msbnb_int4_pack(c, 5, p));
    CHECK_EQ_INT(p[0], 0x1E); /* first element in the HIGH nibble, -2 = 0xE */
    CHECK_EQ_INT(p[1], 0x87);
    CHECK_EQ_INT(p[2], 0xF0); /* odd length padded with code 0 */
    int8_t back[5];
    CHECK_OK(msbnb_int4_unpack(p, 5, back));
    CHECK(memcmp(back, c, 5) == 0);
    /* every code round-trips in both nibble positions */
    int8_t all[16], out[16];
    uint8_t pk[8];
    for (int i = 0; i < 16; i++) all[i] = (int8_t)(i - 8);
    CHECK_OK(msbnb_int4_pack(all, 16, pk));
    CHECK_OK(msbnb_int4_unpack(pk, 16, out));
    CHECK(memcmp(all, out, 16) == 0);
    const int8_t bad[2] = {8, 0};
    CHECK_STATUS(msbnb_int4_pack(bad, 2, pk), MSBNB_ERR_INVALID_ARG);
}

/* absmax 7 -> f = 7/7 = 1 and scale = 1 exactly, so codes are rne(x) clamped:
 * 7, -3.5 -> -4, 2.5 -> 2, 0.5 -> 0, -0.5 -> 0, 1.5 -> 2, -7, 0. Second row (absmax 3.5,
 * f = 2, scale = 0.5): 3.5 -> 7, -3.5 -> -7, 0.25 -> rne(0.5) = 0, 0.75 -> rne(1.5) = 2. */
TEST(quant_golden) {
    const float x[2][8] = {{7.0f, -3.5f, 2.5f, 0.5f, -0.5f, 1.5f, -7.0f, 0.0f},
                           {3.5f, -3.5f, 0.25f, 0.75f, 0.0f, 0.0f, -1.0f, 1.0f}};
    uint8_t p[2][4];
    float s[2 * 2]; /* group_size 4: 2 groups x 2 rows */
    CHECK_OK(msbnb_quantize_int4(&x[0][0], 2, 8, 4, &p[0][0], s));
    const uint8_t want0[4] = {0x7C, 0x20, 0x02, 0x90};
    for (int i = 0; i < 4; i++) CHECK_MSG_(p[0][i] == want0[i], "byte %d: %02x != %02x", i, p[0][i], want0[i]);
    CHECK_EQ_INT(p[1][0], 0x79);
    CHECK_EQ_INT(p[1][1], 0x02);
    /* scales [group, row]: s[g*rows + r] */
    CHECK(s[0] == 1.0f);          /* group 0 row 0: absmax 7 */
    CHECK(s[1] == 0.5f);          /* group 0 row 1: absmax 3.5 */
    CHECK(s[2] == 1.0f);          /* group 1 row 0: absmax 7 */
    CHECK(s[3] == 1.0f / 7.0f);   /* group 1 row 1: absmax 1 */
    float y[16];
    CHECK_OK(msbnb_dequantize_int4(&p[0][0], s, 2, 8, 4, y));
    const float wy[8] = {7, -4, 2, 0, 0, 2, -7, 0};
    for (int i = 0; i < 8; i++) CHECK(y[i] == wy[i]);
    CHECK(y[8] == 3.5f && y[9] == -3.5f && y[10] == 0.0f && y[11] == 1.0f);
}

/* Non-finite policy: scale from finite elements; NaN -> 0, +Inf -> 7, -Inf -> -8 (the only way
 * to reach -8); an all-zero / all-non-finite group has scale 0; denormal groups (7/absmax
 * overflows) are coded in double precision. */
TEST(edges_policy) {
    const float x[16] = {-INFINITY, 1.0f, NAN, INFINITY, 0.0f, -0.0f, 0.0f, 0.0f,
                         NAN,       NAN,  1e-45f, -3e-45f, 1e30f, -1e30f, 5e29f, 0.0f};
    uint8_t p[8];
    float s[4];
    CHECK_OK(msbnb_quantize_int4(x, 1, 16, 4, p, s));
    CHECK(s[0] == 1.0f / 7.0f && s[1] == 0.0f && s[2] == 3e-45f / 7.0f && s[3] == 1e30f / 7.0f);
    int8_t c[16];
    CHECK_OK(msbnb_int4_unpack(p, 16, c));
    /* 1e-45f, -3e-45f are 1 and -2 units of 2^-149: 7 / 2 = 3.5 -> 4 (even) */
    const int8_t want[16] = {-8, 7, 0, 7, 0, 0, 0, 0, 0, 0, 4, -7, 7, -7, 4, 0};
    for (int i = 0; i < 16; i++) CHECK_MSG_(c[i] == want[i], "elem %d: %d != %d", i, c[i], want[i]);
}

TEST(roundtrip_bound) {
    const int64_t rows = 33, cols = 512;
    const int gs_list[] = {2, 32, 128, 512};
    test_rng rng = {3};
    size_t n = (size_t)(rows * cols);
    float *x = malloc(n * 4), *y = malloc(n * 4), *s = malloc(n * 4);
    uint8_t *p = malloc(n / 2);
    test_fill_normal(&rng, x, n, 0.02f);
    for (int64_t r = 0; r < rows; r++) x[r * cols + (r * 13) % cols] = 0.5f; /* outliers */
    for (int64_t c = 0; c < cols; c++) x[3 * cols + c] = (float)(c % 9) * 1e-41f;
    for (size_t gi = 0; gi < sizeof gs_list / sizeof gs_list[0]; gi++) {
        int gs = gs_list[gi];
        CHECK_OK(msbnb_quantize_int4(x, rows, cols, gs, p, s));
        CHECK_OK(msbnb_dequantize_int4(p, s, rows, cols, gs, y));
        int bad = 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) {
                float sc = s[(c / gs) * rows + r];
                double absmax = 7.0 * sc;
                double bound = 0.5 * sc + 4.0 * FLT_EPSILON * absmax + 1e-45;
                double e = fabs((double)x[r * cols + c] - y[r * cols + c]);
                if (e > bound && bad++ < 5) CHECK_MSG_(0, "gs %d r%lld c%lld: err %g > %g", gs, (long long)r, (long long)c, e, bound);
            }
    }
    free(x), free(y), free(s), free(p);
}

static void fill_edges(test_rng *rng, float *x, int64_t rows, int64_t cols) {
    test_fill_normal(rng, x, (size_t)(rows * cols), 1.0f);
    for (int64_t c = 0; c < cols; c++) x[c] = (c & 1) ? -0.0f : 0.0f;
    for (int64_t r = 1; r < rows; r++) {
        for (int k = 0; k < 3; k++) {
            uint64_t u = test_rng_u64(rng);
            int64_t c = (int64_t)(u % (uint64_t)cols);
            const float special[6] = {NAN, INFINITY, -INFINITY, 1e30f, 1e-40f, -0.0f};
            x[r * cols + c] = special[(u >> 40) % 6];
        }
    }
    if (rows > 2)
        for (int64_t c = 0; c < cols; c++) x[2 * cols + c] = (float)(c % 15 - 7) * 0.5f; /* ties at f = 1 */
}

TEST(simd_matches_scalar) {
    struct { int64_t cols; int gs[4]; } shapes[] = {
        {2, {2, 0}}, {64, {2, 32, 64, 0}}, {1000, {8, 40, 200, 1000}}, {384, {128, 384, 0}}, {4098, {2, 4098, 0}},
    };
    const int64_t rows = 7;
    test_rng rng = {5};
    msbnb_isa top = msbnb_isa_detected();
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int64_t cols = shapes[si].cols;
        size_t n = (size_t)(rows * cols);
        float *x = malloc(n * 4), *y0 = malloc(n * 4), *y1 = malloc(n * 4), *s0 = malloc(n * 4), *s1 = malloc(n * 4);
        uint8_t *p0 = malloc(n / 2), *p1 = malloc(n / 2);
        fill_edges(&rng, x, rows, cols);
        for (int k = 0; k < 4 && shapes[si].gs[k]; k++) {
            int gs = shapes[si].gs[k];
            size_t ns = (size_t)(cols / gs * rows);
            msbnb_isa_set(MSBNB_ISA_SCALAR);
            CHECK_OK(msbnb_quantize_int4(x, rows, cols, gs, p0, s0));
            CHECK_OK(msbnb_dequantize_int4(p0, s0, rows, cols, gs, y0));
            for (int l = 1; l <= (int)top; l++) {
                if (msbnb_isa_set((msbnb_isa)l) != MSBNB_OK) continue;
                CHECK_OK(msbnb_quantize_int4(x, rows, cols, gs, p1, s1));
                CHECK_OK(msbnb_dequantize_int4(p0, s0, rows, cols, gs, y1));
                CHECK_MSG_(!memcmp(p0, p1, n / 2) && !memcmp(s0, s1, ns * 4) && !memcmp(y0, y1, n * 4),
                           "isa %s cols %lld gs %d differs", msbnb_isa_name((msbnb_isa)l), (long long)cols, gs);
            }
            msbnb_isa_set(top);
        }
        free(x), free(y0), free(y1), free(s0), free(s1), free(p0), free(p1);
    }
}

TEST(thread_invariance) {
    const int64_t rows = 41, cols = 256;
    const int gs = 64;
    size_t n = (size_t)(rows * cols), ns = (size_t)(rows * cols / gs);
    test_rng rng = {9};
    float *x = malloc(n * 4), *y[3], *s[3];
    uint8_t *p[3];
    fill_edges(&rng, x, rows, cols);
    for (int t = 0; t < 3; t++) {
        y[t] = malloc(n * 4), s[t] = malloc(ns * 4), p[t] = malloc(n / 2);
        msbnb_set_num_threads(t + 1);
        CHECK_OK(msbnb_quantize_int4(x, rows, cols, gs, p[t], s[t]));
        CHECK_OK(msbnb_dequantize_int4(p[t], s[t], rows, cols, gs, y[t]));
    }
    msbnb_set_num_threads(0);
    for (int t = 1; t < 3; t++)
        CHECK(!memcmp(p[0], p[t], n / 2) && !memcmp(s[0], s[t], ns * 4) && !memcmp(y[0], y[t], n * 4));
    for (int t = 0; t < 3; t++) free(y[t]), free(s[t]), free(p[t]);
    free(x);
}

TEST(bad_args) {
    float x[12] = {0}, s[12], y[12];
    uint8_t p[6];
    CHECK_STATUS(msbnb_quantize_int4(x, 1, 12, 3, p, s), MSBNB_ERR_INVALID_ARG); /* odd */
    CHECK(strstr(msbnb_last_error(), "even") != NULL);
    CHECK_STATUS(msbnb_quantize_int4(x, 1, 12, 8, p, s), MSBNB_ERR_SHAPE); /* does not divide */
    CHECK(strstr(msbnb_last_error(), "divide") != NULL);
    CHECK_STATUS(msbnb_quantize_int4(x, 1, 12, 0, p, s), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_quantize_int4(x, 0, 12, 4, p, s), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_quantize_int4(NULL, 1, 12, 4, p, s), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_dequantize_int4(p, s, 1, 12, 5, y), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_quantize_int4(x, INT64_MAX, 12, 4, p, s), MSBNB_ERR_SHAPE);
}

/* Outputs above 16 MiB into a 64-byte aligned buffer take the streaming-store path of the
 * dequant kernels; the values must not change. Covers INT8 sym/asym and INT4. */
TEST(large_output_streaming) {
    const int64_t rows = 1030, cols = 4160; /* 17.1 MB of float32, rows 64-byte aligned */
    size_t n = (size_t)(rows * cols);
    test_rng rng = {77};
    float *x = malloc(n * 4), *y0 = aligned_alloc(64, n * 4), *y1 = aligned_alloc(64, n * 4);
    uint8_t *q = malloc(n);
    float *s = malloc((size_t)(rows * cols / 64) * 4);
    int32_t *z = malloc((size_t)rows * 4);
    test_fill_normal(&rng, x, n, 1.0f);
    msbnb_isa top = msbnb_isa_detected();
    for (int kind = 0; kind < 3; kind++) {
        if (kind == 0) CHECK_OK(msbnb_quantize_int8(x, rows, cols, 1, (int8_t *)q, s));
        if (kind == 1) CHECK_OK(msbnb_quantize_int8_asym(x, rows, cols, 1, q, s, z));
        if (kind == 2) CHECK_OK(msbnb_quantize_int4(x, rows, cols, 64, q, s));
        for (int l = 0; l <= (int)top; l++) {
            if (msbnb_isa_set((msbnb_isa)l) != MSBNB_OK) continue;
            float *y = l == 0 ? y0 : y1;
            if (kind == 0) CHECK_OK(msbnb_dequantize_int8((int8_t *)q, s, rows, cols, 1, y));
            if (kind == 1) CHECK_OK(msbnb_dequantize_int8_asym(q, s, z, rows, cols, 1, y));
            if (kind == 2) CHECK_OK(msbnb_dequantize_int4(q, s, rows, cols, 64, y));
            if (l > 0) CHECK_MSG_(!memcmp(y0, y1, n * 4), "kind %d isa %s differs", kind, msbnb_isa_name((msbnb_isa)l));
        }
        msbnb_isa_set(top);
    }
    free(x), free(y0), free(y1), free(q), free(s), free(z);
}

/* The one group-size rule shared by the converter and the model loader. */
TEST(group_for_rule) {
    CHECK_EQ_INT(msbnb_int4_group_for(4096, 128), 128); /* divides */
    CHECK_EQ_INT(msbnb_int4_group_for(172, 128), 172);  /* > half a row: one group per row */
    CHECK_EQ_INT(msbnb_int4_group_for(172, 64), 86);    /* smallest even divisor above 64 */
    CHECK_EQ_INT(msbnb_int4_group_for(64, 128), 64);    /* longer than the row */
    CHECK_EQ_INT(msbnb_int4_group_for(11008, 128), 128);
    CHECK_EQ_INT(msbnb_int4_group_for(300, 7), 10);     /* odd request: next even divisor */
    CHECK_EQ_INT(msbnb_int4_group_for(171, 128), 0);    /* odd cols cannot be packed */
    CHECK_EQ_INT(msbnb_int4_group_for(0, 128), 0);
    CHECK_EQ_INT(msbnb_int4_group_for(128, 1), 0);
    for (int64_t cols = 2; cols <= 600; cols += 2)
        for (int req = 2; req <= 256; req += 2) {
            int g = msbnb_int4_group_for(cols, req);
            CHECK_MSG_(g >= 2 && g % 2 == 0 && cols % g == 0 && (g >= req || g == cols), "cols %lld req %d -> %d",
                       (long long)cols, req, g);
        }
}

int main(void) {
    RUN(pack_golden);
    RUN(quant_golden);
    RUN(edges_policy);
    RUN(roundtrip_bound);
    RUN(simd_matches_scalar);
    RUN(thread_invariance);
    RUN(bad_args);
    RUN(large_output_streaming);
    RUN(group_for_rule);
    return test_report();
}
