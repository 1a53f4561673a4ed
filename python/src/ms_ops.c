/*
 * ms_ops.c — MindSpore AOT custom-op entry points over msbnb's fused products.
 *
 * MindSpore's ops.Custom("libmsbnb_py.so:Name", ..., func_type="aot") calls
 *   int Name(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
 *            void *stream, void *extra)
 * with params = the op's inputs then its output, as raw pointers to MindSpore's tensor (and
 * Parameter) memory. A quantized weight is handed over as its parts, which live in the Cell's
 * non-trainable Parameters; msbnb_qtensor_wrap borrows them for the call (no copy of the codes).
 *
 * Inputs shared by every entry point (after the activation tensor(s)):
 *   data           uint8/int8   codes, any shape (only the byte count is used)
 *   stats          float32      INT8 absmax [rows], INT4 scales [cols/group, rows], NF4/FP4 absmax
 *                               [n_blocks]; [1] placeholder when double-quantized
 *   stats_q        uint8        double quant: [n_stats] codes of the statistics; else [1]
 *   nested_absmax  float32      double quant: [ceil(n_stats/nested_blocksize)]; else [1]
 *   nested_code    float32      double quant: [256], the map of the statistics' codes (a file's own,
 *                               usually the signed dynamic map); else [1]
 *   meta           int64 [9]    MS_META_* below
 *   fmeta          float32 [2]  nested_offset, LLM.int8() threshold
 *
 * Entry points:
 *   msbnb_ms_matmul / msbnb_ms_matmul_fast  (x, parts..., bias, y): y[n, out] = x[n, in]·deq(W)ᵀ + bias
 *       x float32 / float16 / bfloat16 [..., in]; bias float32 [out] (or [1] when meta says none);
 *       y float32 [..., out]. msbnb_matmul_ex, EXACT or FAST precision.
 *   msbnb_ms_matmul_int8_lt (x, parts..., bias, y): LLM.int8() (msbnb_matmul_int8_lt), x float32.
 *   msbnb_ms_matmul_t (dy, x, parts..., dx): dx[n, in] = dy[n, out]·deq(W), dy float32 [..., out];
 *       x is only a shape carrier (the op's output shape is taken from it, see
 *       python/msbnb/mindspore/_ops.py: a bprop shared by layers of different widths must not take
 *       it from a closure); dx float32 [..., in].
 *
 * A failure returns 1 (MindSpore then raises its generic RuntimeError) after recording msbnb's
 * one-line message and status, which msbnb_ms_last_error() / msbnb_ms_last_status() return (the
 * op runs on a MindSpore worker thread, so the thread-local msbnb_last_error() of the Python
 * thread would not see it); python/msbnb/mindspore/_ops.py re-raises them as msbnb's exception.
 * The checks of the activation against the layer (msbnb_ms_check_input) are also exported, so
 * the Cells run them before launching the op: a wrong width or dtype then raises msbnb's message
 * at the call (PyNative) or at compilation (GRAPH_MODE).
 */
#include <msbnb/kernels.h>
#include <msbnb/quant.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Exported from the package's native library (built with hidden visibility by default). */
#define MSBNB_MS_API __attribute__((visibility("default")))
/* The AOT signature MindSpore calls (params: inputs then outputs; stream and extra unused on CPU). */
#define MS_OP_ARGS \
    int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream, void *extra

/* meta[] layout (int64); written by python/msbnb/mindspore/_ops.py:pack_meta. */
enum {
    MS_META_TYPE = 0,      /* msbnb_qtype                                  */
    MS_META_ROWS,          /* out_features                                  */
    MS_META_COLS,          /* in_features                                   */
    MS_META_BLOCKSIZE,     /* NF4/FP4                                       */
    MS_META_GROUP,         /* INT4                                          */
    MS_META_DOUBLE_QUANT,  /* 0/1                                           */
    MS_META_NESTED_BS,     /* 256 with double quant                         */
    MS_META_PER_ROW,       /* INT8: 1 per row, 0 per tensor                 */
    MS_META_HAS_BIAS,      /* 0/1                                           */
    MS_META_LEN
};

/* The most recent failure of any entry point. Written under a lock-free "last writer wins"
 * policy: ops of one graph run one at a time per stream, and the message is only advisory. */
static char last_error[512] = "";
static int last_status = MSBNB_OK;

MSBNB_MS_API const char *msbnb_ms_last_error(void) { return last_error; }
MSBNB_MS_API int msbnb_ms_last_status(void) { return last_status; }

static int fail_status(const char *op, msbnb_status st, const char *msg) {
    snprintf(last_error, sizeof last_error, "%s: %s", op, msg);
    last_status = st;
    fprintf(stderr, "msbnb: %s\n", last_error);
    return 1;
}

/* A malformed operator input: the Cells never pass one unless their Parameters were corrupted. */
static int fail(const char *op, const char *msg) { return fail_status(op, MSBNB_ERR_INVALID_ARG, msg); }

static int64_t numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    return n;
}

static size_t elem_bytes(const char *dtype) {
    if (!strcmp(dtype, "float32") || !strcmp(dtype, "int32")) return 4;
    if (!strcmp(dtype, "float16") || !strcmp(dtype, "bfloat16") || !strcmp(dtype, "int16")) return 2;
    if (!strcmp(dtype, "int64") || !strcmp(dtype, "float64")) return 8;
    return 1;
}

/* The quantized weight whose parts start at params[first] (data, stats, stats_q, nested_absmax,
 * nested_code, meta, fmeta), wrapped without copying. *has_bias receives meta's flag. */
static int wrap_weight(const char *op, void **params, int *ndims, int64_t **shapes, const char **dtypes, int first,
                       msbnb_qtensor **out, int *has_bias) {
    const int i_data = first, i_stats = first + 1, i_q = first + 2, i_nested = first + 3, i_ncode = first + 4,
              i_meta = first + 5, i_fmeta = first + 6;
    if (strcmp(dtypes[i_meta], "int64") || numel(ndims[i_meta], shapes[i_meta]) != MS_META_LEN)
        return fail(op, "meta must be int64 [9]");
    if (strcmp(dtypes[i_fmeta], "float32") || numel(ndims[i_fmeta], shapes[i_fmeta]) != 2)
        return fail(op, "fmeta must be float32 [2]");
    if (strcmp(dtypes[i_stats], "float32") || strcmp(dtypes[i_nested], "float32"))
        return fail(op, "statistics must be float32");
    const int64_t *meta = params[i_meta];
    const float *fmeta = params[i_fmeta];
    msbnb_qtensor_view v;
    memset(&v, 0, sizeof v);
    v.type = (msbnb_qtype)meta[MS_META_TYPE];
    v.rows = meta[MS_META_ROWS];
    v.cols = meta[MS_META_COLS];
    v.blocksize = (int)meta[MS_META_BLOCKSIZE];
    v.group_size = (int)meta[MS_META_GROUP];
    v.double_quant = meta[MS_META_DOUBLE_QUANT] != 0;
    v.nested_blocksize = (int)meta[MS_META_NESTED_BS];
    v.per_row = meta[MS_META_PER_ROW] != 0;
    v.threshold = fmeta[1];
    v.data = params[i_data];
    v.data_bytes = (size_t)numel(ndims[i_data], shapes[i_data]) * elem_bytes(dtypes[i_data]);
    if (v.double_quant) {
        v.stats_q = params[i_q];
        v.n_stats = (size_t)numel(ndims[i_q], shapes[i_q]);
        v.nested_absmax = params[i_nested];
        v.n_nested = (size_t)numel(ndims[i_nested], shapes[i_nested]);
        if (strcmp(dtypes[i_ncode], "float32") || numel(ndims[i_ncode], shapes[i_ncode]) != 256)
            return fail(op, "nested_code must be float32 [256] with double quantization");
        v.nested_code = params[i_ncode];
        v.nested_offset = fmeta[0];
    } else {
        v.stats = params[i_stats];
        v.n_stats = (size_t)numel(ndims[i_stats], shapes[i_stats]);
    }
    *has_bias = meta[MS_META_HAS_BIAS] != 0;
    msbnb_status st = msbnb_qtensor_wrap(&v, out);
    if (st != MSBNB_OK) return fail_status(op, st, msbnb_last_error());
    return 0;
}

static msbnb_dtype x_dtype(const char *dtype) {
    return !strcmp(dtype, "float32")    ? MSBNB_DTYPE_F32
           : !strcmp(dtype, "float16")  ? MSBNB_DTYPE_F16
           : !strcmp(dtype, "bfloat16") ? MSBNB_DTYPE_BF16
                                        : (msbnb_dtype)-1;
}

/* The activation x [shape[0..ndim-1]] of dtype `dtype` against a layer of `in_features` inputs,
 * for forward mode 0 exact, 1 fast, 2 LLM.int8(). The reason of a refusal goes to msg [cap]. */
static msbnb_status check_x(int mode, int64_t in_features, int ndim, const int64_t *shape, const char *dtype,
                            char *msg, size_t cap) {
    char dims[160] = "";
    for (int d = 0, k = 0; d < ndim && k < (int)sizeof dims - 24; d++)
        k += snprintf(dims + k, sizeof dims - (size_t)k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if ((int)x_dtype(dtype) < 0) {
        snprintf(msg, cap, "x [%s] is %s; it must be float32, float16 or bfloat16", dims, dtype);
        return MSBNB_ERR_INVALID_ARG;
    }
    if (ndim < 1 || shape[ndim - 1] != in_features) {
        snprintf(msg, cap, "x [%s]: the last dimension must be in_features = %lld", dims, (long long)in_features);
        return MSBNB_ERR_SHAPE;
    }
    if (mode == 2 && x_dtype(dtype) != MSBNB_DTYPE_F32) {
        snprintf(msg, cap, "LLM.int8() takes float32 x, got %s", dtype);
        return MSBNB_ERR_INVALID_ARG;
    }
    return MSBNB_OK;
}

/* check_x for Python (the Cells, before they launch the operator): status, and the message
 * "<entry point>: <reason>" in msg [cap]. */
MSBNB_MS_API int msbnb_ms_check_input(int mode, int64_t in_features, int ndim, const int64_t *shape,
                                      const char *dtype, char *msg, size_t cap) {
    static const char *const names[3] = {"msbnb_ms_matmul", "msbnb_ms_matmul_fast", "msbnb_ms_matmul_int8_lt"};
    if (mode < 0 || mode > 2 || ndim < 0 || (ndim && !shape) || !dtype || !msg || !cap) return MSBNB_ERR_INVALID_ARG;
    char why[400];
    msbnb_status st = check_x(mode, in_features, ndim, shape, dtype, why, sizeof why);
    if (st != MSBNB_OK) snprintf(msg, cap, "%s: %s", names[mode], why);
    else msg[0] = 0;
    return st;
}

/* y = x·deq(W)ᵀ + bias; params: x, data, stats, stats_q, nested_absmax, nested_code, meta, fmeta, bias, y. */
static int forward(const char *op, int mode, int nparam, void **params, int *ndims, int64_t **shapes,
                   const char **dtypes) {
    if (nparam != 10) return fail(op, "expected 9 inputs and 1 output");
    msbnb_qtensor *W = NULL;
    int has_bias = 0;
    if (wrap_weight(op, params, ndims, shapes, dtypes, 1, &W, &has_bias)) return 1;
    msbnb_qtensor_view v;
    msbnb_qtensor_get_view(W, &v);
    int rc = 0;
    const int nd = ndims[0];
    const msbnb_dtype xt = x_dtype(dtypes[0]);
    const float *bias = has_bias ? params[8] : NULL;
    char why[400];
    msbnb_status cst = check_x(mode, v.cols, nd, shapes[0], dtypes[0], why, sizeof why);
    if (cst != MSBNB_OK) rc = fail_status(op, cst, why);
    else if (strcmp(dtypes[9], "float32") || numel(ndims[9], shapes[9]) != numel(nd, shapes[0]) / v.cols * v.rows)
        rc = fail_status(op, MSBNB_ERR_SHAPE, "y must be float32 [..., out_features]");
    else if (has_bias && (strcmp(dtypes[8], "float32") || numel(ndims[8], shapes[8]) != v.rows))
        rc = fail_status(op, MSBNB_ERR_SHAPE, "bias must be float32 [out_features]");
    if (!rc) {
        const int64_t n = numel(nd, shapes[0]) / v.cols;
        msbnb_status st;
        if (n == 0) st = MSBNB_OK; /* an empty batch: nothing to write */
        else if (mode == 2) st = msbnb_matmul_int8_lt(W, params[0], n, bias, v.threshold, params[9]);
        else
            st = msbnb_matmul_ex(W, params[0], xt, n, bias, params[9],
                                 mode == 1 ? MSBNB_PRECISION_FAST : MSBNB_PRECISION_EXACT);
        if (st != MSBNB_OK) rc = fail_status(op, st, msbnb_last_error());
    }
    msbnb_qtensor_free(W);
    return rc;
}

MSBNB_MS_API int msbnb_ms_matmul(MS_OP_ARGS) {
    (void)stream, (void)extra;
    return forward(__func__, 0, nparam, params, ndims, shapes, dtypes);
}

MSBNB_MS_API int msbnb_ms_matmul_fast(MS_OP_ARGS) {
    (void)stream, (void)extra;
    return forward(__func__, 1, nparam, params, ndims, shapes, dtypes);
}

MSBNB_MS_API int msbnb_ms_matmul_int8_lt(MS_OP_ARGS) {
    (void)stream, (void)extra;
    return forward(__func__, 2, nparam, params, ndims, shapes, dtypes);
}

/* dx = dy·deq(W); params: dy, x (shape carrier), data, stats, stats_q, nested_absmax, nested_code, meta,
 * fmeta, dx. */
MSBNB_MS_API int msbnb_ms_matmul_t(MS_OP_ARGS) {
    (void)stream, (void)extra;
    const char *op = __func__;
    if (nparam != 10) return fail(op, "expected 9 inputs and 1 output");
    msbnb_qtensor *W = NULL;
    int has_bias = 0;
    if (wrap_weight(op, params, ndims, shapes, dtypes, 2, &W, &has_bias)) return 1;
    msbnb_qtensor_view v;
    msbnb_qtensor_get_view(W, &v);
    int rc = 0;
    const int nd = ndims[0];
    if (strcmp(dtypes[0], "float32") || nd < 1 || shapes[0][nd - 1] != v.rows)
        rc = fail_status(op, MSBNB_ERR_SHAPE, "dy must be float32 [..., out_features]");
    else if (strcmp(dtypes[9], "float32") || numel(ndims[9], shapes[9]) != numel(nd, shapes[0]) / v.rows * v.cols)
        rc = fail_status(op, MSBNB_ERR_SHAPE, "dx must be float32 [..., in_features]");
    if (!rc) {
        const int64_t n = numel(nd, shapes[0]) / v.rows;
        msbnb_status st = n > 0 ? msbnb_matmul_t(W, params[0], n, params[9], 0) : MSBNB_OK;
        if (st != MSBNB_OK) rc = fail_status(op, st, msbnb_last_error());
    }
    msbnb_qtensor_free(W);
    return rc;
}
