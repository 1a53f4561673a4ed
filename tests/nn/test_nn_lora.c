/*
 * test_nn_lora.c — LoRA adapters: initialisation, several named adapters, dropout
 * reproducibility, merge / unmerge round trips with format-derived rounding bounds, memory
 * figures, parameter counts, error paths and thread invariance.
 */
#include <cblas.h>

#include <msbnb/nn.h>

#include "nn/nn_internal.h"
#include "quant/qtensor_internal.h"
#include "test.h"

static float *randn(test_rng *r, size_t n, float s) {
    float *x = malloc(n * sizeof(float));
    test_fill_normal(r, x, n, s);
    return x;
}

/* ---------------------------------------------------------------- initialisation */

TEST(init_distributions) {
    const int64_t in = 256, out = 64;
    msbnb_linear *l = NULL;
    CHECK_OK(msbnb_linear_create(in, out, 1, 7, &l));
    if (!l) return;
    /* nn.Linear: W, b ~ U(-1/√in, 1/√in): bounds hold and the variance is bound²/3 (±5%). */
    double bound = 1.0 / sqrt((double)in), s2 = 0;
    float *w = msbnb_linear_weight(l);
    int outside = 0;
    for (int64_t i = 0; i < in * out; i++) {
        outside += fabs(w[i]) > bound;
        s2 += (double)w[i] * w[i];
    }
    CHECK_EQ_INT(outside, 0);
    CHECK_NEAR(s2 / (double)(in * out), bound * bound / 3, 0.05 * bound * bound / 3);
    for (int64_t i = 0; i < out; i++) CHECK(fabs(msbnb_linear_bias(l)[i]) <= bound);

    msbnb_lora_params p = msbnb_lora_params_default();
    CHECK_EQ_INT(p.r, 8);
    CHECK_NEAR(p.lora_alpha, 16, 0);
    p.r = 16;
    CHECK_OK(msbnb_lora_add(l, "uniform", &p));
    p.init_gaussian = 1;
    CHECK_OK(msbnb_lora_add(l, "gauss", &p));
    msbnb_lora_view v;
    CHECK_OK(msbnb_lora_get(l, "uniform", &v));
    outside = 0;
    s2 = 0;
    for (int64_t i = 0; i < 16 * in; i++) {
        outside += fabs(v.A[i]) > bound;
        s2 += (double)v.A[i] * v.A[i];
    }
    CHECK_EQ_INT(outside, 0);
    CHECK_NEAR(s2 / (double)(16 * in), bound * bound / 3, 0.05 * bound * bound / 3);
    int nonzero_b = 0;
    for (int64_t i = 0; i < out * 16; i++) nonzero_b += v.B[i] != 0.0f;
    CHECK_EQ_INT(nonzero_b, 0); /* B starts at zero */
    CHECK_NEAR(v.scaling, 1.0, 0);  /* 16 / 16 */
    CHECK_OK(msbnb_lora_get(l, "gauss", &v));
    s2 = 0;
    for (int64_t i = 0; i < 16 * in; i++) s2 += (double)v.A[i] * v.A[i];
    CHECK_NEAR(sqrt(s2 / (double)(16 * in)), 1.0 / 16, 0.05 / 16); /* PEFT "gaussian": std 1/r */
    /* same seed -> same layer */
    msbnb_linear *l2 = NULL;
    CHECK_OK(msbnb_linear_create(in, out, 1, 7, &l2));
    if (l2) CHECK(memcmp(msbnb_linear_weight(l2), w, sizeof(float) * (size_t)(in * out)) == 0);
    msbnb_linear_free(l2);
    msbnb_linear_free(l);
}

/* ---------------------------------------------------------------- several adapters */

TEST(named_adapters) {
    test_rng rng = {11};
    const int64_t in = 40, out = 24, n = 5;
    float *W = randn(&rng, (size_t)(in * out), 0.2f), *X = randn(&rng, (size_t)(n * in), 1.0f);
    float *Y0 = malloc(sizeof(float) * (size_t)(n * out)), *Y1 = malloc(sizeof(float) * (size_t)(n * out));
    float *Y2 = malloc(sizeof(float) * (size_t)(n * out)), *Y3 = malloc(sizeof(float) * (size_t)(n * out));
    msbnb_linear *l = NULL;
    msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    CHECK_OK(msbnb_linear4bit_create_from_weights(W, NULL, in, out, &cfg, &l));
    if (!l) return;
    CHECK_OK(msbnb_linear_forward(l, X, n, Y0));
    msbnb_lora_params p = msbnb_lora_params_default();
    p.r = 4;
    CHECK_OK(msbnb_lora_add(l, "one", &p));
    p.seed = 5;
    CHECK_OK(msbnb_lora_add(l, "two", &p));
    CHECK_STATUS(msbnb_lora_add(l, "two", &p), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_lora_add(l, "", &p), MSBNB_ERR_INVALID_ARG);
    p.lora_dropout = 1.0f;
    CHECK_STATUS(msbnb_lora_add(l, "bad", &p), MSBNB_ERR_INVALID_ARG);
    CHECK_EQ_INT(msbnb_lora_count(l), 2);
    CHECK(strcmp(msbnb_lora_active(l), "one") == 0); /* the first adapter becomes active */
    CHECK(strcmp(msbnb_lora_name(l, 1), "two") == 0);
    CHECK(msbnb_lora_name(l, 2) == NULL);
    /* B = 0: adding an adapter leaves the output unchanged, bit for bit */
    CHECK_OK(msbnb_linear_forward(l, X, n, Y1));
    CHECK(memcmp(Y0, Y1, sizeof(float) * (size_t)(n * out)) == 0);
    msbnb_lora_view v1, v2;
    CHECK_OK(msbnb_lora_get(l, "one", &v1));
    CHECK_OK(msbnb_lora_get(l, "two", &v2));
    test_fill_normal(&rng, v1.B, (size_t)(out * 4), 0.3f);
    test_fill_normal(&rng, v2.B, (size_t)(out * 4), 0.3f);
    CHECK(memcmp(v1.A, v2.A, sizeof(float) * (size_t)(4 * in)) != 0); /* different seeds */
    CHECK_OK(msbnb_linear_forward(l, X, n, Y1));
    CHECK_OK(msbnb_lora_set_active(l, "two"));
    CHECK_OK(msbnb_linear_forward(l, X, n, Y2));
    CHECK(memcmp(Y1, Y2, sizeof(float) * (size_t)(n * out)) != 0);
    CHECK(memcmp(Y0, Y1, sizeof(float) * (size_t)(n * out)) != 0);
    /* the adapter's term is exactly Y − base: compare to ΔW from get_merged_weight */
    float *D = malloc(sizeof(float) * (size_t)(in * out));
    CHECK_OK(msbnb_lora_get_merged_weight(l, NULL, D));
    double maxd = 0, mag = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < out; o++) {
            double s = 0, m = 0;
            for (int64_t j = 0; j < in; j++) {
                s += (double)X[i * in + j] * D[o * in + j];
                m += fabs((double)X[i * in + j] * D[o * in + j]);
            }
            double e = fabs((double)Y2[i * out + o] - Y0[i * out + o] - s);
            maxd = e > maxd ? e : maxd;
            mag = m > mag ? m : mag;
        }
    CHECK_MSG_(maxd <= 1e-5 * (mag + 1), "adapter term vs X·ΔWᵀ: %g", maxd);
    /* disable -> base only */
    CHECK_OK(msbnb_lora_set_active(l, NULL));
    CHECK(msbnb_lora_active(l) == NULL);
    CHECK_OK(msbnb_linear_forward(l, X, n, Y3));
    CHECK(memcmp(Y0, Y3, sizeof(float) * (size_t)(n * out)) == 0);
    CHECK_STATUS(msbnb_lora_set_active(l, "three"), MSBNB_ERR_NOT_FOUND);
    /* delete the active one -> none active; the other stays */
    CHECK_OK(msbnb_lora_set_active(l, "one"));
    CHECK_OK(msbnb_lora_delete(l, "one"));
    CHECK(msbnb_lora_active(l) == NULL);
    CHECK_EQ_INT(msbnb_lora_count(l), 1);
    CHECK_OK(msbnb_lora_set_active(l, "two"));
    CHECK_OK(msbnb_linear_forward(l, X, n, Y3));
    CHECK(memcmp(Y2, Y3, sizeof(float) * (size_t)(n * out)) == 0);
    CHECK_STATUS(msbnb_lora_delete(l, "one"), MSBNB_ERR_NOT_FOUND);
    /* trainable: only the active adapter; counts as PEFT counts them */
    int k = 0;
    CHECK_OK(msbnb_linear_trainable_params(l, NULL, 0, &k));
    CHECK_EQ_INT(k, 2);
    int64_t tr = 0, all = 0;
    msbnb_linear_count_params(l, &tr, &all);
    CHECK_EQ_INT(tr, 4 * (in + out));
    CHECK_EQ_INT(all, in * out + 4 * (in + out));
    free(D);
    free(W);
    free(X);
    free(Y0);
    free(Y1);
    free(Y2);
    free(Y3);
    msbnb_linear_free(l);
}

/* ---------------------------------------------------------------- dropout */

TEST(dropout_reproducible) {
    test_rng rng = {3};
    const int64_t in = 64, out = 8, n = 32;
    float *X = randn(&rng, (size_t)(n * in), 1.0f);
    float *Ya = malloc(sizeof(float) * (size_t)(n * out)), *Yb = malloc(sizeof(float) * (size_t)(n * out));
    float *Yc = malloc(sizeof(float) * (size_t)(n * out));
    msbnb_linear *a = NULL, *b = NULL;
    CHECK_OK(msbnb_linear_create(in, out, 0, 1, &a));
    CHECK_OK(msbnb_linear_create(in, out, 0, 1, &b));
    if (!a || !b) return;
    msbnb_lora_params p = msbnb_lora_params_default();
    p.lora_dropout = 0.25f;
    p.seed = 77;
    CHECK_OK(msbnb_lora_add(a, "d", &p));
    CHECK_OK(msbnb_lora_add(b, "d", &p));
    msbnb_lora_view va, vb;
    CHECK_OK(msbnb_lora_get(a, "d", &va));
    CHECK_OK(msbnb_lora_get(b, "d", &vb));
    test_fill_normal(&rng, va.B, (size_t)(out * 8), 0.5f);
    memcpy(vb.B, va.B, sizeof(float) * (size_t)(out * 8));
    msbnb_linear_set_training(a, 1);
    msbnb_linear_set_training(b, 1);
    /* same seed, same call count -> same masks -> same outputs */
    CHECK_OK(msbnb_linear_forward(a, X, n, Ya));
    CHECK_OK(msbnb_linear_forward(b, X, n, Yb));
    CHECK(memcmp(Ya, Yb, sizeof(float) * (size_t)(n * out)) == 0);
    /* the mask keeps about 1 - p of the elements (5 sigma binomial bound) */
    uint8_t *mask = malloc((size_t)(n * in));
    CHECK_OK(msbnb__lora_dropout_mask(a, n, mask));
    double kept = 0;
    for (int64_t i = 0; i < n * in; i++) kept += mask[i];
    double N = (double)(n * in), sd = sqrt(N * 0.25 * 0.75);
    CHECK_MSG_(fabs(kept - 0.75 * N) <= 5 * sd, "kept %g of %g", kept, N);
    /* a second forward draws a new mask */
    CHECK_OK(msbnb_linear_forward(a, X, n, Yc));
    CHECK(memcmp(Ya, Yc, sizeof(float) * (size_t)(n * out)) != 0);
    /* eval mode: no dropout, equals the deterministic path */
    msbnb_linear_set_training(a, 0);
    msbnb_linear_set_training(b, 0);
    CHECK_OK(msbnb_linear_forward(a, X, n, Ya));
    CHECK_OK(msbnb_lora_set_active(b, NULL));
    CHECK_OK(msbnb_linear_forward(b, X, n, Yb));
    CHECK(memcmp(Ya, Yb, sizeof(float) * (size_t)(n * out)) != 0); /* adapter active in a, not in b */
    free(mask);
    free(X);
    free(Ya);
    free(Yb);
    free(Yc);
    msbnb_linear_free(a);
    msbnb_linear_free(b);
}

/* ---------------------------------------------------------------- merge / unmerge */

typedef struct merge_case {
    const char *name;
    int kind; /* 0 f32, 1 int8, 2 4-bit */
    msbnb_qtype qtype;
    int double_quant;
} merge_case;

/* Format bound of |deq(quant(x)) − x| for element i of a freshly quantized tensor, from the
 * tensor's own statistics: half the widest gap of the code table times the scale. Only for formats
 * without double quantization (whose absmax is itself rounded). */
static double format_bound(const msbnb_qtensor *q, int64_t i) {
    const msbnb_qtensor_view *v = &q->v;
    if (v->type == MSBNB_QTYPE_INT8) return (v->per_row ? v->stats[i / v->cols] : v->stats[0]) / 254.0;
    if (v->type == MSBNB_QTYPE_INT4) {
        int64_t row = i / v->cols, g = (i % v->cols) / v->group_size;
        return v->stats[g * v->rows + row] / 2.0; /* scale / 2 */
    }
    double gap = 0; /* widest gap between neighbouring entries of the sorted 16-entry table */
    float sorted[16];
    memcpy(sorted, v->code, sizeof sorted);
    for (int a = 0; a < 16; a++)
        for (int b = a + 1; b < 16; b++)
            if (sorted[b] < sorted[a]) {
                float t = sorted[a];
                sorted[a] = sorted[b];
                sorted[b] = t;
            }
    for (int c = 1; c < 16; c++) gap = fmax(gap, (double)sorted[c] - sorted[c - 1]);
    return v->stats[i / v->blocksize] * gap / 2.0;
}

/* Same bound for a double-quantized tensor q built from `exact` [rows*cols]: codes are chosen with
 * the TRUE statistic s (block absmax, or group absmax/7 for INT4) and stored with its 8-bit
 * dequantized value s', so |deq − x| ≤ (bound with s) + max|code| · |s' − s|. out [rows*cols]. */
static void dq_bounds(const msbnb_qtensor *q, const float *exact, double *out) {
    const msbnb_qtensor_view *v = &q->v;
    float *sd = malloc(v->n_stats * sizeof(float));
    if (msbnb_double_dequantize(v->stats_q, v->nested_absmax, v->nested_offset, v->nested_code, v->n_stats,
                                v->nested_blocksize, sd) != MSBNB_OK) {
        for (int64_t i = 0; i < v->rows * v->cols; i++) out[i] = -1; /* forces a failure */
        free(sd);
        return;
    }
    double gap = 0;
    float sorted[16];
    if (v->type != MSBNB_QTYPE_INT4) {
        memcpy(sorted, v->code, sizeof sorted);
        for (int a = 0; a < 16; a++)
            for (int b = a + 1; b < 16; b++)
                if (sorted[b] < sorted[a]) {
                    float t = sorted[a];
                    sorted[a] = sorted[b];
                    sorted[b] = t;
                }
        for (int c = 1; c < 16; c++) gap = fmax(gap, (double)sorted[c] - sorted[c - 1]);
    }
    for (int64_t i = 0; i < v->rows * v->cols; i++) {
        double s_true = 0, s_dq, half, cmax;
        if (v->type == MSBNB_QTYPE_INT4) {
            int64_t row = i / v->cols, g = (i % v->cols) / v->group_size;
            for (int64_t j = 0; j < v->group_size; j++)
                s_true = fmax(s_true, fabs(exact[row * v->cols + g * v->group_size + j]));
            s_true = (float)(s_true / 7.0);
            s_dq = sd[g * v->rows + row];
            half = s_true / 2.0;
            cmax = 8.0;
        } else {
            int64_t b = i / v->blocksize, e = (b + 1) * v->blocksize;
            if (e > v->rows * v->cols) e = v->rows * v->cols;
            for (int64_t j = b * v->blocksize; j < e; j++) s_true = fmax(s_true, fabs(exact[j]));
            s_dq = sd[b];
            half = s_true * gap / 2.0;
            cmax = 1.0;
        }
        out[i] = half * (1 + 1e-5) + cmax * fabs(s_dq - s_true) + 1e-7;
    }
    free(sd);
}

static void run_merge(const merge_case *mc) {
    test_rng rng = {21 + (uint64_t)mc->kind};
    const int64_t in = 64, out = 48, n = 6;
    float *W = randn(&rng, (size_t)(in * out), 0.2f), *b = randn(&rng, (size_t)out, 0.1f);
    float *X = randn(&rng, (size_t)(n * in), 1.0f);
    float *Ya = malloc(sizeof(float) * (size_t)(n * out)), *Ym = malloc(sizeof(float) * (size_t)(n * out));
    float *Yu = malloc(sizeof(float) * (size_t)(n * out)), *Wnew = malloc(sizeof(float) * (size_t)(in * out));
    float *Wold = malloc(sizeof(float) * (size_t)(in * out)), *D = malloc(sizeof(float) * (size_t)(in * out));
    msbnb_linear *l = NULL;
    if (mc->kind == 0) {
        CHECK_OK(msbnb_linear_create_from_weights(W, b, in, out, &l));
    } else if (mc->kind == 1) {
        msbnb_linear8bit_params p = msbnb_linear8bit_params_default();
        p.has_fp16_weights = 0;
        p.threshold = 0.0f; /* pure int8 product; X has no outliers anyway */
        CHECK_OK(msbnb_linear8bit_create_from_weights(W, b, in, out, &p, &l));
    } else {
        msbnb_quant_config cfg = msbnb_quant_config_default(mc->qtype);
        cfg.double_quant = mc->double_quant;
        if (mc->qtype == MSBNB_QTYPE_INT4) cfg.group_size = 32;
        CHECK_OK(msbnb_linear4bit_create_from_weights(W, b, in, out, &cfg, &l));
    }
    if (!l) return;
    msbnb_lora_params p = msbnb_lora_params_default();
    p.r = 4;
    CHECK_OK(msbnb_lora_add(l, "m", &p));
    msbnb_lora_view v;
    CHECK_OK(msbnb_lora_get(l, "m", &v));
    test_fill_normal(&rng, v.B, (size_t)(out * 4), 0.05f);
    CHECK_OK(msbnb_linear_forward(l, X, n, Ya));
    CHECK_OK(msbnb_linear_get_weight_f32(l, Wold));
    CHECK_OK(msbnb_lora_get_merged_weight(l, "m", D));

    /* copies of every byte of the base before the merge */
    const msbnb_qtensor *q0 = msbnb_linear_qtensor(l);
    msbnb_qtensor *saved = NULL;
    if (q0) CHECK_OK(msbnb_qtensor_clone(q0, &saved));

    msbnb_merge_report rep;
    CHECK_OK(msbnb_lora_merge(l, &rep));
    CHECK_STATUS(msbnb_lora_merge(l, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_lora_set_active(l, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_lora_delete(l, "m"), MSBNB_ERR_INVALID_ARG);
    CHECK_OK(msbnb_lora_get(l, "m", &v));
    CHECK_EQ_INT(v.merged, 1);
    int k = 0;
    CHECK_OK(msbnb_linear_trainable_params(l, NULL, 0, &k));
    CHECK_EQ_INT(k, 0); /* nothing trainable while merged */
    CHECK_OK(msbnb_linear_get_weight_f32(l, Wnew));

    /* 1. the report is what happened: max |W' − (W + ΔW)| */
    double mx = 0;
    for (int64_t i = 0; i < in * out; i++) {
        double e = fabs((double)Wnew[i] - ((double)Wold[i] + D[i]));
        mx = e > mx ? e : mx;
    }
    CHECK_MSG_(fabs(mx - rep.max_abs_error) <= 1e-6 * (mx + 1e-6), "%s: report %g, measured %g", mc->name,
               rep.max_abs_error, mx);
    CHECK(rep.delta_rms > 0);
    /* 2. the error is within the format's rounding bound, element by element */
    const msbnb_qtensor *qm = msbnb_linear_qtensor(l);
    if (qm && mc->double_quant) {
        float *ex = malloc(sizeof(float) * (size_t)(in * out));
        double *bd = malloc(sizeof(double) * (size_t)(in * out));
        for (int64_t i = 0; i < in * out; i++) ex[i] = Wold[i] + D[i]; /* the merge's float sum */
        dq_bounds(qm, ex, bd);
        int64_t bad = 0;
        for (int64_t i = 0; i < in * out; i++) bad += fabs((double)Wnew[i] - ex[i]) > bd[i];
        CHECK_MSG_(bad == 0, "%s: %lld elements beyond the double-quant bound", mc->name, (long long)bad);
        free(ex);
        free(bd);
    }
    if (qm && !mc->double_quant) {
        int64_t bad = 0;
        for (int64_t i = 0; i < in * out; i++) {
            double e = fabs((double)Wnew[i] - ((double)Wold[i] + D[i]));
            double bound = format_bound(qm, i) * (1 + 1e-5) + 1e-7;
            bad += e > bound;
        }
        CHECK_MSG_(bad == 0, "%s: %lld elements beyond the format bound", mc->name, (long long)bad);
    } else if (!qm) {
        CHECK_MSG_(rep.max_abs_error <= 1e-6, "%s: fp32 merge error %g", mc->name, rep.max_abs_error);
    }
    /* 3. outputs after the merge match the adapter path within Σ|x|·max_err + product rounding */
    CHECK_OK(msbnb_linear_forward(l, X, n, Ym));
    for (int64_t i = 0; i < n; i++) {
        double sx = 0;
        for (int64_t j = 0; j < in; j++) sx += fabs(X[i * in + j]);
        for (int64_t o = 0; o < out; o++) {
            double mag = 0;
            for (int64_t j = 0; j < in; j++) mag += fabs(X[i * in + j] * Wnew[o * in + j]);
            /* INT8 products round activations too (|Δx| ≤ rowmax/254): the same bound for both paths */
            double act = 0;
            if (mc->kind == 1) {
                double rm = 0;
                for (int64_t j = 0; j < in; j++) rm = fmax(rm, fabs(X[i * in + j]));
                for (int64_t j = 0; j < in; j++) act += rm / 254.0 * (fabs(Wnew[o * in + j]) + fabs(Wold[o * in + j]));
            }
            double bound = sx * rep.max_abs_error + act + 2e-6 * mag + 1e-6;
            double e = fabs((double)Ym[i * out + o] - Ya[i * out + o]);
            CHECK_MSG_(e <= bound, "%s: merged output (%lld,%lld) off by %g > %g", mc->name, (long long)i,
                       (long long)o, e, bound);
        }
    }
    /* 4. unmerge restores every byte and the adapter path */
    CHECK_OK(msbnb_lora_unmerge(l));
    CHECK_STATUS(msbnb_lora_unmerge(l), MSBNB_ERR_INVALID_ARG);
    if (saved) {
        const msbnb_qtensor *q1 = msbnb_linear_qtensor(l);
        msbnb_qtensor_view a, c;
        CHECK_OK(msbnb_qtensor_get_view(saved, &a));
        CHECK_OK(msbnb_qtensor_get_view(q1, &c));
        CHECK(a.data_bytes == c.data_bytes && memcmp(a.data, c.data, a.data_bytes) == 0);
        CHECK(a.n_stats == c.n_stats);
        if (a.stats) CHECK(c.stats && memcmp(a.stats, c.stats, a.n_stats * sizeof(float)) == 0);
        if (a.stats_q) CHECK(c.stats_q && memcmp(a.stats_q, c.stats_q, a.n_stats) == 0);
        if (a.nested_absmax)
            CHECK(c.nested_absmax && memcmp(a.nested_absmax, c.nested_absmax, a.n_nested * sizeof(float)) == 0);
        if (a.zero_point) CHECK(c.zero_point && memcmp(a.zero_point, c.zero_point, 4 * (size_t)a.rows) == 0);
        CHECK(memcmp(&a.nested_offset, &c.nested_offset, sizeof(float)) == 0);
    } else {
        CHECK_OK(msbnb_linear_get_weight_f32(l, Wnew));
        CHECK(memcmp(Wnew, Wold, sizeof(float) * (size_t)(in * out)) == 0);
    }
    CHECK_OK(msbnb_linear_forward(l, X, n, Yu));
    CHECK(memcmp(Ya, Yu, sizeof(float) * (size_t)(n * out)) == 0);
    CHECK(strcmp(msbnb_lora_active(l), "m") == 0);
    /* merge_and_unload: base changed for good, adapter gone */
    CHECK_OK(msbnb_lora_merge_and_unload(l, &rep));
    CHECK_EQ_INT(msbnb_lora_count(l), 0);
    CHECK(msbnb_lora_active(l) == NULL);
    CHECK_OK(msbnb_linear_forward(l, X, n, Yu));
    CHECK(memcmp(Ym, Yu, sizeof(float) * (size_t)(n * out)) == 0);
    msbnb_linear_memory mem;
    CHECK_OK(msbnb_linear_memory_usage(l, &mem));
    CHECK_EQ_INT(mem.merge_backup_bytes, 0);

    msbnb_qtensor_free(saved);
    msbnb_linear_free(l);
    free(W);
    free(b);
    free(X);
    free(Ya);
    free(Ym);
    free(Yu);
    free(Wnew);
    free(Wold);
    free(D);
}

TEST(merge_unmerge) {
    static const merge_case mc[] = {
        {"f32", 0, MSBNB_QTYPE_NONE, 0},      {"int8", 1, MSBNB_QTYPE_INT8, 0},
        {"int4", 2, MSBNB_QTYPE_INT4, 0},     {"int4_dq", 2, MSBNB_QTYPE_INT4, 1},
        {"nf4", 2, MSBNB_QTYPE_NF4, 0},       {"nf4_dq", 2, MSBNB_QTYPE_NF4, 1},
        {"fp4", 2, MSBNB_QTYPE_FP4, 0},       {"fp4_dq", 2, MSBNB_QTYPE_FP4, 1},
    };
    for (size_t i = 0; i < sizeof mc / sizeof mc[0]; i++) run_merge(&mc[i]);
}

/* ---------------------------------------------------------------- memory and modes */

TEST(memory_figures) {
    test_rng rng = {5};
    const int64_t in = 512, out = 256;
    float *W = randn(&rng, (size_t)(in * out), 0.1f);
    msbnb_linear *f = NULL, *i8 = NULL, *nf = NULL, *nfdq = NULL;
    CHECK_OK(msbnb_linear_create_from_weights(W, NULL, in, out, &f));
    msbnb_linear8bit_params p8 = msbnb_linear8bit_params_default();
    p8.has_bias = 0;
    CHECK_OK(msbnb_linear8bit_create_from_weights(W, NULL, in, out, &p8, &i8));
    msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    CHECK_OK(msbnb_linear4bit_from_linear(f, &cfg, &nf));
    cfg.double_quant = 1;
    CHECK_OK(msbnb_linear4bit_from_linear(f, &cfg, &nfdq));
    if (!f || !i8 || !nf || !nfdq) return;
    msbnb_linear_memory m;
    CHECK_OK(msbnb_linear_memory_usage(f, &m));
    CHECK_EQ_INT(m.weight_bytes, in * out * 4);
    CHECK_NEAR(m.base_bits_per_weight, 32.0, 0);
    /* INT8 in training mode holds fp32; after quantize_weights: 8 bits + one fp32 absmax per row */
    CHECK_OK(msbnb_linear_memory_usage(i8, &m));
    CHECK_NEAR(m.base_bits_per_weight, 32.0, 0);
    CHECK(msbnb_linear_weight_qtype(i8) == MSBNB_QTYPE_NONE);
    CHECK_OK(msbnb_linear_quantize_weights(i8));
    CHECK_STATUS(msbnb_linear_quantize_weights(i8), MSBNB_ERR_INVALID_ARG);
    CHECK(msbnb_linear_weight_qtype(i8) == MSBNB_QTYPE_INT8);
    CHECK(msbnb_linear_weight(i8) == NULL);
    CHECK_OK(msbnb_linear_memory_usage(i8, &m));
    CHECK_EQ_INT(m.weight_bytes, in * out);
    CHECK_EQ_INT(m.grad_bytes, 0);
    CHECK_NEAR(m.base_bits_per_weight, 8.0 + 32.0 / (double)in, 1e-9); /* 75% saved vs fp32 */
    /* NF4, blocksize 64: 4 + 32/64 = 4.5 bits; with DQ: 4 + 8/64 + 32/(64·256) (+ offset) ≈ 4.127 */
    CHECK_OK(msbnb_linear_memory_usage(nf, &m));
    CHECK_NEAR(m.base_bits_per_weight, 4.5, 1e-9);
    CHECK_OK(msbnb_linear_memory_usage(nfdq, &m));
    CHECK_NEAR(m.base_bits_per_weight, 4.127, 0.002);
    /* adapters are counted on top */
    msbnb_lora_params lp = msbnb_lora_params_default();
    lp.r = 16;
    CHECK_OK(msbnb_lora_add(nfdq, "a", &lp));
    msbnb_linear_memory m2;
    CHECK_OK(msbnb_linear_memory_usage(nfdq, &m2));
    CHECK_EQ_INT(m2.adapter_bytes, 16 * (in + out) * 4);
    CHECK_EQ_INT(m2.adapter_grad_bytes, 16 * (in + out) * 4);
    CHECK_EQ_INT(m2.total_bytes, m.total_bytes + 2 * 16 * (in + out) * 4);
    /* quantized bases cannot be unfrozen; fp32 ones can */
    CHECK_STATUS(msbnb_linear_set_frozen(nf, 0), MSBNB_ERR_UNSUPPORTED);
    CHECK(msbnb_linear_is_frozen(nf));
    CHECK(!msbnb_linear_is_frozen(f));
    msbnb_linear *layers[4] = {f, i8, nf, nfdq};
    const char *names[4] = {"dense", "int8", "nf4", "nf4_dq_lora"};
    CHECK_OK(msbnb_freeze_model_except_lora(layers, 4));
    CHECK(msbnb_linear_is_frozen(f));
    int64_t tr = 0, all = 0;
    for (int i = 0; i < 4; i++) {
        int64_t t, a;
        msbnb_linear_count_params(layers[i], &t, &a);
        tr += t;
        all += a;
    }
    CHECK_EQ_INT(tr, 16 * (in + out));
    CHECK_EQ_INT(all, 4 * in * out + 16 * (in + out));
    msbnb_print_lora_info(layers, names, 4, stdout);
    /* accessors and wrapping an existing tensor (ownership moves to the layer) */
    CHECK_EQ_INT(msbnb_linear_in_features(nf), in);
    CHECK_EQ_INT(msbnb_linear_out_features(nf), out);
    CHECK(msbnb_linear_get_kind(nf) == MSBNB_LINEAR_4BIT);
    msbnb_qtensor *q = NULL;
    CHECK_OK(msbnb_qtensor_clone(msbnb_linear_qtensor(nf), &q));
    msbnb_linear *wrapped = NULL;
    CHECK_OK(msbnb_linear_from_qtensor(q, NULL, &wrapped));
    CHECK(msbnb_linear_qtensor(wrapped) == q);
    msbnb_linear_free(wrapped); /* frees q */
    CHECK_STATUS(msbnb_linear4bit_from_linear(i8, &cfg, &wrapped), MSBNB_ERR_INVALID_ARG);
    cfg.type = MSBNB_QTYPE_INT8;
    CHECK_STATUS(msbnb_linear4bit_from_linear(f, &cfg, &wrapped), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_linear_create(0, 3, 0, 0, &wrapped), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_linear_forward(f, NULL, 1, NULL), MSBNB_ERR_INVALID_ARG);
    msbnb_linear_free(NULL);
    for (int i = 0; i < 4; i++) msbnb_linear_free(layers[i]);
    free(W);
}

/* ---------------------------------------------------------------- precision */

/* FAST products round activations (int8 per row, or bf16): |Δx| ≤ rowmax/254 either way, so
 * |Y_fast − Y_exact| ≤ Σⱼ rowmax/254 · |Wⱼ| (+ summation rounding). */
TEST(precision_fast) {
    test_rng rng = {13};
    const int64_t in = 128, out = 40, n = 5;
    float *W = randn(&rng, (size_t)(in * out), 0.1f), *X = randn(&rng, (size_t)(n * in), 1.0f);
    float *Ye = malloc(sizeof(float) * (size_t)(n * out)), *Yf = malloc(sizeof(float) * (size_t)(n * out));
    float *Wd = malloc(sizeof(float) * (size_t)(in * out));
    msbnb_qtype types[3] = {MSBNB_QTYPE_NF4, MSBNB_QTYPE_FP4, MSBNB_QTYPE_INT4};
    for (int t = 0; t < 3; t++) {
        msbnb_quant_config cfg = msbnb_quant_config_default(types[t]);
        msbnb_linear *l = NULL;
        CHECK_OK(msbnb_linear4bit_create_from_weights(W, NULL, in, out, &cfg, &l));
        if (!l) continue;
        CHECK_OK(msbnb_linear_forward(l, X, n, Ye));
        CHECK_OK(msbnb_linear_set_precision(l, MSBNB_PRECISION_FAST));
        CHECK_OK(msbnb_linear_forward(l, X, n, Yf));
        CHECK_STATUS(msbnb_linear_set_precision(l, (msbnb_precision)7), MSBNB_ERR_INVALID_ARG);
        CHECK_OK(msbnb_linear_get_weight_f32(l, Wd));
        for (int64_t i = 0; i < n; i++) {
            double rm = 0;
            for (int64_t j = 0; j < in; j++) rm = fmax(rm, fabs(X[i * in + j]));
            for (int64_t o = 0; o < out; o++) {
                double b = 0, mag = 0;
                for (int64_t j = 0; j < in; j++) {
                    b += rm / 254.0 * fabs(Wd[o * in + j]);
                    mag += fabs(X[i * in + j] * Wd[o * in + j]);
                }
                double e = fabs((double)Yf[i * out + o] - Ye[i * out + o]);
                CHECK_MSG_(e <= b * 1.001 + 1e-5 * mag, "%s fast (%lld,%lld): %g > %g", msbnb_qtype_name(types[t]),
                           (long long)i, (long long)o, e, b);
            }
        }
        msbnb_linear_free(l);
    }
    free(W);
    free(X);
    free(Ye);
    free(Yf);
    free(Wd);
}

/* ---------------------------------------------------------------- threads */

/* 1, 2 and 3 threads — msbnb's and OpenBLAS' alike — give identical bits for a QLoRA layer's
 * forward, dX, dA, dB (NF4 base: fused kernels; adapter: nn_gemm.c), and for an fp32 layer's
 * parameter gradients dW, db, dA, dB (its Y and dX go through OpenBLAS sgemm, whose bits change
 * between 1 and 2 OpenBLAS threads, so they are not compared). Shapes are large enough for every
 * parallel region to engage. */
TEST(thread_invariance) {
    test_rng rng = {9};
    const int64_t in = 256, out = 192, n = 64;
    const int r = 8;
    float *W = randn(&rng, (size_t)(in * out), 0.1f), *X = randn(&rng, (size_t)(n * in), 1.0f);
    float *dY = randn(&rng, (size_t)(n * out), 1.0f);
    float *ref = NULL;
    const int blas_threads = openblas_get_num_threads();
    const size_t per = (size_t)(n * out + n * in + 2 * (r * in + out * r) + in * out + out);
    for (int t = 1; t <= 3; t++) {
        msbnb_set_num_threads(t);
        openblas_set_num_threads(t);
        float *res = calloc(per, sizeof(float)), *Y = malloc(sizeof(float) * (size_t)(n * out)), *cur = res;
        for (int kind = 0; kind < 2; kind++) {
            msbnb_linear *l = NULL;
            msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
            cfg.double_quant = 1;
            if (kind == 0)
                CHECK_OK(msbnb_linear4bit_create_from_weights(W, NULL, in, out, &cfg, &l));
            else
                CHECK_OK(msbnb_linear_create_from_weights(W, W, in, out, &l)); /* any bias [out] */
            if (!l) break;
            msbnb_lora_params p = msbnb_lora_params_default();
            p.r = r;
            p.lora_dropout = 0.2f;
            CHECK_OK(msbnb_lora_add(l, "t", &p));
            msbnb_lora_view v;
            CHECK_OK(msbnb_lora_get(l, "t", &v));
            for (int64_t i = 0; i < out * r; i++) v.B[i] = 0.01f * (float)(i % 13) - 0.05f;
            msbnb_linear_set_training(l, 1);
            if (kind == 1) CHECK_OK(msbnb_linear_set_frozen(l, 0));
            CHECK_OK(msbnb_linear_forward(l, X, n, kind == 0 ? cur : Y));
            if (kind == 0) cur += n * out;
            CHECK_OK(msbnb_linear_backward(l, X, dY, n, kind == 0 ? cur : NULL));
            if (kind == 0) cur += n * in;
            memcpy(cur, v.dA, sizeof(float) * (size_t)(r * in));
            cur += r * in;
            memcpy(cur, v.dB, sizeof(float) * (size_t)(out * r));
            cur += out * r;
            if (kind == 1) {
                msbnb_param_ref refs[MSBNB_LINEAR_MAX_PARAMS];
                int k = 0;
                CHECK_OK(msbnb_linear_trainable_params(l, refs, MSBNB_LINEAR_MAX_PARAMS, &k));
                CHECK_EQ_INT(k, 4);
                memcpy(cur, refs[0].grad, sizeof(float) * refs[0].n); /* dW */
                cur += refs[0].n;
                memcpy(cur, refs[1].grad, sizeof(float) * refs[1].n); /* db */
                cur += refs[1].n;
            }
            msbnb_linear_free(l);
        }
        CHECK(cur == res + per);
        if (!ref)
            ref = res;
        else {
            CHECK_MSG_(memcmp(ref, res, per * sizeof(float)) == 0, "threads %d differ from 1", t);
            free(res);
        }
        free(Y);
    }
    msbnb_set_num_threads(0);
    openblas_set_num_threads(blas_threads);
    free(ref);
    free(W);
    free(X);
    free(dY);
}

int main(void) {
    RUN(init_distributions);
    RUN(named_adapters);
    RUN(dropout_reproducible);
    RUN(merge_unmerge);
    RUN(memory_figures);
    RUN(precision_fast);
    RUN(thread_invariance);
    return test_report();
}
