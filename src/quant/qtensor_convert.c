/*
 * qtensor_convert.c — fp16 / bf16 entry points of the functional API.
 *
 * msbnb_quantize_ex widens the input to float32 first (exact: every fp16/bf16 value is a float),
 * so codes equal those of the float32 path, as in bitsandbytes where kernels compute in float.
 * msbnb_dequantize_ex computes the float32 result exactly as msbnb_dequantize and rounds it to
 * nearest even (NaN stays NaN, overflow -> ±Inf), which is what bitsandbytes' dequantize to
 * fp16/bf16 does (fp32 math, then .to(dtype)). It works through row chunks of ~64K elements so
 * the float32 scratch stays small. The rounding uses the vector converters of int_avx2.c /
 * int_avx512.c (F16C vcvtps2ph, integer RNE for bf16), checked equal to msbnb_f32_to_f16 /
 * msbnb_f32_to_bf16 on all 2^32 inputs once, and on a sweep by tests/quant/test_qtensor.c.
 */
#include "quant/int_internal.h"
#include "quant/qtensor_internal.h"

#include <stdlib.h>

static msbnb_status check_dtype(const char *fn, msbnb_dtype d) {
    if (d != MSBNB_DTYPE_F32 && d != MSBNB_DTYPE_F16 && d != MSBNB_DTYPE_BF16)
        return msbnb__fail(MSBNB_ERR_INVALID_ARG, fn, "dtype %d is not f32, f16 or bf16", (int)d);
    return MSBNB_OK;
}

msbnb_status msbnb_quantize_ex(const void *w, msbnb_dtype dtype, int64_t rows, int64_t cols,
                               const msbnb_quant_config *cfg, msbnb_qtensor **out) {
    RETURN_IF(!w || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    TRY(check_dtype(__func__, dtype));
    if (dtype == MSBNB_DTYPE_F32) return msbnb_quantize((const float *)w, rows, cols, cfg, out);
    size_t n;
    TRY(msbnb__check_matrix_shape(__func__, rows, cols, &n));
    float *x = msbnb__alloc_aligned(n * sizeof(float));
    RETURN_IF(!x, MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate %zu floats", n);
    const uint16_t *h = (const uint16_t *)w;
    int bf = dtype == MSBNB_DTYPE_BF16;
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static)
    for (int64_t i = 0; i < (int64_t)n; i++) x[i] = bf ? msbnb_bf16_to_f32(h[i]) : msbnb_f16_to_f32(h[i]);
    msbnb_status st = msbnb_quantize(x, rows, cols, cfg, out);
    msbnb__free_aligned(x);
    return st;
}

msbnb_status msbnb_dequantize_ex(const msbnb_qtensor *q, msbnb_dtype dtype, void *out) {
    RETURN_IF(!q || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    TRY(check_dtype(__func__, dtype));
    if (dtype == MSBNB_DTYPE_F32) return msbnb_dequantize(q, (float *)out);
    const int64_t rows = q->v.rows, cols = q->v.cols;
    int64_t chunk = ((int64_t)1 << 16) / cols;
    if (chunk < 1) chunk = 1;
    if (chunk > rows) chunk = rows;
    float *tmp = msbnb__alloc_aligned((size_t)(chunk * cols) * sizeof(float));
    RETURN_IF(!tmp, MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate %lld floats", (long long)(chunk * cols));
    const float *stats;
    float *owned;
    msbnb_status st = msbnb__qtensor_resolve_stats(q, &stats, &owned);
    uint16_t *h = (uint16_t *)out;
    int bf = dtype == MSBNB_DTYPE_BF16;
    const msbnb__int_kernels *k = msbnb__int_kernels_get();
    for (int64_t r = 0; st == MSBNB_OK && r < rows; r += chunk) {
        int64_t nr = rows - r < chunk ? rows - r : chunk;
        st = msbnb__qtensor_dequantize_rows(q, stats, r, nr, tmp);
        k->f32_to_half(tmp, nr * cols, h + r * cols, bf); /* ~64K elements: L2-resident, one thread */
    }
    free(owned);
    msbnb__free_aligned(tmp);
    return st;
}
