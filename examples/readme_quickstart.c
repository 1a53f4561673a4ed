/* readme_quickstart.c — the README's code snippets, compiled and run so they cannot rot:
 * quantize a weight to NF4 + double quant, multiply through the packed weights, then train a
 * QLoRA layer to fit a random linear map with 8-bit AdamW, merge and unmerge the adapter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msbnb/kernels.h>
#include <msbnb/nn.h>
#include <msbnb/optim.h>
#include <msbnb/quant.h>

#define IN 256
#define OUT 128
#define N 32

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / 16777216.0f - 0.5f) * 0.2f;
}

int main(void) {
    unsigned seed = 1;
    float *w = malloc(sizeof(float) * OUT * IN), *w_back = malloc(sizeof(float) * OUT * IN);
    float *X = malloc(sizeof(float) * N * IN), *Y = malloc(sizeof(float) * N * OUT);
    float *T = malloc(sizeof(float) * N * OUT), *dY = malloc(sizeof(float) * N * OUT);
    float *target = malloc(sizeof(float) * OUT * IN);
    if (!w || !w_back || !X || !Y || !T || !dY || !target) return 1;
    /* target = w + a rank-4 change: what a rank-16 adapter on the quantized w can learn (up to
     * the NF4 rounding of w itself). */
    float u[OUT][4], v[4][IN];
    for (int i = 0; i < OUT * IN; i++) w[i] = frand(&seed);
    for (int o = 0; o < OUT; o++)
        for (int k = 0; k < 4; k++) u[o][k] = frand(&seed) * 5.0f;
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < IN; i++) v[k][i] = frand(&seed) * 5.0f;
    for (int o = 0; o < OUT; o++)
        for (int i = 0; i < IN; i++) {
            float d = 0;
            for (int k = 0; k < 4; k++) d += u[o][k] * v[k][i];
            target[o * IN + i] = w[o * IN + i] + d;
        }
    for (int i = 0; i < N * IN; i++) X[i] = frand(&seed) * 10.0f;

    /* ---- quantize and measure (README "Using the library") */
    msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4); /* blocksize 64 */
    cfg.double_quant = 1;
    msbnb_qtensor *q = NULL;
    if (msbnb_quantize(w, OUT, IN, &cfg, &q) != MSBNB_OK) {
        fprintf(stderr, "%s\n", msbnb_last_error());
        return 1;
    }
    msbnb_error_stats err;
    msbnb_quant_info info;
    msbnb_estimate_quantization_error(w, q, &err);
    msbnb_get_quantization_info(q, &info);
    msbnb_dequantize(q, w_back);
    printf("nf4+dq: %.3f bits/weight, relative error %.2f %%, SNR %.1f dB\n", info.bits_per_weight,
           err.relative_error_pct, err.snr_db);

    /* ---- fused product */
    if (msbnb_matmul(q, X, N, NULL, Y, MSBNB_PRECISION_EXACT) != MSBNB_OK) return 1;
    msbnb_qtensor_free(q);

    /* ---- a QLoRA layer learns the low-rank difference to `target` */
    msbnb_linear *base = NULL, *layer = NULL;
    if (msbnb_linear_create_from_weights(w, NULL, IN, OUT, &base) != MSBNB_OK ||
        msbnb_linear4bit_from_linear(base, &cfg, &layer) != MSBNB_OK)
        return 1;
    msbnb_lora_params lp = msbnb_lora_params_default();
    lp.r = 16;
    lp.lora_alpha = 32;
    if (msbnb_lora_add(layer, "default", &lp) != MSBNB_OK) return 1;
    msbnb_optim *opt = NULL;
    msbnb_adamw_params ap = msbnb_adamw_params_default();
    ap.lr = 1e-2f;
    if (msbnb_adamw8bit_create(&ap, &opt) != MSBNB_OK || msbnb_optim_add_linear(opt, layer, "layer") != MSBNB_OK) {
        fprintf(stderr, "%s\n", msbnb_last_error());
        return 1;
    }
    /* T = X · targetᵀ: the outputs to learn. */
    if (msbnb_matmul_f32(target, OUT, IN, X, N, NULL, T) != MSBNB_OK) return 1;
    double first = 0, last = 0;
    for (int step = 0; step < 200; step++) {
        msbnb_optim_zero_grad(opt);
        if (msbnb_linear_forward(layer, X, N, Y) != MSBNB_OK) return 1;
        double loss = 0;
        for (int i = 0; i < N * OUT; i++) {
            float d = Y[i] - T[i];
            loss += (double)d * d / (N * OUT);
            dY[i] = 2.0f * d / (N * OUT);
        }
        if (step == 0) first = loss;
        last = loss;
        if (msbnb_linear_backward(layer, X, dY, N, NULL) != MSBNB_OK || msbnb_optim_step(opt, NULL) != MSBNB_OK)
            return 1;
    }
    printf("QLoRA layer (r 16, 8-bit AdamW): loss %.5f -> %.5f\n", first, last);
    msbnb_merge_report rep;
    if (msbnb_lora_merge(layer, &rep) != MSBNB_OK || msbnb_lora_unmerge(layer) != MSBNB_OK) {
        fprintf(stderr, "%s\n", msbnb_last_error());
        return 1;
    }
    printf("merged and unmerged\n");
    msbnb_optim_free(opt);
    msbnb_linear_free(layer);
    msbnb_linear_free(base);
    free(w), free(w_back), free(X), free(Y), free(T), free(dY), free(target);
    return last < first / 10 ? 0 : 1;
}
