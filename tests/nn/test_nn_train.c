/*
 * test_nn_train.c — a toy QLoRA network learns.
 *
 * Student: X[N,16] -> NF4+DQ base with LoRA r=4 (+ bias) -> ReLU -> NF4+DQ base with LoRA r=4 -> Y[N,4].
 * Teacher: the same dequantized bases plus a rank-2 change in each layer, in fp32. The student's
 * adapters can represent the teacher exactly, so the regression loss ½·mean (Y − T)² can go to 0;
 * we require it to fall by at least 10× within 300 full-batch steps, with AdamW and with 8-bit AdamW
 * (8-bit state forced on the small adapter tensors with min_8bit_size = 0).
 */
#include <msbnb/optim.h>

#include "test.h"

enum { N = 128, IN = 16, HID = 64, OUT = 4, RANK = 4, STEPS = 300 };

typedef struct net {
    msbnb_linear *l1, *l2;
} net;

static void relu_forward(const float *h, float *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = h[i] > 0 ? h[i] : 0;
}

/* Teacher weights: deq(W) + U·V with U [out, 2], V [2, in] ~ N(0, s²). */
static msbnb_linear *teacher_layer(msbnb_linear *student, test_rng *rng, float s) {
    int64_t in = msbnb_linear_in_features(student), out = msbnb_linear_out_features(student);
    float *w = malloc(sizeof(float) * (size_t)(in * out)), *u = malloc(sizeof(float) * (size_t)(out * 2));
    float *v = malloc(sizeof(float) * (size_t)(2 * in));
    msbnb_linear_get_weight_f32(student, w);
    test_fill_normal(rng, u, (size_t)(out * 2), s);
    test_fill_normal(rng, v, (size_t)(2 * in), s);
    for (int64_t o = 0; o < out; o++)
        for (int64_t j = 0; j < in; j++) w[o * in + j] += u[o * 2] * v[j] + u[o * 2 + 1] * v[in + j];
    msbnb_linear *t = NULL;
    msbnb_linear_create_from_weights(w, msbnb_linear_bias(student), in, out, &t);
    free(w);
    free(u);
    free(v);
    return t;
}

static double train(msbnb_optim_type type, double *first, double *last) {
    test_rng rng = {2024};
    msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    cfg.double_quant = 1;
    cfg.blocksize = 32;
    msbnb_linear *d1 = NULL, *d2 = NULL;
    net s = {NULL, NULL};
    CHECK_OK(msbnb_linear_create(IN, HID, 1, 1, &d1));
    CHECK_OK(msbnb_linear_create(HID, OUT, 0, 2, &d2));
    CHECK_OK(msbnb_linear4bit_from_linear(d1, &cfg, &s.l1));
    CHECK_OK(msbnb_linear4bit_from_linear(d2, &cfg, &s.l2));
    msbnb_linear_free(d1);
    msbnb_linear_free(d2);
    if (!s.l1 || !s.l2) return 0;
    msbnb_linear *t1 = teacher_layer(s.l1, &rng, 0.5f), *t2 = teacher_layer(s.l2, &rng, 0.5f);

    msbnb_lora_params lp = msbnb_lora_params_default();
    lp.r = RANK;
    lp.lora_alpha = 8.0f;
    lp.seed = 1;
    CHECK_OK(msbnb_lora_add(s.l1, "default", &lp));
    lp.seed = 2;
    CHECK_OK(msbnb_lora_add(s.l2, "default", &lp));
    msbnb_linear *layers[2] = {s.l1, s.l2};
    CHECK_OK(msbnb_freeze_model_except_lora(layers, 2));
    msbnb_linear_set_training(s.l1, 1);
    msbnb_linear_set_training(s.l2, 1);

    float *X = malloc(sizeof(float) * N * IN), *T = malloc(sizeof(float) * N * OUT);
    float *H = malloc(sizeof(float) * N * HID), *A = malloc(sizeof(float) * N * HID);
    float *Y = malloc(sizeof(float) * N * OUT), *dY = malloc(sizeof(float) * N * OUT);
    float *dA = malloc(sizeof(float) * N * HID);
    test_fill_normal(&rng, X, N * IN, 1.0f);
    CHECK_OK(msbnb_linear_forward(t1, X, N, H));
    relu_forward(H, A, N * HID);
    CHECK_OK(msbnb_linear_forward(t2, A, N, T));

    msbnb_adamw_params ap = msbnb_adamw_params_default();
    ap.lr = 1e-2f;
    ap.weight_decay = 0.0f;
    ap.min_8bit_size = 0;
    msbnb_optim *opt = NULL;
    CHECK_OK(msbnb_optim_create(type, &ap, &opt));
    CHECK_OK(msbnb_optim_add_linear(opt, s.l1, "l1"));
    CHECK_OK(msbnb_optim_add_linear(opt, s.l2, "l2"));
    CHECK_EQ_INT(msbnb_optim_param_count(opt), 4); /* lora_A, lora_B of each layer; bases frozen */
    int n8 = 0;
    msbnb_optim_state_bytes(opt, &n8);
    CHECK_EQ_INT(n8, type == MSBNB_OPTIM_ADAMW8BIT ? 4 : 0);

    double loss = 0;
    for (int step = 0; step < STEPS; step++) {
        msbnb_optim_zero_grad(opt);
        CHECK_OK(msbnb_linear_forward(s.l1, X, N, H));
        relu_forward(H, A, N * HID);
        CHECK_OK(msbnb_linear_forward(s.l2, A, N, Y));
        loss = 0;
        for (int i = 0; i < N * OUT; i++) {
            double d = (double)Y[i] - T[i];
            loss += 0.5 * d * d / (N * OUT);
            dY[i] = (float)(d / (N * OUT));
        }
        if (step == 0) *first = loss;
        CHECK_OK(msbnb_linear_backward(s.l2, A, dY, N, dA));
        for (int i = 0; i < N * HID; i++)
            if (H[i] <= 0) dA[i] = 0; /* ReLU */
        CHECK_OK(msbnb_linear_backward(s.l1, X, dA, N, NULL));
        CHECK_OK(msbnb_optim_step(opt, NULL));
    }
    *last = loss;
    msbnb_optim_free(opt);
    msbnb_linear_free(s.l1);
    msbnb_linear_free(s.l2);
    msbnb_linear_free(t1);
    msbnb_linear_free(t2);
    free(X);
    free(T);
    free(H);
    free(A);
    free(Y);
    free(dY);
    free(dA);
    return *first / (*last > 0 ? *last : 1e-30);
}

TEST(qlora_learns_adamw) {
    double first = 0, last = 0;
    double ratio = train(MSBNB_OPTIM_ADAMW, &first, &last);
    printf("  AdamW:       loss %.6f -> %.6f (%.1fx)\n", first, last, ratio);
    CHECK(first > 0);
    CHECK_MSG_(ratio >= 10.0, "loss fell only %.2fx", ratio);
}

TEST(qlora_learns_adamw8bit) {
    double first = 0, last = 0;
    double ratio = train(MSBNB_OPTIM_ADAMW8BIT, &first, &last);
    printf("  8-bit AdamW: loss %.6f -> %.6f (%.1fx)\n", first, last, ratio);
    CHECK(first > 0);
    CHECK_MSG_(ratio >= 10.0, "loss fell only %.2fx", ratio);
}

int main(void) {
    RUN(qlora_learns_adamw);
    RUN(qlora_learns_adamw8bit);
    return test_report();
}
