/*
 * llama_internal.h — the LLaMA model struct, shared by inference (forward.c, load_*.c, perplexity.c)
 * and training (the backward pass and the LoRA training loop). Never installed.
 *
 * Conventions of the in-memory model:
 *  - Every projection is in HF layout: weight [out_features, in_features], q/k rows ordered for the
 *    rotate_half RoPE (pair i with i + head_dim/2 inside each head). llama2.c checkpoints are permuted
 *    at load (load_llama2c.c), so HF adapters (PEFT lora_B rows) apply without change.
 *  - Activations are row-major [tokens, features]; the KV cache stores, per layer, V as rows of
 *    kv_dim = n_kv_heads*head_dim floats per position and K transposed ([kv_dim, ctx_len]).
 */
#ifndef MSBNB_MODEL_LLAMA_INTERNAL_H
#define MSBNB_MODEL_LLAMA_INTERNAL_H

#include <msbnb/io.h>
#include <msbnb/model.h>
#include <msbnb/nn.h>

#include "core/internal.h"

/* One decoder layer. Norm weights are owned by the model (freed with it); proj[] are nn.h layers
 * owned by the model (msbnb_linear_free at model free). */
typedef struct msbnb_llama_layer {
    float *attn_norm;                      /* [dim] RMSNorm before attention (input_layernorm)       */
    float *ffn_norm;                       /* [dim] RMSNorm before the MLP (post_attention_layernorm) */
    float *q_norm;                         /* [head_dim] per-head RMSNorm of q (qwen3), else NULL      */
    float *k_norm;                         /* [head_dim] per-head RMSNorm of k (qwen3), else NULL      */
    msbnb_linear *proj[MSBNB_PROJ_COUNT];  /* indexed by msbnb_proj: q,k,v,o,gate,up,down           */
} msbnb_llama_layer;

struct msbnb_model {
    msbnb_model_config cfg;   /* head_dim always filled in; n_kv_heads divides n_heads          */
    msbnb_model_params params;/* as given at load (after defaults)                             */
    msbnb_dtype src_dtype;    /* dtype of the checkpoint's embedding (F32 for llama2.c files)    */
    char *src_config;         /* config.json text of an HF checkpoint (owned), else NULL         */
    float stored_int8_threshold; /* an INT8 checkpoint's llm_int8_threshold, else 0              */

    /* ---- weights */
    float *tok_emb;           /* [vocab, dim] fp32 token embedding (model.embed_tokens.weight), */
                              /* or NULL when tok_emb16 holds it (embed.c)                      */
    uint16_t *tok_emb16;      /* [vocab, dim] the embedding as a bf16/f16 checkpoint stores it   */
    msbnb_dtype emb_dtype;    /* dtype of tok_emb16 (F32 when tok_emb is used)                   */
    uint16_t *head16;         /* [vocab, dim] untied lm_head as a bf16/f16 checkpoint stores it, */
                              /* else NULL (then output, or the embedding when tied)             */
    msbnb_dtype head_dtype;   /* dtype of head16                                                 */
    float *head_scratch;      /* [head_slots, 64, dim] tiles of a 16-bit head converted to fp32  */
    int head_slots;
    msbnb_llama_layer *layers;/* [n_layers]                                                    */
    float *final_norm;        /* [dim] (model.norm.weight)                                     */
    msbnb_linear *output;     /* [vocab, dim] fp32 untied lm_head, or the quantized head of     */
                              /* params.head_quant (tied too); else NULL: logits from head16 or */
                              /* the embedding (msbnb__llama_logits)                            */

    /* ---- RoPE (rope.c): angle pos * inv_freq[i] in fp32 as transformers computes it; cos/sin
     * times rope_scale (yarn's attention factor, else 1). Dynamic NTK: the tables hold the
     * frequencies of sequences up to seq_len; a chunk reaching past it uses rope_dyn_* instead. */
    int rope_len;             /* positions in the tables (= ctx_len)                            */
    float *inv_freq;          /* [head_dim/2] frequencies for sequences of <= seq_len positions  */
    float rope_scale;         /* cos/sin multiplier                                             */
    float *rope_cos;          /* [rope_len, head_dim/2]                                         */
    float *rope_sin;          /* [rope_len, head_dim/2]                                         */
    float *rope_dyn_cos;      /* [batch_cap, head_dim/2] dynamic NTK scratch, else NULL          */
    float *rope_dyn_sin;      /* [batch_cap, head_dim/2]                                        */
    float *rope_dyn_freq;     /* [head_dim/2]                                                   */

    /* ---- inference state (forward.c): one sequence at a time */
    int ctx_len;              /* positions the cache holds: min(seq_len, params.max_seq_len)  */
    int batch_cap;            /* rows of the scratch buffers (params.max_batch)                */
    float *key_cache;         /* [n_layers, kv_dim, ctx_len] (transposed: scores vectorize)    */
    float *value_cache;       /* [n_layers, ctx_len, kv_dim]                                   */
    float *x;                 /* [batch_cap, dim] residual stream                              */
    float *xb;                /* [batch_cap, max(dim, q_dim)] normed input / attention output  */
    float *xb2;               /* [batch_cap, dim] projection output                            */
    float *q;                 /* [batch_cap, q_dim] queries (q_dim = n_heads*head_dim)          */
    float *k;                 /* [batch_cap, kv_dim]                                           */
    float *v;                 /* [batch_cap, kv_dim]                                           */
    float *att;               /* [batch_cap, n_heads, ctx_len] attention scores                */
    float *hb;                /* [batch_cap, hidden_dim] gate, then silu(gate)*up              */
    float *hb2;               /* [batch_cap, hidden_dim] up                                    */
    float *logits;            /* [batch_cap, vocab]                                            */

    /* ---- calibration tap (calibrate.c; NULL otherwise): called by the layer forward with the
     * input x [n, cols] of each group of projections (site: msbnb__site); an error stops it */
    msbnb_status (*tap)(void *ctx, int layer, int site, const float *x, int64_t n);
    void *tap_ctx;
};

/* Inputs of a decoder layer's projections: q/k/v [dim], o [q_dim], gate/up [dim], down [hidden]. */
enum msbnb__site { MSBNB__SITE_ATTN_IN = 0, MSBNB__SITE_O_IN = 1, MSBNB__SITE_MLP_IN = 2, MSBNB__SITE_DOWN_IN = 3 };
#define MSBNB__SITE_COUNT 4

/* ---------------------------------------------------------------- shared helpers (model area) */

/* Derived sizes. */
static inline int msbnb__llama_q_dim(const msbnb_model_config *c) { return c->n_heads * c->head_dim; }
static inline int msbnb__llama_kv_dim(const msbnb_model_config *c) { return c->n_kv_heads * c->head_dim; }
/* Sliding window of layer l (0 = full attention). */
static inline int msbnb__llama_window(const msbnb_model_config *c, int l) {
    return l >= c->window_from_layer ? c->sliding_window : 0;
}
/* in/out features of projection p. */
void msbnb__llama_proj_shape(const msbnb_model_config *c, msbnb_proj p, int64_t *out_features,
                             int64_t *in_features);

/* Validate a config (positive sizes, head_dim even, n_kv_heads | n_heads, finite eps/theta,
 * sizes below sane limits) and fill head_dim when 0. FORMAT with a message on failure. */
msbnb_status msbnb__llama_config_check(msbnb_model_config *c);

/* Allocate an empty model for cfg (weights zeroed, projections NULL), the RoPE tables and the
 * inference state. The loaders then fill the weights. */
msbnb_status msbnb__llama_alloc(const msbnb_model_config *cfg, const msbnb_model_params *params,
                                msbnb_model **out);

/* Build projection p of layer l from fp32 weights w [out, in] according to m->params
 * (quantized or fp32); w is borrowed. */
msbnb_status msbnb__llama_set_proj_f32(msbnb_model *m, int l, msbnb_proj p, const float *w);
/* Same with a bias [out] (copied) or NULL. */
msbnb_status msbnb__llama_set_proj(msbnb_model *m, int l, msbnb_proj p, const float *w, const float *bias);

/* Parse an HF config.json text (len bytes) into cfg (seq_len from max_position_embeddings). */
msbnb_status msbnb__llama_config_from_json(const char *json, size_t len, msbnb_model_config *cfg);

/* Loaders (load_llama2c.c, load_hf.c). */
msbnb_status msbnb__llama_load_llama2c(const char *path, const msbnb_model_params *params, msbnb_model **out);
msbnb_status msbnb__llama_load_hf(const char *dir, const msbnb_model_params *params, msbnb_model **out);

/* RoPE (rope.c). inv_freq [head_dim/2] and the cos/sin multiplier for a sequence of seq_len
 * positions (seq_len matters only to dynamic NTK). */
void msbnb__rope_inv_freq(const msbnb_model_config *c, int64_t seq_len, float *inv_freq, float *scale);
/* cos/sin [n, half] of positions pos0..pos0+n-1 (transformers' fp32 angle, then cos in double). */
void msbnb__rope_fill(const float *inv_freq, float scale, int half, int64_t pos0, int64_t n, float *cos_t,
                      float *sin_t);
/* Parse the RoPE fields of a config.json into c->rope_theta and c->rope (UNSUPPORTED for a type
 * msbnb does not implement, naming it and the supported ones). */
msbnb_status msbnb__rope_from_json(const msbnb_config *j, msbnb_model_config *c);

/* Embedding and output layer in the checkpoint's dtype (embed.c). */
/* x [n, dim] = rows tokens[] of the embedding (ids checked by the caller). */
void msbnb__llama_embed(const msbnb_model *m, const int32_t *tokens, int64_t n, float *x);
/* fp32 copies [vocab, dim] of the embedding / of the output layer's weight (tied: the embedding). */
msbnb_status msbnb__llama_embedding_f32(const msbnb_model *m, float *dst);
msbnb_status msbnb__llama_head_f32(const msbnb_model *m, float *dst);
/* logits [rows, vocab] = x [rows, dim] · Woutᵀ, whatever Wout's storage. */
msbnb_status msbnb__llama_logits(msbnb_model *m, const float *x, int64_t rows, float *logits);
size_t msbnb__llama_head_scratch_floats(const msbnb_model_config *c, int slots);
/* After the weights are loaded: quantize the head (params.head_quant) or make the 16-bit head's
 * scratch. Every loader calls it last. */
msbnb_status msbnb__llama_finish_head(msbnb_model *m);

/* RMSNorm of n rows: out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, rows of dim (out may equal x). */
void msbnb__llama_rmsnorm(float *out, const float *x, const float *w, int64_t n, int dim, float eps);
/* Decoder layer l over m->x [n, dim] (positions pos..), in place; uses layer l's KV cache. */
msbnb_status msbnb__llama_layer_forward(msbnb_model *m, int l, int n, int pos);
/* Read a plain (F32/F16/BF16) tensor of exactly [d0] (ndim 1) or [d0, d1] into dst (load_hf.c). */
msbnb_status msbnb__llama_read_plain(const msbnb_checkpoint *ck, const char *name, int ndim, int64_t d0, int64_t d1,
                                     float *dst);
/* The model config of an HF checkpoint (config.json; tie_word_embeddings inferred as transformers does). */
msbnb_status msbnb__llama_config_from_checkpoint(const msbnb_checkpoint *ck, const char *path, msbnb_model_config *cfg);
/* Rotate q [n, n_heads*head_dim] and k [n, n_kv_heads*head_dim] in place for positions pos0.. */
void msbnb__llama_rope(const msbnb_model *m, float *q, float *k, int64_t n, int pos0);

#endif /* MSBNB_MODEL_LLAMA_INTERNAL_H */
