/*
 * train_forward.c — the trainer: buffers, the batched training forward over [B, T] tokens that
 * keeps (or, with recompute, only bounds) the activations the backward needs, evaluation.
 *
 * Products: a frozen quantized base (4-bit or INT8 qtensor) goes through the fused products of
 * kernels.h, msbnb_matmul (EXACT) forward and msbnb_matmul_t backward, which read the packed
 * codes directly: no dequantized copy of the weight, and (measured at 768 wide, n = 256) about
 * 400 GFLOP/s on two AVX-512 cores against 230 for dequantize + OpenBLAS sgemm with its AVX2
 * kernels. fp32 weights (fp32 bases, the output matrix) go through sgemm (msbnb_matmul_f32
 * forward, msbnb__sgemm_fixed backward). The LoRA products (rank r) use msbnb__sgemm_fixed.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/backward_ops.h"
#include "kernels/kernels_internal.h"
#include "model/train_internal.h"

/* ================================================================ parameters, creation */

msbnb_train_params msbnb_train_params_default(void) {
    msbnb_train_params p = {4, 64, 0, 0, MSBNB_COMPUTE_AUTO};
    return p;
}

static float *talloc(msbnb_trainer *tr, size_t n, int *fail) {
    if (*fail) return NULL;
    float *p = msbnb__alloc_aligned(n * sizeof(float) + 64);
    if (!p) *fail = 1;
    else tr->bytes += n * sizeof(float);
    return p;
}

static void acts_free(train_acts *a) {
    float **f[] = {&a->xn1, &a->rstd1, &a->qraw, &a->kraw, &a->rstdq, &a->rstdk, &a->q, &a->k, &a->v, &a->probs, &a->att,
                   &a->xmid, &a->xn2, &a->rstd2, &a->g, &a->u, &a->h};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) msbnb__free_aligned(*f[i]);
    for (int q = 0; q < MSBNB_PROJ_COUNT; q++) msbnb__free_aligned(a->lora_h[q]);
}

void msbnb_trainer_free(msbnb_trainer *tr) {
    if (!tr) return;
    for (int i = 0; tr->acts && i < tr->n_acts; i++) acts_free(&tr->acts[i]);
    free(tr->acts);
    free(tr->lora);
    float *f[] = {tr->xs, tr->xf, tr->rstdf, tr->logits, tr->dlogits, tr->out_w, tr->cos_sin, tr->wbuf,
                  tr->xdrop, tr->lg, tr->tmp, tr->dx, tr->dxn, tr->datt, tr->dq, tr->dk, tr->dv,
                  tr->dg, tr->du, tr->dh, tr->attn_scratch, tr->dqraw, tr->dkraw};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) msbnb__free_aligned(f[i]);
    msbnb__free_aligned(tr->row_loss);
    msbnb__free_aligned(tr->inputs);
    msbnb__free_aligned(tr->targets);
    free(tr);
}

static int64_t max3(int64_t a, int64_t b, int64_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

msbnb_status msbnb_trainer_create(msbnb_model *m, const msbnb_train_params *p, msbnb_trainer **out) {
    RETURN_IF(!m || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    msbnb_train_params tp = p ? *p : msbnb_train_params_default();
    const msbnb_model_config *c = &m->cfg;
    RETURN_IF(tp.batch < 1 || tp.seq_len < 1, MSBNB_ERR_INVALID_ARG, "batch %d, seq_len %d must be >= 1",
              tp.batch, tp.seq_len);
    RETURN_IF(tp.seq_len > c->seq_len || tp.seq_len > m->rope_len, MSBNB_ERR_INVALID_ARG,
              "seq_len %d beyond the model's context %d", tp.seq_len,
              c->seq_len < m->rope_len ? c->seq_len : m->rope_len);
    TRY(msbnb__train_compute_resolve(&tp.compute));
    TRY(msbnb__blas_check_memory()); /* the trainer's products go through OpenBLAS */
    msbnb_trainer *tr = calloc(1, sizeof *tr);
    RETURN_IF(!tr, MSBNB_ERR_OUT_OF_MEMORY, "trainer");
    tr->base_bf16 = tp.compute == MSBNB_COMPUTE_BF16;
    tr->m = m;
    tr->p = tp;
    tr->B = tp.batch;
    tr->T = tp.seq_len;
    tr->N = tr->B * tr->T;
    tr->D = c->dim;
    tr->QD = msbnb__llama_q_dim(c);
    tr->KVD = msbnb__llama_kv_dim(c);
    tr->HID = c->hidden_dim;
    tr->V = c->vocab_size;
    int L = c->n_layers;
    int64_t N = tr->N, H = c->n_heads, T = tr->T;

    /* adapters: one view per projection */
    tr->lora = calloc((size_t)L * MSBNB_PROJ_COUNT, sizeof *tr->lora);
    int fail = tr->lora == NULL;
    int64_t maxw = 0;
    for (int l = 0; !fail && l < L; l++)
        for (int q = 0; q < MSBNB_PROJ_COUNT; q++) {
            msbnb_linear *lin = m->layers[l].proj[q];
            int64_t o = msbnb_linear_out_features(lin), in = msbnb_linear_in_features(lin);
            /* wbuf is needed only for a projection with neither a qtensor nor fp32 weights */
            if (!msbnb_linear_qtensor(lin) && !msbnb_linear_weight(lin) && o * in > maxw) maxw = o * in;
            train_lora *tl = &tr->lora[l * MSBNB_PROJ_COUNT + q];
            if (msbnb_lora_active(lin) && msbnb_lora_get(lin, NULL, &tl->v) == MSBNB_OK && !tl->v.merged) {
                tl->on = 1;
                if (tl->v.r > tr->R) tr->R = tl->v.r;
            }
        }
    tr->n_acts = tp.recompute ? 1 : L;
    tr->acts = fail ? NULL : calloc((size_t)tr->n_acts, sizeof *tr->acts);
    fail |= tr->acts == NULL;
    for (int i = 0; !fail && i < tr->n_acts; i++) {
        train_acts *a = &tr->acts[i];
        a->xn1 = talloc(tr, (size_t)(N * tr->D), &fail);
        a->rstd1 = talloc(tr, (size_t)N, &fail);
        a->q = talloc(tr, (size_t)(N * tr->QD), &fail);
        a->k = talloc(tr, (size_t)(N * tr->KVD), &fail);
        if (c->qk_norm) {
            a->qraw = talloc(tr, (size_t)(N * tr->QD), &fail);
            a->kraw = talloc(tr, (size_t)(N * tr->KVD), &fail);
            a->rstdq = talloc(tr, (size_t)(N * H), &fail);
            a->rstdk = talloc(tr, (size_t)(N * c->n_kv_heads), &fail);
        }
        a->v = talloc(tr, (size_t)(N * tr->KVD), &fail);
        a->probs = talloc(tr, (size_t)(tr->B * H * T * T), &fail);
        a->att = talloc(tr, (size_t)(N * tr->QD), &fail);
        a->xmid = talloc(tr, (size_t)(N * tr->D), &fail);
        a->xn2 = talloc(tr, (size_t)(N * tr->D), &fail);
        a->rstd2 = talloc(tr, (size_t)N, &fail);
        a->g = talloc(tr, (size_t)(N * tr->HID), &fail);
        a->u = talloc(tr, (size_t)(N * tr->HID), &fail);
        a->h = talloc(tr, (size_t)(N * tr->HID), &fail);
        for (int q = 0; q < MSBNB_PROJ_COUNT; q++) {
            int any = 0; /* this slot serves layer i, or every layer when recomputing */
            for (int l = 0; l < L; l++)
                if ((tp.recompute || l == i) && tr->lora[l * MSBNB_PROJ_COUNT + q].on) any = 1;
            if (any) a->lora_h[q] = talloc(tr, (size_t)(N * tr->R), &fail);
        }
    }
    int64_t wide = max3(tr->D, tr->QD, tr->HID);
    tr->xs = talloc(tr, (size_t)((L + 1) * N * tr->D), &fail);
    tr->xf = talloc(tr, (size_t)(N * tr->D), &fail);
    tr->rstdf = talloc(tr, (size_t)N, &fail);
    tr->logits = talloc(tr, (size_t)(N * tr->V), &fail);
    tr->dlogits = talloc(tr, (size_t)(N * tr->V), &fail);
    tr->cos_sin = talloc(tr, (size_t)(T * c->head_dim), &fail);
    if (maxw > 0) tr->wbuf = talloc(tr, (size_t)maxw, &fail);
    tr->xdrop = talloc(tr, (size_t)(N * wide), &fail);
    tr->lg = talloc(tr, (size_t)(N * (tr->R > 0 ? tr->R : 1)), &fail);
    tr->tmp = talloc(tr, (size_t)(N * wide), &fail);
    tr->dx = talloc(tr, (size_t)(N * tr->D), &fail);
    tr->dxn = talloc(tr, (size_t)(N * tr->D), &fail);
    tr->datt = talloc(tr, (size_t)(N * tr->QD), &fail);
    tr->dq = talloc(tr, (size_t)(N * tr->QD), &fail);
    tr->dk = talloc(tr, (size_t)(N * tr->KVD), &fail);
    tr->dv = talloc(tr, (size_t)(N * tr->KVD), &fail);
    if (c->qk_norm) {
        tr->dqraw = talloc(tr, (size_t)(N * tr->QD), &fail);
        tr->dkraw = talloc(tr, (size_t)(N * tr->KVD), &fail);
    }
    tr->dg = talloc(tr, (size_t)(N * tr->HID), &fail);
    tr->du = talloc(tr, (size_t)(N * tr->HID), &fail);
    tr->dh = talloc(tr, (size_t)(N * tr->HID), &fail);
    tr->attn_slots = msbnb__threads();
    tr->attn_scratch = talloc(tr, (size_t)msbnb__attention_bwd_scratch(T), &fail);
    if (!fail && (!c->tied || !m->tok_emb || m->output)) {
        /* fp32 copy of an output layer that is not the fp32 embedding (untied, 16-bit, quantized) */
        tr->out_w = talloc(tr, (size_t)(tr->V * tr->D), &fail);
        if (!fail && msbnb__llama_head_f32(m, tr->out_w) != MSBNB_OK) fail = 2;
    }
    if (!fail) {
        tr->row_loss = msbnb__alloc_aligned((size_t)N * sizeof(double));
        tr->inputs = msbnb__alloc_aligned((size_t)N * sizeof(int32_t));
        tr->targets = msbnb__alloc_aligned((size_t)N * sizeof(int32_t));
        if (!tr->row_loss || !tr->inputs || !tr->targets) fail = 1;
    }
    if (fail) {
        msbnb_trainer_free(tr);
        if (fail == 2) return MSBNB_FAIL(MSBNB_ERR_INTERNAL, "model without an output layer");
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "trainer buffers for batch %d x seq %d", tp.batch, tp.seq_len);
    }
    /* RoPE table in backward_ops' layout, computed as inference computes it for a sequence of T
     * positions (dynamic NTK past max_position_embeddings included) */
    int64_t half = c->head_dim / 2;
    float *inv_freq = malloc(sizeof(float) * (size_t)(half * (1 + 2 * T))), scale;
    if (!inv_freq) {
        msbnb_trainer_free(tr);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "RoPE table");
    }
    float *cos_t = inv_freq + half, *sin_t = inv_freq + half + T * half;
    msbnb__rope_inv_freq(c, T, inv_freq, &scale);
    msbnb__rope_fill(inv_freq, scale, (int)half, 0, T, cos_t, sin_t);
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < half; i++) {
            tr->cos_sin[(t * half + i) * 2] = cos_t[t * half + i];
            tr->cos_sin[(t * half + i) * 2 + 1] = sin_t[t * half + i];
        }
    free(inv_freq);
    *out = tr;
    return MSBNB_OK;
}

/* ================================================================ dropout */

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void msbnb__train_dropout(const msbnb_trainer *tr, int l, msbnb_proj q, const float *X, int64_t in, float *out) {
    const train_lora *tl = &tr->lora[l * MSBNB_PROJ_COUNT + q];
    float p = tl->v.lora_dropout;
    int64_t N = tr->N;
    if (!tr->training || p <= 0.0f) {
        if (X) memcpy(out, X, (size_t)(N * in) * sizeof(float));
        else
            for (int64_t i = 0; i < N * in; i++) out[i] = 1.0f;
        return;
    }
    /* Element (n, i) is kept when a 16-bit slice of a hash of (seed, step, layer, projection, n,
     * i/4) is >= p·65536: a pure function of those, so the backward regenerates the forward's
     * mask (one 64-bit hash serves four elements). */
    uint64_t key = mix64(tr->p.seed ^ mix64(tr->step * 0x9e3779b97f4a7c15ull + (uint64_t)(l * 16 + (int)q) + 1));
    float keep_scale = 1.0f / (1.0f - p);
    uint32_t thresh = (uint32_t)((double)p * 65536.0);
#pragma omp parallel for if(N * in >= msbnb__parallel_min) num_threads(msbnb__threads()) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        uint64_t rowkey = mix64(key + (uint64_t)n * 0xd1b54a32d192ed03ull);
        const float *x = X ? X + n * in : NULL;
        float *o = out + n * in;
        for (int64_t i0 = 0; i0 < in; i0 += 4) {
            uint64_t r = mix64(rowkey + (uint64_t)i0 * 0x9e3779b97f4a7c15ull);
            for (int64_t i = i0; i < in && i < i0 + 4; i++, r >>= 16) {
                float v = x ? x[i] : 1.0f;
                o[i] = (uint32_t)(r & 0xffff) >= thresh ? v * keep_scale : 0.0f;
            }
        }
    }
}

/* ================================================================ forward */

/* W of an unquantized projection as fp32 [out, in]: the layer's own fp32 weight, or (a layer
 * kind without either a qtensor or fp32 weights) its weight copied into wbuf. */
msbnb_status msbnb__train_f32_weight(msbnb_trainer *tr, msbnb_linear *lin, const float **W) {
    float *w = msbnb_linear_weight(lin);
    if (w) {
        *W = w;
        return MSBNB_OK;
    }
    RETURN_IF(!tr->wbuf, MSBNB_ERR_INTERNAL, "projection without quantized or fp32 weights");
    TRY(msbnb_linear_get_weight_f32(lin, tr->wbuf));
    *W = tr->wbuf;
    return MSBNB_OK;
}

msbnb_status msbnb__train_proj_forward(msbnb_trainer *tr, int l, msbnb_proj q, const float *X, float *Y,
                                       float *lora_h) {
    msbnb_linear *lin = tr->m->layers[l].proj[q];
    int64_t out = msbnb_linear_out_features(lin), in = msbnb_linear_in_features(lin);
    const float *bias = msbnb_linear_bias(lin);
    const msbnb_qtensor *qt = msbnb_linear_qtensor(lin);
    if (qt) {
        /* Y[N, out] = X[N, in] · deq(W)ᵀ + bias, reading the packed codes directly */
        if (tr->base_bf16) TRY(msbnb__matmul_bf16(qt, X, tr->N, bias, Y));
        else TRY(msbnb_matmul(qt, X, tr->N, bias, Y, MSBNB_PRECISION_EXACT));
    } else {
        const float *W;
        TRY(msbnb__train_f32_weight(tr, lin, &W));
        /* Y[N, out] = X[N, in] · Wᵀ + bias (sgemm over fixed column chunks: thread-invariant) */
        TRY(msbnb_matmul_f32(W, out, in, X, tr->N, bias, Y));
    }
    const train_lora *tl = &tr->lora[l * MSBNB_PROJ_COUNT + q];
    if (!tl->on) return MSBNB_OK;
    int r = tl->v.r;
    msbnb__train_dropout(tr, l, q, X, in, tr->xdrop);
    /* lora_h[N, r] = dropout(X) · Aᵀ;  Y += scaling · lora_h · Bᵀ */
    msbnb__sgemm_fixed(0, 1, (int)tr->N, r, (int)in, 1.0f, tr->xdrop, (int)in,
                tl->v.A, (int)in, 0.0f, lora_h, r);
    msbnb__sgemm_fixed(0, 1, (int)tr->N, (int)out, r, tl->v.scaling, lora_h, r,
                tl->v.B, r, 1.0f, Y, (int)out);
    return MSBNB_OK;
}

/* out[i] = x[i] + y[i], i < n. */
static void residual_add(const float *x, const float *y, int64_t n, float *out) {
#pragma omp parallel for if(n >= msbnb__parallel_min) num_threads(msbnb__threads()) schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = x[i] + y[i];
}

msbnb_status msbnb__train_layer_forward(msbnb_trainer *tr, int l, const float *x_in, train_acts *a, float *x_out) {
    const msbnb_model *m = tr->m;
    const msbnb_model_config *c = &m->cfg;
    int64_t N = tr->N, D = tr->D;
    /* attention block: x_mid = x_in + Wo · attn(RoPE(Wq·xn1), RoPE(Wk·xn1), Wv·xn1) */
    msbnb__rmsnorm_fwd(x_in, m->layers[l].attn_norm, N, D, c->norm_eps, a->xn1, a->rstd1);
    const msbnb_llama_layer *Ly = &m->layers[l];
    TRY(msbnb__train_proj_forward(tr, l, MSBNB_PROJ_Q, a->xn1, Ly->q_norm ? a->qraw : a->q, a->lora_h[MSBNB_PROJ_Q]));
    TRY(msbnb__train_proj_forward(tr, l, MSBNB_PROJ_K, a->xn1, Ly->k_norm ? a->kraw : a->k, a->lora_h[MSBNB_PROJ_K]));
    TRY(msbnb__train_proj_forward(tr, l, MSBNB_PROJ_V, a->xn1, a->v, a->lora_h[MSBNB_PROJ_V]));
    if (Ly->q_norm) { /* qwen3: RMSNorm over each head (rows of head_dim) before RoPE */
        msbnb__rmsnorm_fwd(a->qraw, Ly->q_norm, N * c->n_heads, c->head_dim, c->norm_eps, a->q, a->rstdq);
        msbnb__rmsnorm_fwd(a->kraw, Ly->k_norm, N * c->n_kv_heads, c->head_dim, c->norm_eps, a->k, a->rstdk);
    }
    msbnb__rope_apply(a->q, tr->B, tr->T, c->n_heads, c->head_dim, tr->cos_sin, 0, 0);
    msbnb__rope_apply(a->k, tr->B, tr->T, c->n_kv_heads, c->head_dim, tr->cos_sin, 0, 0);
    msbnb__attention_fwd(a->q, a->k, a->v, tr->B, tr->T, c->n_heads, c->n_kv_heads, c->head_dim, msbnb__llama_window(c, l),
                         a->probs, a->att);
    TRY(msbnb__train_proj_forward(tr, l, MSBNB_PROJ_O, a->att, tr->tmp, a->lora_h[MSBNB_PROJ_O]));
    residual_add(x_in, tr->tmp, N * D, a->xmid);
    /* MLP block: x_out = x_mid + Wdown · (silu(Wgate·xn2) ∘ Wup·xn2) */
    msbnb__rmsnorm_fwd(a->xmid, m->layers[l].ffn_norm, N, D, c->norm_eps, a->xn2, a->rstd2);
    TRY(msbnb__train_proj_forward(tr, l, MSBNB_PROJ_GATE, a->xn2, a->g, a->lora_h[MSBNB_PROJ_GATE]));
    TRY(msbnb__train_proj_forward(tr, l, MSBNB_PROJ_UP, a->xn2, a->u, a->lora_h[MSBNB_PROJ_UP]));
    msbnb__swiglu_fwd(a->g, a->u, N * tr->HID, a->h);
    TRY(msbnb__train_proj_forward(tr, l, MSBNB_PROJ_DOWN, a->h, tr->tmp, a->lora_h[MSBNB_PROJ_DOWN]));
    residual_add(a->xmid, tr->tmp, N * D, x_out);
    return MSBNB_OK;
}

msbnb_status msbnb__train_forward(msbnb_trainer *tr, int training) {
    const msbnb_model *m = tr->m;
    int L = m->cfg.n_layers;
    int64_t N = tr->N, D = tr->D;
    tr->training = training;
    msbnb__llama_embed(m, tr->inputs, N, tr->xs);
    for (int l = 0; l < L; l++) {
        train_acts *a = &tr->acts[tr->p.recompute ? 0 : l];
        TRY(msbnb__train_layer_forward(tr, l, tr->xs + (int64_t)l * N * D, a, tr->xs + (int64_t)(l + 1) * N * D));
    }
    msbnb__rmsnorm_fwd(tr->xs + (int64_t)L * N * D, m->final_norm, N, D, m->cfg.norm_eps, tr->xf, tr->rstdf);
    /* logits[N, V] = xf · Eᵀ (tied) or xf · Woutᵀ; in bf16 training on the engine's bf16 tiles where
     * msbnb__dense_bf16_pick says it wins (native bf16 CPUs), else fp32 */
    const float *Wout = tr->out_w ? tr->out_w : m->tok_emb;
    msbnb_status st = MSBNB_ERR_UNSUPPORTED;
    if (tr->base_bf16 && msbnb__dense_bf16_pick(N)) st = msbnb__matmul_f32_bf16(Wout, tr->V, D, tr->xf, N, NULL, tr->logits);
    if (st == MSBNB_ERR_UNSUPPORTED) st = msbnb_matmul_f32(Wout, tr->V, D, tr->xf, N, NULL, tr->logits);
    TRY(st);
    return MSBNB_OK;
}

/* ================================================================ products
 *
 * Plain fp32 products (LoRA adapters) go through msbnb__sgemm_fixed (kernels/dense.c): fixed row
 * blocks, one single-threaded OpenBLAS call each, so the bits never depend on the thread count.
 * msbnb_trainer_step/_loss hold OpenBLAS single-threaded for their whole duration (the attention
 * products in backward_ops.c call it from inside OpenMP regions) and restore it on return. */

/* Split tokens [B, T+1] into inputs and targets, checking the ids. */
static msbnb_status load_batch(msbnb_trainer *tr, const int32_t *tokens) {
    for (int64_t b = 0; b < tr->B; b++)
        for (int64_t t = 0; t < tr->T; t++) {
            int32_t x = tokens[b * (tr->T + 1) + t], y = tokens[b * (tr->T + 1) + t + 1];
            RETURN_IF(x >= tr->V, MSBNB_ERR_INVALID_ARG, "input token %d out of range [0, %lld)", x,
                      (long long)tr->V);
            if (x < 0) x = 0; /* padding */
            RETURN_IF(y >= tr->V, MSBNB_ERR_INVALID_ARG, "target token %d out of range", y);
            tr->inputs[b * tr->T + t] = x;
            tr->targets[b * tr->T + t] = y;
        }
    return MSBNB_OK;
}

msbnb_status msbnb_trainer_step(msbnb_trainer *tr, const int32_t *tokens, double *loss) {
    RETURN_IF(!tr || !tokens || !loss, MSBNB_ERR_INVALID_ARG, "NULL argument");
    TRY(load_batch(tr, tokens));
    int blas_prev = msbnb__blas_single_thread_begin();
    msbnb_status st = msbnb__train_forward(tr, 1);
    if (st == MSBNB_OK) {
        int64_t count = 0;
        *loss = msbnb__cross_entropy(tr->logits, tr->targets, tr->N, tr->V, tr->dlogits, tr->row_loss, &count);
        if (count > 0) st = msbnb__train_backward(tr);
        tr->step++;
    }
    tr->training = 0;
    msbnb__blas_single_thread_end(blas_prev);
    return st;
}

msbnb_status msbnb_trainer_loss(msbnb_trainer *tr, const int32_t *tokens, double *loss, int64_t *count) {
    RETURN_IF(!tr || !tokens || !loss, MSBNB_ERR_INVALID_ARG, "NULL argument");
    TRY(load_batch(tr, tokens));
    int blas_prev = msbnb__blas_single_thread_begin();
    msbnb_status st = msbnb__train_forward(tr, 0);
    if (st == MSBNB_OK)
        *loss = msbnb__cross_entropy(tr->logits, tr->targets, tr->N, tr->V, NULL, tr->row_loss, count);
    msbnb__blas_single_thread_end(blas_prev);
    return st;
}

msbnb_status msbnb_trainer_eval_stream(msbnb_trainer *tr, const int32_t *ids, int64_t n, int64_t max_windows,
                                       double *loss, int64_t *count) {
    RETURN_IF(!tr || !ids || !loss, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(n < 2, MSBNB_ERR_INVALID_ARG, "token stream of %lld tokens", (long long)n);
    int64_t T = tr->T, B = tr->B;
    int64_t windows = (n - 1 + T - 1) / T;
    if (max_windows > 0 && windows > max_windows) windows = max_windows;
    int32_t *batch = malloc(sizeof(int32_t) * (size_t)(B * (T + 1)));
    RETURN_IF(!batch, MSBNB_ERR_OUT_OF_MEMORY, "eval batch");
    double total = 0.0;
    int64_t scored = 0;
    msbnb_status st = MSBNB_OK;
    for (int64_t w0 = 0; w0 < windows && st == MSBNB_OK; w0 += B) {
        /* window w covers ids[w·T .. w·T + T]; positions past the stream (or windows past the
         * last) are -1: ignored as targets, padding as inputs (after every real token, so the
         * causal mask keeps them from changing any scored position) */
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t <= T; t++) {
                int64_t i = (w0 + b) * T + t;
                batch[b * (T + 1) + t] = (w0 + b < windows && i < n) ? ids[i] : -1;
            }
        double l = 0.0;
        int64_t c = 0;
        st = msbnb_trainer_loss(tr, batch, &l, &c);
        total += l * (double)c;
        scored += c;
    }
    free(batch);
    TRY(st);
    RETURN_IF(scored == 0, MSBNB_ERR_NUMERIC, "no token scored");
    *loss = total / (double)scored;
    if (count) *count = scored;
    return MSBNB_OK;
}

/* ================================================================ accessors */

msbnb_status msbnb_trainer_register(msbnb_trainer *tr, msbnb_optim *opt) {
    RETURN_IF(!tr || !opt, MSBNB_ERR_INVALID_ARG, "NULL argument");
    char path[96], name[160];
    for (int l = 0; l < tr->m->cfg.n_layers; l++)
        for (int q = 0; q < MSBNB_PROJ_COUNT; q++) {
            train_lora *tl = &tr->lora[l * MSBNB_PROJ_COUNT + q];
            if (!tl->on) continue;
            msbnb__train_module_path(l, (msbnb_proj)q, path, sizeof path);
            snprintf(name, sizeof name, "%s.lora_A", path);
            TRY(msbnb_optim_add_param(opt, tl->v.A, tl->v.dA, (size_t)(tl->v.r * tl->v.in_features), name));
            snprintf(name, sizeof name, "%s.lora_B", path);
            TRY(msbnb_optim_add_param(opt, tl->v.B, tl->v.dB, (size_t)(tl->v.r * tl->v.out_features), name));
        }
    return MSBNB_OK;
}

uint64_t msbnb_trainer_step_count(const msbnb_trainer *tr) { return tr ? tr->step : 0; }
void msbnb_trainer_set_step_count(msbnb_trainer *tr, uint64_t steps) {
    if (tr) tr->step = steps;
}
size_t msbnb_trainer_memory_bytes(const msbnb_trainer *tr) { return tr ? tr->bytes : 0; }

msbnb_status msbnb_trainer_check_memory(const msbnb_trainer *tr) {
    RETURN_IF(!tr, MSBNB_ERR_INVALID_ARG, "NULL argument");
    /* the buffers are reserved, hence within any address-space limit already; what they still
     * need is the physical memory their first touch takes */
    const uint64_t avail = msbnb__memory_physical();
    RETURN_IF(avail && (uint64_t)tr->bytes > avail, MSBNB_ERR_OUT_OF_MEMORY,
              "the trainer's activations need %.1f MB but only %.1f MB are available (a smaller batch or "
              "seq_len, or recompute, lowers it)",
              (double)tr->bytes / 1e6, (double)avail / 1e6);
    return MSBNB_OK;
}

void msbnb_trainer_count_params(const msbnb_trainer *tr, int64_t *base, int64_t *trainable) {
    int64_t b = 0, t = 0;
    if (tr) {
        const msbnb_model_config *c = &tr->m->cfg;
        b = (int64_t)c->vocab_size * c->dim * (c->tied ? 1 : 2) + c->dim;
        for (int l = 0; l < c->n_layers; l++) {
            b += 2 * (int64_t)c->dim;
            for (int q = 0; q < MSBNB_PROJ_COUNT; q++) {
                msbnb_linear *lin = tr->m->layers[l].proj[q];
                b += msbnb_linear_in_features(lin) * msbnb_linear_out_features(lin);
                const train_lora *tl = &tr->lora[l * MSBNB_PROJ_COUNT + q];
                if (tl->on) t += tl->v.r * (tl->v.in_features + tl->v.out_features);
            }
        }
    }
    if (base) *base = b;
    if (trainable) *trainable = t;
}
