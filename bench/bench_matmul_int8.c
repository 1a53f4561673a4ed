/* bench_matmul_int8.c — benchmark section 'matmul_int8': INT8-weight products (per-row symmetric,
 * EXACT and FAST) and LLM.int8() (threshold 6 with ~0.1% outlier columns, and threshold 0)
 * against dense OpenBLAS sgemm and the machine limits, all measured in the same run.
 *
 * For W [out, in] in {4096x4096, 11008x4096} (quick: 1024x1024), n in {1, 8, 32, 512} (quick:
 * {1, 32}) and 1 and 2 threads, each row prints the best time of a few runs, weight GB/s (int8
 * codes streamed per second), GFLOP/s (2·n·in·out per product) and the ratios
 *   GFLOP/s ÷ dense sgemm (same shape, n and threads), weight GB/s ÷ measured read bandwidth,
 *   GFLOP/s ÷ fp32 FMA peak (both limits at the same thread count; n = 1 rows run with the caches
 *   evicted before each call, and at one thread divide by the best read sample taken between their
 *   own calls, as the 4-bit section does),
 * and cpu% = process CPU time ÷ (wall time · threads) of the best run: well below 100 means the
 * host was shared and the row is contended (run with OMP_WAIT_POLICY=passive on a busy host:
 * spinning OpenMP/OpenBLAS threads then steal each other's cores).
 * Shared hosts swing 1.3–2× between runs: quote the ratios. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msbnb/kernels.h>

#include "bench.h"
#include "kernels/int8_kernels.h"

/* Process CPU seconds (all threads): with the wall time of the same run it tells how much of the
 * requested cores the process really had on a shared host (the "cpu%" column). */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* n = 1 rows stream W from DRAM: before each of their calls the caches are evicted (untimed,
 * bench_evict_caches), and the best of those read samples is kept in evict_block_gbs for the row's
 * /bw ratio at one thread. Without it a 4096 x 4096 INT8 W (16.8 MB) stays in the 32 MB L3 and the
 * figures exceeded the read bandwidth (1.65x). Then, as in the 4-bit section, one untimed call
 * and W's own lines flushed: only the weights are cold, as between layers in generation. */
static double evict_block_gbs;

/* Best wall time of repeated calls (at least 2, until ~0.15 s spent, at most maxrep); util gets
 * the CPU time of that best run ÷ (wall · threads). cold != 0: caches evicted before each call. */
#define TIME_BEST(best, util, threads, maxrep, cold, wq, call)                                                \
    do {                                                                                                      \
        double spent_ = 0;                                                                                    \
        best = 1e30;                                                                                          \
        for (int rep_ = 0; rep_ < (maxrep) && (rep_ < 2 || spent_ < 0.15); rep_++) {                          \
            if (cold) {                                                                                       \
                const double gbs_ = bench_evict_caches();                                                     \
                if (gbs_ > evict_block_gbs) evict_block_gbs = gbs_;                                           \
                if (wq) {                                                                                     \
                    call;                                                                                     \
                    bench_flush_weights(wq);                                                                  \
                }                                                                                             \
            }                                                                                                 \
            double c0_ = cpu_now(), t0_ = bench_now();                                                        \
            call;                                                                                             \
            double dt_ = bench_now() - t0_, dc_ = cpu_now() - c0_;                                            \
            spent_ += dt_;                                                                                    \
            if (dt_ < best) {                                                                                 \
                best = dt_;                                                                                   \
                util = dc_ / (dt_ * (threads));                                                               \
            }                                                                                                 \
        }                                                                                                     \
    } while (0)

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* uniform [-scale, scale) */
static void fill(float *x, size_t n, uint64_t seed, float scale) {
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) x[i] = scale * ((float)lcg(&s) / (float)(1u << 30) - 1.0f);
}

/* A symmetric per-row INT8 weight built in place (codes and absmax drawn at random: the product's
 * speed does not depend on where they came from), the codes on huge pages as the library allocates
 * large tensors. Freed with free_w. */
static msbnb_qtensor *make_w(int64_t out, int64_t in) {
    struct msbnb_qtensor *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->data = bench_alloc_huge((size_t)(out * in));
    q->stats = malloc((size_t)out * sizeof(float));
    if (!q->data || !q->stats) {
        free(q->data);
        free(q->stats);
        free(q);
        return NULL;
    }
    uint64_t s = 7;
    for (int64_t i = 0; i < out * in; i++) q->data[i] = (uint8_t)(int8_t)((int)(lcg(&s) % 255) - 127);
    for (int64_t o = 0; o < out; o++) q->stats[o] = 0.05f + 0.01f * (float)(o % 7);
    q->v.type = MSBNB_QTYPE_INT8;
    q->v.rows = out;
    q->v.cols = in;
    q->v.per_row = 1;
    q->v.threshold = 6.0f;
    q->v.data = q->data;
    q->v.data_bytes = (size_t)(out * in);
    q->v.stats = q->stats;
    q->v.n_stats = (size_t)out;
    return q;
}

static void free_w(msbnb_qtensor *q) {
    if (!q) return;
    free(q->data);
    free(q->stats);
    free(q);
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

enum { V_EXACT, V_FAST, V_LT6, V_LT0, N_V };
static const char *const VNAME[N_V] = {"int8 exact", "int8 fast", "llm.int8 t=6", "llm.int8 t=0"};

int bench_matmul_int8(int quick) {
    static const int64_t shapes_full[][2] = {{4096, 4096}, {11008, 4096}};
    static const int64_t shapes_quick[][2] = {{1024, 1024}};
    static const int64_t ns_full[] = {1, 8, 32, 512}, ns_quick[] = {1, 32};
    const int64_t(*shapes)[2] = quick ? shapes_quick : shapes_full;
    const int n_shapes = quick ? 1 : 2;
    const int64_t *ns = quick ? ns_quick : ns_full;
    const int n_ns = quick ? 2 : 4;

    const char *coretype = getenv("OPENBLAS_CORETYPE");
    printf("\n[matmul_int8] INT8 products and LLM.int8(), ISA %s (int8 dot: %s); OpenBLAS core %s "
           "(OPENBLAS_CORETYPE=%s)\n",
           msbnb_isa_name(msbnb_isa_current()), msbnb__i8_kernels_get()->name, openblas_get_corename(),
           coretype ? coretype : "unset");
    double bw[3], peak[3];
    for (int t = 1; t <= 2; t++) {
        bw[t] = bench_read_bandwidth_gbs(t);
        peak[t] = bench_fma_peak_gflops(t);
        printf("  %d thread(s): read bandwidth %.1f GB/s, fp32 FMA peak %.0f GFLOP/s\n", t, bw[t], peak[t]);
    }
    printf("  %-13s %5s %6s %2s %9s %8s %8s %7s %7s %7s %5s\n", "product", "out", "n", "th", "ms", "wGB/s",
           "GFLOP/s", "/sgemm", "/bw", "/peak", "cpu%");
    int rc = 0;
    for (int si = 0; si < n_shapes; si++) {
        const int64_t out = shapes[si][0], in = shapes[si][1];
        const int64_t nmax = ns[n_ns - 1];
        msbnb_qtensor *W = make_w(out, in);
        float *Wf = malloc((size_t)(out * in) * sizeof(float));
        float *X = malloc((size_t)(nmax * in) * sizeof(float));
        float *Y = malloc((size_t)(nmax * out) * sizeof(float));
        float *bias = malloc((size_t)out * sizeof(float));
        if (!W || !Wf || !X || !Y || !bias) {
            printf("  out of memory for %lldx%lld\n", (long long)out, (long long)in);
            rc = 1;
            goto next;
        }
        fill(Wf, (size_t)(out * in), 3, 0.05f);
        fill(bias, (size_t)out, 5, 0.1f);
        for (int ni = 0; ni < n_ns; ni++) {
            const int64_t n = ns[ni];
            /* activations ~U(-1, 1); for t=6, 4 of 4096 columns (~0.1%) carry |x| ≈ 20 in every row */
            fill(X, (size_t)(n * in), 11, 1.0f);
            for (int64_t i = 0; i < n; i++)
                for (int64_t c = 0; c < in; c += in / 4) X[i * in + c + 17] = (i & 1) ? 20.0f : -20.0f;
            const double flop = 2.0 * (double)n * (double)in * (double)out, wbytes = (double)out * (double)in;
            const int maxrep = n >= 512 ? 2 : 20, cold = n == 1;
            for (int t = 1; t <= 2; t++) {
                msbnb_set_num_threads(t);
                openblas_set_num_threads(t);
                /* ours first: OpenBLAS' worker threads keep spinning for a while after an sgemm and
                 * would steal the cores from the OpenMP threads that follow */
                double tvs[N_V], uvs[N_V], rbw[N_V]; /* rbw: the read bandwidth each row is divided by */
                for (int v = 0; v < N_V; v++) {
                    double tv, uv = 0;
                    msbnb_status st = MSBNB_OK;
                    evict_block_gbs = 0;
                    switch (v) {
                    case V_EXACT:
                        TIME_BEST(tv, uv, t, maxrep, cold, W,
                                  st = msbnb__matmul_int8(W, X, n, bias, Y, MSBNB_PRECISION_EXACT));
                        break;
                    case V_FAST:
                        TIME_BEST(tv, uv, t, maxrep, cold, W,
                                  st = msbnb__matmul_int8(W, X, n, bias, Y, MSBNB_PRECISION_FAST));
                        break;
                    case V_LT6:
                        TIME_BEST(tv, uv, t, maxrep, cold, W, st = msbnb_matmul_int8_lt(W, X, n, bias, 6.0f, Y));
                        break;
                    default:
                        TIME_BEST(tv, uv, t, maxrep, cold, W, st = msbnb_matmul_int8_lt(W, X, n, bias, 0.0f, Y));
                        break;
                    }
                    if (st != MSBNB_OK) {
                        printf("  %s failed: %s\n", VNAME[v], msbnb_last_error());
                        rc = 1;
                        tv = 0;
                    }
                    tvs[v] = tv;
                    uvs[v] = uv;
                    rbw[v] = cold && t == 1 && evict_block_gbs > 0 ? evict_block_gbs : bw[t];
                }
                double ts, us = 0;
                /* the baseline the issue asks for: OpenBLAS sgemm itself on t threads (msbnb_matmul_f32
                 * now runs msbnb's own tiled kernels from n >= 16, so it is not the OpenBLAS figure) */
                openblas_set_num_threads(t);
                TIME_BEST(ts, us, t, maxrep, cold, NULL,
                          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)n, (blasint)out, (blasint)in,
                                      1.0f, X, (blasint)in, Wf, (blasint)in, 0.0f, Y, (blasint)out));
                double sg = flop / ts * 1e-9;
                printf("  %-13s %5lld %6lld %2d %9.3f %8.1f %8.1f %7.2f %7.2f %7.2f %5.0f\n", "dense sgemm",
                       (long long)out, (long long)n, t, ts * 1e3, 4 * wbytes / ts * 1e-9, sg, 1.0,
                       ratio(4 * wbytes / ts * 1e-9, bw[t]), ratio(sg, peak[t]), 100 * us);
                char shape[48];
                snprintf(shape, sizeof shape, "%lldx%lld", (long long)out, (long long)in);
                bench_record("int8", "dense sgemm", shape, n, t, sg, "GFLOP/s", "FMA peak", peak[t], "");
                for (int v = 0; v < N_V; v++) {
                    if (tvs[v] <= 0) continue;
                    double tv = tvs[v], gf = flop / tv * 1e-9, gbs = wbytes / tv * 1e-9;
                    printf("  %-13s %5lld %6lld %2d %9.3f %8.1f %8.1f %7.2f %7.2f %7.2f %5.0f\n", VNAME[v],
                           (long long)out, (long long)n, t, tv * 1e3, gbs, gf, ratio(gf, sg), ratio(gbs, rbw[v]),
                           ratio(gf, peak[t]), 100 * uvs[v]);
                    bench_record("int8", VNAME[v], shape, n, t, gf, "GFLOP/s", "OpenBLAS sgemm", sg, "");
                    if (n == 1) bench_record("int8", VNAME[v], shape, n, t, gbs, "weight GB/s", "read bandwidth", rbw[v], "");
                }
            }
        }
        msbnb_set_num_threads(0);
    next:
        free_w(W);
        free(Wf);
        free(X);
        free(Y);
        free(bias);
    }
    return rc;
}
