/*
 * optim.h — AdamW with fp32 moments and 8-bit AdamW (bitsandbytes' blockwise 8-bit optimizer
 * state), gradient clipping by global norm, learning-rate schedules, state save / restore.
 *
 * Usage (train every trainable tensor of a set of layers):
 *
 *     #include <msbnb/optim.h>
 *
 *     msbnb_adamw_params p = msbnb_adamw_params_default();    // lr 1e-3, betas .9/.999, wd 0.01
 *     p.lr = 2e-4; p.max_grad_norm = 1.0f;
 *     p.schedule = MSBNB_LR_WARMUP_COSINE; p.warmup_steps = 100; p.total_steps = 1000;
 *     msbnb_optim *opt = NULL;
 *     msbnb_adamw8bit_create(&p, &opt);                        // or msbnb_adamw_create
 *     for (int i = 0; i < n_layers; i++) msbnb_optim_add_linear(opt, layers[i], names[i]);
 *     for (step...) {
 *         msbnb_optim_zero_grad(opt);
 *         ... forward, backward (gradients accumulate in the layers) ...
 *         msbnb_optim_step(opt, NULL);
 *     }
 *     msbnb_optim_save(opt, "optim.bin");                      // resume later with msbnb_optim_load
 *     msbnb_optim_free(opt);
 *
 * The update (one step t = 1, 2, ..., for every registered element with gradient g), in the order
 * of bitsandbytes' AdamW kernels (32-bit and 8-bit blockwise alike):
 *   g      ← g · min(1, max_grad_norm / (‖g‖₂ + 1e-6))  (torch's clip_grad_norm_; global norm over all
 *                                                  registered tensors, when
 *                                                  max_grad_norm > 0; the gradient buffers are
 *                                                  not modified — the scale is applied on the fly)
 *   lr_t   = schedule(t)
 *   m      ← β₁ m + (1 − β₁) g
 *   v      ← β₂ v + (1 − β₂) g²
 *   p      ← p − lr_t · (√(1 − β₂ᵗ) / (1 − β₁ᵗ)) · m / (√v + eps · √(1 − β₂ᵗ))
 *            (= lr_t · m̂ / (√v̂ + eps) with the usual bias-corrected m̂, v̂)
 *   p      ← p · (1 − lr_t · weight_decay)          (decoupled weight decay, applied AFTER the Adam
 *                                                  step as bitsandbytes does; torch.optim.AdamW
 *                                                  applies it before, a difference of
 *                                                  lr_t² · weight_decay · |update| per step —
 *                                                  see docs/nn.md)
 *
 * 8-bit AdamW keeps m as 8-bit codes into the signed dynamic map and v into the unsigned dynamic
 * map (quant.h), blockwise with one fp32 absmax per `blocksize` (256) elements; per step each block
 * is dequantized, updated in fp32 as above, and re-quantized to the nearest map entry with a fresh
 * absmax (a code of m whose sign differs from m's is moved one step toward it, as bitsandbytes
 * does, so momentum never flips sign by rounding). Tensors with fewer than
 * `min_8bit_size` (4096) elements keep fp32 moments, as bitsandbytes does.
 *
 * Non-finite gradients: an element whose gradient is NaN or ±Inf does not change its parameter.
 * 8-bit AdamW also resets that element's m and v to 0, exactly as bitsandbytes' blockwise kernel
 * does; fp32 AdamW leaves its moments untouched. Such elements are left out of the global norm.
 * The number skipped in a step is reported in msbnb_optim_step_info.
 *
 * Ownership: registered parameter and gradient buffers are BORROWED and must outlive the optimizer
 * (or the next msbnb_optim_step). The optimizer owns its state. Not thread-safe per handle; the
 * step itself is parallel and bit-identical for every thread count.
 */
#ifndef MSBNB_OPTIM_H
#define MSBNB_OPTIM_H

#include "msbnb.h"
#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct msbnb_optim msbnb_optim;

/* Append-only (stored in state files). */
typedef enum msbnb_optim_type {
    MSBNB_OPTIM_ADAMW = 0,
    MSBNB_OPTIM_ADAMW8BIT = 1
} msbnb_optim_type;

/* Append-only. */
typedef enum msbnb_lr_schedule {
    MSBNB_LR_CONSTANT = 0,      /* lr                                                              */
    MSBNB_LR_WARMUP_COSINE = 1  /* t ≤ warmup: lr·t/warmup; then min_lr + (lr − min_lr)·½(1 + cos(π·
                                   (t − warmup)/(total − warmup))), and min_lr after total steps    */
} msbnb_lr_schedule;

typedef struct msbnb_adamw_params {
    float lr;              /* peak learning rate (1e-3)                                           */
    float beta1, beta2;    /* 0.9, 0.999                                                          */
    float eps;             /* 1e-8                                                                */
    float weight_decay;    /* 0.01 (torch.optim.AdamW and bitsandbytes' AdamW8bit default)        */
    float max_grad_norm;   /* clip the global gradient norm to this; 0 = no clipping (default)    */
    msbnb_lr_schedule schedule; /* CONSTANT                                                       */
    int64_t warmup_steps;  /* WARMUP_COSINE: linear warm-up length (0)                            */
    int64_t total_steps;   /* WARMUP_COSINE: step where the cosine reaches min_lr (must be > warmup) */
    float min_lr_ratio;    /* WARMUP_COSINE: min_lr = lr · min_lr_ratio (0)                        */
    int blocksize;         /* 8-bit: elements per absmax block (256)                              */
    int64_t min_8bit_size; /* 8-bit: tensors with fewer elements keep fp32 moments (4096)          */
} msbnb_adamw_params;

msbnb_adamw_params msbnb_adamw_params_default(void);

/* Create an optimizer with no parameters yet. p NULL = defaults. *out freed by msbnb_optim_free.
 * Errors: INVALID_ARG (lr < 0, betas outside [0,1), eps ≤ 0, weight_decay < 0, max_grad_norm < 0,
 * bad schedule lengths, blocksize not a power of two in 64..4096), OUT_OF_MEMORY. */
msbnb_status msbnb_adamw_create(const msbnb_adamw_params *p, msbnb_optim **out);
msbnb_status msbnb_adamw8bit_create(const msbnb_adamw_params *p, msbnb_optim **out);
/* Either, by type. */
msbnb_status msbnb_optim_create(msbnb_optim_type type, const msbnb_adamw_params *p, msbnb_optim **out);
void msbnb_optim_free(msbnb_optim *o);

/* Register a tensor: data [n] updated in place, grad [n] read by step (both borrowed). name
 * (copied, may be NULL -> "param<i>") identifies the tensor in saved state. Moments start at 0.
 * Register everything before the first step. Errors: INVALID_ARG (NULL, n == 0, after the first
 * step), OUT_OF_MEMORY. */
msbnb_status msbnb_optim_add_param(msbnb_optim *o, float *data, float *grad, size_t n, const char *name);

/* Register every trainable tensor of a layer (msbnb_linear_trainable_params), named
 * "<prefix>.<name>" or "<prefix>.<name>.<adapter>" for LoRA tensors (prefix NULL -> "layer").
 * The layer must keep those tensors (no adapter changes) while the optimizer uses them. */
msbnb_status msbnb_optim_add_linear(msbnb_optim *o, msbnb_linear *l, const char *prefix);

/* Set every registered gradient buffer to zero. */
void msbnb_optim_zero_grad(msbnb_optim *o);

typedef struct msbnb_optim_step_info {
    int64_t step;          /* the step just taken (1 for the first)                   */
    float lr;              /* learning rate used                                       */
    double grad_norm;      /* global L2 norm of the finite gradient elements, before clipping */
    double clip_scale;     /* factor applied to the gradients (1 when not clipped)    */
    size_t nonfinite;      /* gradient elements skipped because NaN/Inf               */
} msbnb_optim_step_info;

/* One update of every registered tensor. info may be NULL. Errors: INVALID_ARG (no parameters),
 * OUT_OF_MEMORY (8-bit scratch). */
msbnb_status msbnb_optim_step(msbnb_optim *o, msbnb_optim_step_info *info);

/* Learning rate the schedule gives at step t (1-based), without stepping. */
float msbnb_optim_lr_at(const msbnb_optim *o, int64_t t);
/* Steps taken so far (0 before the first). */
int64_t msbnb_optim_step_count(const msbnb_optim *o);
msbnb_optim_type msbnb_optim_get_type(const msbnb_optim *o);
/* Change the peak learning rate (schedule shape unchanged). Errors: INVALID_ARG (negative). */
msbnb_status msbnb_optim_set_lr(msbnb_optim *o, float lr);

/* Bytes of optimizer state: moments (codes + absmax for 8-bit tensors, fp32 for the rest).
 * *n_8bit_tensors (may be NULL): how many tensors use 8-bit state. */
size_t msbnb_optim_state_bytes(const msbnb_optim *o, int *n_8bit_tensors);

/* Moments of registered tensor i dequantized to fp32 (m [n], v [n], caller-allocated), for tests
 * and inspection. Errors: INVALID_ARG (i out of range). */
msbnb_status msbnb_optim_get_moments(const msbnb_optim *o, int i, float *m, float *v);
int msbnb_optim_param_count(const msbnb_optim *o);

/* Save the state (type, hyper-parameters, step, every tensor's name, size and moments — NOT the
 * parameters themselves, which the model saves) to path: a small binary format documented in
 * docs/nn.md (magic "MSBNBOPT", version, little-endian, CRC-32 of the payload), written to
 * "<path>.tmp" then renamed, so a crash never leaves a half-written file under path.
 * Errors: INVALID_ARG, IO. */
msbnb_status msbnb_optim_save(const msbnb_optim *o, const char *path);
/* Restore state saved by msbnb_optim_save into an optimizer of the same type whose registered
 * tensors have the same names and sizes in the same order; the step counter and moments are
 * replaced (hyper-parameters of o are kept: the caller decides them). On any error o is unchanged.
 * Errors: INVALID_ARG, IO, FORMAT (bad magic/version/CRC, truncated), SHAPE (tensor list differs). */
msbnb_status msbnb_optim_load(msbnb_optim *o, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* MSBNB_OPTIM_H */
