/*
 * awq.c — activation-aware per-input-channel scales (Lin et al. 2023, "AWQ") for the projections
 * of one decoder layer, and their exact fold into what precedes each group (calibrate.h):
 *   ATTN_IN  q/k/v columns · s,  input_layernorm / s
 *   O_IN     o_proj columns · s, v_proj rows / s  (s tied across the heads sharing a kv head)
 *   MLP_IN   gate/up columns · s, post_attention_layernorm / s
 *   DOWN_IN  down_proj columns · s, up_proj rows / s   (silu(gate) ⊙ up is linear in up)
 * Weights are fp32 [out, in] (w[p] indexed by msbnb_proj). Statistics of a site transform as
 * H' = diag(1/s) H diag(1/s) — the input the scaled weights see.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/calibrate_internal.h"

void msbnb__awq_site_projs(int site, int *first, int *count) {
    static const int f[MSBNB__SITE_COUNT] = {MSBNB_PROJ_Q, MSBNB_PROJ_O, MSBNB_PROJ_GATE, MSBNB_PROJ_DOWN};
    static const int c[MSBNB__SITE_COUNT] = {3, 1, 2, 1};
    *first = f[site];
    *count = c[site];
}

void msbnb__awq_fold(const msbnb_model_config *c, int site, const float *s, float *const w[MSBNB_PROJ_COUNT],
                     float *attn_norm, float *ffn_norm) {
    int first, count;
    msbnb__awq_site_projs(site, &first, &count);
    for (int p = first; p < first + count; p++) {
        int64_t out, in;
        msbnb__llama_proj_shape(c, (msbnb_proj)p, &out, &in);
        for (int64_t r = 0; r < out; r++)
            for (int64_t j = 0; j < in; j++) w[p][r * in + j] *= s[j];
    }
    if (site == MSBNB__SITE_ATTN_IN || site == MSBNB__SITE_MLP_IN) {
        float *norm = site == MSBNB__SITE_ATTN_IN ? attn_norm : ffn_norm;
        for (int j = 0; j < c->dim; j++) norm[j] /= s[j];
    } else if (site == MSBNB__SITE_O_IN) {
        /* o input channel h*hd + i comes from v row g*hd + i, g = h / (n_heads / n_kv_heads) */
        const int hd = c->head_dim, group = c->n_heads / c->n_kv_heads;
        for (int g = 0; g < c->n_kv_heads; g++)
            for (int i = 0; i < hd; i++) {
                const float sv = s[(size_t)(g * group) * hd + i];
                float *row = w[MSBNB_PROJ_V] + (size_t)(g * hd + i) * c->dim;
                for (int j = 0; j < c->dim; j++) row[j] /= sv;
            }
    } else { /* DOWN_IN */
        for (int k = 0; k < c->hidden_dim; k++) {
            float *row = w[MSBNB_PROJ_UP] + (size_t)k * c->dim;
            for (int j = 0; j < c->dim; j++) row[j] /= s[k];
        }
    }
}

/* s = a^α normalised by √(max · min), a [cols] positive. */
static void scales_for(const double *a, int64_t cols, double alpha, float *s) {
    double mx = 0.0, mn = INFINITY;
    for (int64_t j = 0; j < cols; j++) {
        double v = pow(a[j], alpha);
        mx = v > mx ? v : mx;
        mn = v < mn ? v : mn;
    }
    const double norm = sqrt(mx * mn);
    for (int64_t j = 0; j < cols; j++) s[j] = (float)(pow(a[j], alpha) / norm);
}

msbnb_status msbnb__awq_search(const msbnb_model_config *c, int site, const msbnb_quant_config *cfg,
                               const msbnb_quant_method *method, float *const w[MSBNB_PROJ_COUNT],
                               const int sel[MSBNB_PROJ_COUNT], msbnb__site_stats *ss, float *s_out, float *alpha_out) {
    int first, count;
    msbnb__awq_site_projs(site, &first, &count);
    const int64_t cols = ss->cols;
    *alpha_out = 0.0f;
    for (int64_t j = 0; j < cols; j++) s_out[j] = 1.0f;
    int64_t rows_total = 0, max_rows = 0;
    for (int p = first; p < first + count; p++) {
        int64_t out, in;
        msbnb__llama_proj_shape(c, (msbnb_proj)p, &out, &in);
        if (sel[p]) rows_total += out, max_rows = out > max_rows ? out : max_rows;
    }
    if (!rows_total || ss->n == 0) return MSBNB_OK;
    /* RMS of each input; o_proj's inputs tied per kv channel (mean over the heads of a group) */
    double *a = malloc((size_t)cols * sizeof(double));
    RETURN_IF(!a, MSBNB_ERR_OUT_OF_MEMORY, "AWQ statistics");
    for (int64_t j = 0; j < cols; j++) a[j] = ss->diag[j] / (double)ss->n;
    if (site == MSBNB__SITE_O_IN) {
        const int hd = c->head_dim, group = c->n_heads / c->n_kv_heads;
        for (int g = 0; g < c->n_kv_heads; g++)
            for (int i = 0; i < hd; i++) {
                double m = 0.0;
                for (int h = g * group; h < (g + 1) * group; h++) m += a[(size_t)h * hd + i];
                for (int h = g * group; h < (g + 1) * group; h++) a[(size_t)h * hd + i] = m / group;
            }
    }
    double amean = 0.0;
    for (int64_t j = 0; j < cols; j++) amean += a[j];
    amean /= (double)cols;
    for (int64_t j = 0; j < cols; j++) a[j] = sqrt(a[j] + 1e-6 * amean + 1e-30);

    /* the method sees the scaled statistics; the output error is measured on the full H when
     * affordable (rows · cols² multiply-adds), else on the diagonal */
    const int full = ss->h != NULL, err_full = full && (double)rows_total * (double)cols * (double)cols <= (double)(1u << 31);
    double *hs = malloc((full ? (size_t)cols * (size_t)cols : (size_t)cols) * sizeof(double));
    double *hds = malloc((size_t)cols * sizeof(double));
    float *ws = malloc((size_t)max_rows * (size_t)cols * sizeof(float)), *s = malloc((size_t)cols * sizeof(float));
    msbnb_status st = (hs && hds && ws && s) ? MSBNB_OK : MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "AWQ buffers");
    double best = INFINITY;
    for (int ai = 0; ai <= 10 && st == MSBNB_OK; ai++) {
        const double alpha = 0.1 * ai;
        scales_for(a, cols, alpha, s);
        for (int64_t i = 0; i < cols; i++) {
            if (full)
                for (int64_t j = 0; j < cols; j++)
                    hs[(size_t)i * cols + j] = ss->h[(size_t)i * cols + j] / ((double)s[i] * (double)s[j]);
            hds[i] = ss->diag[i] / ((double)s[i] * (double)s[i]);
        }
        msbnb_input_stats is = {cols, ss->n, full ? hs : NULL, hds};
        msbnb_input_stats es = {cols, ss->n, err_full ? hs : NULL, hds};
        msbnb_quant_method md = *method;
        md.stats = &is;
        double loss = 0.0;
        for (int p = first; p < first + count && st == MSBNB_OK; p++) {
            if (!sel[p]) continue;
            int64_t out, in;
            msbnb__llama_proj_shape(c, (msbnb_proj)p, &out, &in);
            for (int64_t r = 0; r < out; r++)
                for (int64_t j = 0; j < in; j++) ws[r * in + j] = w[p][r * in + j] * s[j];
            msbnb_qtensor *q = NULL;
            double e = 0.0;
            st = msbnb_quantize_opt(ws, out, in, cfg, &md, &q);
            if (st == MSBNB_OK) st = msbnb_quant_output_error(ws, q, &es, &e);
            msbnb_qtensor_free(q);
            loss += e;
        }
        if (st == MSBNB_OK && loss < best) {
            best = loss;
            *alpha_out = (float)alpha;
            memcpy(s_out, s, (size_t)cols * sizeof(float));
        }
    }
    if (st == MSBNB_OK && *alpha_out > 0.0f) { /* the statistics the scaled weights will see */
        for (int64_t i = 0; i < cols; i++) {
            if (ss->h)
                for (int64_t j = 0; j < cols; j++) ss->h[(size_t)i * cols + j] /= (double)s_out[i] * (double)s_out[j];
            ss->diag[i] /= (double)s_out[i] * (double)s_out[i];
        }
    }
    free(a);
    free(hs);
    free(hds);
    free(ws);
    free(s);
    return st;
}
