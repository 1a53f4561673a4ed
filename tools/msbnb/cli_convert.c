/*
 * cli_convert.c — `msbnb quantize` and `msbnb dequantize`: checkpoint conversion, streamed
 * tensor by tensor (resident memory stays near the largest tensor: each input tensor is read
 * from the memory map, converted, handed to the writer's spill file, and its pages released).
 * Formats and exit codes: docs/io.md.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <msbnb/convert.h>

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
    msbnb_quantize_params p;
    const char *method_spec;
    bool quiet;
    char **skip, **targets; /* the parsed lists p.skip / p.targets point to */
} quantize_opts;

static int parse_quantize(int argc, char **argv, quantize_opts *o) {
    memset(o, 0, sizeof *o);
    int blocksize = 0, group = 0, type = -1, calib_tokens = 4096, calib_seq = 0;
    bool double_quant = false;
    float threshold = 6.0f;
    const char *skip = "lm_head", *targets = NULL, *pos[2] = {0}, *method = "rtn", *calibrate = NULL, *tokenizer = NULL;
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
            cli_str(&a, "--calibrate", &calibrate) || cli_str(&a, "--tokenizer", &tokenizer) ||
            cli_int(&a, "--calib-tokens", 2, 1 << 30, &calib_tokens) ||
            cli_int(&a, "--calib-seq", 2, 1 << 20, &calib_seq) || cli_positional(&a, pos, 2));
    }
    if (a.failed) return EXIT_USAGE;
    /* the values' combinations (power-of-two blocksize, methods per type, calibration) are checked
     * by the library, msbnb_quantize_model_check in cmd_quantize */
    o->in = pos[0], o->out = pos[1];
    if (!o->in || !o->out) return cli_args_error(&a, "needs IN and OUT");
    if (type < 0) return cli_args_error(&a, "--type is required");
    msbnb_quantize_params *p = &o->p;
    *p = msbnb_quantize_params_default(type_of[type]);
    o->skip = cli_split_list(skip, &p->n_skip);
    if (targets) o->targets = cli_split_list(targets, &p->n_targets);
    if (!o->skip || (targets && !o->targets)) return cli_args_error(&a, "out of memory");
    p->skip = (const char *const *)o->skip, p->targets = (const char *const *)o->targets;
    if (blocksize) p->cfg.blocksize = blocksize;
    if (group) p->cfg.group_size = group;
    p->cfg.double_quant = double_quant;
    p->cfg.threshold = threshold;
    p->calib_text = calibrate, p->tokenizer = tokenizer;
    p->calib_tokens = calib_tokens, p->calib_seq = calib_seq;
    if (msbnb_quantize_method_parse(method, &p->method, &p->awq) != MSBNB_OK)
        return cli_args_error(&a, "--method must be rtn, search, gptq, awq, awq+rtn, awq+search or awq+gptq, not '%s'",
                              method);
    o->method_spec = method;
    return 0;
}

/* ================================================================ quantize: progress and summary */

typedef struct convert_progress {
    bool quiet;
    const quantize_opts *q; /* quantize's options, for the calibration line; NULL for dequantize */
    cli_progress bar;
    bool begun;
} convert_progress;

/* The library's progress events: quantize's calibration line, then the bar (on a terminal). */
static void on_progress(void *ctx, const msbnb_convert_progress *ev) {
    convert_progress *c = ctx;
    if (ev->stage == MSBNB_CONVERT_CALIBRATING) {
        const msbnb_quantize_params *p = &c->q->p;
        if (!c->quiet)
            fprintf(stderr, "calibrating on %lld tokens of %s (method %s)\n", (long long)ev->calib_tokens,
                    p->calib_text, msbnb_quantize_method_name(p->method, p->awq));
    } else if (!c->begun) {
        cli_progress_begin(&c->bar, ev->total, ev->bytes_total, c->quiet);
        c->begun = true;
    } else {
        cli_progress_step(&c->bar, ev->done, ev->bytes);
    }
}

static void print_summary(const msbnb_quantize_report *rep, const msbnb_quant_config *cfg) {
    char b1[32], b2[32], sh[48];
    printf("\n%-48s %-6s %-13s %11s %11s %9s %8s\n", "layer", "type", "shape", "before", "after", "rel.err%",
           "SNR dB");
    size_t n = msbnb_quantize_report_count(rep);
    for (size_t i = 0; i < n; i++) {
        msbnb_quantize_row r;
        msbnb_quantize_report_get(rep, i, &r);
        cli_shape_str(r.shape, 2, sh, sizeof sh);
        if (r.kept) {
            printf("%-48s %-6s %-13s %11s %11s  kept: %s\n", r.name, "-", sh,
                   cli_bytes_str(r.bytes_before, b1, sizeof b1), cli_bytes_str(r.bytes_after, b2, sizeof b2), r.kept);
        } else {
            printf("%-48s %-6s %-13s %11s %11s %9.3f %8.2f", r.name, msbnb_qtype_name(cfg->type), sh,
                   cli_bytes_str(r.bytes_before, b1, sizeof b1), cli_bytes_str(r.bytes_after, b2, sizeof b2),
                   r.rel_err_pct, r.snr_db);
            if (r.group_size) printf("  (group size %d)", r.group_size);
            printf("\n");
        }
    }
    msbnb_quantize_totals t;
    msbnb_quantize_report_totals(rep, &t);
    printf("\nquantized %zu linear layers to %s%s; %zu linear layers and %zu other tensors kept as they were\n",
           t.n_quantized, msbnb_qtype_name(cfg->type), cfg->double_quant ? " (double quant)" : "", t.n_kept,
           t.n_other);
    printf("model size: %s -> %s, memory saved %.1f%% (%.2fx smaller)\n", cli_bytes_str(t.bytes_before, b1, sizeof b1),
           cli_bytes_str(t.bytes_after, b2, sizeof b2),
           t.bytes_before ? 100.0 * (1.0 - (double)t.bytes_after / (double)t.bytes_before) : 0.0,
           t.bytes_after ? (double)t.bytes_before / (double)t.bytes_after : 0.0);
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

int cmd_quantize(int argc, char **argv) {
    const char *cmd = "quantize";
    quantize_opts o;
    int rc = parse_quantize(argc, argv, &o);
    msbnb_quantize_report *rep = NULL;
    /* the IN/OUT pair (an IN file needs an OUT file) is a usage error as well */
    if (rc == 0 && msbnb_quantize_model_check(o.in, o.out, &o.p) == MSBNB_ERR_INVALID_ARG)
        rc = cli_usage_error(cmd, "%s", msbnb_last_error());
    if (rc == 0) {
        bound_heap();
        convert_progress prog = {o.quiet, &o, {0}, false};
        o.p.progress = on_progress, o.p.progress_ctx = &prog;
        msbnb_status st = msbnb_quantize_model(o.in, o.out, &o.p, &rep);
        if (prog.begun) cli_progress_end(&prog.bar);
        if (st != MSBNB_OK) rc = cli_fail(cmd);
        else if (!o.quiet) print_summary(rep, &o.p.cfg);
    }
    msbnb_quantize_report_free(rep);
    cli_free_list(o.skip);
    cli_free_list(o.targets);
    return rc < 0 ? EXIT_OK : rc;
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
    convert_progress prog = {quiet, NULL, {0}, false};
    msbnb_dequantize_params dp = {dt >= 0 ? (int)dtype_of[dt] : -1, on_progress, &prog};
    /* an IN file with an OUT directory is a usage error */
    if (msbnb_dequantize_model_check(in, outp, &dp) == MSBNB_ERR_INVALID_ARG)
        return cli_usage_error(cmd, "%s", msbnb_last_error());
    msbnb_dequantize_result res;
    msbnb_status st = msbnb_dequantize_model(in, outp, &dp, &res);
    if (prog.begun) cli_progress_end(&prog.bar);
    if (st != MSBNB_OK) return cli_fail(cmd);
    if (!quiet)
        printf("dequantized %zu weights to %s; wrote %s\n", res.n_dequantized,
               res.dtype == MSBNB_DTYPE_F32 ? "f32" : res.dtype == MSBNB_DTYPE_F16 ? "f16" : "bf16", outp);
    return EXIT_OK;
}
