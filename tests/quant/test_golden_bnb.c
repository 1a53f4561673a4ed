/*
 * test_golden_bnb.c — NF4 / FP4 / BLOCKWISE8 / double quantization against the vectors produced
 * with bitsandbytes itself (../shared/golden/bnb, see its README.md and manifest.json).
 *
 * Codes must match the `_cuda` files (bitsandbytes' CUDA kernel rule) byte for byte; floats must
 * be equal with == (so +0 and -0 compare equal, the only freedom the README allows). Every test
 * runs at every ISA level the CPU has.
 */
#include "test.h"

#include <msbnb/quant.h>

/* ---------------------------------------------------------------- file helpers */

/* Reads golden/bnb/<name> and checks its size; NULL (and a failed check) when missing. */
static void *golden(const char *name, size_t want_bytes) {
    char rel[256];
    snprintf(rel, sizeof rel, "golden/bnb/%s", name);
    size_t len = 0;
    void *p = test_read_file(test_shared_path(rel), &len);
    CHECK_MSG_(p != NULL, "missing golden file %s", rel);
    if (p && len != want_bytes) {
        CHECK_MSG_(0, "%s: %zu bytes, expected %zu", rel, len, want_bytes);
        free(p);
        return NULL;
    }
    return p;
}

static int count_byte_diffs(const uint8_t *a, const uint8_t *b, size_t n) {
    int d = 0;
    for (size_t i = 0; i < n; i++) d += a[i] != b[i];
    return d;
}

/* Floats equal with == (±0 aside); NaN never appears in the golden data. */
static int count_float_diffs(const float *a, const float *b, size_t n) {
    int d = 0;
    for (size_t i = 0; i < n; i++) d += !(a[i] == b[i]);
    return d;
}

/* ---------------------------------------------------------------- code tables */

TEST(tables_byte_identical) {
    struct { const char *file; const float *table; size_t n; } t[] = {
        {"map_nf4.f32", msbnb_nf4_code(), 16},
        {"map_fp4.f32", msbnb_fp4_code(), 16},
        {"map_dynamic_signed.f32", msbnb_dynamic_map_signed(), 256},
        {"map_dynamic_unsigned.f32", msbnb_dynamic_map_unsigned(), 256},
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        float *g = golden(t[k].file, t[k].n * 4);
        if (!g) continue;
        CHECK_MSG_(memcmp(g, t[k].table, t[k].n * 4) == 0, "%s differs", t[k].file);
        free(g);
    }
}

/* ---------------------------------------------------------------- NF4 / FP4 */

static void check_q4(msbnb_isa isa, void *ctx) {
    (void)ctx;
    const size_t n = 4096;
    float *x = golden("input_n4096.f32", n * 4);
    for (int f = 0; f < 2 && x; f++) {
        const char *name = f ? "fp4" : "nf4";
        msbnb_qtype type = f ? MSBNB_QTYPE_FP4 : MSBNB_QTYPE_NF4;
        char file[128];
        snprintf(file, sizeof file, "q4_%s_bs64_n4096.packed_cuda.u8", name);
        uint8_t *want_packed = golden(file, n / 2);
        snprintf(file, sizeof file, "q4_%s_bs64_n4096.absmax_cpu.f32", name);
        float *want_absmax = golden(file, n / 64 * 4);
        snprintf(file, sizeof file, "q4_%s_bs64_n4096.dequant_cuda.f32", name);
        float *want_y = golden(file, n * 4);
        uint8_t packed[2048];
        float absmax[64], y[4096];
        CHECK_OK(msbnb_quantize_4bit_blockwise(type, x, n, 64, packed, absmax));
        if (want_packed)
            CHECK_MSG_(count_byte_diffs(packed, want_packed, n / 2) == 0, "[%s] %s packed: %d bytes differ",
                       msbnb_isa_name(isa), name, count_byte_diffs(packed, want_packed, n / 2));
        if (want_absmax)
            CHECK_MSG_(count_float_diffs(absmax, want_absmax, 64) == 0, "[%s] %s absmax differs",
                       msbnb_isa_name(isa), name);
        /* dequantize the golden bytes with the golden absmax: the CUDA-rule reference output */
        if (want_packed && want_absmax && want_y) {
            CHECK_OK(msbnb_dequantize_4bit_blockwise(type, want_packed, want_absmax, n, 64, y));
            CHECK_MSG_(count_float_diffs(y, want_y, n) == 0, "[%s] %s dequant: %d values differ",
                       msbnb_isa_name(isa), name, count_float_diffs(y, want_y, n));
        }
        free(want_packed);
        free(want_absmax);
        free(want_y);
    }
    free(x);
}
TEST(nf4_fp4_cuda_rule) { test_for_each_isa(check_q4, NULL); }

/* bitsandbytes' CPU path: its packed bytes with its absmax dequantize to its f32 output, and that
 * output rounded to fp16 / bf16 (msbnb_f32_to_f16 / _bf16, round to nearest even) gives its
 * half-precision outputs. ±0 compare equal. */
static int half_diffs(const float *y, const uint16_t *want, size_t n, int bf16) {
    int d = 0;
    for (size_t i = 0; i < n; i++) {
        uint16_t h = bf16 ? msbnb_f32_to_bf16(y[i]) : msbnb_f32_to_f16(y[i]);
        d += h != want[i] && (h | want[i]) != 0x8000;
    }
    return d;
}

TEST(nf4_fp4_cpu_path_and_half_outputs) {
    const size_t n = 4096;
    for (int f = 0; f < 2; f++) {
        const char *name = f ? "fp4" : "nf4";
        char file[128];
        snprintf(file, sizeof file, "q4_%s_bs64_n4096.packed_cpu.u8", name);
        uint8_t *packed = golden(file, n / 2);
        snprintf(file, sizeof file, "q4_%s_bs64_n4096.absmax_cpu.f32", name);
        float *absmax = golden(file, n / 64 * 4);
        snprintf(file, sizeof file, "q4_%s_bs64_n4096.dequant_cpu.f32", name);
        float *want = golden(file, n * 4);
        snprintf(file, sizeof file, "q4_%s_bs64_n4096.dequant_cpu.f16", name);
        uint16_t *want16 = golden(file, n * 2);
        snprintf(file, sizeof file, "q4_%s_bs64_n4096.dequant_cpu.bf16", name);
        uint16_t *wantb = golden(file, n * 2);
        if (packed && absmax && want && want16 && wantb) {
            float y[4096];
            CHECK_OK(msbnb_dequantize_4bit_blockwise(f ? MSBNB_QTYPE_FP4 : MSBNB_QTYPE_NF4, packed, absmax, n, 64, y));
            CHECK_MSG_(count_float_diffs(y, want, n) == 0, "%s f32: %d differ", name, count_float_diffs(y, want, n));
            CHECK_MSG_(half_diffs(y, want16, n, 0) == 0, "%s f16: %d differ", name, half_diffs(y, want16, n, 0));
            CHECK_MSG_(half_diffs(y, wantb, n, 1) == 0, "%s bf16: %d differ", name, half_diffs(y, wantb, n, 1));
        }
        free(packed);
        free(absmax);
        free(want);
        free(want16);
        free(wantb);
    }
}

/* ---------------------------------------------------------------- BLOCKWISE8 */

static void check_q8(msbnb_isa isa, void *ctx) {
    (void)ctx;
    const size_t n = 4096;
    float *x = golden("input_n4096.f32", n * 4);
    uint8_t *want_q = golden("q8_dyn_bs256_n4096.q_cuda.u8", n);
    float *want_absmax = golden("q8_dyn_bs256_n4096.absmax.f32", 16 * 4);
    float *want_y = golden("q8_dyn_bs256_n4096.dequant_cuda.f32", n * 4);
    if (x && want_q && want_absmax && want_y) {
        uint8_t q[4096];
        float absmax[16], y[4096];
        CHECK_OK(msbnb_quantize_blockwise8(NULL, x, n, 256, q, absmax));
        CHECK_MSG_(count_byte_diffs(q, want_q, n) == 0, "[%s] q: %d codes differ", msbnb_isa_name(isa),
                   count_byte_diffs(q, want_q, n));
        CHECK(count_float_diffs(absmax, want_absmax, 16) == 0);
        /* the explicit map gives the same codes as NULL */
        uint8_t q2[4096];
        CHECK_OK(msbnb_quantize_blockwise8(msbnb_dynamic_map_signed(), x, n, 256, q2, absmax));
        CHECK(memcmp(q, q2, n) == 0);
        CHECK_OK(msbnb_dequantize_blockwise8(NULL, want_q, want_absmax, n, 256, y));
        CHECK_MSG_(count_float_diffs(y, want_y, n) == 0, "[%s] dequant: %d values differ", msbnb_isa_name(isa),
                   count_float_diffs(y, want_y, n));
    }
    free(x);
    free(want_q);
    free(want_absmax);
    free(want_y);
}
TEST(blockwise8_cuda_rule) { test_for_each_isa(check_q8, NULL); }

/* Codes stored by bitsandbytes' CPU library (a different quantizer) still dequantize exactly, and
 * so do the double-quantized statistics built from them. */
TEST(cpulib_codes_dequantize) {
    uint8_t *q = golden("q8_dyn_bs256_n4096.q_cpulib.u8", 4096);
    float *absmax = golden("q8_dyn_bs256_n4096.absmax.f32", 16 * 4);
    float *want = golden("q8_dyn_bs256_n4096.dequant_cpulib.f32", 4096 * 4);
    if (q && absmax && want) {
        float y[4096];
        CHECK_OK(msbnb_dequantize_blockwise8(NULL, q, absmax, 4096, 256, y));
        CHECK(count_float_diffs(y, want, 4096) == 0);
    }
    free(q);
    free(absmax);
    free(want);
    uint8_t *aq = golden("dq_nf4_bs64_n20000.absmax_q_cpulib.u8", 313);
    float *nested = golden("dq_nf4_bs64_n20000.nested_absmax.f32", 2 * 4);
    float *offset = golden("dq_nf4_bs64_n20000.nested_offset.f32", 4);
    float *want_adq = golden("dq_nf4_bs64_n20000.absmax_dequant_cpulib.f32", 313 * 4);
    uint8_t *packed = golden("dq_nf4_bs64_n20000.packed.u8", 10000);
    float *want_y = golden("dq_nf4_bs64_n20000.dequant_cpulib.f32", 20000 * 4);
    if (aq && nested && offset && want_adq && packed && want_y) {
        float adq[313], *y = malloc(20000 * 4);
        CHECK_OK(msbnb_double_dequantize(aq, nested, *offset, msbnb_dynamic_map_signed(), 313, 256, adq));
        CHECK(count_float_diffs(adq, want_adq, 313) == 0);
        CHECK_OK(msbnb_dequantize_4bit_blockwise(MSBNB_QTYPE_NF4, packed, adq, 20000, 64, y));
        CHECK(count_float_diffs(y, want_y, 20000) == 0);
        free(y);
    }
    free(aq);
    free(nested);
    free(offset);
    free(want_adq);
    free(packed);
    free(want_y);
}

/* ---------------------------------------------------------------- double quantization */

static void check_dq(msbnb_isa isa, void *ctx) {
    (void)ctx;
    const size_t n = 20000, nb = 313;
    float *x = golden("input_n20000.f32", n * 4);
    uint8_t *want_packed = golden("dq_nf4_bs64_n20000.packed.u8", n / 2);
    float *want_absmax = golden("dq_nf4_bs64_n20000.absmax_fp32.f32", nb * 4);
    float *want_offset = golden("dq_nf4_bs64_n20000.nested_offset.f32", 4);
    uint8_t *want_aq = golden("dq_nf4_bs64_n20000.absmax_q_cuda.u8", nb);
    float *want_nested = golden("dq_nf4_bs64_n20000.nested_absmax.f32", 2 * 4);
    float *want_adq = golden("dq_nf4_bs64_n20000.absmax_dequant_cuda.f32", nb * 4);
    float *want_y = golden("dq_nf4_bs64_n20000.dequant_cuda.f32", n * 4);
    if (x && want_packed && want_absmax && want_offset && want_aq && want_nested && want_adq && want_y) {
        uint8_t *packed = malloc(n / 2), aq[313];
        float absmax[313], nested[2], offset = -1.0f, adq[313];
        float *y = malloc(n * 4);
        CHECK_OK(msbnb_quantize_4bit_blockwise(MSBNB_QTYPE_NF4, x, n, 64, packed, absmax));
        CHECK(count_byte_diffs(packed, want_packed, n / 2) == 0);
        CHECK(count_float_diffs(absmax, want_absmax, nb) == 0);

        CHECK_OK(msbnb_double_quantize(absmax, nb, 256, aq, nested, &offset));
        CHECK_MSG_(memcmp(&offset, want_offset, 4) == 0, "[%s] offset %a, expected %a", msbnb_isa_name(isa),
                   (double)offset, (double)*want_offset);
        CHECK_MSG_(count_byte_diffs(aq, want_aq, nb) == 0, "[%s] absmax codes: %d differ", msbnb_isa_name(isa),
                   count_byte_diffs(aq, want_aq, nb));
        CHECK(count_float_diffs(nested, want_nested, 2) == 0);

        CHECK_OK(msbnb_double_dequantize(aq, nested, offset, NULL, nb, 256, adq));
        CHECK_MSG_(count_float_diffs(adq, want_adq, nb) == 0, "[%s] dequantized absmax: %d differ",
                   msbnb_isa_name(isa), count_float_diffs(adq, want_adq, nb));
        CHECK_OK(msbnb_dequantize_4bit_blockwise(MSBNB_QTYPE_NF4, packed, adq, n, 64, y));
        CHECK_MSG_(count_float_diffs(y, want_y, n) == 0, "[%s] weights: %d differ", msbnb_isa_name(isa),
                   count_float_diffs(y, want_y, n));
        free(packed);
        free(y);
    }
    free(x);
    free(want_packed);
    free(want_absmax);
    free(want_offset);
    free(want_aq);
    free(want_nested);
    free(want_adq);
    free(want_y);
}
TEST(double_quant_statistics) { test_for_each_isa(check_dq, NULL); }

int main(void) {
    RUN(tables_byte_identical);
    RUN(nf4_fp4_cuda_rule);
    RUN(nf4_fp4_cpu_path_and_half_outputs);
    RUN(blockwise8_cuda_rule);
    RUN(cpulib_codes_dequantize);
    RUN(double_quant_statistics);
    return test_report();
}
