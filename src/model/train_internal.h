/*
 * train_internal.h — the trainer's state, shared by train_forward.c, train_backward.c and
 * lora_model.c. Never installed.
 *
 * Shapes: N = B·T rows (row n = b·T + t), D = dim, QD = n_heads·head_dim, KVD = n_kv_heads·head_dim,
 * HID = hidden_dim, V = vocab, R = largest LoRA rank in use.
 */
#ifndef MSBNB_MODEL_TRAIN_INTERNAL_H
#define MSBNB_MODEL_TRAIN_INTERNAL_H

#include "kernels/kernels_internal.h"
#include <msbnb/train.h>

#include "model/llama_internal.h"

/* Activations of one decoder layer kept from the forward for the backward. */
typedef struct train_acts {
    float *xn1;   /* [N, D]    rmsnorm(x_in) · attn_norm                         */
    float *rstd1; /* [N]                                                        */
    float *qraw;  /* [N, QD]   q_proj output before the per-head norm (qk_norm), else NULL */
    float *kraw;  /* [N, KVD]  k_proj output before the per-head norm (qk_norm), else NULL */
    float *rstdq; /* [N·H]     per-head 1/rms of qraw (qk_norm)                  */
    float *rstdk; /* [N·KVH]   per-head 1/rms of kraw (qk_norm)                  */
    float *q;     /* [N, QD]   queries after RoPE                               */
    float *k;     /* [N, KVD]  keys after RoPE                                  */
    float *v;     /* [N, KVD]                                                   */
    float *probs; /* [B, H, T, T] attention probabilities                       */
    float *att;   /* [N, QD]   attention output (o_proj input)                  */
    float *xmid;  /* [N, D]    residual after attention                         */
    float *xn2;   /* [N, D]    rmsnorm(xmid) · ffn_norm                          */
    float *rstd2; /* [N]                                                        */
    float *g;     /* [N, HID]  gate_proj output                                 */
    float *u;     /* [N, HID]  up_proj output                                   */
    float *h;     /* [N, HID]  silu(g) · u (down_proj input)                     */
    float *lora_h[MSBNB_PROJ_COUNT]; /* [N, r] dropout(X)·Aᵀ of each adapted projection, or NULL */
} train_acts;

/* An adapted projection: the active adapter's tensors (borrowed from the nn layer). */
typedef struct train_lora {
    int on;            /* 1 when the projection has an active, unmerged adapter */
    msbnb_lora_view v; /* A [r, in], B [out, r], dA, dB, scaling, dropout      */
} train_lora;

struct msbnb_trainer {
    msbnb_model *m;
    msbnb_train_params p;
    int64_t B, T, N;
    int64_t D, QD, KVD, HID, V, R;
    uint64_t step;            /* dropout step counter                                    */
    int training;             /* dropout on for the forward in progress                  */
    int base_bf16;            /* quantized bases' products in bf16 numerics (p.compute == BF16) */

    train_lora *lora;         /* [n_layers * MSBNB_PROJ_COUNT]                            */
    train_acts *acts;         /* [n_acts]: n_layers, or 1 when recomputing               */
    int n_acts;
    float *xs;                /* [n_layers + 1, N, D] residual stream at layer boundaries */
    float *xf;                /* [N, D] final rmsnorm output                             */
    float *rstdf;             /* [N]                                                     */
    float *logits;            /* [N, V]                                                  */
    float *dlogits;           /* [N, V]                                                  */
    double *row_loss;         /* [N]                                                     */
    float *out_w;             /* [V, D] fp32 copy of the output layer unless it is the fp32 */
                              /* embedding (tied), else NULL                               */
    int32_t *inputs;          /* [N]                                                     */
    int32_t *targets;         /* [N]                                                     */
    float *cos_sin;           /* [T, head_dim/2, 2] RoPE table from the model's tables    */

    /* scratch */
    float *wbuf;              /* [max out·in] fp32 copy of a base weight that is neither a
                                 qtensor nor fp32 (none for the current layer kinds), or NULL */
    float *xdrop;             /* [N, max(D, QD, HID)] dropout(X) of a LoRA input          */
    float *lg;                /* [N, R] LoRA g = scaling·dY·B                              */
    float *tmp;               /* [N, max(D, QD, HID)]                                     */
    float *dx;                /* [N, D] gradient of the residual stream                  */
    float *dxn;               /* [N, D] gradient of a norm output                         */
    float *datt;              /* [N, QD]                                                  */
    float *dq, *dk, *dv;      /* [N, QD], [N, KVD], [N, KVD]                              */
    float *dqraw, *dkraw;     /* [N, QD], [N, KVD] gradients before the q/k norms (qk_norm) */
    float *dg, *du, *dh;      /* [N, HID] each                                            */
    float *attn_scratch;      /* [attn_slots · T · T]                                     */
    int attn_slots;           /* threads the attention backward may use (count at create) */
    size_t bytes;             /* everything above                                         */
};

/* "model.layers.<layer>.self_attn.q_proj" / "...mlp.down_proj" into buf. */
void msbnb__train_module_path(int layer, msbnb_proj p, char *buf, size_t cap);

/* train_forward.c: the forward over tr->inputs; training != 0 turns LoRA dropout on.
 * Leaves logits in tr->logits and every layer's activations in tr->acts (all layers, or none
 * beyond the boundaries xs when recomputing). */
msbnb_status msbnb__train_forward(msbnb_trainer *tr, int training);
/* One layer: x_in [N, D] -> x_out [N, D], saving activations in a. */
msbnb_status msbnb__train_layer_forward(msbnb_trainer *tr, int l, const float *x_in, train_acts *a, float *x_out);
/* Base + LoRA product of projection q of layer l: Y [N, out] = X [N, in] · Wᵀ + s·dropout(X)·Aᵀ·Bᵀ;
 * lora_h [N, r] receives dropout(X)·Aᵀ when the projection is adapted (may be NULL otherwise). */
msbnb_status msbnb__train_proj_forward(msbnb_trainer *tr, int l, msbnb_proj q, const float *X, float *Y,
                                       float *lora_h);
/* W [out, in] of a projection without a qtensor: its fp32 weight (borrowed) or a copy in wbuf. */
msbnb_status msbnb__train_f32_weight(msbnb_trainer *tr, msbnb_linear *lin, const float **W);
/* The dropout mask of the LoRA input of (l, q) at the current step applied to X [N, in] into
 * out [N, in] (kept elements scaled by 1/(1-p)); a plain copy when dropout is off. X NULL: a
 * matrix of ones, i.e. out = mask / (1-p). */
void msbnb__train_dropout(const msbnb_trainer *tr, int l, msbnb_proj q, const float *X, int64_t in, float *out);

/* train_backward.c: backward from tr->dlogits to every adapter's dA, dB (accumulated). */
msbnb_status msbnb__train_backward(msbnb_trainer *tr);

/* train_compute.c: resolve AUTO in *c (FP32 or BF16). */
msbnb_status msbnb__train_compute_resolve(msbnb_compute *c);

#endif /* MSBNB_MODEL_TRAIN_INTERNAL_H */
