/*
 * train.h — LoRA / QLoRA fine-tuning of a loaded msbnb_model: attach adapters by module name,
 * forward + backward over [B, T] token batches, evaluate, save / load PEFT adapters, merge.
 *
 * Usage (QLoRA on an NF4 model; error handling elided):
 *
 *     #include <msbnb/train.h>
 *
 *     msbnb_model_params mp = msbnb_model_params_default();
 *     mp.quant = MSBNB_QTYPE_NF4; mp.double_quant = 1;
 *     msbnb_model *m; msbnb_model_load("stories260K/hf", &mp, &m);
 *
 *     msbnb_lora_params lp = msbnb_lora_params_default();      // r 8, alpha 16
 *     unsigned targets; msbnb_lora_targets_parse("q_proj,v_proj", &targets);
 *     msbnb_model_lora_attach(m, "default", &lp, targets);
 *
 *     msbnb_train_params tp = msbnb_train_params_default();    // batch 4, seq 64
 *     msbnb_trainer *tr; msbnb_trainer_create(m, &tp, &tr);
 *     msbnb_optim *opt; msbnb_adamw_create(&ap, &opt);
 *     msbnb_trainer_register(tr, opt);                          // every lora_A / lora_B
 *     for (step...) {
 *         msbnb_optim_zero_grad(opt);
 *         double loss; msbnb_trainer_step(tr, batch_tokens, &loss);   // [B, T+1] token ids
 *         msbnb_optim_step(opt, NULL);
 *     }
 *     msbnb_model_lora_save(m, "default", "out/adapter", "stories260K");
 *     msbnb_trainer_free(tr); msbnb_optim_free(opt); msbnb_model_free(m);
 *
 * The network (model.h) in training: the base weights (quantized or fp32), norms, embedding and
 * output layer are frozen; only the active LoRA adapters of the seven projections train. The
 * output layer is tied to the embedding for llama2.c / stories260K checkpoints and frozen either
 * way. loss = mean cross-entropy of next-token prediction over the B·T positions of a batch.
 *
 * Activations: by default every layer's activations are kept from the forward for the backward
 * (memory per layer ≈ N·(6·dim + 2·kv_dim + 2·q_dim + 3·hidden) + B·H·T² floats, N = B·T);
 * recompute = 1 keeps only each layer's input (N·dim floats) and re-runs the layer's forward
 * during the backward (≈ one extra forward of compute). See docs/training.md for the figures.
 *
 * Threading: kernels inside run on msbnb_get_num_threads() threads; losses and gradients are
 * bit-identical for every thread count. Because OpenBLAS's own threading changes sgemm's bits
 * with its thread count, msbnb_trainer_step/_loss run OpenBLAS single-threaded for their duration
 * (the previous openblas_set_num_threads setting is restored on return) and split the products
 * over msbnb's threads themselves. A trainer uses its model exclusively while it runs.
 */
#ifndef MSBNB_TRAIN_H
#define MSBNB_TRAIN_H

#include "model.h"
#include "nn.h"
#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- adapters on a model */

/* Bit mask of projections: bit p set = projection p (msbnb_proj) of every layer. */
#define MSBNB_LORA_TARGETS_ALL 0x7Fu

/* Parse a comma-separated list of PEFT module names ("q_proj,k_proj,...,down_proj"; "all" = the
 * seven) into a mask. Errors: INVALID_ARG (unknown name, empty list). */
msbnb_status msbnb_lora_targets_parse(const char *csv, unsigned *mask);

/* Add an adapter called `name` (nn.h msbnb_lora_add) to projection p of every layer for each bit
 * p of targets, and make it active there. Each module's A is initialised with seed
 * p->seed + 1000·layer + proj, so modules differ and a run is reproducible.
 * Errors: INVALID_ARG (NULL, targets 0 or beyond MSBNB_LORA_TARGETS_ALL, bad lora params), plus
 * msbnb_lora_add's (a name already present). On failure adapters added by this call are removed. */
msbnb_status msbnb_model_lora_attach(msbnb_model *m, const char *name, const msbnb_lora_params *p,
                                     unsigned targets);

/* Make `name` active on every projection that has it, and disable adapters on the others
 * (name NULL: base model only). Errors: NOT_FOUND (no projection has it). */
msbnb_status msbnb_model_lora_set_active(msbnb_model *m, const char *name);

/* Save adapter `name` in PEFT format: dir/adapter_config.json + dir/adapter_model.safetensors
 * with keys base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight etc.
 * base_model may be NULL. Errors: NOT_FOUND, IO, OUT_OF_MEMORY, INVALID_ARG. */
msbnb_status msbnb_model_lora_save(msbnb_model *m, const char *name, const char *dir, const char *base_model);

/* Load a PEFT adapter directory onto the model as adapter `name` (r, alpha, dropout, rslora from
 * adapter_config.json; A and B copied), active afterwards.
 * Errors: IO, FORMAT, NOT_FOUND (a module the model does not have), SHAPE (A/B shapes that do
 * not fit the module), INVALID_ARG (name already present). */
msbnb_status msbnb_model_lora_load(msbnb_model *m, const char *dir, const char *name);

/* Write a standalone Hugging Face checkpoint directory out_dir (config.json + model.safetensors)
 * of the model with its ACTIVE adapters folded in: W' = deq(W) + scaling·B·A. requantize = 0:
 * every projection stored plain in the source checkpoint's dtype; 1: each projection re-quantized in its base format (format, block
 * size, double quantization; fp32 bases stay fp32) and stored in the bitsandbytes layout of io.h.
 * The model itself is unchanged. Errors: IO, OUT_OF_MEMORY, UNSUPPORTED. */
msbnb_status msbnb_model_save_merged(msbnb_model *m, const char *out_dir, int requantize);
/* The same with the dtype of the plain tensors chosen: MSBNB_DTYPE_F32 / F16 / BF16, or -1 = the
 * dtype of the checkpoint the model was loaded from (what msbnb_model_save_merged does: a bf16
 * base gives a bf16 merged model). config.json keeps every field of the source's config.json
 * (family, RoPE parameters, special token ids), with "dtype"/"torch_dtype" and
 * quantization_config updated; a model not loaded from an HF directory gets a generated one. */
msbnb_status msbnb_model_save_merged_ex(msbnb_model *m, const char *out_dir, int requantize, int dtype);

/* ---------------------------------------------------------------- training */

/* Arithmetic of the frozen base products in training. LoRA masters, their gradients and the
 * optimizer state stay fp32, and loss, softmax and norms accumulate in fp32, in every mode. */
typedef enum msbnb_compute {
    MSBNB_COMPUTE_AUTO = 0, /* BF16 where msbnb_bf16_native() (kernels.h), else FP32              */
    MSBNB_COMPUTE_FP32 = 1, /* EXACT products: the reference                                     */
    MSBNB_COMPUTE_BF16 = 2  /* bf16 numerics in the 4-bit bases' products, forward and dX (QLoRA's
                               bnb_4bit_compute_dtype = bfloat16): activations and dequantized
                               weights rounded to bf16, fp32 accumulation; native speed where
                               msbnb_bf16_native(), else the same numbers at fp32 speed (kernels.h,
                               msbnb_matmul_t_ex). INT8 and fp32 bases, the output matrix and
                               attention stay fp32. */
} msbnb_compute;

typedef struct msbnb_train_params {
    int batch;      /* sequences per step, B (default 4)                                       */
    int seq_len;    /* positions per sequence, T (default 64); ≤ the model's seq_len             */
    int recompute;  /* 0: keep every layer's activations (default); 1: recompute in the backward */
    uint64_t seed;  /* LoRA dropout masks: a function of (seed, step counter, layer, proj, index) */
    msbnb_compute compute; /* base products (default AUTO, see above)                          */
} msbnb_train_params;

msbnb_train_params msbnb_train_params_default(void);

typedef struct msbnb_trainer msbnb_trainer;

/* Create a trainer for m with the adapters active now (attach them first). Allocates every
 * activation buffer for [batch, seq_len]. The model is borrowed and must outlive the trainer;
 * do not change its adapters while the trainer lives.
 * Errors: INVALID_ARG (NULL, batch/seq_len < 1, seq_len beyond the model's), OUT_OF_MEMORY. */
msbnb_status msbnb_trainer_create(msbnb_model *m, const msbnb_train_params *p, msbnb_trainer **out);
/* The compute the trainer runs (AUTO resolved at create: FP32 or BF16). */
msbnb_compute msbnb_trainer_compute(const msbnb_trainer *tr);
/* "auto", "fp32", "bf16" (NULL for an unknown value); parse the same names (INVALID_ARG else). */
const char *msbnb_compute_name(msbnb_compute c);
msbnb_status msbnb_compute_parse(const char *name, msbnb_compute *out);
void msbnb_trainer_free(msbnb_trainer *tr);

/* Register every trainable LoRA tensor (lora_A, lora_B of each adapted projection) with opt,
 * named by module path ("model.layers.0.self_attn.q_proj.lora_A.<adapter>"). */
msbnb_status msbnb_trainer_register(msbnb_trainer *tr, msbnb_optim *opt);

/* One forward + backward on tokens [batch, seq_len + 1] (row b: inputs tokens[b, 0..T-1],
 * targets tokens[b, 1..T]; a target < 0 is ignored, an input < 0 is padding read as id 0 —
 * put padding only after the real tokens of a row). LoRA dropout on. Gradients ACCUMULATE into
 * the adapters' dA, dB (zero them with msbnb_optim_zero_grad). *loss = mean cross-entropy.
 * Advances the dropout step counter. Errors: INVALID_ARG (token out of range), OUT_OF_MEMORY. */
msbnb_status msbnb_trainer_step(msbnb_trainer *tr, const int32_t *tokens, double *loss);

/* Forward only, dropout off, no gradients: *loss of the batch as above (*count positions). */
msbnb_status msbnb_trainer_loss(msbnb_trainer *tr, const int32_t *tokens, double *loss, int64_t *count);

/* Mean next-token loss over a token stream ids [n]: consecutive windows of seq_len + 1 tokens
 * starting every seq_len tokens (so every token after the first is predicted exactly once, from
 * the window's own context), batched `batch` windows at a time; a short last batch is padded
 * with ignored targets. max_windows > 0 caps the windows used. *loss in nats per token, *count
 * tokens scored. Errors: INVALID_ARG (n < 2), NUMERIC (nothing scored). */
msbnb_status msbnb_trainer_eval_stream(msbnb_trainer *tr, const int32_t *ids, int64_t n, int64_t max_windows,
                                       double *loss, int64_t *count);

/* Dropout step counter (number of training steps taken), for checkpoints. */
uint64_t msbnb_trainer_step_count(const msbnb_trainer *tr);
void msbnb_trainer_set_step_count(msbnb_trainer *tr, uint64_t steps);

/* Bytes of activation and scratch memory the trainer holds. */
size_t msbnb_trainer_memory_bytes(const msbnb_trainer *tr);
/* The trainer's buffers are reserved by msbnb_trainer_create but not yet touched: OUT_OF_MEMORY
 * (with the figures) when they exceed the memory the system has available (MemAvailable +
 * SwapFree), so a caller can refuse before the first step instead of being killed in the middle
 * of one. OK when they fit or the figure is unknown (not Linux). */
msbnb_status msbnb_trainer_check_memory(const msbnb_trainer *tr);
/* Base parameters (every weight of the model counted as elements: embedding, norms, projections,
 * untied output) and trainable LoRA parameters. */
void msbnb_trainer_count_params(const msbnb_trainer *tr, int64_t *base, int64_t *trainable);

#ifdef __cplusplus
}
#endif
#endif /* MSBNB_TRAIN_H */
