/*
 * train_backward.c — backward of the whole LLaMA network to the LoRA parameters.
 *
 * Everything but the adapters is frozen, so the backward computes activation gradients only
 * (dX = dY·W for each base product, no dW): with the forward's 2·P·N flops that makes ≈ 4·P·N
 * per step rather than the 6·P·N of full training (P = base parameters, N = tokens). The adapters
 * add dA, dB (PEFT's LoraLayer, as nn.h documents):
 *     dB += s · dYᵀ · h          h = dropout(X)·Aᵀ  [N, r] saved by the forward
 *     g   = s · dY · B           [N, r]
 *     dA += gᵀ · dropout(X)      (mask regenerated from (seed, step, layer, proj))
 *     dX += (g · A) ∘ mask/(1-p)
 * Gradients accumulate into the nn layers' dA, dB buffers, in a fixed order: bit-identical for
 * every thread count.
 */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "model/backward_ops.h"
#include "model/train_internal.h"

/* dX[n, in] (+)= dY[n, out] · deq(W), reading the packed codes directly, in fixed blocks of
 * T_ROWS rows, one msbnb_matmul_t call per block on one OpenMP thread. Why not one call over all
 * rows: the kernel splits its work over in_features in 512-wide chunks, so a 768-wide projection
 * has two unequal chunks and two threads run at 2/3 of their speed (measured 300 against 410
 * GFLOP/s at n = 256); 128-row blocks keep the kernel near its one-thread speed (226 against 234
 * GFLOP/s) and spread evenly. The blocks do not depend on the thread count and each dX row
 * depends only on its dY row, so the bits do not either. */
#define T_ROWS 128

static msbnb_status base_product_t(const msbnb_qtensor *qt, const float *dY, int64_t n, int64_t out, int64_t in,
                                   float *dX, int accumulate, msbnb_precision prec) {
    int64_t blocks = (n + T_ROWS - 1) / T_ROWS, failed_block = -1;
    if (blocks == 1) return msbnb_matmul_t_ex(qt, dY, n, dX, accumulate, prec);
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t i0 = b * T_ROWS, m = n - i0 < T_ROWS ? n - i0 : T_ROWS;
        if (msbnb_matmul_t_ex(qt, dY + i0 * out, m, dX + i0 * in, accumulate, prec) != MSBNB_OK) {
#pragma omp critical(train_product_t)
            if (failed_block < 0 || b < failed_block) failed_block = b;
        }
    }
    if (failed_block < 0) return MSBNB_OK;
    /* the error message lives in the worker's thread-local slot: repeat the call here for it */
    int64_t i0 = failed_block * T_ROWS, m = n - i0 < T_ROWS ? n - i0 : T_ROWS;
    TRY(msbnb_matmul_t_ex(qt, dY + i0 * out, m, dX + i0 * in, accumulate, prec));
    return MSBNB_FAIL(MSBNB_ERR_INTERNAL, "transposed base product failed on rows %lld..", (long long)i0);
}

/* dA[r, in] += gᵀ · X  (g [n, r], X [n, in]); C has only r rows, so msbnb__sgemm_fixed splits
 * its columns. */
static void lora_grad_a(int r, int64_t in, int64_t n, const float *g, const float *X, float *dA) {
    msbnb__sgemm_fixed(1, 0, r, in, n, 1.0f, g, r, X, in, 1.0f, dA, in);
}

/* dX [N, in] (= or +=, per accumulate) from dY [N, out] through projection (l, q) whose forward
 * input was X [N, in] and LoRA hidden lora_h [N, r]. */
static msbnb_status proj_backward(msbnb_trainer *tr, int l, msbnb_proj q, const float *X, const float *lora_h,
                                  const float *dY, float *dX, int accumulate) {
    msbnb_linear *lin = tr->m->layers[l].proj[q];
    int64_t out = msbnb_linear_out_features(lin), in = msbnb_linear_in_features(lin);
    int N = (int)tr->N;
    const msbnb_qtensor *qt = msbnb_linear_qtensor(lin);
    if (qt) {
        TRY(base_product_t(qt, dY, tr->N, out, in, dX, accumulate,
                           tr->base_bf16 ? MSBNB_PRECISION_FAST : MSBNB_PRECISION_EXACT));
    } else {
        const float *W;
        TRY(msbnb__train_f32_weight(tr, lin, &W));
        /* dX[N, in] (+)= dY[N, out] · W[out, in] (msbnb's tiled AVX-512 kernels from N = 16 on, else
         * sgemm over fixed column chunks: thread-invariant either way, see kernels/dense.c) */
        TRY(msbnb_matmul_f32_t(W, out, in, dY, tr->N, dX, accumulate));
    }
    const train_lora *tl = &tr->lora[l * MSBNB_PROJ_COUNT + q];
    if (!tl->on) return MSBNB_OK;
    int r = tl->v.r;
    float s = tl->v.scaling;
    /* dB[out, r] += s · dYᵀ · h */
    msbnb__sgemm_fixed(1, 0, (int)out, r, N, s, dY, (int)out, lora_h, r, 1.0f, tl->v.dB,
                r);
    /* g[N, r] = s · dY · B */
    msbnb__sgemm_fixed(0, 0, N, r, (int)out, s, dY, (int)out, tl->v.B, r, 0.0f, tr->lg,
                r);
    if (!tr->training || tl->v.lora_dropout <= 0.0f) {
        /* dA[r, in] += gᵀ · X;  dX += g · A */
        lora_grad_a(r, in, tr->N, tr->lg, X, tl->v.dA);
        msbnb__sgemm_fixed(0, 0, N, (int)in, r, 1.0f, tr->lg, r, tl->v.A, (int)in, 1.0f,
                    dX, (int)in);
        return MSBNB_OK;
    }
    /* with dropout: xdrop = mask/(1-p) regenerated once; tmp = X ∘ xdrop = dropout(X);
     * dA += gᵀ · tmp; then tmp = g · A and dX += tmp ∘ xdrop */
    int64_t n = tr->N * in;
    msbnb__train_dropout(tr, l, q, NULL, in, tr->xdrop);
    float *tmp = tr->tmp;
    const float *mask = tr->xdrop;
#pragma omp parallel for if(n >= msbnb__parallel_min) num_threads(msbnb__threads()) schedule(static)
    for (int64_t i = 0; i < n; i++) tmp[i] = X[i] * mask[i];
    lora_grad_a(r, in, tr->N, tr->lg, tmp, tl->v.dA);
    msbnb__sgemm_fixed(0, 0, N, (int)in, r, 1.0f, tr->lg, r, tl->v.A, (int)in, 0.0f,
                tr->tmp, (int)in);
#pragma omp parallel for if(n >= msbnb__parallel_min) num_threads(msbnb__threads()) schedule(static)
    for (int64_t i = 0; i < n; i++) dX[i] += tmp[i] * mask[i];
    return MSBNB_OK;
}

/* tr->dx holds ∂L/∂x_out of layer l; on return it holds ∂L/∂x_in. */
static msbnb_status layer_backward(msbnb_trainer *tr, int l, const float *x_in, const train_acts *a) {
    const msbnb_model *m = tr->m;
    const msbnb_model_config *c = &m->cfg;
    int64_t N = tr->N, D = tr->D;
    /* ---- MLP: x_out = x_mid + down(silu(gate(xn2)) ∘ up(xn2)) */
    TRY(proj_backward(tr, l, MSBNB_PROJ_DOWN, a->h, a->lora_h[MSBNB_PROJ_DOWN], tr->dx, tr->dh, 0));
    msbnb__swiglu_bwd(tr->dh, a->g, a->u, N * tr->HID, tr->dg, tr->du);
    TRY(proj_backward(tr, l, MSBNB_PROJ_GATE, a->xn2, a->lora_h[MSBNB_PROJ_GATE], tr->dg, tr->dxn, 0));
    TRY(proj_backward(tr, l, MSBNB_PROJ_UP, a->xn2, a->lora_h[MSBNB_PROJ_UP], tr->du, tr->dxn, 1));
    msbnb__rmsnorm_bwd(tr->dxn, a->xmid, m->layers[l].ffn_norm, a->rstd2, N, D, tr->dx); /* dx = ∂L/∂x_mid */
    /* ---- attention: x_mid = x_in + o(attn(rope(q(xn1)), rope(k(xn1)), v(xn1))) */
    TRY(proj_backward(tr, l, MSBNB_PROJ_O, a->att, a->lora_h[MSBNB_PROJ_O], tr->dx, tr->datt, 0));
    msbnb__attention_bwd(tr->datt, a->q, a->k, a->v, a->probs, tr->B, tr->T, c->n_heads, c->n_kv_heads, c->head_dim,
                         tr->dq, tr->dk, tr->dv, tr->attn_scratch, tr->attn_slots);
    msbnb__rope_apply(tr->dq, tr->B, tr->T, c->n_heads, c->head_dim, tr->cos_sin, 0, 1);
    msbnb__rope_apply(tr->dk, tr->B, tr->T, c->n_kv_heads, c->head_dim, tr->cos_sin, 0, 1);
    const float *dq = tr->dq, *dk = tr->dk;
    const msbnb_llama_layer *Ly = &m->layers[l];
    if (Ly->q_norm) { /* qwen3: back through the per-head norms (weights frozen) */
        memset(tr->dqraw, 0, sizeof(float) * (size_t)(N * tr->QD));
        memset(tr->dkraw, 0, sizeof(float) * (size_t)(N * tr->KVD));
        msbnb__rmsnorm_bwd(tr->dq, a->qraw, Ly->q_norm, a->rstdq, N * c->n_heads, c->head_dim, tr->dqraw);
        msbnb__rmsnorm_bwd(tr->dk, a->kraw, Ly->k_norm, a->rstdk, N * c->n_kv_heads, c->head_dim, tr->dkraw);
        dq = tr->dqraw;
        dk = tr->dkraw;
    }
    TRY(proj_backward(tr, l, MSBNB_PROJ_Q, a->xn1, a->lora_h[MSBNB_PROJ_Q], dq, tr->dxn, 0));
    TRY(proj_backward(tr, l, MSBNB_PROJ_K, a->xn1, a->lora_h[MSBNB_PROJ_K], dk, tr->dxn, 1));
    TRY(proj_backward(tr, l, MSBNB_PROJ_V, a->xn1, a->lora_h[MSBNB_PROJ_V], tr->dv, tr->dxn, 1));
    msbnb__rmsnorm_bwd(tr->dxn, x_in, m->layers[l].attn_norm, a->rstd1, N, D, tr->dx); /* dx = ∂L/∂x_in */
    return MSBNB_OK;
}

msbnb_status msbnb__train_backward(msbnb_trainer *tr) {
    const msbnb_model *m = tr->m;
    int L = m->cfg.n_layers;
    int64_t N = tr->N, D = tr->D;
    /* logits = xf · Woutᵀ  ->  dxf[N, D] = dlogits[N, V] · Wout[V, D] (into dxn). msbnb_matmul_f32_t
     * runs the 4-bit products' AVX-512 micro-kernels on fp32 tiles of Wout: measured ~350–380 against
     * ~170 GFLOP/s (column-chunked) to ~235 (row blocks) for OpenBLAS's AVX2 sgemm on the 32000×768
     * matrix at N = 256, two cores. */
    const float *Wout = tr->out_w ? tr->out_w : m->tok_emb;
    msbnb_status st = MSBNB_ERR_UNSUPPORTED; /* bf16 training: as the forward (train_forward.c) */
    if (tr->base_bf16 && msbnb__dense_bf16_pick(N)) st = msbnb__matmul_f32_t_bf16(Wout, tr->V, D, tr->dlogits, N, tr->dxn, 0);
    if (st == MSBNB_ERR_UNSUPPORTED) st = msbnb_matmul_f32_t(Wout, tr->V, D, tr->dlogits, N, tr->dxn, 0);
    TRY(st);
    memset(tr->dx, 0, sizeof(float) * (size_t)(N * D));
    msbnb__rmsnorm_bwd(tr->dxn, tr->xs + (int64_t)L * N * D, m->final_norm, tr->rstdf, N, D, tr->dx);
    for (int l = L - 1; l >= 0; l--) {
        const float *x_in = tr->xs + (int64_t)l * N * D;
        train_acts *a = &tr->acts[tr->p.recompute ? 0 : l];
        /* recompute: rebuild layer l's activations from its saved input (same dropout masks: the
         * step counter has not moved). The output lands on the next boundary, which already
         * holds exactly these values and is no longer read. */
        if (tr->p.recompute)
            TRY(msbnb__train_layer_forward(tr, l, x_in, a, tr->xs + (int64_t)(l + 1) * N * D));
        TRY(layer_backward(tr, l, x_in, a));
    }
    /* the embedding is frozen: the gradient stops here */
    return MSBNB_OK;
}
