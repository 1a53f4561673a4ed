/*
 * functional_api.c — the functional quantization API in one page: quantize one weight matrix in
 * every format and print what each costs (bits per weight, bytes, compression) and what it loses
 * (MSE, max |error|, relative error, SNR).
 *
 * The weight is synthetic and documented: 1024 x 1024, entries N(0, 0.02) (a typical LLM linear
 * layer at initialisation), with 16 outliers of magnitude 0.5 .. 1.25 placed at fixed positions,
 * the kind of large feature that motivates small blocks and LLM.int8()'s decomposition.
 * Deterministic (fixed-seed generator), so the table is the same on every run and machine.
 *
 *     ./functional_api
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <msbnb/quant.h>

#define ROWS 1024
#define COLS 1024

/* splitmix64 + Box-Muller: N(0, 1) draws from a fixed seed. */
static uint64_t rng_state = 2024;
static double uniform01(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1p-53;
}
static double normal(void) {
    double u1 = uniform01(), u2 = uniform01();
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

typedef struct {
    const char *label;
    msbnb_qtype type;
    int double_quant, asymmetric, per_row;
} format;

int main(void) {
    float *w = malloc((size_t)ROWS * COLS * sizeof(float));
    if (!w) return 1;
    for (size_t i = 0; i < (size_t)ROWS * COLS; i++) w[i] = (float)(0.02 * normal());
    for (int k = 0; k < 16; k++) w[(size_t)(k * 61 + 7) * COLS + (size_t)(k * 113 + 5)] = (k % 2 ? -1.0f : 1.0f) * (0.5f + 0.05f * (float)k);

    const format formats[] = {
        {"int8 (per row)", MSBNB_QTYPE_INT8, 0, 0, 1},   {"int8 (per tensor)", MSBNB_QTYPE_INT8, 0, 0, 0},
        {"int8 asym (row)", MSBNB_QTYPE_INT8, 0, 1, 1},  {"blockwise8 bs256", MSBNB_QTYPE_BLOCKWISE8, 0, 0, 0},
        {"int4 g128", MSBNB_QTYPE_INT4, 0, 0, 0},        {"int4 g128 +dq", MSBNB_QTYPE_INT4, 1, 0, 0},
        {"nf4 bs64", MSBNB_QTYPE_NF4, 0, 0, 0},          {"nf4 bs64 +dq", MSBNB_QTYPE_NF4, 1, 0, 0},
        {"fp4 bs64", MSBNB_QTYPE_FP4, 0, 0, 0},          {"fp4 bs64 +dq", MSBNB_QTYPE_FP4, 1, 0, 0},
    };
    printf("weight %d x %d, N(0, 0.02) + 16 outliers; fp32 = %d bytes\n\n", ROWS, COLS, ROWS * COLS * 4);
    printf("%-18s %8s %10s %8s %12s %10s %8s %8s\n", "type", "bits/w", "bytes", "vs f32", "MSE", "max err", "rel %",
           "SNR dB");
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        const format *f = &formats[i];
        msbnb_quant_config cfg = msbnb_quant_config_default(f->type);
        cfg.double_quant = f->double_quant;
        cfg.asymmetric = f->asymmetric;
        cfg.per_row = f->per_row;
        msbnb_qtensor *q = NULL;
        msbnb_error_stats st;
        msbnb_quant_info info;
        if (msbnb_quantize(w, ROWS, COLS, &cfg, &q) != MSBNB_OK ||
            msbnb_estimate_quantization_error(w, q, &st) != MSBNB_OK ||
            msbnb_get_quantization_info(q, &info) != MSBNB_OK) {
            fprintf(stderr, "%s: %s\n", f->label, msbnb_last_error());
            msbnb_qtensor_free(q);
            free(w);
            return 1;
        }
        printf("%-18s %8.3f %10zu %7.2fx %12.3e %10.3e %8.3f %8.2f\n", f->label, info.bits_per_weight,
               info.total_bytes, info.compression_vs_f32, st.mse, st.max_abs_error, st.relative_error_pct, st.snr_db);
        msbnb_qtensor_free(q);
    }
    free(w);
    return 0;
}
