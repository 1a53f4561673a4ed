/*
 * nn_internal.h — the layout of msbnb_linear and its LoRA adapters, shared by the files of src/nn.
 */
#ifndef MSBNB_NN_INTERNAL_H
#define MSBNB_NN_INTERNAL_H

#include <msbnb/nn.h>

#include "core/internal.h"

#define MSBNB_LORA_NAME_MAX 64

/* One LoRA adapter (PEFT layout). */
typedef struct lora_adapter {
    char name[MSBNB_LORA_NAME_MAX];
    int r;
    float alpha, dropout, scaling;
    int use_rslora;
    uint64_t seed;
    float *A, *dA;            /* [r, in]  */
    float *B, *dB;            /* [out, r] */
    uint64_t dropout_calls;   /* training forwards so far; the mask of call k uses k (see nn.h) */
} lora_adapter;

struct msbnb_linear {
    msbnb_linear_kind kind;
    int64_t in, out;

    /* Base weight: exactly one of w / q is non-NULL. */
    float *w;                 /* [out, in] fp32 (F32, INT8 in training mode)              */
    float *dw;                /* [out, in] gradient, allocated while the base is trainable */
    msbnb_qtensor *q;         /* quantized weight, rows = out, cols = in                   */
    float *bias;              /* [out] or NULL                                             */
    float *dbias;             /* [out] gradient, with dw                                   */
    msbnb_quant_config qcfg;  /* INT8: the format quantize_weights will use                */

    int frozen;               /* base weight and bias not trainable                        */
    int training;             /* LoRA dropout on                                           */
    msbnb_precision precision;

    lora_adapter *adapters;   /* [n_adapters]                                              */
    int n_adapters;
    int active;               /* index into adapters, or -1                                */
    int merged;               /* index of the adapter folded into the base, or -1          */
    float *backup_w;          /* pre-merge fp32 base [out, in] (when w)                    */
    msbnb_qtensor *backup_q;  /* pre-merge quantized base (when q)                         */
};

/* Allocate an empty layer shell (no weights) of the given kind and shape; checks the shape. */
msbnb_status msbnb__linear_alloc(msbnb_linear_kind kind, int64_t in, int64_t out, msbnb_linear **out_l);
/* A layer holding fp32 weights: copied from w [out, in] / bias [out] (bias NULL = none), or, when w
 * is NULL, initialised like nn.Linear from seed with a bias when has_bias. kind F32 or INT8
 * (training mode). */
msbnb_status msbnb__linear_create_f32_kind(msbnb_linear_kind kind, const float *w, const float *bias, int has_bias,
                                           int64_t in, int64_t out, uint64_t seed, msbnb_linear **out_l);
/* Copy bias [out] into l (allocates l->bias); bias NULL = no bias. */
msbnb_status msbnb__linear_set_bias(msbnb_linear *l, const float *bias);
/* Fill w [out, in] and, when non-NULL, bias [out] with torch.nn.Linear's U(-1/√in, 1/√in). */
void msbnb__linear_init_uniform(float *w, float *bias, int64_t in, int64_t out, uint64_t seed);
/* Deterministic generator for initialisation and dropout (splitmix64). */
uint64_t msbnb__splitmix64(uint64_t *state);
double msbnb__rand_uniform(uint64_t *state); /* [0, 1), 53 bits */

/* Quantization config that reproduces the format of q (for merge re-quantization). */
msbnb_quant_config msbnb__config_of_qtensor(const msbnb_qtensor *q);

/* Products on the shared deterministic GEMM (nn_gemm.c → msbnb__sgemm_fixed), bit-identical for
 * every thread count. accumulate != 0 adds into y (BLAS beta = 1) instead of overwriting it.
 *   nt: y[i, m] (+)= alpha · Σ_k x[i, k] w[m, k]     x [n, kd], w [md, kd], y [n, md]
 *   nn: y[i, :] (+)= Σ_k alpha · g[i, k] · a[k, :]    g [n, kd], a [kd, md], y [n, md]
 *   tn: y[o, :] (+)= Σ_i alpha · d[i, o] · x[i, :]    d [n, od], x [n, md], y [od, md] */
void msbnb__nn_gemm_nt(const float *x, const float *w, int64_t n, int64_t kd, int64_t md, float alpha,
                       int accumulate, float *y);
void msbnb__nn_gemm_nn(const float *g, const float *a, int64_t n, int64_t kd, int64_t md, float alpha,
                       int accumulate, float *y);
void msbnb__nn_gemm_tn(const float *d, const float *x, int64_t n, int64_t od, int64_t md, float alpha,
                       int accumulate, float *y);

/* LoRA parts of forward / backward (lora.c). X: [n, in]; Y, dY: [n, out]; dX: [n, in]. */
msbnb_status msbnb__lora_forward(msbnb_linear *l, const float *X, int64_t n, float *Y);
msbnb_status msbnb__lora_backward(msbnb_linear *l, const float *X, const float *dY, int64_t n, float *dX);
void msbnb__lora_free_all(msbnb_linear *l);
/* Tests: keep mask [n, in] of the active adapter's most recent training forward (1 = kept). */
msbnb_status msbnb__lora_dropout_mask(const msbnb_linear *l, int64_t n, uint8_t *mask);

#endif /* MSBNB_NN_INTERNAL_H */
