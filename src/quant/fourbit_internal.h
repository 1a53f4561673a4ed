/*
 * fourbit_internal.h — shared inside quant/ for the bitsandbytes-compatible formats: NF4/FP4
 * (4-bit blockwise), BLOCKWISE8 (8-bit blockwise with a 256-entry map) and double quantization.
 *
 * The per-element rules live here as static inline functions so the scalar reference
 * (fourbit.c, blockwise8.c) and the tails of the SIMD translation units (x86/) run the very same
 * code. Every SIMD kernel is proven bit-identical to these rules by tests/quant.
 *
 * Numeric policy (the same for NF4, FP4 and BLOCKWISE8; see docs/formats_4bit.md):
 *  - absmax of a block = max |x| over its elements, NaN elements ignored, clamped to FLT_MAX
 *    (so a block holding ±Inf stores FLT_MAX and its ±Inf elements saturate to ±absmax);
 *    an all-NaN or all-zero block has absmax 0.
 *  - recip = 1.0f / absmax in float32 (bitsandbytes' kernel multiplies by this reciprocal);
 *    when that is not finite (absmax 0, or absmax < 2^-128 so the reciprocal overflows) recip = 0,
 *    so every element of the block scales to 0 and takes the code of 0.0.
 *  - scaled value s = x * recip in float32; a NaN s (only from a NaN x) is treated as 0.0.
 *  - the code of s is the CUDA kernel's decision: strict '>' against the sorted float32
 *    thresholds, which equals "number of thresholds strictly below s" (ties go to the lower code).
 */
#ifndef MSBNB_QUANT_FOURBIT_INTERNAL_H
#define MSBNB_QUANT_FOURBIT_INTERNAL_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include <msbnb/quant.h>

/* ---------------------------------------------------------------- tables (codebooks.c) */

/* NF4: 15 decision thresholds of bitsandbytes' dQuantizeNF4, sorted ascending; 16th entry is
 * +Inf padding so SIMD code can load 16 lanes. Code index = number of thresholds < s. */
extern const float msbnb__nf4_thresholds[16];
/* FP4 magnitudes: 7 thresholds of dQuantizeFP4 sorted ascending (+Inf padding to 8), and the map
 * from magnitude rank (0..7, ascending magnitude) to the 3-bit code (bit 3 is the sign). */
extern const float msbnb__fp4_thresholds[8];
extern const uint8_t msbnb__fp4_rank_to_code[8];

/* Code of 0.0 (odd-length padding, all-zero blocks, NaN inputs). */
#define MSBNB_NF4_ZERO_CODE 7
#define MSBNB_FP4_ZERO_CODE 0

/* ---------------------------------------------------------------- per-element rules */

/* recip of a block absmax, following the policy above. */
static inline float msbnb__block_recip(float absmax) {
    float r = 1.0f / absmax;
    return (r <= FLT_MAX) ? r : 0.0f; /* also false for NaN: never happens, absmax is not NaN */
}

/* absmax policy step for one element: NaN ignored (comparison false). */
static inline float msbnb__absmax_step(float m, float x) {
    float a = fabsf(x);
    return (a > m) ? a : m;
}
static inline float msbnb__absmax_finish(float m) { return m > FLT_MAX ? FLT_MAX : m; }

/* NF4 code of a scaled value: branchless binary search over the 15 sorted thresholds; it
 * returns #{t : t < s}, which is exactly the leaf the CUDA decision tree reaches. */
static inline unsigned msbnb__nf4_index(float s) {
    if (s != s) s = 0.0f;
    const float *t = msbnb__nf4_thresholds;
    unsigned r = (s > t[7]) ? 8u : 0u;
    r += (s > t[r + 3]) ? 4u : 0u;
    r += (s > t[r + 1]) ? 2u : 0u;
    r += (s > t[r]) ? 1u : 0u;
    return r;
}

/* FP4 code of a scaled value: sign bit 3 set for s < 0 (so -0.0 and NaN get +), magnitude
 * rank by strict '>' against the 7 sorted magnitude thresholds, then the FP4 bit pattern. */
static inline unsigned msbnb__fp4_index(float s) {
    if (s != s) s = 0.0f;
    unsigned sign = (s < 0.0f) ? 8u : 0u;
    float a = fabsf(s);
    const float *t = msbnb__fp4_thresholds;
    unsigned r = (a > t[3]) ? 4u : 0u;
    r += (a > t[r + 1]) ? 2u : 0u;
    r += (a > t[r]) ? 1u : 0u;
    return (unsigned)msbnb__fp4_rank_to_code[r] | sign;
}

/* BLOCKWISE8 code of a scaled value in a sorted 256-entry map: bitsandbytes' dQuantize<0>.
 * Its seven halving steps from pivot 127 compare s with the odd entries 127, 127±64, ... and land
 * on the even index p = 2c, where c = #{odd i in [1, 253] : code[i] < s} — written here as the
 * same search in branch-free form (c grows by 64, 32, ..., 1; the pivot is 2(c+step)-1). The
 * last pivots compared from below and above are p-1 and p+1 (0 and 255 at the ends), so s goes to
 * the nearer of p and its neighbour on s's side, the midpoint (a+b)*0.5f computed in float32 and
 * a tie staying on p. NaN s is treated as 0. */
static inline unsigned msbnb__bw8_index(const float *code, float s) {
    if (s != s) s = 0.0f;
    unsigned c = 0;
    for (unsigned step = 64; step > 0; step >>= 1) c += step & (0u - (unsigned)(s > code[2 * (c + step) - 1]));
    const unsigned p = 2 * c;
    const float v = code[p];
    /* Also branch-free: a mispredicted branch here would wait for the whole search chain. */
    const unsigned up = (unsigned)(s > v);
    const unsigned t = p + 2 * up;
    const unsigned nb = t - (unsigned)(t != 0); /* the neighbour on s's side: p+1, p-1, or 0 */
    const float mid = (code[nb] + v) * 0.5f;
    const unsigned take = (up & (unsigned)(s > mid)) | ((up ^ 1u) & (unsigned)(s < mid));
    return p ^ ((p ^ nb) & (0u - take));
}

/* ---------------------------------------------------------------- one block, scalar */
/* The reference kernels are loops over these; SIMD kernels call them for a partial last block. */

/* Quantize one NF4/FP4 block xb [len] (len <= bs, even unless it is the last block) into
 * pb [(len+1)/2]; returns its absmax. */
static inline float msbnb__q4_quantize_block(int is_fp4, const float *xb, size_t len, uint8_t *pb) {
    float m = 0.0f;
    for (size_t i = 0; i < len; i++) m = msbnb__absmax_step(m, xb[i]);
    m = msbnb__absmax_finish(m);
    const float r = msbnb__block_recip(m);
    size_t i = 0;
    for (; i + 1 < len; i += 2) {
        unsigned hi = is_fp4 ? msbnb__fp4_index(xb[i] * r) : msbnb__nf4_index(xb[i] * r);
        unsigned lo = is_fp4 ? msbnb__fp4_index(xb[i + 1] * r) : msbnb__nf4_index(xb[i + 1] * r);
        pb[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    if (i < len) { /* odd length: pad the low nibble with the code of 0.0 */
        unsigned hi = is_fp4 ? msbnb__fp4_index(xb[i] * r) : msbnb__nf4_index(xb[i] * r);
        pb[i / 2] = (uint8_t)(hi << 4 | (is_fp4 ? MSBNB_FP4_ZERO_CODE : MSBNB_NF4_ZERO_CODE));
    }
    return m;
}

/* yb [len] = code16[nibble] * m for the nibbles of pb (element 2i in the high nibble). */
static inline void msbnb__q4_dequantize_block(const float *code16, const uint8_t *pb, float m, size_t len,
                                              float *yb) {
    for (size_t i = 0; i < len; i++) {
        unsigned c = (i & 1) ? (pb[i / 2] & 15u) : (pb[i / 2] >> 4);
        yb[i] = code16[c] * m;
    }
}

/* BLOCKWISE8: quantize (xb[i] - offset) for one block into qb [len]; returns its absmax. */
static inline float msbnb__bw8_quantize_block(const float *code256, const float *xb, float offset, size_t len,
                                              uint8_t *qb) {
    float m = 0.0f;
    for (size_t i = 0; i < len; i++) m = msbnb__absmax_step(m, xb[i] - offset);
    m = msbnb__absmax_finish(m);
    const float r = msbnb__block_recip(m);
    for (size_t i = 0; i < len; i++) qb[i] = (uint8_t)msbnb__bw8_index(code256, (xb[i] - offset) * r);
    return m;
}

static inline void msbnb__bw8_dequantize_block(const float *code256, const uint8_t *qb, float m, size_t len,
                                               float *yb) {
    for (size_t i = 0; i < len; i++) yb[i] = code256[qb[i]] * m;
}

/* ---------------------------------------------------------------- kernels per ISA */
/* A kernel handles a run of whole blocks starting at a block boundary: x/y [n] (n elements, the
 * last block may be partial), packed [(n+1)/2] or q [n], absmax [ceil(n/bs)]. Arguments are
 * validated by the public functions; kernels never fail and never allocate. */

typedef void (*msbnb__q4_quant_fn)(int is_fp4, const float *x, size_t n, size_t bs, uint8_t *packed,
                                   float *absmax);
/* nt: use non-temporal (streaming) stores for y; only passed when y is 64-byte aligned and the
 * whole output is much larger than the caches (see msbnb__use_nt_stores). Same values either way. */
typedef void (*msbnb__q4_dequant_fn)(const float *code16, const uint8_t *packed, const float *absmax,
                                     size_t n, size_t bs, float *y, int nt);
/* BLOCKWISE8 quantizes (x[i] - offset) in float32; offset 0 for plain use (x - 0.0f == x). */
typedef void (*msbnb__bw8_quant_fn)(const float *code256, const float *x, float offset, size_t n, size_t bs,
                                    uint8_t *q, float *absmax);
typedef void (*msbnb__bw8_dequant_fn)(const float *code256, const uint8_t *q, const float *absmax, size_t n,
                                      size_t bs, float *y);

void msbnb__q4_quantize_ref(int is_fp4, const float *x, size_t n, size_t bs, uint8_t *packed, float *absmax);
void msbnb__q4_dequantize_ref(const float *code16, const uint8_t *packed, const float *absmax, size_t n,
                              size_t bs, float *y, int nt);
void msbnb__bw8_quantize_ref(const float *code256, const float *x, float offset, size_t n, size_t bs, uint8_t *q,
                             float *absmax);
void msbnb__bw8_dequantize_ref(const float *code256, const uint8_t *q, const float *absmax, size_t n, size_t bs,
                               float *y);

#if defined(__x86_64__) || defined(_M_X64)
void msbnb__q4_quantize_avx2(int is_fp4, const float *x, size_t n, size_t bs, uint8_t *packed, float *absmax);
void msbnb__q4_dequantize_avx2(const float *code16, const uint8_t *packed, const float *absmax, size_t n,
                               size_t bs, float *y, int nt);
void msbnb__q4_quantize_avx512(int is_fp4, const float *x, size_t n, size_t bs, uint8_t *packed, float *absmax);
void msbnb__q4_dequantize_avx512(const float *code16, const uint8_t *packed, const float *absmax, size_t n,
                                 size_t bs, float *y, int nt);
void msbnb__bw8_quantize_avx2(const float *code256, const float *x, float offset, size_t n, size_t bs, uint8_t *q,
                              float *absmax);
void msbnb__bw8_dequantize_avx512(const float *code256, const uint8_t *q, const float *absmax, size_t n,
                                  size_t bs, float *y);
void msbnb__bw8_quantize_avx512(const float *code256, const float *x, float offset, size_t n, size_t bs,
                                uint8_t *q, float *absmax);
#endif

/* ---------------------------------------------------------------- shared drivers */

/* BLOCKWISE8 over all blocks of n elements with OpenMP and the best ISA; arguments already
 * validated. quantize_run quantizes (x - offset) (double quantization passes the mean). */
void msbnb__bw8_quantize_run(const float *code, const float *x, float offset, size_t n, size_t bs, uint8_t *q,
                             float *absmax);
void msbnb__bw8_dequantize_run(const float *code, const uint8_t *q, const float *absmax, size_t n, size_t bs,
                               float *y);

/* ---------------------------------------------------------------- shared validation */

/* blocksize a power of two in [lo, 4096]; records a message naming the caller. */
msbnb_status msbnb__check_blocksize(const char *func, int blocksize, int lo);

/* Streaming stores pay off when the output cannot stay in the caches anyway (a dequantized weight
 * matrix of tens of MB); below 16 MiB, or when y is not 64-byte aligned, plain stores are used. */
static inline int msbnb__use_nt_stores(const void *y, size_t bytes) {
    return bytes >= ((size_t)16 << 20) && ((uintptr_t)y & 63) == 0;
}

/* Blocks per parallel chunk so that a chunk holds about 64K elements (whole blocks). */
static inline size_t msbnb__blocks_per_chunk(size_t bs) {
    size_t b = ((size_t)1 << 16) / bs;
    return b ? b : 1;
}

#endif /* MSBNB_QUANT_FOURBIT_INTERNAL_H */
