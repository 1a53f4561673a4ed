/*
 * convert.h — whole checkpoints: quantize a model (what `msbnb quantize` does) or dequantize one
 * (`msbnb dequantize`), streamed tensor by tensor, the output written whole or not at all.
 *
 * Usage (an HF model directory to NF4 + double quant, then the per-layer table):
 *
 *     #include <msbnb/convert.h>
 *
 *     msbnb_quantize_params p = msbnb_quantize_params_default(MSBNB_QTYPE_NF4);
 *     p.cfg.double_quant = 1;
 *     msbnb_quantize_report *rep = NULL;
 *     if (msbnb_quantize_model("models/llama", "models/llama-nf4", &p, &rep) != MSBNB_OK) {
 *         fprintf(stderr, "%s\n", msbnb_last_error());      // one line; nothing left at OUT
 *         return 1;
 *     }
 *     for (size_t i = 0; i < msbnb_quantize_report_count(rep); i++) {
 *         msbnb_quantize_row r;
 *         msbnb_quantize_report_get(rep, i, &r);            // name, shape, bytes, rel.err, SNR
 *     }
 *     msbnb_quantize_report_free(rep);
 *
 * IN and OUT are both Hugging Face model directories (config.json + model.safetensors or shards;
 * OUT gets one model.safetensors, config.json with transformers' quantization_config, and the
 * other side files) or both .safetensors files. The linear layers' weights (2-D floating-point
 * "*.weight" tensors other than embeddings and norms, narrowed by targets / skip) are written in
 * the bitsandbytes layouts of io.h (NF4/FP4: Linear4bit, INT8: Linear8bitLt) or msbnb's INT4;
 * every other tensor is copied unchanged. The bytes are those `msbnb quantize` writes for the same
 * settings, for every thread count.
 *
 * Memory: each input tensor is read from the memory map, converted, handed to the writer's spill
 * file and its pages released, so resident memory stays near the largest tensor (a calibrated run:
 * one decoder layer; after each calibrated projection glibc's free heap pages are handed back).
 * Output: a directory is written beside OUT and swapped into place (msbnb_outdir, io.h); a file
 * through a temporary name and a rename. On failure nothing of this run is left and a previous
 * OUT stays as it was.
 *
 * Errors: msbnb_status with a one-line msbnb_last_error(). Messages name what they are about (the
 * parameter, the file, the tensor and its byte offset) and carry no function prefix, so a tool can
 * print them after its own name. INVALID_ARG: bad parameters (msbnb_quantize_model_check says so
 * before anything is opened or written); IO: unreadable input, OUT that would overwrite IN, write
 * failures; FORMAT: malformed or already-quantized input; OUT_OF_MEMORY; or a step's own status.
 */
#ifndef MSBNB_CONVERT_H
#define MSBNB_CONVERT_H

#include "calibrate.h"
#include "io.h"
#include "quant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- progress */

typedef enum msbnb_convert_stage {
    MSBNB_CONVERT_CALIBRATING = 0, /* once, before the calibrated pass: calib_tokens is set */
    MSBNB_CONVERT_TENSOR = 1       /* done = 0 before the first tensor, then after each one */
} msbnb_convert_stage;

typedef struct msbnb_convert_progress {
    msbnb_convert_stage stage;
    size_t done, total;    /* tensors of IN handled so far / in all                        */
    uint64_t bytes;        /* bytes of IN's tensor just handled (0 when done = 0)           */
    uint64_t bytes_total;  /* bytes of every tensor of IN                                   */
    int64_t calib_tokens;  /* CALIBRATING: how many tokens the model runs over              */
} msbnb_convert_progress;

/* Called on the converting thread; p is borrowed for the call. */
typedef void (*msbnb_convert_progress_fn)(void *ctx, const msbnb_convert_progress *p);

/* ---------------------------------------------------------------- quantize */

typedef struct msbnb_quantize_params {
    msbnb_quant_config cfg;       /* type, blocksize (NF4/FP4), group_size (INT4; a layer whose width it
                                   * does not divide uses msbnb_int4_group_for), double_quant (not INT8),
                                   * threshold (INT8: LLM.int8() threshold recorded in the config)     */
    msbnb_qmethod method;         /* RTN (bitsandbytes' rule), SEARCH or GPTQ (needs calib_text); not INT8 */
    int awq;                      /* fold AWQ scales first (needs calib_text); not INT8               */
    const char *const *skip;      /* module patterns kept unquantized [n_skip]; default {"lm_head"}   */
    size_t n_skip;
    const char *const *targets;   /* module patterns to quantize [n_targets]; 0 = every linear layer  */
    size_t n_targets;             /* A pattern is a dotted name part ("q_proj", "layers.0") or a glob
                                   * (*, ?, [...]) over the whole module path ("*.mlp.*").            */
    const char *calib_text;       /* calibration text file (model directories only); NULL = none. The
                                   * model runs over it layer by layer to collect each layer's input
                                   * statistics (GPTQ, AWQ; SEARCH weights its error with them)       */
    const char *tokenizer;        /* tokenizer for calib_text; NULL = the one found in or above IN    */
    int64_t calib_tokens;         /* tokens taken from calib_text, 2..2^30 (default 4096)             */
    int calib_seq;                /* tokens per calibration sequence; 0 = min(512, model context)     */
    msbnb_convert_progress_fn progress; /* NULL = none                                               */
    void *progress_ctx;
} msbnb_quantize_params;

/* cfg = msbnb_quant_config_default(type), RTN, no AWQ, skip {"lm_head"} (static storage), no
 * targets, no calibration, calib_tokens 4096, calib_seq 0, no progress. */
msbnb_quantize_params msbnb_quantize_params_default(msbnb_qtype type);

/* "rtn", "search", "gptq", "awq" (= awq+rtn), "awq+rtn", "awq+search", "awq+gptq" -> *method, *awq.
 * INVALID_ARG otherwise. */
msbnb_status msbnb_quantize_method_parse(const char *spec, msbnb_qmethod *method, int *awq);
/* The spec of a method (as parse reads it): "gptq", "awq+search", ... Static string. */
const char *msbnb_quantize_method_name(msbnb_qmethod method, int awq);

/* Validate the parameters and the IN/OUT pair without touching the file system beyond stat():
 * blocksize (power of two 32..4096), group_size (even, >= 2), double_quant / methods / AWQ not
 * with INT8, GPTQ / AWQ need calib_text and calib_text needs SEARCH, GPTQ or AWQ, calib_tokens
 * 2..2^30, calib_seq 0..2^20, patterns non-empty, an IN file needs an OUT file, calibration needs
 * an IN directory. Returns INVALID_ARG with a one-line message naming the parameter. */
msbnb_status msbnb_quantize_model_check(const char *in, const char *out, const msbnb_quantize_params *p);

typedef struct msbnb_quantize_report msbnb_quantize_report;

/* Quantize IN into OUT (see above). p NULL = msbnb_quantize_params_default(NF4). report may be
 * NULL; on success *report is a new report (caller frees), on failure NULL. Not reentrant on the
 * same OUT. */
msbnb_status msbnb_quantize_model(const char *in, const char *out, const msbnb_quantize_params *p,
                                  msbnb_quantize_report **report);

/* One linear layer of IN (2-D floating-point weight), in IN's order. Strings belong to the report. */
typedef struct msbnb_quantize_row {
    const char *name;        /* the weight's name                                                 */
    int64_t shape[2];        /* [out_features, in_features]                                       */
    uint64_t bytes_before;   /* in IN                                                             */
    uint64_t bytes_after;    /* in OUT: the weight and every auxiliary entry written for it       */
    double rel_err_pct;      /* 100 ||W - deq(Q)|| / ||W|| (0 when kept)                          */
    double snr_db;           /* 10 log10(ΣW² / Σ(W - deq(Q))²); +inf when exact (0 when kept)     */
    const char *kept;        /* NULL when quantized, else why not (static string): "in the skip list",
                              * "not in the target list", "odd column count (int4)",
                              * "empty (no element to quantize)", "kept plain (AWQ-scaled)"        */
    int group_size;          /* INT4: the group size used when it differs from cfg.group_size, else 0 */
} msbnb_quantize_row;

typedef struct msbnb_quantize_totals {
    uint64_t bytes_before;   /* every tensor of IN                                                */
    uint64_t bytes_after;    /* every tensor written to OUT's safetensors                         */
    size_t n_quantized;      /* linear layers quantized                                           */
    size_t n_kept;           /* linear layers kept as they were                                   */
    size_t n_other;          /* other tensors (embeddings, norms, ...) copied                     */
    int64_t calib_tokens;    /* calibration tokens the model ran over (0 without calibration)     */
} msbnb_quantize_totals;

size_t msbnb_quantize_report_count(const msbnb_quantize_report *r);
/* Row i; INVALID_ARG when i is out of range. */
msbnb_status msbnb_quantize_report_get(const msbnb_quantize_report *r, size_t i, msbnb_quantize_row *row);
void msbnb_quantize_report_totals(const msbnb_quantize_report *r, msbnb_quantize_totals *out);
void msbnb_quantize_report_free(msbnb_quantize_report *r);

/* ---------------------------------------------------------------- dequantize */

typedef struct msbnb_dequantize_params {
    int dtype;               /* msbnb_dtype of the dequantized weights; -1 = the dtype of IN's plain
                              * floating-point tensors (embedding, norms), F32 when it has none    */
    msbnb_convert_progress_fn progress;
    void *progress_ctx;
} msbnb_dequantize_params;

typedef struct msbnb_dequantize_result {
    size_t n_dequantized;    /* quantized weights turned back into plain ones                     */
    msbnb_dtype dtype;       /* their dtype                                                       */
} msbnb_dequantize_result;

/* Validate p (dtype) and the IN/OUT pair (an IN file needs an OUT file) without opening anything:
 * INVALID_ARG with a one-line message. p NULL = defaults. */
msbnb_status msbnb_dequantize_model_check(const char *in, const char *out, const msbnb_dequantize_params *p);
/* Turn a quantized checkpoint (msbnb's, or bitsandbytes' / transformers') back into plain weights
 * of their original shape; auxiliary entries are dropped, every other tensor copied, config.json
 * loses its quantization_config. IN/OUT as for msbnb_quantize_model. p NULL = dtype -1, no
 * progress; result may be NULL. */
msbnb_status msbnb_dequantize_model(const char *in, const char *out, const msbnb_dequantize_params *p,
                                    msbnb_dequantize_result *result);

#ifdef __cplusplus
}
#endif
#endif /* MSBNB_CONVERT_H */
