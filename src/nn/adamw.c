/*
 * adamw.c — the AdamW update with fp32 moments, element by element, in the order of bitsandbytes'
 * kOptimizer32bit2State (ADAM) kernel: moments, Adam step with the bias corrections folded into
 * step_size and eps_hat, then decoupled weight decay on the updated parameter.
 *
 *   data, grad, m, v: float32 [n]; every element is independent, so the parallel loop writes
 *   disjoint outputs and the result does not depend on the thread count.
 */
#include <math.h>

#include "nn/optim_internal.h"

size_t msbnb__adamw_update_f32(optim_tensor *t, const adam_step_consts *c) {
    float *restrict p = t->data;
    const float *restrict g = t->grad;
    float *restrict m = t->m;
    float *restrict v = t->v;
    const float b1 = c->beta1, b2 = c->beta2, one_b1 = 1.0f - c->beta1, one_b2 = 1.0f - c->beta2;
    const float decay = 1.0f - c->lr * c->weight_decay;
    const int wd = c->weight_decay > 0.0f;
    size_t nonfinite = 0;
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) reduction(+ : nonfinite) if (t->n >= 32768)
    for (ptrdiff_t i = 0; i < (ptrdiff_t)t->n; i++) {
        float gi = g[i];
        if (!isfinite(gi)) { /* skipped: parameter and moments unchanged */
            nonfinite++;
            continue;
        }
        gi *= c->gscale;
        float mi = m[i] * b1 + one_b1 * gi;
        float vi = v[i] * b2 + one_b2 * (gi * gi);
        float pi = p[i] - c->step_size * (mi / (sqrtf(vi) + c->eps_hat));
        if (wd) pi = pi * decay;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi;
    }
    return nonfinite;
}
