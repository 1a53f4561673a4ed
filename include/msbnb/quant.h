/*
 * quant.h — weight formats and the functional quantization API.
 *
 * Formats (msbnb_qtype), all over a logical row-major matrix [rows, cols] (a weight is
 * [out_features, in_features]):
 *
 *  INT8        absmax int8. Symmetric: per row (default) or per tensor, stats = absmax
 *              (bitsandbytes' SCB), code = round_half_even(x * fl(fl(1/absmax) * 127)) in
 *              [-127, 127] (CB), x̂ = ((float)code * absmax) * fl(1/127) — bitsandbytes'
 *              int8_vectorwise_quant / _dequant on CPU bit for bit. Asymmetric: over [min(0, min x), max(0, max x)] per row or
 *              per tensor, uint8 codes 0..255 with an integer zero point:
 *              x̂ = (float)(code - zero_point) * scale, scale = (max - min) / 255.
 *  INT4        per-group int4 along cols (group_size, default 128, even, must divide cols),
 *              scale = absmax / 7, code = round_half_even(x * fl(7 / absmax)) clamped to [-8, 7],
 *              two codes per byte, first element in the HIGH nibble; stats (scales) laid out
 *              [cols/group_size, rows]. x̂ = (float)code * scale.
 *  NF4, FP4    bitsandbytes 4-bit blockwise over the FLATTENED tensor: blocks of blocksize
 *              (32..4096, power of two; default 64), float32 absmax per block (last block partial),
 *              codes chosen by the rule of bitsandbytes' CUDA kernel, element 2i in the high
 *              nibble, odd length padded with the code of 0.0.
 *  BLOCKWISE8  bitsandbytes quantize_blockwise: 8-bit codes into a sorted 256-entry map (default the
 *              signed dynamic map), blocks of blocksize (64..4096) over the flattened tensor.
 *
 * Double quantization (compress_statistics) applies to the per-block statistics of NF4, FP4 and
 * INT4: offset = mean(stats); stats - offset quantized BLOCKWISE8 with the signed dynamic map and
 * nested_blocksize (256); stats ≈ code[q] * nested_absmax[i / 256] + offset.
 *
 * Non-finite inputs: quantize never fails and never has undefined behaviour on them. INT8/INT4:
 * statistics use finite elements only, NaN takes the code of 0.0, ±Inf saturate to the extreme
 * codes (docs/formats_int.md). NF4/FP4/BLOCKWISE8: docs/formats_4bit.md. Exact formulas, rounding
 * and round-trip bounds of INT8/INT4: docs/formats_int.md.
 *
 * Threads: every quantize/dequantize splits rows or blocks over msbnb_get_num_threads() threads
 * with disjoint outputs; results are bit-identical for any thread count and any ISA level.
 * Functions are thread-safe for concurrent calls on distinct outputs (a tensor may be read by many
 * threads at once).
 */
#ifndef MSBNB_QUANT_H
#define MSBNB_QUANT_H

#include "msbnb.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Append-only: values are stored in files. */
typedef enum msbnb_qtype {
    MSBNB_QTYPE_NONE = 0, /* plain float32 (used by layers and files to mean "not quantized") */
    MSBNB_QTYPE_INT8 = 1,
    MSBNB_QTYPE_INT4 = 2,
    MSBNB_QTYPE_NF4 = 3,
    MSBNB_QTYPE_FP4 = 4,
    MSBNB_QTYPE_BLOCKWISE8 = 5
} msbnb_qtype;

/* "int8", "int4", "nf4", "fp4", "blockwise8", "f32"; "?" otherwise. */
const char *msbnb_qtype_name(msbnb_qtype t);
msbnb_status msbnb_qtype_parse(const char *name, msbnb_qtype *out);

/* ---------------------------------------------------------------- code tables (the only copies) */

/* 16-entry NF4 / FP4 tables (index = 4-bit code), as bitsandbytes' get_4bit_type(). Static. */
const float *msbnb_nf4_code(void);
const float *msbnb_fp4_code(void);
/* 256-entry sorted dynamic maps, create_dynamic_map(signed=True/False), byte-identical to
 * bitsandbytes' (../shared/golden/bnb/map_dynamic_*.f32). Static. */
const float *msbnb_dynamic_map_signed(void);
const float *msbnb_dynamic_map_unsigned(void);

/* ---------------------------------------------------------------- configuration */

typedef struct msbnb_quant_config {
    msbnb_qtype type;
    int blocksize;        /* NF4/FP4: 64; BLOCKWISE8: 256. Power of two, 32..4096 (BW8: 64..4096) */
    int group_size;       /* INT4: 128; must divide cols and be even                              */
    int double_quant;     /* NF4/FP4/INT4: quantize the statistics too (bnb compress_statistics)   */
    int nested_blocksize; /* 256                                                                   */
    int asymmetric;       /* INT8: 0 = symmetric absmax (default), 1 = [min,max] -> 0..255          */
    int per_row;          /* INT8: 1 = one scale per row / output channel (default), 0 = per tensor */
    float threshold;      /* INT8: LLM.int8() outlier threshold stored with the tensor (6.0; 0=off) */
    const float *code;    /* BLOCKWISE8: caller's sorted 256-entry map (copied); NULL = signed map  */
} msbnb_quant_config;

/* Documented defaults for a type (the seed's QuantConfig / Int8Config / Int4Config). */
msbnb_quant_config msbnb_quant_config_default(msbnb_qtype type);

/* ---------------------------------------------------------------- the quantized tensor */

typedef struct msbnb_qtensor msbnb_qtensor;

/* Read-only view of a quantized tensor's parts, for serialization and kernels. Pointers belong to
 * the tensor and live as long as it. Shapes:
 *   data        INT8 sym: int8 [rows, cols]; INT8 asym: uint8 [rows, cols];
 *               INT4: packed uint8 [rows, cols/2]; NF4/FP4: packed uint8 [ceil(rows*cols/2)];
 *               BLOCKWISE8: uint8 [rows*cols]
 *   stats       INT8 sym: absmax [rows] (per_row) or [1]; INT8 asym: scale [rows] or [1];
 *               INT4: scale [cols/group_size, rows]; NF4/FP4/BLOCKWISE8: absmax [n_blocks].
 *               NULL when double_quant (then stats_q/nested_* hold them).
 *   zero_point  INT8 asym only: [rows] or [1], values 0..255.
 *   code        NF4/FP4: 16 entries; BLOCKWISE8: 256; else NULL.
 *   stats_q     double_quant: uint8 [n_stats]; nested_absmax: [ceil(n_stats/nested_blocksize)];
 *               nested_code: 256 entries; nested_offset: the mean that was subtracted. */
typedef struct msbnb_qtensor_view {
    msbnb_qtype type;
    int64_t rows, cols;
    int blocksize;       /* NF4/FP4/BLOCKWISE8 */
    int group_size;      /* INT4 */
    int asymmetric;      /* INT8 */
    int per_row;         /* INT8 */
    float threshold;     /* INT8 */
    const uint8_t *data;
    size_t data_bytes;
    const float *stats;
    size_t n_stats;
    const int32_t *zero_point;
    const float *code;
    int code_len;
    int double_quant;
    int nested_blocksize;
    const uint8_t *stats_q;
    const float *nested_absmax;
    size_t n_nested;
    const float *nested_code;
    float nested_offset;
} msbnb_qtensor_view;

/* Quantize w [rows, cols] (float32, row-major) with cfg (NULL = defaults of NF4).
 * *out receives a new tensor the caller frees with msbnb_qtensor_free.
 * Errors: INVALID_ARG (NULL, bad blocksize/group size), SHAPE (group size not dividing cols,
 * zero or overflowing sizes), OUT_OF_MEMORY. */
msbnb_status msbnb_quantize(const float *w, int64_t rows, int64_t cols, const msbnb_quant_config *cfg,
                            msbnb_qtensor **out);
/* Same from fp16 / bf16 input (w points to uint16 bit patterns when dtype is F16/BF16; F32 is
 * msbnb_quantize). The input is widened exactly into a temporary float32 copy of rows*cols, so the
 * codes equal those of msbnb_quantize on the widened values (bitsandbytes computes in float32 too).
 * Errors: as msbnb_quantize, plus INVALID_ARG for an unknown dtype. */
msbnb_status msbnb_quantize_ex(const void *w, msbnb_dtype dtype, int64_t rows, int64_t cols,
                               const msbnb_quant_config *cfg, msbnb_qtensor **out);
/* ---------------------------------------------------------------- error-minimising methods */
/* Any block scale and any codes make a valid NF4/FP4/INT4 tensor (bitsandbytes, transformers and
 * msbnb load it unchanged), so these methods write the same formats with lower error
 * (docs/quantization.md):
 *   RTN     round to nearest with the absmax scale: msbnb_quantize, byte-exact with bitsandbytes.
 *   SEARCH  per block, the scale (and its codes) of least squared error, weighted by per-input
 *           importance when stats are given (diag of XᵀX); never a larger block error than RTN.
 *           With double quant the search runs over the scales the 8-bit statistic codes can
 *           represent (RTN's nested absmax and offset), so the stored scale is the searched one.
 *   GPTQ    columns quantized in order, each column's error spread over the columns not yet
 *           quantized through the Cholesky factor of (H + damp·mean(diag H)·I)⁻¹, lazy batches of
 *           `gptq_batch` columns; a block's scale is fixed (by SEARCH on the current values) when
 *           its first column is reached. Needs stats->h; with only a diagonal it is SEARCH.
 * Only NF4, FP4 and INT4 (with or without double quant) take SEARCH/GPTQ (UNSUPPORTED otherwise).
 * Results are bit-identical for every thread count. */
typedef enum msbnb_qmethod {
    MSBNB_QMETHOD_RTN = 0,
    MSBNB_QMETHOD_SEARCH = 1,
    MSBNB_QMETHOD_GPTQ = 2
} msbnb_qmethod;

/* Statistics of a linear layer's inputs X [n_samples, cols] (calibration activations). Borrowed. */
typedef struct msbnb_input_stats {
    int64_t cols;
    int64_t n_samples;
    const double *h;      /* [cols, cols] XᵀX, row-major symmetric; NULL when only the diagonal is kept */
    const double *h_diag; /* [cols] diagonal of XᵀX; read when h is NULL (may be NULL too: no stats)  */
} msbnb_input_stats;

typedef struct msbnb_quant_method {
    msbnb_qmethod method;
    const msbnb_input_stats *stats; /* optional for SEARCH (importance), needed by GPTQ; NULL = none */
    float damp;                     /* GPTQ damping λ (default 0.01)                                   */
    int gptq_batch;                 /* GPTQ lazy-update batch in columns (default 128)                 */
} msbnb_quant_method;

/* RTN, no stats, damp 0.01, batch 128. */
msbnb_quant_method msbnb_quant_method_default(void);
/* "rtn", "search", "gptq"; "?" otherwise. Parse: INVALID_ARG if unknown. */
const char *msbnb_qmethod_name(msbnb_qmethod m);
msbnb_status msbnb_qmethod_parse(const char *name, msbnb_qmethod *out);

/* msbnb_quantize with a method (m NULL = RTN, identical to msbnb_quantize). w [rows, cols] float32.
 * Errors: as msbnb_quantize; INVALID_ARG (stats->cols != cols, non-finite or negative h diagonal,
 * damp outside [0, 10], batch < 1), UNSUPPORTED (a method other than RTN for INT8/BLOCKWISE8),
 * NUMERIC (H not positive definite even after raising the damping). */
msbnb_status msbnb_quantize_opt(const float *w, int64_t rows, int64_t cols, const msbnb_quant_config *cfg,
                                const msbnb_quant_method *m, msbnb_qtensor **out);

/* Output error of a quantized layer against its float weights on the statistics:
 * Σ_r (ŵ_r - w_r)ᵀ H (ŵ_r - w_r) with the full H, or Σ_rj H_jj (ŵ_rj - w_rj)² with the diagonal;
 * stats NULL = plain squared error. Double accumulation in a fixed order. */
msbnb_status msbnb_quant_output_error(const float *w, const msbnb_qtensor *q, const msbnb_input_stats *stats,
                                      double *err);

/* The seed's names: quantize_8bit (INT8 defaults), quantize_4bit (cfg->type INT4/NF4/FP4). */
msbnb_status msbnb_quantize_8bit(const float *w, int64_t rows, int64_t cols, const msbnb_quant_config *cfg,
                                 msbnb_qtensor **out);
msbnb_status msbnb_quantize_4bit(const float *w, int64_t rows, int64_t cols, const msbnb_quant_config *cfg,
                                 msbnb_qtensor **out);

/* Dequantize into out [rows*cols] float32 (caller-allocated). With double quantization the
 * statistics are reconstructed first (a temporary of n_stats floats).
 * Errors: INVALID_ARG (NULL), OUT_OF_MEMORY. */
msbnb_status msbnb_dequantize(const msbnb_qtensor *q, float *out);
/* Dequantize into fp16/bf16/f32 (out has rows*cols elements of dtype): the float32 result of
 * msbnb_dequantize rounded to nearest even (as bitsandbytes' dequantize to fp16/bf16). Scratch
 * is ~64K floats. Errors: INVALID_ARG (NULL, unknown dtype), OUT_OF_MEMORY. */
msbnb_status msbnb_dequantize_ex(const msbnb_qtensor *q, msbnb_dtype dtype, void *out);
/* Dequantize rows [row0, row0+nrows) only, into out [nrows, cols]; equal to that slice of
 * msbnb_dequantize. nrows 0 is a no-op. Errors: INVALID_ARG (NULL), SHAPE (range outside
 * [0, rows)), OUT_OF_MEMORY. */
msbnb_status msbnb_dequantize_rows(const msbnb_qtensor *q, int64_t row0, int64_t nrows, float *out);

/* Build a tensor from parts, e.g. read from a bitsandbytes checkpoint. Every buffer is copied (the
 * view is borrowed for the call); every size is checked against type, shape and parameters.
 * view->code: NF4/FP4 NULL or the built-in table; BLOCKWISE8 NULL (signed dynamic map) or the
 * 256-entry map used. Errors: INVALID_ARG (NULL view/out/buffer, bad type or parameters),
 * SHAPE (shape, data_bytes, n_stats or n_nested inconsistent), FORMAT (zero point outside 0..255,
 * INT scale negative or not finite, foreign NF4/FP4 table, non-finite nested_offset),
 * OUT_OF_MEMORY. On failure *out is NULL. */
msbnb_status msbnb_qtensor_from_view(const msbnb_qtensor_view *view, msbnb_qtensor **out);
/* Zero-copy constructor: a tensor that BORROWS the view's buffers (data, stats, zero_point,
 * stats_q, nested_absmax, nested_code and a BLOCKWISE8 code map). Nothing is copied; the caller
 * keeps ownership and must keep every buffer alive and unchanged until msbnb_qtensor_free(*out)
 * (which then releases only the small handle). Checks are O(1): type, parameters, shape, the
 * sizes data_bytes / n_stats / n_nested, the buffers the format needs being non-NULL, threshold
 * and nested_offset finite, a stored NF4/FP4 table equal to the built-in one (16 floats). The
 * float and int32 buffers must be 4-byte aligned (their natural alignment: what a safetensors
 * memory map or numpy gives); data has no alignment requirement. Every kernel, dequantize and
 * statistics function accepts such a tensor (tests run them on 4-byte-aligned buffers).
 * The O(n) value checks of msbnb_qtensor_from_view are NOT run: call msbnb_qtensor_validate once
 * on untrusted buffers (e.g. after loading a file); on unvalidated bad scales or zero points
 * results are wrong but memory-safe. Errors: as msbnb_qtensor_from_view (INVALID_ARG, SHAPE,
 * FORMAT) plus INVALID_ARG for a misaligned float/int32 buffer, OUT_OF_MEMORY (the handle).
 * On failure *out is NULL. */
msbnb_status msbnb_qtensor_wrap(const msbnb_qtensor_view *view, msbnb_qtensor **out);
/* The O(n) checks of the values, for a tensor made by msbnb_qtensor_wrap: INT8 asymmetric zero
 * points in 0..255; INT8/INT4 scales finite and >= 0 (the same checks msbnb_qtensor_from_view
 * runs). Errors: INVALID_ARG (NULL), FORMAT (the first bad value, with its index). */
msbnb_status msbnb_qtensor_validate(const msbnb_qtensor *q);
/* Fill *view with pointers into q (valid while q lives; read-only). */
msbnb_status msbnb_qtensor_get_view(const msbnb_qtensor *q, msbnb_qtensor_view *view);
/* Deep copy of q's format data (not of a kernel_pack made by msbnb_qtensor_prepare). */
msbnb_status msbnb_qtensor_clone(const msbnb_qtensor *q, msbnb_qtensor **out);
/* Release q and everything it owns; NULL is a no-op. */
void msbnb_qtensor_free(msbnb_qtensor *q);

/* ---------------------------------------------------------------- statistics */

typedef struct msbnb_error_stats {
    double mse;                /* mean squared error                                  */
    double max_abs_error;      /* max |x - x̂|                                         */
    double relative_error_pct; /* 100 * ||x - x̂||₂ / ||x||₂                            */
    double snr_db;             /* 10 log10(Σx² / Σ(x - x̂)²); +inf when exact          */
} msbnb_error_stats;

/* Error of approx against ref, n elements (double accumulation in element order, so the result
 * does not depend on threads or ISA). Exact match: mse 0, relative 0, snr +inf; zero reference
 * with error: relative +inf, snr -inf; NaN inputs propagate. Errors: INVALID_ARG, SHAPE (n 0). */
msbnb_status msbnb_error_stats_compute(const float *ref, const float *approx, size_t n, msbnb_error_stats *st);
/* Error of dequantize(q) against ref [rows*cols] (allocates rows*cols floats). */
msbnb_status msbnb_estimate_quantization_error(const float *ref, const msbnb_qtensor *q, msbnb_error_stats *st);

typedef struct msbnb_quant_info {
    msbnb_qtype type;
    int64_t rows, cols;
    int blocksize, group_size, double_quant, asymmetric, per_row;
    size_t data_bytes;       /* packed codes                                      */
    size_t stats_bytes;      /* scales/absmax/zero points/nested statistics/maps  */
    size_t total_bytes;
    double bits_per_weight;  /* 8 * total_bytes / (rows*cols), maps excluded (they are shared) */
    double compression_vs_f32;
    double compression_vs_f16;
} msbnb_quant_info;

/* Storage of q as stored: codes, float32 scales/absmax, int32 zero points; with double quant the
 * uint8 statistic codes, float32 nested absmax and the float32 offset (code tables excluded).
 * NF4 bs64: 4.5 bits/weight; with double quant 4 + 8/64 + 32/16384 ≈ 4.127; INT8 per row 8 + 32/cols. */
msbnb_status msbnb_get_quantization_info(const msbnb_qtensor *q, msbnb_quant_info *info);

/* ---------------------------------------------------------------- flat-buffer format functions */
/* BLAS-like: caller allocates every buffer; shapes in the comments. n is a flat element count. */

/* NF4/FP4 blockwise (bitsandbytes quantize_4bit / dequantize_4bit, byte-identical to its CUDA rule).
 *   x, y    float32 [n]                       (borrowed; y caller-allocated)
 *   packed  uint8 [(n+1)/2], element 2i in the HIGH nibble, odd n padded with the code of 0.0
 *   absmax  float32 [ceil(n/blocksize)], last block partial
 * type: MSBNB_QTYPE_NF4 or MSBNB_QTYPE_FP4; blocksize: power of two in [32, 4096].
 * Codes: s = x * (1.0f/absmax) in float32, strict '>' against the float32 thresholds of
 * dQuantizeNF4/dQuantizeFP4 (ties -> lower code). Dequantize: y = code[c] * absmax.
 * Non-finite policy (docs/formats_4bit.md): absmax ignores NaN and is clamped to FLT_MAX; a block
 * whose 1/absmax is not finite (all zero, all NaN, absmax < 2^-128) gets the code of 0.0 everywhere;
 * NaN elements get the code of 0.0; ±Inf saturate to the ±1 codes.
 * Multi-threaded over blocks (msbnb_set_num_threads); output identical for any thread count and ISA.
 * Errors: INVALID_ARG (type, blocksize, NULL buffer), SHAPE (n == 0, n * 4 overflows size_t). */
msbnb_status msbnb_quantize_4bit_blockwise(msbnb_qtype type, const float *x, size_t n, int blocksize,
                                           uint8_t *packed, float *absmax);
msbnb_status msbnb_dequantize_4bit_blockwise(msbnb_qtype type, const uint8_t *packed, const float *absmax,
                                             size_t n, int blocksize, float *y);

/* 8-bit blockwise (bitsandbytes quantize_blockwise): q uint8 [n] indices into code, absmax
 * float32 [ceil(n/blocksize)], blocksize a power of two in [64, 4096].
 * code: 256 float32 (borrowed), NULL = msbnb_dynamic_map_signed(). Quantization requires it sorted
 * ascending and NaN-free (INVALID_ARG otherwise); dequantization accepts any map.
 * Codes: exact nearest entry to s = x * (1.0f/absmax) by the CUDA kernel's dQuantize<0> (binary
 * search, float32 midpoints, ties to the even index); same non-finite policy as NF4/FP4.
 * Dequantize: y = code[q] * absmax. Errors as for the 4-bit functions. */
msbnb_status msbnb_quantize_blockwise8(const float *code, const float *x, size_t n, int blocksize,
                                       uint8_t *q, float *absmax);
msbnb_status msbnb_dequantize_blockwise8(const float *code, const uint8_t *q, const float *absmax, size_t n,
                                         int blocksize, float *y);

/* Double quantization (bitsandbytes compress_statistics) of a statistics vector s float32 [n]:
 *   *offset = mean(s), summed in double in index order and rounded once to float32 (reproduces
 *             bitsandbytes' torch float32 mean on its golden vectors);
 *   q uint8 [n] and nested_absmax float32 [ceil(n/nested_blocksize)] = BLOCKWISE8 of the float32
 *             differences s - offset with the signed dynamic map.
 * Dequantize: s[i] = nested_code[q[i]] * nested_absmax[i/nested_blocksize] (rounded) + offset;
 * nested_code NULL = the signed dynamic map. nested_blocksize: power of two in [64, 4096] (256).
 * Errors: as BLOCKWISE8, plus NUMERIC when a statistic is NaN or ±Inf. */
msbnb_status msbnb_double_quantize(const float *s, size_t n, int nested_blocksize, uint8_t *q,
                                   float *nested_absmax, float *offset);
msbnb_status msbnb_double_dequantize(const uint8_t *q, const float *nested_absmax, float offset,
                                     const float *nested_code, size_t n, int nested_blocksize, float *s);

/* INT4 group size to use for a matrix with `cols` columns when `requested` may not divide it:
 * `requested` if it divides cols; otherwise the smallest even divisor of cols above it (cols
 * itself — one group per row — when requested >= cols). Rounding up keeps the scale overhead at
 * or below the requested one (stories260K's down_proj, cols 172: 128 -> 172, 64 -> 86).
 * Returns 0 when cols is odd or < 2 (INT4 cannot pack it; keep that layer unquantized) or
 * requested < 2. The converter and the model loader both use this one rule. */
int msbnb_int4_group_for(int64_t cols, int requested);

/* INT4 nibble packing, first element in the high nibble: codes int8 [n] in [-8,7] <-> packed [(n+1)/2]. */
msbnb_status msbnb_int4_pack(const int8_t *codes, size_t n, uint8_t *packed);
msbnb_status msbnb_int4_unpack(const uint8_t *packed, size_t n, int8_t *codes);

/* INT8 symmetric absmax (bitsandbytes CB/SCB rule, docs/formats_int.md): x [rows, cols] ->
 * codes int8 [rows, cols], absmax [rows] (per_row != 0) or [1] (per tensor).
 * code = round_half_even(x * ((1.0f / absmax) * 127.0f)), x̂ = ((float)code * absmax) * (1.0f / 127.0f).
 * NaN -> 0, ±Inf -> ±127, statistics over finite elements. Errors: INVALID_ARG (NULL),
 * SHAPE (rows/cols <= 0, > 2^40 or overflowing). Threads over rows; thread-count invariant. */
msbnb_status msbnb_quantize_int8(const float *x, int64_t rows, int64_t cols, int per_row, int8_t *codes,
                                 float *absmax);
msbnb_status msbnb_dequantize_int8(const int8_t *codes, const float *absmax, int64_t rows, int64_t cols,
                                   int per_row, float *y);
/* INT8 asymmetric: codes uint8 [rows, cols], scale and zero_point [rows] or [1] (zero_point 0..255).
 * x̂ = (float)(code - zero_point) * scale. Same errors; dequantize also rejects zero points outside
 * 0..255 with INVALID_ARG. */
msbnb_status msbnb_quantize_int8_asym(const float *x, int64_t rows, int64_t cols, int per_row, uint8_t *codes,
                                      float *scale, int32_t *zero_point);
msbnb_status msbnb_dequantize_int8_asym(const uint8_t *codes, const float *scale, const int32_t *zero_point,
                                        int64_t rows, int64_t cols, int per_row, float *y);
/* INT4 per group: x [rows, cols] -> packed [rows, cols/2] (first element high nibble), scales
 * [cols/group_size, rows] (scale = absmax/7; code = round_half_even(x * (7.0f/absmax)) in [-8, 7]).
 * Errors: INVALID_ARG (NULL, group_size <= 0 or odd), SHAPE (group_size not dividing cols, sizes). */
msbnb_status msbnb_quantize_int4(const float *x, int64_t rows, int64_t cols, int group_size, uint8_t *packed,
                                 float *scales);
msbnb_status msbnb_dequantize_int4(const uint8_t *packed, const float *scales, int64_t rows, int64_t cols,
                                   int group_size, float *y);

#ifdef __cplusplus
}
#endif
#endif /* MSBNB_QUANT_H */
