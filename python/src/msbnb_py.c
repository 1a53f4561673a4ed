/*
 * msbnb_py.c — the flat C shim the Python package loads with ctypes (msbnb/_native.py).
 *
 * Compiled with libmsbnb (static) into one shared library inside the package
 * (msbnb/_msbnb_native.so). Every entry point is a plain C function over pointers, integers and
 * the public structs of include/msbnb/, so no CPython API and no Python ABI is involved.
 *
 * Errors: every function that can fail returns msbnb_status; on failure it copies msbnb's message
 * into the shim's OWN thread-local buffer, read by msbnb_py_last_error(). Python reads it right
 * after the failing call on the same thread; keeping a copy means a message cannot be replaced
 * by another library call (e.g. a cleanup) in between.
 *
 * Buffers: every pointer argument is borrowed for the call, with the shapes of the C function it
 * forwards to (quant.h, kernels.h, io.h). Handles returned through `out` belong to the caller
 * (Python frees them with msbnb_py_qtensor_free / msbnb_py_checkpoint_close / ...).
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <msbnb/convert.h>
#include <msbnb/io.h>
#include <msbnb/kernels.h>
#include <msbnb/quant.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define MSBNB_PY_API __attribute__((visibility("default")))

/* Bumped whenever a signature below or a mirrored struct (msbnb/_native.py) changes. */
#define MSBNB_PY_ABI 3

static _Thread_local char py_err[1024];

/* Keep a copy of the message of a failure; pass the status through. */
static int rec(msbnb_status st) {
    if (st != MSBNB_OK) snprintf(py_err, sizeof py_err, "%s", msbnb_last_error());
    return (int)st;
}

static int fail(msbnb_status st, const char *msg) {
    snprintf(py_err, sizeof py_err, "%s", msg);
    return (int)st;
}

MSBNB_PY_API const char *msbnb_py_last_error(void) { return py_err; }

/* ABI check for the loader: the shim's version and the sizes of the structs Python mirrors. */
MSBNB_PY_API int msbnb_py_abi(size_t *view_size, size_t *info_size) {
    *view_size = sizeof(msbnb_qtensor_view);
    *info_size = sizeof(msbnb_quant_info);
    return MSBNB_PY_ABI;
}

MSBNB_PY_API const char *msbnb_py_version(void) { return msbnb_version_string(); }
MSBNB_PY_API const char *msbnb_py_isa(void) { return msbnb_isa_name(msbnb_isa_current()); }
MSBNB_PY_API void msbnb_py_set_num_threads(int n) { msbnb_set_num_threads(n); }
MSBNB_PY_API int msbnb_py_get_num_threads(void) { return msbnb_get_num_threads(); }

/* Code tables (static, 16 or 256 floats): 0 NF4, 1 FP4, 2 signed dynamic map, 3 unsigned. */
MSBNB_PY_API const float *msbnb_py_code_table(int which) {
    switch (which) {
    case 0: return msbnb_nf4_code();
    case 1: return msbnb_fp4_code();
    case 2: return msbnb_dynamic_map_signed();
    case 3: return msbnb_dynamic_map_unsigned();
    default: return NULL;
    }
}

/* n fp16 (dtype 1) or bf16 (dtype 2) bit patterns -> float32, exactly. */
MSBNB_PY_API void msbnb_py_half_to_f32(const uint16_t *src, int dtype, float *dst, size_t n) {
    if (dtype == MSBNB_DTYPE_F16) msbnb_f16_to_f32_array(src, dst, n);
    else msbnb_bf16_to_f32_array(src, dst, n);
}

/* ---------------------------------------------------------------- quantized tensors */

/* Quantize w [rows, cols] of dtype (msbnb_dtype: 0 f32, 1 f16, 2 bf16 bit patterns) with the
 * configuration given field by field (quant.h, msbnb_quant_config; code: the default maps). */
MSBNB_PY_API int msbnb_py_quantize(const void *w, int dtype, int64_t rows, int64_t cols, int type, int blocksize,
                                   int group_size, int double_quant, int nested_blocksize, int asymmetric, int per_row,
                                   float threshold, msbnb_qtensor **out) {
    msbnb_quant_config c = msbnb_quant_config_default((msbnb_qtype)type);
    c.blocksize = blocksize;
    c.group_size = group_size;
    c.double_quant = double_quant;
    c.nested_blocksize = nested_blocksize;
    c.asymmetric = asymmetric;
    c.per_row = per_row;
    c.threshold = threshold;
    return rec(msbnb_quantize_ex(w, (msbnb_dtype)dtype, rows, cols, &c, out));
}

/* msbnb_quantize_opt (quant.h) on float32 w [rows, cols]: method 0 RTN, 1 SEARCH, 2 GPTQ; input
 * statistics h [cols, cols] (XᵀX) or h_diag [cols] (per-input importance), either or both NULL
 * (no statistics), over n_samples rows of X. Configuration as msbnb_py_quantize. */
MSBNB_PY_API int msbnb_py_quantize_opt(const float *w, int64_t rows, int64_t cols, int type, int blocksize,
                                       int group_size, int double_quant, int nested_blocksize, int method,
                                       const double *h, const double *h_diag, int64_t n_samples, msbnb_qtensor **out) {
    msbnb_quant_config c = msbnb_quant_config_default((msbnb_qtype)type);
    c.blocksize = blocksize;
    c.group_size = group_size;
    c.double_quant = double_quant;
    c.nested_blocksize = nested_blocksize;
    msbnb_quant_method m = msbnb_quant_method_default();
    m.method = (msbnb_qmethod)method;
    msbnb_input_stats stats = {cols, n_samples, h, h_diag};
    if (h || h_diag) m.stats = &stats;
    return rec(msbnb_quantize_opt(w, rows, cols, &c, &m, out));
}

MSBNB_PY_API int msbnb_py_qtensor_view(const msbnb_qtensor *q, msbnb_qtensor_view *v) {
    return rec(msbnb_qtensor_get_view(q, v));
}
/* Zero-copy: the buffers of *v are borrowed until msbnb_py_qtensor_free (quant.h). */
MSBNB_PY_API int msbnb_py_qtensor_wrap(const msbnb_qtensor_view *v, msbnb_qtensor **out) {
    return rec(msbnb_qtensor_wrap(v, out));
}
MSBNB_PY_API int msbnb_py_qtensor_validate(const msbnb_qtensor *q) { return rec(msbnb_qtensor_validate(q)); }
MSBNB_PY_API void msbnb_py_qtensor_free(msbnb_qtensor *q) { msbnb_qtensor_free(q); }

/* out: rows*cols elements of dtype (0 f32, 1 f16, 2 bf16). */
MSBNB_PY_API int msbnb_py_dequantize(const msbnb_qtensor *q, int dtype, void *out) {
    return rec(msbnb_dequantize_ex(q, (msbnb_dtype)dtype, out));
}

/* Y [n, rows] = X [n, cols] (dtype) · deq(W)ᵀ + bias [rows] (or NULL). */
MSBNB_PY_API int msbnb_py_matmul(const msbnb_qtensor *w, const void *x, int x_dtype, int64_t n, const float *bias,
                                 float *y, int precision) {
    return rec(msbnb_matmul_ex(w, x, (msbnb_dtype)x_dtype, n, bias, y, (msbnb_precision)precision));
}

/* dX [n, cols] (+)= dY [n, rows] · deq(W). */
MSBNB_PY_API int msbnb_py_matmul_t(const msbnb_qtensor *w, const float *dy, int64_t n, float *dx, int accumulate) {
    return rec(msbnb_matmul_t(w, dy, n, dx, accumulate));
}

/* For bench/python_overhead.py: `iters` calls of msbnb_matmul_ex timed inside C (CLOCK_MONOTONIC),
 * so Python's per-call cost can be stated as the difference. *seconds: the total. */
MSBNB_PY_API int msbnb_py_time_matmul(const msbnb_qtensor *w, const void *x, int x_dtype, int64_t n, float *y,
                                      int precision, int iters, double *seconds) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < iters; i++) {
        msbnb_status st = msbnb_matmul_ex(w, x, (msbnb_dtype)x_dtype, n, NULL, y, (msbnb_precision)precision);
        if (st != MSBNB_OK) return rec(st);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return MSBNB_OK;
}

/* LLM.int8() product (kernels.h). */
MSBNB_PY_API int msbnb_py_matmul_int8_lt(const msbnb_qtensor *w, const float *x, int64_t n, const float *bias,
                                         float threshold, float *y) {
    return rec(msbnb_matmul_int8_lt(w, x, n, bias, threshold, y));
}

/* stats [4] = mse, max_abs_error, relative_error_pct, snr_db. */
static void stats_out(const msbnb_error_stats *e, double *stats) {
    stats[0] = e->mse, stats[1] = e->max_abs_error, stats[2] = e->relative_error_pct, stats[3] = e->snr_db;
}
MSBNB_PY_API int msbnb_py_estimate_error(const float *ref, const msbnb_qtensor *q, double *stats) {
    msbnb_error_stats e;
    int st = rec(msbnb_estimate_quantization_error(ref, q, &e));
    if (st == MSBNB_OK) stats_out(&e, stats);
    return st;
}
MSBNB_PY_API int msbnb_py_error_stats(const float *ref, const float *approx, size_t n, double *stats) {
    msbnb_error_stats e;
    int st = rec(msbnb_error_stats_compute(ref, approx, n, &e));
    if (st == MSBNB_OK) stats_out(&e, stats);
    return st;
}

MSBNB_PY_API int msbnb_py_quant_info(const msbnb_qtensor *q, msbnb_quant_info *info) {
    return rec(msbnb_get_quantization_info(q, info));
}

/* ---------------------------------------------------------------- flat format functions */

MSBNB_PY_API int msbnb_py_int4_pack(const int8_t *codes, size_t n, uint8_t *packed) {
    return rec(msbnb_int4_pack(codes, n, packed));
}
MSBNB_PY_API int msbnb_py_int4_unpack(const uint8_t *packed, size_t n, int8_t *codes) {
    return rec(msbnb_int4_unpack(packed, n, codes));
}
/* INT8 of x [rows, cols]: symmetric -> int8 codes + absmax; asymmetric -> uint8 codes + scale +
 * zero_point (quant.h). */
MSBNB_PY_API int msbnb_py_quantize_int8(const float *x, int64_t rows, int64_t cols, int per_row, int asymmetric,
                                        void *codes, float *stats, int32_t *zero_point) {
    if (asymmetric) return rec(msbnb_quantize_int8_asym(x, rows, cols, per_row, codes, stats, zero_point));
    return rec(msbnb_quantize_int8(x, rows, cols, per_row, codes, stats));
}
MSBNB_PY_API int msbnb_py_dequantize_int8(const void *codes, const float *stats, const int32_t *zero_point,
                                          int64_t rows, int64_t cols, int per_row, int asymmetric, float *y) {
    if (asymmetric) return rec(msbnb_dequantize_int8_asym(codes, stats, zero_point, rows, cols, per_row, y));
    return rec(msbnb_dequantize_int8(codes, stats, rows, cols, per_row, y));
}
MSBNB_PY_API int msbnb_py_quantize_int4(const float *x, int64_t rows, int64_t cols, int group_size, uint8_t *packed,
                                        float *scales) {
    return rec(msbnb_quantize_int4(x, rows, cols, group_size, packed, scales));
}

/* ---------------------------------------------------------------- files */

MSBNB_PY_API int msbnb_py_checkpoint_open(const char *path, msbnb_checkpoint **out) {
    return rec(msbnb_checkpoint_open(path, out));
}
MSBNB_PY_API void msbnb_py_checkpoint_close(msbnb_checkpoint *ck) { msbnb_checkpoint_close(ck); }
MSBNB_PY_API size_t msbnb_py_checkpoint_count(const msbnb_checkpoint *ck) { return msbnb_checkpoint_count(ck); }

/* Tensor i: its name (borrowed from the checkpoint), safetensors dtype, shape and bytes;
 * *qtype the layout msbnb_bnb_detect finds (NONE for plain tensors), *aux 1 for an auxiliary
 * entry of a quantized weight (".absmax", ".SCB", ...). */
MSBNB_PY_API int msbnb_py_checkpoint_entry(const msbnb_checkpoint *ck, size_t i, const char **name, int *dtype,
                                           int *ndim, int64_t *shape, const void **data, size_t *nbytes, int *qtype,
                                           int *aux) {
    msbnb_tensor_info t;
    int st = rec(msbnb_checkpoint_get(ck, i, &t));
    if (st != MSBNB_OK) return st;
    *name = t.name, *dtype = (int)t.dtype, *ndim = t.ndim, *data = t.data, *nbytes = t.nbytes;
    memcpy(shape, t.shape, sizeof t.shape);
    *aux = msbnb_bnb_is_aux_name(t.name);
    msbnb_qtype qt = MSBNB_QTYPE_NONE;
    if (!*aux && (st = rec(msbnb_bnb_detect(ck, t.name, &qt))) != MSBNB_OK) return st;
    *qtype = (int)qt;
    return MSBNB_OK;
}
/* A plain tensor as float32 (out: numel floats). */
MSBNB_PY_API int msbnb_py_checkpoint_read_f32(const msbnb_checkpoint *ck, const char *name, float *out, size_t n) {
    return rec(msbnb_checkpoint_read_f32(ck, name, out, n));
}
/* A quantized weight as a new library-owned tensor (all parts validated). */
MSBNB_PY_API int msbnb_py_bnb_read(const msbnb_checkpoint *ck, const char *name, msbnb_qtensor **out) {
    return rec(msbnb_bnb_read(ck, name, out));
}
/* The "__metadata__" entries of the first shard: count, and key/value i (borrowed). */
MSBNB_PY_API size_t msbnb_py_checkpoint_metadata_count(const msbnb_checkpoint *ck) {
    return msbnb_checkpoint_shard_count(ck) ? msbnb_safetensors_metadata_count(msbnb_checkpoint_shard(ck, 0)) : 0;
}
MSBNB_PY_API int msbnb_py_checkpoint_metadata(const msbnb_checkpoint *ck, size_t i, const char **key,
                                              const char **value) {
    if (!msbnb_checkpoint_shard_count(ck)) return fail(MSBNB_ERR_INVALID_ARG, "checkpoint has no file");
    return rec(msbnb_safetensors_metadata_get(msbnb_checkpoint_shard(ck, 0), i, key, value));
}

MSBNB_PY_API int msbnb_py_writer_create(const char *path, msbnb_st_writer **out) {
    return rec(msbnb_st_writer_create(path, out));
}
MSBNB_PY_API int msbnb_py_writer_set_metadata(msbnb_st_writer *w, const char *key, const char *value) {
    return rec(msbnb_st_writer_set_metadata(w, key, value));
}
MSBNB_PY_API int msbnb_py_writer_add(msbnb_st_writer *w, const char *name, int dtype, int ndim, const int64_t *shape,
                                     const void *data, size_t nbytes) {
    return rec(msbnb_st_writer_add(w, name, (msbnb_st_dtype)dtype, ndim, shape, data, nbytes));
}
/* The bitsandbytes / msbnb layout of q under `name` (io.h); orig_dtype 0 f32, 1 f16, 2 bf16. */
MSBNB_PY_API int msbnb_py_writer_add_quantized(msbnb_st_writer *w, const char *name, const msbnb_qtensor *q,
                                               int orig_dtype) {
    return rec(msbnb_bnb_write(w, name, q, (msbnb_dtype)orig_dtype));
}
MSBNB_PY_API int msbnb_py_writer_finish(msbnb_st_writer *w) { return rec(msbnb_st_writer_finish(w)); }
MSBNB_PY_API void msbnb_py_writer_free(msbnb_st_writer *w) { msbnb_st_writer_free(w); }

/* ---------------------------------------------------------------- whole checkpoints */

/* msbnb_quantize_model (convert.h) with the parameters given one by one: type as msbnb_qtype;
 * blocksize, group_size, calib_tokens <= 0 and calib_seq 0 keep the defaults; method a spec
 * ("gptq", "awq+search", ...; msbnb_quantize_method_parse); calib_text, tokenizer NULL = none /
 * found; skip [n_skip] (n_skip < 0: the default {"lm_head"}) and targets [n_targets] borrowed for
 * the call. *report (caller frees with msbnb_py_quantize_report_free) on success. */
MSBNB_PY_API int msbnb_py_quantize_checkpoint(const char *src, const char *dst, int type, int blocksize,
                                              int group_size, int double_quant, const char *method,
                                              const char *calib_text, const char *tokenizer, int64_t calib_tokens,
                                              int calib_seq, const char *const *skip, int64_t n_skip,
                                              const char *const *targets, int64_t n_targets,
                                              msbnb_quantize_report **report) {
    msbnb_quantize_params p = msbnb_quantize_params_default((msbnb_qtype)type);
    if (blocksize > 0) p.cfg.blocksize = blocksize;
    if (group_size > 0) p.cfg.group_size = group_size;
    p.cfg.double_quant = double_quant;
    msbnb_status st = msbnb_quantize_method_parse(method ? method : "rtn", &p.method, &p.awq);
    if (st != MSBNB_OK) return rec(st);
    p.calib_text = calib_text, p.tokenizer = tokenizer;
    if (calib_tokens > 0) p.calib_tokens = calib_tokens;
    p.calib_seq = calib_seq;
    if (n_skip >= 0) p.skip = skip, p.n_skip = (size_t)n_skip;
    if (n_targets > 0) p.targets = targets, p.n_targets = (size_t)n_targets;
#if defined(__GLIBC__)
    /* as `msbnb quantize` does (tools/msbnb/cli_convert.c, bound_heap): pin glibc's mmap threshold so
     * a long calibrated run's heap stays bounded by one layer; MALLOC_MMAP_THRESHOLD_ still wins */
    if (!getenv("MALLOC_MMAP_THRESHOLD_")) (void)mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
    return rec(msbnb_quantize_model(src, dst, &p, report));
}
MSBNB_PY_API size_t msbnb_py_quantize_report_count(const msbnb_quantize_report *r) {
    return msbnb_quantize_report_count(r);
}
/* Row i (convert.h's msbnb_quantize_row, mirrored in msbnb/checkpoint.py); strings borrowed from r. */
MSBNB_PY_API int msbnb_py_quantize_report_row(const msbnb_quantize_report *r, size_t i, msbnb_quantize_row *row) {
    return rec(msbnb_quantize_report_get(r, i, row));
}
MSBNB_PY_API void msbnb_py_quantize_report_totals(const msbnb_quantize_report *r, msbnb_quantize_totals *t) {
    msbnb_quantize_report_totals(r, t);
}
MSBNB_PY_API void msbnb_py_quantize_report_free(msbnb_quantize_report *r) { msbnb_quantize_report_free(r); }
