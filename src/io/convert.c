/*
 * convert.c — whole-checkpoint conversion, the parts quantize and dequantize share (output
 * locations written whole, which tensors are linear layers, module patterns, error context), and
 * msbnb_dequantize_model (convert.h). msbnb_quantize_model: quantize_model.c.
 *
 * Streaming: each input tensor is read from the memory map, converted, handed to the writer's
 * spill file, and its pages released (msbnb_checkpoint_release), so resident memory stays near the
 * largest tensor.
 */
#define _POSIX_C_SOURCE 200809L
#include "io/convert_internal.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ================================================================ output locations */

static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

msbnb_status msbnb__convert_out_begin(convert_out *o, const char *in, const char *out, bool dir_mode) {
    memset(o, 0, sizeof *o);
    if (same_file(in, out) || (dir_mode && msbnb_path_same_or_inside(out, in)))
        return CONVERT_FAIL(MSBNB_ERR_IO, "%s: output would overwrite the input %s", out, in);
    if (dir_mode) {
        TRY(msbnb_outdir_begin(out, &o->dir));
        o->model_path = msbnb__path_join(msbnb_outdir_path(o->dir), "model.safetensors");
    } else {
        o->model_path = msbnb__strdup(out);
    }
    if (!o->model_path) return CONVERT_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    return MSBNB_OK;
}

void msbnb__convert_out_created(convert_out *o, const char *path) {
    if (o->dir) return; /* the temporary directory goes as a whole */
    char **c = realloc(o->created, (o->n_created + 1) * sizeof(char *));
    if (!c) return;
    o->created = c;
    if ((o->created[o->n_created] = msbnb__strdup(path))) o->n_created++;
}

msbnb_status msbnb__convert_out_finish(convert_out *o, const char *in, bool dir_mode, const char *qjson) {
    msbnb__convert_out_created(o, o->model_path);
    if (!dir_mode) return MSBNB_OK;
    const char *dir = msbnb_outdir_path(o->dir);
    char *src = msbnb__path_join(in, "config.json"), *dst = msbnb__path_join(dir, "config.json");
    msbnb_status st = src && dst ? msbnb_config_write_with_quantization(src, dst, qjson)
                                 : CONVERT_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    free(src);
    free(dst);
    if (st == MSBNB_OK) st = msbnb_model_dir_copy_side_files(in, dir);
    if (st == MSBNB_OK) st = msbnb_outdir_commit(o->dir);
    return st;
}

void msbnb__convert_out_abort(convert_out *o) {
    for (size_t i = 0; i < o->n_created; i++) unlink(o->created[i]);
    msbnb_outdir_free(o->dir); /* removes the temporary directory when not committed */
    o->dir = NULL;
}

void msbnb__convert_out_free(convert_out *o) {
    for (size_t i = 0; i < o->n_created; i++) free(o->created[i]);
    free(o->created);
    free(o->model_path);
    msbnb_outdir_free(o->dir);
    memset(o, 0, sizeof *o);
}

msbnb_status msbnb__convert_check_file_pair(const char *in, const char *out) {
    struct stat si, so;
    if (stat(in, &si) == 0 && !S_ISDIR(si.st_mode) && stat(out, &so) == 0 && S_ISDIR(so.st_mode))
        return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG, "IN is a file, so OUT must be a file too ('%s' is a directory)",
                            out);
    return MSBNB_OK;
}

/* ================================================================ which tensors */

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !memcmp(s + a - b, suf, b);
}

char *msbnb__module_of(const char *w) {
    size_t n = strlen(w) - (ends_with(w, ".weight") ? 7 : 0);
    char *m = malloc(n + 1);
    if (!m) return NULL;
    memcpy(m, w, n);
    m[n] = '\0';
    return m;
}

bool msbnb__pattern_match(const char *module, const char *pat) {
    if (strpbrk(pat, "*?[")) return fnmatch(pat, module, 0) == 0;
    size_t m = strlen(module), k = strlen(pat);
    for (const char *p = module; (p = strstr(p, pat)); p++) {
        bool start_ok = p == module || p[-1] == '.';
        size_t end = (size_t)(p - module) + k;
        bool end_ok = end == m || module[end] == '.';
        if (start_ok && end_ok) return true;
    }
    return false;
}

bool msbnb__is_linear_weight(const msbnb_tensor_info *t) {
    if (t->ndim != 2 || !ends_with(t->name, ".weight")) return false;
    if (t->dtype != MSBNB_ST_F32 && t->dtype != MSBNB_ST_F16 && t->dtype != MSBNB_ST_BF16) return false;
    /* embeddings and norms are not linear layers (bitsandbytes keeps them in full precision) */
    static const char *const not_linear[] = {"embed", "wte", "wpe", "norm", "ln_"};
    for (size_t i = 0; i < sizeof not_linear / sizeof not_linear[0]; i++)
        if (strstr(t->name, not_linear[i])) return false;
    return true;
}

/* ================================================================ messages, progress */

msbnb_status msbnb__convert_tensor_fail(msbnb_status st, const msbnb_tensor_info *t) {
    char m[512];
    snprintf(m, sizeof m, "%s", msbnb_last_error());
    if (strstr(m, "tensor '") && strstr(m, "(byte ")) return st;
    return CONVERT_FAIL(st, "%s: tensor '%s' (byte %llu): %s", t->file, t->name, (unsigned long long)t->file_offset, m);
}

void msbnb__convert_progress(msbnb_convert_progress_fn fn, void *ctx, size_t done, size_t total, uint64_t bytes,
                             uint64_t bytes_total) {
    if (!fn) return;
    msbnb_convert_progress p = {MSBNB_CONVERT_TENSOR, done, total, bytes, bytes_total, 0};
    fn(ctx, &p);
}

/* ================================================================ dequantize */

/* The dtype of ck's plain floating-point tensors (embedding, norms); F32 when it has none. */
static msbnb_dtype source_dtype(const msbnb_checkpoint *ck) {
    for (size_t i = 0; i < msbnb_checkpoint_count(ck); i++) {
        msbnb_tensor_info t;
        msbnb_qtype qt = MSBNB_QTYPE_NONE;
        if (msbnb_checkpoint_get(ck, i, &t) != MSBNB_OK || strstr(t.name, "absmax") || strstr(t.name, "quant_"))
            continue;
        if (msbnb_bnb_detect(ck, t.name, &qt) != MSBNB_OK || qt != MSBNB_QTYPE_NONE) continue;
        if (t.dtype == MSBNB_ST_BF16) return MSBNB_DTYPE_BF16;
        if (t.dtype == MSBNB_ST_F16) return MSBNB_DTYPE_F16;
        if (t.dtype == MSBNB_ST_F32) return MSBNB_DTYPE_F32;
    }
    return MSBNB_DTYPE_F32;
}

/* Add the plain form of quantized weight t (dtype, original shape) to w. */
static msbnb_status add_dequantized(msbnb_st_writer *w, const msbnb_checkpoint *ck, const msbnb_tensor_info *t,
                                    msbnb_dtype dtype) {
    static const msbnb_st_dtype st_of[] = {MSBNB_ST_F32, MSBNB_ST_F16, MSBNB_ST_BF16};
    size_t esize = dtype == MSBNB_DTYPE_F32 ? 4 : 2;
    msbnb_qtensor *q = NULL;
    msbnb_status st = msbnb_bnb_read(ck, t->name, &q);
    msbnb_qtensor_view v;
    void *y = NULL; /* [rows, cols] of dtype */
    if (st == MSBNB_OK) st = msbnb_qtensor_get_view(q, &v);
    if (st == MSBNB_OK && !(y = malloc((size_t)v.rows * (size_t)v.cols * esize + 1)))
        st = CONVERT_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == MSBNB_OK) st = msbnb_dequantize_ex(q, dtype, y);
    if (st == MSBNB_OK) {
        int64_t shape[2] = {v.rows, v.cols};
        st = msbnb_st_writer_add(w, t->name, st_of[dtype], 2, shape, y, (size_t)(shape[0] * shape[1]) * esize);
    }
    free(y);
    msbnb_qtensor_free(q);
    return st;
}

msbnb_status msbnb_dequantize_model_check(const char *in, const char *out, const msbnb_dequantize_params *p) {
    RETURN_IF(!in || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    if (p && (p->dtype < -1 || p->dtype > MSBNB_DTYPE_BF16))
        return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG, "dtype %d is not -1, F32, F16 or BF16", p->dtype);
    return msbnb__convert_check_file_pair(in, out);
}

msbnb_status msbnb_dequantize_model(const char *in, const char *out, const msbnb_dequantize_params *p,
                                    msbnb_dequantize_result *result) {
    TRY(msbnb_dequantize_model_check(in, out, p));
    msbnb_dequantize_params dp = {-1, NULL, NULL};
    if (p) dp = *p;
    msbnb_checkpoint *ck = NULL;
    msbnb_st_writer *w = NULL;
    convert_out o;
    memset(&o, 0, sizeof o);
    size_t n_deq = 0;
    msbnb_status st = msbnb_checkpoint_open(in, &ck);
    msbnb_dtype dtype = dp.dtype >= 0 ? (msbnb_dtype)dp.dtype : MSBNB_DTYPE_F32;
    if (st == MSBNB_OK && dp.dtype < 0) dtype = source_dtype(ck);
    bool dir_mode = st == MSBNB_OK && msbnb_checkpoint_is_dir(ck);
    if (st == MSBNB_OK) st = msbnb__convert_out_begin(&o, in, out, dir_mode);
    if (st == MSBNB_OK) st = msbnb_st_writer_create(o.model_path, &w);
    size_t count = st == MSBNB_OK ? msbnb_checkpoint_count(ck) : 0;
    msbnb__convert_progress(dp.progress, dp.progress_ctx, 0, count, 0, 0);
    for (size_t i = 0; i < count && st == MSBNB_OK; i++) {
        msbnb_tensor_info t;
        if ((st = msbnb_checkpoint_get(ck, i, &t)) != MSBNB_OK) break;
        char *parent = NULL;
        msbnb_qtype type = MSBNB_QTYPE_NONE;
        if (!msbnb_bnb_aux_parent(ck, t.name, &parent)) st = msbnb_bnb_detect(ck, t.name, &type);
        if (parent) {
            free(parent); /* folded into its weight */
        } else if (st == MSBNB_OK && type == MSBNB_QTYPE_NONE) {
            st = msbnb_st_writer_add(w, t.name, t.dtype, t.ndim, t.shape, t.data, t.nbytes);
        } else if (st == MSBNB_OK) {
            st = add_dequantized(w, ck, &t, dtype);
            n_deq += st == MSBNB_OK;
        }
        if (st != MSBNB_OK) msbnb__convert_tensor_fail(st, &t);
        msbnb_checkpoint_release(ck, t.name);
        msbnb__convert_progress(dp.progress, dp.progress_ctx, i + 1, count, t.nbytes, 0);
    }
    if (st == MSBNB_OK) st = msbnb_st_writer_finish(w);
    if (st == MSBNB_OK) st = msbnb__convert_out_finish(&o, in, dir_mode, NULL);
    if (st != MSBNB_OK) {
        msbnb_st_writer_free(w); /* removes the writer's temporaries */
        w = NULL;
        msbnb__convert_out_abort(&o);
    }
    msbnb_st_writer_free(w);
    msbnb__convert_out_free(&o);
    msbnb_checkpoint_close(ck);
    if (st == MSBNB_OK && result) {
        result->n_dequantized = n_deq;
        result->dtype = dtype;
    }
    return st;
}
