/*
 * forward.c — the LLaMA forward pass with a KV cache, one chunk of tokens at a time.
 *
 * For a chunk of n tokens at positions pos..pos+n-1 (all activations [n, features], row-major):
 *   x = tok_emb[tokens]                                               x  [n, dim]
 *   per layer:
 *     xb = rmsnorm(x) * attn_norm                                      xb [n, dim]
 *     q = xb·Wqᵀ (+bq), k = xb·Wkᵀ (+bk), v = xb·Wvᵀ (+bv)              q [n, q_dim], k, v [n, kv_dim]
 *     (qwen3: q, k = rmsnorm per head · q_norm, k_norm); RoPE on q, k
 *     cache[pos+t] = k[t], v[t]
 *     xb[t, head h] = Σ_{s ≤ pos+t, s > pos+t-W} softmax_s(q[t,h]·K[s,g]/√hd) V[s,g],  g = h / (n_heads/n_kv_heads)
 *     x += xb·Woᵀ
 *     xb = rmsnorm(x) * ffn_norm
 *     x += (silu(xb·Wgateᵀ) ⊙ xb·Wupᵀ)·Wdownᵀ
 *   logits = rmsnorm(x) * final_norm · Woutᵀ  (Wout = tok_emb when tied)
 * (W = sliding_window when set, else unbounded.) The semantics are llama2.c's run.c forward() and
 * transformers' LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM
 * (eager attention); the families differ only in the msbnb_model_config fields used above.
 */
#include <math.h>
#include <string.h>

#include <msbnb/kernels.h>

#include "model/llama_internal.h"

/* ================================================================ building blocks */

void msbnb__llama_rmsnorm(float *out, const float *x, const float *w, int64_t n, int dim, float eps) {
    for (int64_t r = 0; r < n; r++) {
        const float *xr = x + r * dim;
        float *o = out + r * dim;
        double ss = 0.0;
        for (int i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        const float inv = (float)(1.0 / sqrt(ss / dim + (double)eps));
        for (int i = 0; i < dim; i++) o[i] = w[i] * (inv * xr[i]);
    }
}

/* rotate_half RoPE of one head vector v [head_dim] at position p. */
static void rope_head(float *v, const float *cs, const float *sn, int half) {
    for (int i = 0; i < half; i++) {
        const float a = v[i], b = v[i + half];
        v[i] = a * cs[i] - b * sn[i];
        v[i + half] = b * cs[i] + a * sn[i];
    }
}

void msbnb__llama_rope(const msbnb_model *m, float *q, float *k, int64_t n, int pos0) {
    const int hd = m->cfg.head_dim, half = hd / 2, qd = msbnb__llama_q_dim(&m->cfg), kvd = msbnb__llama_kv_dim(&m->cfg);
    const float *cos_t = m->rope_cos + (size_t)pos0 * half, *sin_t = m->rope_sin + (size_t)pos0 * half;
    if (m->cfg.rope.type == MSBNB_ROPE_DYNAMIC && pos0 + n > m->cfg.seq_len && n <= m->batch_cap) {
        /* dynamic NTK past max_position_embeddings: the chunk's frequencies follow its last
         * position, as transformers recomputes them for the longest sequence seen */
        float scale;
        msbnb__rope_inv_freq(&m->cfg, pos0 + n, m->rope_dyn_freq, &scale);
        msbnb__rope_fill(m->rope_dyn_freq, scale, half, pos0, n, m->rope_dyn_cos, m->rope_dyn_sin);
        cos_t = m->rope_dyn_cos;
        sin_t = m->rope_dyn_sin;
    }
    for (int64_t t = 0; t < n; t++) {
        const float *cs = cos_t + (size_t)t * half, *sn = sin_t + (size_t)t * half;
        for (int h = 0; h < m->cfg.n_heads; h++) rope_head(q + t * qd + h * hd, cs, sn, half);
        for (int h = 0; h < m->cfg.n_kv_heads; h++) rope_head(k + t * kvd + h * hd, cs, sn, half);
    }
}

/* Causal attention of the chunk's queries against the cache of layer l (positions 0..pos+t).
 * q [n, q_dim] -> out [n, q_dim]. Each (token, head) writes its own slice of out and att, so the
 * result does not depend on the thread count. */
static void attention(msbnb_model *m, int l, const float *q, int64_t n, int pos, float *out) {
    const msbnb_model_config *c = &m->cfg;
    const int hd = c->head_dim, qd = msbnb__llama_q_dim(c), kvd = msbnb__llama_kv_dim(c);
    const int group = c->n_heads / c->n_kv_heads, T = m->ctx_len, window = msbnb__llama_window(c, l);
    /* kc: [n_kv_heads, head_dim, T] (keys transposed, so scores vectorize over positions);
     * vc: [T, kv_dim] */
    const float *kc = m->key_cache + (size_t)l * T * kvd, *vc = m->value_cache + (size_t)l * T * kvd;
    const float scale = (float)(1.0 / sqrt((double)hd));
    const int64_t jobs = n * c->n_heads;
    /* Threads only pay off with enough work: below ~64K multiply-adds a parallel region costs more
     * than it saves (decode of one token on a small model). Same results either way. */
    const int parallel = (int64_t)jobs * (pos + n) * hd >= 65536;
    /* keys per query: every earlier position, or the last sliding_window of them (mistral) */
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (parallel)
    for (int64_t job = 0; job < jobs; job++) {
        const int64_t t = job / c->n_heads;
        const int h = (int)(job % c->n_heads), g = h / group, last = pos + (int)t;
        /* keys first..last: all of them, or the last sliding_window positions */
        const int first = (window > 0 && last + 1 > window) ? last + 1 - window : 0;
        const float *qv = q + t * qd + (size_t)h * hd;
        float *att = m->att + (size_t)job * T;
        /* att[s] = (Σ_i q[i]·K[s, i]) · scale, the sum over i in order for each s */
        const float *kg = kc + (size_t)g * hd * T;
        int s0 = first;
        for (; s0 + 16 <= last + 1; s0 += 16) { /* 16 positions in registers across the i loop */
            float acc[16] = {0};
            for (int i = 0; i < hd; i++) {
                const float qi = qv[i], *kr = kg + (size_t)i * T + s0;
                for (int j = 0; j < 16; j++) acc[j] += qi * kr[j];
            }
            memcpy(att + s0, acc, sizeof acc);
        }
        for (int s = s0; s <= last; s++) {
            float dot = 0.0f;
            for (int i = 0; i < hd; i++) dot += qv[i] * kg[(size_t)i * T + s];
            att[s] = dot;
        }
        float mx = -INFINITY;
        for (int s = first; s <= last; s++) {
            att[s] *= scale;
            if (att[s] > mx) mx = att[s];
        }
        double sum = 0.0;
        for (int s = first; s <= last; s++) {
            att[s] = expf(att[s] - mx);
            sum += att[s];
        }
        const float inv = (float)(1.0 / sum);
        float *o = out + t * qd + (size_t)h * hd;
        const float *vg = vc + (size_t)g * hd;
        int i0 = 0;
        for (; i0 + 8 <= hd; i0 += 8) { /* 8 outputs in registers across the s loop */
            float acc[8] = {0};
            for (int s = first; s <= last; s++) {
                const float a = att[s] * inv, *vv = vg + (size_t)s * kvd + i0;
                for (int j = 0; j < 8; j++) acc[j] += a * vv[j];
            }
            memcpy(o + i0, acc, sizeof acc);
        }
        for (int i = i0; i < hd; i++) {
            float acc = 0.0f;
            for (int s = first; s <= last; s++) acc += (att[s] * inv) * vg[(size_t)s * kvd + i];
            o[i] = acc;
        }
    }
}

/* Decoder layer l over the chunk's residual stream m->x [n, dim] at positions pos..pos+n-1, in place.
 * m->tap (calibration, calibrate.c) sees the input of each group of projections. */
msbnb_status msbnb__llama_layer_forward(msbnb_model *m, int l, int n, int pos) {
    const msbnb_model_config *c = &m->cfg;
    const int dim = c->dim, kvd = msbnb__llama_kv_dim(c), hid = c->hidden_dim, T = m->ctx_len;
    msbnb_llama_layer *L = &m->layers[l];
    /* ---- attention */
    msbnb__llama_rmsnorm(m->xb, m->x, L->attn_norm, n, dim, c->norm_eps);
    if (m->tap) TRY(m->tap(m->tap_ctx, l, MSBNB__SITE_ATTN_IN, m->xb, n));
    TRY(msbnb_linear_forward(L->proj[MSBNB_PROJ_Q], m->xb, n, m->q));
    TRY(msbnb_linear_forward(L->proj[MSBNB_PROJ_K], m->xb, n, m->k));
    TRY(msbnb_linear_forward(L->proj[MSBNB_PROJ_V], m->xb, n, m->v));
    if (L->q_norm) { /* qwen3: RMSNorm over each head of q and k, before RoPE */
        msbnb__llama_rmsnorm(m->q, m->q, L->q_norm, (int64_t)n * c->n_heads, c->head_dim, c->norm_eps);
        msbnb__llama_rmsnorm(m->k, m->k, L->k_norm, (int64_t)n * c->n_kv_heads, c->head_dim, c->norm_eps);
    }
    msbnb__llama_rope(m, m->q, m->k, n, pos);
    float *kc = m->key_cache + (size_t)l * T * kvd; /* [kv_dim, T]: element j of position p at j*T + p */
    for (int t = 0; t < n; t++)
        for (int j = 0; j < kvd; j++) kc[(size_t)j * T + (size_t)(pos + t)] = m->k[(size_t)t * kvd + j];
    float *vc = m->value_cache + ((size_t)l * T + (size_t)pos) * kvd;
    memcpy(vc, m->v, sizeof(float) * (size_t)n * kvd);
    attention(m, l, m->q, n, pos, m->xb);
    if (m->tap) TRY(m->tap(m->tap_ctx, l, MSBNB__SITE_O_IN, m->xb, n));
    TRY(msbnb_linear_forward(L->proj[MSBNB_PROJ_O], m->xb, n, m->xb2));
    for (size_t i = 0; i < (size_t)n * dim; i++) m->x[i] += m->xb2[i];
    /* ---- SwiGLU MLP */
    msbnb__llama_rmsnorm(m->xb, m->x, L->ffn_norm, n, dim, c->norm_eps);
    if (m->tap) TRY(m->tap(m->tap_ctx, l, MSBNB__SITE_MLP_IN, m->xb, n));
    TRY(msbnb_linear_forward(L->proj[MSBNB_PROJ_GATE], m->xb, n, m->hb));
    TRY(msbnb_linear_forward(L->proj[MSBNB_PROJ_UP], m->xb, n, m->hb2));
    for (size_t i = 0; i < (size_t)n * hid; i++) {
        const float g = m->hb[i];
        m->hb[i] = g / (1.0f + expf(-g)) * m->hb2[i];
    }
    if (m->tap) TRY(m->tap(m->tap_ctx, l, MSBNB__SITE_DOWN_IN, m->hb, n));
    TRY(msbnb_linear_forward(L->proj[MSBNB_PROJ_DOWN], m->hb, n, m->xb2));
    for (size_t i = 0; i < (size_t)n * dim; i++) m->x[i] += m->xb2[i];
    return MSBNB_OK;
}

/* One chunk of n ≤ batch_cap tokens; logits rows: n (all) or only the last (last_only). */
static msbnb_status forward_chunk(msbnb_model *m, const int32_t *tokens, int n, int pos, float *logits,
                                  int last_only) {
    const msbnb_model_config *c = &m->cfg;
    const int dim = c->dim;
    msbnb__llama_embed(m, tokens, n, m->x);
    for (int l = 0; l < c->n_layers; l++) TRY(msbnb__llama_layer_forward(m, l, n, pos));
    if (!logits) return MSBNB_OK;
    const int r0 = last_only ? n - 1 : 0, rows = n - r0;
    msbnb__llama_rmsnorm(m->xb, m->x + (size_t)r0 * dim, m->final_norm, rows, dim, c->norm_eps);
    return msbnb__llama_logits(m, m->xb, rows, logits);
}

/* ================================================================ public entry */

msbnb_status msbnb_model_forward(msbnb_model *m, const int32_t *tokens, int n, int pos, float *logits,
                                 int all_logits) {
    RETURN_IF(!m || !tokens, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(n < 1, MSBNB_ERR_INVALID_ARG, "n = %d tokens", n);
    RETURN_IF(pos < 0 || pos > m->ctx_len - n, MSBNB_ERR_SHAPE, "positions %d..%d beyond the context of %d", pos,
              pos + n - 1, m->ctx_len);
    for (int t = 0; t < n; t++)
        RETURN_IF(tokens[t] < 0 || tokens[t] >= m->cfg.vocab_size, MSBNB_ERR_INVALID_ARG,
                  "token %d at index %d out of range 0..%d", tokens[t], t, m->cfg.vocab_size - 1);
    for (int done = 0; done < n;) {
        const int chunk = (n - done < m->batch_cap) ? n - done : m->batch_cap;
        const int last_chunk = done + chunk == n;
        float *dst = NULL;
        if (logits && all_logits) dst = logits + (size_t)done * m->cfg.vocab_size;
        else if (logits && last_chunk) dst = logits;
        TRY(forward_chunk(m, tokens + done, chunk, pos + done, dst, !all_logits));
        done += chunk;
    }
    return MSBNB_OK;
}
