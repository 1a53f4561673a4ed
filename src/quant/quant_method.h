/*
 * quant_method.h — shared pieces of the error-minimising quantizers (scale_search.c, gptq.c,
 * quantize_method.c). quant/ only.
 *
 * The 4-bit formats seen as "blocks of contiguous flat elements with one scale each":
 *   NF4/FP4  block b = flat elements [b*L, min((b+1)*L, n)), L = blocksize (may straddle rows),
 *            scale index b;
 *   INT4     block b = row r = b / ng, group j = b % ng: flat elements [r*cols + j*G, +G),
 *            scale index j*rows + r (the [cols/G, rows] layout of quant.h).
 * Every format dequantizes as y = val[c] * s in float32 (NF4/FP4: s = absmax, val = code table;
 * INT4: s = scale, val = the signed nibble), so one search serves all three.
 */
#ifndef MSBNB_QUANT_QUANT_METHOD_H
#define MSBNB_QUANT_QUANT_METHOD_H

#include "core/internal.h"

#include <msbnb/quant.h>

typedef struct msbnb__q4fmt {
    msbnb_qtype type;
    float val[16];       /* value of each 4-bit code                                     */
    float sorted[16];    /* distinct values ascending; code_of[k] = a code with that value */
    uint8_t code_of[16];
    float mid[16];       /* mid[k] = (sorted[k] + sorted[k+1]) / 2, k < n - 1               */
    int n;
    float vmax;          /* RTN scale = absmax / vmax (NF4, FP4: 1; INT4: 7)                */
    /* geometry */
    int64_t rows, cols;
    size_t n_elems, n_blocks;
    size_t L;            /* block length (the last NF4/FP4 block may be shorter)             */
    size_t ng;           /* INT4 groups per row (0 for NF4/FP4)                              */
} msbnb__q4fmt;

/* Double-quant geometry (RTN's nested statistics, reused so that RTN's scale stays reachable). */
typedef struct msbnb__dq {
    int on;
    int nested_bs;
    const float *nested_absmax; /* [ceil(n_stats/nested_bs)] */
    float offset;
    const float *code;          /* 256-entry signed dynamic map                */
} msbnb__dq;

/* Fill f for cfg over a [rows, cols] weight (cfg already validated by msbnb_quantize). */
void msbnb__q4fmt_init(msbnb__q4fmt *f, const msbnb_quant_config *cfg, int64_t rows, int64_t cols);

static inline size_t msbnb__q4_block_start(const msbnb__q4fmt *f, size_t b) { return b * f->L; }
static inline size_t msbnb__q4_block_len(const msbnb__q4fmt *f, size_t b) {
    size_t e0 = b * f->L;
    return f->n_elems - e0 < f->L ? f->n_elems - e0 : f->L;
}
static inline size_t msbnb__q4_stat_index(const msbnb__q4fmt *f, size_t b) {
    return f->ng ? (b % f->ng) * (size_t)f->rows + b / f->ng : b;
}

/* Nearest code to t (ties to the lower value). */
static inline unsigned msbnb__q4_nearest(const msbnb__q4fmt *f, float t) {
    int k = 0;
    for (int i = 0; i < f->n - 1; i++) k += t > f->mid[i];
    return f->code_of[k];
}

/* The dequantized scale of 8-bit statistic code k in nested group g (as msbnb_double_dequantize). */
static inline float msbnb__dq_value(const msbnb__dq *d, size_t g, int k) {
    float y = d->code[k] * d->nested_absmax[g];
    return y + d->offset;
}

/* One block's choice: scale s (as dequantized), statistic code k (double quant), error. */
typedef struct msbnb__block_pick {
    float s;
    int k;
    double err;
} msbnb__block_pick;

/* Search block x [len] (weights w [len] or NULL) for the scale of least weighted squared error.
 * *best holds the candidate to beat (err = INFINITY for none) and receives the winner; codes
 * [len] receive the winner's codes only when a candidate beats *best. dq: double quant of the
 * block's statistic index stat_idx (NULL/off = free float scale). */
void msbnb__search_block(const msbnb__q4fmt *f, const msbnb__dq *dq, size_t stat_idx, const float *x, const float *w,
                         size_t len, msbnb__block_pick *best, uint8_t *codes);

/* Weighted squared error of block x with scale s and its nearest codes (written to codes if not NULL). */
double msbnb__block_error(const msbnb__q4fmt *f, const float *x, const float *w, size_t len, float s, uint8_t *codes);

/* GPTQ over w [rows, cols] with H [cols, cols]: codes [n_elems] (one per element), per block the
 * chosen pick [n_blocks]. Arguments validated by the caller. */
msbnb_status msbnb__gptq(const msbnb__q4fmt *f, const msbnb__dq *dq, const float *w, const double *h, float damp,
                         int batch, uint8_t *codes, msbnb__block_pick *picks);

/* Per-column importance weights from stats (diag + 1 % of its mean, so unseen inputs still count),
 * or NULL when stats carry none. *out malloc'ed [cols]. */
msbnb_status msbnb__importance(const msbnb_input_stats *st, int64_t cols, float **out);

#endif
