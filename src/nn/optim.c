/*
 * optim.c — what AdamW and 8-bit AdamW share: parameters, registration of tensors, the
 * learning-rate schedule, clipping by global norm, the step driver, and state save / load.
 * The per-element updates live in adamw.c (fp32 moments) and adamw8bit.c (8-bit moments).
 *
 * State file (little-endian, version 1), written to "<path>.tmp" then renamed:
 *   "MSBNBOPT"                     8 bytes magic
 *   u32 version (1) | u32 type (msbnb_optim_type) | i64 step | u32 n_tensors | u32 blocksize
 *   per tensor: u32 name_len | name bytes | u64 n | u32 is8bit
 *               is8bit: qm u8[n] | qv u8[n] | am f32[nb] | av f32[nb]   (nb = ceil(n/blocksize))
 *               else:   m f32[n] | v f32[n]
 *   u32 CRC-32 (IEEE, as zlib) of every byte before it
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/optim_internal.h"

/* ================================================================ parameters */

msbnb_adamw_params msbnb_adamw_params_default(void) {
    msbnb_adamw_params p;
    memset(&p, 0, sizeof p);
    p.lr = 1e-3f;
    p.beta1 = 0.9f;
    p.beta2 = 0.999f;
    p.eps = 1e-8f;
    p.weight_decay = 0.01f;
    p.max_grad_norm = 0.0f;
    p.schedule = MSBNB_LR_CONSTANT;
    p.warmup_steps = 0;
    p.total_steps = 0;
    p.min_lr_ratio = 0.0f;
    p.blocksize = 256;
    p.min_8bit_size = 4096;
    return p;
}

static msbnb_status check_params(const msbnb_adamw_params *p) {
    RETURN_IF(!(p->lr >= 0.0f) || !isfinite(p->lr), MSBNB_ERR_INVALID_ARG, "lr %g must be finite and >= 0",
              (double)p->lr);
    RETURN_IF(!(p->beta1 >= 0.0f && p->beta1 < 1.0f), MSBNB_ERR_INVALID_ARG, "beta1 %g not in [0, 1)",
              (double)p->beta1);
    RETURN_IF(!(p->beta2 >= 0.0f && p->beta2 < 1.0f), MSBNB_ERR_INVALID_ARG, "beta2 %g not in [0, 1)",
              (double)p->beta2);
    RETURN_IF(!(p->eps > 0.0f), MSBNB_ERR_INVALID_ARG, "eps %g must be > 0", (double)p->eps);
    RETURN_IF(!(p->weight_decay >= 0.0f), MSBNB_ERR_INVALID_ARG, "weight_decay %g must be >= 0",
              (double)p->weight_decay);
    RETURN_IF(!(p->max_grad_norm >= 0.0f), MSBNB_ERR_INVALID_ARG, "max_grad_norm %g must be >= 0",
              (double)p->max_grad_norm);
    RETURN_IF(p->schedule != MSBNB_LR_CONSTANT && p->schedule != MSBNB_LR_WARMUP_COSINE, MSBNB_ERR_INVALID_ARG,
              "unknown schedule %d", (int)p->schedule);
    if (p->schedule == MSBNB_LR_WARMUP_COSINE) {
        RETURN_IF(p->warmup_steps < 0 || p->total_steps <= p->warmup_steps, MSBNB_ERR_INVALID_ARG,
                  "cosine schedule needs 0 <= warmup_steps (%lld) < total_steps (%lld)", (long long)p->warmup_steps,
                  (long long)p->total_steps);
        RETURN_IF(!(p->min_lr_ratio >= 0.0f && p->min_lr_ratio <= 1.0f), MSBNB_ERR_INVALID_ARG,
                  "min_lr_ratio %g not in [0, 1]", (double)p->min_lr_ratio);
    }
    RETURN_IF(p->blocksize < 64 || p->blocksize > 4096 || (p->blocksize & (p->blocksize - 1)), MSBNB_ERR_INVALID_ARG,
              "blocksize %d is not a power of two in 64..4096", p->blocksize);
    RETURN_IF(p->min_8bit_size < 0, MSBNB_ERR_INVALID_ARG, "min_8bit_size < 0");
    return MSBNB_OK;
}

msbnb_status msbnb_optim_create(msbnb_optim_type type, const msbnb_adamw_params *p, msbnb_optim **out) {
    RETURN_IF(!out, MSBNB_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    RETURN_IF(type != MSBNB_OPTIM_ADAMW && type != MSBNB_OPTIM_ADAMW8BIT, MSBNB_ERR_INVALID_ARG,
              "unknown optimizer type %d", (int)type);
    msbnb_adamw_params pp = p ? *p : msbnb_adamw_params_default();
    TRY(check_params(&pp));
    msbnb_optim *o = calloc(1, sizeof *o);
    RETURN_IF(!o, MSBNB_ERR_OUT_OF_MEMORY, "optimizer");
    o->type = type;
    o->p = pp;
    *out = o;
    return MSBNB_OK;
}

msbnb_status msbnb_adamw_create(const msbnb_adamw_params *p, msbnb_optim **out) {
    return msbnb_optim_create(MSBNB_OPTIM_ADAMW, p, out);
}
msbnb_status msbnb_adamw8bit_create(const msbnb_adamw_params *p, msbnb_optim **out) {
    return msbnb_optim_create(MSBNB_OPTIM_ADAMW8BIT, p, out);
}

static void tensor_free_state(optim_tensor *t) {
    msbnb__free_aligned(t->m);
    msbnb__free_aligned(t->v);
    msbnb__free_aligned(t->qm);
    msbnb__free_aligned(t->qv);
    free(t->am);
    free(t->av);
    t->m = t->v = t->am = t->av = NULL;
    t->qm = t->qv = NULL;
}

void msbnb_optim_free(msbnb_optim *o) {
    if (!o) return;
    for (int i = 0; i < o->n_tensors; i++) tensor_free_state(&o->t[i]);
    free(o->t);
    free(o);
}

/* ================================================================ registration */

msbnb_status msbnb_optim_add_param(msbnb_optim *o, float *data, float *grad, size_t n, const char *name) {
    RETURN_IF(!o || !data || !grad, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(n == 0, MSBNB_ERR_INVALID_ARG, "tensor of 0 elements");
    RETURN_IF(n > SIZE_MAX / 8, MSBNB_ERR_OUT_OF_MEMORY, "tensor of %zu elements", n);
    RETURN_IF(o->step > 0, MSBNB_ERR_INVALID_ARG, "cannot add parameters after the first step");
    if (o->n_tensors == o->cap) {
        int cap = o->cap ? 2 * o->cap : 16;
        optim_tensor *t = realloc(o->t, (size_t)cap * sizeof *t);
        RETURN_IF(!t, MSBNB_ERR_OUT_OF_MEMORY, "tensor list");
        o->t = t;
        o->cap = cap;
    }
    optim_tensor *t = &o->t[o->n_tensors];
    memset(t, 0, sizeof *t);
    if (name)
        snprintf(t->name, sizeof t->name, "%s", name);
    else
        snprintf(t->name, sizeof t->name, "param%d", o->n_tensors);
    t->data = data;
    t->grad = grad;
    t->n = n;
    t->is8bit = o->type == MSBNB_OPTIM_ADAMW8BIT && (int64_t)n >= o->p.min_8bit_size;
    if (t->is8bit) {
        TRY(msbnb__adamw8bit_alloc_state(t, o->p.blocksize));
    } else {
        t->m = msbnb__alloc_aligned(n * sizeof(float));
        t->v = msbnb__alloc_aligned(n * sizeof(float));
        if (!t->m || !t->v) {
            tensor_free_state(t);
            return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "moments of %zu floats", n);
        }
        memset(t->m, 0, n * sizeof(float));
        memset(t->v, 0, n * sizeof(float));
    }
    o->n_tensors++;
    return MSBNB_OK;
}

msbnb_status msbnb_optim_add_linear(msbnb_optim *o, msbnb_linear *l, const char *prefix) {
    RETURN_IF(!o || !l, MSBNB_ERR_INVALID_ARG, "NULL argument");
    msbnb_param_ref refs[MSBNB_LINEAR_MAX_PARAMS];
    int k = 0;
    TRY(msbnb_linear_trainable_params(l, refs, MSBNB_LINEAR_MAX_PARAMS, &k));
    for (int i = 0; i < k; i++) {
        char name[MSBNB_OPTIM_NAME_MAX];
        if (refs[i].adapter)
            snprintf(name, sizeof name, "%s.%s.%s", prefix ? prefix : "layer", refs[i].name, refs[i].adapter);
        else
            snprintf(name, sizeof name, "%s.%s", prefix ? prefix : "layer", refs[i].name);
        TRY(msbnb_optim_add_param(o, refs[i].data, refs[i].grad, refs[i].n, name));
    }
    return MSBNB_OK;
}

void msbnb_optim_zero_grad(msbnb_optim *o) {
    if (!o) return;
    for (int i = 0; i < o->n_tensors; i++) memset(o->t[i].grad, 0, o->t[i].n * sizeof(float));
}

/* ================================================================ schedule, norm, step */

float msbnb_optim_lr_at(const msbnb_optim *o, int64_t t) {
    if (!o) return 0.0f;
    const msbnb_adamw_params *p = &o->p;
    if (p->schedule == MSBNB_LR_CONSTANT) return p->lr;
    if (t < 1) t = 1;
    if (t <= p->warmup_steps) return (float)((double)p->lr * (double)t / (double)p->warmup_steps);
    double progress = (double)(t - p->warmup_steps) / (double)(p->total_steps - p->warmup_steps);
    if (progress > 1.0) progress = 1.0;
    double min_lr = (double)p->lr * (double)p->min_lr_ratio;
    return (float)(min_lr + ((double)p->lr - min_lr) * 0.5 * (1.0 + cos(3.14159265358979323846 * progress)));
}

/* Σ g² over the finite elements of every registered gradient, in double. Fixed chunks of
 * NORM_CHUNK elements summed in index order, so the result does not depend on the threads. */
#define NORM_CHUNK 65536
static double sum_sq_finite(const float *g, size_t n) {
    size_t nchunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    double total = 0.0;
    double partial[64];
    for (size_t c0 = 0; c0 < nchunks; c0 += 64) {
        size_t cn = nchunks - c0 < 64 ? nchunks - c0 : 64;
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (cn > 1)
        for (ptrdiff_t c = 0; c < (ptrdiff_t)cn; c++) {
            size_t b = (c0 + (size_t)c) * NORM_CHUNK, e = b + NORM_CHUNK < n ? b + NORM_CHUNK : n;
            double s = 0.0;
            for (size_t i = b; i < e; i++)
                if (isfinite(g[i])) s += (double)g[i] * (double)g[i];
            partial[c] = s;
        }
        for (size_t c = 0; c < cn; c++) total += partial[c];
    }
    return total;
}

msbnb_status msbnb_optim_step(msbnb_optim *o, msbnb_optim_step_info *info) {
    RETURN_IF(!o, MSBNB_ERR_INVALID_ARG, "optimizer is NULL");
    RETURN_IF(o->n_tensors == 0, MSBNB_ERR_INVALID_ARG, "no parameters registered");
    const msbnb_adamw_params *p = &o->p;
    int64_t t = o->step + 1;
    double ss = 0.0;
    for (int i = 0; i < o->n_tensors; i++) ss += sum_sq_finite(o->t[i].grad, o->t[i].n);
    double norm = sqrt(ss);
    double scale = 1.0;
    /* torch.nn.utils.clip_grad_norm_: g *= max_norm / (norm + 1e-6) when that factor is < 1. */
    if (p->max_grad_norm > 0.0f) {
        double f = (double)p->max_grad_norm / (norm + 1e-6);
        if (f < 1.0) scale = f;
    }
    adam_step_consts c;
    c.lr = msbnb_optim_lr_at(o, t);
    c.beta1 = p->beta1;
    c.beta2 = p->beta2;
    c.eps = p->eps;
    c.weight_decay = p->weight_decay;
    double c1 = 1.0 - pow((double)p->beta1, (double)t);
    double c2 = sqrt(1.0 - pow((double)p->beta2, (double)t));
    c.c2 = (float)c2;
    c.step_size = (float)((double)c.lr * c2 / c1);
    c.eps_hat = (float)((double)p->eps * c2);
    c.gscale = (float)scale;
    size_t nonfinite = 0;
    for (int i = 0; i < o->n_tensors; i++) {
        optim_tensor *ti = &o->t[i];
        if (ti->is8bit) {
            size_t nf = 0;
            TRY(msbnb__adamw_update_8bit(ti, p->blocksize, &c, &nf));
            nonfinite += nf;
        } else {
            nonfinite += msbnb__adamw_update_f32(ti, &c);
        }
    }
    o->step = t;
    if (info) {
        info->step = t;
        info->lr = c.lr;
        info->grad_norm = norm;
        info->clip_scale = scale;
        info->nonfinite = nonfinite;
    }
    return MSBNB_OK;
}

int64_t msbnb_optim_step_count(const msbnb_optim *o) { return o ? o->step : 0; }
msbnb_optim_type msbnb_optim_get_type(const msbnb_optim *o) { return o ? o->type : MSBNB_OPTIM_ADAMW; }
int msbnb_optim_param_count(const msbnb_optim *o) { return o ? o->n_tensors : 0; }

msbnb_status msbnb_optim_set_lr(msbnb_optim *o, float lr) {
    RETURN_IF(!o, MSBNB_ERR_INVALID_ARG, "optimizer is NULL");
    RETURN_IF(!(lr >= 0.0f) || !isfinite(lr), MSBNB_ERR_INVALID_ARG, "lr %g must be finite and >= 0", (double)lr);
    o->p.lr = lr;
    return MSBNB_OK;
}

size_t msbnb_optim_state_bytes(const msbnb_optim *o, int *n_8bit_tensors) {
    size_t bytes = 0;
    int n8 = 0;
    for (int i = 0; o && i < o->n_tensors; i++) {
        const optim_tensor *t = &o->t[i];
        if (t->is8bit) {
            bytes += 2 * t->n + 2 * t->n_blocks * sizeof(float);
            n8++;
        } else {
            bytes += 2 * t->n * sizeof(float);
        }
    }
    if (n_8bit_tensors) *n_8bit_tensors = n8;
    return bytes;
}

msbnb_status msbnb_optim_get_moments(const msbnb_optim *o, int i, float *m, float *v) {
    RETURN_IF(!o || !m || !v, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(i < 0 || i >= o->n_tensors, MSBNB_ERR_INVALID_ARG, "tensor %d of %d", i, o->n_tensors);
    const optim_tensor *t = &o->t[i];
    if (t->is8bit) return msbnb__adamw8bit_get_moments(t, o->p.blocksize, m, v);
    memcpy(m, t->m, t->n * sizeof(float));
    memcpy(v, t->v, t->n * sizeof(float));
    return MSBNB_OK;
}
