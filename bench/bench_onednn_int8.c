/* bench_onednn_int8.c — part of benchmark section 'onednn': the INT8 integer product (FAST mode,
 * LLM.int8(): int8 activation codes · int8 weight codes, int32 sums, shared fp32 epilogue) with
 * msbnb's own dot kernels at the CPU's SIMD level against the same product on oneDNN's s8 matmul
 * (msbnb__i8_int_product_onednn), one thread, thread CPU time, best of interleaved rounds.
 *
 * Per shape class (4096 x 4096, 11008 x 4096; weights from msbnb_quantize, symmetric per row) and
 * n = 1 ... 512 it prints GFLOP/s of both, their ratio, whether oneDNN's result is bit-identical to
 * msbnb's (integer sums: it must be, or the engine is not used — on CPUs without VNNI oneDNN's
 * int16 multiplies saturate), which engine the dispatcher takes, and at the end the crossover it
 * measured beside the threshold of src/kernels/onednn_matmul.c for this CPU class. On such a CPU
 * oneDNN is timed with inexact primitives allowed (msbnb__od_s8_accept_inexact), for the record. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msbnb/kernels.h>
#include <msbnb/quant.h>

#include "bench.h"
#include "kernels/int8_kernels.h"
#include "kernels/onednn_matmul.h"

#define MAX_NS 8

typedef struct shape_run {
    int64_t out, in;
    double own[MAX_NS], od[MAX_NS]; /* best seconds; od < 0: oneDNN failed */
    int same[MAX_NS];              /* oneDNN's Y bit-identical to msbnb's */
} shape_run;

/* One interleaved measurement of every n for one shape. */
static int run_shape(shape_run *s, const int64_t *ns, int n_ns, int rounds) {
    const int64_t out = s->out, K = s->in, nmax = ns[n_ns - 1];
    float *w = malloc((size_t)(out * K) * sizeof(float));
    int8_t *a = malloc((size_t)(nmax * K));
    int32_t *asum = malloc((size_t)nmax * sizeof(int32_t));
    float *rs = malloc((size_t)nmax * sizeof(float));
    float *y0 = malloc((size_t)(nmax * out) * sizeof(float)), *y1 = malloc((size_t)(nmax * out) * sizeof(float));
    msbnb_qtensor *q = NULL;
    int rc = !w || !a || !asum || !rs || !y0 || !y1;
    if (!rc) {
        uint64_t st = 17;
        for (int64_t e = 0; e < out * K; e++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            w[e] = (float)(int64_t)(st >> 40) / (float)(1 << 23) - 1.0f;
        }
        for (int64_t i = 0; i < nmax; i++) {
            asum[i] = 0, rs[i] = 1.0f;
            for (int64_t k = 0; k < K; k++) {
                st = st * 6364136223846793005ull + 1442695040888963407ull;
                a[i * K + k] = (int8_t)((int)((st >> 33) % 255u) - 127);
                asum[i] += a[i * K + k];
            }
        }
        msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
        rc = msbnb_quantize(w, out, K, &cfg, &q) != MSBNB_OK;
    }
    if (rc) {
        printf("[onednn] int8 %lldx%lld: out of memory or quantize failed\n", (long long)out, (long long)K);
        goto done;
    }
    const msbnb__i8w wi = msbnb__i8w_of(q);
    const msbnb_isa level = msbnb_isa_current(), simd = msbnb_isa_detected();
    for (int j = 0; j < n_ns; j++) s->own[j] = s->od[j] = 1e30, s->same[j] = 1;
    for (int r = -1; r < rounds; r++) /* round -1: warm-up (pages, primitives, probes), untimed */
        for (int j = 0; j < n_ns; j++) {
            const int64_t n = ns[j];
            msbnb_isa_set(simd); /* msbnb's own kernels */
            double t0 = bench_thread_cpu_now();
            msbnb__i8_int_product(&wi, a, asum, rs, n, NULL, y0, NULL, 0, NULL);
            double t = bench_thread_cpu_now() - t0;
            if (r >= 0 && t < s->own[j]) s->own[j] = t;
            msbnb_isa_set(level);
            memset(y1, 0, (size_t)(n * out) * sizeof(float));
            t0 = bench_thread_cpu_now();
            msbnb_status st = msbnb__i8_int_product_onednn(&wi, a, asum, rs, n, NULL, y1, NULL, 0, NULL);
            t = bench_thread_cpu_now() - t0;
            if (st != MSBNB_OK) s->od[j] = -1;
            else if (r >= 0 && s->od[j] > 0 && t < s->od[j]) s->od[j] = t;
            if (st == MSBNB_OK && memcmp(y0, y1, (size_t)(n * out) * sizeof(float))) s->same[j] = 0;
        }
done:
    msbnb_qtensor_free(q);
    free(w), free(a), free(asum), free(rs), free(y0), free(y1);
    return rc;
}

int bench_onednn_int8(int quick) {
    if (!msbnb_onednn_available()) {
        printf("\n[onednn] int8: no oneDNN level in this build / on this CPU\n");
        return 0;
    }
    static const int64_t ns_full[] = {1, 4, 16, 32, 64, 128, 256, 512}, ns_quick[] = {1, 16, 64, 256};
    const int64_t *ns = quick ? ns_quick : ns_full;
    const int n_ns = quick ? 4 : 8;
    shape_run shapes[2] = {{quick ? 1024 : 4096, quick ? 1024 : 4096, {0}, {0}, {0}},
                           {quick ? 2752 : 11008, quick ? 1024 : 4096, {0}, {0}, {0}}};
    const msbnb__od_class cls = msbnb__od_cpu_class();
    const msbnb__od_gemm probe = {MSBNB__OD_S8, 256, 256, shapes[0].in, shapes[0].in, shapes[0].in, 256, 1, 0};
    const int exact = msbnb__od_supported(&probe);
    char impl[96];
    snprintf(impl, sizeof impl, "%s", msbnb__od_impl(&probe));
    const int prev = msbnb__od_s8_accept_inexact(1);
    printf("\n[onednn] INT8 integer product (FAST / LLM.int8()), one thread, best of %d interleaved rounds: msbnb's "
           "dot kernels (%s) against oneDNN's s8 matmul (%s; class %s: %s)\n", quick ? 1 : 2,
           msbnb__i8_kernels_get()->name, impl, msbnb__od_class_name(cls),
           exact ? "exact int32 sums" : "INEXACT here (int16 saturation): never used, timed for the record");
    int rc = 0;
    for (int si = 0; si < 2; si++) rc |= run_shape(&shapes[si], ns, n_ns, quick ? 1 : 2);
    msbnb__od_s8_accept_inexact(prev);
    const int64_t min_n = msbnb__od8_min_n(cls);
    int64_t measured = 0; /* smallest n from which oneDNN (exact) wins at every larger n, both shapes */
    for (int si = 0; si < 2 && !rc; si++) {
        shape_run *s = &shapes[si];
        char shape[48];
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)s->out, (long long)s->in);
        printf("  W %s  %5s %10s %10s %7s %10s  %s\n", shape, "n", "own GF/s", "oneDNN", "ratio", "identical",
               "dispatcher");
        for (int j = 0; j < n_ns; j++) {
            const double fl = 2.0 * (double)ns[j] * (double)s->in * (double)s->out / 1e9;
            const double own = fl / s->own[j], od = s->od[j] > 0 ? fl / s->od[j] : 0;
            const int takes = min_n > 0 && ns[j] >= min_n && exact;
            printf("  %-13s %5lld %10.1f %10.1f %7.2f %10s  %s\n", "", (long long)ns[j], own, od, od / own,
                   s->od[j] < 0 ? "failed" : s->same[j] ? "yes" : "NO", takes ? "oneDNN" : "msbnb");
            bench_record("onednn-int8", "int8 own", shape, ns[j], 1, own, "GFLOP/s", "int8 oneDNN", od,
                         msbnb__i8_kernels_get()->name);
            bench_record("onednn-int8", "int8 oneDNN", shape, ns[j], 1, od, "GFLOP/s", "int8 own", own, impl);
        }
    }
    if (!rc) {
        for (int j = n_ns - 1; j >= 0; j--) {
            int wins = exact;
            for (int si = 0; si < 2; si++)
                wins &= shapes[si].od[j] > 0 && shapes[si].od[j] < shapes[si].own[j] && shapes[si].same[j];
            if (!wins) break;
            measured = ns[j];
        }
        int64_t speed = 0; /* the same on speed alone (exactness aside) */
        for (int j = n_ns - 1; j >= 0; j--) {
            int wins = 1;
            for (int si = 0; si < 2; si++) wins &= shapes[si].od[j] > 0 && shapes[si].od[j] < shapes[si].own[j];
            if (!wins) break;
            speed = ns[j];
        }
        if (speed) printf("  on speed alone oneDNN is ahead from n = %lld in both shapes%s\n", (long long)speed,
                          exact ? "" : ", but its sums are not exact on this CPU");
        else printf("  on speed alone oneDNN is not ahead at the largest n measured\n");
        char m_s[32] = "never", t_s[32] = "never";
        if (measured) snprintf(m_s, sizeof m_s, "n >= %lld", (long long)measured);
        if (min_n) snprintf(t_s, sizeof t_s, "n >= %lld", (long long)min_n);
        printf("  crossover measured here: %s; table for class %s (src/kernels/onednn_matmul.c): %s%s\n", m_s,
               msbnb__od_class_name(cls), t_s, measured == min_n ? "  [agrees]" : "  [differs: adjust the table]");
        bench_record("onednn-int8", "crossover measured", "", measured, 1, (double)measured, "n", "table threshold",
                     (double)min_n, impl);
    }
    return rc;
}
