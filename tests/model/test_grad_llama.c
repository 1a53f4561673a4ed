/*
 * test_grad_llama.c — whole-model gradient check: ∂loss/∂(lora_A, lora_B) of every adapted
 * projection from msbnb_trainer_step against central finite differences of the loss, on a tiny
 * random LLaMA (dim 16, 2 layers, 4 heads, 2 KV heads, vocab 32, seq 8, batch 2).
 *
 * Tolerance. The model runs in float32 (the library's only precision; the ops themselves are
 * checked in double in test_backward_ops.c). Each loss evaluation carries a float rounding error
 * of roughly 1e-7 relative; with step h = 1e-3 the finite difference has noise ≈ 1e-7·4/2e-3 ≈
 * 2e-4 absolute, and truncation h²/6·|f'''| is below that (measured: h = 1e-2 gives 5e-3
 * relative error, 3e-3 gives 4e-4, 1e-3 gives 2-3e-4 — the float noise floor). So the check is
 * on the whole gradient vector, relative, with weights scaled up so gradients are O(1):
 *     ‖g − g_fd‖₂ ≤ 2e-3 · ‖g_fd‖₂   and   max |g − g_fd| ≤ 2e-3 · max |g_fd|
 * (about 8x above the measured floor). A missing or wrong term (a sign, a transposed product, a
 * forgotten residual, RoPE's inverse left out of the backward) gives a relative error of O(0.1-1).
 *
 * Also: recompute == stored activations bit for bit; 1, 2, 3 threads bit-identical; dropout
 * masks are reproduced by the backward (gradient check with dropout 0.3).
 */
#include <msbnb/train.h>

#include "model/backward_ops.h"
#include "model/llama_internal.h"
#include "test.h"

enum { BATCH = 2, SEQ = 8 };

/* 1: the other families' features in one model — q/k/v biases (qwen2), per-head q/k RMSNorm with
 * non-unit weights and head_dim 8 != dim/heads (qwen3), a sliding window of 3 (mistral), YaRN
 * RoPE (cos/sin scaled). */
static int g_family_features;

static msbnb_model *tiny_model(msbnb_qtype quant, int tied, uint64_t seed, int big) {
    msbnb_model_config c = {0};
    c.dim = big ? 64 : 16;
    c.hidden_dim = big ? 96 : 24;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 0;
    c.vocab_size = 32;
    c.seq_len = big ? 64 : 16;
    c.norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.tied = tied;
    if (g_family_features) {
        c.head_dim = 8;
        c.bias = MSBNB_BIAS_QKV;
        c.qk_norm = 1;
        c.sliding_window = 3;
        c.rope.type = MSBNB_ROPE_YARN;
        c.rope.factor = 4.0f;
        c.rope.original_max_pos = 4;
        c.rope.beta_fast = 32.0f;
        c.rope.beta_slow = 1.0f;
        c.rope.attention_factor = 1.2f;
        c.rope.truncate = 1;
    }
    msbnb_model_params mp = msbnb_model_params_default();
    msbnb_model *m = NULL;
    /* build fp32 first, scale the weights so the network is far from uniform, then quantize if
     * asked by rebuilding the projections from the scaled weights */
    CHECK_OK(msbnb_model_create_random(&c, &mp, seed, &m));
    if (!m) return NULL;
    for (size_t i = 0; i < (size_t)c.vocab_size * (size_t)c.dim; i++) m->tok_emb[i] *= 10.0f; /* std 0.2 */
    mp.quant = quant;
    mp.blocksize = 32;
    m->params = mp;
    for (int l = 0; l < c.n_layers; l++)
        for (int q = 0; q < MSBNB_PROJ_COUNT; q++) {
            msbnb_linear *lin = m->layers[l].proj[q];
            int64_t n = msbnb_linear_in_features(lin) * msbnb_linear_out_features(lin);
            float *w = malloc(sizeof(float) * (size_t)n);
            CHECK_OK(msbnb_linear_get_weight_f32(lin, w));
            for (int64_t i = 0; i < n; i++) w[i] *= 15.0f; /* std 0.3 */
            const float *b = msbnb_linear_bias(lin);
            float *bias = NULL;
            if (b) {
                bias = malloc(sizeof(float) * (size_t)msbnb_linear_out_features(lin));
                for (int64_t i = 0; i < msbnb_linear_out_features(lin); i++) bias[i] = 10.0f * b[i];
            }
            CHECK_OK(msbnb__llama_set_proj(m, l, (msbnb_proj)q, w, bias));
            free(bias);
            free(w);
        }
    test_rng nr = {seed + 11};
    for (int l = 0; c.qk_norm && l < c.n_layers; l++) {
        test_fill_normal(&nr, m->layers[l].q_norm, (size_t)c.head_dim, 0.3f);
        test_fill_normal(&nr, m->layers[l].k_norm, (size_t)c.head_dim, 0.3f);
        for (int i = 0; i < c.head_dim; i++) m->layers[l].q_norm[i] += 1.0f, m->layers[l].k_norm[i] += 1.0f;
    }
    if (!tied && m->output) {
        float *w = msbnb_linear_weight(m->output);
        for (size_t i = 0; w && i < (size_t)c.vocab_size * (size_t)c.dim; i++) w[i] *= 15.0f;
    }
    return m;
}

/* Attach r=2 adapters to every projection and give B non-zero values (B = 0 at init would make
 * every dA zero and hide half the check). */
static void attach(msbnb_model *m, float dropout, uint64_t seed) {
    msbnb_lora_params lp = msbnb_lora_params_default();
    lp.r = 2;
    lp.lora_alpha = 4;
    lp.lora_dropout = dropout;
    lp.seed = seed;
    CHECK_OK(msbnb_model_lora_attach(m, "default", &lp, MSBNB_LORA_TARGETS_ALL));
    test_rng r = {seed + 5};
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int q = 0; q < MSBNB_PROJ_COUNT; q++) {
            msbnb_lora_view v;
            CHECK_OK(msbnb_lora_get(m->layers[l].proj[q], NULL, &v));
            test_fill_normal(&r, v.B, (size_t)(v.r * v.out_features), 0.3f);
            for (int64_t i = 0; i < v.r * v.in_features; i++) v.A[i] *= 2.0f;
        }
}

static void make_tokens(int32_t *tok, int n, uint64_t seed) {
    test_rng r = {seed};
    for (int i = 0; i < n; i++) tok[i] = (int32_t)(test_rng_u64(&r) % 32);
    tok[SEQ] = -1; /* one ignored target */
}

/* Collect pointers to every LoRA parameter and its gradient. */
typedef struct { float *x, *g; } pref;
static int collect(msbnb_model *m, pref *out, int cap) {
    int n = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int q = 0; q < MSBNB_PROJ_COUNT; q++) {
            msbnb_lora_view v;
            if (msbnb_lora_get(m->layers[l].proj[q], NULL, &v) != MSBNB_OK) continue;
            for (int64_t i = 0; i < v.r * v.in_features && n < cap; i++) out[n++] = (pref){v.A + i, v.dA + i};
            for (int64_t i = 0; i < v.r * v.out_features && n < cap; i++) out[n++] = (pref){v.B + i, v.dB + i};
        }
    return n;
}
static void zero_grads(pref *p, int n) {
    for (int i = 0; i < n; i++) *p[i].g = 0.0f;
}

/* Loss with the dropout masks of step 0 (training forward; gradients of this call discarded). */
static double loss_at(msbnb_trainer *tr, const int32_t *tok, pref *p, int n) {
    double loss = 0;
    msbnb_trainer_set_step_count(tr, 0);
    CHECK_OK(msbnb_trainer_step(tr, tok, &loss));
    zero_grads(p, n);
    return loss;
}

static void grad_check(msbnb_qtype quant, int tied, float dropout, int recompute) {
    msbnb_model *m = tiny_model(quant, tied, 3, 0);
    if (!m) return;
    attach(m, dropout, 17);
    msbnb_train_params tp = msbnb_train_params_default();
    tp.batch = BATCH;
    tp.seq_len = SEQ;
    tp.recompute = recompute;
    tp.seed = 99;
    msbnb_trainer *tr = NULL;
    CHECK_OK(msbnb_trainer_create(m, &tp, &tr));
    int32_t tok[BATCH * (SEQ + 1)];
    make_tokens(tok, BATCH * (SEQ + 1), 4);
    static pref p[8192];
    int n = collect(m, p, 8192);
    CHECK(n > 500);
    zero_grads(p, n);
    double loss = 0;
    msbnb_trainer_set_step_count(tr, 0);
    CHECK_OK(msbnb_trainer_step(tr, tok, &loss));
    CHECK(loss > 0.5 && loss < 20);
    float *g = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) g[i] = *p[i].g;
    zero_grads(p, n);
    const float h = 1e-3f;
    double num = 0, den = 0, maxdiff = 0, maxfd = 0;
    for (int i = 0; i < n; i++) {
        float keep = *p[i].x;
        *p[i].x = keep + h;
        double lp = loss_at(tr, tok, p, n);
        *p[i].x = keep - h;
        double lm = loss_at(tr, tok, p, n);
        *p[i].x = keep;
        /* the actual step (keep ± h rounded to float) */
        double fd = (lp - lm) / ((double)(keep + h) - (double)(keep - h));
        num += (g[i] - fd) * (g[i] - fd);
        den += fd * fd;
        if (fabs(g[i] - fd) > maxdiff) maxdiff = fabs(g[i] - fd);
        if (fabs(fd) > maxfd) maxfd = fabs(fd);
    }
    double rel = sqrt(num / den);
    printf("  %s%s tied=%d dropout=%.1f recompute=%d: %d params, loss %.4f, |g_fd| max %.3g, rel err %.2e, max diff %.2e\n",
           g_family_features ? "families' features, " : "", msbnb_qtype_name(quant), tied, (double)dropout, recompute,
           n, loss, maxfd, rel, maxdiff);
    CHECK(maxfd > 1e-2); /* gradients are not vanishing: the check means something */
    CHECK(rel <= 2e-3);
    CHECK(maxdiff <= 2e-3 * maxfd);
    free(g);
    msbnb_trainer_free(tr);
    msbnb_model_free(m);
}

TEST(grad_fp32_tied) { grad_check(MSBNB_QTYPE_NONE, 1, 0.0f, 0); }
TEST(grad_nf4_tied_recompute) { grad_check(MSBNB_QTYPE_NF4, 1, 0.0f, 1); }
TEST(grad_fp32_untied) { grad_check(MSBNB_QTYPE_NONE, 0, 0.0f, 0); }
TEST(grad_dropout) { grad_check(MSBNB_QTYPE_NF4, 1, 0.3f, 0); }
TEST(grad_family_features) {
    g_family_features = 1;
    grad_check(MSBNB_QTYPE_NONE, 0, 0.0f, 0);
    grad_check(MSBNB_QTYPE_NF4, 1, 0.0f, 1);
    g_family_features = 0;
}

/* Gradients of one step, copied out. */
static float *grads_of(int recompute, int threads, int *n_out, double *loss) {
    msbnb_set_num_threads(threads);
    /* every op threaded, whatever its size (the default skips threads for small work) */
    msbnb__parallel_min = 0;
    msbnb_model *m = tiny_model(MSBNB_QTYPE_NF4, 1, 8, 1);
    if (!m) return NULL;
    attach(m, 0.1f, 21);
    msbnb_train_params tp = msbnb_train_params_default();
    tp.batch = 8; /* 256 rows: products split into two row blocks */
    tp.seq_len = 32;
    tp.recompute = recompute;
    msbnb_trainer *tr = NULL;
    CHECK_OK(msbnb_trainer_create(m, &tp, &tr));
    int32_t tok[8 * 33];
    make_tokens(tok, 8 * 33, 12);
    static pref p[32768];
    int n = collect(m, p, 32768);
    zero_grads(p, n);
    CHECK_OK(msbnb_trainer_step(tr, tok, loss));
    float *g = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) g[i] = *p[i].g;
    *n_out = n;
    msbnb_trainer_free(tr);
    msbnb_model_free(m);
    msbnb_set_num_threads(0);
    msbnb__parallel_min = (int64_t)1 << 17;
    return g;
}

TEST(recompute_and_threads_bit_identical) {
    int n0 = 0, n1 = 0;
    double l0 = 0, l1 = 0;
    float *ref = grads_of(0, 1, &n0, &l0);
    for (int variant = 0; variant < 4 && ref; variant++) {
        int recompute = variant == 3, threads = variant == 3 ? 2 : variant + 1;
        float *g = grads_of(recompute, threads, &n1, &l1);
        CHECK_EQ_INT(n0, n1);
        CHECK(l0 == l1);
        CHECK(g && memcmp(ref, g, sizeof(float) * (size_t)n0) == 0);
        free(g);
    }
    free(ref);
}

/* A second attach under the same name fails and leaves the first adapters in place. */
TEST(attach_twice_fails_cleanly) {
    msbnb_model *m = tiny_model(MSBNB_QTYPE_NONE, 1, 1, 0);
    if (!m) return;
    msbnb_lora_params lp = msbnb_lora_params_default();
    unsigned mask = 0;
    CHECK_OK(msbnb_lora_targets_parse("v_proj,q_proj", &mask));
    CHECK_EQ_INT(mask, (1u << MSBNB_PROJ_Q) | (1u << MSBNB_PROJ_V));
    CHECK_STATUS(msbnb_lora_targets_parse("q_proj,lm_head", &mask), MSBNB_ERR_INVALID_ARG);
    CHECK_OK(msbnb_model_lora_attach(m, "a", &lp, 1u << MSBNB_PROJ_V));
    CHECK(msbnb_model_lora_attach(m, "a", &lp, MSBNB_LORA_TARGETS_ALL) != MSBNB_OK);
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int q = 0; q < MSBNB_PROJ_COUNT; q++) {
            msbnb_linear *lin = m->layers[l].proj[q];
            CHECK_EQ_INT(msbnb_lora_count(lin), q == MSBNB_PROJ_V ? 1 : 0);
            if (q == MSBNB_PROJ_V) CHECK(msbnb_lora_active(lin) && !strcmp(msbnb_lora_active(lin), "a"));
        }
    msbnb_model_free(m);
}

int main(void) {
    RUN(grad_fp32_tied);
    RUN(grad_nf4_tied_recompute);
    RUN(grad_fp32_untied);
    RUN(grad_dropout);
    RUN(grad_family_features);
    RUN(recompute_and_threads_bit_identical);
    RUN(attach_twice_fails_cleanly);
    return test_report();
}
