/*
 * model.h — a reference LLaMA model: load, tokenize, forward with a KV cache, generate, perplexity.
 *
 * Usage (greedy generation from a llama2.c checkpoint, NF4 weights with double quantization):
 *
 *     #include <msbnb/model.h>
 *
 *     msbnb_model_params mp = msbnb_model_params_default();
 *     mp.quant = MSBNB_QTYPE_NF4;
 *     mp.double_quant = 1;
 *     msbnb_model *m = NULL;
 *     msbnb_tokenizer *tok = NULL;
 *     if (msbnb_model_load("stories260K.bin", &mp, &m) != MSBNB_OK ||
 *         msbnb_tokenizer_load("tok512.bin", msbnb_model_vocab_size(m), &tok) != MSBNB_OK) {
 *         fprintf(stderr, "msbnb: %s\n", msbnb_last_error());
 *         ...
 *     }
 *     int32_t ids[256]; int n = 0;
 *     msbnb_tokenizer_encode(tok, "Once upon a time", 1, 0, ids, 256, &n);
 *     msbnb_sampler_params sp = msbnb_sampler_params_default();   // greedy
 *     int32_t out[256]; int n_out = 0;
 *     msbnb_model_generate(m, ids, n, 64, &sp, NULL, NULL, out, 256, &n_out);
 *     msbnb_tokenizer_free(tok);
 *     msbnb_model_free(m);
 *
 * Architecture (Touvron et al. 2023; HF LlamaForCausalLM): token embedding -> n_layers x
 * [x += Wo·attn(RoPE(Wq·rms(x)), RoPE(Wk·rms(x)), Wv·rms(x)); x += Wdown·(silu(Wgate·rms(x)) * Wup·rms(x))]
 * -> rms(x) -> logits = Wout·x. Grouped-query attention: n_heads query heads share n_kv_heads
 * key/value heads. RoPE uses HF's rotate_half pairing (element i with i + head_dim/2); llama2.c
 * checkpoints (adjacent pairs) have their q/k rows permuted at load so both give the same logits.
 *
 * Thread safety: a model holds its own KV cache and scratch, so one model handle is used by one
 * thread at a time; kernels inside run on msbnb_get_num_threads() threads and the results do not
 * depend on that number. Tokenizers are read-only after loading and may be shared.
 */
#ifndef MSBNB_MODEL_H
#define MSBNB_MODEL_H

#include "msbnb.h"
#include "kernels.h"
#include "quant.h"
#include "tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct msbnb_model msbnb_model;
/* Defined by nn.h; the model hands out its layers so adapters can be attached to them. */
typedef struct msbnb_linear msbnb_linear;

/* ---------------------------------------------------------------- configuration */

/* Decoder families: one LLaMA-style decoder, parameterised (config.json "model_type"). They
 * differ only in the fields of msbnb_model_config below (biases, q/k norms, sliding window). */
typedef enum msbnb_family {
    MSBNB_FAMILY_LLAMA = 0,   /* "llama" (also llama2.c checkpoints)                          */
    MSBNB_FAMILY_MISTRAL = 1, /* "mistral": sliding_window (default 4096; null = full)        */
    MSBNB_FAMILY_QWEN2 = 2,   /* "qwen2": q/k/v biases; use_sliding_window on the top layers   */
    MSBNB_FAMILY_QWEN3 = 3    /* "qwen3": per-head RMSNorm of q and k; head_dim default 128    */
} msbnb_family;
/* "llama", "mistral", "qwen2", "qwen3"; "?" otherwise. Static string. */
const char *msbnb_family_name(msbnb_family f);

/* RoPE frequency scaling ([rope_parameters] or the older [rope_scaling]; "rope_type" or the older
 * "type"), as transformers' modeling_rope_utils defines each type. */
typedef enum msbnb_rope_type {
    MSBNB_ROPE_DEFAULT = 0, /* theta^(-2i/d)                                                   */
    MSBNB_ROPE_LINEAR = 1,  /* inv_freq / factor                                               */
    MSBNB_ROPE_DYNAMIC = 2, /* NTK: theta grows with the sequence past max_position_embeddings */
    MSBNB_ROPE_YARN = 3,    /* ramp between interpolation and extrapolation, cos/sin scaled    */
    MSBNB_ROPE_LLAMA3 = 4   /* Llama 3.1: low frequencies / factor, a smooth band between      */
} msbnb_rope_type;

typedef struct msbnb_rope_scaling {
    msbnb_rope_type type;
    float factor;            /* [factor] linear, dynamic, yarn, llama3                       */
    float low_freq_factor;   /* [low_freq_factor] llama3                                     */
    float high_freq_factor;  /* [high_freq_factor] llama3                                    */
    int original_max_pos;    /* [original_max_position_embeddings] llama3, yarn (default:   */
                             /* max_position_embeddings)                                     */
    float beta_fast;         /* [beta_fast] yarn (32)                                        */
    float beta_slow;         /* [beta_slow] yarn (1)                                         */
    float attention_factor;  /* yarn: cos/sin multiplier, resolved at parse time from        */
                             /* [attention_factor] or factor / [mscale] / [mscale_all_dim]; 0 */
                             /* in a hand-made config = 1                                    */
    int truncate;            /* [truncate] yarn: integer correction range (default true)     */
} msbnb_rope_scaling;

/* Bits of msbnb_model_config.bias: projections with a bias (1u << msbnb_proj). */
#define MSBNB_BIAS_QKV 0x07u

/* Hyperparameters (HF config.json names in brackets). */
typedef struct msbnb_model_config {
    int dim;         /* [hidden_size]                                                 */
    int hidden_dim;  /* [intermediate_size] SwiGLU width                              */
    int n_layers;    /* [num_hidden_layers]                                           */
    int n_heads;     /* [num_attention_heads]                                         */
    int n_kv_heads;  /* [num_key_value_heads] divides n_heads (GQA); = n_heads if absent */
    int head_dim;    /* [head_dim] default dim / n_heads; must be even                 */
    int vocab_size;  /* [vocab_size]                                                  */
    int seq_len;     /* [max_position_embeddings] longest context                     */
    float norm_eps;  /* [rms_norm_eps] 1e-5 for llama2.c checkpoints                   */
    float rope_theta;/* [rope_theta] or rope_parameters.rope_theta; default 10000      */
    int tied;        /* [tie_word_embeddings] output layer shares the token embedding */
    msbnb_family family;      /* [model_type]                                              */
    unsigned bias;            /* projections with a bias, bit (1u << msbnb_proj): qwen2 q/k/v */
                              /* ([attention_bias] llama: q/k/v/o; [mlp_bias]: gate/up/down)  */
    int qk_norm;              /* qwen3: RMSNorm over each head of q and k before RoPE        */
    int sliding_window;       /* [sliding_window] a query sees the last W positions (itself  */
                              /* included); 0 = all                                          */
    int window_from_layer;    /* layers from this one on use sliding_window (qwen2/qwen3 with */
                              /* use_sliding_window: [max_window_layers] or [layer_types]);  */
                              /* 0 = every layer (mistral)                                   */
    msbnb_rope_scaling rope;  /* zero = default RoPE                                         */
} msbnb_model_config;

/* The seven projections of a decoder layer, in the order PEFT lists them. */
typedef enum msbnb_proj {
    MSBNB_PROJ_Q = 0,    /* [n_heads*head_dim, dim]     model.layers.L.self_attn.q_proj */
    MSBNB_PROJ_K = 1,    /* [n_kv_heads*head_dim, dim]  ...self_attn.k_proj             */
    MSBNB_PROJ_V = 2,    /* [n_kv_heads*head_dim, dim]  ...self_attn.v_proj             */
    MSBNB_PROJ_O = 3,    /* [dim, n_heads*head_dim]     ...self_attn.o_proj             */
    MSBNB_PROJ_GATE = 4, /* [hidden_dim, dim]           model.layers.L.mlp.gate_proj    */
    MSBNB_PROJ_UP = 5,   /* [hidden_dim, dim]           ...mlp.up_proj                  */
    MSBNB_PROJ_DOWN = 6  /* [dim, hidden_dim]           ...mlp.down_proj                */
} msbnb_proj;
#define MSBNB_PROJ_COUNT 7

/* "q_proj", "k_proj", ..., "down_proj"; "?" otherwise. Static string. */
const char *msbnb_proj_name(msbnb_proj p);
/* Parse "q_proj" etc. INVALID_ARG if unknown. */
msbnb_status msbnb_proj_parse(const char *name, msbnb_proj *out);

/* How the linear layers are stored, chosen at load time. */
typedef struct msbnb_model_params {
    /* MSBNB_QTYPE_NONE: keep each projection as stored (fp32 for plain checkpoints; the checkpoint's
     * own format for checkpoints quantized by `msbnb quantize` or bitsandbytes). INT8/INT4/NF4/FP4:
     * quantize the seven projections of every layer (a quantized checkpoint is dequantized first).
     * Norms are fp32; embedding and output layer: see head_quant. */
    msbnb_qtype quant;
    int double_quant;      /* NF4/FP4/INT4: quantize the statistics too (default 0)              */
    int blocksize;         /* NF4/FP4 block size (default 64)                                    */
    int group_size;        /* INT4 group (default 128). A layer whose in_features it does not divide
                            * uses the smallest even divisor of in_features above it, at most one
                            * group per row (stories260K: in 64 with 128 -> 64; down_proj, in 172:
                            * 64 -> 86, 128 -> 172); odd in_features stay fp32.                 */
    float int8_threshold;  /* INT8: LLM.int8() outlier threshold (0 = pure int8). Default -1 = as
                            * stored: an INT8 checkpoint's llm_int8_threshold (also when it is
                            * re-quantized to INT8), 0 for other weights. >= 0 overrides it.     */
    int max_seq_len;       /* KV cache length: 0 = config seq_len, else this (may exceed seq_len:
                            * positions past max_position_embeddings, as transformers allows)  */
    int max_batch;         /* longest prompt chunk processed at once by forward (default 64)     */
    /* Output layer (lm_head, or the tied embedding's use as one): MSBNB_QTYPE_NONE keeps it as the
     * checkpoint stores it (bf16/f16 stay 16-bit: products over fp32 tiles converted on the fly;
     * the embedding stays 16-bit too); INT8 or NF4 quantize it (a tied model gets a quantized
     * copy for the logits, the embedding stays for the lookups). */
    msbnb_qtype head_quant;
} msbnb_model_params;

/* fp32 as stored, blocksize 64, group 128, no threshold, max_batch 64. */
msbnb_model_params msbnb_model_params_default(void);

/* ---------------------------------------------------------------- loading */

/* Load a model. path is either
 *  - a Hugging Face directory with config.json and model.safetensors (fp32/f16/bf16 weights, or
 *    quantized by `msbnb quantize` or by bitsandbytes: 4-bit `weight` + `.absmax`, `.quant_map`,
 *    `.nested_*`, `.quant_state.bitsandbytes__nf4|fp4`; 8-bit `weight` + `SCB`), or
 *  - a llama2.c "v0" checkpoint file (.bin: 7 int32 header dim, hidden_dim, n_layers, n_heads,
 *    n_kv_heads, vocab_size (negative = separate classifier), seq_len, then fp32 weights).
 * params NULL = defaults. *out receives a model the caller frees with msbnb_model_free.
 * Errors: INVALID_ARG, IO, FORMAT (corrupt header, sizes that disagree with the file length or the
 * config, missing tensors), SHAPE, UNSUPPORTED (a quantization the layers cannot do), OUT_OF_MEMORY. */
msbnb_status msbnb_model_load(const char *path, const msbnb_model_params *params, msbnb_model **out);

/* A model with random weights (N(0, 0.02²) projections and embedding, unit norms) for tests and
 * benchmarks; deterministic in seed. cfg->head_dim 0 = dim / n_heads. */
msbnb_status msbnb_model_create_random(const msbnb_model_config *cfg, const msbnb_model_params *params,
                                       uint64_t seed, msbnb_model **out);

void msbnb_model_free(msbnb_model *m);

/* Copy of the hyperparameters. */
msbnb_status msbnb_model_get_config(const msbnb_model *m, msbnb_model_config *cfg);
int msbnb_model_vocab_size(const msbnb_model *m); /* 0 for NULL */
/* Positions the KV cache holds (params.max_seq_len, or seq_len when that is 0). */
int msbnb_model_context_len(const msbnb_model *m);

/* The projection `which` of layer `layer`, owned by the model (borrowed; valid until the model is
 * freed). Use it with nn.h to attach LoRA adapters. NULL if out of range. */
msbnb_linear *msbnb_model_linear(msbnb_model *m, int layer, msbnb_proj which);
/* Product precision of every quantized projection (kernels.h): MSBNB_PRECISION_EXACT (the default
 * after loading) or MSBNB_PRECISION_FAST — bf16 products for prompts of 4+ tokens on AVX512-BF16,
 * int8 activations for 1-2 tokens on AVX512-VNNI or AVX-VNNI (token generation; docs/kernels.md
 * states each mode's error). fp32 projections are unaffected. INVALID_ARG for NULL or another value. */
msbnb_status msbnb_model_set_precision(msbnb_model *m, msbnb_precision precision);
/* Same by HF module name, e.g. "model.layers.3.self_attn.q_proj" (a PEFT prefix such as
 * "base_model.model." is accepted). NOT_FOUND if no such module. */
msbnb_status msbnb_model_find_linear(msbnb_model *m, const char *name, msbnb_linear **out);

/* Bytes of weights held (projections, embedding and output layer in their stored format, norms). */
size_t msbnb_model_weight_bytes(const msbnb_model *m);

/* ---------------------------------------------------------------- forward */

/* Run n tokens at positions pos, pos+1, ..., pos+n-1, reading the KV cache for positions < pos and
 * writing it for the new ones (so call with pos = 0 for a new sequence, then continue). Long n is
 * processed in chunks of max_batch. logits: [n, vocab] if all_logits, else [vocab] for the last
 * token only; may be NULL (prefill without output).
 * Errors: INVALID_ARG (token id out of range, NULL tokens), SHAPE (pos + n > context length). */
msbnb_status msbnb_model_forward(msbnb_model *m, const int32_t *tokens, int n, int pos, float *logits,
                                 int all_logits);

/* ---------------------------------------------------------------- sampling and generation */

typedef struct msbnb_sampler_params {
    float temperature; /* 0 = greedy (argmax, lowest id on ties) — the default                */
    float top_p;       /* nucleus sampling in (0, 1]; 1 = sample from the full distribution */
    uint64_t seed;     /* generator seed (xorshift64*); same seed -> same text             */
    /* Ids that end msbnb_model_generate when sampled (not appended): the tokenizer's EOS set
     * (msbnb_tokenizer_eos_ids). Borrowed; NULL / 0 = none. */
    const int32_t *stop_ids;
    int n_stop;
} msbnb_sampler_params;

msbnb_sampler_params msbnb_sampler_params_default(void); /* greedy, top_p 0.9, seed 42, no stop ids */

/* Pick a token from logits [vocab] (modified in place when sampling: softmax). *rng_state carries
 * the generator between calls (start it at params->seed; 0 is replaced by a fixed constant). */
int32_t msbnb_sample(float *logits, int vocab, const msbnb_sampler_params *params, uint64_t *rng_state);

/* Called with each new token; return non-zero to stop early. */
typedef int (*msbnb_token_callback)(void *ctx, int32_t token);

/* Generate from a prompt (normally starting with the tokenizer's BOS). Resets the KV cache,
 * prefills the prompt, then samples up to `steps` new tokens, stopping when one of
 * params->stop_ids is sampled (not appended), when the context is full, or when the callback
 * asks. out receives prompt + new tokens (at most out_cap); *n_out their count. The callback (may
 * be NULL) sees only new tokens.
 * Errors: INVALID_ARG, SHAPE (prompt longer than the context). */
msbnb_status msbnb_model_generate(msbnb_model *m, const int32_t *prompt, int n_prompt, int steps,
                                  const msbnb_sampler_params *params, msbnb_token_callback cb, void *cb_ctx,
                                  int32_t *out, int out_cap, int *n_out);

/* ---------------------------------------------------------------- perplexity */

typedef struct msbnb_ppl_params {
    /* Document separator: text is split on it, each piece strip()ped (ASCII whitespace), empty pieces
     * skipped, and each encoded with BOS (+ llama2.c dummy-prefix space). NULL or "" = the whole
     * text is one document. Default "<|endoftext|>". */
    const char *separator;
    /* Window length in tokens (0 = context length). A document of n tokens (BOS included) scores
     * tokens 1..n-1. Longer than `window`: windows start every `stride` tokens (0 = window/2);
     * each new window re-runs from position 0 and scores only the tokens not scored yet, so every
     * token after the first window has at least window - stride tokens of context. */
    int window;
    int stride;
    int64_t max_tokens; /* stop after scoring this many tokens (0 = all) */
} msbnb_ppl_params;

msbnb_ppl_params msbnb_ppl_params_default(void);

typedef struct msbnb_ppl_result {
    double nll_sum;     /* Σ -log p(token | context), nats (double accumulation)   */
    int64_t n_tokens;   /* tokens scored                                          */
    int64_t n_docs;     /* documents                                              */
    double mean_nll;    /* nll_sum / n_tokens                                     */
    double perplexity;  /* exp(mean_nll)                                          */
} msbnb_ppl_result;

/* Perplexity of the model over text (UTF-8, len bytes). Errors: INVALID_ARG, OUT_OF_MEMORY,
 * NUMERIC (no token scored). */
msbnb_status msbnb_model_perplexity(msbnb_model *m, const msbnb_tokenizer *tok, const char *text, size_t len,
                                    const msbnb_ppl_params *params, msbnb_ppl_result *result);

/* Tokenizers (llama2.c, tokenizer.json, tokenizer.model): tokenizer.h, included above. */

#ifdef __cplusplus
}
#endif
#endif /* MSBNB_MODEL_H */
