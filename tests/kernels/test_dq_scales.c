/*
 * test_dq_scales.c — the SIMD decoders of double-quantized block statistics used by the streaming
 * 4-bit kernels for NF4/FP4 + double quant: AVX-512 (x86/dq_scales_avx512.c) in both of its ways
 * (byte lookups with AVX512-VBMI, fp32 permutes without) and AVX2 (x86/dq_scales_avx2.c, gathers)
 * must give msbnb__w4_stat's value (the definition) bit for bit, for every one of the 256 codes,
 * at every start offset and length (the 8-, 16- and 64-wide loops and their scalar edges), with
 * nested blocks of 256 (bitsandbytes), 16 and 8. Each decoder runs where the CPU has its ISA.
 */
#include <string.h>

#include <msbnb/quant.h>

#include "kernels/matmul_4bit.h"
#include "test.h"
#include "fourbit_fixtures.h"

#if MSBNB_HAVE_X86
enum { AVX512_VBMI, AVX512_PERMPS, AVX2_GATHER, N_WAYS };
static const char *const WAY_NAMES[N_WAYS] = {"AVX-512 byte lookups", "AVX-512 fp32 permutes", "AVX2 gathers"};

/* Decode [i0, i0 + n) the chosen way and compare each value's bits with msbnb__w4_stat. */
static int decoded_exactly(const msbnb__w4 *w, int64_t i0, int64_t n, int way, float *out) {
    memset(out, 0xFF, (size_t)(n + 1) * sizeof(float)); /* NaN fill; out[n] must stay untouched */
    if (way == AVX2_GATHER) {
        msbnb__mm4_dq_scales_avx2(w, i0, n, out);
    } else {
        msbnb__mm4_dq_force_no_vbmi(way == AVX512_PERMPS);
        msbnb__mm4_dq_scales_avx512(w, i0, n, out);
        msbnb__mm4_dq_force_no_vbmi(0);
    }
    uint32_t guard;
    memcpy(&guard, &out[n], sizeof guard);
    int ok = guard == 0xFFFFFFFFu;
    for (int64_t j = 0; j < n; j++) {
        const float ref = msbnb__w4_stat(w, i0 + j);
        ok &= memcmp(&ref, &out[j], sizeof ref) == 0;
    }
    return ok;
}
#endif

TEST(every_decoder_equals_the_definition) {
#if MSBNB_HAVE_X86
    int ways[N_WAYS] = {0}; /* which decoders this CPU runs */
    ways[AVX2_GATHER] = msbnb_isa_detected() >= MSBNB_ISA_AVX2;
    ways[AVX512_PERMPS] = msbnb_isa_detected() >= MSBNB_ISA_AVX512;
    ways[AVX512_VBMI] = ways[AVX512_PERMPS] && __builtin_cpu_supports("avx512vbmi");
    for (int k = 0; k < N_WAYS; k++) printf("  %s: %s\n", WAY_NAMES[k], ways[k] ? "tested" : "not on this CPU");
    /* A real NF4+DQ tensor gives the nested code table (bitsandbytes' signed dynamic map) and the
     * byte planes msbnb__w4_init builds from it; the statistics' codes and nested absmax are then
     * replaced by ones that use all 256 codes and vary per nested block. */
    const int64_t rows = 64, cols = 1024, n_stats = rows * cols / 64; /* 1024 statistics */
    test_rng rng = {53};
    float *w = malloc((size_t)(rows * cols) * sizeof(float)), *out = malloc((size_t)(n_stats + 1) * sizeof(float));
    float *nested = malloc((size_t)(n_stats / 8) * sizeof(float));
    uint8_t *codes = malloc((size_t)n_stats);
    test_fill_normal(&rng, w, (size_t)(rows * cols), 0.05f);
    msbnb_qtensor *q = make_w((fmt){MSBNB_QTYPE_NF4, 1, 64}, w, rows, cols);
    CHECK(q != NULL);
    if (q) {
        for (int64_t i = 0; i < n_stats; i++) codes[i] = (uint8_t)((i * 97 + (i >> 8)) & 255); /* all 256 */
        test_fill_normal(&rng, nested, (size_t)(n_stats / 8), 0.1f);
        msbnb__w4 v;
        msbnb__w4_init(q, &v);
        v.stats_q = codes;
        v.nested_absmax = nested;
        v.nested_offset = 0.0123f;
        const int shifts[3] = {8, 4, 3};
        const int64_t starts[] = {0, 5, 16, 37, 64, 200};
        const int64_t lengths[] = {0, 1, 15, 16, 17, 63, 64, 65, 128, 130, 500, 824};
        int bad = 0, cases = 0;
        for (int s = 0; s < 3; s++) {
            v.nested_shift = shifts[s];
            v.nested_block = (int64_t)1 << shifts[s];
            for (size_t a = 0; a < sizeof starts / sizeof starts[0]; a++)
                for (size_t b = 0; b < sizeof lengths / sizeof lengths[0]; b++)
                    for (int way = 0; way < N_WAYS; way++) {
                        if (!ways[way]) continue;
                        cases++;
                        if (!decoded_exactly(&v, starts[a], lengths[b], way, out)) {
                            bad++;
                            printf("  nested block %lld, start %lld, length %lld, %s: differs\n",
                                   (long long)v.nested_block, (long long)starts[a], (long long)lengths[b],
                                   WAY_NAMES[way]);
                        }
                    }
        }
        printf("  %d decodes, all bit-identical to the definition: %s\n", cases, bad ? "no" : "yes");
        CHECK(bad == 0);
    }
    msbnb_qtensor_free(q);
    free(w), free(out), free(nested), free(codes);
#endif
}

int main(void) {
    RUN(every_decoder_equals_the_definition);
    return test_report();
}
