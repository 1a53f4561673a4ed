/*
 * blockwise8.c — 8-bit blockwise quantization with a sorted 256-entry map (bitsandbytes
 * quantize_blockwise / dequantize_blockwise).
 *
 * Layout (flat n elements, blocks of bs):
 *   x, y    float32 [n]
 *   q       uint8 [n], an index into the map
 *   absmax  float32 [ceil(n/bs)], the last block partial
 *   code    float32 [256], sorted ascending (default: the signed dynamic map)
 * Codes follow the CUDA kernel kQuantizeBlockwise with dQuantize<0> (exact nearest entry by binary
 * search, midpoints in float32; see msbnb__bw8_index), on s = x * (1/absmax); the non-finite
 * policy is the one of fourbit_internal.h. Dequantization is y = code[q] * absmax.
 */
#include "core/internal.h"
#include "quant/fourbit_internal.h"

/* ---------------------------------------------------------------- validation */

static msbnb_status check_map(const char *func, const float *code) {
    /* the built-in maps are known good; callers like 8-bit AdamW pass them for every block */
    if (code == msbnb_dynamic_map_signed() || code == msbnb_dynamic_map_unsigned()) return MSBNB_OK;
    for (int i = 0; i < 256; i++)
        if (code[i] != code[i])
            return msbnb__fail(MSBNB_ERR_INVALID_ARG, func, "code map entry %d is NaN", i);
    for (int i = 1; i < 256; i++)
        if (!(code[i - 1] <= code[i]))
            return msbnb__fail(MSBNB_ERR_INVALID_ARG, func, "code map is not sorted at entry %d", i);
    return MSBNB_OK;
}

/* code is validated (sorted, no NaN) only when quantizing: dequantization takes any map. */
static msbnb_status check_bw8_args(const char *func, const float *code, int check_code, size_t n, int blocksize,
                                   const void *a, const void *b, const void *c) {
    TRY(msbnb__check_blocksize(func, blocksize, 64));
    if (n == 0) return msbnb__fail(MSBNB_ERR_SHAPE, func, "n is 0");
    if (n > SIZE_MAX / sizeof(float)) return msbnb__fail(MSBNB_ERR_SHAPE, func, "n = %zu overflows", n);
    if (!a || !b || !c) return msbnb__fail(MSBNB_ERR_INVALID_ARG, func, "NULL buffer");
    if (code && check_code) TRY(check_map(func, code));
    return MSBNB_OK;
}

/* ---------------------------------------------------------------- scalar reference */

void msbnb__bw8_quantize_ref(const float *code256, const float *x, float offset, size_t n, size_t bs, uint8_t *q,
                             float *absmax) {
    for (size_t b0 = 0, blk = 0; b0 < n; b0 += bs, blk++)
        absmax[blk] = msbnb__bw8_quantize_block(code256, x + b0, offset, (n - b0 < bs) ? n - b0 : bs, q + b0);
}

void msbnb__bw8_dequantize_ref(const float *code256, const uint8_t *q, const float *absmax, size_t n, size_t bs,
                               float *y) {
    for (size_t b0 = 0, blk = 0; b0 < n; b0 += bs, blk++)
        msbnb__bw8_dequantize_block(code256, q + b0, absmax[blk], (n - b0 < bs) ? n - b0 : bs, y + b0);
}

static msbnb__bw8_quant_fn pick_quant(void) {
#if MSBNB_HAVE_X86
    msbnb_isa isa = msbnb__isa();
    if (isa >= MSBNB_ISA_AVX512) return msbnb__bw8_quantize_avx512;
    if (isa >= MSBNB_ISA_AVX2) return msbnb__bw8_quantize_avx2;
#endif
    return msbnb__bw8_quantize_ref;
}

static msbnb__bw8_dequant_fn pick_dequant(void) {
#if MSBNB_HAVE_X86
    /* AVX2 has no variant: gathers lose to the scalar loop; AVX-512 holds the map in registers */
    if (msbnb__isa() >= MSBNB_ISA_AVX512) return msbnb__bw8_dequantize_avx512;
#endif
    return msbnb__bw8_dequantize_ref;
}

/* ---------------------------------------------------------------- shared drivers */

void msbnb__bw8_quantize_run(const float *code, const float *x, float offset, size_t n, size_t bs, uint8_t *q,
                             float *absmax) {
    const size_t nblocks = n / bs + (n % bs != 0);
    const size_t per = msbnb__blocks_per_chunk(bs);
    const ptrdiff_t nchunks = (ptrdiff_t)((nblocks + per - 1) / per);
    const msbnb__bw8_quant_fn fn = pick_quant();
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (nchunks > 1)
    for (ptrdiff_t c = 0; c < nchunks; c++) {
        size_t b = (size_t)c * per;
        size_t e0 = b * bs;
        size_t len = (nblocks - b < per) ? n - e0 : per * bs;
        fn(code, x + e0, offset, len, bs, q + e0, absmax + b);
    }
}

void msbnb__bw8_dequantize_run(const float *code, const uint8_t *q, const float *absmax, size_t n, size_t bs,
                               float *y) {
    const size_t nblocks = n / bs + (n % bs != 0);
    const size_t per = msbnb__blocks_per_chunk(bs);
    const ptrdiff_t nchunks = (ptrdiff_t)((nblocks + per - 1) / per);
    const msbnb__bw8_dequant_fn fn = pick_dequant();
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (nchunks > 1)
    for (ptrdiff_t c = 0; c < nchunks; c++) {
        size_t b = (size_t)c * per;
        size_t e0 = b * bs;
        size_t len = (nblocks - b < per) ? n - e0 : per * bs;
        fn(code, q + e0, absmax + b, len, bs, y + e0);
    }
}

/* ---------------------------------------------------------------- public API */

msbnb_status msbnb_quantize_blockwise8(const float *code, const float *x, size_t n, int blocksize, uint8_t *q,
                                       float *absmax) {
    TRY(check_bw8_args(__func__, code, 1, n, blocksize, x, q, absmax));
    msbnb__bw8_quantize_run(code ? code : msbnb_dynamic_map_signed(), x, 0.0f, n, (size_t)blocksize, q, absmax);
    return MSBNB_OK;
}

msbnb_status msbnb_dequantize_blockwise8(const float *code, const uint8_t *q, const float *absmax, size_t n,
                                         int blocksize, float *y) {
    TRY(check_bw8_args(__func__, code, 0, n, blocksize, q, absmax, y));
    msbnb__bw8_dequantize_run(code ? code : msbnb_dynamic_map_signed(), q, absmax, n, (size_t)blocksize, y);
    return MSBNB_OK;
}
