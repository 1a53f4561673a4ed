/* test_qtensor.c — the quantized-tensor object: defaults, names, every format through
 * msbnb_quantize cross-checked against the flat functions, views, clone, row ranges, fp16/bf16
 * input and output (against bitsandbytes' golden fp16/bf16 dequant), and argument errors. */
#include <msbnb/quant.h>

#include "quant/int_internal.h"
#include "test.h"

TEST(defaults_and_names) {
    msbnb_quant_config c = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    CHECK(c.blocksize == 64 && c.nested_blocksize == 256 && c.double_quant == 0);
    c = msbnb_quant_config_default(MSBNB_QTYPE_BLOCKWISE8);
    CHECK(c.blocksize == 256 && c.code == NULL);
    c = msbnb_quant_config_default(MSBNB_QTYPE_INT4);
    CHECK(c.group_size == 128);
    c = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
    CHECK(c.per_row == 1 && c.asymmetric == 0 && c.threshold == 6.0f);
    for (int t = MSBNB_QTYPE_NONE; t <= MSBNB_QTYPE_BLOCKWISE8; t++) {
        msbnb_qtype back;
        CHECK_OK(msbnb_qtype_parse(msbnb_qtype_name((msbnb_qtype)t), &back));
        CHECK_EQ_INT(back, t);
    }
    CHECK(strcmp(msbnb_qtype_name(MSBNB_QTYPE_INT4), "int4") == 0);
    CHECK(strcmp(msbnb_qtype_name((msbnb_qtype)99), "?") == 0);
    msbnb_qtype t;
    CHECK_STATUS(msbnb_qtype_parse("int3", &t), MSBNB_ERR_INVALID_ARG);
    CHECK(strstr(msbnb_last_error(), "int3") != NULL);
}

/* ---------------------------------------------------------------- every format */

typedef struct {
    const char *label;
    msbnb_quant_config cfg;
} case_t;

static int make_cases(case_t *cs) {
    int k = 0;
    cs[k].label = "int8 per-row", cs[k++].cfg = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
    cs[k].label = "int8 per-tensor", cs[k].cfg = msbnb_quant_config_default(MSBNB_QTYPE_INT8), cs[k++].cfg.per_row = 0;
    cs[k].label = "int8 asym", cs[k].cfg = msbnb_quant_config_default(MSBNB_QTYPE_INT8), cs[k++].cfg.asymmetric = 1;
    cs[k].label = "int8 asym tensor", cs[k].cfg = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
    cs[k].cfg.asymmetric = 1, cs[k++].cfg.per_row = 0;
    cs[k].label = "int4 g50", cs[k].cfg = msbnb_quant_config_default(MSBNB_QTYPE_INT4), cs[k++].cfg.group_size = 50;
    cs[k].label = "int4 g10 dq", cs[k].cfg = msbnb_quant_config_default(MSBNB_QTYPE_INT4);
    cs[k].cfg.group_size = 10, cs[k++].cfg.double_quant = 1;
    cs[k].label = "nf4", cs[k++].cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    cs[k].label = "nf4 dq", cs[k].cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4), cs[k++].cfg.double_quant = 1;
    cs[k].label = "fp4 bs128", cs[k].cfg = msbnb_quant_config_default(MSBNB_QTYPE_FP4), cs[k++].cfg.blocksize = 128;
    cs[k].label = "blockwise8", cs[k++].cfg = msbnb_quant_config_default(MSBNB_QTYPE_BLOCKWISE8);
    return k;
}

/* The same result computed with the flat functions only (the specification of each format). */
static void flat_reference(const msbnb_quant_config *c, const float *x, int64_t rows, int64_t cols, float *y) {
    size_t n = (size_t)(rows * cols);
    uint8_t *d = malloc(n);
    float *s = malloc(n * 4), *s2 = malloc(n * 4);
    int32_t *z = malloc((size_t)rows * 4);
    switch (c->type) {
    case MSBNB_QTYPE_INT8:
        if (c->asymmetric) {
            CHECK_OK(msbnb_quantize_int8_asym(x, rows, cols, c->per_row, d, s, z));
            CHECK_OK(msbnb_dequantize_int8_asym(d, s, z, rows, cols, c->per_row, y));
        } else {
            CHECK_OK(msbnb_quantize_int8(x, rows, cols, c->per_row, (int8_t *)d, s));
            CHECK_OK(msbnb_dequantize_int8((int8_t *)d, s, rows, cols, c->per_row, y));
        }
        break;
    case MSBNB_QTYPE_INT4: {
        CHECK_OK(msbnb_quantize_int4(x, rows, cols, c->group_size, d, s));
        size_t ns = n / (size_t)c->group_size;
        if (c->double_quant) {
            uint8_t *sq = malloc(ns);
            float na[64], off;
            CHECK_OK(msbnb_double_quantize(s, ns, 256, sq, na, &off));
            CHECK_OK(msbnb_double_dequantize(sq, na, off, msbnb_dynamic_map_signed(), ns, 256, s));
            free(sq);
        }
        CHECK_OK(msbnb_dequantize_int4(d, s, rows, cols, c->group_size, y));
        break;
    }
    case MSBNB_QTYPE_NF4:
    case MSBNB_QTYPE_FP4: {
        size_t nb = (n + (size_t)c->blocksize - 1) / (size_t)c->blocksize;
        CHECK_OK(msbnb_quantize_4bit_blockwise(c->type, x, n, c->blocksize, d, s));
        if (c->double_quant) {
            uint8_t *sq = malloc(nb);
            float na[64], off;
            CHECK_OK(msbnb_double_quantize(s, nb, 256, sq, na, &off));
            CHECK_OK(msbnb_double_dequantize(sq, na, off, msbnb_dynamic_map_signed(), nb, 256, s));
            free(sq);
        }
        CHECK_OK(msbnb_dequantize_4bit_blockwise(c->type, d, s, n, c->blocksize, y));
        break;
    }
    default:
        CHECK_OK(msbnb_quantize_blockwise8(NULL, x, n, c->blocksize, d, s));
        CHECK_OK(msbnb_dequantize_blockwise8(NULL, d, s, n, c->blocksize, y));
    }
    free(d), free(s), free(s2), free(z);
}

TEST(formats_views_rows) {
    const int64_t rows = 37, cols = 100; /* rows*cols = 3700: partial last block, unaligned row starts */
    size_t n = (size_t)(rows * cols);
    test_rng rng = {21};
    float *x = malloc(n * 4), *y = malloc(n * 4), *yr = malloc(n * 4), *y2 = malloc(n * 4);
    test_fill_normal(&rng, x, n, 0.02f);
    x[17] = 0.4f;
    case_t cs[16];
    int nc = make_cases(cs);
    for (int i = 0; i < nc; i++) {
        msbnb_qtensor *q = NULL, *q2 = NULL, *q3 = NULL;
        CHECK_OK(msbnb_quantize(x, rows, cols, &cs[i].cfg, &q));
        if (!q) continue;
        CHECK_OK(msbnb_dequantize(q, y));
        flat_reference(&cs[i].cfg, x, rows, cols, yr);
        CHECK_MSG_(!memcmp(y, yr, n * 4), "%s: qtensor differs from the flat functions", cs[i].label);
        /* view round trip and clone: identical parts and results */
        msbnb_qtensor_view v, v2;
        CHECK_OK(msbnb_qtensor_get_view(q, &v));
        CHECK_EQ_INT(v.type, cs[i].cfg.type);
        CHECK_OK(msbnb_qtensor_from_view(&v, &q2));
        CHECK_OK(msbnb_qtensor_clone(q, &q3));
        if (q2 && q3) {
            CHECK_OK(msbnb_qtensor_get_view(q2, &v2));
            CHECK(v2.data != v.data && v2.data_bytes == v.data_bytes && !memcmp(v2.data, v.data, v.data_bytes));
            CHECK(v2.n_stats == v.n_stats && v2.double_quant == v.double_quant && v2.nested_offset == v.nested_offset);
            CHECK_OK(msbnb_dequantize(q2, y2));
            CHECK_MSG_(!memcmp(y, y2, n * 4), "%s: from_view(get_view) differs", cs[i].label);
            CHECK_OK(msbnb_dequantize(q3, y2));
            CHECK_MSG_(!memcmp(y, y2, n * 4), "%s: clone differs", cs[i].label);
        }
        /* row ranges equal the slice of the full result */
        const int64_t ranges[][2] = {{0, 1}, {1, 3}, {5, 32}, {36, 1}, {0, 37}, {7, 0}};
        for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
            int64_t r0 = ranges[r][0], nr = ranges[r][1];
            memset(y2, 0xff, n * 4);
            CHECK_OK(msbnb_dequantize_rows(q, r0, nr, y2));
            CHECK_MSG_(!memcmp(y2, y + r0 * cols, (size_t)(nr * cols) * 4), "%s: rows [%lld,+%lld) differ", cs[i].label,
                       (long long)r0, (long long)nr);
        }
        CHECK_STATUS(msbnb_dequantize_rows(q, 30, 8, y2), MSBNB_ERR_SHAPE);
        CHECK_STATUS(msbnb_dequantize_rows(q, -1, 2, y2), MSBNB_ERR_SHAPE);
        msbnb_qtensor_free(q);
        msbnb_qtensor_free(q2);
        msbnb_qtensor_free(q3);
    }
    msbnb_qtensor_free(NULL);
    free(x), free(y), free(yr), free(y2);
}

/* Row ranges of a double-quantized tensor with several nested blocks (469 NF4 blocks, nested 256):
 * the range path reconstructs only the statistics it needs, from a nested-block boundary. */
TEST(rows_nested_ranges) {
    const int64_t rows = 300, cols = 100;
    size_t n = (size_t)(rows * cols);
    test_rng rng = {31};
    float *x = malloc(n * 4), *y = malloc(n * 4), *y2 = malloc(n * 4);
    test_fill_normal(&rng, x, n, 1.0f);
    for (int t = 0; t < 2; t++) {
        msbnb_quant_config c = msbnb_quant_config_default(t ? MSBNB_QTYPE_FP4 : MSBNB_QTYPE_NF4);
        c.double_quant = 1, c.nested_blocksize = 64 << t;
        msbnb_qtensor *q = NULL;
        CHECK_OK(msbnb_quantize(x, rows, cols, &c, &q));
        if (!q) continue;
        CHECK_OK(msbnb_dequantize(q, y));
        const int64_t ranges[][2] = {{0, 300}, {163, 1}, {164, 40}, {200, 100}, {299, 1}, {1, 298}};
        for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
            CHECK_OK(msbnb_dequantize_rows(q, ranges[r][0], ranges[r][1], y2));
            CHECK_MSG_(!memcmp(y2, y + ranges[r][0] * cols, (size_t)(ranges[r][1] * cols) * 4), "type %d range %zu", t, r);
        }
        msbnb_qtensor_free(q);
    }
    free(x), free(y), free(y2);
}

/* Every format through the object: 1, 2 and 3 threads give the same bytes and the same values. */
TEST(thread_invariance) {
    const int64_t rows = 29, cols = 200;
    size_t n = (size_t)(rows * cols);
    test_rng rng = {8};
    float *x = malloc(n * 4), *y[3];
    test_fill_normal(&rng, x, n, 0.5f);
    case_t cs[16];
    int nc = make_cases(cs);
    for (int i = 0; i < nc; i++) {
        msbnb_qtensor *q[3] = {NULL, NULL, NULL};
        for (int t = 0; t < 3; t++) {
            y[t] = malloc(n * 4);
            msbnb_set_num_threads(t + 1);
            CHECK_OK(msbnb_quantize(x, rows, cols, &cs[i].cfg, &q[t]));
            if (q[t]) CHECK_OK(msbnb_dequantize(q[t], y[t]));
        }
        msbnb_set_num_threads(0);
        for (int t = 1; t < 3 && q[0] && q[t]; t++) {
            msbnb_qtensor_view a, b;
            CHECK_OK(msbnb_qtensor_get_view(q[0], &a));
            CHECK_OK(msbnb_qtensor_get_view(q[t], &b));
            CHECK_MSG_(!memcmp(a.data, b.data, a.data_bytes) && !memcmp(y[0], y[t], n * 4) &&
                           (a.stats == NULL || !memcmp(a.stats, b.stats, a.n_stats * 4)) &&
                           (a.stats_q == NULL || !memcmp(a.stats_q, b.stats_q, a.n_stats)),
                       "%s: %d threads differ from 1", cs[i].label, t + 1);
        }
        for (int t = 0; t < 3; t++) msbnb_qtensor_free(q[t]), free(y[t]);
    }
    free(x);
}

/* ---------------------------------------------------------------- fp16 / bf16 */

TEST(half_io) {
    const int64_t rows = 16, cols = 100;
    size_t n = (size_t)(rows * cols);
    test_rng rng = {5};
    float *x = malloc(n * 4), *xw = malloc(n * 4), *y = malloc(n * 4), *y2 = malloc(n * 4);
    uint16_t *h = malloc(n * 2), *o = malloc(n * 2);
    test_fill_normal(&rng, x, n, 1.0f);
    case_t cs[16];
    int nc = make_cases(cs);
    for (int dt = 1; dt <= 2; dt++) {
        msbnb_dtype d = (msbnb_dtype)dt;
        for (size_t i = 0; i < n; i++) {
            h[i] = d == MSBNB_DTYPE_F16 ? msbnb_f32_to_f16(x[i]) : msbnb_f32_to_bf16(x[i]);
            xw[i] = d == MSBNB_DTYPE_F16 ? msbnb_f16_to_f32(h[i]) : msbnb_bf16_to_f32(h[i]);
        }
        for (int k = 0; k < nc; k++) {
            msbnb_qtensor *a = NULL, *b = NULL;
            CHECK_OK(msbnb_quantize_ex(h, d, rows, cols, &cs[k].cfg, &a));
            CHECK_OK(msbnb_quantize(xw, rows, cols, &cs[k].cfg, &b));
            if (!a || !b) continue;
            CHECK_OK(msbnb_dequantize(a, y));
            CHECK_OK(msbnb_dequantize(b, y2));
            CHECK_MSG_(!memcmp(y, y2, n * 4), "%s: quantize_ex(%d) differs from widened input", cs[k].label, dt);
            CHECK_OK(msbnb_dequantize_ex(a, d, o));
            int bad = 0;
            for (size_t i = 0; i < n; i++) {
                uint16_t want = d == MSBNB_DTYPE_F16 ? msbnb_f32_to_f16(y[i]) : msbnb_f32_to_bf16(y[i]);
                bad += o[i] != want;
            }
            CHECK_MSG_(bad == 0, "%s: dequantize_ex(%d) has %d elements not rounded from f32", cs[k].label, dt, bad);
            msbnb_qtensor_free(a);
            msbnb_qtensor_free(b);
        }
    }
    CHECK_STATUS(msbnb_quantize_ex(h, (msbnb_dtype)7, rows, cols, NULL, NULL), MSBNB_ERR_INVALID_ARG);
    free(x), free(xw), free(y), free(y2), free(h), free(o);
}

/* The vector float32 -> fp16/bf16 converters used by msbnb_dequantize_ex equal the scalar
 * msbnb_f32_to_f16 / msbnb_f32_to_bf16 on a sweep of bit patterns (every exponent, strided
 * mantissas) plus exact rounding ties, subnormal results, overflow, ±Inf and NaNs. */
TEST(half_conversion_kernels) {
    enum { CHUNK = 1 << 16 };
    float *x = malloc(CHUNK * sizeof(float));
    uint16_t *a = malloc(CHUNK * 2), *b = malloc(CHUNK * 2);
    msbnb_isa top = msbnb_isa_detected();
    uint64_t pat = 0;
    test_rng rng = {99};
    int bad = 0;
    for (int chunk = 0; chunk < 72; chunk++) {
        for (int i = 0; i < CHUNK; i++) {
            uint32_t u;
            if (chunk < 64) {
                u = (uint32_t)(pat += 1021); /* strided sweep of the 2^32 patterns (wraps once) */
            } else {
                u = (uint32_t)test_rng_u64(&rng); /* ties of both roundings, odd and even */
                u = (i & 1) ? (u & ~0x1fffu) | 0x1000u : (u & ~0xffffu) | 0x8000u;
            }
            memcpy(&x[i], &u, 4);
        }
        x[0] = 65520.0f, x[1] = 65519.99f, x[2] = INFINITY, x[3] = -INFINITY, x[4] = NAN, x[5] = 0x1p-25f;
        for (int bf = 0; bf <= 1; bf++) {
            for (int i = 0; i < CHUNK; i++) a[i] = bf ? msbnb_f32_to_bf16(x[i]) : msbnb_f32_to_f16(x[i]);
            for (int l = 0; l <= (int)top; l++) {
                if (msbnb_isa_set((msbnb_isa)l) != MSBNB_OK) continue;
                int n = CHUNK - chunk; /* vary the tail length */
                memset(b, 0, CHUNK * 2);
                msbnb__int_kernels_get()->f32_to_half(x, n, b, bf);
                if (memcmp(a, b, (size_t)n * 2) != 0 && bad++ < 5)
                    CHECK_MSG_(0, "chunk %d bf16 %d isa %s differs", chunk, bf, msbnb_isa_name((msbnb_isa)l));
            }
            msbnb_isa_set(top);
        }
    }
    free(x), free(a), free(b);
}

/* bitsandbytes' NF4/FP4 bs64 dequantized straight to fp16 / bf16 (../shared/golden/bnb). */
static int same_half(uint16_t a, uint16_t b) { return a == b || ((a | b) & 0x7fff) == 0; }

TEST(bnb_golden_half) {
    size_t len;
    float *x = test_read_file(test_shared_path("golden/bnb/input_n4096.f32"), &len);
    if (!x) {
        printf("  (skipped: ../shared/golden/bnb missing)\n");
        return;
    }
    CHECK_EQ_INT(len, 4096 * 4);
    const char *names[2] = {"nf4", "fp4"};
    for (int t = 0; t < 2; t++) {
        msbnb_quant_config c = msbnb_quant_config_default(t == 0 ? MSBNB_QTYPE_NF4 : MSBNB_QTYPE_FP4);
        msbnb_qtensor *q = NULL;
        CHECK_OK(msbnb_quantize(x, 64, 64, &c, &q));
        if (!q) continue;
        for (int dt = 1; dt <= 2; dt++) {
            char rel[128];
            snprintf(rel, sizeof rel, "golden/bnb/q4_%s_bs64_n4096.dequant_cpu.%s", names[t], dt == 1 ? "f16" : "bf16");
            uint16_t *g = test_read_file(test_shared_path(rel), &len), o[4096];
            CHECK(g && len == 4096 * 2);
            if (!g) continue;
            CHECK_OK(msbnb_dequantize_ex(q, (msbnb_dtype)dt, o));
            int bad = 0;
            for (int i = 0; i < 4096; i++) bad += !same_half(o[i], g[i]);
            CHECK_MSG_(bad == 0, "%s: %d of 4096 elements differ from bitsandbytes", rel, bad);
            free(g);
        }
        msbnb_qtensor_free(q);
    }
    free(x);
}

/* ---------------------------------------------------------------- errors */

TEST(bad_arguments) {
    float x[64] = {0};
    msbnb_qtensor *q = (msbnb_qtensor *)1;
    msbnb_quant_config c = msbnb_quant_config_default(MSBNB_QTYPE_INT4);
    c.group_size = 24;
    CHECK_STATUS(msbnb_quantize(x, 2, 32, &c, &q), MSBNB_ERR_SHAPE);
    CHECK(q == NULL && strstr(msbnb_last_error(), "divide") != NULL);
    c.group_size = 7;
    CHECK_STATUS(msbnb_quantize(x, 1, 14, &c, &q), MSBNB_ERR_INVALID_ARG);
    CHECK(strstr(msbnb_last_error(), "even") != NULL);
    c = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    c.blocksize = 100;
    CHECK_STATUS(msbnb_quantize(x, 1, 64, &c, &q), MSBNB_ERR_INVALID_ARG);
    CHECK(strstr(msbnb_last_error(), "100") != NULL);
    c.blocksize = 16;
    CHECK_STATUS(msbnb_quantize(x, 1, 64, &c, &q), MSBNB_ERR_INVALID_ARG);
    c = msbnb_quant_config_default(MSBNB_QTYPE_BLOCKWISE8);
    c.blocksize = 32;
    CHECK_STATUS(msbnb_quantize(x, 1, 64, &c, &q), MSBNB_ERR_INVALID_ARG);
    c = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    c.double_quant = 1, c.nested_blocksize = 100;
    CHECK_STATUS(msbnb_quantize(x, 1, 64, &c, &q), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_quantize(x, 0, 64, NULL, &q), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_quantize(x, 64, 0, NULL, &q), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_quantize(x, (int64_t)1 << 40, (int64_t)1 << 40, NULL, &q), MSBNB_ERR_SHAPE);
    CHECK(strstr(msbnb_last_error(), "overflow") != NULL);
    CHECK_STATUS(msbnb_quantize(x, (int64_t)1 << 41, 1, NULL, &q), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_quantize(NULL, 1, 64, NULL, &q), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_quantize(x, 1, 64, NULL, NULL), MSBNB_ERR_INVALID_ARG);
    c = msbnb_quant_config_default(MSBNB_QTYPE_NONE);
    CHECK_STATUS(msbnb_quantize(x, 1, 64, &c, &q), MSBNB_ERR_INVALID_ARG);
    c = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
    CHECK_STATUS(msbnb_quantize_4bit(x, 1, 64, &c, &q), MSBNB_ERR_INVALID_ARG);
    c.double_quant = 1;
    CHECK_STATUS(msbnb_quantize_8bit(x, 1, 64, &c, &q), MSBNB_ERR_INVALID_ARG);
    c.double_quant = 0, c.threshold = -1.0f;
    CHECK_STATUS(msbnb_quantize(x, 1, 64, &c, &q), MSBNB_ERR_INVALID_ARG);
    c.threshold = NAN;
    CHECK_STATUS(msbnb_quantize(x, 1, 64, &c, &q), MSBNB_ERR_INVALID_ARG);
    c = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    CHECK_STATUS(msbnb_quantize_8bit(x, 1, 64, &c, &q), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_dequantize(NULL, x), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_qtensor_get_view(NULL, NULL), MSBNB_ERR_INVALID_ARG);

    /* from_view: every size is checked against the shape */
    c = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
    c.asymmetric = 1;
    msbnb_qtensor *good = NULL, *r = NULL;
    CHECK_OK(msbnb_quantize(x, 2, 32, &c, &good));
    if (!good) return;
    msbnb_qtensor_view v;
    CHECK_OK(msbnb_qtensor_get_view(good, &v));
    msbnb_qtensor_view w = v;
    w.data_bytes = 63;
    CHECK_STATUS(msbnb_qtensor_from_view(&w, &r), MSBNB_ERR_SHAPE);
    w = v, w.n_stats = 1;
    CHECK_STATUS(msbnb_qtensor_from_view(&w, &r), MSBNB_ERR_SHAPE);
    w = v, w.data = NULL;
    CHECK_STATUS(msbnb_qtensor_from_view(&w, &r), MSBNB_ERR_INVALID_ARG);
    w = v, w.zero_point = NULL;
    CHECK_STATUS(msbnb_qtensor_from_view(&w, &r), MSBNB_ERR_INVALID_ARG);
    int32_t zp[2] = {3, 256};
    w = v, w.zero_point = zp;
    CHECK_STATUS(msbnb_qtensor_from_view(&w, &r), MSBNB_ERR_FORMAT);
    float bad_scale[2] = {1.0f, NAN};
    w = v, w.stats = bad_scale;
    CHECK_STATUS(msbnb_qtensor_from_view(&w, &r), MSBNB_ERR_FORMAT);
    w = v, w.rows = 0;
    CHECK_STATUS(msbnb_qtensor_from_view(&w, &r), MSBNB_ERR_SHAPE);
    w = v, w.type = (msbnb_qtype)42;
    CHECK_STATUS(msbnb_qtensor_from_view(&w, &r), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_qtensor_from_view(NULL, &r), MSBNB_ERR_INVALID_ARG);
    CHECK(r == NULL);
    msbnb_qtensor_free(good);
    /* NF4 with a foreign code table is rejected: the decoder uses the built-in table */
    CHECK_OK(msbnb_quantize(x, 1, 64, NULL, &good));
    if (!good) return;
    CHECK_OK(msbnb_qtensor_get_view(good, &v));
    w = v, w.code = msbnb_fp4_code();
    CHECK_STATUS(msbnb_qtensor_from_view(&w, &r), MSBNB_ERR_FORMAT);
    w = v, w.blocksize = 32;
    CHECK_STATUS(msbnb_qtensor_from_view(&w, &r), MSBNB_ERR_SHAPE); /* n_stats no longer matches */
    msbnb_qtensor_free(good);
}

/* Single-field corruptions of valid views (every format): from_view either rejects them with an
 * error status, or accepts a view whose buffer sizes are unchanged — so it never reads past the
 * caller's buffers (ASan would see it) — and the result dequantizes. */
TEST(view_mutations) {
    const int64_t rows = 6, cols = 40;
    float x[240], y[240 * 4];
    test_rng rng = {123};
    test_fill_normal(&rng, x, 240, 1.0f);
    case_t cs[16];
    int nc = make_cases(cs);
    const int64_t vals[] = {0, 1, 2, 3, 5, 6, 8, 10, 16, 20, 32, 40, 64, 100, 128, 239, 240, 241, 256, 480, -1, -64,
                            (int64_t)1 << 31, (int64_t)1 << 40, INT64_MAX};
    int accepted = 0, rejected = 0;
    for (int i = 0; i < nc; i++) {
        if (cs[i].cfg.type == MSBNB_QTYPE_INT4) cs[i].cfg.group_size = 10;
        msbnb_qtensor *q = NULL;
        CHECK_OK(msbnb_quantize(x, rows, cols, &cs[i].cfg, &q));
        if (!q) continue;
        msbnb_qtensor_view v;
        CHECK_OK(msbnb_qtensor_get_view(q, &v));
        for (int field = 0; field < 12; field++) {
            for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
                msbnb_qtensor_view w = v;
                int64_t val = vals[k];
                switch (field) {
                case 0: w.rows = val; break;
                case 1: w.cols = val; break;
                case 2: w.blocksize = (int)val; break;
                case 3: w.group_size = (int)val; break;
                case 4: w.data_bytes = (size_t)val; break;
                case 5: w.n_stats = (size_t)val; break;
                case 6: w.n_nested = (size_t)val; break;
                case 7: w.nested_blocksize = (int)val; break;
                case 8: w.type = (msbnb_qtype)val; break;
                case 9: w.asymmetric = (int)val; break;
                case 10: w.per_row = (int)val; break;
                default: w.double_quant = (int)val; break;
                }
                msbnb_qtensor *r = NULL;
                msbnb_status st = msbnb_qtensor_from_view(&w, &r);
                if (st != MSBNB_OK) {
                    rejected++;
                    CHECK(r == NULL && strlen(msbnb_last_error()) > 0);
                    continue;
                }
                accepted++;
                msbnb_qtensor_view rv;
                CHECK_OK(msbnb_qtensor_get_view(r, &rv));
                CHECK_MSG_(rv.data_bytes == v.data_bytes && rv.n_stats == v.n_stats && rv.double_quant == v.double_quant &&
                               (!v.double_quant || rv.n_nested == v.n_nested) && rv.rows * rv.cols <= 240 * 4,
                           "%s field %d value %lld accepted with other sizes", cs[i].label, field, (long long)val);
                if (rv.rows * rv.cols <= 240 * 4) CHECK_OK(msbnb_dequantize(r, y));
                msbnb_qtensor_free(r);
            }
        }
        msbnb_qtensor_free(q);
    }
    CHECK(accepted > 0 && rejected > accepted);
}

int main(void) {
    RUN(defaults_and_names);
    RUN(formats_views_rows);
    RUN(rows_nested_ranges);
    RUN(thread_invariance);
    RUN(half_io);
    RUN(half_conversion_kernels);
    RUN(bnb_golden_half);
    RUN(bad_arguments);
    RUN(view_mutations);
    return test_report();
}
