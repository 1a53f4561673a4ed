/*
 * lora.c — LoRA adapters on any layer kind (PEFT's LoraLayer; Hu et al. 2021, "LoRA"; Dettmers et
 * al. 2023, "QLoRA" for the 4-bit base): add / select / delete named adapters, their forward and
 * backward terms, the merged weight ΔW, and merge / unmerge into the base.
 *
 * Products go through nn_gemm.c (the shared fixed-block GEMM: thread-count independent).
 * Shapes: A [r, in] (lora_A.weight), B [out, r] (lora_B.weight), X [n, in], h [n, r], Y [n, out].
 *   forward   h = dropout(X)·Aᵀ;  Y += scaling · h·Bᵀ
 *   backward  dB += scaling · dYᵀ·h;  g = scaling · dY·B;  dA += gᵀ·dropout(X);
 *             dX += (g·A) ⊙ mask / (1 − p)
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_internal.h"
#include "quant/qtensor_internal.h"

msbnb_lora_params msbnb_lora_params_default(void) {
    msbnb_lora_params p;
    memset(&p, 0, sizeof p);
    p.r = 8;
    p.lora_alpha = 16.0f;
    p.lora_dropout = 0.0f;
    p.use_rslora = 0;
    p.init_gaussian = 0;
    p.seed = 0;
    return p;
}

/* ================================================================ adapter bookkeeping */

static int find_adapter(const msbnb_linear *l, const char *name) {
    for (int i = 0; i < l->n_adapters; i++)
        if (strcmp(l->adapters[i].name, name) == 0) return i;
    return -1;
}

static void adapter_release(lora_adapter *a) {
    free(a->A);
    free(a->dA);
    free(a->B);
    free(a->dB);
    a->A = a->dA = a->B = a->dB = NULL;
}

void msbnb__lora_free_all(msbnb_linear *l) {
    for (int i = 0; i < l->n_adapters; i++) adapter_release(&l->adapters[i]);
    free(l->adapters);
    l->adapters = NULL;
    l->n_adapters = 0;
    l->active = -1;
}

/* A initialisation. PEFT's default calls kaiming_uniform_(A, a=√5): gain √(2/(1+5)) = √(1/3),
 * bound = gain·√(3/in) = 1/√in. "gaussian" draws N(0, std = 1/r). */
static void init_A(float *A, int r, int64_t in, const msbnb_lora_params *p) {
    uint64_t st = p->seed ^ 0xbb67ae8584caa73bull;
    size_t n = (size_t)r * (size_t)in;
    if (!p->init_gaussian) {
        double bound = 1.0 / sqrt((double)in);
        for (size_t i = 0; i < n; i++) A[i] = (float)((2.0 * msbnb__rand_uniform(&st) - 1.0) * bound);
        return;
    }
    double std = 1.0 / (double)r;
    for (size_t i = 0; i < n; i++) {
        double u1 = msbnb__rand_uniform(&st), u2 = msbnb__rand_uniform(&st);
        if (u1 < 1e-300) u1 = 1e-300;
        A[i] = (float)(std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
}

msbnb_status msbnb_lora_add(msbnb_linear *l, const char *name, const msbnb_lora_params *pp) {
    RETURN_IF(!l || !name, MSBNB_ERR_INVALID_ARG, "NULL argument");
    msbnb_lora_params p = pp ? *pp : msbnb_lora_params_default();
    size_t len = strlen(name);
    RETURN_IF(len == 0 || len >= MSBNB_LORA_NAME_MAX, MSBNB_ERR_INVALID_ARG, "adapter name length %zu not in 1..%d",
              len, MSBNB_LORA_NAME_MAX - 1);
    RETURN_IF(find_adapter(l, name) >= 0, MSBNB_ERR_INVALID_ARG, "adapter '%s' already exists", name);
    RETURN_IF(l->merged >= 0, MSBNB_ERR_INVALID_ARG, "an adapter is merged: unmerge first");
    RETURN_IF(p.r < 1 || p.r > l->in + l->out, MSBNB_ERR_INVALID_ARG, "rank %d not in 1..in+out", p.r);
    RETURN_IF(!(p.lora_alpha > 0.0f) || !isfinite(p.lora_alpha), MSBNB_ERR_INVALID_ARG, "lora_alpha %g must be > 0",
              (double)p.lora_alpha);
    RETURN_IF(!(p.lora_dropout >= 0.0f && p.lora_dropout < 1.0f), MSBNB_ERR_INVALID_ARG,
              "lora_dropout %g not in [0, 1)", (double)p.lora_dropout);

    lora_adapter a;
    memset(&a, 0, sizeof a);
    memcpy(a.name, name, len + 1);
    a.r = p.r;
    a.alpha = p.lora_alpha;
    a.dropout = p.lora_dropout;
    a.use_rslora = p.use_rslora ? 1 : 0;
    a.scaling = a.use_rslora ? (float)((double)p.lora_alpha / sqrt((double)p.r)) : p.lora_alpha / (float)p.r;
    a.seed = p.seed;
    size_t na = (size_t)p.r * (size_t)l->in, nb = (size_t)l->out * (size_t)p.r;
    a.A = malloc(na * sizeof(float));
    a.dA = calloc(na, sizeof(float));
    a.B = calloc(nb, sizeof(float)); /* B = 0: a new adapter does not change the output */
    a.dB = calloc(nb, sizeof(float));
    lora_adapter *grown = NULL;
    if (a.A && a.dA && a.B && a.dB) grown = realloc(l->adapters, (size_t)(l->n_adapters + 1) * sizeof *grown);
    if (!grown) {
        adapter_release(&a);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "adapter '%s' (r %d)", name, p.r);
    }
    init_A(a.A, a.r, l->in, &p);
    l->adapters = grown;
    l->adapters[l->n_adapters++] = a;
    if (l->active < 0 && l->n_adapters == 1) l->active = 0;
    l->frozen = 1; /* the base is frozen under LoRA, as PEFT does */
    return MSBNB_OK;
}

msbnb_status msbnb_lora_set_active(msbnb_linear *l, const char *name) {
    RETURN_IF(!l, MSBNB_ERR_INVALID_ARG, "layer is NULL");
    RETURN_IF(l->merged >= 0, MSBNB_ERR_INVALID_ARG, "an adapter is merged: unmerge first");
    if (!name) {
        l->active = -1;
        return MSBNB_OK;
    }
    int i = find_adapter(l, name);
    RETURN_IF(i < 0, MSBNB_ERR_NOT_FOUND, "no adapter '%s'", name);
    l->active = i;
    return MSBNB_OK;
}

const char *msbnb_lora_active(const msbnb_linear *l) {
    return (l && l->active >= 0) ? l->adapters[l->active].name : NULL;
}
int msbnb_lora_count(const msbnb_linear *l) { return l ? l->n_adapters : 0; }
const char *msbnb_lora_name(const msbnb_linear *l, int i) {
    return (l && i >= 0 && i < l->n_adapters) ? l->adapters[i].name : NULL;
}

msbnb_status msbnb_lora_delete(msbnb_linear *l, const char *name) {
    RETURN_IF(!l || !name, MSBNB_ERR_INVALID_ARG, "NULL argument");
    int i = find_adapter(l, name);
    RETURN_IF(i < 0, MSBNB_ERR_NOT_FOUND, "no adapter '%s'", name);
    RETURN_IF(i == l->merged, MSBNB_ERR_INVALID_ARG, "adapter '%s' is merged: unmerge first", name);
    adapter_release(&l->adapters[i]);
    memmove(&l->adapters[i], &l->adapters[i + 1], (size_t)(l->n_adapters - i - 1) * sizeof *l->adapters);
    l->n_adapters--;
    if (l->active == i)
        l->active = -1;
    else if (l->active > i)
        l->active--;
    if (l->merged > i) l->merged--;
    return MSBNB_OK;
}

static msbnb_status resolve(const msbnb_linear *l, const char *name, int *idx) {
    RETURN_IF(!l, MSBNB_ERR_INVALID_ARG, "layer is NULL");
    int i = name ? find_adapter(l, name) : l->active;
    RETURN_IF(i < 0 && name, MSBNB_ERR_NOT_FOUND, "no adapter '%s'", name);
    RETURN_IF(i < 0, MSBNB_ERR_NOT_FOUND, "no active adapter");
    *idx = i;
    return MSBNB_OK;
}

msbnb_status msbnb_lora_get(msbnb_linear *l, const char *name, msbnb_lora_view *v) {
    RETURN_IF(!v, MSBNB_ERR_INVALID_ARG, "view is NULL");
    int i = -1;
    TRY(resolve(l, name, &i));
    lora_adapter *a = &l->adapters[i];
    v->r = a->r;
    v->lora_alpha = a->alpha;
    v->lora_dropout = a->dropout;
    v->scaling = a->scaling;
    v->use_rslora = a->use_rslora;
    v->merged = (i == l->merged);
    v->in_features = l->in;
    v->out_features = l->out;
    v->A = a->A;
    v->dA = a->dA;
    v->B = a->B;
    v->dB = a->dB;
    return MSBNB_OK;
}

/* ΔW[out, in] = scaling · B[out, r] · A[r, in] */
static void delta_weight(const msbnb_linear *l, const lora_adapter *a, float *delta) {
    msbnb__nn_gemm_nn(a->B, a->A, l->out, a->r, l->in, a->scaling, 0, delta);
}

msbnb_status msbnb_lora_get_merged_weight(const msbnb_linear *l, const char *name, float *delta) {
    RETURN_IF(!delta, MSBNB_ERR_INVALID_ARG, "delta is NULL");
    int i = -1;
    TRY(resolve(l, name, &i));
    delta_weight(l, &l->adapters[i], delta);
    return MSBNB_OK;
}

/* ================================================================ dropout */

/* The keep/drop decision of element idx in training forward number `call`: a counter-based hash
 * (splitmix64's finaliser over a key mixed from seed and call), so the mask needs no storage and
 * is the same on every platform and thread count. 24-bit uniform compared with p. */
static inline int dropout_keep(uint64_t key, uint64_t idx, float p) {
    uint64_t z = key + idx * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)((double)(z >> 40) * 0x1p-24) >= p;
}

static uint64_t dropout_key(const lora_adapter *a) {
    uint64_t s = a->seed ^ (a->dropout_calls * 0xd1b54a32d192ed03ull);
    return msbnb__splitmix64(&s);
}

/* Xd[n, in] = X ⊙ mask / (1 − p), or returns X itself when no dropout applies. *owned set when a
 * copy was allocated (caller frees). */
static msbnb_status dropped_input(const msbnb_linear *l, const lora_adapter *a, const float *X, int64_t n,
                                  const float **Xd, float **owned) {
    *owned = NULL;
    *Xd = X;
    if (!l->training || a->dropout <= 0.0f) return MSBNB_OK;
    size_t total;
    TRY(msbnb__checked_mul(n, l->in, &total));
    float *buf = malloc(total * sizeof(float));
    RETURN_IF(!buf, MSBNB_ERR_OUT_OF_MEMORY, "dropout buffer of %zu floats", total);
    uint64_t key = dropout_key(a);
    float keep_scale = 1.0f / (1.0f - a->dropout);
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (total >= 65536)
    for (int64_t i = 0; i < (int64_t)total; i++)
        buf[i] = dropout_keep(key, (uint64_t)i, a->dropout) ? X[i] * keep_scale : 0.0f;
    *Xd = buf;
    *owned = buf;
    return MSBNB_OK;
}

/* For tests: the keep mask [n, in] (1 keep, 0 drop) that the last training forward of the active
 * adapter used; all ones when no dropout applies. */
msbnb_status msbnb__lora_dropout_mask(const msbnb_linear *l, int64_t n, uint8_t *mask) {
    RETURN_IF(!l || !mask || l->active < 0 || n < 1, MSBNB_ERR_INVALID_ARG, "bad argument");
    const lora_adapter *a = &l->adapters[l->active];
    size_t total = (size_t)n * (size_t)l->in;
    int on = l->training && a->dropout > 0.0f;
    uint64_t key = on ? dropout_key(a) : 0;
    for (size_t i = 0; i < total; i++) mask[i] = on ? (uint8_t)dropout_keep(key, (uint64_t)i, a->dropout) : 1;
    return MSBNB_OK;
}

/* ================================================================ forward / backward */

msbnb_status msbnb__lora_forward(msbnb_linear *l, const float *X, int64_t n, float *Y) {
    lora_adapter *a = &l->adapters[l->active];
    if (l->training && a->dropout > 0.0f) a->dropout_calls++;
    size_t nh;
    TRY(msbnb__checked_mul(n, a->r, &nh));
    float *h = malloc(nh * sizeof(float));
    RETURN_IF(!h, MSBNB_ERR_OUT_OF_MEMORY, "h of %zu floats", nh);
    const float *Xd;
    float *owned;
    msbnb_status st = dropped_input(l, a, X, n, &Xd, &owned);
    if (st == MSBNB_OK) {
        /* h[n, r] = Xd[n, in] · Aᵀ */
        msbnb__nn_gemm_nt(Xd, a->A, n, l->in, a->r, 1.0f, 0, h);
        /* Y[n, out] += scaling · h · Bᵀ */
        msbnb__nn_gemm_nt(h, a->B, n, a->r, l->out, a->scaling, 1, Y);
    }
    free(owned);
    free(h);
    return st;
}

msbnb_status msbnb__lora_backward(msbnb_linear *l, const float *X, const float *dY, int64_t n, float *dX) {
    lora_adapter *a = &l->adapters[l->active];
    size_t nh;
    TRY(msbnb__checked_mul(n, a->r, &nh));
    float *h = malloc(nh * sizeof(float));
    float *g = malloc(nh * sizeof(float));
    if (!h || !g) {
        free(h);
        free(g);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "backward temporaries of %zu floats", 2 * nh);
    }
    const float *Xd;
    float *owned;
    msbnb_status st = dropped_input(l, a, X, n, &Xd, &owned); /* same mask as the last forward */
    if (st == MSBNB_OK) {
        const int64_t in = l->in, out = l->out, r = a->r;
        /* h[n, r] = Xd · Aᵀ (recomputed rather than kept from the forward) */
        msbnb__nn_gemm_nt(Xd, a->A, n, in, r, 1.0f, 0, h);
        /* dB[out, r] += scaling · dYᵀ[out, n] · h[n, r] */
        msbnb__nn_gemm_tn(dY, h, n, out, r, a->scaling, 1, a->dB);
        /* g[n, r] = scaling · dY[n, out] · B[out, r] */
        msbnb__nn_gemm_nn(dY, a->B, n, out, r, a->scaling, 0, g);
        /* dA[r, in] += gᵀ[r, n] · Xd[n, in] */
        msbnb__nn_gemm_tn(g, Xd, n, r, in, 1.0f, 1, a->dA);
        if (dX && !owned) {
            /* dX[n, in] += g · A */
            msbnb__nn_gemm_nn(g, a->A, n, r, in, 1.0f, 1, dX);
        } else if (dX) {
            /* Through the dropout: dX += (g · A) ⊙ mask / (1 − p). Reuse `owned` for g · A. */
            float *t = owned;
            msbnb__nn_gemm_nn(g, a->A, n, r, in, 1.0f, 0, t);
            uint64_t key = dropout_key(a);
            float keep_scale = 1.0f / (1.0f - a->dropout);
            size_t total = (size_t)n * (size_t)l->in;
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (total >= 65536)
            for (int64_t i = 0; i < (int64_t)total; i++)
                if (dropout_keep(key, (uint64_t)i, a->dropout)) dX[i] += t[i] * keep_scale;
        }
    }
    free(owned);
    free(h);
    free(g);
    return st;
}

/* ================================================================ merge / unmerge */

/* Error of got against exact and the rms of delta (n values each), in double. */
static void fill_report(const float *got, const float *exact, const float *delta, size_t n, msbnb_merge_report *rep) {
    double mx = 0.0, se = 0.0, sd = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)exact[i]);
        if (e > mx) mx = e;
        se += e * e;
        sd += (double)delta[i] * (double)delta[i];
    }
    rep->max_abs_error = mx;
    rep->rms_error = sqrt(se / (double)n);
    rep->delta_rms = sqrt(sd / (double)n);
}

msbnb_status msbnb_lora_merge(msbnb_linear *l, msbnb_merge_report *report) {
    RETURN_IF(!l, MSBNB_ERR_INVALID_ARG, "layer is NULL");
    RETURN_IF(l->merged >= 0, MSBNB_ERR_INVALID_ARG, "adapter '%s' is already merged", l->adapters[l->merged].name);
    RETURN_IF(l->active < 0, MSBNB_ERR_INVALID_ARG, "no active adapter to merge");
    size_t nw = (size_t)l->in * (size_t)l->out;
    float *delta = msbnb__alloc_aligned(nw * sizeof(float));
    float *exact = msbnb__alloc_aligned(nw * sizeof(float));
    msbnb_status st = MSBNB_OK;
    msbnb_merge_report rep;
    memset(&rep, 0, sizeof rep);
    if (!delta || !exact) {
        st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "merge temporaries of 2 x %zu floats", nw);
        goto done;
    }
    delta_weight(l, &l->adapters[l->active], delta);
    if (l->w) {
        /* fp32 base: W += ΔW; keep the old W for an exact unmerge. exact = W + ΔW in double would be
         * better, but the comparison only needs to expose the one float rounding of the sum. */
        l->backup_w = msbnb__alloc_aligned(nw * sizeof(float));
        if (!l->backup_w) {
            st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "merge backup of %zu floats", nw);
            goto done;
        }
        memcpy(l->backup_w, l->w, nw * sizeof(float));
        double mx = 0.0, se = 0.0;
        for (size_t i = 0; i < nw; i++) {
            double ex = (double)l->w[i] + (double)delta[i];
            l->w[i] = l->w[i] + delta[i];
            double e = fabs((double)l->w[i] - ex);
            mx = e > mx ? e : mx;
            se += e * e;
        }
        fill_report(delta, delta, delta, nw, &rep); /* only for delta_rms */
        rep.max_abs_error = mx;
        rep.rms_error = sqrt(se / (double)nw);
    } else {
        /* Quantized base: W' = quant(deq(W) + ΔW) in W's own format; the old tensor is kept whole.
         * exact: [out, in] = deq(W) + ΔW;  newdeq: deq(W') reusing `exact`'s partner buffer. */
        msbnb_quant_config cfg = msbnb__config_of_qtensor(l->q);
        msbnb_qtensor *nq = NULL;
        float *newdeq = NULL;
        st = msbnb_dequantize(l->q, exact);
        if (st != MSBNB_OK) goto done;
        for (size_t i = 0; i < nw; i++) exact[i] += delta[i];
        st = msbnb_quantize(exact, l->out, l->in, &cfg, &nq);
        if (st != MSBNB_OK) goto done;
        newdeq = msbnb__alloc_aligned(nw * sizeof(float));
        if (!newdeq) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "merge temporaries");
        if (st == MSBNB_OK) st = msbnb_dequantize(nq, newdeq);
        if (st != MSBNB_OK) {
            msbnb__free_aligned(newdeq);
            msbnb_qtensor_free(nq);
            goto done;
        }
        fill_report(newdeq, exact, delta, nw, &rep);
        msbnb__free_aligned(newdeq);
        if (l->q->kernel_pack) (void)msbnb_qtensor_prepare(nq); /* keep the fast layout if there was one */
        l->backup_q = l->q;
        l->q = nq;
    }
    l->merged = l->active;
done:
    msbnb__free_aligned(delta);
    msbnb__free_aligned(exact);
    if (st == MSBNB_OK && report) *report = rep;
    return st;
}

msbnb_status msbnb_lora_unmerge(msbnb_linear *l) {
    RETURN_IF(!l, MSBNB_ERR_INVALID_ARG, "layer is NULL");
    RETURN_IF(l->merged < 0, MSBNB_ERR_INVALID_ARG, "no adapter is merged");
    if (l->backup_w) {
        memcpy(l->w, l->backup_w, (size_t)l->in * (size_t)l->out * sizeof(float));
        msbnb__free_aligned(l->backup_w);
        l->backup_w = NULL;
    } else {
        msbnb_qtensor_free(l->q);
        l->q = l->backup_q;
        l->backup_q = NULL;
    }
    l->active = l->merged;
    l->merged = -1;
    return MSBNB_OK;
}

msbnb_status msbnb_lora_merge_and_unload(msbnb_linear *l, msbnb_merge_report *report) {
    TRY(msbnb_lora_merge(l, report));
    msbnb__free_aligned(l->backup_w);
    l->backup_w = NULL;
    msbnb_qtensor_free(l->backup_q);
    l->backup_q = NULL;
    int i = l->merged;
    l->merged = -1;
    char name[MSBNB_LORA_NAME_MAX];
    memcpy(name, l->adapters[i].name, sizeof name);
    return msbnb_lora_delete(l, name);
}
