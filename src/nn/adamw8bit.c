/*
 * adamw8bit.c — 8-bit AdamW state as bitsandbytes' blockwise optimizer keeps it
 * (kOptimizerStatic8bit2StateBlockwise, ADAM; Dettmers et al. 2022, "8-bit Optimizers via
 * Block-wise Quantization").
 *
 * Per tensor of n elements and blocks of bs (256):
 *   qm  uint8 [n]   m as indices into the signed dynamic map     am  float32 [ceil(n/bs)] absmax of m
 *   qv  uint8 [n]   v as indices into the unsigned dynamic map   av  float32 [ceil(n/bs)] absmax of v
 * One step, per block: m = map_s[qm]·am, v = map_u[qv]·av; for each element with a finite gradient
 * g (scaled by the clipping factor): v = β₂v + (1−β₂)g², m = β₁m + (1−β₁)g, p −= step_size ·
 * m/(√v + eps_hat), p *= 1 − lr·wd; a non-finite g resets that m and v to 0 and leaves p alone
 * (bitsandbytes does the same). The block is then re-quantized with msbnb_quantize_blockwise8
 * (fresh absmax = max |m| resp. max v, nearest map entry), and an m code whose map value has the
 * other sign than m is moved one entry toward m's side, as bitsandbytes does, so rounding never
 * flips the momentum's direction. Blocks are independent: the parallel loop writes disjoint
 * outputs and the result is the same for every thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/optim_internal.h"

#define BW_MAX 4096 /* largest blocksize (checked when the optimizer is created) */

/* Index of the entry 0.0 in a map (both dynamic maps hold it exactly). */
static uint8_t zero_index(const float *map) {
    for (int i = 0; i < 256; i++)
        if (map[i] == 0.0f) return (uint8_t)i;
    return 0;
}

msbnb_status msbnb__adamw8bit_alloc_state(optim_tensor *t, int blocksize) {
    t->n_blocks = t->n / (size_t)blocksize + (t->n % (size_t)blocksize != 0);
    t->qm = msbnb__alloc_aligned(t->n);
    t->qv = msbnb__alloc_aligned(t->n);
    t->am = calloc(t->n_blocks, sizeof(float));
    t->av = calloc(t->n_blocks, sizeof(float));
    if (!t->qm || !t->qv || !t->am || !t->av) {
        msbnb__free_aligned(t->qm);
        msbnb__free_aligned(t->qv);
        free(t->am);
        free(t->av);
        t->qm = t->qv = NULL;
        t->am = t->av = NULL;
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "8-bit state of %zu elements", t->n);
    }
    memset(t->qm, zero_index(msbnb_dynamic_map_signed()), t->n);
    memset(t->qv, zero_index(msbnb_dynamic_map_unsigned()), t->n);
    return MSBNB_OK;
}

msbnb_status msbnb__adamw8bit_get_moments(const optim_tensor *t, int blocksize, float *m, float *v) {
    TRY(msbnb_dequantize_blockwise8(msbnb_dynamic_map_signed(), t->qm, t->am, t->n, blocksize, m));
    TRY(msbnb_dequantize_blockwise8(msbnb_dynamic_map_unsigned(), t->qv, t->av, t->n, blocksize, v));
    return MSBNB_OK;
}

msbnb_status msbnb__adamw_update_8bit(optim_tensor *t, int blocksize, const adam_step_consts *c, size_t *nonfinite) {
    RETURN_IF(blocksize > BW_MAX, MSBNB_ERR_INTERNAL, "blocksize %d", blocksize);
    const float *map_s = msbnb_dynamic_map_signed(), *map_u = msbnb_dynamic_map_unsigned();
    const float b1 = c->beta1, b2 = c->beta2, one_b1 = 1.0f - c->beta1, one_b2 = 1.0f - c->beta2;
    const float decay = 1.0f - c->lr * c->weight_decay;
    const int wd = c->weight_decay > 0.0f;
    const size_t bs = (size_t)blocksize;
    size_t nf = 0;
    int failed = 0;
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) reduction(+ : nf, failed) if (t->n_blocks >= 64)
    for (ptrdiff_t b = 0; b < (ptrdiff_t)t->n_blocks; b++) {
        float mb[BW_MAX], vb[BW_MAX]; /* this block's moments in fp32 */
        const size_t off = (size_t)b * bs, len = t->n - off < bs ? t->n - off : bs;
        float *p = t->data + off;
        const float *g = t->grad + off;
        uint8_t *qm = t->qm + off, *qv = t->qv + off;
        const float am = t->am[b], av = t->av[b];
        for (size_t j = 0; j < len; j++) {
            float gj = g[j];
            if (!isfinite(gj)) {
                mb[j] = 0.0f;
                vb[j] = 0.0f;
                nf++;
                continue;
            }
            gj *= c->gscale;
            float vj = map_u[qv[j]] * av;
            vj = vj * b2 + one_b2 * gj * gj;
            float mj = map_s[qm[j]] * am;
            mj = mj * b1 + one_b1 * gj;
            float pj = p[j] - c->step_size * (mj / (sqrtf(vj) + c->eps_hat));
            if (wd) pj = pj * decay;
            p[j] = pj;
            mb[j] = mj;
            vb[j] = vj;
        }
        if (msbnb_quantize_blockwise8(map_s, mb, len, blocksize, qm, &t->am[b]) != MSBNB_OK ||
            msbnb_quantize_blockwise8(map_u, vb, len, blocksize, qv, &t->av[b]) != MSBNB_OK) {
            failed++;
            continue;
        }
        for (size_t j = 0; j < len; j++) {
            /* (-0.0 has no direction to keep: skipped, unlike bitsandbytes' bare signbit test) */
            if (mb[j] != 0.0f && signbit(map_s[qm[j]]) != signbit(mb[j])) {
                if (mb[j] > 0.0f && qm[j] < 255)
                    qm[j]++;
                else if (mb[j] < 0.0f && qm[j] > 0)
                    qm[j]--;
            }
        }
    }
    RETURN_IF(failed, MSBNB_ERR_INTERNAL, "re-quantizing the 8-bit state failed in %d blocks", failed);
    *nonfinite = nf;
    return MSBNB_OK;
}
