/* bench_formats.c — section 'formats': quantize and dequantize throughput per format, in GB/s of
 * float32 (4 bytes per weight read by quantize / written by dequantize), for a 4096 x 11008 weight
 * (LLaMA-7B MLP shape) at 1 and 2 threads, each figure also given as a fraction of the read
 * bandwidth measured in this run. --quick uses 512 x 1024.
 *
 * Quantize is timed through the flat format functions into preallocated, already-touched buffers
 * (so page faults of fresh allocations are not counted); dequantize through msbnb_dequantize on a
 * tensor made by msbnb_quantize. Best of several repetitions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msbnb/quant.h>

#include "bench.h"

typedef struct {
    const char *name;
    msbnb_qtype type;
    int asym, dq;
} fmt_t;

static const fmt_t formats[] = {
    {"int8 sym/row", MSBNB_QTYPE_INT8, 0, 0}, {"int8 asym/row", MSBNB_QTYPE_INT8, 1, 0},
    {"int4 g128", MSBNB_QTYPE_INT4, 0, 0},    {"nf4 bs64", MSBNB_QTYPE_NF4, 0, 0},
    {"fp4 bs64", MSBNB_QTYPE_FP4, 0, 0},      {"nf4 bs64 +dq", MSBNB_QTYPE_NF4, 0, 1},
    {"blockwise8 bs256", MSBNB_QTYPE_BLOCKWISE8, 0, 0},
};

typedef struct {
    uint8_t *data;
    float *stats, *stats2;
    int32_t *zp;
    uint8_t *sq;
    float *nested;
} scratch_t;

static msbnb_status quantize_flat(const fmt_t *f, const float *x, int64_t rows, int64_t cols, scratch_t *s) {
    size_t n = (size_t)rows * (size_t)cols;
    switch (f->type) {
    case MSBNB_QTYPE_INT8:
        return f->asym ? msbnb_quantize_int8_asym(x, rows, cols, 1, s->data, s->stats, s->zp)
                       : msbnb_quantize_int8(x, rows, cols, 1, (int8_t *)s->data, s->stats);
    case MSBNB_QTYPE_INT4: return msbnb_quantize_int4(x, rows, cols, 128, s->data, s->stats);
    case MSBNB_QTYPE_BLOCKWISE8: return msbnb_quantize_blockwise8(NULL, x, n, 256, s->data, s->stats);
    default: {
        msbnb_status st = msbnb_quantize_4bit_blockwise(f->type, x, n, 64, s->data, s->stats);
        float off;
        if (st == MSBNB_OK && f->dq) st = msbnb_double_quantize(s->stats, n / 64, 256, s->sq, s->nested, &off);
        return st;
    }
    }
}

static msbnb_quant_config config_of(const fmt_t *f) {
    msbnb_quant_config c = msbnb_quant_config_default(f->type);
    c.asymmetric = f->asym;
    c.double_quant = f->dq;
    return c;
}

int bench_formats(int quick) {
    const int64_t rows = quick ? 512 : 4096, cols = quick ? 1024 : 11008;
    const int reps = quick ? 5 : 3;
    size_t n = (size_t)rows * (size_t)cols;
    double bw[3] = {0, bench_read_bandwidth_gbs(1), bench_read_bandwidth_gbs(2)};
    printf("\n[formats] %lld x %lld fp32 weight (%.0f MB), GB/s of fp32 processed, (x) = fraction of read bandwidth\n",
           (long long)rows, (long long)cols, (double)n * 4e-6);
    printf("  measured read bandwidth: %.1f GB/s (1 thread), %.1f GB/s (2 threads)\n", bw[1], bw[2]);
    /* 64-byte aligned (n is a multiple of 16) so large outputs can use streaming stores */
    float *x = aligned_alloc(64, n * sizeof(float)), *y = aligned_alloc(64, n * sizeof(float));
    scratch_t s = {malloc(n), malloc(n / 64 * sizeof(float) + 64), NULL, malloc(n / 64 * sizeof(int32_t) + 64),
                   malloc(n / 64 + 64), malloc(n / 64 / 256 * sizeof(float) + 64)};
    if (!x || !y || !s.data || !s.stats || !s.zp || !s.sq || !s.nested) {
        printf("  (skipped: out of memory)\n");
        free(x), free(y), free(s.data), free(s.stats), free(s.zp), free(s.sq), free(s.nested);
        return 1;
    }
    /* deterministic pseudo-normal weights (sum of uniforms), scale 0.02 */
    uint64_t st = 12345;
    for (size_t i = 0; i < n; i++) {
        float u = 0;
        for (int k = 0; k < 4; k++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            u += (float)(st >> 40) * 0x1p-24f;
        }
        x[i] = (u - 2.0f) * 0.035f;
    }
    memset(y, 0, n * sizeof(float));
    memset(s.data, 0, n);
    printf("  %-18s %17s %17s   %17s %17s\n", "format", "quant 1t", "quant 2t", "dequant 1t", "dequant 2t");
    int rc = 0;
    double q4[2] = {0}, d4[2] = {0}; /* 1-thread figures of nf4 bs64 [0] and int4 g128 [1] */
    for (size_t fi = 0; fi < sizeof formats / sizeof formats[0]; fi++) {
        const fmt_t *f = &formats[fi];
        msbnb_quant_config c = config_of(f);
        msbnb_qtensor *q = NULL;
        if (msbnb_quantize(x, rows, cols, &c, &q) != MSBNB_OK) {
            printf("  %-18s failed: %s\n", f->name, msbnb_last_error());
            rc = 1;
            continue;
        }
        double gq[3] = {0}, gd[3] = {0};
        for (int t = 1; t <= 2; t++) {
            msbnb_set_num_threads(t);
            double bq = 1e30, bd = 1e30;
            for (int r = 0; r < reps; r++) {
                double t0 = bench_now();
                if (quantize_flat(f, x, rows, cols, &s) != MSBNB_OK) rc = 1;
                double t1 = bench_now();
                if (msbnb_dequantize(q, y) != MSBNB_OK) rc = 1;
                double t2 = bench_now();
                if (t1 - t0 < bq) bq = t1 - t0;
                if (t2 - t1 < bd) bd = t2 - t1;
            }
            gq[t] = (double)n * 4.0 / bq * 1e-9;
            gd[t] = (double)n * 4.0 / bd * 1e-9;
        }
        msbnb_set_num_threads(0);
        printf("  %-18s %7.2f (%5.2fx) %7.2f (%5.2fx)   %7.2f (%5.2fx) %7.2f (%5.2fx)\n", f->name, gq[1], gq[1] / bw[1],
               gq[2], gq[2] / bw[2], gd[1], gd[1] / bw[1], gd[2], gd[2] / bw[2]);
        for (int t = 1; t <= 2; t++) {
            char what[64], shape[48];
            snprintf(shape, sizeof shape, "%lldx%lld", (long long)rows, (long long)cols);
            snprintf(what, sizeof what, "%s quantize", f->name);
            bench_record("formats", what, shape, 0, t, gq[t], "GB/s of fp32", "read bandwidth", bw[t], "");
            snprintf(what, sizeof what, "%s dequantize", f->name);
            bench_record("formats", what, shape, 0, t, gd[t], "GB/s of fp32", "read bandwidth", bw[t], "");
        }
        if (f->type == MSBNB_QTYPE_NF4 && !f->dq) q4[0] = gq[1], d4[0] = gd[1];
        if (f->type == MSBNB_QTYPE_INT4) q4[1] = gq[1], d4[1] = gd[1];
        msbnb_qtensor_free(q);
    }
    for (int k = 0; k < 2; k++)
        printf("  target, one core (%s): quantize >= 8 GB/s: %s (%.2f); dequantize >= 20 GB/s: %s (%.2f)\n",
               k == 0 ? "nf4 bs64" : "int4 g128", q4[k] >= 8.0 ? "met" : "NOT met", q4[k],
               d4[k] >= 20.0 ? "met" : "NOT met", d4[k]);
    printf("  (shared or loaded machines lower every figure; compare with the bandwidth line above)\n");
    free(x), free(y), free(s.data), free(s.stats), free(s.zp), free(s.sq), free(s.nested);
    return rc;
}
