/*
 * fourbit.c — NF4 / FP4 blockwise quantization (bitsandbytes quantize_4bit / dequantize_4bit).
 *
 * Layout (flat n elements, blocks of bs over the flattened tensor):
 *   x, y    float32 [n]
 *   packed  uint8 [(n+1)/2]: byte i = code(x[2i]) << 4 | code(x[2i+1]); odd n pads the last low
 *           nibble with the code of 0.0 (NF4 7, FP4 0)
 *   absmax  float32 [ceil(n/bs)], the last block partial
 * Codes follow bitsandbytes' CUDA kernel kQuantizeBlockwise (csrc/kernels.cu): s = x * (1/absmax)
 * in float32, then dQuantizeNF4/dQuantizeFP4 — see fourbit_internal.h for the rules and the
 * non-finite policy. Dequantization is y = code[c] * absmax (kDequantizeBlockwise).
 *
 * Blocks are independent, so the work is split in chunks of whole blocks over OpenMP threads;
 * every chunk writes its own bytes and absmax entries, and the result does not depend on the
 * thread count or the ISA level.
 */
#include "core/internal.h"
#include "quant/fourbit_internal.h"


/* ---------------------------------------------------------------- validation */

msbnb_status msbnb__check_blocksize(const char *func, int blocksize, int lo) {
    if (blocksize < lo || blocksize > 4096 || (blocksize & (blocksize - 1)) != 0)
        return msbnb__fail(MSBNB_ERR_INVALID_ARG, func, "blocksize %d is not a power of two in [%d, 4096]",
                           blocksize, lo);
    return MSBNB_OK;
}

/* Common checks of the flat 4-bit functions: type, blocksize, n, pointers. */
static msbnb_status check_4bit_args(const char *func, msbnb_qtype type, size_t n, int blocksize, const void *a,
                                    const void *b, const void *c) {
    if (type != MSBNB_QTYPE_NF4 && type != MSBNB_QTYPE_FP4)
        return msbnb__fail(MSBNB_ERR_INVALID_ARG, func, "type %d is not NF4 or FP4", (int)type);
    TRY(msbnb__check_blocksize(func, blocksize, 32));
    if (n == 0) return msbnb__fail(MSBNB_ERR_SHAPE, func, "n is 0");
    /* n floats must be addressable; this also keeps (n+1)/2 and block counts from overflowing. */
    if (n > SIZE_MAX / sizeof(float)) return msbnb__fail(MSBNB_ERR_SHAPE, func, "n = %zu overflows", n);
    if (!a || !b || !c) return msbnb__fail(MSBNB_ERR_INVALID_ARG, func, "NULL buffer");
    return MSBNB_OK;
}

/* ---------------------------------------------------------------- scalar reference */

void msbnb__q4_quantize_ref(int is_fp4, const float *x, size_t n, size_t bs, uint8_t *packed, float *absmax) {
    /* bs is even, so every block starts on a byte of packed */
    for (size_t b0 = 0, blk = 0; b0 < n; b0 += bs, blk++)
        absmax[blk] = msbnb__q4_quantize_block(is_fp4, x + b0, (n - b0 < bs) ? n - b0 : bs, packed + b0 / 2);
}

void msbnb__q4_dequantize_ref(const float *code16, const uint8_t *packed, const float *absmax, size_t n,
                              size_t bs, float *y, int nt) {
    (void)nt; /* plain C stores */
    for (size_t b0 = 0, blk = 0; b0 < n; b0 += bs, blk++)
        msbnb__q4_dequantize_block(code16, packed + b0 / 2, absmax[blk], (n - b0 < bs) ? n - b0 : bs, y + b0);
}

/* ---------------------------------------------------------------- dispatch */

static msbnb__q4_quant_fn pick_quant(void) {
#if MSBNB_HAVE_X86
    msbnb_isa isa = msbnb__isa();
    if (isa >= MSBNB_ISA_AVX512) return msbnb__q4_quantize_avx512;
    if (isa >= MSBNB_ISA_AVX2) return msbnb__q4_quantize_avx2;
#endif
    return msbnb__q4_quantize_ref;
}

static msbnb__q4_dequant_fn pick_dequant(void) {
#if MSBNB_HAVE_X86
    msbnb_isa isa = msbnb__isa();
    if (isa >= MSBNB_ISA_AVX512) return msbnb__q4_dequantize_avx512;
    if (isa >= MSBNB_ISA_AVX2) return msbnb__q4_dequantize_avx2;
#endif
    return msbnb__q4_dequantize_ref;
}

/* ---------------------------------------------------------------- public API */

msbnb_status msbnb_quantize_4bit_blockwise(msbnb_qtype type, const float *x, size_t n, int blocksize,
                                           uint8_t *packed, float *absmax) {
    TRY(check_4bit_args(__func__, type, n, blocksize, x, packed, absmax));
    const int is_fp4 = type == MSBNB_QTYPE_FP4;
    const size_t bs = (size_t)blocksize;
    const size_t nblocks = n / bs + (n % bs != 0);
    const size_t per = msbnb__blocks_per_chunk(bs);
    const ptrdiff_t nchunks = (ptrdiff_t)((nblocks + per - 1) / per);
    const msbnb__q4_quant_fn fn = pick_quant();

#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (nchunks > 1)
    for (ptrdiff_t c = 0; c < nchunks; c++) {
        size_t b = (size_t)c * per;                    /* first block of the chunk */
        size_t e0 = b * bs;                            /* its first element        */
        size_t len = (nblocks - b < per) ? n - e0 : per * bs;
        fn(is_fp4, x + e0, len, bs, packed + e0 / 2, absmax + b);
    }
    return MSBNB_OK;
}

msbnb_status msbnb_dequantize_4bit_blockwise(msbnb_qtype type, const uint8_t *packed, const float *absmax,
                                             size_t n, int blocksize, float *y) {
    TRY(check_4bit_args(__func__, type, n, blocksize, packed, absmax, y));
    const float *code = type == MSBNB_QTYPE_FP4 ? msbnb_fp4_code() : msbnb_nf4_code();
    const size_t bs = (size_t)blocksize;
    const size_t nblocks = n / bs + (n % bs != 0);
    const size_t per = msbnb__blocks_per_chunk(bs);
    const ptrdiff_t nchunks = (ptrdiff_t)((nblocks + per - 1) / per);
    const msbnb__q4_dequant_fn fn = pick_dequant();
    const int nt = msbnb__use_nt_stores(y, n * sizeof(float));

#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (nchunks > 1)
    for (ptrdiff_t c = 0; c < nchunks; c++) {
        size_t b = (size_t)c * per;
        size_t e0 = b * bs;
        size_t len = (nblocks - b < per) ? n - e0 : per * bs;
        fn(code, packed + e0 / 2, absmax + b, len, bs, y + e0, nt);
    }
    return MSBNB_OK;
}
