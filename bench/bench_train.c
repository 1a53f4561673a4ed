/*
 * bench_train.c — benchmark section 'train': QLoRA training throughput (tokens/s) and model-FLOP
 * utilisation, for the real stories260K model and for a generated larger LLaMA (dim 768, 12
 * layers, 12 heads, hidden 2048, vocab 32000, random NF4 + DQ weights, batch 4 x seq 256, r 8 on
 * every projection), at the thread count MSBNB_THREADS names, or at 1 and 2 threads when unset,
 * and in each compute the CPU runs (fp32; bf16 where it has native bf16 dot products).
 *
 * Model FLOPs per token ≈ 4·P for LoRA training, P = the base weights that take part in products
 * (the seven projections of every layer plus the output matrix; the embedding lookup is free):
 * 2·P for the forward, 2·P for the backward's activation gradients dX = dY·W. Full training would
 * add 2·P for the weight gradients dW = dYᵀ·X (hence the usual 6·P); the base is frozen, and the
 * adapters' own products (rank r ≪ dim) and attention are left out of the count, as MFU
 * conventionally does. Utilisation = achieved model FLOP/s (best step) ÷ the peak measured on the
 * same threads in the same run (best of before and after): the engine peak — oneDNN's dense matmul
 * [1024 x 768] · [768 x 3072], bf16 where native else f32, one single-threaded call per fixed
 * block as msbnb runs it — and the FMA probe's peak (bench_fma_peak_gflops) beside it.
 *
 * Peers (`make bench-peers`): scripts/bench_peers.py runs transformers + PEFT + bitsandbytes at the
 * same settings first and writes build/bench/peers.jsonl; when that file is there, each row also
 * prints its ratio to the peer run of the same thread count.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>

#include <cblas.h>
#include <string.h>
#include <msbnb/kernels.h>
#include <msbnb/train.h>

#include "bench.h"
#include "kernels/onednn.h"

/* Clock of the timed steps and of the engine peak: with one thread everything runs on the calling
 * thread, and its CPU time is robust to preemption on a shared host (as the FMA probe's); with
 * more, wall time. */
static double step_clock(void) {
    if (msbnb_get_num_threads() > 1) return bench_now();
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct run_result {
    double tokens_per_s, model_gflops, mem_mb;
    int64_t flop_params;
} run_result;

/* Projection + output-matrix parameters (what the 4·P count multiplies). */
static int64_t flop_params(const msbnb_model_config *c) {
    int64_t qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t per_layer = 2 * (int64_t)c->dim * qd + 2 * (int64_t)c->dim * kvd + 3 * (int64_t)c->dim * c->hidden_dim;
    return (int64_t)c->n_layers * per_layer + (int64_t)c->vocab_size * c->dim;
}

/* Time `steps` training steps (after one warm-up) of batch x seq on m with r=8 adapters on every
 * projection; returns 0 on success. */
static int time_training(msbnb_model *m, int batch, int seq, int steps, int recompute, msbnb_compute compute,
                         run_result *res) {
    msbnb_lora_params lp = msbnb_lora_params_default();
    lp.lora_dropout = 0.05f;
    if (msbnb_lora_count(msbnb_model_linear(m, 0, MSBNB_PROJ_Q)) == 0 &&
        msbnb_model_lora_attach(m, "bench", &lp, MSBNB_LORA_TARGETS_ALL) != MSBNB_OK)
        return -1;
    msbnb_train_params tp = msbnb_train_params_default();
    tp.batch = batch;
    tp.seq_len = seq;
    tp.recompute = recompute;
    tp.compute = compute;
    msbnb_trainer *tr = NULL;
    msbnb_optim *opt = NULL;
    msbnb_adamw_params ap = msbnb_adamw_params_default();
    if (msbnb_trainer_create(m, &tp, &tr) != MSBNB_OK || msbnb_adamw_create(&ap, &opt) != MSBNB_OK ||
        msbnb_trainer_register(tr, opt) != MSBNB_OK) {
        msbnb_trainer_free(tr);
        msbnb_optim_free(opt);
        return -1;
    }
    msbnb_model_config c;
    msbnb_model_get_config(m, &c);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)batch * (size_t)(seq + 1));
    uint64_t s = 7;
    for (int i = 0; tok && i < batch * (seq + 1); i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((s >> 33) % (uint64_t)c.vocab_size);
    }
    double loss = 0, best = 1e30;
    int rc = tok ? 0 : -1;
    for (int it = 0; rc == 0 && it <= steps; it++) {
        double t0 = step_clock();
        msbnb_optim_zero_grad(opt);
        if (msbnb_trainer_step(tr, tok, &loss) != MSBNB_OK || msbnb_optim_step(opt, NULL) != MSBNB_OK) rc = -1;
        double dt = step_clock() - t0;
        if (it > 0 && dt < best) best = dt; /* it 0 is the warm-up */
    }
    if (rc == 0) {
        double tokens = (double)batch * seq;
        res->flop_params = flop_params(&c);
        res->tokens_per_s = tokens / best;
        res->model_gflops = 4.0 * (double)res->flop_params * tokens / best / 1e9;
        res->mem_mb = (double)msbnb_trainer_memory_bytes(tr) / 1e6;
    }
    free(tok);
    msbnb_optim_free(opt);
    msbnb_trainer_free(tr);
    return rc;
}

/* Engine peak at `threads` threads: oneDNN's dense matmul C[1024, 3072] = A[1024, 768] · B[768, 3072]
 * (bf16 where native, else f32), cut into fixed column blocks of 256, one single-threaded call per
 * block on `threads` OpenMP threads (as msbnb's own products use it); best of 3, GFLOP/s (step_clock). 0 when
 * oneDNN is not built in. *impl receives oneDNN's implementation name. */
static double engine_peak(int threads, const char **impl, const char **dtype) {
    enum { M = 1024, K = 768, N = 3072, NB = 256 };
    const int bf = msbnb__od_has(MSBNB__OD_BF16);
    const msbnb__od_gemm g = {bf ? MSBNB__OD_BF16 : MSBNB__OD_F32, M, NB, K, K, N, N, 0, 0};
    *impl = msbnb__od_impl(&g);
    *dtype = bf ? "bf16" : "f32";
    if (!msbnb__od_supported(&g)) return 0;
    const size_t es = bf ? 2 : 4;
    unsigned char *A = calloc((size_t)M * K, es), *B = calloc((size_t)K * N, es);
    float *C = malloc((size_t)M * N * sizeof(float));
    double best = 1e30;
    if (A && B && C) {
        for (size_t i = 0; i < (size_t)M * K * es; i++) A[i] = (unsigned char)(bf ? (i & 1 ? 0x3f : 0) : (i % 4 == 3 ? 0x3f : 0));
        for (size_t i = 0; i < (size_t)K * N * es; i++) B[i] = (unsigned char)(bf ? (i & 1 ? 0x3f : 0) : (i % 4 == 3 ? 0x3f : 0));
        for (int rep = 0; rep < 4; rep++) {
            double t0 = step_clock();
#pragma omp parallel for num_threads(threads) schedule(static)
            for (int b = 0; b < N / NB; b++) msbnb__od_run(&g, A, B + (size_t)b * NB * es, C + b * NB);
            double dt = step_clock() - t0;
            if (rep > 0 && dt < best) best = dt; /* rep 0 warms up */
        }
    }
    free(A), free(B), free(C);
    return best < 1e30 ? 2.0 * M * N * K / best / 1e9 : 0;
}

/* The peer's tokens/s for this compute ("fp32" or "bf16" autocast), thread count and batch x seq from
 * build/bench/peers.jsonl (scripts/bench_peers.py, one JSON object per line with these keys), 0 when
 * absent; desc receives the peer's description. */
static double peer_tokens(const char *compute, int threads, int batch, int seq, char *desc, size_t desc_len) {
    const char *path = bench_jsonl_path();
    char pp[1100];
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(pp, sizeof pp, "%.*s/peers.jsonl", (int)(slash - path), path);
    else snprintf(pp, sizeof pp, "peers.jsonl");
    FILE *f = fopen(pp, "r");
    double v = 0;
    char line[2048], key[64];
    snprintf(key, sizeof key, "\"compute\": \"%s\"", compute);
    while (f && fgets(line, sizeof line, f)) {
        const char *t = strstr(line, "\"threads\": "), *tok = strstr(line, "\"tokens_per_s\": ");
        const char *b = strstr(line, "\"batch\": "), *q = strstr(line, "\"seq\": ");
        if (!t || !tok || !b || !q || !strstr(line, key) || atoi(t + 11) != threads || atoi(b + 9) != batch ||
            atoi(q + 7) != seq)
            continue;
        v = atof(tok + 16);
        const char *d = strstr(line, "\"peer\": \"");
        if (d) snprintf(desc, desc_len, "%.*s", (int)strcspn(d + 9, "\""), d + 9);
    }
    if (f) fclose(f);
    return v;
}

static int bench_train_at(int threads, int quick) {
    msbnb_set_num_threads(threads);
    /* The machine may be shared: a busy neighbour lowers a measurement, never raises it, so each
     * peak is the best of a measurement before and one after the runs, as the step time is the
     * best of several steps. */
    const char *impl = "", *pdt = "";
    double fma = bench_fma_peak_gflops(threads), eng = engine_peak(threads, &impl, &pdt);
    printf("\n[train] QLoRA training step (forward + backward + AdamW), r=8 on all 7 projections, %d thread(s)\n",
           threads);
    printf("  CPU %s; engine %s\n", bench_cpu_model(), bench_engine());
    printf("  Model FLOPs = 4 x P x tokens (P: projections + output)\n");
    const char *forced = getenv("OPENBLAS_CORETYPE");
    printf("  OpenBLAS kernels: %s (%s%s)\n", openblas_get_corename(), forced ? "forced by OPENBLAS_CORETYPE=" : "detected",
           forced ? forced : "");
    msbnb_compute computes[2] = {MSBNB_COMPUTE_FP32, MSBNB_COMPUTE_BF16};
    const int n_comp = msbnb_bf16_native() ? 2 : 1;
    int rc = 0;
    struct {
        char name[64];
        int batch, seq;
        msbnb_compute c;
        run_result r;
    } rows[6];
    int n_rows = 0;
    msbnb_model_params mp = msbnb_model_params_default();
    mp.quant = MSBNB_QTYPE_NF4;
    mp.double_quant = 1;
    msbnb_model *m = NULL;
    /* ---- stories260K, NF4 + double quantization */
    if (msbnb_model_load(MSBNB_SHARED_DIR "/models/stories260K/hf", &mp, &m) == MSBNB_OK) {
        for (int ci = 0; ci < n_comp; ci++) {
            run_result r = {0};
            if (time_training(m, 8, 64, quick ? 3 : 10, 0, computes[ci], &r) != 0) {
                rc = 1;
                continue;
            }
            snprintf(rows[n_rows].name, sizeof rows[n_rows].name, "stories260K nf4+dq");
            rows[n_rows].batch = 8, rows[n_rows].seq = 64, rows[n_rows].c = computes[ci], rows[n_rows].r = r;
            n_rows++;
        }
        msbnb_model_free(m);
    } else {
        printf("  stories260K: %s\n", msbnb_last_error());
    }
    /* ---- the configuration (quick: a smaller one) */
    msbnb_model_config c = {0};
    c.dim = quick ? 256 : 768;
    c.head_dim = 64;
    c.hidden_dim = quick ? 688 : 2048;
    c.n_layers = quick ? 4 : 12;
    c.n_heads = quick ? 4 : 12;
    c.n_kv_heads = c.n_heads;
    c.vocab_size = 32000;
    c.seq_len = 256;
    c.norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.tied = 1;
    const int batch = quick ? 1 : 4, seq = quick ? 128 : 256;
    double t0 = bench_now();
    if (msbnb_model_create_random(&c, &mp, 1, &m) == MSBNB_OK) {
        printf("  (random d%d L%d generated in %.1f s)\n", c.dim, c.n_layers, bench_now() - t0);
        for (int ci = 0; ci < n_comp; ci++) {
            run_result r = {0};
            if (time_training(m, batch, seq, quick ? 1 : 2, 0, computes[ci], &r) != 0) {
                rc = 1;
                continue;
            }
            snprintf(rows[n_rows].name, sizeof rows[n_rows].name, "random d%d L%d nf4+dq (%.0fM)", c.dim, c.n_layers,
                     (double)flop_params(&c) / 1e6);
            rows[n_rows].batch = batch, rows[n_rows].seq = seq, rows[n_rows].c = computes[ci], rows[n_rows].r = r;
            n_rows++;
        }
        msbnb_model_free(m);
    } else {
        printf("  generated model: %s\n", msbnb_last_error());
        rc = 1;
    }
    const char *impl2 = "", *pdt2 = "";
    const double fma2 = bench_fma_peak_gflops(threads), eng2 = engine_peak(threads, &impl2, &pdt2);
    if (fma2 > fma) fma = fma2;
    if (eng2 > eng) eng = eng2;
    printf("  peaks measured at %d thread(s) (best of before / after the runs): engine %.1f GFLOP/s (oneDNN %s "
           "dense matmul, %s), FMA probe %.1f GFLOP/s\n", threads, eng, pdt, impl, fma);
    printf("  %-30s %10s %-6s %10s %9s %8s %8s %9s %s\n", "model", "batch x T", "comp.", "tokens/s", "GFLOP/s",
           "MFU eng", "MFU fma", "act. MB", "vs peers (make bench-peers)");
    for (int i = 0; i < n_rows; i++) {
        const run_result *r = &rows[i].r;
        const char *cn = msbnb_compute_name(rows[i].c);
        /* ratios to both peer computes of the same thread count and batch (fp32; bf16 autocast) */
        char peer[2][256] = {"", ""}, vs[600] = "-";
        double pt[2];
        int at = 0;
        for (int k = 0; k < 2; k++) {
            pt[k] = peer_tokens(k ? "bf16" : "fp32", threads, rows[i].batch, rows[i].seq, peer[k], sizeof peer[k]);
            if (pt[k] > 0)
                at += snprintf(vs + at, sizeof vs - (size_t)at, "%s%.2fx peer %s (%.1f tokens/s)", at ? "; " : "",
                               r->tokens_per_s / pt[k], k ? "bf16 autocast" : "fp32", pt[k]);
        }
        printf("  %-30s %3d x %-4d %-6s %10.0f %9.2f %7.1f%% %7.1f%% %9.1f %s\n", rows[i].name, rows[i].batch,
               rows[i].seq, cn, r->tokens_per_s, r->model_gflops, eng > 0 ? 100.0 * r->model_gflops / eng : 0.0,
               100.0 * r->model_gflops / fma, r->mem_mb, vs);
        char shape[128];
        snprintf(shape, sizeof shape, "%.64s, %d x %d", rows[i].name, rows[i].batch, rows[i].seq);
        char what[64];
        snprintf(what, sizeof what, "train tokens/s %s", cn);
        bench_record("train", what, shape, (long long)rows[i].batch * rows[i].seq, threads, r->tokens_per_s,
                     "tokens/s", NULL, 0, "");
        for (int k = 0; k < 2; k++)
            if (pt[k] > 0)
                bench_record("train", what, shape, (long long)rows[i].batch * rows[i].seq, threads, r->tokens_per_s,
                             "tokens/s", peer[k], pt[k], "");
        snprintf(what, sizeof what, "train model GFLOP/s %s", cn);
        bench_record("train", what, shape, (long long)rows[i].batch * rows[i].seq, threads, r->model_gflops,
                     "GFLOP/s", eng > 0 ? "engine peak (oneDNN dense matmul)" : "FMA probe peak", eng > 0 ? eng : fma,
                     impl);
        bench_record("train", what, shape, (long long)rows[i].batch * rows[i].seq, threads, r->model_gflops,
                     "GFLOP/s", "FMA probe peak", fma, "");
    }
    /* the target for the d768 configuration: >= 1.5x the peer with bf16 autocast, on AMX hosts */
    const msbnb__od_class cls = msbnb__od_cpu_class();
    for (int i = 0; i < n_rows && !quick; i++) {
        if (rows[i].batch != 4 || rows[i].c != (n_comp > 1 ? MSBNB_COMPUTE_BF16 : MSBNB_COMPUTE_FP32)) continue;
        char peer[256];
        const double p = peer_tokens("bf16", threads, rows[i].batch, rows[i].seq, peer, sizeof peer);
        const double ratio = p > 0 ? rows[i].r.tokens_per_s / p : 0;
        if (cls != MSBNB__OD_AMX)
            printf("  target (AMX hosts): d768 training >= 1.5x the peer with bf16 autocast: not measurable here "
                   "(oneDNN class %s, no AMX)%s\n", msbnb__od_class_name(cls),
                   p > 0 ? "; the ratio above is informative" : "");
        else if (p <= 0)
            printf("  target (AMX host): d768 training >= 1.5x the peer with bf16 autocast: peer not measured "
                   "(run make bench-peers)\n");
        else
            printf("  target (AMX host): d768 training >= 1.5x the peer with bf16 autocast: %.2fx  %s\n", ratio,
                   ratio >= 1.5 ? "PASS" : "FAIL");
        if (p > 0)
            bench_record("train", "target: x peer bf16 autocast (AMX hosts: >= 1.5)", rows[i].name,
                         (long long)rows[i].batch * rows[i].seq, threads, ratio, "ratio", "target", 1.5,
                         msbnb__od_class_name(cls));
    }
    if (rc) printf("  error: %s\n", msbnb_last_error());
    return rc;
}

int bench_train(int quick) {
    const int saved = msbnb_get_num_threads();
    /* MSBNB_THREADS names the one thread count to run; unset: 1 and 2 */
    const char *env = getenv("MSBNB_THREADS");
    int counts[2] = {1, 2}, n_counts = 2;
    if (env && *env) counts[0] = msbnb_get_num_threads(), n_counts = 1;
    int rc = 0;
    for (int i = 0; i < n_counts; i++) rc |= bench_train_at(counts[i], quick);
    msbnb_set_num_threads(saved);
    return rc;
}
