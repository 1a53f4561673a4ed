/*
 * double_quant.c — double quantization of per-block statistics (bitsandbytes
 * quantize_4bit(compress_statistics=True)).
 *
 *   s             float32 [n]: the statistics (e.g. NF4 absmax, one per 64-element block)
 *   offset        float32: mean(s)
 *   q             uint8 [n]: BLOCKWISE8 codes of (s[i] - offset) with the signed dynamic map
 *   nested_absmax float32 [ceil(n/nested_bs)]
 * Dequantization (bitsandbytes dequantize_4bit): s[i] ≈ code[q[i]] * nested_absmax[i/nested_bs],
 * rounded to float32, then + offset in float32.
 *
 * The mean: bitsandbytes takes torch's float32 absmax.mean(). We sum in double precision in index
 * order and round (sum / n) once to float32: a fixed order independent of threads, at least as
 * accurate as torch's, and it reproduces ../shared/golden/bnb/dq_nf4_bs64_n20000.nested_offset.f32
 * bit for bit (as do a plain float32 8-lane sum and a pairwise sum; a sequential float32 sum does
 * not). Checkpoints store the offset, so loading never depends on this choice.
 */
#include "core/internal.h"
#include "quant/fourbit_internal.h"

msbnb_status msbnb_double_quantize(const float *s, size_t n, int nested_blocksize, uint8_t *q,
                                   float *nested_absmax, float *offset) {
    TRY(msbnb__check_blocksize(__func__, nested_blocksize, 64));
    RETURN_IF(n == 0, MSBNB_ERR_SHAPE, "n is 0");
    RETURN_IF(n > SIZE_MAX / sizeof(float), MSBNB_ERR_SHAPE, "n = %zu overflows", n);
    RETURN_IF(!s || !q || !nested_absmax || !offset, MSBNB_ERR_INVALID_ARG, "NULL buffer");

    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        RETURN_IF(!isfinite(s[i]), MSBNB_ERR_NUMERIC, "statistic %zu is not finite (%g)", i, (double)s[i]);
        sum += (double)s[i];
    }
    const float mean = (float)(sum / (double)n);
    msbnb__bw8_quantize_run(msbnb_dynamic_map_signed(), s, mean, n, (size_t)nested_blocksize, q, nested_absmax);
    *offset = mean;
    return MSBNB_OK;
}

msbnb_status msbnb_double_dequantize(const uint8_t *q, const float *nested_absmax, float offset,
                                     const float *nested_code, size_t n, int nested_blocksize, float *s) {
    TRY(msbnb__check_blocksize(__func__, nested_blocksize, 64));
    RETURN_IF(n == 0, MSBNB_ERR_SHAPE, "n is 0");
    RETURN_IF(n > SIZE_MAX / sizeof(float), MSBNB_ERR_SHAPE, "n = %zu overflows", n);
    RETURN_IF(!q || !nested_absmax || !s, MSBNB_ERR_INVALID_ARG, "NULL buffer");
    const float *code = nested_code ? nested_code : msbnb_dynamic_map_signed();
    msbnb__bw8_dequantize_run(code, q, nested_absmax, n, (size_t)nested_blocksize, s);
    for (size_t i = 0; i < n; i++) s[i] = s[i] + offset;
    return MSBNB_OK;
}
