/* gemv_profile.c — profiling driver for the n = 1 fused 4-bit product (docs/kernels.md, "n = 1
 * weight streaming: profile"). Not part of the CMake build: built by hand against the library,
 *   gcc -O2 -g -Iinclude bench/gemv_profile.c build/libmsbnb.a -fopenmp -lopenblas -lcjson -lm -o gemv_profile
 * Usage: gemv_profile OUT IN REPS FORMAT [noprobe] [fast]
 *   Quantizes a synthetic W [OUT, IN] to FORMAT (nf4, nf4+dq, fp4, int4), then REPS times:
 *   one n = 1 product (1 thread, process CPU time) and, unless "noprobe", a plain AVX-512 read of a
 *   256 MiB buffer (which also evicts W from the caches). Prints the best product time, packed-weight
 *   GB/s, the best read GB/s and their ratio. "noprobe" keeps W cache-resident (pick W small enough
 *   for L2 to measure the kernel's compute rate; the mean over all REPS is printed too, as the best
 *   of thousands of ~20 µs calls picks clock jitter) and is what to run under valgrind with
 *   MSBNB_ISA=avx2 (valgrind cannot execute AVX-512). "fast" times MSBNB_PRECISION_FAST (the int8
 *   VNNI streaming kernel where the CPU has it) instead of EXACT. */
#define _GNU_SOURCE
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <msbnb/kernels.h>
#include <msbnb/quant.h>

#include "gemv_tools.h"

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s OUT IN REPS nf4|nf4+dq|fp4|int4 [noprobe] [fast]\n", argv[0]);
        return 2;
    }
    const long out = atol(argv[1]), in = atol(argv[2]);
    const int reps = atoi(argv[3]);
    int probe = 1;
    msbnb_precision prec = MSBNB_PRECISION_EXACT;
    for (int a = 5; a < argc; a++) {
        if (strcmp(argv[a], "noprobe") == 0) probe = 0;
        else if (strcmp(argv[a], "fast") == 0) prec = MSBNB_PRECISION_FAST;
    }
    const char *format = argv[4];
    const int dq = strcmp(format, "nf4+dq") == 0;
    const msbnb_qtype type = strcmp(format, "fp4") == 0 ? MSBNB_QTYPE_FP4 : strcmp(format, "int4") == 0 ? MSBNB_QTYPE_INT4 : MSBNB_QTYPE_NF4;
    float *W = malloc((size_t)(out * in) * sizeof(float)); /* [out, in], freed after quantizing */
    float *X = malloc((size_t)in * sizeof(float));          /* [1, in] */
    float *Y = malloc((size_t)out * sizeof(float));         /* [1, out] */
    const size_t probe_bytes = (size_t)1 << 28;
    float *buf = probe ? aligned_alloc(64, probe_bytes) : NULL; /* [probe_bytes / 4] zeros */
    if (!W || !X || !Y || (probe && !buf)) return 1;
    for (long i = 0; i < out * in; i++) W[i] = (float)((unsigned long)i * 2654435761u % 1000u) / 1000.0f - 0.5f;
    for (long i = 0; i < in; i++) X[i] = (float)(i % 7) - 3.0f;
    if (probe) memset(buf, 0, probe_bytes);
    msbnb_quant_config cfg = msbnb_quant_config_default(type);
    cfg.double_quant = dq;
    msbnb_qtensor *q = NULL;
    msbnb_quant_info info;
    if (msbnb_quantize(W, out, in, &cfg, &q) != MSBNB_OK || msbnb_get_quantization_info(q, &info) != MSBNB_OK) {
        fprintf(stderr, "quantize: %s\n", msbnb_last_error());
        return 1;
    }
    free(W);
    msbnb_set_num_threads(1);
    volatile float sink = 0;
    double best = 1e30, best_read = 1e30, total = cpu_now();
    for (int r = 0; r < reps; r++) {
        double t = cpu_now();
        if (msbnb_matmul(q, X, 1, NULL, Y, prec) != MSBNB_OK) return 1;
        t = cpu_now() - t;
        if (t < best) best = t;
        if (probe) {
            t = cpu_now();
            sink += gemv_read_sum(buf, probe_bytes / sizeof(float));
            t = cpu_now() - t;
            if (t < best_read) best_read = t;
        }
    }
    total = cpu_now() - total;
    (void)sink;
    const double gbs = (double)info.total_bytes / best * 1e-9, read = probe ? (double)probe_bytes / best_read * 1e-9 : 0;
    printf("%s%s W %ld x %ld (%.1f MB packed): %.3f ms, %.1f GB/s", format, prec == MSBNB_PRECISION_FAST ? " fast" : "", out, in,
           (double)info.total_bytes / 1e6, best * 1e3, gbs);
    if (probe) printf("; read %.1f GB/s; ratio %.3f", read, gbs / read);
    else printf(" (mean of %d: %.1f GB/s)", reps, (double)info.total_bytes * reps / total * 1e-9);
    printf("\n");
    msbnb_qtensor_free(q);
    free(X), free(Y), free(buf);
    return 0;
}
