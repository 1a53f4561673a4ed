/*
 * qtensor_internal.h — the layout of msbnb_qtensor, shared by quant/, kernels/, nn/ and io/.
 *
 * The public view (msbnb_qtensor_view in quant.h) documents every buffer's shape; this struct
 * owns those buffers. `v` always points into the owned buffers below, so kernels read `q->v`.
 */
#ifndef MSBNB_QUANT_QTENSOR_INTERNAL_H
#define MSBNB_QUANT_QTENSOR_INTERNAL_H

#include <msbnb/quant.h>

struct msbnb_qtensor {
    msbnb_qtensor_view v; /* read-only description; pointers alias the fields below */

    uint8_t *data;        /* codes, v.data_bytes bytes (64-byte aligned)                */
    float *stats;         /* v.n_stats floats, or NULL when double_quant                 */
    int32_t *zero_point;  /* INT8 asymmetric only                                        */
    float code[256];      /* code table (16 used for NF4/FP4)                            */
    uint8_t *stats_q;     /* double quant: [n_stats]                                      */
    float *nested_absmax; /* double quant: [n_nested]                                     */
    float nested_code[256];

    /* Optional kernel-friendly copy of the weights made by kernels/ (e.g. interleaved nibbles
     * for the fused products). Owned by the tensor, released with kernel_pack_free. */
    void *kernel_pack;
    size_t kernel_pack_bytes;
    void (*kernel_pack_free)(void *);
};

/* ---------------------------------------------------------------- helpers (quant/qtensor.c) */

/* The float32 statistics of q: q->v.stats, or (double quant) a malloc'ed dequantized copy that
 * the caller frees through *owned (NULL when nothing was allocated). */
msbnb_status msbnb__qtensor_resolve_stats(const msbnb_qtensor *q, const float **stats, float **owned);
/* Dequantize rows [row0, row0+nrows) into y [nrows, cols] with resolved statistics; arguments
 * already validated. */
msbnb_status msbnb__qtensor_dequantize_rows(const msbnb_qtensor *q, const float *stats, int64_t row0, int64_t nrows,
                                            float *y);

#endif
