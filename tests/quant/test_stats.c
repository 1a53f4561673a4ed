/* test_stats.c — error statistics (hand-computed values, special cases) and storage accounting
 * (bits-per-weight goldens: NF4 bs64 4.5, NF4+DQ ~4.127, INT8 per-row 8 + 32/cols, ...). */
#include <msbnb/quant.h>

#include "test.h"

TEST(error_stats_hand) {
    const float ref[4] = {1, 2, 3, 4}, app[4] = {1, 2, 3, 5};
    msbnb_error_stats st;
    CHECK_OK(msbnb_error_stats_compute(ref, app, 4, &st));
    CHECK(st.mse == 0.25);
    CHECK(st.max_abs_error == 1.0);
    CHECK_NEAR(st.relative_error_pct, 100.0 * sqrt(1.0 / 30.0), 1e-12);
    CHECK_NEAR(st.snr_db, 10.0 * log10(30.0), 1e-12);
    CHECK_OK(msbnb_error_stats_compute(ref, ref, 4, &st));
    CHECK(st.mse == 0.0 && st.relative_error_pct == 0.0 && isinf(st.snr_db) && st.snr_db > 0);
    const float z[2] = {0, 0}, e[2] = {0, -0.5f};
    CHECK_OK(msbnb_error_stats_compute(z, e, 2, &st));
    CHECK(st.mse == 0.125 && st.max_abs_error == 0.5 && isinf(st.relative_error_pct) && st.snr_db < 0 && isinf(st.snr_db));
    const float nan1[2] = {0, NAN};
    CHECK_OK(msbnb_error_stats_compute(ref, nan1, 2, &st));
    CHECK(isnan(st.mse) && isnan(st.max_abs_error));
    CHECK_STATUS(msbnb_error_stats_compute(ref, app, 0, &st), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_error_stats_compute(NULL, app, 4, &st), MSBNB_ERR_INVALID_ARG);
}

TEST(estimate_matches_compute) {
    const int64_t rows = 64, cols = 128;
    size_t n = (size_t)(rows * cols);
    test_rng rng = {1};
    float *x = malloc(n * 4), *y = malloc(n * 4);
    test_fill_normal(&rng, x, n, 0.02f);
    const msbnb_qtype types[] = {MSBNB_QTYPE_INT8, MSBNB_QTYPE_INT4, MSBNB_QTYPE_NF4, MSBNB_QTYPE_FP4, MSBNB_QTYPE_BLOCKWISE8};
    double prev_mse[5];
    for (int t = 0; t < 5; t++) {
        msbnb_quant_config c = msbnb_quant_config_default(types[t]);
        msbnb_qtensor *q = NULL;
        CHECK_OK(msbnb_quantize(x, rows, cols, &c, &q));
        if (!q) continue;
        msbnb_error_stats a, b;
        CHECK_OK(msbnb_estimate_quantization_error(x, q, &a));
        CHECK_OK(msbnb_dequantize(q, y));
        CHECK_OK(msbnb_error_stats_compute(x, y, n, &b));
        CHECK(memcmp(&a, &b, sizeof a) == 0);
        CHECK(a.mse > 0 && isfinite(a.snr_db));
        prev_mse[t] = a.mse;
        msbnb_qtensor_free(q);
    }
    /* 8-bit formats are far more accurate than the 4-bit ones on Gaussian weights */
    CHECK(prev_mse[0] < prev_mse[1] / 20 && prev_mse[4] < prev_mse[2] / 20);
    free(x), free(y);
}

/* Storage accounting, built through from_view with zero buffers so large shapes stay cheap. */
static msbnb_quant_info info_of(msbnb_qtype type, int64_t rows, int64_t cols, int bs, int dq, int asym, int per_row) {
    msbnb_quant_info info;
    memset(&info, 0, sizeof info);
    msbnb_qtensor_view v;
    memset(&v, 0, sizeof v);
    v.type = type, v.rows = rows, v.cols = cols, v.blocksize = bs, v.group_size = bs;
    v.double_quant = dq, v.nested_blocksize = 256, v.asymmetric = asym, v.per_row = per_row;
    size_t n = (size_t)(rows * cols);
    switch (type) {
    case MSBNB_QTYPE_INT8: v.data_bytes = n, v.n_stats = per_row ? (size_t)rows : 1; break;
    case MSBNB_QTYPE_INT4: v.data_bytes = n / 2, v.n_stats = n / (size_t)bs; break;
    case MSBNB_QTYPE_BLOCKWISE8: v.data_bytes = n, v.n_stats = (n + (size_t)bs - 1) / (size_t)bs; break;
    default: v.data_bytes = (n + 1) / 2, v.n_stats = (n + (size_t)bs - 1) / (size_t)bs; break;
    }
    v.n_nested = (v.n_stats + 255) / 256;
    uint8_t *data = calloc(v.data_bytes, 1), *sq = calloc(v.n_stats, 1);
    float *stats = calloc(v.n_stats, 4), *na = calloc(v.n_nested, 4);
    int32_t *zp = calloc(v.n_stats, 4);
    v.data = data, v.stats = stats, v.zero_point = zp, v.stats_q = sq, v.nested_absmax = na;
    v.nested_code = msbnb_dynamic_map_signed();
    msbnb_qtensor *q = NULL;
    CHECK_OK(msbnb_qtensor_from_view(&v, &q));
    if (q) CHECK_OK(msbnb_get_quantization_info(q, &info));
    msbnb_qtensor_free(q);
    free(data), free(sq), free(stats), free(na), free(zp);
    return info;
}

TEST(info_goldens) {
    msbnb_quant_info i = info_of(MSBNB_QTYPE_NF4, 64, 64, 64, 0, 0, 0);
    CHECK(i.bits_per_weight == 4.5); /* 4 + 32/64 */
    CHECK(i.data_bytes == 2048 && i.stats_bytes == 256 && i.total_bytes == 2304);
    CHECK_NEAR(i.compression_vs_f32, 32.0 / 4.5, 1e-12);
    CHECK_NEAR(i.compression_vs_f16, 16.0 / 4.5, 1e-12);
    /* NF4 + DQ on 4096x4096: 4 + 8/64 + 32/(64*256) + 32/n = 4.12701 */
    i = info_of(MSBNB_QTYPE_NF4, 4096, 4096, 64, 1, 0, 0);
    CHECK_NEAR(i.bits_per_weight, 4.0 + 8.0 / 64 + 32.0 / (64 * 256) + 32.0 / (4096.0 * 4096.0), 1e-12);
    CHECK_NEAR(i.bits_per_weight, 4.127, 0.0005);
    i = info_of(MSBNB_QTYPE_INT8, 100, 300, 0, 0, 0, 1);
    CHECK_NEAR(i.bits_per_weight, 8.0 + 32.0 / 300, 1e-12);
    i = info_of(MSBNB_QTYPE_INT8, 100, 300, 0, 0, 1, 1); /* + int32 zero point per row */
    CHECK_NEAR(i.bits_per_weight, 8.0 + 64.0 / 300, 1e-12);
    i = info_of(MSBNB_QTYPE_INT8, 100, 300, 0, 0, 0, 0);
    CHECK_NEAR(i.bits_per_weight, 8.0 + 32.0 / 30000, 1e-12);
    i = info_of(MSBNB_QTYPE_INT4, 256, 1024, 128, 0, 0, 0);
    CHECK(i.bits_per_weight == 4.25);
    i = info_of(MSBNB_QTYPE_BLOCKWISE8, 256, 1024, 256, 0, 0, 0);
    CHECK(i.bits_per_weight == 8.125);
    i = info_of(MSBNB_QTYPE_FP4, 3, 7, 64, 0, 0, 0); /* odd n: 11 code bytes + 1 absmax */
    CHECK(i.data_bytes == 11 && i.total_bytes == 15);
    CHECK_STATUS(msbnb_get_quantization_info(NULL, &i), MSBNB_ERR_INVALID_ARG);
}

int main(void) {
    RUN(error_stats_hand);
    RUN(estimate_matches_compute);
    RUN(info_goldens);
    return test_report();
}
