/*
 * stats.c — quantization error statistics and storage accounting.
 *
 * Error sums run in double precision in element order (one thread), so the figures are the same
 * for every thread count and ISA. Non-finite elements propagate (IEEE): a NaN anywhere makes the
 * MSE NaN, which is the honest answer for such an input.
 */
#include "quant/int_internal.h"
#include "quant/qtensor_internal.h"

#include <math.h>
#include <stdlib.h>

msbnb_status msbnb_error_stats_compute(const float *ref, const float *approx, size_t n, msbnb_error_stats *st) {
    RETURN_IF(!ref || !approx || !st, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(n == 0, MSBNB_ERR_SHAPE, "n is 0");
    double se = 0.0, sx = 0.0, mx = 0.0;
    for (size_t i = 0; i < n; i++) {
        double x = ref[i], d = x - (double)approx[i];
        se += d * d;
        sx += x * x;
        double a = fabs(d);
        if (a > mx || a != a) mx = a;
    }
    st->mse = se / (double)n;
    st->max_abs_error = mx;
    if (se == 0.0) {
        st->relative_error_pct = 0.0;
        st->snr_db = INFINITY;
    } else if (sx == 0.0) {
        st->relative_error_pct = INFINITY;
        st->snr_db = -INFINITY;
    } else {
        st->relative_error_pct = 100.0 * sqrt(se / sx);
        st->snr_db = 10.0 * log10(sx / se);
    }
    return MSBNB_OK;
}

msbnb_status msbnb_estimate_quantization_error(const float *ref, const msbnb_qtensor *q, msbnb_error_stats *st) {
    RETURN_IF(!ref || !q || !st, MSBNB_ERR_INVALID_ARG, "NULL argument");
    size_t n = (size_t)q->v.rows * (size_t)q->v.cols;
    float *y = msbnb__alloc_aligned(n * sizeof(float));
    RETURN_IF(!y, MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate %zu floats", n);
    msbnb_status s = msbnb_dequantize(q, y);
    if (s == MSBNB_OK) s = msbnb_error_stats_compute(ref, y, n, st);
    msbnb__free_aligned(y);
    return s;
}

/* Bytes as stored by the tensor (and by any file written from its view): codes, float32 scales or
 * absmax, int32 zero points; with double quantization the uint8 statistic codes, the float32
 * nested absmax and the float32 offset. Code tables are shared and not counted. */
msbnb_status msbnb_get_quantization_info(const msbnb_qtensor *q, msbnb_quant_info *info) {
    RETURN_IF(!q || !info, MSBNB_ERR_INVALID_ARG, "NULL argument");
    const msbnb_qtensor_view *v = &q->v;
    info->type = v->type;
    info->rows = v->rows;
    info->cols = v->cols;
    info->blocksize = v->blocksize;
    info->group_size = v->group_size;
    info->double_quant = v->double_quant;
    info->asymmetric = v->asymmetric;
    info->per_row = v->per_row;
    info->data_bytes = v->data_bytes;
    size_t sb = 0;
    if (v->double_quant)
        sb = v->n_stats + v->n_nested * sizeof(float) + sizeof(float);
    else
        sb = v->n_stats * sizeof(float);
    if (v->zero_point) sb += v->n_stats * sizeof(int32_t);
    info->stats_bytes = sb;
    info->total_bytes = v->data_bytes + sb;
    double n = (double)v->rows * (double)v->cols;
    info->bits_per_weight = 8.0 * (double)info->total_bytes / n;
    info->compression_vs_f32 = 4.0 * n / (double)info->total_bytes;
    info->compression_vs_f16 = 2.0 * n / (double)info->total_bytes;
    return MSBNB_OK;
}
