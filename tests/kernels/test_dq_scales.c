/*
 * test_dq_scales.c — the AVX-512 decoder of double-quantized block statistics
 * (x86/dq_scales_avx512.c), which every streaming 4-bit kernel of the AVX-512 levels uses for
 * NF4/FP4 + double quant: both of its ways (byte lookups with AVX512-VBMI, fp32 permutes without)
 * must give msbnb__w4_stat's value (the definition) bit for bit, for every one of the 256 codes,
 * at every start offset and length (the 16- and 64-wide loops and their scalar edges), with nested
 * blocks of 256 (bitsandbytes) and of 16 (one absmax per vector). Skipped (reported) without AVX-512.
 */
#include <string.h>

#include <msbnb/quant.h>

#include "kernels/matmul_4bit.h"
#include "test.h"
#include "fourbit_fixtures.h"

#if MSBNB_HAVE_X86
/* Decode [i0, i0 + n) with the chosen way and compare each value's bits with msbnb__w4_stat. */
static int decoded_exactly(const msbnb__w4 *w, int64_t i0, int64_t n, int no_vbmi, float *out) {
    msbnb__mm4_dq_force_no_vbmi(no_vbmi);
    memset(out, 0xFF, (size_t)(n + 1) * sizeof(float)); /* NaN fill; out[n] must stay untouched */
    msbnb__mm4_dq_scales_avx512(w, i0, n, out);
    msbnb__mm4_dq_force_no_vbmi(0);
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

TEST(both_decoders_equal_the_definition) {
#if MSBNB_HAVE_X86
    if (msbnb_isa_detected() < MSBNB_ISA_AVX512) {
        printf("  (no AVX-512 on this CPU: nothing to test)\n");
        return;
    }
    /* A real NF4+DQ tensor gives the nested code table (bitsandbytes' signed dynamic map) and the
     * byte planes msbnb__w4_init builds from it; the statistics' codes and nested absmax are then
     * replaced by ones that use all 256 codes and vary per nested block. */
    const int64_t rows = 64, cols = 1024, n_stats = rows * cols / 64; /* 1024 statistics */
    test_rng rng = {53};
    float *w = malloc((size_t)(rows * cols) * sizeof(float)), *out = malloc((size_t)(n_stats + 1) * sizeof(float));
    float *nested = malloc((size_t)(n_stats / 16) * sizeof(float));
    uint8_t *codes = malloc((size_t)n_stats);
    test_fill_normal(&rng, w, (size_t)(rows * cols), 0.05f);
    msbnb_qtensor *q = make_w((fmt){MSBNB_QTYPE_NF4, 1, 64}, w, rows, cols);
    CHECK(q != NULL);
    if (q) {
        for (int64_t i = 0; i < n_stats; i++) codes[i] = (uint8_t)((i * 97 + (i >> 8)) & 255); /* all 256 */
        test_fill_normal(&rng, nested, (size_t)(n_stats / 16), 0.1f);
        msbnb__w4 v;
        msbnb__w4_init(q, &v);
        v.stats_q = codes;
        v.nested_absmax = nested;
        v.nested_offset = 0.0123f;
        const int shifts[2] = {8, 4};
        const int64_t starts[] = {0, 5, 16, 37, 64, 200};
        const int64_t lengths[] = {0, 1, 15, 16, 17, 63, 64, 65, 128, 130, 500, 824};
        int bad = 0, cases = 0;
        for (int s = 0; s < 2; s++) {
            v.nested_shift = shifts[s];
            v.nested_block = (int64_t)1 << shifts[s];
            for (size_t a = 0; a < sizeof starts / sizeof starts[0]; a++)
                for (size_t b = 0; b < sizeof lengths / sizeof lengths[0]; b++)
                    for (int no_vbmi = 0; no_vbmi < 2; no_vbmi++) {
                        cases++;
                        if (!decoded_exactly(&v, starts[a], lengths[b], no_vbmi, out)) {
                            bad++;
                            printf("  nested block %lld, start %lld, length %lld, %s: differs\n",
                                   (long long)v.nested_block, (long long)starts[a], (long long)lengths[b],
                                   no_vbmi ? "fp32 permutes" : "byte lookups");
                        }
                    }
        }
        printf("  %d decodes (%s), all bit-identical to the definition: %s\n", cases,
               __builtin_cpu_supports("avx512vbmi") ? "byte lookups and fp32 permutes" : "fp32 permutes twice: no VBMI",
               bad ? "no" : "yes");
        CHECK(bad == 0);
    }
    msbnb_qtensor_free(q);
    free(w), free(out), free(nested), free(codes);
#endif
}

int main(void) {
    RUN(both_decoders_equal_the_definition);
    return test_report();
}
