/*
 * test_nn_grad.c — gradients of every layer kind and format against central finite differences
 * in double precision.
 *
 * Method: the layer's forward is linear in X (and in W, b, A, B) once the quantized codes are
 * fixed, so a double-precision re-implementation of the forward over the DEQUANTIZED weight (read
 * back with msbnb_linear_get_weight_f32), the adapter's A, B, scaling and the dropout mask of the
 * last forward gives the exact function the backward differentiates. The loss is
 * L = ½ Σ (Y − T)², whose central differences are exact for a quadratic (the third derivative
 * vanishes), so the finite-difference gradient is accurate to double rounding (~1e-10) and the
 * 1e-4 relative tolerance measures only the layer's float32 arithmetic.
 * The layer's own float forward is checked against the double forward too: within 1e-5 relative
 * for exact products, and within the LLM.int8() activation-rounding bound for INT8 layers.
 */
#include <msbnb/nn.h>

#include "nn/nn_internal.h"
#include "test.h"

/* ---------------------------------------------------------------- double reference */

typedef struct ref_layer {
    int64_t in, out, n;
    double *W, *b;        /* [out, in], [out] or NULL */
    int r;                /* 0 = no adapter          */
    double *A, *B;        /* [r, in], [out, r]        */
    double scaling, keep_scale;
    uint8_t *mask;        /* [n, in]                  */
} ref_layer;

static void ref_forward(const ref_layer *L, const double *X, double *Y) {
    for (int64_t i = 0; i < L->n; i++) {
        const double *x = X + i * L->in;
        double h[64];
        for (int k = 0; k < L->r; k++) {
            double s = 0;
            for (int64_t j = 0; j < L->in; j++)
                if (L->mask[i * L->in + j]) s += x[j] * L->keep_scale * L->A[k * L->in + j];
            h[k] = s;
        }
        for (int64_t o = 0; o < L->out; o++) {
            double s = L->b ? L->b[o] : 0.0;
            for (int64_t j = 0; j < L->in; j++) s += x[j] * L->W[o * L->in + j];
            for (int k = 0; k < L->r; k++) s += L->scaling * h[k] * L->B[o * L->r + k];
            Y[i * L->out + o] = s;
        }
    }
}

static double ref_loss(const ref_layer *L, const double *X, const double *T, double *Ybuf) {
    ref_forward(L, X, Ybuf);
    double s = 0;
    for (int64_t i = 0; i < L->n * L->out; i++) s += 0.5 * (Ybuf[i] - T[i]) * (Ybuf[i] - T[i]);
    return s;
}

/* Central differences of the loss with respect to every element of p [cnt]; out [cnt]. */
static void fd_grad(const ref_layer *L, double *p, size_t cnt, const double *X, const double *T, double *Ybuf,
                    double *out) {
    const double h = 1e-3;
    for (size_t i = 0; i < cnt; i++) {
        double keep = p[i];
        p[i] = keep + h;
        double lp = ref_loss(L, X, T, Ybuf);
        p[i] = keep - h;
        double lm = ref_loss(L, X, T, Ybuf);
        p[i] = keep;
        out[i] = (lp - lm) / (2 * h);
    }
}

/* ‖g − fd‖₂ / ‖fd‖₂, with fd non-trivial. */
static double rel_err(const float *g, const double *fd, size_t cnt) {
    double num = 0, den = 0;
    for (size_t i = 0; i < cnt; i++) {
        num += ((double)g[i] - fd[i]) * ((double)g[i] - fd[i]);
        den += fd[i] * fd[i];
    }
    return den > 0 ? sqrt(num / den) : (num > 0 ? INFINITY : 0.0);
}

static double *to_double(const float *x, size_t n) {
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* ---------------------------------------------------------------- one case */

typedef enum { K_F32, K_INT8_TRAIN, K_INT8, K_4BIT } case_kind;

typedef struct grad_case {
    const char *name;
    case_kind kind;
    msbnb_qtype qtype;       /* K_4BIT: INT4 / NF4 / FP4 */
    int double_quant;
    int int8_asym, int8_per_tensor;
    int64_t in, out, n;
    int has_bias;
    int lora_r;              /* 0 = none */
    float dropout;
    int rslora, gaussian;
} grad_case;

static msbnb_linear *make_layer(const grad_case *c, const float *W0, const float *b0) {
    msbnb_linear *l = NULL;
    const float *bias = c->has_bias ? b0 : NULL;
    msbnb_status st = MSBNB_ERR_INTERNAL;
    if (c->kind == K_F32) {
        st = msbnb_linear_create_from_weights(W0, bias, c->in, c->out, &l);
    } else if (c->kind == K_INT8_TRAIN || c->kind == K_INT8) {
        msbnb_linear8bit_params p = msbnb_linear8bit_params_default();
        p.has_fp16_weights = c->kind == K_INT8_TRAIN;
        p.asymmetric = c->int8_asym;
        p.per_row = !c->int8_per_tensor;
        st = msbnb_linear8bit_create_from_weights(W0, bias, c->in, c->out, &p, &l);
    } else {
        msbnb_quant_config cfg = msbnb_quant_config_default(c->qtype);
        cfg.double_quant = c->double_quant;
        if (c->qtype == MSBNB_QTYPE_INT4) cfg.group_size = 16;
        else cfg.blocksize = 32;
        st = msbnb_linear4bit_create_from_weights(W0, bias, c->in, c->out, &cfg, &l);
    }
    CHECK_OK(st);
    return l;
}

static float *find_grad(msbnb_linear *l, const char *name, size_t *cnt, float **data) {
    msbnb_param_ref refs[MSBNB_LINEAR_MAX_PARAMS];
    int k = 0;
    if (msbnb_linear_trainable_params(l, refs, MSBNB_LINEAR_MAX_PARAMS, &k) != MSBNB_OK) return NULL;
    for (int i = 0; i < k; i++)
        if (strcmp(refs[i].name, name) == 0) {
            *cnt = refs[i].n;
            if (data) *data = refs[i].data;
            return refs[i].grad;
        }
    return NULL;
}

static void run_case(const grad_case *c) {
    test_rng rng = {0x1234 + (uint64_t)c->in * 7 + (uint64_t)c->out};
    const int64_t in = c->in, out = c->out, n = c->n;
    float *W0 = malloc(sizeof(float) * (size_t)(in * out)), *b0 = malloc(sizeof(float) * (size_t)out);
    float *X = malloc(sizeof(float) * (size_t)(n * in)), *Y = malloc(sizeof(float) * (size_t)(n * out));
    float *dY = malloc(sizeof(float) * (size_t)(n * out)), *dX = malloc(sizeof(float) * (size_t)(n * in));
    float *dX2 = malloc(sizeof(float) * (size_t)(n * in)), *Wd = malloc(sizeof(float) * (size_t)(in * out));
    test_fill_normal(&rng, W0, (size_t)(in * out), 0.3f);
    test_fill_normal(&rng, b0, (size_t)out, 0.1f);
    test_fill_normal(&rng, X, (size_t)(n * in), 1.0f);
    if (c->kind == K_INT8) X[3] = 8.5f; /* one outlier column (|x| ≥ 6) for the LLM.int8() split */

    msbnb_linear *l = make_layer(c, W0, b0);
    if (!l) goto out;
    ref_layer L = {in, out, n, NULL, NULL, 0, NULL, NULL, 0, 1, NULL};
    if (c->lora_r) {
        msbnb_lora_params lp = msbnb_lora_params_default();
        lp.r = c->lora_r;
        lp.lora_alpha = 2.0f * (float)c->lora_r + 1.0f;
        lp.lora_dropout = c->dropout;
        lp.use_rslora = c->rslora;
        lp.init_gaussian = c->gaussian;
        lp.seed = 99;
        CHECK_OK(msbnb_lora_add(l, "default", &lp));
        msbnb_lora_view v;
        CHECK_OK(msbnb_lora_get(l, NULL, &v));
        test_fill_normal(&rng, v.B, (size_t)(out * c->lora_r), 0.2f); /* B ≠ 0 so dA is not trivially 0 */
        CHECK_NEAR(v.scaling, c->rslora ? lp.lora_alpha / sqrt((double)lp.r) : lp.lora_alpha / lp.r, 1e-6);
        L.r = c->lora_r;
        L.A = to_double(v.A, (size_t)(c->lora_r * in));
        L.B = to_double(v.B, (size_t)(out * c->lora_r));
        L.scaling = v.scaling;
        L.keep_scale = c->dropout > 0 ? 1.0 / (1.0 - (double)(float)c->dropout) : 1.0;
        if (c->dropout > 0) L.keep_scale = (double)(1.0f / (1.0f - c->dropout));
        msbnb_linear_set_training(l, 1);
    }
    CHECK_OK(msbnb_linear_forward(l, X, n, Y));
    L.mask = malloc((size_t)(n * in));
    if (c->lora_r)
        CHECK_OK(msbnb__lora_dropout_mask(l, n, L.mask));
    else
        memset(L.mask, 1, (size_t)(n * in));
    CHECK_OK(msbnb_linear_get_weight_f32(l, Wd));
    L.W = to_double(Wd, (size_t)(in * out));
    L.b = c->has_bias ? to_double(b0, (size_t)out) : NULL;

    double *Xd = to_double(X, (size_t)(n * in)), *Yd = malloc(sizeof(double) * (size_t)(n * out));
    double *T = malloc(sizeof(double) * (size_t)(n * out)), *Ybuf = malloc(sizeof(double) * (size_t)(n * out));
    ref_forward(&L, Xd, Yd);

    /* forward check */
    if (c->kind == K_INT8 && !c->int8_asym && !c->int8_per_tensor) {
        /* LLM.int8(): non-outlier activations rounded to int8 per row, |Δx| ≤ rowstat/254. */
        for (int64_t i = 0; i < n; i++) {
            double rowstat = 0;
            for (int64_t j = 0; j < in; j++)
                if (j != 3 && fabs(X[i * in + j]) > rowstat) rowstat = fabs(X[i * in + j]);
            for (int64_t o = 0; o < out; o++) {
                double bound = 0, mag = 0;
                for (int64_t j = 0; j < in; j++) {
                    if (j != 3) bound += rowstat / 254.0 * fabs(L.W[o * in + j]);
                    mag += fabs(X[i * in + j] * L.W[o * in + j]);
                }
                bound = bound * (1 + 1e-5) + 1e-5 * mag + 1e-6;
                CHECK_MSG_(fabs(Y[i * out + o] - Yd[i * out + o]) <= bound, "%s: int8 forward (%lld,%lld) %g vs %g, bound %g",
                           c->name, (long long)i, (long long)o, (double)Y[i * out + o], Yd[i * out + o], bound);
            }
        }
    } else {
        double num = 0, den = 0;
        for (int64_t i = 0; i < n * out; i++) {
            num += (Y[i] - Yd[i]) * (Y[i] - Yd[i]);
            den += Yd[i] * Yd[i];
        }
        CHECK_MSG_(sqrt(num / den) < 1e-5, "%s: forward rel err %g", c->name, sqrt(num / den));
    }

    /* backward */
    for (int64_t i = 0; i < n * out; i++) {
        T[i] = Yd[i] + test_rng_normal(&rng);
        dY[i] = (float)(Yd[i] - T[i]);
    }
    msbnb_linear_zero_grad(l);
    CHECK_OK(msbnb_linear_backward(l, X, dY, n, dX));
    double *fd = malloc(sizeof(double) * (size_t)(in * out + n * in + 64 * (in + out)));
    fd_grad(&L, Xd, (size_t)(n * in), Xd, T, Ybuf, fd);
    double e = rel_err(dX, fd, (size_t)(n * in));
    CHECK_MSG_(e < 1e-4, "%s: dX rel err %g", c->name, e);

    size_t cnt = 0;
    float *g = find_grad(l, "weight", &cnt, NULL);
    int base_trainable = (c->kind == K_F32 || c->kind == K_INT8_TRAIN) && !c->lora_r;
    CHECK_MSG_((g != NULL) == base_trainable, "%s: weight trainable %d, expected %d", c->name, g != NULL,
               base_trainable);
    if (g) {
        fd_grad(&L, L.W, (size_t)(in * out), Xd, T, Ybuf, fd);
        e = rel_err(g, fd, cnt);
        CHECK_MSG_(e < 1e-4, "%s: dW rel err %g", c->name, e);
        if (c->has_bias) {
            float *gb = find_grad(l, "bias", &cnt, NULL);
            CHECK(gb != NULL);
            if (gb) {
                fd_grad(&L, L.b, (size_t)out, Xd, T, Ybuf, fd);
                e = rel_err(gb, fd, cnt);
                CHECK_MSG_(e < 1e-4, "%s: db rel err %g", c->name, e);
            }
        }
    }
    if (c->lora_r) {
        float *gA = find_grad(l, "lora_A", &cnt, NULL);
        CHECK(gA != NULL);
        if (gA) {
            fd_grad(&L, L.A, cnt, Xd, T, Ybuf, fd);
            e = rel_err(gA, fd, cnt);
            CHECK_MSG_(e < 1e-4, "%s: dA rel err %g", c->name, e);
        }
        float *gB = find_grad(l, "lora_B", &cnt, NULL);
        CHECK(gB != NULL);
        if (gB) {
            fd_grad(&L, L.B, cnt, Xd, T, Ybuf, fd);
            e = rel_err(gB, fd, cnt);
            CHECK_MSG_(e < 1e-4, "%s: dB rel err %g", c->name, e);
        }
    }

    /* Gradients accumulate, dX is overwritten: a second identical backward doubles every
     * parameter gradient exactly (x + x is exact) and gives the same dX bits. */
    {
        msbnb_param_ref refs[MSBNB_LINEAR_MAX_PARAMS];
        int k = 0;
        CHECK_OK(msbnb_linear_trainable_params(l, refs, MSBNB_LINEAR_MAX_PARAMS, &k));
        float *copies[MSBNB_LINEAR_MAX_PARAMS];
        for (int i = 0; i < k; i++) {
            copies[i] = malloc(refs[i].n * sizeof(float));
            memcpy(copies[i], refs[i].grad, refs[i].n * sizeof(float));
        }
        CHECK_OK(msbnb_linear_backward(l, X, dY, n, dX2));
        CHECK(memcmp(dX, dX2, sizeof(float) * (size_t)(n * in)) == 0);
        for (int i = 0; i < k; i++) {
            size_t bad = 0;
            for (size_t j = 0; j < refs[i].n; j++) bad += refs[i].grad[j] != 2.0f * copies[i][j];
            CHECK_MSG_(bad == 0, "%s: %s not accumulated (%zu differ)", c->name, refs[i].name, bad);
            free(copies[i]);
        }
        /* backward without dX still accumulates parameter gradients */
        CHECK_OK(msbnb_linear_backward(l, X, dY, n, NULL));
    }

    free(fd);
    free(Xd);
    free(Yd);
    free(T);
    free(Ybuf);
    free(L.W);
    free(L.b);
    free(L.A);
    free(L.B);
    free(L.mask);
out:
    msbnb_linear_free(l);
    free(W0);
    free(b0);
    free(X);
    free(Y);
    free(dY);
    free(dX);
    free(dX2);
    free(Wd);
}

static const grad_case cases[] = {
    {"f32", K_F32, 0, 0, 0, 0, 13, 7, 3, 1, 0, 0, 0, 0},
    {"f32_nobias", K_F32, 0, 0, 0, 0, 5, 9, 2, 0, 0, 0, 0, 0},
    {"f32_lora", K_F32, 0, 0, 0, 0, 13, 7, 3, 1, 3, 0, 0, 0},
    {"f32_lora_dropout_rslora", K_F32, 0, 0, 0, 0, 17, 6, 4, 1, 4, 0.3f, 1, 0},
    {"int8_train", K_INT8_TRAIN, 0, 0, 0, 0, 11, 6, 3, 1, 0, 0, 0, 0},
    {"int8_lt", K_INT8, 0, 0, 0, 0, 33, 7, 3, 1, 0, 0, 0, 0},
    {"int8_lt_lora", K_INT8, 0, 0, 0, 0, 33, 7, 3, 1, 2, 0.25f, 0, 1},
    {"int8_asym_tensor", K_INT8, 0, 0, 1, 1, 19, 5, 2, 0, 0, 0, 0, 0},
    {"int8_asym_row_lora", K_INT8, 0, 0, 1, 0, 21, 6, 3, 1, 3, 0.2f, 0, 0},
    {"int8_sym_tensor_lora", K_INT8, 0, 0, 0, 1, 19, 5, 2, 1, 2, 0, 0, 0},
    {"int4", K_4BIT, MSBNB_QTYPE_INT4, 0, 0, 0, 32, 7, 3, 1, 0, 0, 0, 0},
    {"int4_dq_lora", K_4BIT, MSBNB_QTYPE_INT4, 1, 0, 0, 32, 9, 3, 0, 4, 0.1f, 0, 0},
    {"nf4", K_4BIT, MSBNB_QTYPE_NF4, 0, 0, 0, 33, 7, 3, 1, 0, 0, 0, 0},
    {"nf4_dq_lora", K_4BIT, MSBNB_QTYPE_NF4, 1, 0, 0, 33, 7, 3, 1, 4, 0, 0, 0},
    {"nf4_dq_lora_dropout", K_4BIT, MSBNB_QTYPE_NF4, 1, 0, 0, 40, 11, 5, 0, 8, 0.5f, 0, 1},
    {"fp4_lora", K_4BIT, MSBNB_QTYPE_FP4, 0, 0, 0, 33, 7, 3, 1, 2, 0, 1, 0},
    {"fp4_dq", K_4BIT, MSBNB_QTYPE_FP4, 1, 0, 0, 65, 3, 2, 1, 0, 0, 0, 0},
};

TEST(gradients_all_kinds) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
}

static void grads_on_isa(msbnb_isa isa, void *ctx) {
    (void)ctx;
    printf("  isa %s\n", msbnb_isa_name(isa));
    run_case(&cases[13]); /* nf4 + dq + lora */
    run_case(&cases[6]);  /* int8_lt + lora  */
}

TEST(gradients_every_isa) { test_for_each_isa(grads_on_isa, NULL); }

int main(void) {
    RUN(gradients_all_kinds);
    RUN(gradients_every_isa);
    return test_report();
}
