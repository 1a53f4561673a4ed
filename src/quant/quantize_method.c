/*
 * quantize_method.c — msbnb_quantize_opt: RTN, SEARCH or GPTQ into the standard 4-bit formats.
 *
 * Every method starts from the RTN tensor (msbnb_quantize, byte-exact with bitsandbytes): its
 * layout, its padding nibble and, with double quantization, its nested absmax and offset are kept,
 * and only the codes and the per-block scales (or their 8-bit statistic codes) are replaced. The
 * result is rebuilt through msbnb_qtensor_from_view, so it passes the same checks as a file read.
 * Buffers: codes uint8 [n] (one code per element before packing), packed [data_bytes],
 * stats float [n_stats] (plain) or stats_q uint8 [n_stats] (double quant), picks [n_blocks].
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/qtensor_internal.h"
#include "quant/quant_method.h"

msbnb_quant_method msbnb_quant_method_default(void) {
    msbnb_quant_method m;
    memset(&m, 0, sizeof m);
    m.method = MSBNB_QMETHOD_RTN;
    m.damp = 0.01f;
    m.gptq_batch = 128;
    return m;
}

static const char *const method_names[] = {"rtn", "search", "gptq"};

const char *msbnb_qmethod_name(msbnb_qmethod m) {
    return (m >= MSBNB_QMETHOD_RTN && m <= MSBNB_QMETHOD_GPTQ) ? method_names[m] : "?";
}

msbnb_status msbnb_qmethod_parse(const char *name, msbnb_qmethod *out) {
    RETURN_IF(!name || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    for (int m = MSBNB_QMETHOD_RTN; m <= MSBNB_QMETHOD_GPTQ; m++)
        if (!strcmp(name, method_names[m])) {
            *out = (msbnb_qmethod)m;
            return MSBNB_OK;
        }
    return MSBNB_FAIL(MSBNB_ERR_INVALID_ARG, "unknown method '%s' (rtn, search, gptq)", name);
}

static msbnb_status check_stats(const msbnb_input_stats *st, int64_t cols) {
    if (!st) return MSBNB_OK;
    RETURN_IF(st->cols != cols, MSBNB_ERR_INVALID_ARG, "stats are for %lld inputs, the weight has %lld",
              (long long)st->cols, (long long)cols);
    for (int64_t j = 0; j < cols; j++) {
        double d = st->h ? st->h[(size_t)j * (size_t)cols + (size_t)j] : st->h_diag ? st->h_diag[j] : 0.0;
        RETURN_IF(!(d >= 0.0) || !isfinite(d), MSBNB_ERR_INVALID_ARG, "stats diagonal %lld is %g", (long long)j, d);
    }
    return MSBNB_OK;
}

static void put_nibble(uint8_t *packed, size_t e, unsigned c) {
    uint8_t *b = packed + e / 2;
    *b = (e & 1) ? (uint8_t)((*b & 0xF0u) | c) : (uint8_t)((*b & 0x0Fu) | c << 4);
}
static unsigned get_nibble(const uint8_t *packed, size_t e) {
    return (e & 1) ? packed[e / 2] & 15u : packed[e / 2] >> 4;
}

msbnb_status msbnb_quantize_opt(const float *w, int64_t rows, int64_t cols, const msbnb_quant_config *cfg,
                                const msbnb_quant_method *m, msbnb_qtensor **out) {
    RETURN_IF(!w || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    msbnb_quant_config c = cfg ? *cfg : msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    msbnb_quant_method md = m ? *m : msbnb_quant_method_default();
    RETURN_IF(md.method < MSBNB_QMETHOD_RTN || md.method > MSBNB_QMETHOD_GPTQ, MSBNB_ERR_INVALID_ARG,
              "method %d is not rtn, search or gptq", (int)md.method);
    if (md.method == MSBNB_QMETHOD_RTN) return msbnb_quantize(w, rows, cols, &c, out);
    RETURN_IF(c.type != MSBNB_QTYPE_NF4 && c.type != MSBNB_QTYPE_FP4 && c.type != MSBNB_QTYPE_INT4,
              MSBNB_ERR_UNSUPPORTED, "method %s applies to nf4, fp4 and int4, not %s", msbnb_qmethod_name(md.method),
              msbnb_qtype_name(c.type));
    RETURN_IF(!(md.damp >= 0.0f && md.damp <= 10.0f), MSBNB_ERR_INVALID_ARG, "damp %g outside [0, 10]", (double)md.damp);
    RETURN_IF(md.gptq_batch < 1, MSBNB_ERR_INVALID_ARG, "gptq_batch %d < 1", md.gptq_batch);
    TRY(check_stats(md.stats, cols));
    const int gptq = md.method == MSBNB_QMETHOD_GPTQ && md.stats && md.stats->h;

    msbnb_qtensor *rq = NULL; /* the RTN tensor: layout, padding and nested statistics */
    TRY(msbnb_quantize(w, rows, cols, &c, &rq));
    const msbnb_qtensor_view *rv = &rq->v;
    msbnb__q4fmt f;
    msbnb__q4fmt_init(&f, &c, rows, cols);
    msbnb__dq dq = {rv->double_quant, rv->nested_blocksize, rv->nested_absmax, rv->nested_offset, rv->nested_code};
    const float *rs = NULL;
    float *rs_owned = NULL, *imp = NULL, *stats = NULL;
    uint8_t *packed = NULL, *stats_q = NULL, *codes = NULL;
    msbnb__block_pick *picks = NULL;
    msbnb_status st = msbnb__qtensor_resolve_stats(rq, &rs, &rs_owned);
    if (st == MSBNB_OK) st = msbnb__importance(md.stats, cols, &imp);
    if (st != MSBNB_OK) goto done;
    packed = malloc(rv->data_bytes);
    stats = rv->double_quant ? NULL : malloc(rv->n_stats * sizeof(float));
    stats_q = rv->double_quant ? malloc(rv->n_stats) : NULL;
    picks = malloc(f.n_blocks * sizeof *picks);
    codes = gptq ? malloc(f.n_elems) : NULL;
    if (!packed || (!stats && !stats_q) || !picks || (gptq && !codes)) {
        st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate the %s result", msbnb_qmethod_name(md.method));
        goto done;
    }
    memcpy(packed, rv->data, rv->data_bytes);
    if (stats) memcpy(stats, rv->stats, rv->n_stats * sizeof(float));
    if (stats_q) memcpy(stats_q, rv->stats_q, rv->n_stats);

    if (gptq) {
        st = msbnb__gptq(&f, &dq, w, md.stats->h, md.damp, md.gptq_batch, codes, picks);
        if (st != MSBNB_OK) goto done;
        for (size_t e = 0; e < f.n_elems; e++) put_nibble(packed, e, codes[e]);
        for (size_t b = 0; b < f.n_blocks; b++) {
            size_t si = msbnb__q4_stat_index(&f, b);
            if (stats) stats[si] = picks[b].s;
            else stats_q[si] = (uint8_t)picks[b].k;
        }
    } else {
        /* SEARCH (also GPTQ without a full H: no correlations to compensate) */
        const ptrdiff_t nb = (ptrdiff_t)f.n_blocks;
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (nb > 16)
        for (ptrdiff_t bi = 0; bi < nb; bi++) {
            const size_t b = (size_t)bi, e0 = msbnb__q4_block_start(&f, b), len = msbnb__q4_block_len(&f, b);
            const size_t si = msbnb__q4_stat_index(&f, b);
            float wt[4096];
            uint8_t bc[4096];
            for (size_t i = 0; i < len; i++) {
                bc[i] = (uint8_t)get_nibble(rv->data, e0 + i);
                if (imp) wt[i] = imp[(e0 + i) % (size_t)cols];
            }
            /* RTN's own block (codes from the true absmax, scale as dequantized) is the one to beat */
            msbnb__block_pick p = {rs[si], dq.on ? (int)rv->stats_q[si] : -1, 0.0};
            const float *x = w + e0;
            double err = 0.0;
            for (size_t i = 0; i < len; i++) {
                double d = (double)x[i] - (double)(f.val[bc[i]] * p.s);
                err += (imp ? (double)wt[i] : 1.0) * d * d;
            }
            p.err = err == err ? err : INFINITY;
            const msbnb__block_pick rtn = p;
            msbnb__search_block(&f, &dq, si, x, imp ? wt : NULL, len, &p, bc);
            if (p.err < rtn.err) {
                for (size_t i = 0; i < len; i++) put_nibble(packed, e0 + i, bc[i]);
                if (stats) stats[si] = p.s;
                else stats_q[si] = (uint8_t)p.k;
            }
        }
    }
    msbnb_qtensor_view v = *rv;
    v.data = packed;
    v.stats = stats;
    v.stats_q = stats_q;
    st = msbnb_qtensor_from_view(&v, out);
done:
    msbnb_qtensor_free(rq);
    free(rs_owned);
    free(imp);
    free(packed);
    free(stats);
    free(stats_q);
    free(picks);
    free(codes);
    return st;
}

msbnb_status msbnb_quant_output_error(const float *w, const msbnb_qtensor *q, const msbnb_input_stats *stats,
                                      double *err) {
    RETURN_IF(!w || !q || !err, MSBNB_ERR_INVALID_ARG, "NULL argument");
    const int64_t rows = q->v.rows, cols = q->v.cols;
    TRY(check_stats(stats, cols));
    const size_t n = (size_t)rows * (size_t)cols;
    float *y = msbnb__alloc_aligned(n * sizeof(float));
    double *row_err = malloc((size_t)rows * sizeof(double));
    msbnb_status st = (y && row_err) ? msbnb_dequantize(q, y) : MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate %zu floats", n);
    if (st == MSBNB_OK) {
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            const float *a = w + (size_t)r * (size_t)cols, *b = y + (size_t)r * (size_t)cols;
            double s = 0.0;
            for (int64_t i = 0; i < cols; i++) {
                double di = (double)b[i] - (double)a[i];
                if (stats && stats->h) {
                    const double *hi = stats->h + (size_t)i * (size_t)cols;
                    double t = 0.0;
                    for (int64_t j = 0; j < cols; j++) t += hi[j] * ((double)b[j] - (double)a[j]);
                    s += di * t;
                } else {
                    s += (stats && stats->h_diag ? stats->h_diag[i] : 1.0) * di * di;
                }
            }
            row_err[r] = s;
        }
        double total = 0.0;
        for (int64_t r = 0; r < rows; r++) total += row_err[r];
        *err = total;
    }
    msbnb__free_aligned(y);
    free(row_err);
    return st;
}
