/*
 * nn.h — linear layers over fp32, INT8 and 4-bit weights, with forward and backward passes, and
 * LoRA / QLoRA adapters on top of any of them.
 *
 * Usage (QLoRA: an NF4 base with double quantization, one trainable r=16 adapter):
 *
 *     #include <msbnb/nn.h>
 *
 *     msbnb_linear *dense = NULL, *layer = NULL;
 *     msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
 *     cfg.double_quant = 1;
 *     msbnb_linear_create(in, out, 0, 42, &dense);              // fp32, nn.Linear init
 *     msbnb_linear4bit_from_linear(dense, &cfg, &layer);         // NF4 copy of it
 *     msbnb_linear_free(dense);
 *
 *     msbnb_lora_params lp = msbnb_lora_params_default();        // r 8, alpha 16, dropout 0
 *     lp.r = 16; lp.lora_alpha = 32;
 *     msbnb_lora_add(layer, "default", &lp);                     // becomes the active adapter
 *     msbnb_linear_set_training(layer, 1);                       // LoRA dropout on
 *
 *     msbnb_linear_forward(layer, X, n, Y);                      // Y[n,out] = base(X) + lora(X)
 *     ... dY = dLoss/dY ...
 *     msbnb_linear_zero_grad(layer);
 *     msbnb_linear_backward(layer, X, dY, n, dX);                // dX[n,in]; accumulates dA, dB
 *     // hand msbnb_linear_trainable_params() to an optimizer (optim.h)
 *     msbnb_linear_free(layer);
 *
 * Layer kinds (one handle type, msbnb_linear, for all):
 *  MSBNB_LINEAR_F32   fp32 weight [out, in] (+ bias [out]); trainable unless frozen. The seed's
 *                     nn.Linear stand-in. Initialised like torch.nn.Linear: W, b ~ U(-1/√in, 1/√in).
 *  MSBNB_LINEAR_INT8  the seed's Linear8bit. Two modes: training mode (has_fp16_weights = 1) keeps
 *                     fp32 weights and behaves like an F32 layer (forward in fp32, dW computed);
 *                     msbnb_linear_quantize_weights() switches ONCE to inference mode, which holds
 *                     INT8 codes + scales (symmetric or asymmetric, per output channel or per
 *                     tensor) and runs the LLM.int8() product with the outlier threshold (default
 *                     6.0; 0 = pure int8) when the format allows it (symmetric, per row), else the
 *                     exact fused product. The weights are then frozen.
 *  MSBNB_LINEAR_4BIT  INT4 (per group along in_features), NF4 or FP4, with or without double
 *                     quantization; always frozen (train it through LoRA adapters).
 *
 * Forward: Y[n, out] = X[n, in] · Wᵀ + b, through the fused products of kernels.h (no dequantized
 * copy of W), plus the active LoRA adapter's term when one is active and not merged.
 * Backward: dX = dY · W (for quantized bases W = deq(W): the straight-through gradient, exact since
 * the forward is linear in X for fixed codes), plus the adapter's part; gradients of trainable
 * parameters are ACCUMULATED into the layer's gradient buffers (zero them with
 * msbnb_linear_zero_grad):  dW += dYᵀ·X,  db += Σ_rows dY,  dA, dB (see LoRA below).
 *
 * LoRA (PEFT's LoraLayer semantics; Hu et al. 2021, Dettmers et al. 2023 for QLoRA):
 *   h  = dropout(X) · Aᵀ            A: [r, in]    h: [n, r]
 *   Y += scaling · h · Bᵀ           B: [out, r]   scaling = lora_alpha / r  (rsLoRA: alpha / √r)
 *   A ~ U(-1/√in, 1/√in) (PEFT's kaiming_uniform_(a=√5)), or N(0, 1/r²) with init_gaussian
 *   (PEFT's init_lora_weights="gaussian"); B = 0, so a new adapter leaves the output unchanged.
 *   Backward: dB += scaling · dYᵀ·h;  g = scaling · dY·B [n, r];  dA += gᵀ·dropout(X);
 *             dX += (g·A) ⊙ mask / (1 - p).
 * Dropout is applied only in training mode (msbnb_linear_set_training), inverted (kept values are
 * scaled by 1/(1-p)). The mask is not stored: it is a pure function of (adapter seed, a per-adapter
 * forward counter, element index), so a run is reproducible and backward regenerates the mask of
 * the MOST RECENT training forward of that layer. Call backward with the same X and n as that
 * forward, before the next training forward on the same layer.
 *
 * Several named adapters may live on one layer; at most one is active. Adding an adapter freezes
 * the base (weight and bias), as PEFT does. Merging folds the active adapter into the base:
 * fp32 base: W += ΔW; quantized base: W' = quant(deq(W) + ΔW) with the same format, and the
 * rounding error that re-quantization introduced is reported. Unmerge restores the saved previous
 * base byte for byte (it never subtracts).
 *
 * Threading: kernels inside a call use msbnb_get_num_threads() threads and give bit-identical
 * results for every count. A layer handle is not thread-safe (a training forward advances the
 * dropout counter): do not call into the same layer from two threads at once. Distinct layers
 * are independent.
 */
#ifndef MSBNB_NN_H
#define MSBNB_NN_H

#include <stdio.h>

#include "kernels.h"
#include "msbnb.h"
#include "quant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct msbnb_linear msbnb_linear;

/* Append-only. */
typedef enum msbnb_linear_kind {
    MSBNB_LINEAR_F32 = 0,
    MSBNB_LINEAR_INT8 = 1,
    MSBNB_LINEAR_4BIT = 2
} msbnb_linear_kind;

/* "f32", "int8", "4bit"; "?" otherwise. Static string. */
const char *msbnb_linear_kind_name(msbnb_linear_kind kind);

/* ---------------------------------------------------------------- creation */

/* fp32 layer with torch.nn.Linear's initialisation: W [out, in] and b [out] drawn from
 * U(-1/√in, 1/√in) with a generator seeded by seed (same seed -> same weights on every platform;
 * the values are not torch's, the distribution is). has_bias: 0 or 1. The layer is trainable
 * (not frozen); its gradient buffers are allocated on first need (backward / trainable_params), so
 * an inference-only layer holds only its weights. *out: new layer, caller frees with
 * msbnb_linear_free.
 * Errors: INVALID_ARG (NULL out, in or out < 1), SHAPE (a dimension beyond 2^31 − 1: BLAS takes
 * int sizes), OUT_OF_MEMORY. */
msbnb_status msbnb_linear_create(int64_t in_features, int64_t out_features, int has_bias, uint64_t seed,
                                 msbnb_linear **out);

/* fp32 layer from given values (copied): w [out, in] row-major, bias [out] or NULL (no bias).
 * Errors: INVALID_ARG, SHAPE, OUT_OF_MEMORY. */
msbnb_status msbnb_linear_create_from_weights(const float *w, const float *bias, int64_t in_features,
                                              int64_t out_features, msbnb_linear **out);

/* Parameters of the seed's Linear8bit. */
typedef struct msbnb_linear8bit_params {
    int has_bias;         /* 1                                                                  */
    int has_fp16_weights; /* 1 = start in training mode (fp32 weights); 0 = quantize at creation */
    int asymmetric;       /* 0 = symmetric absmax (bnb CB/SCB, required for LLM.int8()); 1 = min/max */
    int per_row;          /* 1 = one scale per output channel (default); 0 = one per tensor       */
    float threshold;      /* LLM.int8() outlier threshold used by the forward (6.0; 0 = off)       */
    uint64_t seed;        /* initialisation (as msbnb_linear_create)                            */
} msbnb_linear8bit_params;

/* has_bias 1, has_fp16_weights 1, asymmetric 0, per_row 1, threshold 6.0, seed 0. */
msbnb_linear8bit_params msbnb_linear8bit_params_default(void);

/* INT8 layer with nn.Linear initialisation; p NULL = defaults. In training mode until
 * msbnb_linear_quantize_weights() (or quantized at once when p->has_fp16_weights == 0).
 * Errors: INVALID_ARG (negative threshold, NULL out), SHAPE, OUT_OF_MEMORY. */
msbnb_status msbnb_linear8bit_create(int64_t in_features, int64_t out_features, const msbnb_linear8bit_params *p,
                                     msbnb_linear **out);
/* Same from given weights w [out, in] and bias [out] or NULL (copied); p->has_bias and p->seed are
 * ignored (the bias argument decides). */
msbnb_status msbnb_linear8bit_create_from_weights(const float *w, const float *bias, int64_t in_features,
                                                  int64_t out_features, const msbnb_linear8bit_params *p,
                                                  msbnb_linear **out);

/* Switch an INT8 layer from training mode to inference mode: quantize the fp32 weights to INT8
 * with the layer's format, release the fp32 weights and their gradient, freeze the layer.
 * One-way. Errors: INVALID_ARG (NULL, not an INT8 layer, already quantized, or an adapter is merged),
 * OUT_OF_MEMORY. */
msbnb_status msbnb_linear_quantize_weights(msbnb_linear *l);

/* 4-bit layer from a layer holding fp32 weights (an F32 layer, or an INT8 layer in training mode):
 * the weights are quantized with cfg (type INT4, NF4 or FP4; NULL = NF4 defaults), the bias copied.
 * src is unchanged and keeps its ownership; adapters of src are NOT copied.
 * Errors: INVALID_ARG (NULL, src without fp32 weights, cfg->type not 4-bit), SHAPE (INT4 group size
 * not dividing in_features), OUT_OF_MEMORY. */
msbnb_status msbnb_linear4bit_from_linear(const msbnb_linear *src, const msbnb_quant_config *cfg, msbnb_linear **out);

/* 4-bit layer from given weights w [out, in] and bias [out] or NULL (quantized / copied). */
msbnb_status msbnb_linear4bit_create_from_weights(const float *w, const float *bias, int64_t in_features,
                                                  int64_t out_features, const msbnb_quant_config *cfg,
                                                  msbnb_linear **out);

/* Layer around an existing quantized weight (e.g. read from a checkpoint): q has rows = out_features,
 * cols = in_features, type INT8 (-> INT8 layer in inference mode, threshold from q's view), or INT4,
 * NF4, FP4 (-> 4BIT layer). bias [out] or NULL is copied.
 * Ownership: on success q is TRANSFERRED to the layer (freed with it; do not free it yourself);
 * on failure the caller still owns q.
 * Errors: INVALID_ARG (NULL, BLOCKWISE8 or NONE type), OUT_OF_MEMORY. */
msbnb_status msbnb_linear_from_qtensor(msbnb_qtensor *q, const float *bias, msbnb_linear **out);

/* Release the layer, its adapters and gradient buffers. NULL is a no-op. */
void msbnb_linear_free(msbnb_linear *l);

/* ---------------------------------------------------------------- forward / backward */

/* Y[n, out] = X[n, in] · Wᵀ + b (+ active adapter). 1 ≤ n < 2^31. X and Y caller-owned, must not
 * overlap.
 * In training mode with LoRA dropout > 0 this advances the adapter's dropout counter (see top).
 * Errors: INVALID_ARG (NULL, n < 1), OUT_OF_MEMORY (temporaries of n·r floats), plus the kernel's. */
msbnb_status msbnb_linear_forward(msbnb_linear *l, const float *X, int64_t n, float *Y);

/* Backward of the last forward on (X, n): dY [n, out] given; dX [n, in] written (overwritten, not
 * accumulated) unless dX is NULL. Accumulates dW [out, in] and db [out] when the base is trainable,
 * and dA, dB of the active (unmerged) adapter. Gradient buffers are layer-owned, reachable through
 * msbnb_linear_trainable_params / msbnb_lora_get.
 * Errors: INVALID_ARG, OUT_OF_MEMORY, plus the kernel's. */
msbnb_status msbnb_linear_backward(msbnb_linear *l, const float *X, const float *dY, int64_t n, float *dX);

/* Set every gradient buffer of the layer (base and all adapters) to zero. NULL is a no-op. */
void msbnb_linear_zero_grad(msbnb_linear *l);

/* Training mode turns LoRA dropout on. Default: 0 (eval), so inference never drops anything. */
void msbnb_linear_set_training(msbnb_linear *l, int training);
int msbnb_linear_is_training(const msbnb_linear *l);

/* Freeze (1) or unfreeze (0) the base weight and bias. Quantized bases are always frozen:
 * unfreezing one returns UNSUPPORTED; INVALID_ARG while an adapter is merged. Unfreezing
 * allocates the gradient buffers. */
msbnb_status msbnb_linear_set_frozen(msbnb_linear *l, int frozen);
int msbnb_linear_is_frozen(const msbnb_linear *l);

/* Product precision of quantized bases (kernels.h): EXACT (default) or FAST. */
msbnb_status msbnb_linear_set_precision(msbnb_linear *l, msbnb_precision precision);

/* ---------------------------------------------------------------- accessors */

int64_t msbnb_linear_in_features(const msbnb_linear *l);
int64_t msbnb_linear_out_features(const msbnb_linear *l);
msbnb_linear_kind msbnb_linear_get_kind(const msbnb_linear *l);
/* Weight storage now: MSBNB_QTYPE_NONE for fp32 weights (F32 layers, INT8 in training mode),
 * else the qtensor's type. */
msbnb_qtype msbnb_linear_weight_qtype(const msbnb_linear *l);
/* The quantized weight (borrowed, valid until the layer is freed, merged/unmerged or re-quantized),
 * or NULL when the weights are fp32. */
const msbnb_qtensor *msbnb_linear_qtensor(const msbnb_linear *l);
/* The fp32 weight [out, in] (mutable, e.g. to load values), or NULL when quantized. Borrowed. */
float *msbnb_linear_weight(msbnb_linear *l);
/* The bias [out] (mutable), or NULL when the layer has none. Borrowed. */
float *msbnb_linear_bias(msbnb_linear *l);
/* Copy of the effective base weight, dequantized if needed, into w [out, in] (caller-allocated).
 * Merged adapters are included (they are part of the base); unmerged ones are not. */
msbnb_status msbnb_linear_get_weight_f32(const msbnb_linear *l, float *w);

/* One trainable tensor: pointers into layer-owned memory, valid until the layer is freed or its
 * adapters / mode change. PEFT layout for adapters: lora_A [r, in], lora_B [out, r]. */
typedef struct msbnb_param_ref {
    float *data;         /* values, n floats                                        */
    float *grad;         /* gradient accumulator, n floats (same layout)            */
    size_t n;            /* element count                                           */
    int ndim;            /* 1 (bias) or 2                                           */
    int64_t shape[2];    /* [out] for bias; [out, in], [r, in], [out, r] otherwise  */
    const char *name;    /* "weight", "bias", "lora_A", "lora_B" (static)           */
    const char *adapter; /* adapter name for lora_A/lora_B, NULL for the base        */
} msbnb_param_ref;

/* Largest number of entries msbnb_linear_trainable_params can return for one layer. */
#define MSBNB_LINEAR_MAX_PARAMS 4

/* The layer's trainable tensors, in a fixed order: weight, bias (if the base is trainable), then
 * lora_A, lora_B of the active unmerged adapter. out may be NULL to query *count only; else it
 * must hold cap entries (MSBNB_LINEAR_MAX_PARAMS always suffices). Errors: INVALID_ARG (cap too small). */
msbnb_status msbnb_linear_trainable_params(msbnb_linear *l, msbnb_param_ref *out, int cap, int *count);

/* Parameter counts as PEFT counts them: *trainable (elements in trainable tensors: see above),
 * *total (all weights of the base, counted as elements whatever their storage, + bias + every
 * adapter). Either pointer may be NULL. */
void msbnb_linear_count_params(const msbnb_linear *l, int64_t *trainable, int64_t *total);

/* Memory actually held by a layer, in bytes. */
typedef struct msbnb_linear_memory {
    size_t weight_bytes;       /* fp32 weights or packed codes                                      */
    size_t stats_bytes;        /* scales / absmax / zero points / nested statistics (maps excluded) */
    size_t bias_bytes;
    size_t grad_bytes;         /* base gradient buffers (dW, db) when trainable                     */
    size_t adapter_bytes;      /* A and B of every adapter                                          */
    size_t adapter_grad_bytes; /* dA and dB of every adapter                                        */
    size_t merge_backup_bytes; /* copy of the pre-merge base kept for an exact unmerge              */
    size_t total_bytes;        /* sum of the above                                                  */
    size_t f32_weight_bytes;   /* what the base weight would take in fp32: 4·in·out (reference)     */
    double base_bits_per_weight; /* 8·(weight_bytes + stats_bytes) / (in·out)                      */
} msbnb_linear_memory;

msbnb_status msbnb_linear_memory_usage(const msbnb_linear *l, msbnb_linear_memory *m);

/* ---------------------------------------------------------------- LoRA adapters */

typedef struct msbnb_lora_params {
    int r;              /* rank, ≥ 1 (default 8)                                                */
    float lora_alpha;   /* scaling numerator (default 16)                                       */
    float lora_dropout; /* dropout probability on the adapter's input, 0 ≤ p < 1 (default 0)    */
    int use_rslora;     /* 1: scaling = alpha / √r (rank-stabilised LoRA); 0: alpha / r          */
    int init_gaussian;  /* 1: A ~ N(0, 1/r²) as PEFT's "gaussian"; 0: Kaiming-uniform (default)  */
    uint64_t seed;      /* A's initialisation and the dropout masks (default 0)                 */
} msbnb_lora_params;

msbnb_lora_params msbnb_lora_params_default(void);

/* Add an adapter called name (copied, 1..63 chars) with A initialised and B = 0. The first adapter
 * of a layer becomes active; later ones are added inactive (msbnb_lora_set_active). Freezes the base.
 * Errors: INVALID_ARG (NULL, bad r/alpha/dropout, name empty or too long, name already present,
 * an adapter merged), OUT_OF_MEMORY. */
msbnb_status msbnb_lora_add(msbnb_linear *l, const char *name, const msbnb_lora_params *p);

/* Make name the active adapter; name NULL disables adapters (base only). Errors: NOT_FOUND,
 * INVALID_ARG (an adapter is merged: unmerge first). */
msbnb_status msbnb_lora_set_active(msbnb_linear *l, const char *name);
/* Name of the active adapter (borrowed), or NULL. */
const char *msbnb_lora_active(const msbnb_linear *l);
/* Number of adapters and the i-th name (borrowed; NULL if out of range). */
int msbnb_lora_count(const msbnb_linear *l);
const char *msbnb_lora_name(const msbnb_linear *l, int i);
/* Remove an adapter (a merged one cannot be deleted: INVALID_ARG). Errors: NOT_FOUND. */
msbnb_status msbnb_lora_delete(msbnb_linear *l, const char *name);

/* Read/write access to one adapter (pointers borrowed from the layer). */
typedef struct msbnb_lora_view {
    int r;
    float lora_alpha, lora_dropout, scaling;
    int use_rslora;
    int merged;        /* 1 while folded into the base                 */
    int64_t in_features, out_features;
    float *A, *dA;     /* [r, in]  (PEFT lora_A.weight)                 */
    float *B, *dB;     /* [out, r] (PEFT lora_B.weight)                 */
} msbnb_lora_view;

/* Errors: NOT_FOUND. name NULL = the active adapter (NOT_FOUND if none). */
msbnb_status msbnb_lora_get(msbnb_linear *l, const char *name, msbnb_lora_view *v);

/* ΔW = scaling · B · A into delta [out, in] (caller-allocated). name NULL = active adapter. */
msbnb_status msbnb_lora_get_merged_weight(const msbnb_linear *l, const char *name, float *delta);

/* What re-quantization did to a merge: error of the new base against the exact sum deq(W) + ΔW. */
typedef struct msbnb_merge_report {
    double max_abs_error; /* max |new - exact| (0 for an fp32 base up to fp32 addition rounding) */
    double rms_error;     /* sqrt(mean (new - exact)²)                                         */
    double delta_rms;     /* sqrt(mean ΔW²), to put the error in proportion                     */
} msbnb_merge_report;

/* Fold the active adapter into the base (see top). The previous base is kept for unmerge; while
 * merged the forward uses the base only, nothing of the layer is trainable, and adapters cannot be
 * added, deleted or switched. Temporarily needs up to 3 fp32 copies of W [out, in]. report may be NULL.
 * Errors: INVALID_ARG (no active adapter, already merged), OUT_OF_MEMORY, plus quantization's. */
msbnb_status msbnb_lora_merge(msbnb_linear *l, msbnb_merge_report *report);
/* Restore the base saved by the last merge, bit for bit; the adapter becomes active again.
 * Errors: INVALID_ARG (nothing merged). */
msbnb_status msbnb_lora_unmerge(msbnb_linear *l);
/* Merge, then drop the saved base and delete the adapter (PEFT's merge_and_unload). */
msbnb_status msbnb_lora_merge_and_unload(msbnb_linear *l, msbnb_merge_report *report);

/* ---------------------------------------------------------------- model-level helpers */

/* Over a collection of layers (an array of n handles, NULL entries skipped): freeze every base and
 * leave only the active adapters trainable (PEFT's mark_only_lora_as_trainable). Layers without an
 * adapter become fully frozen. */
msbnb_status msbnb_freeze_model_except_lora(msbnb_linear *const *layers, int n);

/* Print "trainable params: T || all params: A || trainable%: P" (PEFT's format) to f (NULL = stdout). */
void msbnb_print_trainable_params(msbnb_linear *const *layers, int n, FILE *f);

/* One line per layer: name (names[i], or "layer<i>" when names is NULL), kind, shape, active adapter,
 * r, alpha, scaling, dropout, merged flag, and memory; then totals. f NULL = stdout. */
void msbnb_print_lora_info(msbnb_linear *const *layers, const char *const *names, int n, FILE *f);

#ifdef __cplusplus
}
#endif
#endif /* MSBNB_NN_H */
