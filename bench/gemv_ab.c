/* gemv_ab.c — A/B harness for the n = 1 FAST int8 kernel (x86/matmul_4bit_avx512vnni.c): two builds
 * of that unit, linked under different names, alternate in one process so that the host's drift in
 * memory bandwidth hits both alike (docs/kernels.md, "n = 1 FAST int8"). Not part of the CMake build:
 *   F="-O3 -ffp-contract=off -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx512vnni -fopenmp -Iinclude -Isrc"
 *   gcc $F -DVN_PF=6144 -Dmsbnb__fi8_avx512vnni=fi8_a -Dmsbnb__mm4_fast_force_shufb=fs_a \
 *       -c src/kernels/x86/matmul_4bit_avx512vnni.c -o vn_a.o
 *   gcc $F -DVN_PF=12288 -Dmsbnb__fi8_avx512vnni=fi8_b -Dmsbnb__mm4_fast_force_shufb=fs_b \
 *       -c src/kernels/x86/matmul_4bit_avx512vnni.c -o vn_b.o     (or a modified copy of the file)
 *   gcc -O2 -Iinclude -Isrc bench/gemv_ab.c vn_a.o vn_b.o build/libmsbnb.a -fopenmp -lopenblas -lcjson -lm -o gemv_ab
 *   ./gemv_ab OUT IN REPS [dq]     e.g. ./gemv_ab 11008 4096 20 (dq: NF4 + double quant)
 * Quantizes a synthetic W [OUT, IN] to NF4 (or NF4+DQ), copies codes and statistics onto 2 MiB pages, then REPS
 * times runs A and B (order alternating), each call preceded by a timed 256 MiB read (also on huge
 * pages, which evicts W). Prints best-call GB/s ÷ best-read GB/s for A and B. One thread. */
#define _GNU_SOURCE
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msbnb/kernels.h>
#include <msbnb/quant.h>

#include "gemv_tools.h"

#include "kernels/matmul_4bit.h"

/* the two builds' loop tables (renamed msbnb__fi8_avx512vnni), run through the library's driver */
extern const msbnb__fi8_kernels fi8_a, fi8_b;

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s OUT IN REPS [dq]\n", argv[0]);
        return 2;
    }
    const long out = atol(argv[1]), in = atol(argv[2]);
    const int reps = atoi(argv[3]), dq = argc > 4 && strcmp(argv[4], "dq") == 0;
    float *W = malloc((size_t)(out * in) * sizeof(float)), *X = malloc((size_t)in * sizeof(float));
    float *Y = malloc((size_t)out * sizeof(float));
    const size_t probe = (size_t)256 << 20;
    float *ev = gemv_alloc_huge(probe); /* [probe / 4] zeros: the read sample and the eviction */
    if (!W || !X || !Y || !ev || in % 64) return 1;
    for (long i = 0; i < out * in; i++) W[i] = (float)((unsigned long)i * 2654435761u % 1000u) / 1000.0f - 0.5f;
    for (long i = 0; i < in; i++) X[i] = (float)(i % 7) - 3.0f;
    memset(ev, 0, probe);
    msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    cfg.double_quant = dq;
    msbnb_qtensor *q = NULL;
    msbnb_quant_info info;
    if (msbnb_quantize(W, out, in, &cfg, &q) != MSBNB_OK || msbnb_get_quantization_info(q, &info) != MSBNB_OK) return 1;
    free(W);
    msbnb__w4 w4;
    msbnb__w4_init(q, &w4);
    /* statistics: fp32, or one code byte each when double-quantized */
    const size_t code_bytes = (size_t)(out * in / 2), stat_bytes = (size_t)(out * in / 64) * (dq ? 1 : sizeof(float));
    uint8_t *codes = gemv_alloc_huge(code_bytes), *stats = gemv_alloc_huge(stat_bytes);
    if (!codes || !stats) return 1;
    memcpy(codes, w4.data, code_bytes);
    memcpy(stats, dq ? (const void *)w4.stats_q : (const void *)w4.stats, stat_bytes);
    w4.data = codes;
    if (dq) w4.stats_q = stats;
    else w4.stats = (const float *)stats;
    msbnb_set_num_threads(1);
    volatile float sink = 0;
    double best[2] = {1e30, 1e30}, best_read = 1e30;
    for (int r = 0; r < reps; r++)
        for (int v = 0; v < 2; v++) {
            const int which = (v ^ r) & 1;
            double t = gemv_thread_cpu_now();
            sink += gemv_read_sum(ev, probe / sizeof(float));
            t = gemv_thread_cpu_now() - t;
            if (t < best_read) best_read = t;
            t = gemv_thread_cpu_now();
            if (msbnb__matmul_4bit_fast_int8(which ? &fi8_b : &fi8_a, &w4, X, 1, NULL, Y, 0) != MSBNB_OK) return 1;
            t = gemv_thread_cpu_now() - t;
            if (t < best[which]) best[which] = t;
        }
    (void)sink;
    const double read = (double)probe / best_read;
    printf("%ldx%ld NF4%s, n = 1: A %.3f  B %.3f  of the best read, %.1f GB/s\n", out, in, dq ? "+DQ" : "",
           (double)info.total_bytes / best[0] / read, (double)info.total_bytes / best[1] / read, read * 1e-9);
    msbnb_qtensor_free(q);
    free(codes), free(stats), free(ev), free(X), free(Y);
    return 0;
}
