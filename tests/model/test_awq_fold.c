/*
 * test_awq_fold.c — the AWQ fold is exact: scaling each group of projections' input channels and
 * dividing what precedes them (RMSNorm weights, v_proj rows, up_proj rows) leaves the fp32
 * stories260K logits unchanged within 1e-5 relative to the largest logit (float32 rounding of the
 * scaled weights: 2.2e-5 absolute on logits up to 17.9), for random scales in [0.5, 2], including
 * o_proj's scales tied across the heads that share a kv head (GQA: 8 heads, 4 kv heads).
 */
#include <msbnb/model.h>
#include <msbnb/nn.h>

#include "../test.h"
#include "model/calibrate_internal.h"

#define HF_DIR MSBNB_SHARED_DIR "/models/stories260K/hf"

static uint64_t rng = 12345;
static float urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0));
}

TEST(fold_leaves_fp32_logits_unchanged) {
    msbnb_model *m = NULL;
    CHECK_OK(msbnb_model_load(HF_DIR, NULL, &m));
    if (!m) return;
    const msbnb_model_config *c = &m->cfg;
    const int n = 40, V = c->vocab_size;
    int32_t toks[40];
    for (int i = 0; i < n; i++) toks[i] = 1 + (i * 37) % (V - 1);
    float *ref = malloc((size_t)n * V * sizeof(float)), *got = malloc((size_t)n * V * sizeof(float));
    CHECK_OK(msbnb_model_forward(m, toks, n, 0, ref, 1));
    float *w[MSBNB_PROJ_COUNT];
    float s[1024];
    for (int l = 0; l < c->n_layers; l++) {
        for (int p = 0; p < MSBNB_PROJ_COUNT; p++) {
            int64_t out, in;
            msbnb__llama_proj_shape(c, (msbnb_proj)p, &out, &in);
            w[p] = malloc((size_t)out * in * sizeof(float));
            CHECK_OK(msbnb_linear_get_weight_f32(m->layers[l].proj[p], w[p]));
        }
        for (int site = 0; site < MSBNB__SITE_COUNT; site++) {
            int cols = site == MSBNB__SITE_O_IN ? c->n_heads * c->head_dim : site == MSBNB__SITE_DOWN_IN ? c->hidden_dim : c->dim;
            for (int j = 0; j < cols; j++) s[j] = powf(2.0f, 2.0f * urand() - 1.0f); /* 0.5 .. 2, as AWQ picks */
            if (site == MSBNB__SITE_O_IN) { /* heads of one kv group share their scales */
                int group = c->n_heads / c->n_kv_heads;
                for (int h = 0; h < c->n_heads; h++)
                    for (int i = 0; i < c->head_dim; i++) s[h * c->head_dim + i] = s[(h / group) * group * c->head_dim + i];
            }
            msbnb__awq_fold(c, site, s, w, m->layers[l].attn_norm, m->layers[l].ffn_norm);
        }
        for (int p = 0; p < MSBNB_PROJ_COUNT; p++) {
            CHECK_OK(msbnb__llama_set_proj_f32(m, l, (msbnb_proj)p, w[p]));
            free(w[p]);
        }
    }
    CHECK_OK(msbnb_model_forward(m, toks, n, 0, got, 1));
    double maxd = 0.0, maxv = 0.0;
    for (size_t i = 0; i < (size_t)n * V; i++) {
        double d = fabs((double)got[i] - ref[i]);
        maxd = d > maxd ? d : maxd;
        maxv = fabs(ref[i]) > maxv ? fabs(ref[i]) : maxv;
    }
    printf("  max |logit difference| %.3g (logits up to %.3g)\n", maxd, maxv);
    /* float32 rounding of the scaled weights: measured 2.2e-5 absolute = 1.3e-6 of the largest logit */
    CHECK(maxd <= 1e-5 * maxv);
    /* control: scaling q/k/v columns of layer 0 without compensating the norm changes the logits */
    float *wq[MSBNB_PROJ_COUNT] = {0}, dummy[1024];
    for (int p = 0; p < 3; p++) {
        wq[p] = malloc((size_t)c->dim * c->dim * sizeof(float));
        CHECK_OK(msbnb_linear_get_weight_f32(m->layers[0].proj[p], wq[p]));
    }
    for (int j = 0; j < c->dim; j++) s[j] = 1.5f, dummy[j] = 1.0f;
    msbnb__awq_fold(c, MSBNB__SITE_ATTN_IN, s, wq, dummy, dummy);
    for (int p = 0; p < 3; p++) {
        CHECK_OK(msbnb__llama_set_proj_f32(m, 0, (msbnb_proj)p, wq[p]));
        free(wq[p]);
    }
    CHECK_OK(msbnb_model_forward(m, toks, n, 0, got, 1));
    double ctrl = 0.0;
    for (size_t i = 0; i < (size_t)n * V; i++) ctrl = fmax(ctrl, fabs((double)got[i] - ref[i]));
    printf("  uncompensated control: max |difference| %.3g\n", ctrl);
    CHECK(ctrl > 1e-2);
    msbnb_model_free(m);
    free(ref);
    free(got);
}

int main(void) {
    msbnb_set_num_threads(2);
    RUN(fold_leaves_fp32_logits_unchanged);
    return test_report();
}
