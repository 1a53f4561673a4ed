/*
 * quantize_model.c — msbnb_quantize_model (convert.h): a whole checkpoint's linear layers
 * quantized, streamed tensor by tensor, the rest copied; with calibration, the model first runs
 * layer by layer over a text (msbnb_quantize_checkpoint_calibrated) and the projections it
 * quantizes are written as they come. The per-layer report is what `msbnb quantize` prints.
 */
#define _POSIX_C_SOURCE 200809L
#include "io/convert_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <msbnb/tokenizer.h>

struct msbnb_quantize_report {
    msbnb_quantize_row *rows; /* [n]; names owned (malloc'ed), `kept` static */
    size_t n;
    msbnb_quantize_totals totals;
};

/* ================================================================ parameters */

static const char *const default_skip[] = {"lm_head"};

msbnb_quantize_params msbnb_quantize_params_default(msbnb_qtype type) {
    msbnb_quantize_params p;
    memset(&p, 0, sizeof p);
    p.cfg = msbnb_quant_config_default(type);
    p.method = MSBNB_QMETHOD_RTN;
    p.skip = default_skip;
    p.n_skip = 1;
    p.calib_tokens = 4096;
    return p;
}

msbnb_status msbnb_quantize_method_parse(const char *spec, msbnb_qmethod *method, int *awq) {
    RETURN_IF(!spec || !method || !awq, MSBNB_ERR_INVALID_ARG, "NULL argument");
    /* [awq+]rtn|search|gptq, or awq alone (= awq+rtn) */
    const char *base = spec;
    int a = 0;
    if (!strncmp(spec, "awq", 3) && (spec[3] == '\0' || spec[3] == '+')) {
        a = 1;
        base = spec[3] ? spec + 4 : "rtn";
    }
    msbnb_qmethod m;
    if (msbnb_qmethod_parse(base, &m) != MSBNB_OK || (a && !strcmp(base, "awq")))
        return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG,
                            "method must be rtn, search, gptq, awq, awq+rtn, awq+search or awq+gptq, not '%.100s'", spec);
    *method = m;
    *awq = a;
    return MSBNB_OK;
}

const char *msbnb_quantize_method_name(msbnb_qmethod method, int awq) {
    switch (method) {
    case MSBNB_QMETHOD_RTN: return awq ? "awq+rtn" : "rtn";
    case MSBNB_QMETHOD_SEARCH: return awq ? "awq+search" : "search";
    case MSBNB_QMETHOD_GPTQ: return awq ? "awq+gptq" : "gptq";
    }
    return "?";
}

static msbnb_status check_patterns(const char *what, const char *const *list, size_t n) {
    if (n && !list) return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG, "%s is NULL but n_%s is %zu", what, what, n);
    for (size_t i = 0; i < n; i++)
        if (!list[i] || !list[i][0]) return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG, "%s[%zu] is NULL or empty", what, i);
    return MSBNB_OK;
}

msbnb_status msbnb_quantize_model_check(const char *in, const char *out, const msbnb_quantize_params *p) {
    RETURN_IF(!in || !out || !p, MSBNB_ERR_INVALID_ARG, "NULL argument");
    const msbnb_quant_config *c = &p->cfg;
    msbnb_qtype t = c->type;
    const char *meth = msbnb_quantize_method_name(p->method, p->awq);
    if (t != MSBNB_QTYPE_NF4 && t != MSBNB_QTYPE_FP4 && t != MSBNB_QTYPE_INT4 && t != MSBNB_QTYPE_INT8)
        return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG, "type must be nf4, fp4, int4 or int8, not %s", msbnb_qtype_name(t));
    if ((t == MSBNB_QTYPE_NF4 || t == MSBNB_QTYPE_FP4) &&
        (c->blocksize < 32 || c->blocksize > 4096 || (c->blocksize & (c->blocksize - 1))))
        return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG, "blocksize %d is not a power of two in 32..4096", c->blocksize);
    if (t == MSBNB_QTYPE_INT4 && (c->group_size < 2 || c->group_size % 2))
        return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG, "group_size %d is not an even number >= 2", c->group_size);
    if (t == MSBNB_QTYPE_INT8 && c->double_quant)
        return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG, "double_quant applies to nf4, fp4 and int4");
    if (!(c->threshold >= 0 && c->threshold <= 1e30))
        return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG, "threshold %g is not in 0..1e30", c->threshold);
    if (!strcmp(meth, "?") || (p->awq != 0 && p->awq != 1))
        return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG, "method %d / awq %d is not a method", (int)p->method, p->awq);
    if ((p->method != MSBNB_QMETHOD_RTN || p->awq) && t == MSBNB_QTYPE_INT8)
        return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG, "method %s applies to nf4, fp4 and int4", meth);
    if ((p->method == MSBNB_QMETHOD_GPTQ || p->awq) && !p->calib_text)
        return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG, "method %s needs a calibration text (calib_text)", meth);
    if (p->calib_text && p->method == MSBNB_QMETHOD_RTN && !p->awq)
        return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG, "a calibration text (calib_text) needs method search, gptq or awq");
    if (p->calib_tokens < 2 || p->calib_tokens > (1 << 30))
        return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG, "calib_tokens %lld is not in 2..2^30", (long long)p->calib_tokens);
    if (p->calib_seq != 0 && (p->calib_seq < 2 || p->calib_seq > (1 << 20)))
        return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG, "calib_seq %d is not 0 or in 2..2^20", p->calib_seq);
    TRY(check_patterns("skip", p->skip, p->n_skip));
    TRY(check_patterns("targets", p->targets, p->n_targets));
    TRY(msbnb__convert_check_file_pair(in, out));
    struct stat sb;
    if (p->calib_text && stat(in, &sb) == 0 && !S_ISDIR(sb.st_mode))
        return CONVERT_FAIL(MSBNB_ERR_INVALID_ARG,
                            "calibration (calib_text) needs model directories (config.json), not .safetensors files");
    return MSBNB_OK;
}

/* ================================================================ one tensor */

/* The state of a run, shared with the calibrated pass's callbacks. Names point into ck. */
typedef struct qrun {
    const msbnb_quantize_params *p;
    msbnb_checkpoint *ck;
    msbnb_st_writer *w;
    msbnb_quantize_row *rows; /* [count]: one per linear weight, names borrowed from ck */
    size_t n_rows;
    const char **emitted;     /* tensors written by the calibrated pass [n_emitted] */
    size_t n_emitted;
    char **not_converted;     /* modules left plain (config's llm_int8_skip_modules): the skip
                               * patterns (borrowed) then malloc'ed module names from n_skip on */
    size_t n_not_converted;
} qrun;

static msbnb_dtype dtype_of(const msbnb_tensor_info *t) {
    return t->dtype == MSBNB_ST_F16 ? MSBNB_DTYPE_F16 : t->dtype == MSBNB_ST_BF16 ? MSBNB_DTYPE_BF16 : MSBNB_DTYPE_F32;
}

/* Write q as `name` (shape [rows, cols], original dtype src) and measure its error against ref
 * (float32 [rows, cols]), dequantizing a slab of rows at a time so no second full-size buffer is
 * needed. */
static msbnb_status write_measured(msbnb_st_writer *w, const char *name, const msbnb_qtensor *q, msbnb_dtype src,
                                   const float *ref, msbnb_quantize_row *row) {
    msbnb_qtensor_view qv;
    msbnb_qtensor_get_view(q, &qv);
    const int64_t rows = qv.rows, cols = qv.cols;
    uint64_t before = msbnb_st_writer_bytes(w);
    msbnb_status st = msbnb_bnb_write(w, name, q, src);
    row->bytes_after = msbnb_st_writer_bytes(w) - before;
    double sum_x2 = 0, sum_e2 = 0; /* Σ ref², Σ (ref - deq)², in element order */
    int64_t slab = cols > 0 ? (int64_t)((1 << 20) / (size_t)cols) + 1 : 1;
    float *y = st == MSBNB_OK ? malloc((size_t)(slab < rows ? slab : rows) * (size_t)cols * sizeof(float) + 1) : NULL;
    if (st == MSBNB_OK && !y) st = CONVERT_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t r0 = 0; st == MSBNB_OK && r0 < rows; r0 += slab) {
        int64_t nr = rows - r0 < slab ? rows - r0 : slab;
        st = msbnb_dequantize_rows(q, r0, nr, y);
        const float *x = ref + (size_t)r0 * (size_t)cols;
        for (size_t i = 0; st == MSBNB_OK && i < (size_t)nr * (size_t)cols; i++) {
            double e = (double)x[i] - (double)y[i];
            sum_x2 += (double)x[i] * (double)x[i];
            sum_e2 += e * e;
        }
    }
    row->rel_err_pct = sum_x2 > 0 ? 100.0 * sqrt(sum_e2 / sum_x2) : (sum_e2 > 0 ? INFINITY : 0);
    row->snr_db = sum_e2 > 0 ? 10.0 * log10(sum_x2 / sum_e2) : INFINITY;
    free(y);
    return st;
}

/* Quantize one weight t with cfg, add its entries to w, measure its error. */
static msbnb_status quantize_one(msbnb_st_writer *w, const msbnb_tensor_info *t, const msbnb_quant_config *cfg,
                                 msbnb_qmethod method, msbnb_quantize_row *row) {
    int64_t rows = t->shape[0], cols = t->shape[1];
    size_t n = (size_t)rows * (size_t)cols;
    /* float32 reference: the mapped data itself when it is F32 and aligned, else a converted copy */
    float *owned = NULL;
    const float *ref = t->data;
    if (dtype_of(t) != MSBNB_DTYPE_F32 || ((uintptr_t)t->data % sizeof(float))) {
        owned = malloc(n * sizeof(float));
        if (!owned) return CONVERT_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
        msbnb_status st = msbnb_tensor_to_f32(t, owned);
        if (st != MSBNB_OK) {
            free(owned);
            return st;
        }
        ref = owned;
    }
    msbnb_qtensor *q = NULL;
    msbnb_quant_method md = msbnb_quant_method_default();
    md.method = method; /* no statistics here: gptq without them is search */
    msbnb_status st = msbnb_quantize_opt(ref, rows, cols, cfg, &md, &q);
    if (st == MSBNB_OK) st = write_measured(w, t->name, q, dtype_of(t), ref, row);
    free(owned);
    msbnb_qtensor_free(q);
    return st;
}

static bool matches_any(const char *mod, const char *const *patterns, size_t n) {
    for (size_t i = 0; mod && i < n; i++)
        if (msbnb__pattern_match(mod, patterns[i])) return true;
    return false;
}

/* Why a tensor is not quantized (NULL = quantize it). */
static const char *keep_reason(const msbnb_quantize_params *p, const msbnb_tensor_info *t, bool *is_linear) {
    *is_linear = msbnb__is_linear_weight(t);
    if (!*is_linear) return "not a linear layer";
    char *mod = msbnb__module_of(t->name);
    const char *why = NULL;
    if (matches_any(mod, p->skip, p->n_skip)) why = "in the skip list";
    if (!why && p->n_targets && !matches_any(mod, p->targets, p->n_targets)) why = "not in the target list";
    if (!why && p->cfg.type == MSBNB_QTYPE_INT4 && t->shape[1] % 2) why = "odd column count (int4)";
    if (!why && (t->shape[0] == 0 || t->shape[1] == 0)) why = "empty (no element to quantize)";
    free(mod);
    return why;
}

/* ================================================================ calibration */

static bool was_emitted(const qrun *r, const char *name) {
    for (size_t i = 0; i < r->n_emitted; i++)
        if (!strcmp(r->emitted[i], name)) return true;
    return false;
}

static int calib_select(void *ctx, const char *name, int64_t rows, int64_t cols) {
    (void)rows, (void)cols;
    qrun *r = ctx;
    msbnb_tensor_info t;
    bool linear;
    return msbnb_checkpoint_find(r->ck, name, &t) == MSBNB_OK && keep_reason(r->p, &t, &linear) == NULL;
}

static msbnb_status calib_emit(void *ctx, const char *name, const msbnb_qtensor *q, const float *values, int ndim,
                               const int64_t *shape) {
    qrun *r = ctx;
    msbnb_tensor_info t;
    msbnb_status st = msbnb_checkpoint_find(r->ck, name, &t);
    if (st != MSBNB_OK) return st;
    r->emitted[r->n_emitted++] = t.name;
    size_t bytes = sizeof(float);
    for (int i = 0; i < ndim; i++) bytes *= (size_t)shape[i];
    msbnb_quantize_row *row = ndim == 2 ? &r->rows[r->n_rows++] : NULL;
    if (row) {
        row->name = t.name;
        row->shape[0] = shape[0], row->shape[1] = shape[1];
        row->bytes_before = t.nbytes;
    }
    if (q) {
        msbnb_qtensor_view v;
        msbnb_qtensor_get_view(q, &v);
        if (v.type == MSBNB_QTYPE_INT4 && v.group_size != r->p->cfg.group_size) row->group_size = v.group_size;
        st = write_measured(r->w, t.name, q, dtype_of(&t), values, row);
    } else {
        st = msbnb_st_writer_add(r->w, t.name, MSBNB_ST_F32, ndim, shape, values, bytes);
        if (row) { /* a projection left plain whose rows or columns AWQ scaled */
            row->bytes_after = bytes;
            row->kept = "kept plain (AWQ-scaled)";
            char *mod = msbnb__module_of(t.name);
            if (mod) r->not_converted[r->n_not_converted++] = mod;
        }
    }
    msbnb_checkpoint_release(r->ck, t.name);
#if defined(__GLIBC__)
    /* a projection done: hand the heap's free pages back (holes left between the layer's buffers
     * below the mmap threshold, which the tool pins; docs/quantization.md "Time and memory") */
    if (ndim == 2) (void)malloc_trim(0);
#endif
    return st;
}

/* Calibration token ids: the first ~16 bytes per wanted token of calib_text (cut at a space),
 * encoded by the model's tokenizer (p->tokenizer, else the one msbnb_tokenizer_load finds at IN)
 * with its special tokens (BOS), at most calib_tokens of them. *ids malloc'ed [*n]. */
static msbnb_status calib_tokens(const char *in, const msbnb_quantize_params *p, const msbnb_checkpoint *ck,
                                 int32_t **ids, int64_t *n) {
    *ids = NULL;
    int64_t vocab = 0;
    const msbnb_config *cfg = msbnb_checkpoint_config(ck);
    if (!cfg || msbnb_config_get_int(cfg, "vocab_size", &vocab) != MSBNB_OK || vocab < 1 || vocab > (1 << 30))
        return CONVERT_FAIL(MSBNB_ERR_FORMAT, "%s: no vocab_size in config.json", in);
    msbnb_tokenizer *tok = NULL;
    msbnb_status st = msbnb_tokenizer_load(p->tokenizer ? p->tokenizer : in, (int)vocab, &tok);
    if (st != MSBNB_OK) return st;
    FILE *f = fopen(p->calib_text, "rb");
    size_t cap = (size_t)p->calib_tokens * 16 + 1, len = 0;
    char *text = f ? malloc(cap + 1) : NULL;
    if (!f) {
        st = CONVERT_FAIL(MSBNB_ERR_IO, "cannot open calibration text '%s'", p->calib_text);
    } else if (!text) {
        st = CONVERT_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    } else {
        len = fread(text, 1, cap, f);
        if (len == cap) /* more follows: end at the last space so no word (or UTF-8 sequence) is cut */
            while (len > 0 && text[len - 1] != ' ' && text[len - 1] != '\n') len--;
        text[len] = '\0';
    }
    if (f) fclose(f);
    size_t count = 0;
    if (st == MSBNB_OK) st = msbnb_tokenizer_encode_alloc(tok, text, len, MSBNB_ENCODE_ADD_SPECIAL, ids, &count);
    free(text);
    msbnb_tokenizer_free(tok);
    if (st == MSBNB_OK && count < 2)
        st = CONVERT_FAIL(MSBNB_ERR_FORMAT, "calibration text '%s' gives fewer than 2 tokens", p->calib_text);
    if (st != MSBNB_OK) {
        free(*ids);
        *ids = NULL;
        return st;
    }
    *n = (int64_t)count < p->calib_tokens ? (int64_t)count : p->calib_tokens;
    return MSBNB_OK;
}

/* The calibrated pass: every projection it selects is quantized and written by calib_emit. */
static msbnb_status calibrated_pass(const char *in, qrun *r, int64_t *n_tokens) {
    const msbnb_quantize_params *p = r->p;
    int32_t *ids = NULL;
    int64_t n_ids = 0;
    if (!(r->emitted = calloc(msbnb_checkpoint_count(r->ck) + 1, sizeof(char *))))
        return CONVERT_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    TRY(calib_tokens(in, p, r->ck, &ids, &n_ids));
    msbnb_calib_params cp = msbnb_calib_params_default(p->cfg.type);
    cp.cfg = p->cfg;
    cp.method.method = p->method;
    cp.awq = p->awq;
    cp.tokens = ids;
    cp.n_tokens = n_ids;
    cp.seq_len = p->calib_seq;
    cp.select = calib_select;
    cp.select_ctx = r;
    if (p->progress) {
        msbnb_convert_progress ev = {MSBNB_CONVERT_CALIBRATING, 0, msbnb_checkpoint_count(r->ck), 0, 0, n_ids};
        p->progress(p->progress_ctx, &ev);
    }
    *n_tokens = n_ids;
    msbnb_status st = msbnb_quantize_checkpoint_calibrated(r->ck, &cp, calib_emit, r);
    free(ids);
    return st;
}

/* ================================================================ the whole checkpoint */

/* Every tensor the calibrated pass did not write: quantized (linear layers not kept) or copied. */
static msbnb_status stream_tensors(qrun *r, uint64_t in_bytes, size_t *n_other) {
    const msbnb_quantize_params *p = r->p;
    size_t count = msbnb_checkpoint_count(r->ck);
    msbnb__convert_progress(p->progress, p->progress_ctx, 0, count, 0, in_bytes);
    msbnb_status st = MSBNB_OK;
    for (size_t i = 0; i < count && st == MSBNB_OK; i++) {
        msbnb_tensor_info t;
        if ((st = msbnb_checkpoint_get(r->ck, i, &t)) != MSBNB_OK) break;
        if (!was_emitted(r, t.name)) {
            bool linear;
            const char *why = keep_reason(p, &t, &linear);
            msbnb_quantize_row *row = linear ? &r->rows[r->n_rows++] : NULL;
            if (row) {
                row->name = t.name;
                row->shape[0] = t.shape[0], row->shape[1] = t.shape[1];
                row->bytes_before = t.nbytes;
                row->kept = why;
            } else {
                (*n_other)++;
            }
            if (row && why) {
                char *mod = msbnb__module_of(t.name);
                if (mod && !matches_any(mod, p->skip, p->n_skip)) r->not_converted[r->n_not_converted++] = mod;
                else free(mod);
            } else if (row) {
                msbnb_quant_config cfg = p->cfg;
                if (cfg.type == MSBNB_QTYPE_INT4 && t.shape[1] % cfg.group_size) {
                    cfg.group_size = msbnb_int4_group_for(t.shape[1], p->cfg.group_size);
                    row->group_size = cfg.group_size;
                }
                st = quantize_one(r->w, &t, &cfg, p->method, row);
            }
            if (why && st == MSBNB_OK) {
                st = msbnb_st_writer_add(r->w, t.name, t.dtype, t.ndim, t.shape, t.data, t.nbytes);
                if (row) row->bytes_after = t.nbytes;
            }
            if (st != MSBNB_OK) msbnb__convert_tensor_fail(st, &t);
            msbnb_checkpoint_release(r->ck, t.name);
        }
        msbnb__convert_progress(p->progress, p->progress_ctx, i + 1, count, t.nbytes, in_bytes);
    }
    return st;
}

/* quantization_config (config.json and the file's metadata) and the method's metadata. *qcfg
 * malloc'ed. */
static msbnb_status write_metadata(qrun *r, char **qcfg) {
    const msbnb_quantize_params *p = r->p;
    msbnb_status st = msbnb_bnb_quantization_config_json(&p->cfg, (const char *const *)r->not_converted,
                                                         r->n_not_converted, qcfg);
    if (st == MSBNB_OK) st = msbnb_st_writer_set_metadata(r->w, "quantization_config", *qcfg);
    if (st == MSBNB_OK && (p->method != MSBNB_QMETHOD_RTN || p->awq))
        st = msbnb_st_writer_set_metadata(r->w, "msbnb_quant_method", msbnb_quantize_method_name(p->method, p->awq));
    return st;
}

/* The report of a finished run: rows with their own copies of the names. */
static msbnb_status make_report(const qrun *r, const msbnb_quantize_totals *totals, msbnb_quantize_report **out) {
    msbnb_quantize_report *rep = calloc(1, sizeof *rep);
    if (rep) rep->rows = calloc(r->n_rows ? r->n_rows : 1, sizeof *rep->rows);
    bool ok = rep && rep->rows;
    for (size_t i = 0; ok && i < r->n_rows; i++) {
        rep->rows[i] = r->rows[i];
        ok = (rep->rows[i].name = msbnb__strdup(r->rows[i].name)) != NULL;
        rep->n += ok;
    }
    if (rep) rep->totals = *totals;
    if (!ok) {
        msbnb_quantize_report_free(rep);
        return CONVERT_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    *out = rep;
    return MSBNB_OK;
}

msbnb_status msbnb_quantize_model(const char *in, const char *out, const msbnb_quantize_params *params,
                                  msbnb_quantize_report **report) {
    if (report) *report = NULL;
    RETURN_IF(!in || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    msbnb_quantize_params defaults = msbnb_quantize_params_default(MSBNB_QTYPE_NF4);
    const msbnb_quantize_params *p = params ? params : &defaults;
    TRY(msbnb_quantize_model_check(in, out, p));
    qrun r;
    memset(&r, 0, sizeof r);
    r.p = p;
    convert_out o;
    memset(&o, 0, sizeof o);
    msbnb_quantize_totals totals;
    memset(&totals, 0, sizeof totals);
    char *qcfg = NULL;
    msbnb_status st = msbnb_checkpoint_open(in, &r.ck);
    size_t count = st == MSBNB_OK ? msbnb_checkpoint_count(r.ck) : 0;
    for (size_t i = 0; i < count && st == MSBNB_OK; i++) {
        msbnb_tensor_info t;
        char *parent = NULL;
        st = msbnb_checkpoint_get(r.ck, i, &t);
        totals.bytes_before += st == MSBNB_OK ? t.nbytes : 0;
        if (st == MSBNB_OK && msbnb_bnb_aux_parent(r.ck, t.name, &parent))
            st = CONVERT_FAIL(MSBNB_ERR_FORMAT, "%s: tensor '%s' is already quantized (byte %llu)", t.file, parent,
                              (unsigned long long)t.file_offset);
        free(parent);
    }
    bool dir_mode = st == MSBNB_OK && msbnb_checkpoint_is_dir(r.ck);
    if (st == MSBNB_OK) st = msbnb__convert_out_begin(&o, in, out, dir_mode);
    if (st == MSBNB_OK) st = msbnb_st_writer_create(o.model_path, &r.w);
    if (st == MSBNB_OK) {
        r.rows = calloc(count ? count : 1, sizeof *r.rows);
        r.not_converted = calloc(p->n_skip + count + 1, sizeof(char *));
        if (!r.rows || !r.not_converted) st = CONVERT_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (size_t i = 0; st == MSBNB_OK && i < p->n_skip; i++) r.not_converted[r.n_not_converted++] = (char *)p->skip[i];
    if (st == MSBNB_OK && p->calib_text) st = calibrated_pass(in, &r, &totals.calib_tokens);
    if (st == MSBNB_OK) st = stream_tensors(&r, totals.bytes_before, &totals.n_other);
    if (st == MSBNB_OK) st = write_metadata(&r, &qcfg);
    if (st == MSBNB_OK) st = msbnb_st_writer_finish(r.w);
    if (st == MSBNB_OK) totals.bytes_after = msbnb_st_writer_bytes(r.w); /* including the calibrated pass */
    for (size_t i = 0; i < r.n_rows; i++) totals.n_quantized += !r.rows[i].kept;
    totals.n_kept = r.n_rows - totals.n_quantized;
    if (st == MSBNB_OK && report) st = make_report(&r, &totals, report); /* names still in ck */
    if (st == MSBNB_OK) st = msbnb__convert_out_finish(&o, in, dir_mode, qcfg);
    if (st != MSBNB_OK) {
        if (report) {
            msbnb_quantize_report_free(*report);
            *report = NULL;
        }
        msbnb_st_writer_free(r.w); /* removes the writer's temporaries */
        r.w = NULL;
        msbnb__convert_out_abort(&o);
    }
    msbnb_st_writer_free(r.w);
    msbnb__convert_out_free(&o);
    for (size_t i = p->n_skip; i < r.n_not_converted; i++) free(r.not_converted[i]);
    free(r.not_converted);
    free(r.emitted);
    free(r.rows);
    free(qcfg);
    msbnb_checkpoint_close(r.ck);
    return st;
}

/* ================================================================ report */

size_t msbnb_quantize_report_count(const msbnb_quantize_report *r) { return r ? r->n : 0; }

msbnb_status msbnb_quantize_report_get(const msbnb_quantize_report *r, size_t i, msbnb_quantize_row *row) {
    RETURN_IF(!r || !row, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(i >= r->n, MSBNB_ERR_INVALID_ARG, "row %zu of %zu", i, r->n);
    *row = r->rows[i];
    return MSBNB_OK;
}

void msbnb_quantize_report_totals(const msbnb_quantize_report *r, msbnb_quantize_totals *out) {
    if (!out) return;
    if (r) *out = r->totals;
    else memset(out, 0, sizeof *out);
}

void msbnb_quantize_report_free(msbnb_quantize_report *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) free((char *)r->rows[i].name);
    free(r->rows);
    free(r);
}
