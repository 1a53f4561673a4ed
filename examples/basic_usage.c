/*
 * basic_usage.c — the seed's basic usage with layers: a full-precision linear layer, the same
 * layer as Linear8bit (training mode, then "FP16 -> INT8" with quantize_weights) and as
 * Linear4bit (NF4, NF4 with double quantization, FP4, INT4), each run on the same input; prints
 * the output error against fp32 and the memory each one really holds.
 *
 * Build: part of the CMake build (build/examples/basic_usage). Run: ./basic_usage [in] [out]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <msbnb/nn.h>

#define CHECKED(call)                                                                          \
    do {                                                                                       \
        msbnb_status st_ = (call);                                                             \
        if (st_ != MSBNB_OK) {                                                                 \
            fprintf(stderr, "%s failed: %s (%s)\n", #call, msbnb_status_str(st_), msbnb_last_error()); \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

/* Relative L2 error of y against ref (n values). */
static double rel_error(const float *ref, const float *y, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)y[i] - ref[i]) * ((double)y[i] - ref[i]);
        den += (double)ref[i] * ref[i];
    }
    return sqrt(num / den);
}

static void report(const char *name, msbnb_linear *l, const float *X, int64_t n, const float *ref, float *Y) {
    msbnb_linear_memory m;
    CHECKED(msbnb_linear_forward(l, X, n, Y));
    CHECKED(msbnb_linear_memory_usage(l, &m));
    size_t wb = m.weight_bytes + m.stats_bytes;
    double f16 = (double)m.f32_weight_bytes / 2.0;
    printf("%-14s %-5s %10zu bytes  %6.3f bits/weight  saved vs fp32 %5.1f%%  vs fp16 %5.1f%%  output rel. error %.4f\n",
           name, msbnb_linear_kind_name(msbnb_linear_get_kind(l)), wb, m.base_bits_per_weight,
           100.0 * (1.0 - (double)wb / (double)m.f32_weight_bytes), 100.0 * (1.0 - (double)wb / f16),
           ref ? rel_error(ref, Y, (size_t)(n * msbnb_linear_out_features(l))) : 0.0);
}

int main(int argc, char **argv) {
    int64_t in = argc > 1 ? atoll(argv[1]) : 1024, out = argc > 2 ? atoll(argv[2]) : 1024, n = 8;
    printf("msbnb %s — linear layers %lld -> %lld, batch %lld, CPU level %s\n\n", msbnb_version_string(),
           (long long)in, (long long)out, (long long)n, msbnb_isa_name(msbnb_isa_current()));

    /* 1. A full-precision layer (torch.nn.Linear initialisation, seeded). */
    msbnb_linear *dense = NULL;
    CHECKED(msbnb_linear_create(in, out, 1, 42, &dense));
    float *X = malloc(sizeof(float) * (size_t)(n * in));
    float *ref = malloc(sizeof(float) * (size_t)(n * out)), *Y = malloc(sizeof(float) * (size_t)(n * out));
    uint64_t s = 7;
    for (int64_t i = 0; i < n * in; i++) { /* a small deterministic input in [-1, 1) */
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        X[i] = (float)((double)(s >> 11) * 0x1p-53 * 2.0 - 1.0);
    }
    CHECKED(msbnb_linear_forward(dense, X, n, ref));
    report("fp32", dense, X, n, NULL, ref);

    /* 2. Linear8bit: starts in training mode with fp32 weights, then quantize_weights() ("FP16 -> INT8"). */
    msbnb_linear8bit_params p8 = msbnb_linear8bit_params_default(); /* symmetric, per row, threshold 6.0 */
    msbnb_linear *int8 = NULL;
    CHECKED(msbnb_linear8bit_create_from_weights(msbnb_linear_weight(dense), msbnb_linear_bias(dense), in, out, &p8,
                                                 &int8));
    report("int8 (train)", int8, X, n, ref, Y);
    CHECKED(msbnb_linear_quantize_weights(int8));
    report("int8", int8, X, n, ref, Y);

    /* 3. Linear4bit from the dense layer, in each 4-bit format. */
    struct {
        const char *name;
        msbnb_qtype type;
        int dq;
    } fmts[] = {{"nf4", MSBNB_QTYPE_NF4, 0},
                {"nf4+dq", MSBNB_QTYPE_NF4, 1},
                {"fp4", MSBNB_QTYPE_FP4, 0},
                {"int4 (g128)", MSBNB_QTYPE_INT4, 0}};
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        msbnb_quant_config cfg = msbnb_quant_config_default(fmts[i].type);
        cfg.double_quant = fmts[i].dq;
        msbnb_linear *q = NULL;
        CHECKED(msbnb_linear4bit_from_linear(dense, &cfg, &q));
        report(fmts[i].name, q, X, n, ref, Y);
        msbnb_linear_free(q);
    }

    /* 4. Backward through a quantized layer: dX = dY · deq(W) (the weights stay frozen). */
    float *dX = malloc(sizeof(float) * (size_t)(n * in));
    CHECKED(msbnb_linear_backward(int8, X, Y, n, dX));
    printf("\nbackward through the int8 layer: dX[0] = %.6f (weights frozen: %s)\n", (double)dX[0],
           msbnb_linear_is_frozen(int8) ? "yes" : "no");

    msbnb_linear_free(int8);
    msbnb_linear_free(dense);
    free(X);
    free(ref);
    free(Y);
    free(dX);
    return 0;
}
