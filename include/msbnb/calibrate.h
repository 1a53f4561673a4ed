/*
 * calibrate.h — calibration-aware quantization of a whole LLaMA checkpoint (docs/quantization.md).
 *
 * The model runs over calibration tokens one decoder layer at a time: for layer l the residual
 * stream of every calibration token (kept as [n_tokens, dim] float32, the only activation kept)
 * goes through the layer in fp32 while the inputs of its projections are summed into
 * H = XᵀX per input (q/k/v share one, gate/up share one; the full matrix when it fits in
 * h_max_bytes, else its diagonal). Then, optionally, AWQ scales are chosen and folded; the seven
 * projections are quantized with the method (msbnb_quantize_opt with those statistics); and the
 * stream is pushed through the QUANTIZED layer, so the next layer calibrates on what it will see.
 * Peak memory: one layer's weights (fp32 + quantized), the stream, the statistics of one layer.
 *
 * AWQ (awq != 0): per input channel j of each group of projections, s_j = a_j^α / √(max a^α · min a^α)
 * with a_j the RMS of input j, α ∈ {0, 0.1, …, 1} chosen for the least output error of RTN on
 * W·diag(s); folded exactly into what precedes the projections — the RMSNorm weight (q/k/v and
 * gate/up), v_proj's rows (o_proj; s tied across the heads sharing a kv head), up_proj's rows
 * (down_proj) — so the output is still a standard checkpoint whose fp32 function is unchanged
 * (changed norm weights; α = 0 leaves a group as it was).
 *
 * Results are bit-identical for every thread count.
 */
#ifndef MSBNB_CALIBRATE_H
#define MSBNB_CALIBRATE_H

#include "io.h"
#include "quant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct msbnb_calib_params {
    msbnb_quant_config cfg;     /* NF4, FP4 or INT4 (group size adapted per layer: msbnb_int4_group_for) */
    msbnb_quant_method method;  /* RTN, SEARCH or GPTQ; method.stats is ignored (filled per layer)     */
    int awq;                    /* fold AWQ scales before quantizing                                   */
    const int32_t *tokens;      /* calibration token ids [n_tokens] (borrowed), cut into sequences     */
    int64_t n_tokens;
    int seq_len;                /* tokens per sequence; 0 = min(512, the model's context)              */
    size_t h_max_bytes;         /* full H only when cols² doubles fit; 0 = 512 MiB                      */
    /* Which projections to quantize (weight name, shape): 1 = yes. NULL = all seven of every layer. */
    int (*select)(void *ctx, const char *weight_name, int64_t rows, int64_t cols);
    void *select_ctx;
} msbnb_calib_params;

/* cfg = msbnb_quant_config_default(type), method GPTQ (defaults), no AWQ, no tokens. */
msbnb_calib_params msbnb_calib_params_default(msbnb_qtype type);

/* Receives each tensor the quantization produced or changed, layer by layer:
 *   q != NULL  a quantized projection (borrowed for the call); values [shape] = the fp32 weight it
 *              approximates (after AWQ scaling), for error statistics;
 *   q == NULL  a plain tensor changed by AWQ (a norm weight [dim], or a projection left
 *              unquantized whose rows or columns were scaled): values [shape] float32.
 * Tensors never passed are unchanged. A non-OK return stops the run with that status. */
typedef msbnb_status (*msbnb_calib_emit_fn)(void *ctx, const char *name, const msbnb_qtensor *q,
                                            const float *values, int ndim, const int64_t *shape);

/* Quantize the projections of the HF LLaMA checkpoint ck (plain F32/F16/BF16 weights) as above.
 * Errors: INVALID_ARG (NULL, no tokens, token out of range, bad cfg/method), FORMAT (not a LLaMA
 * checkpoint, quantized input), UNSUPPORTED (INT8), NUMERIC, OUT_OF_MEMORY, or emit's status. */
msbnb_status msbnb_quantize_checkpoint_calibrated(const msbnb_checkpoint *ck, const msbnb_calib_params *p,
                                                  msbnb_calib_emit_fn emit, void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* MSBNB_CALIBRATE_H */
