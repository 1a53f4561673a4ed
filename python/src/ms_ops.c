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
 * A failure returns 1 (MindSpore then raises) after recording msbnb's one-line message, which
 * msbnb_ms_last_error() returns (the op runs on a MindSpore worker thread, so the thread-local
 * msbnb_last_error() of the Python thread would not see it).
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

MSBNB_MS_API const char *msbnb_ms_last_error(void) { return last_error; }

static int fail(const char *op, const char *msg) {
    snprintf(last_error, sizeof last_error, "%s: %s", op, msg);
    fprintf(stderr, "msbnb: %s\n", last_error);
    return 1;
}

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
 * meta, fmeta), wrapped without copying. *has_bias receives meta's flag. */
static int wrap_weight(const char *op, void **params, int *ndims, int64_t **shapes, const char **dtypes, int first,
                       msbnb_qtensor **out, int *has_bias) {
    const int i_data = first, i_stats = first + 1, i_q = first + 2, i_nested = first + 3, i_meta = first + 4,
              i_fmeta = first + 5;
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
        v.nested_code = msbnb_dynamic_map_signed();
        v.nested_offset = fmeta[0];
    } else {
        v.stats = params[i_stats];
        v.n_stats = (size_t)numel(ndims[i_stats], shapes[i_stats]);
    }
    *has_bias = meta[MS_META_HAS_BIAS] != 0;
    if (msbnb_qtensor_wrap(&v, out) != MSBNB_OK) return fail(op, msbnb_last_error());
    return 0;
}

/* y = x·deq(W)ᵀ + bias; params: x, data, stats, stats_q, nested_absmax, meta, fmeta, bias, y. */
static int forward(const char *op, int mode, int nparam, void **params, int *ndims, int64_t **shapes,
                   const char **dtypes) {
    if (nparam != 9) return fail(op, "expected 8 inputs and 1 output");
    msbnb_qtensor *W = NULL;
    int has_bias = 0;
    if (wrap_weight(op, params, ndims, shapes, dtypes, 1, &W, &has_bias)) return 1;
    msbnb_qtensor_view v;
    msbnb_qtensor_get_view(W, &v);
    int rc = 0;
    const int nd = ndims[0];
    msbnb_dtype xt = !strcmp(dtypes[0], "float32")    ? MSBNB_DTYPE_F32
                     : !strcmp(dtypes[0], "float16")  ? MSBNB_DTYPE_F16
                     : !strcmp(dtypes[0], "bfloat16") ? MSBNB_DTYPE_BF16
                                                      : (msbnb_dtype)-1;
    const float *bias = has_bias ? params[7] : NULL;
    if ((int)xt < 0) rc = fail(op, "x must be float32, float16 or bfloat16");
    else if (nd < 1 || shapes[0][nd - 1] != v.cols) rc = fail(op, "x's last dimension is not in_features");
    else if (strcmp(dtypes[8], "float32") || numel(ndims[8], shapes[8]) != numel(nd, shapes[0]) / v.cols * v.rows)
        rc = fail(op, "y must be float32 [..., out_features]");
    else if (has_bias && (strcmp(dtypes[7], "float32") || numel(ndims[7], shapes[7]) != v.rows))
        rc = fail(op, "bias must be float32 [out_features]");
    else if (mode == 2 && xt != MSBNB_DTYPE_F32) rc = fail(op, "LLM.int8() takes float32 x");
    if (!rc) {
        const int64_t n = numel(nd, shapes[0]) / v.cols;
        msbnb_status st;
        if (n == 0) st = MSBNB_OK; /* an empty batch: nothing to write */
        else if (mode == 2) st = msbnb_matmul_int8_lt(W, params[0], n, bias, v.threshold, params[8]);
        else
            st = msbnb_matmul_ex(W, params[0], xt, n, bias, params[8],
                                 mode == 1 ? MSBNB_PRECISION_FAST : MSBNB_PRECISION_EXACT);
        if (st != MSBNB_OK) rc = fail(op, msbnb_last_error());
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

/* dx = dy·deq(W); params: dy, x (shape carrier), data, stats, stats_q, nested_absmax, meta, fmeta, dx. */
MSBNB_MS_API int msbnb_ms_matmul_t(MS_OP_ARGS) {
    (void)stream, (void)extra;
    const char *op = __func__;
    if (nparam != 9) return fail(op, "expected 8 inputs and 1 output");
    msbnb_qtensor *W = NULL;
    int has_bias = 0;
    if (wrap_weight(op, params, ndims, shapes, dtypes, 2, &W, &has_bias)) return 1;
    msbnb_qtensor_view v;
    msbnb_qtensor_get_view(W, &v);
    int rc = 0;
    const int nd = ndims[0];
    if (strcmp(dtypes[0], "float32") || nd < 1 || shapes[0][nd - 1] != v.rows)
        rc = fail(op, "dy must be float32 [..., out_features]");
    else if (strcmp(dtypes[8], "float32") || numel(ndims[8], shapes[8]) != numel(nd, shapes[0]) / v.rows * v.cols)
        rc = fail(op, "dx must be float32 [..., in_features]");
    if (!rc) {
        const int64_t n = numel(nd, shapes[0]) / v.rows;
        if (n > 0 && msbnb_matmul_t(W, params[0], n, params[8], 0) != MSBNB_OK) rc = fail(op, msbnb_last_error());
    }
    msbnb_qtensor_free(W);
    return rc;
}
