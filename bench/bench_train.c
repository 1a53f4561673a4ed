/*
 * bench_train.c — benchmark section 'train': QLoRA training throughput (tokens/s) and model-FLOP
 * utilisation at 2 threads, for the real stories260K model and for a generated larger LLaMA
 * (dim 768, 12 layers, 12 heads, hidden 2048, vocab 32000, seq 256, random NF4 + DQ weights).
 *
 * Model FLOPs per token ≈ 4·P for LoRA training, P = the base weights that take part in products
 * (the seven projections of every layer plus the output matrix; the embedding lookup is free):
 * 2·P for the forward, 2·P for the backward's activation gradients dX = dY·W. Full training would
 * add 2·P for the weight gradients dW = dYᵀ·X (hence the usual 6·P); the base is frozen, and the
 * adapters' own products (rank r ≪ dim) and attention are left out of the count, as MFU
 * conventionally does. Utilisation = achieved model FLOP/s (best step) ÷ the fp32 FMA peak that
 * bench_fma_peak_gflops measures on the same threads in the same run (best of before and after).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <cblas.h>
#include <msbnb/train.h>

#include "bench.h"

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
static int time_training(msbnb_model *m, int batch, int seq, int steps, int recompute, run_result *res) {
    msbnb_lora_params lp = msbnb_lora_params_default();
    lp.lora_dropout = 0.05f;
    if (msbnb_lora_count(msbnb_model_linear(m, 0, MSBNB_PROJ_Q)) == 0 &&
        msbnb_model_lora_attach(m, "bench", &lp, MSBNB_LORA_TARGETS_ALL) != MSBNB_OK)
        return -1;
    msbnb_train_params tp = msbnb_train_params_default();
    tp.batch = batch;
    tp.seq_len = seq;
    tp.recompute = recompute;
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
        double t0 = bench_now();
        msbnb_optim_zero_grad(opt);
        if (msbnb_trainer_step(tr, tok, &loss) != MSBNB_OK || msbnb_optim_step(opt, NULL) != MSBNB_OK) rc = -1;
        double dt = bench_now() - t0;
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

typedef struct row {
    char name[64];
    int batch, seq;
    const char *mode;
    run_result r;
} row;

static row rows[4];
static int n_rows;

static void add_row(const char *name, int batch, int seq, const char *mode, const run_result *r) {
    if (n_rows == (int)(sizeof rows / sizeof rows[0])) return;
    row *w = &rows[n_rows++];
    snprintf(w->name, sizeof w->name, "%s", name);
    w->batch = batch;
    w->seq = seq;
    w->mode = mode;
    w->r = *r;
}

static void print_rows(double peak) {
    for (int i = 0; i < n_rows; i++) {
        const row *w = &rows[i];
        printf("  %-30s %3d x %-4d %-10s %10.0f %9.2f %7.1f%% %9.1f\n", w->name, w->batch, w->seq, w->mode,
               w->r.tokens_per_s, w->r.model_gflops, 100.0 * w->r.model_gflops / peak, w->r.mem_mb);
    }
}

int bench_train(int quick) {
    const int threads = 2;
    int saved = msbnb_get_num_threads();
    msbnb_set_num_threads(threads);
    /* The machine may be shared: a busy neighbour lowers a measurement, never raises it, so the
     * peak is the best of a measurement before and one after the runs (utilisations are printed
     * after the second), as the step time is the best of several steps. */
    double peak = bench_fma_peak_gflops(threads);
    printf("\n[train] QLoRA training step (forward + backward + AdamW), r=8 on all 7 projections, %d threads\n",
           threads);
    printf("  Model FLOPs = 4 x P x tokens (P: projections + output)\n");
    /* OpenBLAS picks its kernels at load (or takes OPENBLAS_CORETYPE): the AVX2 "Haswell" ones
     * reach at most half of an AVX-512 machine's measured peak, "SkylakeX" uses AVX-512 */
    const char *forced = getenv("OPENBLAS_CORETYPE");
    printf("  OpenBLAS kernels: %s (%s%s)\n", openblas_get_corename(), forced ? "forced by OPENBLAS_CORETYPE=" : "detected",
           forced ? forced : "");
    int rc = 0;
    /* ---- stories260K, NF4 + double quantization */
    msbnb_model_params mp = msbnb_model_params_default();
    mp.quant = MSBNB_QTYPE_NF4;
    mp.double_quant = 1;
    msbnb_model *m = NULL;
    if (msbnb_model_load(MSBNB_SHARED_DIR "/models/stories260K/hf", &mp, &m) == MSBNB_OK) {
        run_result r = {0};
        if (time_training(m, 8, 64, quick ? 3 : 10, 0, &r) == 0) add_row("stories260K nf4+dq", 8, 64, "kept", &r);
        else rc = 1;
        msbnb_model_free(m);
    } else {
        printf("  stories260K: %s\n", msbnb_last_error());
    }
    /* ---- a larger generated config */
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
    double t0 = bench_now();
    if (msbnb_model_create_random(&c, &mp, 1, &m) == MSBNB_OK) {
        char name[64];
        snprintf(name, sizeof name, "random d%d L%d nf4+dq (%.0fM)", c.dim, c.n_layers, (double)flop_params(&c) / 1e6);
        printf("  (generated in %.1f s)\n", bench_now() - t0);
        run_result r = {0};
        if (time_training(m, 1, 256, quick ? 1 : 8, 0, &r) == 0) add_row(name, 1, 256, "kept", &r);
        else rc = 1;
        if (!quick) {
            if (time_training(m, 1, 256, 4, 1, &r) == 0) add_row(name, 1, 256, "recompute", &r);
            else rc = 1;
        }
        msbnb_model_free(m);
    } else {
        printf("  generated model: %s\n", msbnb_last_error());
        rc = 1;
    }
    double peak_after = bench_fma_peak_gflops(threads);
    printf("  fp32 FMA peak measured: %.1f GFLOP/s (before %.1f, after %.1f: the better one counts)\n",
           peak > peak_after ? peak : peak_after, peak, peak_after);
    if (peak_after > peak) peak = peak_after;
    printf("  %-30s %10s %-10s %10s %9s %8s %9s\n", "model", "batch x T", "activ.", "tokens/s", "GFLOP/s", "MFU",
           "act. MB");
    print_rows(peak);
    n_rows = 0;
    if (rc) printf("  error: %s\n", msbnb_last_error());
    msbnb_set_num_threads(saved);
    return rc;
}
