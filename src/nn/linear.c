/*
 * linear.c — the layer object: creation of fp32 layers, forward / backward of every kind,
 * gradients, accessors and the memory query.
 *
 * Shapes: W [out, in] (PyTorch nn.Linear layout), bias [out], X [n, in], Y / dY [n, out], dX [n, in].
 * The base product goes through kernels.h (fused products, no dequantized copy of W); weight
 * gradients and adapters use the deterministic products of nn_gemm.c (msbnb__sgemm_fixed).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_internal.h"
#include "quant/qtensor_internal.h"

/* ================================================================ random numbers */

uint64_t msbnb__splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double msbnb__rand_uniform(uint64_t *state) { return (double)(msbnb__splitmix64(state) >> 11) * 0x1p-53; }

/* torch.nn.Linear.reset_parameters: kaiming_uniform_(W, a=√5) gives bound √(6/((1+5)·in)) = 1/√in,
 * and the bias is drawn from U(-1/√in, 1/√in) too. Our generator differs from torch's (values are
 * not torch's), the distribution is the same. */
void msbnb__linear_init_uniform(float *w, float *bias, int64_t in, int64_t out, uint64_t seed) {
    uint64_t st = seed ^ 0x6a09e667f3bcc908ull;
    double bound = 1.0 / sqrt((double)in);
    size_t n = (size_t)in * (size_t)out;
    for (size_t i = 0; i < n; i++) w[i] = (float)((2.0 * msbnb__rand_uniform(&st) - 1.0) * bound);
    if (bias)
        for (int64_t i = 0; i < out; i++) bias[i] = (float)((2.0 * msbnb__rand_uniform(&st) - 1.0) * bound);
}

/* ================================================================ creation */

const char *msbnb_linear_kind_name(msbnb_linear_kind kind) {
    switch (kind) {
    case MSBNB_LINEAR_F32: return "f32";
    case MSBNB_LINEAR_INT8: return "int8";
    case MSBNB_LINEAR_4BIT: return "4bit";
    }
    return "?";
}

msbnb_status msbnb__linear_alloc(msbnb_linear_kind kind, int64_t in, int64_t out, msbnb_linear **out_l) {
    RETURN_IF(!out_l, MSBNB_ERR_INVALID_ARG, "out is NULL");
    *out_l = NULL;
    RETURN_IF(in < 1 || out < 1, MSBNB_ERR_INVALID_ARG, "features must be >= 1 (in %lld, out %lld)", (long long)in,
              (long long)out);
    /* BLAS takes int dimensions and leading dimensions. */
    RETURN_IF(in > INT32_MAX || out > INT32_MAX, MSBNB_ERR_SHAPE, "dimension beyond 2^31 - 1");
    size_t nw;
    TRY(msbnb__checked_mul(in, out, &nw));
    TRY(msbnb__checked_mul((int64_t)nw, 4, &nw));
    msbnb_linear *l = calloc(1, sizeof *l);
    RETURN_IF(!l, MSBNB_ERR_OUT_OF_MEMORY, "layer");
    l->kind = kind;
    l->in = in;
    l->out = out;
    l->active = -1;
    l->merged = -1;
    l->precision = MSBNB_PRECISION_EXACT;
    l->qcfg = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
    *out_l = l;
    return MSBNB_OK;
}

msbnb_status msbnb__linear_set_bias(msbnb_linear *l, const float *bias) {
    if (!bias) return MSBNB_OK;
    l->bias = malloc((size_t)l->out * sizeof(float));
    RETURN_IF(!l->bias, MSBNB_ERR_OUT_OF_MEMORY, "bias of %lld floats", (long long)l->out);
    memcpy(l->bias, bias, (size_t)l->out * sizeof(float));
    return MSBNB_OK;
}

/* Allocate dW (and db) for a trainable fp32 base. */
static msbnb_status alloc_base_grads(msbnb_linear *l) {
    size_t nw = (size_t)l->in * (size_t)l->out;
    if (!l->dw) {
        l->dw = msbnb__alloc_aligned(nw * sizeof(float));
        RETURN_IF(!l->dw, MSBNB_ERR_OUT_OF_MEMORY, "weight gradient");
        memset(l->dw, 0, nw * sizeof(float));
    }
    if (l->bias && !l->dbias) {
        l->dbias = calloc((size_t)l->out, sizeof(float));
        RETURN_IF(!l->dbias, MSBNB_ERR_OUT_OF_MEMORY, "bias gradient");
    }
    return MSBNB_OK;
}

static msbnb_status create_f32(msbnb_linear_kind kind, const float *w, const float *bias, int has_bias, int64_t in,
                               int64_t out, uint64_t seed, msbnb_linear **out_l) {
    msbnb_linear *l = NULL;
    TRY(msbnb__linear_alloc(kind, in, out, &l));
    size_t nw = (size_t)in * (size_t)out;
    l->w = msbnb__alloc_aligned(nw * sizeof(float));
    if (!l->w) {
        msbnb_linear_free(l);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "weight of %zu floats", nw);
    }
    msbnb_status st = MSBNB_OK;
    if (w) {
        memcpy(l->w, w, nw * sizeof(float));
        st = msbnb__linear_set_bias(l, bias);
    } else {
        if (has_bias) {
            l->bias = malloc((size_t)out * sizeof(float));
            if (!l->bias) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "bias");
        }
        if (st == MSBNB_OK) msbnb__linear_init_uniform(l->w, l->bias, in, out, seed);
    }
    /* Gradient buffers are allocated on first need (backward or trainable_params), so layers used
     * only for inference cost no more than their weights. */
    if (st != MSBNB_OK) {
        msbnb_linear_free(l);
        return st;
    }
    *out_l = l;
    return MSBNB_OK;
}

msbnb_status msbnb_linear_create(int64_t in_features, int64_t out_features, int has_bias, uint64_t seed,
                                 msbnb_linear **out) {
    return create_f32(MSBNB_LINEAR_F32, NULL, NULL, has_bias, in_features, out_features, seed, out);
}

msbnb_status msbnb_linear_create_from_weights(const float *w, const float *bias, int64_t in_features,
                                              int64_t out_features, msbnb_linear **out) {
    RETURN_IF(!w, MSBNB_ERR_INVALID_ARG, "w is NULL");
    return create_f32(MSBNB_LINEAR_F32, w, bias, bias != NULL, in_features, out_features, 0, out);
}

msbnb_status msbnb__linear_create_f32_kind(msbnb_linear_kind kind, const float *w, const float *bias, int has_bias,
                                           int64_t in, int64_t out, uint64_t seed, msbnb_linear **out_l) {
    return create_f32(kind, w, bias, has_bias, in, out, seed, out_l);
}

void msbnb_linear_free(msbnb_linear *l) {
    if (!l) return;
    msbnb__lora_free_all(l);
    msbnb__free_aligned(l->w);
    msbnb__free_aligned(l->dw);
    msbnb__free_aligned(l->backup_w);
    msbnb_qtensor_free(l->q);
    msbnb_qtensor_free(l->backup_q);
    free(l->bias);
    free(l->dbias);
    free(l);
}

/* ================================================================ forward / backward */

/* Base product Y[n, out] = X · Wᵀ + b with the kernel that fits the storage. */
static msbnb_status base_forward(const msbnb_linear *l, const float *X, int64_t n, float *Y) {
    if (l->w) return msbnb_matmul_f32(l->w, l->out, l->in, X, n, l->bias, Y);
    msbnb_qtensor_view v;
    TRY(msbnb_qtensor_get_view(l->q, &v));
    /* LLM.int8() needs bitsandbytes' CB/SCB layout: symmetric codes with one absmax per row. */
    if (v.type == MSBNB_QTYPE_INT8 && !v.asymmetric && v.per_row)
        return msbnb_matmul_int8_lt(l->q, X, n, l->bias, v.threshold, Y);
    return msbnb_matmul(l->q, X, n, l->bias, Y, l->precision);
}

msbnb_status msbnb_linear_forward(msbnb_linear *l, const float *X, int64_t n, float *Y) {
    RETURN_IF(!l || !X || !Y, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(n < 1 || n > INT32_MAX, MSBNB_ERR_INVALID_ARG, "n = %lld not in 1..2^31-1", (long long)n);
    TRY(base_forward(l, X, n, Y));
    if (l->active >= 0 && l->merged < 0) TRY(msbnb__lora_forward(l, X, n, Y));
    return MSBNB_OK;
}

/* db[o] += Σ_i dY[i, o], summed in row order in double: independent of threads. */
static void accumulate_bias_grad(float *db, const float *dY, int64_t n, int64_t out) {
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (n * out >= 65536)
    for (int64_t o = 0; o < out; o++) {
        double s = 0.0;
        for (int64_t i = 0; i < n; i++) s += dY[(size_t)i * (size_t)out + (size_t)o];
        db[o] += (float)s;
    }
}

msbnb_status msbnb_linear_backward(msbnb_linear *l, const float *X, const float *dY, int64_t n, float *dX) {
    RETURN_IF(!l || !X || !dY, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(n < 1 || n > INT32_MAX, MSBNB_ERR_INVALID_ARG, "n = %lld not in 1..2^31-1", (long long)n);
    if (dX) {
        /* dX = dY · W (straight-through for quantized W: the forward is linear in X for fixed codes). */
        if (l->w)
            TRY(msbnb_matmul_f32_t(l->w, l->out, l->in, dY, n, dX, 0));
        else
            TRY(msbnb_matmul_t(l->q, dY, n, dX, 0));
    }
    if (l->w && !l->frozen && l->merged < 0) {
        TRY(alloc_base_grads(l));
        /* dW[out, in] += dYᵀ[out, n] · X[n, in] (fixed order: independent of the thread count) */
        msbnb__nn_gemm_tn(dY, X, n, l->out, l->in, 1.0f, 1, l->dw);
        if (l->bias) accumulate_bias_grad(l->dbias, dY, n, l->out);
    }
    if (l->active >= 0 && l->merged < 0) TRY(msbnb__lora_backward(l, X, dY, n, dX));
    return MSBNB_OK;
}

void msbnb_linear_zero_grad(msbnb_linear *l) {
    if (!l) return;
    size_t nw = (size_t)l->in * (size_t)l->out;
    if (l->dw) memset(l->dw, 0, nw * sizeof(float));
    if (l->dbias) memset(l->dbias, 0, (size_t)l->out * sizeof(float));
    for (int i = 0; i < l->n_adapters; i++) {
        lora_adapter *a = &l->adapters[i];
        memset(a->dA, 0, (size_t)a->r * (size_t)l->in * sizeof(float));
        memset(a->dB, 0, (size_t)l->out * (size_t)a->r * sizeof(float));
    }
}

/* ================================================================ modes */

void msbnb_linear_set_training(msbnb_linear *l, int training) {
    if (l) l->training = training ? 1 : 0;
}
int msbnb_linear_is_training(const msbnb_linear *l) { return l ? l->training : 0; }

msbnb_status msbnb_linear_set_frozen(msbnb_linear *l, int frozen) {
    RETURN_IF(!l, MSBNB_ERR_INVALID_ARG, "layer is NULL");
    if (frozen) {
        l->frozen = 1;
        return MSBNB_OK;
    }
    RETURN_IF(!l->w, MSBNB_ERR_UNSUPPORTED, "a quantized base cannot be trained (use a LoRA adapter)");
    RETURN_IF(l->merged >= 0, MSBNB_ERR_INVALID_ARG, "an adapter is merged: unmerge first");
    TRY(alloc_base_grads(l));
    l->frozen = 0;
    return MSBNB_OK;
}
int msbnb_linear_is_frozen(const msbnb_linear *l) { return l ? (l->frozen || !l->w) : 1; }

msbnb_status msbnb_linear_set_precision(msbnb_linear *l, msbnb_precision precision) {
    RETURN_IF(!l, MSBNB_ERR_INVALID_ARG, "layer is NULL");
    RETURN_IF(precision != MSBNB_PRECISION_EXACT && precision != MSBNB_PRECISION_FAST, MSBNB_ERR_INVALID_ARG,
              "unknown precision %d", (int)precision);
    l->precision = precision;
    return MSBNB_OK;
}

/* ================================================================ accessors */

int64_t msbnb_linear_in_features(const msbnb_linear *l) { return l ? l->in : 0; }
int64_t msbnb_linear_out_features(const msbnb_linear *l) { return l ? l->out : 0; }
msbnb_linear_kind msbnb_linear_get_kind(const msbnb_linear *l) { return l ? l->kind : MSBNB_LINEAR_F32; }
msbnb_qtype msbnb_linear_weight_qtype(const msbnb_linear *l) {
    if (!l || l->w) return MSBNB_QTYPE_NONE;
    msbnb_qtensor_view v;
    if (msbnb_qtensor_get_view(l->q, &v) != MSBNB_OK) return MSBNB_QTYPE_NONE;
    return v.type;
}
const msbnb_qtensor *msbnb_linear_qtensor(const msbnb_linear *l) { return l ? l->q : NULL; }
float *msbnb_linear_weight(msbnb_linear *l) { return l ? l->w : NULL; }
float *msbnb_linear_bias(msbnb_linear *l) { return l ? l->bias : NULL; }

msbnb_status msbnb_linear_get_weight_f32(const msbnb_linear *l, float *w) {
    RETURN_IF(!l || !w, MSBNB_ERR_INVALID_ARG, "NULL argument");
    if (l->w) {
        memcpy(w, l->w, (size_t)l->in * (size_t)l->out * sizeof(float));
        return MSBNB_OK;
    }
    return msbnb_dequantize(l->q, w);
}

msbnb_status msbnb_linear_trainable_params(msbnb_linear *l, msbnb_param_ref *out, int cap, int *count) {
    RETURN_IF(!l || !count, MSBNB_ERR_INVALID_ARG, "NULL argument");
    msbnb_param_ref refs[MSBNB_LINEAR_MAX_PARAMS];
    int k = 0;
    if (l->w && !l->frozen && l->merged < 0) {
        TRY(alloc_base_grads(l));
        refs[k++] = (msbnb_param_ref){l->w, l->dw, (size_t)(l->in * l->out), 2, {l->out, l->in}, "weight", NULL};
        if (l->bias) refs[k++] = (msbnb_param_ref){l->bias, l->dbias, (size_t)l->out, 1, {l->out, 0}, "bias", NULL};
    }
    if (l->active >= 0 && l->merged < 0) {
        lora_adapter *a = &l->adapters[l->active];
        refs[k++] = (msbnb_param_ref){a->A, a->dA, (size_t)a->r * (size_t)l->in, 2, {a->r, l->in}, "lora_A", a->name};
        refs[k++] =
            (msbnb_param_ref){a->B, a->dB, (size_t)l->out * (size_t)a->r, 2, {l->out, a->r}, "lora_B", a->name};
    }
    *count = k;
    if (!out) return MSBNB_OK;
    RETURN_IF(cap < k, MSBNB_ERR_INVALID_ARG, "cap %d < %d parameters", cap, k);
    memcpy(out, refs, (size_t)k * sizeof *refs);
    return MSBNB_OK;
}

void msbnb_linear_count_params(const msbnb_linear *l, int64_t *trainable, int64_t *total) {
    int64_t t = 0, all = 0;
    if (l) {
        all = l->in * l->out + (l->bias ? l->out : 0);
        if (l->w && !l->frozen && l->merged < 0) t += all;
        for (int i = 0; i < l->n_adapters; i++) {
            int64_t na = (int64_t)l->adapters[i].r * (l->in + l->out);
            all += na;
            if (i == l->active && l->merged < 0) t += na;
        }
    }
    if (trainable) *trainable = t;
    if (total) *total = all;
}

static size_t qtensor_bytes(const msbnb_qtensor *q, size_t *stats) {
    msbnb_quant_info info;
    if (!q || msbnb_get_quantization_info(q, &info) != MSBNB_OK) {
        *stats = 0;
        return 0;
    }
    *stats = info.stats_bytes;
    return info.data_bytes;
}

msbnb_status msbnb_linear_memory_usage(const msbnb_linear *l, msbnb_linear_memory *m) {
    RETURN_IF(!l || !m, MSBNB_ERR_INVALID_ARG, "NULL argument");
    memset(m, 0, sizeof *m);
    size_t nw = (size_t)l->in * (size_t)l->out;
    if (l->w) {
        m->weight_bytes = nw * sizeof(float);
    } else {
        msbnb_quant_info info;
        TRY(msbnb_get_quantization_info(l->q, &info));
        m->weight_bytes = info.data_bytes;
        m->stats_bytes = info.stats_bytes;
    }
    m->bias_bytes = l->bias ? (size_t)l->out * sizeof(float) : 0;
    m->grad_bytes = (l->dw ? nw * sizeof(float) : 0) + (l->dbias ? (size_t)l->out * sizeof(float) : 0);
    for (int i = 0; i < l->n_adapters; i++) {
        size_t na = (size_t)l->adapters[i].r * (size_t)(l->in + l->out) * sizeof(float);
        m->adapter_bytes += na;
        m->adapter_grad_bytes += na;
    }
    if (l->backup_w) m->merge_backup_bytes = nw * sizeof(float);
    if (l->backup_q) {
        size_t st = 0;
        m->merge_backup_bytes = qtensor_bytes(l->backup_q, &st);
        m->merge_backup_bytes += st;
    }
    m->total_bytes = m->weight_bytes + m->stats_bytes + m->bias_bytes + m->grad_bytes + m->adapter_bytes +
                     m->adapter_grad_bytes + m->merge_backup_bytes;
    m->f32_weight_bytes = nw * sizeof(float);
    m->base_bits_per_weight = 8.0 * (double)(m->weight_bytes + m->stats_bytes) / (double)nw;
    return MSBNB_OK;
}
