/*
 * calibrate.c — msbnb_quantize_checkpoint_calibrated: layer-by-layer calibration statistics,
 * optional AWQ fold, quantization with msbnb_quantize_opt, and propagation through the quantized
 * layer (calibrate.h describes the scheme).
 *
 * Buffers (N calibration tokens, S tokens per sequence, B = min(S, 256) tokens per forward chunk):
 *   stream   float [N, dim]        residual stream of every calibration token after the layers done
 *   w[p]     float [out, in]       the current layer's fp32 projections (AWQ scales them in place)
 *   site[k]  statistics of input k: diag double [cols], h double [cols, cols] when it fits
 *   xt, y    float [cols, B], [cols, cols]: one chunk transposed, its XᵀX (dense product)
 * The model object (msbnb__llama_alloc of ONE layer with a context of S) provides the layer
 * forward, its KV cache and scratch; layer l of the checkpoint is loaded into its layer 0.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msbnb/kernels.h>

#include "model/calibrate_internal.h"

msbnb_calib_params msbnb_calib_params_default(msbnb_qtype type) {
    msbnb_calib_params p;
    memset(&p, 0, sizeof p);
    p.cfg = msbnb_quant_config_default(type);
    p.method = msbnb_quant_method_default();
    p.method.method = MSBNB_QMETHOD_GPTQ;
    return p;
}

typedef struct calib {
    msbnb_model *m;
    msbnb__site_stats site[MSBNB__SITE_COUNT];
    float *xt, *y; /* [max cols, B], [max full cols, max full cols] */
} calib;

static void proj_name(char *buf, size_t cap, int l, int p) {
    snprintf(buf, cap, "model.layers.%d.%s.%s.weight", l, p <= MSBNB_PROJ_O ? "self_attn" : "mlp",
             msbnb_proj_name((msbnb_proj)p));
}

/* The tap: add x [n, cols] of a site into its statistics (fixed chunking: thread-invariant). */
static msbnb_status tap(void *ctx, int layer, int site, const float *x, int64_t n) {
    (void)layer;
    calib *cb = ctx;
    msbnb__site_stats *s = &cb->site[site];
    const int64_t cols = s->cols;
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < cols; j++) s->diag[j] += (double)x[r * cols + j] * x[r * cols + j];
    s->n += n;
    if (!s->h) return MSBNB_OK;
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < cols; j++) cb->xt[j * n + r] = x[r * cols + j];
    /* y [cols, cols] = xt [cols, n] · xtᵀ */
    TRY(msbnb_matmul_f32(cb->xt, cols, n, cb->xt, cols, NULL, cb->y));
    for (size_t i = 0; i < (size_t)cols * (size_t)cols; i++) s->h[i] += (double)cb->y[i];
    return MSBNB_OK;
}

/* Run layer l over every calibration sequence; write the output back into the stream if asked. */
static msbnb_status run_layer(msbnb_model *m, int l, float *stream, int64_t n_tokens, int seq, int write_back) {
    const int dim = m->cfg.dim, B = m->batch_cap;
    for (int64_t s0 = 0; s0 < n_tokens; s0 += seq) {
        const int len = (int)(n_tokens - s0 < seq ? n_tokens - s0 : seq);
        for (int d = 0; d < len; d += B) {
            const int ch = len - d < B ? len - d : B;
            float *xs = stream + (size_t)(s0 + d) * dim;
            memcpy(m->x, xs, (size_t)ch * dim * sizeof(float));
            TRY(msbnb__llama_layer_forward(m, l, ch, d));
            if (write_back) memcpy(xs, m->x, (size_t)ch * dim * sizeof(float));
        }
    }
    return MSBNB_OK;
}

static void free_site(msbnb__site_stats *s) {
    free(s->h);
    free(s->diag);
    s->h = s->diag = NULL;
}

/* One decoder layer: load, calibrate, (AWQ), quantize, emit, propagate. */
static msbnb_status do_layer(calib *cb, const msbnb_checkpoint *ck, const msbnb_calib_params *p, int l, float *stream,
                             int seq, float *w[MSBNB_PROJ_COUNT], msbnb_calib_emit_fn emit, void *ctx) {
    msbnb_model *m = cb->m;
    const msbnb_model_config *c = &m->cfg;
    msbnb_llama_layer *L = &m->layers[0]; /* the model holds one layer: the current one */
    char name[160];
    int sel[MSBNB_PROJ_COUNT], changed[MSBNB_PROJ_COUNT] = {0}, group[MSBNB_PROJ_COUNT];
    snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
    TRY(msbnb__llama_read_plain(ck, name, 1, c->dim, 0, L->attn_norm));
    snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
    TRY(msbnb__llama_read_plain(ck, name, 1, c->dim, 0, L->ffn_norm));
    for (int q = 0; q < MSBNB_PROJ_COUNT; q++) {
        int64_t out, in;
        msbnb__llama_proj_shape(c, (msbnb_proj)q, &out, &in);
        proj_name(name, sizeof name, l, q);
        msbnb_qtype qt = MSBNB_QTYPE_NONE;
        msbnb_status st = msbnb_bnb_detect(ck, name, &qt);
        RETURN_IF(st == MSBNB_ERR_NOT_FOUND, MSBNB_ERR_FORMAT, "checkpoint has no tensor '%s'", name);
        TRY(st);
        RETURN_IF(qt != MSBNB_QTYPE_NONE, MSBNB_ERR_FORMAT, "'%s' is already quantized", name);
        TRY(msbnb__llama_read_plain(ck, name, 2, out, in, w[q]));
        TRY(msbnb__llama_set_proj_f32(m, 0, (msbnb_proj)q, w[q]));
        group[q] = p->cfg.type == MSBNB_QTYPE_INT4 ? msbnb_int4_group_for(in, p->cfg.group_size) : 0;
        sel[q] = (p->cfg.type != MSBNB_QTYPE_INT4 || group[q] > 0) &&
                 (!p->select || p->select(p->select_ctx, name, out, in));
    }
    /* statistics of the four inputs */
    for (int k = 0; k < MSBNB__SITE_COUNT; k++) {
        msbnb__site_stats *s = &cb->site[k];
        memset(s->diag, 0, (size_t)s->cols * sizeof(double));
        if (s->h) memset(s->h, 0, (size_t)s->cols * (size_t)s->cols * sizeof(double));
        s->n = 0;
    }
    m->tap = tap;
    m->tap_ctx = cb;
    msbnb_status st = run_layer(m, 0, stream, p->n_tokens, seq, 0);
    m->tap = NULL;
    TRY(st);
    /* AWQ: o and down first (they scale v / up rows), then q/k/v and gate/up (columns) */
    if (p->awq) {
        static const int order[MSBNB__SITE_COUNT] = {MSBNB__SITE_O_IN, MSBNB__SITE_DOWN_IN, MSBNB__SITE_ATTN_IN,
                                                     MSBNB__SITE_MLP_IN};
        for (int oi = 0; oi < MSBNB__SITE_COUNT; oi++) {
            const int k = order[oi];
            int first, count;
            msbnb__awq_site_projs(k, &first, &count);
            msbnb_quant_config qc = p->cfg;
            if (qc.type == MSBNB_QTYPE_INT4) qc.group_size = group[first] ? group[first] : qc.group_size;
            float *s = malloc((size_t)cb->site[k].cols * sizeof(float)), alpha = 0.0f;
            RETURN_IF(!s, MSBNB_ERR_OUT_OF_MEMORY, "AWQ scales");
            st = msbnb__awq_search(c, k, &qc, &p->method, w, sel, &cb->site[k], s, &alpha);
            if (st == MSBNB_OK && alpha > 0.0f) {
                msbnb__awq_fold(c, k, s, w, L->attn_norm, L->ffn_norm);
                for (int q = first; q < first + count; q++) changed[q] = 1;
                if (k == MSBNB__SITE_O_IN) changed[MSBNB_PROJ_V] = 1;
                if (k == MSBNB__SITE_DOWN_IN) changed[MSBNB_PROJ_UP] = 1;
                const int64_t shape[1] = {c->dim};
                if (k == MSBNB__SITE_ATTN_IN || k == MSBNB__SITE_MLP_IN) {
                    snprintf(name, sizeof name, "model.layers.%d.%s.weight", l,
                             k == MSBNB__SITE_ATTN_IN ? "input_layernorm" : "post_attention_layernorm");
                    st = emit(ctx, name, NULL, k == MSBNB__SITE_ATTN_IN ? L->attn_norm : L->ffn_norm, 1, shape);
                }
            }
            free(s);
            TRY(st);
        }
    }
    /* quantize, emit, and put the quantized layers in place for the propagation */
    for (int q = 0; q < MSBNB_PROJ_COUNT; q++) {
        int64_t out, in;
        msbnb__llama_proj_shape(c, (msbnb_proj)q, &out, &in);
        const int64_t shape[2] = {out, in};
        proj_name(name, sizeof name, l, q);
        if (!sel[q]) {
            if (changed[q]) {
                TRY(emit(ctx, name, NULL, w[q], 2, shape));
                TRY(msbnb__llama_set_proj_f32(m, 0, (msbnb_proj)q, w[q]));
            }
            continue;
        }
        int site = q <= MSBNB_PROJ_V ? MSBNB__SITE_ATTN_IN : q == MSBNB_PROJ_O ? MSBNB__SITE_O_IN
                 : q <= MSBNB_PROJ_UP ? MSBNB__SITE_MLP_IN : MSBNB__SITE_DOWN_IN;
        msbnb__site_stats *s = &cb->site[site];
        msbnb_input_stats is = {s->cols, s->n, s->h, s->diag};
        msbnb_quant_method md = p->method;
        md.stats = s->n ? &is : NULL;
        msbnb_quant_config qc = p->cfg;
        if (qc.type == MSBNB_QTYPE_INT4) qc.group_size = group[q];
        msbnb_qtensor *qt = NULL;
        TRY(msbnb_quantize_opt(w[q], out, in, &qc, &md, &qt));
        st = emit(ctx, name, qt, w[q], 2, shape);
        msbnb_linear *lin = NULL;
        if (st == MSBNB_OK) st = msbnb_linear_from_qtensor(qt, NULL, &lin);
        if (st != MSBNB_OK) {
            msbnb_qtensor_free(qt);
            return st;
        }
        msbnb_linear_free(L->proj[q]);
        L->proj[q] = lin;
    }
    st = run_layer(m, 0, stream, p->n_tokens, seq, 1);
    for (int q = 0; q < MSBNB_PROJ_COUNT; q++) { /* bounded memory: only this layer was held */
        msbnb_linear_free(L->proj[q]);
        L->proj[q] = NULL;
    }
    return st;
}

msbnb_status msbnb_quantize_checkpoint_calibrated(const msbnb_checkpoint *ck, const msbnb_calib_params *p,
                                                  msbnb_calib_emit_fn emit, void *ctx) {
    RETURN_IF(!ck || !p || !emit, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(!p->tokens || p->n_tokens < 2, MSBNB_ERR_INVALID_ARG, "calibration needs at least 2 tokens (%lld)",
              (long long)p->n_tokens);
    RETURN_IF(p->cfg.type != MSBNB_QTYPE_NF4 && p->cfg.type != MSBNB_QTYPE_FP4 && p->cfg.type != MSBNB_QTYPE_INT4,
              MSBNB_ERR_UNSUPPORTED, "calibrated quantization writes nf4, fp4 or int4, not %s",
              msbnb_qtype_name(p->cfg.type));
    RETURN_IF(p->seq_len < 0, MSBNB_ERR_INVALID_ARG, "seq_len %d", p->seq_len);
    msbnb_model_config c;
    TRY(msbnb__llama_config_from_checkpoint(ck, "checkpoint", &c));
    /* the layer is rebuilt from its norms and projections only */
    RETURN_IF(c.bias || c.qk_norm, MSBNB_ERR_UNSUPPORTED,
              "calibrated quantization handles layers without projection biases or q/k norms (%s has %s)",
              msbnb_family_name(c.family), c.bias ? "biases" : "q/k norms");
    for (int64_t i = 0; i < p->n_tokens; i++)
        RETURN_IF(p->tokens[i] < 0 || p->tokens[i] >= c.vocab_size, MSBNB_ERR_INVALID_ARG,
                  "calibration token %d at %lld outside the vocabulary of %d", p->tokens[i], (long long)i, c.vocab_size);
    int seq = p->seq_len ? p->seq_len : 512;
    if (seq > c.seq_len) seq = c.seq_len;
    msbnb_model_params mp = msbnb_model_params_default();
    mp.max_seq_len = seq;
    mp.max_batch = seq < 256 ? seq : 256;
    calib cb;
    memset(&cb, 0, sizeof cb);
    msbnb_model_config one = c; /* one layer's weights, KV cache and scratch: memory bounded by a layer */
    one.n_layers = 1;
    TRY(msbnb__llama_alloc(&one, &mp, &cb.m));
    msbnb_model *m = cb.m;
    const size_t hmax = p->h_max_bytes ? p->h_max_bytes : ((size_t)512 << 20);
    const int64_t site_cols[MSBNB__SITE_COUNT] = {c.dim, msbnb__llama_q_dim(&c), c.dim, c.hidden_dim};
    int64_t max_cols = 0, max_full = 0;
    msbnb_status st = MSBNB_OK;
    for (int k = 0; k < MSBNB__SITE_COUNT && st == MSBNB_OK; k++) {
        msbnb__site_stats *s = &cb.site[k];
        s->cols = site_cols[k];
        int full = (double)s->cols * (double)s->cols * sizeof(double) <= (double)hmax;
        s->diag = calloc((size_t)s->cols, sizeof(double));
        s->h = full ? calloc((size_t)s->cols * (size_t)s->cols, sizeof(double)) : NULL;
        if (!s->diag || (full && !s->h)) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "statistics of %lld inputs", (long long)s->cols);
        max_cols = s->cols > max_cols ? s->cols : max_cols;
        if (full && s->cols > max_full) max_full = s->cols;
    }
    float *stream = NULL, *w[MSBNB_PROJ_COUNT] = {0};
    if (st == MSBNB_OK) {
        cb.xt = malloc((size_t)max_cols * (size_t)m->batch_cap * sizeof(float));
        cb.y = max_full ? malloc((size_t)max_full * (size_t)max_full * sizeof(float)) : NULL;
        stream = malloc((size_t)p->n_tokens * (size_t)c.dim * sizeof(float));
        for (int q = 0; q < MSBNB_PROJ_COUNT; q++) {
            int64_t out, in;
            msbnb__llama_proj_shape(&c, (msbnb_proj)q, &out, &in);
            w[q] = malloc((size_t)out * (size_t)in * sizeof(float));
            if (!w[q]) st = MSBNB_ERR_OUT_OF_MEMORY;
        }
        if (!cb.xt || (max_full && !cb.y) || !stream || st != MSBNB_OK)
            st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "calibration buffers (%lld tokens x %d)", (long long)p->n_tokens, c.dim);
    }
    if (st == MSBNB_OK) st = msbnb__llama_read_plain(ck, "model.embed_tokens.weight", 2, c.vocab_size, c.dim, m->tok_emb);
    if (st == MSBNB_OK)
        for (int64_t i = 0; i < p->n_tokens; i++)
            memcpy(stream + (size_t)i * c.dim, m->tok_emb + (size_t)p->tokens[i] * c.dim, (size_t)c.dim * sizeof(float));
    for (int l = 0; l < c.n_layers && st == MSBNB_OK; l++) st = do_layer(&cb, ck, p, l, stream, seq, w, emit, ctx);
    for (int k = 0; k < MSBNB__SITE_COUNT; k++) free_site(&cb.site[k]);
    for (int q = 0; q < MSBNB_PROJ_COUNT; q++) free(w[q]);
    free(cb.xt);
    free(cb.y);
    free(stream);
    msbnb_model_free(m);
    return st;
}
