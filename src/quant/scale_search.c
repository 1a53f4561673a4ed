/*
 * scale_search.c — per-block scale search for the 4-bit formats (NF4, FP4, INT4).
 *
 * A block x [len] with scale s dequantizes to y_i = val[c_i] * s; for a given s the best codes are
 * the nearest values to x_i / s, so the block's error is a function of s alone:
 *   E(s) = Σ_i w_i (x_i - val[c_i(s)] * s)²       (w_i = 1, or the importance of x_i's input)
 * The search (msbnb__search_block):
 *   1. a grid s = f · absmax / vmax for f = 1.00, 0.98, ..., 0.60 (clipping the largest values
 *      buys resolution for the rest: the RTN rule is f = 1);
 *   2. from the best grid point, two least-squares steps: with the codes fixed, the optimal scale
 *      is Σ w x v / Σ w v² (v = val[c]); the codes are then re-chosen;
 *   3. with double quantization only scales the 8-bit statistic code can represent are stored, so
 *      the candidates are the representable scales within ±20 % of the free optimum (and its two
 *      neighbours), each evaluated exactly as it will be dequantized.
 * A candidate replaces the one given (RTN's own block, exactly as bitsandbytes codes it) only when
 * its error is strictly lower, so the search never increases a block's error.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant_method.h"

#define GRID_STEPS 41   /* f = 1.00 .. 0.60 */
#define GRID_STEP 0.01f
#define LS_STEPS 0      /* least-squares refinement steps (see the header: 0 measured best) */
#define DQ_SPAN 0.0f

void msbnb__q4fmt_init(msbnb__q4fmt *f, const msbnb_quant_config *cfg, int64_t rows, int64_t cols) {
    memset(f, 0, sizeof *f);
    f->type = cfg->type;
    if (cfg->type == MSBNB_QTYPE_INT4) {
        for (int c = 0; c < 16; c++) f->val[c] = (float)((c ^ 8) - 8);
        f->vmax = 7.0f;
    } else {
        memcpy(f->val, cfg->type == MSBNB_QTYPE_NF4 ? msbnb_nf4_code() : msbnb_fp4_code(), sizeof f->val);
        f->vmax = 1.0f;
    }
    /* distinct values ascending (FP4 has two zeros), insertion sort over 16 entries; equal values
     * keep the lowest code (FP4: code 0 for 0.0) */
    for (int c = 0; c < 16; c++) {
        float v = f->val[c];
        int dup = 0;
        for (int k = 0; k < f->n; k++) dup |= f->sorted[k] == v;
        if (dup) continue;
        int k = f->n++;
        while (k > 0 && f->sorted[k - 1] > v) {
            f->sorted[k] = f->sorted[k - 1];
            f->code_of[k] = f->code_of[k - 1];
            k--;
        }
        f->sorted[k] = v;
        f->code_of[k] = (uint8_t)c;
    }
    for (int k = 0; k + 1 < f->n; k++) f->mid[k] = 0.5f * (f->sorted[k] + f->sorted[k + 1]);
    f->rows = rows;
    f->cols = cols;
    f->n_elems = (size_t)rows * (size_t)cols;
    if (cfg->type == MSBNB_QTYPE_INT4) {
        f->L = (size_t)cfg->group_size;
        f->ng = (size_t)cols / f->L;
    } else {
        f->L = (size_t)cfg->blocksize;
    }
    f->n_blocks = f->n_elems / f->L + (f->n_elems % f->L != 0);
}

double msbnb__block_error(const msbnb__q4fmt *f, const float *x, const float *w, size_t len, float s, uint8_t *codes) {
    const float inv = 1.0f / s;
    double e = 0.0;
    for (size_t i = 0; i < len; i++) {
        unsigned c = msbnb__q4_nearest(f, x[i] * inv);
        if (codes) codes[i] = (uint8_t)c;
        double d = (double)x[i] - (double)(f->val[c] * s);
        e += (w ? (double)w[i] : 1.0) * d * d;
    }
    return e;
}

/* Least-squares scale for fixed codes: Σ w x v / Σ w v²; 0 when undefined. */
static float ls_scale(const msbnb__q4fmt *f, const float *x, const float *w, size_t len, const uint8_t *codes) {
    double sxv = 0.0, svv = 0.0;
    for (size_t i = 0; i < len; i++) {
        double v = f->val[codes[i]], wi = w ? (double)w[i] : 1.0;
        sxv += wi * (double)x[i] * v;
        svv += wi * v * v;
    }
    if (!(svv > 0.0)) return 0.0f;
    double s = sxv / svv;
    return (s > 0.0 && s < 3.0e38) ? (float)s : 0.0f;
}

/* Try scale s (and, with dq, statistic code k): replace *best when strictly better. */
static void try_scale(const msbnb__q4fmt *f, const float *x, const float *w, size_t len, float s, int k,
                      msbnb__block_pick *best, uint8_t *codes, uint8_t *tmp) {
    if (!(s > 0.0f) || !isfinite(s) || !isfinite(1.0f / s)) return;
    double e = msbnb__block_error(f, x, w, len, s, tmp);
    if (e < best->err) {
        best->err = e;
        best->s = s;
        best->k = k;
        memcpy(codes, tmp, len);
    }
}

void msbnb__search_block(const msbnb__q4fmt *f, const msbnb__dq *dq, size_t stat_idx, const float *x, const float *w,
                         size_t len, msbnb__block_pick *best, uint8_t *codes) {
    float amax = 0.0f;
    for (size_t i = 0; i < len; i++) {
        if (!isfinite(x[i])) return; /* non-finite blocks keep the RTN rule's defined result */
        float a = fabsf(x[i]);
        if (a > amax) amax = a;
    }
    if (amax == 0.0f) return;
    uint8_t tmp[4096], fc[4096];
    /* 1-2: free optimum */
    msbnb__block_pick fr = {0.0f, -1, INFINITY};
    const float base = amax / f->vmax;
    for (int g = 0; g < GRID_STEPS; g++) try_scale(f, x, w, len, base * (1.0f - GRID_STEP * (float)g), -1, &fr, fc, tmp);
    for (int it = 0; it < LS_STEPS && fr.err < INFINITY; it++) try_scale(f, x, w, len, ls_scale(f, x, w, len, fc), -1, &fr, fc, tmp);
    if (!(fr.err < INFINITY)) return;
    if (!dq || !dq->on) {
        if (fr.err < best->err) {
            *best = fr;
            memcpy(codes, fc, len);
        }
        return;
    }
    /* 3: representable scales near the free optimum; the map is ascending, so are the values */
    const size_t g = stat_idx / (size_t)dq->nested_bs;
    const float lo = fr.s * (1.0f - DQ_SPAN), hi = fr.s * (1.0f + DQ_SPAN);
    int below = -1, above = -1;
    for (int k = 0; k < 256; k++) {
        float v = msbnb__dq_value(dq, g, k);
        if (v <= fr.s) below = k;
        if (v >= fr.s && above < 0) above = k;
        if ((v >= lo && v <= hi) || k == below || k == above) try_scale(f, x, w, len, v, k, best, codes, tmp);
    }
}

msbnb_status msbnb__importance(const msbnb_input_stats *st, int64_t cols, float **out) {
    *out = NULL;
    if (!st || (!st->h && !st->h_diag)) return MSBNB_OK;
    float *w = malloc((size_t)cols * sizeof(float));
    RETURN_IF(!w, MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate %lld importance weights", (long long)cols);
    double mean = 0.0;
    for (int64_t j = 0; j < cols; j++) mean += st->h ? st->h[(size_t)j * (size_t)cols + (size_t)j] : st->h_diag[j];
    mean /= (double)cols;
    for (int64_t j = 0; j < cols; j++) {
        double d = st->h ? st->h[(size_t)j * (size_t)cols + (size_t)j] : st->h_diag[j];
        w[j] = (float)(d + 0.01 * mean);
    }
    *out = w;
    return MSBNB_OK;
}
