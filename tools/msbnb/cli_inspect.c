/* cli_inspect.c — `msbnb inspect` (what a checkpoint holds) and `msbnb compare` (per-tensor error
 * statistics between two checkpoints). Exit codes: docs/io.md. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msbnb/io.h>
#include <msbnb/quant.h>

#include "cli.h"
#include "cli_convert_util.h"

/* ================================================================ inspect */

static const char inspect_help[] =
    "usage: msbnb inspect FILE|DIR\n"
    "\n"
    "List a checkpoint's tensors: dtype, shape, bytes on disk, and for quantized weights the format\n"
    "(nf4/fp4 with block size and double quantization, int8 Linear8bitLt, int4 per group), with\n"
    "their auxiliary entries (absmax, quant_map, SCB, ...) folded in; then the safetensors metadata\n"
    "and config.json's quantization_config. The whole file is validated first.\n"
    "Exit codes: 0 ok, 1 failure (invalid or unreadable checkpoint), 2 usage error.\n";

/* "nf4 bs=64 dq" for a quantized weight, into buf. */
static msbnb_status describe_quant(const msbnb_checkpoint *ck, const char *name, int64_t shape[2], char *buf, size_t cap) {
    msbnb_qtensor *q = NULL;
    msbnb_status st = msbnb_bnb_read(ck, name, &q);
    if (st != MSBNB_OK) return st;
    msbnb_qtensor_view v;
    msbnb_qtensor_get_view(q, &v);
    shape[0] = v.rows, shape[1] = v.cols;
    if (v.type == MSBNB_QTYPE_NF4 || v.type == MSBNB_QTYPE_FP4)
        snprintf(buf, cap, "%s bs=%d%s", msbnb_qtype_name(v.type), v.blocksize, v.double_quant ? " dq" : "");
    else if (v.type == MSBNB_QTYPE_INT4)
        snprintf(buf, cap, "int4 g=%d%s", v.group_size, v.double_quant ? " dq" : "");
    else
        snprintf(buf, cap, "int8 %s%s", v.asymmetric ? "asym" : "sym", v.per_row ? " row" : " tensor");
    msbnb_qtensor_free(q);
    return MSBNB_OK;
}

int cmd_inspect(int argc, char **argv) {
    const char *cmd = "inspect";
    const char *path = NULL;
    cli_args a;
    cli_args_begin(&a, cmd, argc, argv);
    while (cli_args_next(&a)) {
        if (cli_is_help(&a)) {
            fputs(inspect_help, stdout);
            return EXIT_OK;
        }
        cli_positional(&a, &path, 1);
    }
    if (a.failed) return EXIT_USAGE;
    if (!path) return cli_usage_error(cmd, "needs a FILE or DIR");
    msbnb_checkpoint *ck = NULL;
    if (msbnb_checkpoint_open(path, &ck) != MSBNB_OK) return cli_fail(cmd);
    size_t count = msbnb_checkpoint_count(ck);
    uint64_t file_bytes = 0, f32_bytes = 0;
    size_t n_logical = 0, n_quant = 0;
    char b1[32], sh[64], desc[64];
    printf("%s: %zu file%s, %zu entries\n", path, msbnb_checkpoint_shard_count(ck),
           msbnb_checkpoint_shard_count(ck) == 1 ? "" : "s", count);
    printf("\n%-52s %-6s %-14s %11s  %s\n", "tensor", "dtype", "shape", "bytes", "quantization");
    int rc = EXIT_OK;
    for (size_t i = 0; i < count; i++) {
        msbnb_tensor_info t;
        msbnb_checkpoint_get(ck, i, &t);
        file_bytes += t.nbytes;
        char *parent = NULL;
        if (msbnb_bnb_aux_parent(ck, t.name, &parent)) {
            free(parent);
            continue;
        }
        n_logical++;
        msbnb_qtype type = MSBNB_QTYPE_NONE;
        msbnb_bnb_detect(ck, t.name, &type);
        uint64_t bytes = msbnb_bnb_logical_bytes(ck, t.name);
        if (type == MSBNB_QTYPE_NONE) {
            printf("%-52s %-6s %-14s %11s  -\n", t.name, msbnb_st_dtype_name(t.dtype), cli_shape_str(t.shape, t.ndim, sh, sizeof sh),
                   cli_bytes_str(bytes, b1, sizeof b1));
            f32_bytes += (uint64_t)t.numel * 4;
            continue;
        }
        int64_t shape[2];
        if (describe_quant(ck, t.name, shape, desc, sizeof desc) != MSBNB_OK) {
            cli_tensor_error(cmd, &t);
            rc = EXIT_FAIL;
            break; /* one error line per run */
        }
        n_quant++;
        f32_bytes += (uint64_t)(shape[0] * shape[1]) * 4;
        printf("%-52s %-6s %-14s %11s  %s\n", t.name, msbnb_st_dtype_name(t.dtype), cli_shape_str(shape, 2, sh, sizeof sh),
               cli_bytes_str(bytes, b1, sizeof b1), desc);
    }
    printf("\n%zu tensors (%zu quantized), %s of tensor data (%s as float32)\n", n_logical, n_quant,
           cli_bytes_str(file_bytes, b1, sizeof b1), cli_bytes_str(f32_bytes, desc, sizeof desc));
    for (size_t s = 0; s < msbnb_checkpoint_shard_count(ck); s++) {
        const msbnb_safetensors *f = msbnb_checkpoint_shard(ck, s);
        for (size_t m = 0; m < msbnb_safetensors_metadata_count(f); m++) {
            const char *k, *v;
            msbnb_safetensors_metadata_get(f, m, &k, &v);
            printf("metadata %s: %s = %s\n", msbnb_safetensors_path(f), k, v);
        }
    }
    const msbnb_config *c = msbnb_checkpoint_config(ck);
    const char *mt = NULL;
    if (c && msbnb_config_get_string(c, "model_type", &mt) == MSBNB_OK) printf("config.json: model_type %s\n", mt);
    if (c && msbnb_config_has(c, "quantization_config")) {
        const char *qm = "?";
        msbnb_config_get_string(c, "quantization_config.quant_method", &qm);
        printf("config.json: quantization_config.quant_method %s\n", qm);
    }
    msbnb_checkpoint_close(ck);
    return rc;
}

/* ================================================================ compare */

static const char compare_help[] =
    "usage: msbnb compare A B\n"
    "\n"
    "Compare two checkpoints tensor by tensor: each logical tensor (quantized weights dequantized,\n"
    "plain tensors converted to float32) of A against the same name in B, with sizes on disk,\n"
    "relative error (100 ||A-B|| / ||A||), SNR in dB and max |A-B|; then totals.\n"
    "Exit codes: 0 ok, 1 failure (unreadable checkpoint, a tensor missing from B or of another\n"
    "size), 2 usage error.\n";

int cmd_compare(int argc, char **argv) {
    const char *cmd = "compare";
    const char *pos[2] = {0};
    cli_args args;
    cli_args_begin(&args, cmd, argc, argv);
    while (cli_args_next(&args)) {
        if (cli_is_help(&args)) {
            fputs(compare_help, stdout);
            return EXIT_OK;
        }
        cli_positional(&args, pos, 2);
    }
    if (args.failed) return EXIT_USAGE;
    const char *pa = pos[0], *pb = pos[1];
    if (!pa || !pb) return cli_usage_error(cmd, "needs A and B");
    msbnb_checkpoint *a = NULL, *b = NULL;
    if (msbnb_checkpoint_open(pa, &a) != MSBNB_OK) return cli_fail(cmd);
    if (msbnb_checkpoint_open(pb, &b) != MSBNB_OK) {
        msbnb_checkpoint_close(a);
        return cli_fail(cmd);
    }
    int rc = EXIT_OK;
    uint64_t size_a = 0, size_b = 0;
    cli_err_acc total = {0};
    size_t compared = 0;
    char b1[32], b2[32];
    printf("%-52s %11s %11s %9s %8s %11s\n", "tensor", "size A", "size B", "rel.err%", "SNR dB", "max|A-B|");
    for (size_t i = 0; i < msbnb_checkpoint_count(a); i++) {
        msbnb_tensor_info ta, tb;
        msbnb_checkpoint_get(a, i, &ta);
        char *parent = NULL;
        if (msbnb_bnb_aux_parent(a, ta.name, &parent)) {
            free(parent);
            continue;
        }
        if (msbnb_checkpoint_find(b, ta.name, &tb) != MSBNB_OK) {
            fprintf(stderr, "msbnb %s: %s: tensor '%s' is not in %s\n", cmd, pa, ta.name, pb);
            rc = EXIT_FAIL;
            break; /* one error line per run */
        }
        float *va = NULL, *vb = NULL;
        size_t na = 0, nb = 0;
        msbnb_qtype qa, qb;
        msbnb_status st = cli_read_values(a, ta.name, &va, &na, &qa);
        if (st == MSBNB_OK) st = cli_read_values(b, ta.name, &vb, &nb, &qb);
        if (st != MSBNB_OK || na != nb) {
            if (st == MSBNB_OK)
                fprintf(stderr, "msbnb %s: tensor '%s': %zu elements in A, %zu in B\n", cmd, ta.name, na, nb);
            else
                cli_tensor_error(cmd, &ta);
            rc = EXIT_FAIL;
            free(va);
            free(vb);
            break;
        } else {
            cli_err_acc acc = {0};
            cli_err_add(&acc, va, vb, na);
            cli_err_add(&total, va, vb, na);
            double rel, snr, mse;
            cli_err_finish(&acc, &rel, &snr, &mse);
            uint64_t sa = msbnb_bnb_logical_bytes(a, ta.name), sb = msbnb_bnb_logical_bytes(b, tb.name);
            size_a += sa, size_b += sb;
            compared++;
            printf("%-52s %11s %11s %9.3f %8.2f %11.3g\n", ta.name, cli_bytes_str(sa, b1, sizeof b1),
                   cli_bytes_str(sb, b2, sizeof b2), rel, snr, acc.max_abs);
        }
        free(va);
        free(vb);
        msbnb_checkpoint_release(a, ta.name);
        msbnb_checkpoint_release(b, ta.name);
    }
    double rel, snr, mse;
    cli_err_finish(&total, &rel, &snr, &mse);
    printf("\n%zu tensors compared: size %s vs %s (B is %.1f%% of A); overall rel.err %.3f%%, SNR %.2f dB, "
           "max|A-B| %.3g, MSE %.3g\n",
           compared, cli_bytes_str(size_a, b1, sizeof b1), cli_bytes_str(size_b, b2, sizeof b2),
           size_a ? 100.0 * (double)size_b / (double)size_a : 0.0, rel, snr, total.max_abs, mse);
    msbnb_checkpoint_close(a);
    msbnb_checkpoint_close(b);
    return rc;
}
