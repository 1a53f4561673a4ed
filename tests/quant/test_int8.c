/* test_int8.c — INT8 symmetric (bitsandbytes CB/SCB rule) and asymmetric quantization:
 * hand-derived goldens, round-trip bounds, SIMD == scalar bit for bit, edge inputs, threads. */
#include <float.h>
#include <msbnb/quant.h>

#include "test.h"

/* ---------------------------------------------------------------- goldens */

/* The rule is code = rne(x * f) with f = fl(fl(1/absmax) * 127) — what bitsandbytes' torch code
 * round(A * (127.0 / row_stats)) computes, since PyTorch evaluates 127.0 / t as t.reciprocal() * 127
 * — NOT rne(x * fl(127/absmax)) nor the exact rne(x*127/absmax). With x = absmax/2 (exactly 63.5
 * in exact arithmetic, a tie that rounds to 64):
 *   absmax = 15/64: fl(1/a) = 0x1.111112p+2, f = 0x1.0eeef0p+9 = 541.866699 (ABOVE 127/a) ->
 *                   x*f = 63.5000038 -> 64;  fl(127/a) = 0x1.0eeeeep+9 would give 63.4999962 -> 63
 *   absmax = 47/64: fl(1/a) = 0x1.5c9882p+0, f = 0x1.59df50p+7 = 172.936157 (BELOW 127/a) ->
 *                   x*f = 63.4999962 -> 63;  fl(127/a) = 0x1.59df52p+7 gives exactly 63.5 -> 64
 * so the three candidate rules give (64, 63), (63, 64) and (64, 64) on these two rows.
 * absmax = 127: fl(1/127) * 127 = 1 exactly, so codes are rne(x): 62.5 -> 62, 63.5 -> 64,
 * 1.5 -> 2, -2.5 -> -2, ±0.5 -> 0 (half to even, not half away from zero). */
TEST(golden_bnb_rule) {
    const float x[3][8] = {
        {0.234375f, 0.1171875f, -0.1171875f, 0.0f, -0.234375f, 0.0f, 0.0f, 0.0f},
        {0.734375f, 0.3671875f, -0.3671875f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
        {127.0f, 62.5f, 63.5f, -0.5f, 0.5f, 1.5f, -2.5f, -127.0f},
    };
    const int8_t want[3][8] = {
        {127, 64, -64, 0, -127, 0, 0, 0},
        {127, 63, -63, 0, 0, 0, 0, 0},
        {127, 62, 64, 0, 0, 2, -2, -127},
    };
    int8_t q[3][8];
    float absmax[3];
    CHECK_OK(msbnb_quantize_int8(&x[0][0], 3, 8, 1, &q[0][0], absmax));
    CHECK(absmax[0] == 0.234375f && absmax[1] == 0.734375f && absmax[2] == 127.0f);
    CHECK((1.0f / 0.234375f) * 127.0f == 0x1.0eeef0p+9f && 127.0f / 0.234375f == 0x1.0eeeeep+9f);
    CHECK((1.0f / 0.734375f) * 127.0f == 0x1.59df50p+7f && 127.0f / 0.734375f == 0x1.59df52p+7f);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 8; c++) CHECK_MSG_(q[r][c] == want[r][c], "row %d col %d: %d != %d", r, c, q[r][c], want[r][c]);
}

/* Dequant is ((float)code * absmax) * fl(1/127) (bnb: A * stats * 7.874015718698502e-3), which
 * differs from code*absmax/127 by one ulp for code 9 and -104 with absmax 1 (python-derived). */
TEST(golden_bnb_dequant) {
    const int8_t q[4] = {9, 100, -104, 127};
    const float absmax[1] = {1.0f};
    float y[4];
    CHECK_OK(msbnb_dequantize_int8(q, absmax, 1, 4, 1, y));
    CHECK(y[0] == 0x1.224488p-4f); /* 9/127 correctly rounded would be 0x1.22448ap-4 */
    CHECK(y[1] == 0x1.93264cp-1f);
    CHECK(y[2] == -0x1.a3468cp-1f); /* not -0x1.a3468ep-1 */
    CHECK(y[3] == 127.0f * 0x1.020408p-7f);
}

/* Asymmetric [-1, 0, 3]: lo = -1, hi = 3, scale = fl(4/255) = 0x1.010102p-6, inv = fl(1/scale)
 * = 63.7499962, zp = rne(63.7499962) = 64; codes rne(-63.75)+64 = 0, 64, rne(191.25)+64 = 255. */
TEST(golden_asym) {
    const float x[3] = {-1.0f, 0.0f, 3.0f};
    uint8_t q[3];
    float scale;
    int32_t zp;
    CHECK_OK(msbnb_quantize_int8_asym(x, 1, 3, 1, q, &scale, &zp));
    CHECK(scale == 0x1.010102p-6f);
    CHECK_EQ_INT(zp, 64);
    CHECK_EQ_INT(q[0], 0);
    CHECK_EQ_INT(q[1], 64);
    CHECK_EQ_INT(q[2], 255);
    float y[3];
    CHECK_OK(msbnb_dequantize_int8_asym(q, &scale, &zp, 1, 3, 1, y));
    CHECK(y[0] == -0x1.010102p+0f && y[1] == 0.0f && y[2] == 0x1.7f7f8p+1f);
    /* all-positive row: lo clamps to 0, so zp = 0 and the full 0..255 range covers [0, max] */
    const float p[2] = {2.0f, 1.0f};
    CHECK_OK(msbnb_quantize_int8_asym(p, 1, 2, 1, q, &scale, &zp));
    CHECK_EQ_INT(zp, 0);
    CHECK_EQ_INT(q[0], 255);
    /* inv = fl(1 / fl(2/255)) = 127.4999924 (just below 127.5), so 1.0 -> 127, and 2.0 -> rne(254.99998) */
    CHECK_EQ_INT(q[1], 127);
}

/* Fixture written by bitsandbytes 0.50.2 itself (tests/quant/golden/make_int8_bnb.py): random rows
 * at scales 2^-8..2^7, eight rows of exact ties (k + 1/2) * absmax / 127, a zero row. CB, SCB and
 * int8_vectorwise_dequant must match bit for bit (±0 aside). */
static void *read_fixture(const char *name, size_t want) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/quant/golden/%s", MSBNB_SOURCE_DIR, name);
    size_t len = 0;
    void *p = test_read_file(path, &len);
    CHECK_MSG_(p && len == want, "fixture %s missing or %zu bytes (want %zu)", name, len, want);
    if (p && len != want) {
        free(p);
        p = NULL;
    }
    return p;
}

TEST(golden_bitsandbytes_fixture) {
    enum { R = 48, C = 96 };
    float *x = read_fixture("int8_bnb_48x96.input.f32", R * C * 4);
    int8_t *cb = read_fixture("int8_bnb_48x96.cb.i8", R * C);
    float *scb = read_fixture("int8_bnb_48x96.scb.f32", R * 4);
    float *deq = read_fixture("int8_bnb_48x96.dequant.f32", R * C * 4);
    if (x && cb && scb && deq) {
        int8_t q[R * C];
        float a[R], y[R * C];
        CHECK_OK(msbnb_quantize_int8(x, R, C, 1, q, a));
        CHECK_OK(msbnb_dequantize_int8(q, a, R, C, 1, y));
        CHECK(memcmp(a, scb, sizeof a) == 0);
        int bad_q = 0, bad_y = 0;
        for (int i = 0; i < R * C; i++) {
            bad_q += q[i] != cb[i];
            bad_y += !(y[i] == deq[i]) && !(isnan(y[i]) && isnan(deq[i]));
        }
        CHECK_MSG_(bad_q == 0, "%d of %d codes differ from bitsandbytes", bad_q, R * C);
        CHECK_MSG_(bad_y == 0, "%d of %d dequantized values differ from bitsandbytes", bad_y, R * C);
    }
    free(x), free(cb), free(scb), free(deq);
    /* fp16 input through the functional API (bnb widens fp16 to float32 in the product) */
    uint16_t *h = read_fixture("int8_bnb_48x96.input.f16", R * C * 2);
    int8_t *cb16 = read_fixture("int8_bnb_48x96.cb_from_f16.i8", R * C);
    float *scb16 = read_fixture("int8_bnb_48x96.scb_from_f16.f32", R * 4);
    msbnb_qtensor *q = NULL;
    if (h && cb16 && scb16) {
        msbnb_quant_config c = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
        CHECK_OK(msbnb_quantize_ex(h, MSBNB_DTYPE_F16, R, C, &c, &q));
        msbnb_qtensor_view v;
        if (q && msbnb_qtensor_get_view(q, &v) == MSBNB_OK) {
            CHECK(memcmp(v.data, cb16, R * C) == 0);
            CHECK(memcmp(v.stats, scb16, R * 4) == 0);
        }
    }
    msbnb_qtensor_free(q);
    free(h), free(cb16), free(scb16);
}

TEST(per_tensor) {
    const float x[2][3] = {{1.0f, -0.5f, 0.25f}, {-4.0f, 2.0f, 0.0f}};
    int8_t q[6];
    float a;
    CHECK_OK(msbnb_quantize_int8(&x[0][0], 2, 3, 0, q, &a));
    CHECK(a == 4.0f);
    /* f = 127/4 = 31.75: 1 -> 32 (31.75), -0.5 -> -16 (-15.875), 0.25 -> 8 (7.9375), 2 -> 64 (63.5 tie -> even) */
    const int8_t want[6] = {32, -16, 8, -127, 64, 0};
    for (int i = 0; i < 6; i++) CHECK_EQ_INT(q[i], want[i]);
    uint8_t u[6];
    float s;
    int32_t zp;
    CHECK_OK(msbnb_quantize_int8_asym(&x[0][0], 2, 3, 0, u, &s, &zp));
    CHECK(s == 0x1.818182p-6f); /* fl(6/255): range [-4, 2] */
    CHECK_EQ_INT(zp, 170);      /* fl(1/s) = 42.5 exactly, 4 * 42.5 = 170 */
    CHECK_EQ_INT(u[3], 0);
    CHECK_EQ_INT(u[4], 255); /* rne(2 * 42.5) + 170 = 85 + 170 */
}

/* ---------------------------------------------------------------- round-trip bounds */

/* |x - x̂| <= step/2 + slack: step = absmax/127 (sym) or scale (asym); slack covers the float
 * rounding of f, x*f and the two dequant products (a few ulp of absmax). */
static void check_bounds(const float *x, int64_t rows, int64_t cols, int per_row) {
    size_t n = (size_t)(rows * cols);
    int8_t *q = malloc(n);
    uint8_t *u = malloc(n);
    float *y = malloc(n * sizeof(float)), *a = malloc((size_t)rows * sizeof(float));
    float *s = malloc((size_t)rows * sizeof(float));
    int32_t *z = malloc((size_t)rows * sizeof(int32_t));
    CHECK_OK(msbnb_quantize_int8(x, rows, cols, per_row, q, a));
    CHECK_OK(msbnb_dequantize_int8(q, a, rows, cols, per_row, y));
    int bad = 0;
    for (int64_t r = 0; r < rows; r++) {
        float am = per_row ? a[r] : a[0];
        double bound = am / 127.0 * 0.5 + 4.0 * FLT_EPSILON * am;
        for (int64_t c = 0; c < cols; c++) {
            double e = fabs((double)x[r * cols + c] - y[r * cols + c]);
            if (e > bound && bad++ < 5) CHECK_MSG_(0, "sym r%lld c%lld err %g > %g", (long long)r, (long long)c, e, bound);
        }
    }
    CHECK_OK(msbnb_quantize_int8_asym(x, rows, cols, per_row, u, s, z));
    CHECK_OK(msbnb_dequantize_int8_asym(u, s, z, rows, cols, per_row, y));
    for (int64_t r = 0; r < rows; r++) {
        float sc = per_row ? s[r] : s[0];
        double bound = sc * 0.5 + 4.0 * FLT_EPSILON * 255.0 * sc;
        for (int64_t c = 0; c < cols; c++) {
            double e = fabs((double)x[r * cols + c] - y[r * cols + c]);
            if (e > bound && bad++ < 5) CHECK_MSG_(0, "asym r%lld c%lld err %g > %g", (long long)r, (long long)c, e, bound);
        }
    }
    free(q), free(u), free(y), free(a), free(s), free(z);
}

TEST(roundtrip_bound) {
    test_rng rng = {42};
    const int64_t rows = 37, cols = 301;
    float *x = malloc((size_t)(rows * cols) * sizeof(float));
    test_fill_normal(&rng, x, (size_t)(rows * cols), 0.02f);
    for (int64_t r = 0; r < rows; r++) x[r * cols + (r * 7) % cols] *= 50.0f; /* outliers */
    for (int64_t c = 0; c < cols; c++) x[5 * cols + c] = fabsf(x[5 * cols + c]) + 1.0f; /* all positive */
    for (int64_t c = 0; c < cols; c++) x[6 * cols + c] = (float)(c + 1) * 1e-40f; /* denormals: tiny path */
    for (int64_t c = 0; c < cols; c++) x[7 * cols + c] *= 1e30f; /* huge */
    check_bounds(x, rows, cols, 1);
    check_bounds(x, rows, cols, 0);
    free(x);
}

/* ---------------------------------------------------------------- non-finite policy and edges */

TEST(edges_policy) {
    const float inf = INFINITY;
    const float x[4][4] = {
        {0.0f, -0.0f, 0.0f, 0.0f},            /* zero row: absmax 0, codes 0 */
        {NAN, 1.0f, inf, -inf},               /* absmax over finite = 1; NaN -> 0, ±Inf -> ±127 */
        {1e-45f, -1e-45f, 0.0f, 3e-45f},      /* denormals: 127/absmax overflows -> double path */
        {1e30f, -5e29f, 0.0f, NAN},           /* huge */
    };
    int8_t q[16];
    float a[4], y[16];
    CHECK_OK(msbnb_quantize_int8(&x[0][0], 4, 4, 1, q, a));
    CHECK(a[0] == 0.0f && a[1] == 1.0f && a[2] == 3e-45f && a[3] == 1e30f);
    /* 1e-45f and 3e-45f round to 1 and 2 units of 2^-149: ratio 1/2 -> 63.5 -> 64 (even) */
    const int8_t want[16] = {0, 0, 0, 0, 0, 127, 127, -127, 64, -64, 0, 127, 127, -64, 0, 0};
    for (int i = 0; i < 16; i++) CHECK_MSG_(q[i] == want[i], "elem %d: %d != %d", i, q[i], want[i]);
    CHECK_OK(msbnb_dequantize_int8(q, a, 4, 4, 1, y));
    for (int i = 0; i < 16; i++) CHECK(isfinite(y[i]));
    CHECK(y[0] == 0.0f && y[6] == 1.0f && y[7] == -1.0f);
    /* asym: NaN -> zero point (dequantizes to exactly 0), Inf saturates */
    uint8_t u[16];
    float s[4];
    int32_t z[4];
    CHECK_OK(msbnb_quantize_int8_asym(&x[0][0], 4, 4, 1, u, s, z));
    CHECK(s[0] == 0.0f && z[0] == 0 && u[0] == 0);
    CHECK_EQ_INT(u[4], z[1]);
    CHECK_EQ_INT(u[6], 255);
    CHECK_EQ_INT(u[7], 0);
    CHECK_EQ_INT(u[15], z[3]);
    CHECK_OK(msbnb_dequantize_int8_asym(u, s, z, 4, 4, 1, y));
    for (int i = 0; i < 16; i++) CHECK(isfinite(y[i]));
    CHECK(y[4] == 0.0f && y[15] == 0.0f);
    /* extreme finite range: hi - lo overflows float but not the double computation of scale */
    const float e[2] = {-3e38f, 3e38f};
    CHECK_OK(msbnb_quantize_int8_asym(e, 1, 2, 1, u, s, z));
    CHECK(isfinite(s[0]) && s[0] > 0.0f);
    CHECK_OK(msbnb_dequantize_int8_asym(u, s, z, 1, 2, 1, y));
    CHECK(isfinite(y[0]) && isfinite(y[1]) && fabsf(y[1] - 3e38f) <= s[0]);
}

TEST(bad_args) {
    float x[4] = {0}, a[2], s[2];
    int8_t q[4];
    uint8_t u[4];
    int32_t z[2] = {0, 300};
    CHECK_STATUS(msbnb_quantize_int8(NULL, 1, 4, 1, q, a), MSBNB_ERR_INVALID_ARG);
    CHECK(strlen(msbnb_last_error()) > 0);
    CHECK_STATUS(msbnb_quantize_int8(x, 0, 4, 1, q, a), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_quantize_int8(x, 1, -1, 1, q, a), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_quantize_int8(x, (int64_t)1 << 40, (int64_t)1 << 40, 1, q, a), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_quantize_int8_asym(x, 1, 4, 1, u, s, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_dequantize_int8_asym(u, s, z, 2, 2, 1, x), MSBNB_ERR_INVALID_ARG);
    CHECK(strstr(msbnb_last_error(), "zero_point") != NULL);
    CHECK_STATUS(msbnb_dequantize_int8(q, NULL, 1, 4, 1, x), MSBNB_ERR_INVALID_ARG);
}

/* ---------------------------------------------------------------- SIMD == scalar, threads */

typedef struct {
    int8_t *q;
    uint8_t *u;
    float *a, *s, *y, *ya;
    int32_t *z;
} outputs;

static void run_all(const float *x, int64_t rows, int64_t cols, int per_row, outputs *o) {
    CHECK_OK(msbnb_quantize_int8(x, rows, cols, per_row, o->q, o->a));
    CHECK_OK(msbnb_dequantize_int8(o->q, o->a, rows, cols, per_row, o->y));
    CHECK_OK(msbnb_quantize_int8_asym(x, rows, cols, per_row, o->u, o->s, o->z));
    CHECK_OK(msbnb_dequantize_int8_asym(o->u, o->s, o->z, rows, cols, per_row, o->ya));
}

static void outputs_alloc(outputs *o, size_t n, size_t rows) {
    o->q = malloc(n), o->u = malloc(n);
    o->y = malloc(n * 4), o->ya = malloc(n * 4);
    o->a = malloc(rows * 4), o->s = malloc(rows * 4), o->z = malloc(rows * 4);
}
static void outputs_free(outputs *o) { free(o->q), free(o->u), free(o->y), free(o->ya), free(o->a), free(o->s), free(o->z); }

static int outputs_equal(const outputs *a, const outputs *b, size_t n, size_t ns) {
    return !memcmp(a->q, b->q, n) && !memcmp(a->u, b->u, n) && !memcmp(a->y, b->y, n * 4) &&
           !memcmp(a->ya, b->ya, n * 4) && !memcmp(a->a, b->a, ns * 4) && !memcmp(a->s, b->s, ns * 4) &&
           !memcmp(a->z, b->z, ns * 4);
}

/* Random rows with edge rows/elements sprinkled in: zero row, ±0, denormals, 1e30, NaN, ±Inf,
 * exact ties (x = absmax * k / 254). */
static void fill_edges(test_rng *rng, float *x, int64_t rows, int64_t cols) {
    test_fill_normal(rng, x, (size_t)(rows * cols), 1.0f);
    for (int64_t c = 0; c < cols; c++) x[0 * cols + c] = (c & 1) ? -0.0f : 0.0f;
    if (rows > 2)
        for (int64_t c = 0; c < cols; c++) x[2 * cols + c] = (float)((c % 5) - 2) * 1e-42f;
    if (rows > 3) {
        x[3 * cols] = 2.0f;
        for (int64_t c = 1; c < cols; c++) x[3 * cols + c] = 2.0f * (float)(c % 255) / 254.0f; /* ties */
    }
    for (int64_t r = 4; r < rows; r++) {
        uint64_t k = test_rng_u64(rng);
        int64_t c = (int64_t)(k % (uint64_t)cols);
        switch ((k >> 32) % 5) {
        case 0: x[r * cols + c] = NAN; break;
        case 1: x[r * cols + c] = INFINITY; break;
        case 2: x[r * cols + c] = -INFINITY; break;
        case 3: x[r * cols + c] = 1e30f; break;
        default: x[r * cols + c] = 1e-40f; break;
        }
    }
}

TEST(simd_matches_scalar) {
    const int64_t cols_list[] = {1, 2, 3, 63, 65, 1000, 4097};
    const int64_t rows = 9;
    test_rng rng = {7};
    msbnb_isa top = msbnb_isa_detected();
    for (size_t ci = 0; ci < sizeof cols_list / sizeof cols_list[0]; ci++) {
        int64_t cols = cols_list[ci];
        size_t n = (size_t)(rows * cols);
        float *x = malloc(n * 4);
        fill_edges(&rng, x, rows, cols);
        for (int per_row = 0; per_row <= 1; per_row++) {
            outputs ref, got;
            outputs_alloc(&ref, n, rows);
            outputs_alloc(&got, n, rows);
            msbnb_isa_set(MSBNB_ISA_SCALAR);
            run_all(x, rows, cols, per_row, &ref);
            for (int l = 1; l <= (int)top; l++) {
                if (msbnb_isa_set((msbnb_isa)l) != MSBNB_OK) continue;
                run_all(x, rows, cols, per_row, &got);
                CHECK_MSG_(outputs_equal(&ref, &got, n, per_row ? (size_t)rows : 1), "isa %s cols %lld per_row %d differs",
                           msbnb_isa_name((msbnb_isa)l), (long long)cols, per_row);
            }
            msbnb_isa_set(top);
            outputs_free(&ref);
            outputs_free(&got);
        }
        free(x);
    }
}

TEST(thread_invariance) {
    const int64_t rows = 53, cols = 257;
    size_t n = (size_t)(rows * cols);
    test_rng rng = {11};
    float *x = malloc(n * 4);
    fill_edges(&rng, x, rows, cols);
    for (int per_row = 0; per_row <= 1; per_row++) {
        outputs o[3];
        for (int t = 0; t < 3; t++) {
            outputs_alloc(&o[t], n, rows);
            msbnb_set_num_threads(t + 1);
            run_all(x, rows, cols, per_row, &o[t]);
        }
        msbnb_set_num_threads(0);
        CHECK(outputs_equal(&o[0], &o[1], n, per_row ? (size_t)rows : 1));
        CHECK(outputs_equal(&o[0], &o[2], n, per_row ? (size_t)rows : 1));
        for (int t = 0; t < 3; t++) outputs_free(&o[t]);
    }
    free(x);
}

int main(void) {
    RUN(golden_bnb_rule);
    RUN(golden_bnb_dequant);
    RUN(golden_bitsandbytes_fixture);
    RUN(golden_asym);
    RUN(per_tensor);
    RUN(roundtrip_bound);
    RUN(edges_policy);
    RUN(bad_args);
    RUN(simd_matches_scalar);
    RUN(thread_invariance);
    return test_report();
}
