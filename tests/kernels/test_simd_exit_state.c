/*
 * test_simd_exit_state.c — every SIMD path returns with the upper halves of the vector registers
 * in their initial (zero) state, on the calling thread and on the OpenMP workers.
 *
 * Why: code that runs after a kernel and is compiled without AVX (the caller's, libm's, the
 * model's own loops) pays for "dirty" upper halves — on the AVX-512 host here a SiLU loop of
 * 2048 expf ran 4x slower after a FAST product that returned without `vzeroupper` (gcc 12 dropped
 * it at the end of kernels that call helpers inside their loops), and FAST token generation of a
 * d768 model ran at 0.8x EXACT. The state is read with XGETBV(ECX = 1) (XINUSE): bit 2 = upper
 * halves of ymm0-15, bit 6 = upper 256 bits of zmm0-15. (zmm16-31, bit 7, are not affected by
 * vzeroupper and legacy SSE code cannot touch them, so they are not checked.)
 *
 * Covers, at every ISA level of the host (and the byte-lookup / AVX-VNNI / VBMI sub-variants the
 * tests can force): quantize + dequantize of every format, msbnb_matmul EXACT and FAST for
 * n in {1, 2, 3, 8, 17, 40}, msbnb_matmul_t, msbnb_matmul_int8_lt (threshold 0 and 6),
 * msbnb_int8_vectorwise_quant, fp16 / bf16 inputs (msbnb_matmul_ex, msbnb_quantize_ex), dense
 * fp32 products and their transposes, with 1 and 2 threads (the larger shape runs on both).
 * On CPUs without XGETBV(1) (or off x86) the test prints "skipped" and checks nothing.
 */
#include "test.h"

#include <msbnb/kernels.h>
#include <msbnb/quant.h>

#include "kernels/matmul_4bit.h"

#if defined(__x86_64__)
#include <cpuid.h>

static int xinuse_available(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)) || !(c & (1u << 28))) return 0; /* OSXSAVE, AVX */
    if (__get_cpuid_max(0, NULL) < 0xd) return 0;
    __cpuid_count(0xd, 1, a, b, c, d);
    return (a >> 2) & 1; /* XGETBV with ECX = 1 */
}
static uint64_t xinuse(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(1));
    return ((uint64_t)hi << 32) | lo;
}
#else
static int xinuse_available(void) { return 0; }
static uint64_t xinuse(void) { return 0; }
#endif

#define DIRTY_UPPER ((1u << 2) | (1u << 6)) /* YMM_Hi128 | ZMM_Hi256 */

/* Puts the upper halves in the dirty state as a kernel would (blindness check) and back. Plain
 * inline assembly in functions compiled without AVX: gcc adds no vzeroupper of its own here (it
 * does at the end of a target("avx") function). Needs AVX (xinuse_available checks it). */
#if defined(__x86_64__)
static void make_upper_dirty(void) { __asm__ volatile("vpcmpeqd %%ymm1, %%ymm1, %%ymm1" ::: "xmm1"); }
static void make_upper_clean(void) { __asm__ volatile("vzeroupper"); }
#else
static void make_upper_dirty(void) {}
static void make_upper_clean(void) {}
#endif

/* XINUSE's dirty bits on the calling thread, OR'ed with those of every thread of a team as large
 * as the library's (libgomp reuses its pool, so these are the workers that ran the kernel). Each
 * thread is cleaned afterwards so that one failure is not reported again by the next call. */
static unsigned dirty_after_call(void) {
    unsigned bits = (unsigned)(xinuse() & DIRTY_UPPER);
    make_upper_clean();
    const int threads = msbnb_get_num_threads();
    if (threads > 1) {
        unsigned team = 0;
#pragma omp parallel num_threads(threads) reduction(| : team)
        {
            team |= (unsigned)(xinuse() & DIRTY_UPPER);
            make_upper_clean();
        }
        bits |= team;
    }
    return bits;
}

static const char *isa_label = "";
static int n_calls_checked;

#define EXPECT_CLEAN(what, ...)                                                                   \
    do {                                                                                          \
        unsigned d_ = dirty_after_call();                                                         \
        n_calls_checked++;                                                                        \
        CHECK_MSG_(d_ == 0, "upper state dirty (XINUSE & 0x44 = %#x) after %s [isa %s, %d thread(s)] " what, \
                   d_, __func__, isa_label, msbnb_get_num_threads(), __VA_ARGS__);               \
    } while (0)

typedef struct fixture {
    int64_t out, in;
    float *w, *x, *y, *dx, *bias, *deq;
} fixture;

static void fixture_make(fixture *f, int64_t out, int64_t in) {
    test_rng r = {42};
    f->out = out, f->in = in;
    f->w = malloc(sizeof(float) * (size_t)(out * in));
    f->deq = malloc(sizeof(float) * (size_t)(out * in));
    f->x = malloc(sizeof(float) * (size_t)(40 * in));
    f->dx = malloc(sizeof(float) * (size_t)(40 * in));
    f->y = malloc(sizeof(float) * (size_t)(40 * out));
    f->bias = malloc(sizeof(float) * (size_t)out);
    test_fill_normal(&r, f->w, (size_t)(out * in), 0.05f);
    test_fill_normal(&r, f->x, (size_t)(40 * in), 1.0f);
    test_fill_normal(&r, f->bias, (size_t)out, 0.1f);
    for (int64_t i = 0; i < 40; i++) f->x[i * in + (i % in)] = 9.0f; /* an outlier column or two */
}
static void fixture_free(fixture *f) {
    free(f->w), free(f->deq), free(f->x), free(f->dx), free(f->y), free(f->bias);
}

typedef struct format {
    const char *name;
    msbnb_qtype type;
    int double_quant, asymmetric, per_row;
} format;
static const format FORMATS[] = {
    {"int8", MSBNB_QTYPE_INT8, 0, 0, 1},       {"int8-tensor", MSBNB_QTYPE_INT8, 0, 0, 0},
    {"int8-asym", MSBNB_QTYPE_INT8, 0, 1, 1},  {"int4", MSBNB_QTYPE_INT4, 0, 0, 0},
    {"nf4", MSBNB_QTYPE_NF4, 0, 0, 0},         {"fp4", MSBNB_QTYPE_FP4, 0, 0, 0},
    {"nf4+dq", MSBNB_QTYPE_NF4, 1, 0, 0},      {"int4+dq", MSBNB_QTYPE_INT4, 1, 0, 0},
    {"blockwise8", MSBNB_QTYPE_BLOCKWISE8, 0, 0, 0},
};
#define N_FORMATS (int)(sizeof FORMATS / sizeof FORMATS[0])

static msbnb_qtensor *quantize(const fixture *f, const format *fm) {
    msbnb_quant_config cfg = msbnb_quant_config_default(fm->type);
    cfg.double_quant = fm->double_quant;
    if (fm->type == MSBNB_QTYPE_INT8) cfg.asymmetric = fm->asymmetric, cfg.per_row = fm->per_row;
    if (fm->type == MSBNB_QTYPE_INT4) cfg.group_size = msbnb_int4_group_for(f->in, cfg.group_size);
    msbnb_qtensor *q = NULL;
    if (msbnb_quantize(f->w, f->out, f->in, &cfg, &q) != MSBNB_OK) return NULL;
    return q;
}

static void check_products(const fixture *f) {
    static const int64_t NS[] = {1, 2, 3, 8, 17, 40};
    for (int k = 0; k < N_FORMATS; k++) {
        const format *fm = &FORMATS[k];
        msbnb_qtensor *q = quantize(f, fm);
        CHECK_MSG_(q != NULL, "quantize %s: %s", fm->name, msbnb_last_error());
        if (!q) continue;
        EXPECT_CLEAN("quantize %s %lldx%lld", fm->name, (long long)f->out, (long long)f->in);
        CHECK_OK(msbnb_dequantize(q, f->deq));
        EXPECT_CLEAN("dequantize %s", fm->name);
        if (fm->type == MSBNB_QTYPE_BLOCKWISE8) { /* storage format only: no products */
            msbnb_qtensor_free(q);
            continue;
        }
        for (int p = 0; p < 2; p++)
            for (size_t i = 0; i < sizeof NS / sizeof NS[0]; i++) {
                CHECK_OK(msbnb_matmul(q, f->x, NS[i], f->bias, f->y, (msbnb_precision)p));
                EXPECT_CLEAN("matmul %s %s n=%lld", fm->name, p ? "FAST" : "EXACT", (long long)NS[i]);
            }
        for (size_t i = 0; i < sizeof NS / sizeof NS[0]; i += 2) {
            CHECK_OK(msbnb_matmul_t(q, f->y, NS[i], f->dx, 0));
            EXPECT_CLEAN("matmul_t %s n=%lld", fm->name, (long long)NS[i]);
        }
        if (fm->type == MSBNB_QTYPE_INT8 && !fm->asymmetric)
            for (int t = 0; t < 2; t++) {
                CHECK_OK(msbnb_matmul_int8_lt(q, f->x, 17, f->bias, t ? 6.0f : 0.0f, f->y));
                EXPECT_CLEAN("matmul_int8_lt %s threshold %d", fm->name, t ? 6 : 0);
            }
        msbnb_qtensor_free(q);
    }
    /* half-precision inputs and outputs (conversion kernels), dense fp32 products (sgemv for one
     * row, msbnb's own tiles from 16 rows on AVX-512) */
    uint16_t *half = malloc(sizeof(uint16_t) * (size_t)(40 * (f->in > f->out ? f->in : f->out)));
    msbnb_qtensor *qn = quantize(f, &FORMATS[4]);
    if (half && qn) {
        for (int dt = MSBNB_DTYPE_F16; dt <= MSBNB_DTYPE_BF16; dt++) {
            for (int64_t i = 0; i < 40 * f->in; i++) half[i] = (uint16_t)(dt == MSBNB_DTYPE_BF16 ? 0x3F80 : 0x3C00);
            for (int p = 0; p < 2; p++) {
                CHECK_OK(msbnb_matmul_ex(qn, half, (msbnb_dtype)dt, 17, f->bias, f->y, (msbnb_precision)p));
                EXPECT_CLEAN("matmul_ex dtype %d %s", dt, p ? "FAST" : "EXACT");
            }
            msbnb_qtensor *qh = NULL;
            const msbnb_quant_config nf4 = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
            CHECK_OK(msbnb_quantize_ex(half, (msbnb_dtype)dt, 1, f->in, &nf4, &qh));
            EXPECT_CLEAN("quantize_ex dtype %d", dt);
            msbnb_qtensor_free(qh);
        }
    }
    msbnb_qtensor_free(qn);
    free(half);
    for (size_t i = 0; i < 3; i++) {
        static const int64_t DN[] = {1, 3, 20};
        CHECK_OK(msbnb_matmul_f32(f->w, f->out, f->in, f->x, DN[i], f->bias, f->y));
        EXPECT_CLEAN("matmul_f32 n=%lld", (long long)DN[i]);
        CHECK_OK(msbnb_matmul_f32_t(f->w, f->out, f->in, f->y, DN[i], f->dx, 0));
        EXPECT_CLEAN("matmul_f32_t n=%lld", (long long)DN[i]);
    }
    int8_t *codes = malloc((size_t)(40 * f->in));
    float stats[40];
    int32_t *cols = malloc(sizeof(int32_t) * (size_t)f->in);
    int64_t n_out = 0;
    if (codes && cols) {
        CHECK_OK(msbnb_int8_vectorwise_quant(f->x, 40, f->in, 6.0f, codes, stats, cols, &n_out));
        EXPECT_CLEAN("int8_vectorwise_quant %lld", (long long)f->in);
    }
    free(codes);
    free(cols);
}

/* Sub-variants the library picks inside one ISA level, forced one at a time. */
static void check_level(msbnb_isa isa, void *ctx) {
    const fixture *shapes = ctx;
    isa_label = msbnb_isa_name(isa);
    for (int variant = 0; variant < 4; variant++) {
        msbnb__mm4_fast_force_shufb(variant == 1);
        msbnb__mm4_fast_force_no_avxvnni(variant == 2);
        msbnb__mm4_dq_force_no_vbmi(variant == 3);
        for (int threads = 1; threads <= 2; threads++) {
            msbnb_set_num_threads(threads);
            check_products(&shapes[0]);
            if (variant == 0) check_products(&shapes[1]);
        }
    }
    msbnb__mm4_fast_force_shufb(0);
    msbnb__mm4_fast_force_no_avxvnni(0);
    msbnb__mm4_dq_force_no_vbmi(0);
    msbnb_set_num_threads(0);
}

TEST(kernels_return_with_clean_upper_halves) {
    /* a small odd shape (tails; one thread does everything) and one large enough (2^19 multiply-
     * adds at n = 1) that two threads split it */
    fixture shapes[2];
    fixture_make(&shapes[0], 37, 200);
    fixture_make(&shapes[1], 512, 1024);
    make_upper_dirty();
    CHECK_MSG_((xinuse() & DIRTY_UPPER) != 0, "XINUSE does not show a dirty ymm1: the check would be blind");
    make_upper_clean();
    CHECK_MSG_((xinuse() & DIRTY_UPPER) == 0, "XINUSE still dirty after vzeroupper: the check would be blind");
    test_for_each_isa(check_level, shapes);
    printf("  %d calls checked\n", n_calls_checked);
    fixture_free(&shapes[0]);
    fixture_free(&shapes[1]);
}

int main(void) {
    if (!xinuse_available()) {
        printf("skipped: this CPU has no XGETBV(1) (XINUSE), the state cannot be read\n");
        return test_report();
    }
    RUN(kernels_return_with_clean_upper_halves);
    return test_report();
}
