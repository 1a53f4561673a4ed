/*
 * lora_training.c — the seed's LoRA / QLoRA layer training: LoRALinear (fp32 base),
 * Linear8bitWithLoRA (INT8 base) and Linear4bitWithLoRA (NF4 + double quantization, i.e. QLoRA),
 * each given an r=8 adapter and trained to match a "fine-tuned" target layer (the base plus a
 * rank-4 change), with AdamW or 8-bit AdamW and a warm-up + cosine schedule.
 * Then: trainable-parameter report, LoRA info table, a second adapter, merge / unmerge with the
 * re-quantization error, and optimizer state saved to a file.
 *
 * Run: ./lora_training            (a few seconds)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msbnb/optim.h>

#define CHECKED(call)                                                                          \
    do {                                                                                       \
        msbnb_status st_ = (call);                                                             \
        if (st_ != MSBNB_OK) {                                                                 \
            fprintf(stderr, "%s failed: %s (%s)\n", #call, msbnb_status_str(st_), msbnb_last_error()); \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

enum { IN = 256, OUT = 128, BATCH = 64, STEPS = 200 };

static uint64_t rng = 99;
static float randn(void) {
    double u1, u2;
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    u1 = ((double)(rng >> 11) + 1.0) * 0x1p-53;
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    u2 = (double)(rng >> 11) * 0x1p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* Target layer: deq(base) + U·V, rank 4 — what a fine-tuning run should discover. */
static msbnb_linear *make_target(msbnb_linear *base) {
    float *w = malloc(sizeof(float) * IN * OUT), u[OUT * 4], v[4 * IN];
    CHECKED(msbnb_linear_get_weight_f32(base, w));
    for (int i = 0; i < OUT * 4; i++) u[i] = 0.1f * randn();
    for (int i = 0; i < 4 * IN; i++) v[i] = 0.1f * randn();
    for (int o = 0; o < OUT; o++)
        for (int j = 0; j < IN; j++)
            for (int k = 0; k < 4; k++) w[o * IN + j] += u[o * 4 + k] * v[k * IN + j];
    msbnb_linear *t = NULL;
    CHECKED(msbnb_linear_create_from_weights(w, msbnb_linear_bias(base), IN, OUT, &t));
    free(w);
    return t;
}

/* Train the active adapter of `layer` toward `target` on fresh random batches; returns the loss. */
static double train(const char *label, msbnb_linear *layer, msbnb_optim_type type) {
    msbnb_linear *target = make_target(layer);
    msbnb_adamw_params p = msbnb_adamw_params_default();
    p.lr = 5e-3f;
    p.schedule = MSBNB_LR_WARMUP_COSINE;
    p.warmup_steps = 20;
    p.total_steps = STEPS;
    p.max_grad_norm = 1.0f;
    msbnb_optim *opt = NULL;
    CHECKED(msbnb_optim_create(type, &p, &opt));
    CHECKED(msbnb_optim_add_linear(opt, layer, label));
    msbnb_linear_set_training(layer, 1);
    float *X = malloc(sizeof(float) * BATCH * IN), *Y = malloc(sizeof(float) * BATCH * OUT);
    float *T = malloc(sizeof(float) * BATCH * OUT), *dY = malloc(sizeof(float) * BATCH * OUT);
    double loss = 0;
    printf("%s (%s):", label, type == MSBNB_OPTIM_ADAMW ? "AdamW" : "8-bit AdamW");
    for (int step = 1; step <= STEPS; step++) {
        for (int i = 0; i < BATCH * IN; i++) X[i] = randn();
        CHECKED(msbnb_linear_forward(target, X, BATCH, T));
        msbnb_optim_zero_grad(opt);
        CHECKED(msbnb_linear_forward(layer, X, BATCH, Y));
        loss = 0;
        for (int i = 0; i < BATCH * OUT; i++) {
            double d = (double)Y[i] - T[i];
            loss += d * d / (BATCH * OUT);
            dY[i] = (float)(2.0 * d / (BATCH * OUT));
        }
        CHECKED(msbnb_linear_backward(layer, X, dY, BATCH, NULL));
        CHECKED(msbnb_optim_step(opt, NULL));
        if (step == 1 || step % 50 == 0) printf("  step %d loss %.5f", step, loss);
    }
    printf("\n");
    msbnb_linear_set_training(layer, 0);
    if (type == MSBNB_OPTIM_ADAMW8BIT) {
        CHECKED(msbnb_optim_save(opt, "lora_training_optim.bin"));
        printf("  optimizer state (%zu bytes of moments) saved to lora_training_optim.bin at step %lld\n",
               msbnb_optim_state_bytes(opt, NULL), (long long)msbnb_optim_step_count(opt));
        remove("lora_training_optim.bin");
    }
    msbnb_optim_free(opt);
    msbnb_linear_free(target);
    free(X);
    free(Y);
    free(T);
    free(dY);
    return loss;
}

int main(void) {
    msbnb_lora_params lp = msbnb_lora_params_default(); /* r 8, alpha 16 */
    lp.lora_dropout = 0.05f;
    lp.seed = 3;

    /* LoRALinear: fp32 base */
    msbnb_linear *lora_linear = NULL;
    CHECKED(msbnb_linear_create(IN, OUT, 1, 1, &lora_linear));
    CHECKED(msbnb_lora_add(lora_linear, "default", &lp));

    /* Linear8bitWithLoRA: INT8 base (quantized at creation) */
    msbnb_linear8bit_params p8 = msbnb_linear8bit_params_default();
    p8.has_fp16_weights = 0;
    p8.seed = 2;
    msbnb_linear *lora8 = NULL;
    CHECKED(msbnb_linear8bit_create(IN, OUT, &p8, &lora8));
    CHECKED(msbnb_lora_add(lora8, "default", &lp));

    /* Linear4bitWithLoRA (QLoRA): NF4 + double quantization */
    msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    cfg.double_quant = 1;
    msbnb_linear *tmp = NULL, *qlora = NULL;
    CHECKED(msbnb_linear_create(IN, OUT, 1, 3, &tmp));
    CHECKED(msbnb_linear4bit_from_linear(tmp, &cfg, &qlora));
    msbnb_linear_free(tmp);
    CHECKED(msbnb_lora_add(qlora, "default", &lp));

    msbnb_linear *layers[3] = {lora_linear, lora8, qlora};
    const char *names[3] = {"LoRALinear", "Linear8bitWithLoRA", "Linear4bitWithLoRA"};
    CHECKED(msbnb_freeze_model_except_lora(layers, 3));
    msbnb_print_trainable_params(layers, 3, stdout);
    printf("\n");

    train(names[0], lora_linear, MSBNB_OPTIM_ADAMW);
    train(names[1], lora8, MSBNB_OPTIM_ADAMW);
    train(names[2], qlora, MSBNB_OPTIM_ADAMW8BIT);
    printf("\n");
    msbnb_print_lora_info(layers, names, 3, stdout);

    /* A second adapter on the QLoRA layer; switch between them, or disable both. */
    lp.seed = 4;
    CHECKED(msbnb_lora_add(qlora, "task_b", &lp));
    CHECKED(msbnb_lora_set_active(qlora, "task_b"));
    printf("\nadapters on the QLoRA layer: %s, %s (active: %s)\n", msbnb_lora_name(qlora, 0),
           msbnb_lora_name(qlora, 1), msbnb_lora_active(qlora));
    CHECKED(msbnb_lora_set_active(qlora, "default"));

    /* Merge the trained adapter into each base and back. */
    for (int i = 0; i < 3; i++) {
        msbnb_merge_report rep;
        CHECKED(msbnb_lora_merge(layers[i], &rep));
        printf("merge %-20s: max |error| %.3g, rms error %.3g (rms of the update %.3g)\n", names[i],
               rep.max_abs_error, rep.rms_error, rep.delta_rms);
        CHECKED(msbnb_lora_unmerge(layers[i]));
    }
    for (int i = 0; i < 3; i++) msbnb_linear_free(layers[i]);
    return 0;
}
