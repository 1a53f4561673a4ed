/*
 * cli_convert.c — `msbnb quantize` and `msbnb dequantize`: checkpoint conversion, streamed
 * tensor by tensor (resident memory stays near the largest tensor: each input tensor is read
 * from the memory map, converted, handed to the writer's spill file, and its pages released).
 * Formats and exit codes: docs/io.md.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <msbnb/calibrate.h>
#include <msbnb/io.h>
#include <msbnb/model.h>
#include <msbnb/quant.h>
#include <msbnb/tokenizer.h>

#include "cli.h"
#include "cli_convert_util.h"

/* ================================================================ quantize: options */

static const char quantize_help[] =
    "usage: msbnb quantize IN OUT --type nf4|fp4|int4|int8 [options]\n"
    "\n"
    "Quantize the linear-layer weights of a checkpoint into the layout bitsandbytes and Hugging Face\n"
    "transformers load (nf4, fp4: Linear4bit; int8: Linear8bitLt) or msbnb's own (int4 per group).\n"
    "IN and OUT are both Hugging Face model directories (config.json + model.safetensors or shards;\n"
    "OUT gets one model.safetensors, config.json with quantization_config, and the other side files)\n"
    "or both .safetensors files. Everything that is not quantized is copied unchanged.\n"
    "\n"
    "options:\n"
    "  --type T          nf4, fp4, int4 or int8 (required)\n"
    "  --blocksize N     nf4/fp4 block size, power of two 32..4096 (default 64)\n"
    "  --group-size N    int4 group size along the input dimension (default 128); a layer whose\n"
    "                    column count it does not divide uses the smallest even divisor above it\n"
    "                    (shown in the table); odd column counts keep the layer unquantized\n"
    "  --double-quant    quantize the per-block scales too (nf4, fp4, int4)\n"
    "  --skip LIST       comma-separated module patterns kept unquantized (default lm_head)\n"
    "  --targets LIST    comma-separated module patterns to quantize (default: every linear layer,\n"
    "                    i.e. 2-D *.weight tensors other than embeddings and norms). A pattern is a\n"
    "                    dotted name part (q_proj, layers.0) or a glob over the module path (*.mlp.*)\n"
    "  --threshold X     int8 LLM.int8() outlier threshold recorded in the config (default 6.0)\n"
    "  --method M        how nf4/fp4/int4 codes and scales are chosen (same file format either way;\n"
    "                    docs/quantization.md): rtn (default: bitsandbytes' rule, byte-exact),\n"
    "                    search (per-block scale of least squared error), gptq (error compensation\n"
    "                    over H = X^T X; needs --calibrate), awq (per-channel scales folded into the\n"
    "                    norms / v_proj / up_proj, then rtn; needs --calibrate), awq+search, awq+gptq\n"
    "  --calibrate FILE  calibration text: the model runs over it layer by layer to collect each\n"
    "                    layer's input statistics (HF model directories only); with search they\n"
    "                    weight the error by input importance\n"
    "  --calib-tokens N  calibration tokens taken from FILE (default 4096)\n"
    "  --calib-seq N     tokens per calibration sequence (default 512, at most the model's context)\n"
    "  --tokenizer PATH  tokenizer for --calibrate (default: the one found in or above IN)\n"
    "  --quiet           no progress bar and no summary table\n"
    "\n"
    "Prints a per-layer table (type, shape, bytes before/after, relative error, SNR) and totals.\n"
    "Exit codes: 0 ok, 1 failure (bad input, I/O; no output is left behind), 2 usage error.\n";

typedef struct quantize_opts {
    const char *in, *out;
    msbnb_quant_config cfg;
    msbnb_qmethod method;
    bool awq;
    const char *calibrate, *tokenizer;
    int calib_tokens, calib_seq;
    bool have_type, quiet;
    char **skip, **targets;
    size_t n_skip, n_targets;
} quantize_opts;

static int parse_quantize(int argc, char **argv, quantize_opts *o) {
    memset(o, 0, sizeof *o);
    int blocksize = 0, group = 0, type = -1;
    bool double_quant = false;
    float threshold = 6.0f;
    const char *skip = "lm_head", *targets = NULL, *pos[2] = {0}, *method = "rtn";
    o->calib_tokens = 4096;
    static const char *const types[] = {"nf4", "fp4", "int4", "int8", NULL};
    static const msbnb_qtype type_of[] = {MSBNB_QTYPE_NF4, MSBNB_QTYPE_FP4, MSBNB_QTYPE_INT4, MSBNB_QTYPE_INT8};
    cli_args a;
    cli_args_begin(&a, "quantize", argc, argv);
    while (cli_args_next(&a)) {
        if (cli_is_help(&a)) {
            fputs(quantize_help, stdout);
            return -1;
        }
        (void)(cli_flag(&a, "--double-quant", &double_quant) || cli_flag(&a, "--quiet", &o->quiet) ||
            cli_choice(&a, "--type", types, &type) || cli_int(&a, "--blocksize", 32, 4096, &blocksize) ||
            cli_int(&a, "--group-size", 2, 1 << 20, &group) || cli_float(&a, "--threshold", 0, 1e30, &threshold) ||
            cli_str(&a, "--skip", &skip) || cli_str(&a, "--targets", &targets) || cli_str(&a, "--method", &method) ||
            cli_str(&a, "--calibrate", &o->calibrate) || cli_str(&a, "--tokenizer", &o->tokenizer) ||
            cli_int(&a, "--calib-tokens", 2, 1 << 30, &o->calib_tokens) ||
            cli_int(&a, "--calib-seq", 2, 1 << 20, &o->calib_seq) || cli_positional(&a, pos, 2));
    }
    if (a.failed) return EXIT_USAGE;
    if (blocksize & (blocksize - 1))
        return cli_args_error(&a, "--blocksize must be a power of two in 32..4096, not %d", blocksize);
    if (group % 2) return cli_args_error(&a, "--group-size must be an even number >= 2, not %d", group);
    o->in = pos[0], o->out = pos[1];
    if (!o->in || !o->out) return cli_args_error(&a, "needs IN and OUT");
    if (type < 0) return cli_args_error(&a, "--type is required");
    o->cfg = msbnb_quant_config_default(type_of[type]);
    o->have_type = true;
    o->skip = cli_split_list(skip, &o->n_skip);
    if (targets) o->targets = cli_split_list(targets, &o->n_targets);
    if (!o->skip || (targets && !o->targets)) return cli_args_error(&a, "out of memory");
    if (blocksize) o->cfg.blocksize = blocksize;
    if (group) o->cfg.group_size = group;
    o->cfg.double_quant = double_quant;
    o->cfg.threshold = threshold;
    if (double_quant && o->cfg.type == MSBNB_QTYPE_INT8)
        return cli_args_error(&a, "--double-quant applies to nf4, fp4 and int4");
    /* --method: [awq+]rtn|search|gptq, or awq alone (= awq+rtn) */
    const char *base = method;
    if (!strncmp(method, "awq", 3) && (method[3] == '\0' || method[3] == '+')) {
        o->awq = true;
        base = method[3] ? method + 4 : "rtn";
    }
    if (msbnb_qmethod_parse(base, &o->method) != MSBNB_OK || (o->awq && !strcmp(base, "awq")))
        return cli_args_error(&a, "--method must be rtn, search, gptq, awq, awq+rtn, awq+search or awq+gptq, not '%s'",
                               method);
    if ((o->method != MSBNB_QMETHOD_RTN || o->awq) && o->cfg.type == MSBNB_QTYPE_INT8)
        return cli_args_error(&a, "--method %s applies to nf4, fp4 and int4", method);
    if ((o->method == MSBNB_QMETHOD_GPTQ || o->awq) && !o->calibrate)
        return cli_args_error(&a, "--method %s needs --calibrate TEXTFILE", method);
    if (o->calibrate && o->method == MSBNB_QMETHOD_RTN && !o->awq)
        return cli_args_error(&a, "--calibrate needs --method search, gptq or awq");
    return 0;
}

/* ================================================================ quantize: one tensor */

typedef struct layer_row {
    char *name;
    int64_t shape[2];
    uint64_t before, after;
    double rel_pct, snr_db;
    const char *kept; /* NULL when quantized, else why not */
    int group_size;   /* INT4: the group size used when it differs from --group-size, else 0 */
} layer_row;

static msbnb_status write_measured(msbnb_st_writer *w, const char *name, const msbnb_qtensor *q, msbnb_dtype src,
                                   const float *ref, layer_row *row);

/* Quantize one weight, add its entries to w, measure its error. ref is float32 (rows*cols). */
static msbnb_status quantize_one(msbnb_st_writer *w, const msbnb_tensor_info *t, const msbnb_quant_config *cfg,
                                 msbnb_qmethod method, layer_row *row) {
    int64_t rows = t->shape[0], cols = t->shape[1];
    size_t n = (size_t)rows * (size_t)cols;
    msbnb_dtype src = t->dtype == MSBNB_ST_F16 ? MSBNB_DTYPE_F16 : t->dtype == MSBNB_ST_BF16 ? MSBNB_DTYPE_BF16 : MSBNB_DTYPE_F32;
    /* float32 reference: the mapped data itself when it is F32 and aligned, else a converted copy */
    float *owned = NULL;
    const float *ref = t->data;
    if (src != MSBNB_DTYPE_F32 || ((uintptr_t)t->data % sizeof(float))) {
        owned = malloc(n * sizeof(float));
        if (!owned) return cli_oom();
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
    if (st == MSBNB_OK) st = write_measured(w, t->name, q, src, ref, row);
    free(owned);
    msbnb_qtensor_free(q);
    return st;
}

/* Write q as `name` (shape [rows, cols], original dtype src) and measure its error against ref. */
static msbnb_status write_measured(msbnb_st_writer *w, const char *name, const msbnb_qtensor *q, msbnb_dtype src,
                                   const float *ref, layer_row *row) {
    msbnb_qtensor_view qv;
    msbnb_qtensor_get_view(q, &qv);
    const int64_t rows = qv.rows, cols = qv.cols;
    uint64_t before = msbnb_st_writer_bytes(w);
    msbnb_status st = msbnb_bnb_write(w, name, q, src);
    row->after = msbnb_st_writer_bytes(w) - before;
    /* error, dequantizing a slab of rows at a time so no second full-size buffer is needed */
    cli_err_acc acc = {0};
    int64_t slab = cols > 0 ? (int64_t)((1 << 20) / (size_t)cols) + 1 : 1;
    float *y = st == MSBNB_OK ? malloc((size_t)(slab < rows ? slab : rows) * (size_t)cols * sizeof(float) + 1) : NULL;
    if (st == MSBNB_OK && !y) st = cli_oom();
    for (int64_t r0 = 0; st == MSBNB_OK && r0 < rows; r0 += slab) {
        int64_t nr = rows - r0 < slab ? rows - r0 : slab;
        st = msbnb_dequantize_rows(q, r0, nr, y);
        if (st == MSBNB_OK) cli_err_add(&acc, ref + (size_t)r0 * (size_t)cols, y, (size_t)nr * (size_t)cols);
    }
    double mse;
    cli_err_finish(&acc, &row->rel_pct, &row->snr_db, &mse);
    free(y);
    return st;
}

/* Why a tensor is not quantized (NULL = quantize it). */
static const char *keep_reason(const quantize_opts *o, const msbnb_tensor_info *t, bool *is_linear) {
    *is_linear = cli_is_linear_weight(t);
    if (!*is_linear) return "not a linear layer";
    char *mod = cli_module_of(t->name);
    const char *why = NULL;
    for (size_t i = 0; mod && i < o->n_skip && !why; i++)
        if (cli_pattern_match(mod, o->skip[i])) why = "skipped (--skip)";
    if (!why && o->n_targets) {
        bool hit = false;
        for (size_t i = 0; mod && i < o->n_targets && !hit; i++) hit = cli_pattern_match(mod, o->targets[i]);
        if (!hit) why = "not in --targets";
    }
    if (!why && o->cfg.type == MSBNB_QTYPE_INT4 && t->shape[1] % 2) why = "odd column count (int4)";
    if (!why && (t->shape[0] == 0 || t->shape[1] == 0)) why = "empty (no element to quantize)";
    free(mod);
    return why;
}

/* ================================================================ quantize: summary */

static void print_summary(const layer_row *rows, size_t n, uint64_t total_before, uint64_t total_after,
                          size_t n_other, const msbnb_quant_config *cfg) {
    char b1[32], b2[32], sh[48];
    printf("\n%-48s %-6s %-13s %11s %11s %9s %8s\n", "layer", "type", "shape", "before", "after", "rel.err%",
           "SNR dB");
    for (size_t i = 0; i < n; i++) {
        const layer_row *r = &rows[i];
        cli_shape_str(r->shape, 2, sh, sizeof sh);
        if (r->kept) {
            printf("%-48s %-6s %-13s %11s %11s  kept: %s\n", r->name, "-", sh, cli_bytes_str(r->before, b1, sizeof b1),
                   cli_bytes_str(r->after, b2, sizeof b2), r->kept);
        } else {
            printf("%-48s %-6s %-13s %11s %11s %9.3f %8.2f", r->name, msbnb_qtype_name(cfg->type), sh,
                   cli_bytes_str(r->before, b1, sizeof b1), cli_bytes_str(r->after, b2, sizeof b2), r->rel_pct,
                   r->snr_db);
            if (r->group_size) printf("  (group size %d)", r->group_size);
            printf("\n");
        }
    }
    size_t nq = 0;
    for (size_t i = 0; i < n; i++) nq += !rows[i].kept;
    printf("\nquantized %zu linear layers to %s%s; %zu linear layers and %zu other tensors kept as they were\n", nq,
           msbnb_qtype_name(cfg->type), cfg->double_quant ? " (double quant)" : "", n - nq, n_other);
    printf("model size: %s -> %s, memory saved %.1f%% (%.2fx smaller)\n", cli_bytes_str(total_before, b1, sizeof b1),
           cli_bytes_str(total_after, b2, sizeof b2),
           total_before ? 100.0 * (1.0 - (double)total_after / (double)total_before) : 0.0,
           total_after ? (double)total_before / (double)total_after : 0.0);
}

/* ================================================================ quantize: calibration */

/* State of a calibrated run, shared with the library's callbacks. Names point into ck. */
typedef struct calib_run {
    const quantize_opts *o;
    msbnb_checkpoint *ck;
    msbnb_st_writer *w;
    layer_row *rows;
    size_t *n_rows;
    const char **emitted; /* tensors written by the calibrated pass: [n_emitted] */
    size_t n_emitted;
    char **not_converted; /* modules left plain (config's llm_int8_skip_modules) */
    size_t *n_not_converted;
} calib_run;

static bool was_emitted(const calib_run *r, const char *name) {
    for (size_t i = 0; i < r->n_emitted; i++)
        if (!strcmp(r->emitted[i], name)) return true;
    return false;
}

static int calib_select(void *ctx, const char *name, int64_t rows, int64_t cols) {
    (void)rows, (void)cols;
    calib_run *r = ctx;
    msbnb_tensor_info t;
    bool linear;
    return msbnb_checkpoint_find(r->ck, name, &t) == MSBNB_OK && keep_reason(r->o, &t, &linear) == NULL;
}

static msbnb_status calib_emit(void *ctx, const char *name, const msbnb_qtensor *q, const float *values, int ndim,
                               const int64_t *shape) {
    calib_run *r = ctx;
    msbnb_tensor_info t;
    msbnb_status st = msbnb_checkpoint_find(r->ck, name, &t);
    if (st != MSBNB_OK) return st;
    r->emitted[r->n_emitted++] = t.name;
    size_t bytes = sizeof(float);
    for (int i = 0; i < ndim; i++) bytes *= (size_t)shape[i];
    layer_row *row = ndim == 2 ? &r->rows[(*r->n_rows)++] : NULL;
    if (row) {
        row->name = (char *)t.name;
        row->shape[0] = shape[0], row->shape[1] = shape[1];
        row->before = t.nbytes;
    }
    if (q) {
        msbnb_qtensor_view v;
        msbnb_qtensor_get_view(q, &v);
        if (v.type == MSBNB_QTYPE_INT4 && v.group_size != r->o->cfg.group_size) row->group_size = v.group_size;
        msbnb_dtype src = t.dtype == MSBNB_ST_F16 ? MSBNB_DTYPE_F16 : t.dtype == MSBNB_ST_BF16 ? MSBNB_DTYPE_BF16 : MSBNB_DTYPE_F32;
        st = write_measured(r->w, t.name, q, src, values, row);
    } else {
        st = msbnb_st_writer_add(r->w, t.name, MSBNB_ST_F32, ndim, shape, values, bytes);
        if (row) { /* a projection left plain whose rows or columns AWQ scaled */
            row->after = bytes;
            row->kept = "kept plain (AWQ-scaled)";
            char *mod = cli_module_of(t.name);
            if (mod) r->not_converted[(*r->n_not_converted)++] = mod;
        }
    }
    msbnb_checkpoint_release(r->ck, t.name);
#if defined(__GLIBC__)
    /* a projection done: hand the heap's free pages back (holes left between the layer's
     * buffers below the mmap threshold; see bound_heap) */
    if (ndim == 2) (void)malloc_trim(0);
#endif
    return st;
}

/* Calibration token ids: the first ~16 bytes per wanted token of FILE (cut at a space), encoded by
 * the model's tokenizer (--tokenizer, else the one msbnb_tokenizer_load finds at IN) with its special
 * tokens (BOS), at most calib_tokens of them. *ids malloc'ed. */
static msbnb_status calib_tokens(const quantize_opts *o, const msbnb_checkpoint *ck, int32_t **ids, int64_t *n) {
    *ids = NULL;
    int64_t vocab = 0;
    const msbnb_config *cfg = msbnb_checkpoint_config(ck);
    if (!cfg || msbnb_config_get_int(cfg, "vocab_size", &vocab) != MSBNB_OK || vocab < 1 || vocab > (1 << 30)) {
        cli_error_line("msbnb quantize: %s: no vocab_size in config.json", o->in);
        return MSBNB_ERR_FORMAT;
    }
    msbnb_tokenizer *tok = NULL;
    msbnb_status st = msbnb_tokenizer_load(o->tokenizer ? o->tokenizer : o->in, (int)vocab, &tok);
    if (st != MSBNB_OK) return st;
    FILE *f = fopen(o->calibrate, "rb");
    size_t cap = (size_t)o->calib_tokens * 16 + 1, len = 0;
    char *text = f ? malloc(cap + 1) : NULL;
    if (!f) {
        cli_error_line("msbnb quantize: cannot open calibration text '%s'", o->calibrate);
        st = MSBNB_ERR_IO;
    } else if (!text) {
        st = MSBNB_ERR_OUT_OF_MEMORY;
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
    if (st == MSBNB_OK && count < 2) {
        cli_error_line("msbnb quantize: calibration text '%s' gives fewer than 2 tokens", o->calibrate);
        st = MSBNB_ERR_FORMAT;
    }
    if (st != MSBNB_OK) {
        free(*ids);
        *ids = NULL;
        return st;
    }
    *n = (int64_t)count < o->calib_tokens ? (int64_t)count : o->calib_tokens;
    return MSBNB_OK;
}

/* ================================================================ quantize */

/* Keep the heap bounded over a long run. glibc serves a block above its mmap threshold with its
 * own mapping, returned to the system on free — but each such free RAISES the threshold to the
 * block's size (up to 32 MiB), so a layer's later buffers of a few MB come from the heap, whose
 * holes survive the layer. Measured on the generated 4-layer model (gptq, calibrated): RssAnon
 * grew ~30 MB per layer (545 MB peak) with the dynamic threshold, stayed flat (367 MB) with it
 * fixed at 1 MiB. Fixing it (any mallopt call also stops the adjustment) is the tool's choice, so
 * it is made here, not in the library; MALLOC_MMAP_THRESHOLD_ in the environment still wins. */
static void bound_heap(void) {
#if defined(__GLIBC__)
    if (!getenv("MALLOC_MMAP_THRESHOLD_")) (void)mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
}

int cli_quantize_run(int argc, char **argv, msbnb_status *status) {
    const char *cmd = "quantize";
    *status = MSBNB_OK;
    quantize_opts o;
    int rc = parse_quantize(argc, argv, &o);
    if (rc) {
        cli_free_list(o.skip);
        cli_free_list(o.targets);
        return rc < 0 ? EXIT_OK : rc;
    }
    msbnb_checkpoint *ck = NULL;
    msbnb_st_writer *w = NULL;
    cli_output out;
    memset(&out, 0, sizeof out);
    layer_row *rows = NULL;
    size_t n_rows = 0, n_other = 0;
    char **not_converted = NULL;
    size_t n_not_converted = 0;
    char *qcfg = NULL;
    calib_run run;
    memset(&run, 0, sizeof run);
    bound_heap();
    msbnb_status st = msbnb_checkpoint_open(o.in, &ck);
    if (st != MSBNB_OK) goto done; /* rejected input: nothing was created */
    size_t count = msbnb_checkpoint_count(ck);
    uint64_t in_bytes = 0;
    for (size_t i = 0; i < count && st == MSBNB_OK; i++) {
        msbnb_tensor_info t;
        st = msbnb_checkpoint_get(ck, i, &t);
        in_bytes += t.nbytes;
        char *parent = st == MSBNB_OK ? cli_aux_parent(ck, t.name) : NULL;
        if (parent) {
            cli_error_line("msbnb %s: %s: tensor '%s' is already quantized (byte %llu)", cmd, t.file, parent,
                    (unsigned long long)t.file_offset);
            free(parent);
            st = MSBNB_ERR_FORMAT;
            rc = EXIT_FAIL;
            goto done;
        }
    }
    if (st != MSBNB_OK) goto done;
    struct stat sb;
    bool dir_mode = msbnb_checkpoint_is_dir(ck);
    if (!dir_mode && stat(o.out, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        rc = cli_usage_error(cmd, "IN is a file, so OUT must be a file too ('%s' is a directory)", o.out);
        goto done;
    }
    if ((st = cli_output_begin(&out, o.in, o.out, dir_mode)) != MSBNB_OK) goto done;
    if ((st = msbnb_st_writer_create(out.model_path, &w)) != MSBNB_OK) goto done;
    rows = calloc(count ? count : 1, sizeof *rows);
    not_converted = calloc(o.n_skip + count + 1, sizeof(char *));
    if (!rows || !not_converted) {
        st = cli_oom();
        goto done;
    }
    for (size_t i = 0; i < o.n_skip; i++) not_converted[n_not_converted++] = o.skip[i];

    run.o = &o, run.ck = ck, run.w = w, run.rows = rows, run.n_rows = &n_rows;
    run.not_converted = not_converted, run.n_not_converted = &n_not_converted;
    if (o.calibrate) {
        if (!dir_mode) {
            rc = cli_usage_error(cmd, "--calibrate needs model directories (config.json), not .safetensors files");
            goto done;
        }
        int32_t *ids = NULL;
        int64_t n_ids = 0;
        if (!(run.emitted = calloc(count + 1, sizeof(char *)))) st = MSBNB_ERR_OUT_OF_MEMORY;
        if (st == MSBNB_OK) st = calib_tokens(&o, ck, &ids, &n_ids);
        if (st == MSBNB_OK) {
            msbnb_calib_params cp = msbnb_calib_params_default(o.cfg.type);
            cp.cfg = o.cfg;
            cp.method.method = o.method;
            cp.awq = o.awq;
            cp.tokens = ids;
            cp.n_tokens = n_ids;
            cp.seq_len = (int)o.calib_seq;
            cp.select = calib_select;
            cp.select_ctx = &run;
            if (!o.quiet)
                fprintf(stderr, "calibrating on %lld tokens of %s (method %s%s)\n", (long long)n_ids, o.calibrate,
                        o.awq ? "awq+" : "", msbnb_qmethod_name(o.method));
            st = msbnb_quantize_checkpoint_calibrated(ck, &cp, calib_emit, &run);
        }
        free(ids);
        if (st != MSBNB_OK) goto done;
    }

    cli_progress prog;
    cli_progress_begin(&prog, count, in_bytes, o.quiet);
    uint64_t total_after = 0;
    for (size_t i = 0; i < count && st == MSBNB_OK; i++) {
        msbnb_tensor_info t;
        if ((st = msbnb_checkpoint_get(ck, i, &t)) != MSBNB_OK) break;
        if (was_emitted(&run, t.name)) { /* written by the calibrated pass */
            cli_progress_step(&prog, i + 1, t.nbytes);
            continue;
        }
        bool linear;
        const char *why = keep_reason(&o, &t, &linear);
        uint64_t before = msbnb_st_writer_bytes(w);
        if (linear) {
            layer_row *r = &rows[n_rows++];
            r->name = (char *)t.name;
            r->shape[0] = t.shape[0], r->shape[1] = t.shape[1];
            r->before = t.nbytes;
            r->kept = why;
            if (why) {
                char *mod = cli_module_of(t.name);
                bool listed = false;
                for (size_t k = 0; mod && k < o.n_skip; k++) listed |= cli_pattern_match(mod, o.skip[k]);
                if (mod && !listed) not_converted[n_not_converted++] = mod;
                else free(mod);
            } else {
                msbnb_quant_config cfg = o.cfg;
                if (cfg.type == MSBNB_QTYPE_INT4 && t.shape[1] % cfg.group_size) {
                    cfg.group_size = msbnb_int4_group_for(t.shape[1], o.cfg.group_size);
                    r->group_size = cfg.group_size;
                }
                st = quantize_one(w, &t, &cfg, o.method, r);
            }
        } else {
            n_other++;
        }
        if (why && st == MSBNB_OK) {
            st = msbnb_st_writer_add(w, t.name, t.dtype, t.ndim, t.shape, t.data, t.nbytes);
            if (linear) rows[n_rows - 1].after = t.nbytes;
        }
        if (st != MSBNB_OK && t.name) {
            cli_tensor_error(cmd, &t);
            rc = EXIT_FAIL;
        }
        total_after += msbnb_st_writer_bytes(w) - before;
        msbnb_checkpoint_release(ck, t.name);
        cli_progress_step(&prog, i + 1, t.nbytes);
    }
    cli_progress_end(&prog);
    if (st != MSBNB_OK) goto done;
    total_after = msbnb_st_writer_bytes(w); /* including the calibrated pass */

    /* quantization_config for transformers (also kept in the file's metadata) */
    st = msbnb_bnb_quantization_config_json(&o.cfg, (const char *const *)not_converted, n_not_converted, &qcfg);
    if (st == MSBNB_OK) st = msbnb_st_writer_set_metadata(w, "quantization_config", qcfg);
    if (st == MSBNB_OK && (o.method != MSBNB_QMETHOD_RTN || o.awq)) {
        char meth[32];
        snprintf(meth, sizeof meth, "%s%s", o.awq ? "awq+" : "", msbnb_qmethod_name(o.method));
        st = msbnb_st_writer_set_metadata(w, "msbnb_quant_method", meth);
    }
    if (st == MSBNB_OK) st = msbnb_st_writer_finish(w);
    if (st != MSBNB_OK) goto done;
    cli_output_created(&out, out.model_path);
    if (dir_mode) {
        char *src = malloc(strlen(o.in) + 16), *dst = malloc(strlen(out.dir) + 16);
        if (src && dst) {
            sprintf(src, "%s/config.json", o.in);
            sprintf(dst, "%s/config.json", out.dir);
            st = msbnb_config_write_with_quantization(src, dst, qcfg);
            if (st == MSBNB_OK) cli_output_created(&out, dst);
        } else {
            st = cli_oom();
        }
        free(src);
        free(dst);
        if (st == MSBNB_OK) st = cli_copy_side_files(&out, o.in);
    }
    if (st == MSBNB_OK) st = cli_output_commit(&out);
    if (st == MSBNB_OK && !o.quiet) print_summary(rows, n_rows, in_bytes, total_after, n_other, &o.cfg);

done:
    if (st != MSBNB_OK || rc != EXIT_OK) {
        if (rc == EXIT_OK) rc = cli_fail(cmd);
        msbnb_st_writer_free(w); /* removes the writer's temporaries */
        w = NULL;
        cli_output_abort(&out);
    }
    msbnb_st_writer_free(w);
    cli_output_free(&out);
    for (size_t i = o.n_skip; i < n_not_converted; i++) free(not_converted[i]);
    free(not_converted);
    free(run.emitted);
    free(rows);
    free(qcfg);
    msbnb_checkpoint_close(ck);
    cli_free_list(o.skip);
    cli_free_list(o.targets);
    *status = st;
    return rc;
}

int cmd_quantize(int argc, char **argv) {
    msbnb_status st;
    return cli_quantize_run(argc, argv, &st);
}

/* ================================================================ dequantize */

static const char dequantize_help[] =
    "usage: msbnb dequantize IN OUT [--dtype f32|f16|bf16] [--quiet]\n"
    "\n"
    "Turn a quantized checkpoint (written by `msbnb quantize`, or by bitsandbytes / transformers,\n"
    "e.g. a published bnb-4bit model) back into plain weights. IN and OUT are both model\n"
    "directories or both .safetensors files. Quantized weights become --dtype (default: the dtype of\n"
    "the checkpoint's plain tensors, so a bf16 model stays bf16; f32 when it has none) with\n"
    "their original shape; their auxiliary entries (absmax, quant_map, SCB, ...) are dropped;\n"
    "every other tensor is copied unchanged; config.json loses its quantization_config.\n"
    "Exit codes: 0 ok, 1 failure (no output is left behind), 2 usage error.\n";

int cmd_dequantize(int argc, char **argv) {
    const char *cmd = "dequantize";
    const char *pos[2] = {0};
    int dt = -1; /* -1: the source's dtype */
    bool quiet = false;
    static const char *const dtypes[] = {"f32", "f16", "bf16", NULL};
    static const msbnb_dtype dtype_of[] = {MSBNB_DTYPE_F32, MSBNB_DTYPE_F16, MSBNB_DTYPE_BF16};
    cli_args a;
    cli_args_begin(&a, cmd, argc, argv);
    while (cli_args_next(&a)) {
        if (cli_is_help(&a)) {
            fputs(dequantize_help, stdout);
            return EXIT_OK;
        }
        (void)(cli_flag(&a, "--quiet", &quiet) || cli_choice(&a, "--dtype", dtypes, &dt) || cli_positional(&a, pos, 2));
    }
    if (a.failed) return EXIT_USAGE;
    const char *in = pos[0], *outp = pos[1];
    if (!in || !outp) return cli_usage_error(cmd, "needs IN and OUT");
    static const msbnb_st_dtype st_of[] = {MSBNB_ST_F32, MSBNB_ST_F16, MSBNB_ST_BF16};
    msbnb_dtype dtype = MSBNB_DTYPE_F32;
    size_t esize = 4;

    msbnb_checkpoint *ck = NULL;
    msbnb_st_writer *w = NULL;
    cli_output out;
    memset(&out, 0, sizeof out);
    int rc = EXIT_OK;
    size_t n_deq = 0;
    msbnb_status st = msbnb_checkpoint_open(in, &ck);
    if (st != MSBNB_OK) goto done;
    if (dt >= 0) {
        dtype = dtype_of[dt];
    } else {
        /* the source's dtype: that of its plain floating-point tensors (embedding, norms) */
        for (size_t i = 0; i < msbnb_checkpoint_count(ck); i++) {
            msbnb_tensor_info t;
            msbnb_qtype qt = MSBNB_QTYPE_NONE;
            if (msbnb_checkpoint_get(ck, i, &t) != MSBNB_OK || strstr(t.name, "absmax") || strstr(t.name, "quant_"))
                continue;
            if (msbnb_bnb_detect(ck, t.name, &qt) != MSBNB_OK || qt != MSBNB_QTYPE_NONE) continue;
            if (t.dtype == MSBNB_ST_BF16 || t.dtype == MSBNB_ST_F16 || t.dtype == MSBNB_ST_F32) {
                dtype = t.dtype == MSBNB_ST_BF16 ? MSBNB_DTYPE_BF16 : t.dtype == MSBNB_ST_F16 ? MSBNB_DTYPE_F16 : MSBNB_DTYPE_F32;
                break;
            }
        }
    }
    esize = dtype == MSBNB_DTYPE_F32 ? 4 : 2;
    bool dir_mode = msbnb_checkpoint_is_dir(ck);
    struct stat sb;
    if (!dir_mode && stat(outp, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        rc = cli_usage_error(cmd, "IN is a file, so OUT must be a file too ('%s' is a directory)", outp);
        goto done;
    }
    if ((st = cli_output_begin(&out, in, outp, dir_mode)) != MSBNB_OK) goto done;
    if ((st = msbnb_st_writer_create(out.model_path, &w)) != MSBNB_OK) goto done;
    size_t count = msbnb_checkpoint_count(ck);
    cli_progress prog;
    cli_progress_begin(&prog, count, 0, quiet);
    for (size_t i = 0; i < count && st == MSBNB_OK; i++) {
        msbnb_tensor_info t;
        if ((st = msbnb_checkpoint_get(ck, i, &t)) != MSBNB_OK) break;
        char *parent = cli_aux_parent(ck, t.name);
        msbnb_qtype type = MSBNB_QTYPE_NONE;
        if (!parent) st = msbnb_bnb_detect(ck, t.name, &type);
        if (parent) {
            free(parent); /* folded into its weight */
        } else if (st == MSBNB_OK && type == MSBNB_QTYPE_NONE) {
            st = msbnb_st_writer_add(w, t.name, t.dtype, t.ndim, t.shape, t.data, t.nbytes);
        } else if (st == MSBNB_OK) {
            msbnb_qtensor *q = NULL;
            st = msbnb_bnb_read(ck, t.name, &q);
            msbnb_qtensor_view v;
            void *y = NULL;
            if (st == MSBNB_OK) st = msbnb_qtensor_get_view(q, &v);
            if (st == MSBNB_OK && !(y = malloc((size_t)v.rows * (size_t)v.cols * esize + 1))) st = cli_oom();
            if (st == MSBNB_OK) st = msbnb_dequantize_ex(q, dtype, y);
            int64_t shape[2] = {st == MSBNB_OK ? v.rows : 0, st == MSBNB_OK ? v.cols : 0};
            if (st == MSBNB_OK)
                st = msbnb_st_writer_add(w, t.name, st_of[dtype], 2, shape, y, (size_t)(shape[0] * shape[1]) * esize);
            n_deq += st == MSBNB_OK;
            free(y);
            msbnb_qtensor_free(q);
        }
        if (st != MSBNB_OK) {
            cli_tensor_error(cmd, &t);
            rc = EXIT_FAIL;
        }
        msbnb_checkpoint_release(ck, t.name);
        cli_progress_step(&prog, i + 1, t.nbytes);
    }
    cli_progress_end(&prog);
    if (st == MSBNB_OK) st = msbnb_st_writer_finish(w);
    if (st == MSBNB_OK) cli_output_created(&out, out.model_path);
    if (st == MSBNB_OK && dir_mode) {
        char *src = malloc(strlen(in) + 16), *dst = malloc(strlen(out.dir) + 16);
        if (src && dst) {
            sprintf(src, "%s/config.json", in);
            sprintf(dst, "%s/config.json", out.dir);
            st = msbnb_config_write_with_quantization(src, dst, NULL);
            if (st == MSBNB_OK) cli_output_created(&out, dst);
        } else {
            st = cli_oom();
        }
        free(src);
        free(dst);
        if (st == MSBNB_OK) st = cli_copy_side_files(&out, in);
    }
    if (st == MSBNB_OK) st = cli_output_commit(&out);
    if (st == MSBNB_OK && !quiet)
        printf("dequantized %zu weights to %s; wrote %s\n", n_deq,
               dtype == MSBNB_DTYPE_F32 ? "f32" : dtype == MSBNB_DTYPE_F16 ? "f16" : "bf16", outp);
done:
    if (st != MSBNB_OK || rc != EXIT_OK) {
        if (rc == EXIT_OK) rc = cli_fail(cmd);
        msbnb_st_writer_free(w);
        w = NULL;
        cli_output_abort(&out);
    }
    msbnb_st_writer_free(w);
    cli_output_free(&out);
    msbnb_checkpoint_close(ck);
    return rc;
}
