/* bench_matmul.c — benchmark section 'matmul': the fused 4-bit products against the machine's
 * limits and dense OpenBLAS sgemm, all measured in the same run.
 *
 * For W [out, in] in {4096x4096, 11008x4096, 4096x11008} (quick: 1024x1024), n in
 * {1, 8, 32, 128, 512} (quick: {1, 32}) and 1 and 2 threads, each row prints per format
 * (NF4 exact and fast, FP4, INT4, NF4+DQ exact and fast) the best time of a few runs, the weight bytes streamed
 * per second and GFLOP/s (2·n·in·out per product), and as ratios to the figures beside it:
 *   n = 1:   weight GB/s ÷ measured read bandwidth at the same thread count (1 thread: read samples
 *            taken between the product's own calls, see evict_caches)
 *   all n:   GFLOP/s ÷ dense fp32 sgemm (OpenBLAS, same shape, n and threads), ÷ fp32 FMA peak.
 * Figures on a shared host swing between runs; the ratios are what to quote. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msbnb/kernels.h>
#include <msbnb/quant.h>

#include "bench.h"

typedef struct bench_fmt {
    const char *name;
    msbnb_qtype type;
    int dq;
    msbnb_precision prec;
    int same_tensor_as; /* index of an earlier entry whose tensor this one reuses, or -1 */
} bench_fmt;

static const bench_fmt FMTS[] = {
    {"nf4", MSBNB_QTYPE_NF4, 0, MSBNB_PRECISION_EXACT, -1},  {"nf4-fast", MSBNB_QTYPE_NF4, 0, MSBNB_PRECISION_FAST, 0},
    {"fp4", MSBNB_QTYPE_FP4, 0, MSBNB_PRECISION_EXACT, -1},  {"int4", MSBNB_QTYPE_INT4, 0, MSBNB_PRECISION_EXACT, -1},
    {"nf4+dq", MSBNB_QTYPE_NF4, 1, MSBNB_PRECISION_EXACT, -1}, {"nf4dq-fast", MSBNB_QTYPE_NF4, 1, MSBNB_PRECISION_FAST, 4},
};
#define N_FMTS (int)(sizeof FMTS / sizeof FMTS[0])

/* CPU seconds of the calling thread: on a shared host a single-threaded run that gets preempted
 * stops this clock, not the wall clock, so 1-thread figures use it (both sides of every ratio
 * alike: the read probes are timed the same way). With one thread the products run on the calling
 * thread; a process-wide clock would also count idle OpenMP/OpenBLAS workers still spinning after
 * an earlier 2-thread call. */
/* Weight streaming (n = 1) must come from DRAM: the host's 32 MB L3 holds a whole 4096x4096 NF4
 * matrix (9.4 MB), which would otherwise let the n = 1 figures exceed the read bandwidth. Before
 * each timed n = 1 call the bench reads 128 MiB of other memory (bench_evict_caches, untimed). That read
 * is the 1-thread bandwidth probe's own loop, timed: on a shared host the bandwidth available
 * drifts by ±10 % within a run, so a 1-thread n = 1 figure is compared with the best read sample
 * taken between its own calls (evict_block_gbs: same minute, same number of tries), and in the
 * summary also with the best sample of the whole run (evict_best_gbs), the conservative ratio.
 * The products then run once untimed and their weights alone are flushed (bench_flush_weights):
 * in generation a layer's weights come from DRAM while the code, activations, scratch and page
 * tables stay warm between layers; after the 128 MiB read they are cold too, which cost every
 * call 10–12 µs more (a 64 × 4096 product: 16 µs against 6), 4 % of a 4096 × 4096 one. */
static double evict_best_gbs;  /* best sample of the whole run                       */
static double evict_block_gbs; /* best sample of the current TIME_BEST block (reset there) */
static void evict_caches(void) {
    const double gbs = bench_evict_caches();
    if (gbs > evict_best_gbs) evict_best_gbs = gbs;
    if (gbs > evict_block_gbs) evict_block_gbs = gbs;
}

/* Best time of repeated calls: at least 2 runs (the first warms caches and pages) and until ~0.15 s
 * has been spent, at most 20 runs. threads == 1: CPU time; else wall time. cold != 0: caches are
 * flushed of the operands before every call (evict_caches, untimed); with a quantized tensor wq,
 * then one untimed call and wq's lines flushed (see above). */
#define TIME_BEST(best, threads, cold, wq, call)                                                              \
    do {                                                                                                      \
        double spent_ = 0;                                                                                    \
        best = 1e30;                                                                                          \
        evict_block_gbs = 0;                                                                                  \
        for (int rep_ = 0; rep_ < 20 && (rep_ < 2 || spent_ < 0.15); rep_++) {                                \
            if (cold) {                                                                                       \
                evict_caches();                                                                               \
                if (wq) {                                                                                     \
                    call;                                                                                     \
                    bench_flush_weights(wq);                                                                  \
                }                                                                                             \
            }                                                                                                 \
            double t0_ = bench_now(), c0_ = bench_thread_cpu_now();                                                        \
            call;                                                                                             \
            double dt_ = bench_now() - t0_, dc_ = bench_thread_cpu_now() - c0_;                                            \
            spent_ += dt_;                                                                                    \
            if ((threads == 1 ? dc_ : dt_) < best) best = threads == 1 ? dc_ : dt_;                          \
        }                                                                                                     \
    } while (0)

static void fill(float *x, size_t n, uint64_t seed, float scale) {
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = scale * ((float)(int64_t)(s >> 40) / (float)(1 << 23) - 1.0f); /* uniform [-scale, scale) */
    }
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

int bench_matmul(int quick) {
    static const int64_t full_shapes[][2] = {{4096, 4096}, {11008, 4096}, {4096, 11008}};
    static const int64_t quick_shapes[][2] = {{1024, 1024}};
    static const int64_t full_ns[] = {1, 8, 32, 128, 512}, quick_ns[] = {1, 32};
    const int64_t(*shapes)[2] = quick ? quick_shapes : full_shapes;
    const int n_shapes = quick ? 1 : 3;
    const int64_t *ns = quick ? quick_ns : full_ns;
    const int n_ns = quick ? 2 : 5;
    const int64_t nmax = ns[n_ns - 1];

    const char *coretype = getenv("OPENBLAS_CORETYPE");
    printf("\n[matmul] fused 4-bit products, ISA %s; OpenBLAS core %s (OPENBLAS_CORETYPE=%s)\n",
           msbnb_isa_name(msbnb_isa_current()), openblas_get_corename(), coretype ? coretype : "unset");
    double bw[3] = {0}, peak[3] = {0};
    double n1_gbs[3][N_FMTS] = {{0}};   /* [shape][format]: 1-thread n = 1 weight GB/s, for the summary */
    double n1_block[3][N_FMTS] = {{0}}; /* the same ÷ the best read sample between its own calls      */
    for (int t = 1; t <= 2; t++) {
        bw[t] = bench_read_bandwidth_gbs(t);
        peak[t] = bench_fma_peak_gflops(t);
        printf("[matmul] %d thread(s): read bandwidth %.1f GB/s, fp32 FMA peak %.1f GFLOP/s%s\n", t, bw[t], peak[t],
               bw[t] <= 0 || peak[t] <= 0 ? "  (machine probes not implemented in this build: ratios show 0)" : "");
    }
    printf("[matmul] columns: best time ms (1 thread: thread CPU time, robust to preemption on a shared host; "
           "2 threads: wall) | weight GB/s | GFLOP/s | xsgemm = GFLOP/s ÷ OpenBLAS sgemm | xpeak = ÷ FMA peak | "
           "xbw (n=1) = weight GB/s ÷ read bandwidth (1 thread: best read sample between the same calls); n=1 rows "
           "run with caches flushed before each call\n");

    for (int si = 0; si < n_shapes; si++) {
        const int64_t out = shapes[si][0], in = shapes[si][1];
        float *W = malloc((size_t)(out * in) * sizeof(float));
        float *X = malloc((size_t)(nmax * in) * sizeof(float));
        float *Y = malloc((size_t)(nmax * out) * sizeof(float));
        if (!W || !X || !Y) {
            printf("[matmul] out of memory for %lldx%lld\n", (long long)out, (long long)in);
            free(W), free(X), free(Y);
            return 1;
        }
        fill(W, (size_t)(out * in), 1 + (uint64_t)si, 0.05f);
        fill(X, (size_t)(nmax * in), 7, 1.0f);
        msbnb_qtensor *q[N_FMTS] = {0};
        double wbytes[N_FMTS] = {0};
        for (int f = 0; f < N_FMTS; f++) {
            if (FMTS[f].same_tensor_as >= 0) {
                q[f] = q[FMTS[f].same_tensor_as];
                wbytes[f] = wbytes[FMTS[f].same_tensor_as];
                continue;
            }
            msbnb_quant_config cfg = msbnb_quant_config_default(FMTS[f].type);
            cfg.double_quant = FMTS[f].dq;
            msbnb_quant_info info;
            if (msbnb_quantize(W, out, in, &cfg, &q[f]) != MSBNB_OK || msbnb_get_quantization_info(q[f], &info)) {
                printf("[matmul] quantize %s failed: %s\n", FMTS[f].name, msbnb_last_error());
                return 1;
            }
            wbytes[f] = (double)info.total_bytes;
        }
        printf("\n[matmul] W %lld x %lld (out x in); nf4 weights %.1f MB, dense fp32 %.1f MB\n", (long long)out,
               (long long)in, wbytes[0] / 1e6, (double)(out * in) * 4 / 1e6);
        printf("%-3s %5s %-10s %9s %8s %8s %8s %7s %7s\n", "thr", "n", "format", "ms", "GB/s", "GFLOP/s", "xsgemm",
               "xpeak", "xbw");
        for (int t = 1; t <= 2; t++) {
            msbnb_set_num_threads(t);
            openblas_set_num_threads(t);
            for (int ni = 0; ni < n_ns; ni++) {
                const int64_t n = ns[ni];
                const double flops = 2.0 * (double)n * (double)in * (double)out;
                double ts;
                TIME_BEST(ts, t, n == 1, NULL, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)out, (int)in, 1.0f, X,
                                          (int)in, W, (int)in, 0.0f, Y, (int)out));
                const double sg = flops / ts / 1e9;
                /* OpenBLAS' worker threads keep spinning for a while after a call (THREAD_TIMEOUT) and
                 * would steal the cores from the products timed next: let them go to sleep first. */
                nanosleep(&(struct timespec){0, 200000000}, NULL);
                printf("%-3d %5lld %-10s %9.3f %8.1f %8.1f %8s %7.2f %7.2f\n", t, (long long)n, "sgemm", ts * 1e3,
                       (double)(out * in) * 4 / ts / 1e9, sg, "1", ratio(sg, peak[t]),
                       n == 1 ? ratio((double)(out * in) * 4 / ts / 1e9, t == 1 ? evict_block_gbs : bw[t]) : 0.0);
                char shape[48];
                snprintf(shape, sizeof shape, "%lldx%lld", (long long)out, (long long)in);
                bench_record("matmul", "OpenBLAS sgemm", shape, n, t, sg, "GFLOP/s", "FMA peak", peak[t], "");
                for (int f = 0; f < N_FMTS; f++) {
                    double tq;
                    msbnb_status st = MSBNB_OK;
                    TIME_BEST(tq, t, n == 1, q[f], st = msbnb_matmul(q[f], X, n, NULL, Y, FMTS[f].prec));
                    if (st != MSBNB_OK) {
                        printf("[matmul] %s failed: %s\n", FMTS[f].name, msbnb_last_error());
                        return 1;
                    }
                    const double gf = flops / tq / 1e9, gbs = wbytes[f] / tq / 1e9;
                    if (n == 1 && t == 1) n1_gbs[si][f] = gbs, n1_block[si][f] = ratio(gbs, evict_block_gbs);
                    printf("%-3d %5lld %-10s %9.3f %8.1f %8.1f %8.2f %7.2f %7.2f\n", t, (long long)n, FMTS[f].name,
                           tq * 1e3, gbs, gf, ratio(gf, sg), ratio(gf, peak[t]),
                           n == 1 ? ratio(gbs, t == 1 ? evict_block_gbs : bw[t]) : 0.0);
                    bench_record("matmul", FMTS[f].name, shape, n, t, gf, "GFLOP/s", "OpenBLAS sgemm", sg, "");
                    if (n == 1)
                        bench_record("matmul", FMTS[f].name, shape, n, t, gbs, "weight GB/s",
                                     t == 1 ? "read samples between its calls" : "read bandwidth",
                                     t == 1 ? evict_block_gbs : bw[t], "");
                }
            }
        }
        msbnb_set_num_threads(0);
        for (int f = 0; f < N_FMTS; f++)
            if (FMTS[f].same_tensor_as < 0) msbnb_qtensor_free(q[f]);
        free(W);
        free(X);
        free(Y);
    }
    /* n = 1 summary: against the read samples between the calls, and (conservative) against the best
     * 1-thread read bandwidth seen in the whole run */
    const double best_bw = evict_best_gbs > bw[1] ? evict_best_gbs : bw[1];
    printf("\n[matmul] n = 1, one thread, weight GB/s ÷ read bandwidth: A = ÷ the best read sample taken between "
           "the product's own calls; B = ÷ the best read of the whole run, %.1f GB/s (start probe %.1f)\n",
           best_bw, bw[1]);
    printf("%-13s", "W (out x in)");
    for (int f = 0; f < N_FMTS; f++) printf(" %10s A/B ", FMTS[f].name);
    printf("\n");
    for (int si = 0; si < n_shapes; si++) {
        char name[32];
        snprintf(name, sizeof name, "%lldx%lld", (long long)shapes[si][0], (long long)shapes[si][1]);
        printf("%-13s", name);
        for (int f = 0; f < N_FMTS; f++) printf("   %5.2f / %4.2f", n1_block[si][f], ratio(n1_gbs[si][f], best_bw));
        printf("\n");
    }
    return 0;
}
