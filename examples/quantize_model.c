/*
 * quantize_model.c — `msbnb quantize` from your own program: a Hugging Face model directory (or a
 * .safetensors file) quantized to NF4 + double quant by one library call, with a progress line and
 * the per-layer report, then checked by reading one weight back.
 *
 * Build: part of the CMake build (build/examples/quantize_model).
 * Run:   ./quantize_model IN OUT [nf4|fp4|int4|int8] [rtn|search|gptq|awq|awq+gptq CALIBRATION_TEXT]
 *        e.g. ./quantize_model ../../shared/models/stories260K/hf /tmp/stories-nf4
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msbnb/convert.h>

/* The library calls this before the first tensor (done = 0) and after each one. */
static void progress(void *ctx, const msbnb_convert_progress *p) {
    (void)ctx;
    if (p->stage == MSBNB_CONVERT_CALIBRATING)
        fprintf(stderr, "calibrating on %lld tokens\n", (long long)p->calib_tokens);
    else if (p->done == p->total)
        fprintf(stderr, "%zu tensors done\n", p->total);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s IN OUT [nf4|fp4|int4|int8] [METHOD CALIBRATION_TEXT]\n", argv[0]);
        return 2;
    }
    msbnb_qtype type = MSBNB_QTYPE_NF4;
    if (argc > 3 && msbnb_qtype_parse(argv[3], &type) != MSBNB_OK) {
        fprintf(stderr, "%s\n", msbnb_last_error());
        return 2;
    }
    msbnb_quantize_params p = msbnb_quantize_params_default(type); /* skip {"lm_head"}, RTN */
    p.cfg.double_quant = type != MSBNB_QTYPE_INT8;
    if (argc > 4 && msbnb_quantize_method_parse(argv[4], &p.method, &p.awq) != MSBNB_OK) {
        fprintf(stderr, "%s\n", msbnb_last_error());
        return 2;
    }
    p.calib_text = argc > 5 ? argv[5] : NULL;
    p.progress = progress;

    msbnb_quantize_report *rep = NULL;
    if (msbnb_quantize_model(argv[1], argv[2], &p, &rep) != MSBNB_OK) {
        fprintf(stderr, "quantize_model: %s\n", msbnb_last_error()); /* nothing was left at OUT */
        return 1;
    }
    const char *worst = NULL;
    double worst_err = -1;
    for (size_t i = 0; i < msbnb_quantize_report_count(rep); i++) {
        msbnb_quantize_row r;
        msbnb_quantize_report_get(rep, i, &r);
        if (r.kept) {
            printf("%-48s kept: %s\n", r.name, r.kept);
            continue;
        }
        printf("%-48s [%lld, %lld] %8llu -> %7llu bytes  rel.err %6.3f %%  SNR %6.2f dB\n", r.name,
               (long long)r.shape[0], (long long)r.shape[1], (unsigned long long)r.bytes_before,
               (unsigned long long)r.bytes_after, r.rel_err_pct, r.snr_db);
        if (r.rel_err_pct > worst_err) worst_err = r.rel_err_pct, worst = r.name;
    }
    msbnb_quantize_totals t;
    msbnb_quantize_report_totals(rep, &t);
    printf("%zu layers quantized to %s, %zu kept, %zu other tensors; %llu -> %llu bytes (%.2fx smaller)\n",
           t.n_quantized, msbnb_qtype_name(type), t.n_kept, t.n_other, (unsigned long long)t.bytes_before,
           (unsigned long long)t.bytes_after, t.bytes_after ? (double)t.bytes_before / (double)t.bytes_after : 0.0);

    /* the output is an ordinary checkpoint: read the worst layer back */
    int rc = 0;
    msbnb_checkpoint *ck = NULL;
    msbnb_qtensor *q = NULL;
    if (worst && (msbnb_checkpoint_open(argv[2], &ck) != MSBNB_OK || msbnb_bnb_read(ck, worst, &q) != MSBNB_OK)) {
        fprintf(stderr, "reading %s back: %s\n", worst, msbnb_last_error());
        rc = 1;
    } else if (worst) {
        msbnb_qtensor_view v;
        msbnb_qtensor_get_view(q, &v);
        printf("read back %s: %s, %lld x %lld\n", worst, msbnb_qtype_name(v.type), (long long)v.rows,
               (long long)v.cols);
    }
    msbnb_qtensor_free(q);
    msbnb_checkpoint_close(ck);
    msbnb_quantize_report_free(rep);
    return rc;
}
