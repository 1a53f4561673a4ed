/*
 * sampler.c — picking the next token (greedy, temperature, nucleus/top-p) and the generation loop.
 *
 * Random numbers: xorshift64* (Vigna 2016; the generator llama2.c's sampler uses), 24 random bits
 * per float in [0, 1), so a seed gives the same text on every platform.
 * Top-p (Holtzman et al. 2019): keep the most probable tokens until their mass exceeds top_p,
 * renormalise, sample among them. Tokens below (1 - top_p) / (vocab - 1) cannot be in that set
 * (llama2.c's observation) and are dropped before sorting, which keeps the sort short.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/llama_internal.h"


msbnb_sampler_params msbnb_sampler_params_default(void) {
    msbnb_sampler_params p;
    p.temperature = 0.0f;
    p.top_p = 0.9f;
    p.seed = 42;
    p.stop_ids = NULL;
    p.n_stop = 0;
    return p;
}

static uint32_t rng_u32(uint64_t *s) {
    if (*s == 0) *s = 0x9E3779B97F4A7C15ull; /* xorshift's fixed point */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (uint32_t)((*s * 0x2545F4914F6CDD1Dull) >> 32);
}
static float rng_f32(uint64_t *s) { return (float)(rng_u32(s) >> 8) / 16777216.0f; }

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

typedef struct {
    float p;
    int32_t id;
} prob_id;

static int cmp_prob_desc(const void *a, const void *b) {
    const prob_id *x = (const prob_id *)a, *y = (const prob_id *)b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id; /* deterministic order on ties */
}

/* Sample from probs [n] (sums to 1) with coin r in [0, 1). */
static int32_t sample_full(const float *probs, int n, float r) {
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += probs[i];
        if (r < cdf) return i;
    }
    return n - 1; /* rounding */
}

static int32_t sample_top_p(const float *probs, int n, float top_p, float r, prob_id *buf) {
    const float cutoff = (1.0f - top_p) / (float)(n > 1 ? n - 1 : 1);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (probs[i] >= cutoff) {
            buf[k].p = probs[i];
            buf[k].id = i;
            k++;
        }
    if (k == 0) return argmax(probs, n);
    qsort(buf, (size_t)k, sizeof *buf, cmp_prob_desc);
    float mass = 0.0f;
    int last = k - 1;
    for (int i = 0; i < k; i++) {
        mass += buf[i].p;
        if (mass > top_p) {
            last = i;
            break;
        }
    }
    const float target = r * mass;
    float cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += buf[i].p;
        if (target < cdf) return buf[i].id;
    }
    return buf[last].id;
}

int32_t msbnb_sample(float *logits, int vocab, const msbnb_sampler_params *params, uint64_t *rng_state) {
    if (!logits || vocab < 1) return 0;
    msbnb_sampler_params p = params ? *params : msbnb_sampler_params_default();
    if (!(p.temperature > 0.0f)) return argmax(logits, vocab);
    uint64_t local = p.seed;
    uint64_t *rs = rng_state ? rng_state : &local;
    /* softmax(logits / T) in place, max subtracted for range */
    float mx = logits[argmax(logits, vocab)];
    double sum = 0.0;
    for (int i = 0; i < vocab; i++) {
        logits[i] = expf((logits[i] - mx) / p.temperature);
        sum += logits[i];
    }
    for (int i = 0; i < vocab; i++) logits[i] = (float)(logits[i] / sum);
    const float r = rng_f32(rs);
    if (!(p.top_p > 0.0f) || p.top_p >= 1.0f) return sample_full(logits, vocab, r);
    prob_id *buf = (prob_id *)malloc((size_t)vocab * sizeof *buf);
    if (!buf) return sample_full(logits, vocab, r); /* documented nowhere as failing: degrade, don't fail */
    int32_t id = sample_top_p(logits, vocab, p.top_p, r, buf);
    free(buf);
    return id;
}

msbnb_status msbnb_model_generate(msbnb_model *m, const int32_t *prompt, int n_prompt, int steps,
                                  const msbnb_sampler_params *params, msbnb_token_callback cb, void *cb_ctx,
                                  int32_t *out, int out_cap, int *n_out) {
    RETURN_IF(!m || !prompt || !out || !n_out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(n_prompt < 1 || steps < 0, MSBNB_ERR_INVALID_ARG, "n_prompt %d, steps %d", n_prompt, steps);
    RETURN_IF(n_prompt > m->ctx_len, MSBNB_ERR_SHAPE, "prompt of %d tokens exceeds the context of %d", n_prompt,
              m->ctx_len);
    RETURN_IF(out_cap < n_prompt, MSBNB_ERR_SHAPE, "out holds %d, prompt has %d tokens", out_cap, n_prompt);
    msbnb_sampler_params sp = params ? *params : msbnb_sampler_params_default();
    RETURN_IF(!(sp.temperature >= 0.0f) || !isfinite(sp.temperature) || !(sp.top_p >= 0.0f), MSBNB_ERR_INVALID_ARG,
              "temperature %g / top_p %g", (double)sp.temperature, (double)sp.top_p);
    memcpy(out, prompt, sizeof(int32_t) * (size_t)n_prompt);
    int n = n_prompt;
    *n_out = n;
    uint64_t rng = sp.seed;
    float *logits = m->logits; /* [vocab]: the model's scratch (batch_cap >= 1 rows) */
    TRY(msbnb_model_forward(m, prompt, n_prompt, 0, logits, 0));
    for (int s = 0; s < steps && n < out_cap; s++) {
        int32_t next = msbnb_sample(logits, m->cfg.vocab_size, &sp, &rng);
        int stop = 0;
        for (int k = 0; k < sp.n_stop && sp.stop_ids; k++) stop |= next == sp.stop_ids[k];
        if (stop) break;
        out[n++] = next;
        *n_out = n;
        if (cb && cb(cb_ctx, next)) break;
        if (n >= m->ctx_len || s + 1 == steps || n >= out_cap) break;
        TRY(msbnb_model_forward(m, &next, 1, n - 1, logits, 0));
    }
    return MSBNB_OK;
}
