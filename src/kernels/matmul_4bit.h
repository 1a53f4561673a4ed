/*
 * matmul_4bit.h — the fused 4-bit products (NF4, FP4, INT4; plain or double-quantized statistics)
 * shared by the scalar reference (matmul_4bit_ref.c, the specification) and the x86 translation
 * units (x86/matmul_4bit_*.c). kernels/ only.
 *
 * Every 4-bit format reads the same way: element (r, k) of W [rows, cols] is
 *     w(r, k) = table[nibble(r, k)] * scale(r, k)
 * with
 *   NF4/FP4  nibble from the FLAT index f = r*cols + k (byte f/2, high nibble when f is even),
 *            table = the tensor's 16-entry code, scale = absmax of flat block f / blocksize
 *            (bitsandbytes: code[q] * absmax). A block may straddle two rows when cols % blocksize
 *            != 0.
 *   INT4     nibble from byte r*(cols/2) + k/2 (high nibble when k is even), table = the two's
 *            complement values {0..7, -8..-1}, scale = scales[(k/group) * rows + r].
 *   double-quantized statistics: scale index i -> nested_code[stats_q[i]] * nested_absmax[i/256]
 *            + offset, evaluated in float32 in exactly that order (bitsandbytes'
 *            dequantize_blockwise then `absmax += offset`), so fused values equal
 *            msbnb_dequantize's bit for bit.
 */
#ifndef MSBNB_KERNELS_MATMUL_4BIT_H
#define MSBNB_KERNELS_MATMUL_4BIT_H

#include "core/internal.h"
#include "kernels/kernels_internal.h"

/* A 4-bit weight as the kernels see it (filled by msbnb__w4_init from a qtensor; borrowed
 * pointers into the tensor). */
typedef struct msbnb__w4 {
    const uint8_t *data;    /* packed nibbles, see above                                   */
    int64_t rows, cols;     /* W is [rows = out, cols = in]                                */
    int flat_blocks;        /* 1: NF4/FP4 (blocks over the flat index), 0: INT4 (groups)   */
    int64_t block;          /* blocksize (NF4/FP4) or group_size (INT4)                     */
    const float *stats;     /* plain statistics, or NULL when double-quantized             */
    const uint8_t *stats_q; /* double quant: [n_stats] codes into nested_code               */
    const float *nested_absmax;
    const float *nested_code;
    float nested_offset;
    int64_t nested_block;
    int nested_shift;       /* log2(nested_block) when a power of two (always, for bnb), else -1 */
    float table[16];        /* value of each nibble before scaling                         */
    /* double quant only: dq_planes[b][q] = byte b (little-endian) of nested_code[q]'s bits, the
     * layout of the byte-lookup decoder of x86/dq_scales_avx512.c; zero otherwise */
    uint8_t dq_planes[4][256];
} msbnb__w4;

/* Fill *w from a NF4 / FP4 / INT4 tensor (the caller checked the type). */
void msbnb__w4_init(const msbnb_qtensor *W, msbnb__w4 *w);

/* Scale statistic number i (flat block or INT4 group entry), dequantizing it when double-quantized. */
static inline float msbnb__w4_stat(const msbnb__w4 *w, int64_t i) {
    if (w->stats) return w->stats[i];
    int64_t nb = w->nested_shift >= 0 ? i >> w->nested_shift : i / w->nested_block;
    float s = w->nested_code[w->stats_q[i]] * w->nested_absmax[nb];
    return s + w->nested_offset;
}

/* Plain INT4 statistics are [groups][rows]: a kernel walking one row at a time reads one entry
 * from each group's column, `groups` slow streams that the hardware prefetchers do not follow
 * (16 rows share each line). Called for every row: at the start of each 16-row span it fetches
 * the lines of rows [row + 16, row + 32) of every group (two prefetches cover the span whatever its
 * alignment). Addresses are formed as integers: they may lie past the statistics, which
 * prefetching tolerates. */
static inline void msbnb__w4_prefetch_group_stats(const msbnb__w4 *w, int64_t row) {
    if (w->flat_blocks || !w->stats || (row & 15)) return;
    const int64_t groups = w->cols / w->block;
    for (int64_t g = 0; g < groups; g++) {
        const uintptr_t p = (uintptr_t)w->stats + (uintptr_t)(g * w->rows + row + 16) * sizeof(float);
        __builtin_prefetch((const void *)p);
        __builtin_prefetch((const void *)(p + 15 * sizeof(float)));
    }
}

/* Index of the statistic that scales element (r, k). */
static inline int64_t msbnb__w4_stat_index(const msbnb__w4 *w, int64_t r, int64_t k) {
    if (w->flat_blocks) return (r * w->cols + k) / w->block;
    return (k / w->block) * w->rows + r;
}

/* Nibble of element (r, k). */
static inline unsigned msbnb__w4_nibble(const msbnb__w4 *w, int64_t r, int64_t k) {
    int64_t f = r * w->cols + k; /* also right for INT4: cols is even, rows hold cols/2 bytes */
    uint8_t b = w->data[f / 2];
    return (f % 2 == 0) ? (unsigned)(b >> 4) : (unsigned)(b & 0xFu);
}

/* Scalar decode of the tile W[r0 .. r0+nr, k0 .. k0+kc) into out [nr][ld] float32 (natural k
 * order), each value exactly msbnb_dequantize's. Used by the reference and by the SIMD units for
 * shapes their fast decoders do not cover. */
void msbnb__w4_decode_ref(const msbnb__w4 *w, int64_t r0, int64_t nr, int64_t k0, int64_t kc, float *out,
                          int64_t ld);

/* ---------------------------------------------------------------- products per ISA */
/* Arguments validated by matmul.c: X [n, cols], Y [n, rows], bias [rows] or NULL; dY [n, rows],
 * dX [n, cols]. Return OK or OUT_OF_MEMORY (tile scratch). */

/* Reference: sequential float32 sum over k of x * w (no FMA), then + bias; precision ignored. */
msbnb_status msbnb__matmul_4bit_ref(const msbnb__w4 *w, const float *X, int64_t n, const float *bias, float *Y,
                                    msbnb_precision precision);
/* Reference transposed: dX[i, k] = (accumulate ? dX[i, k] : 0) + sequential sum over o of dY[i, o] * w. */
msbnb_status msbnb__matmul_4bit_t_ref(const msbnb__w4 *w, const float *dY, int64_t n, float *dX, int accumulate);

/* ---------------------------------------------------------------- bf16 numerics (matmul_bf16.c) */
/* Products with every operand rounded to bf16 and fp32 accumulation (bf16 training): native bf16
 * where the CPU has it, else the same numbers from the fp32 engines. Contracts as above. */
msbnb_status msbnb__matmul_4bit_bf16(const msbnb__w4 *w, const float *X, int64_t n, const float *bias, float *Y);
msbnb_status msbnb__matmul_4bit_t_bf16(const msbnb__w4 *w, const float *dY, int64_t n, float *dX, int accumulate);
/* x[i] rounded to the nearest bf16 value (ties to even, as msbnb_f32_to_bf16), kept as float. */
void msbnb__bf16_round_array(float *x, int64_t count);

/* ---------------------------------------------------------------- tiled products (SIMD levels) */
/* The SIMD levels share one plain-C driver (matmul_4bit_tiled.c) that owns tiling, threads and
 * scratch; each ISA unit supplies the inner kernels below. Per-element arithmetic never depends
 * on the tile or thread a value falls in, so results are identical for every thread count.
 * Layouts: X [n][ldx], Y [n][ldy], Wt [nr][ldw] = decoded rows of W (natural k order). */
typedef struct msbnb__mm4_kernels {
    /* Optional whole product for tiny n (token generation), EXACT values: returns
     * MSBNB_ERR_UNSUPPORTED (no message) for shapes it does not cover, then the tiles run. Which
     * kernel runs depends only on n and W's shape, never on the thread count. */
    msbnb_status (*small_n)(const msbnb__w4 *w, const float *X, int64_t n, const float *bias, float *Y);
    /* Optional whole product for tiny n in FAST precision (int8 activations, see
     * x86/matmul_4bit_avx512vnni.c); same contract as small_n. Tried before small_n. */
    msbnb_status (*small_n_fast)(const msbnb__w4 *w, const float *X, int64_t n, const float *bias, float *Y);
    /* decode W[r0 .. r0+nr, k0 .. k0+kc) into out [nr][ld] float32, values exactly
     * msbnb__w4_decode_ref's (k0 and kc multiples of 32 except at the end of a row). */
    void (*decode)(const msbnb__w4 *w, int64_t r0, int64_t nr, int64_t k0, int64_t kc, float *out, int64_t ld);
    /* Y[i, j] = (first ? 0 : Y[i, j]) + sum_k X[i, k] * Wt[j, k] for i < n, j < nr, k < kc
     * (k summed in 16 (or 8) strided lanes with FMA, lanes reduced by a fixed tree). */
    void (*block)(const float *X, int64_t ldx, int64_t n, const float *Wt, int64_t ldw, int64_t nr, int64_t kc,
                  float *Y, int64_t ldy, int first);
    /* dX[i, k] += dY[i, j] * Wt[j, k] for j = 0, 1, ..., nr-1 in order (FMA), i < n, k < kc. */
    void (*block_t)(const float *dY, int64_t ldy, int64_t n, const float *Wt, int64_t ldw, int64_t nr, int64_t kc,
                    float *dX, int64_t ldx);
    /* FAST mode (NULL when the level has none): bf16 (uint16) rows, kc a multiple of 32, zero-padded.
     * to_bf16: dst [count] = round-to-nearest-even bf16 of src [count]. */
    void (*to_bf16)(const float *src, uint16_t *dst, int64_t count);
    void (*block_bf16)(const uint16_t *X, int64_t ldx, int64_t n, const uint16_t *Wt, int64_t ldw, int64_t nr,
                       int64_t kc, float *Y, int64_t ldy, int first);
} msbnb__mm4_kernels;

msbnb_status msbnb__matmul_4bit_tiled(const msbnb__mm4_kernels *kern, const msbnb__w4 *w, const float *X,
                                      int64_t n, const float *bias, float *Y, msbnb_precision precision);
msbnb_status msbnb__matmul_4bit_t_tiled(const msbnb__mm4_kernels *kern, const msbnb__w4 *w, const float *dY,
                                        int64_t n, float *dX, int accumulate);

/* ---------------------------------------------------------------- FAST int8 products, small n */
/* Token generation in FAST precision (semantics: x86/matmul_4bit_avx512vnni.c, docs/kernels.md):
 * each activation row rounded to int8 per 64-element chunk c (x̂ = rint(x · 127/a_c), a_c = max|x|),
 * each code value to t̂ = rint(table[q] · m) (m = 127/max|table|, or 1 for integer tables), and
 * y = Σ_c stat · (a_c/127)/m · Σ_k t̂ x̂ with exact int32 inner sums. matmul_4bit_fast_int8.c owns the
 * shape checks, the code table, the scratch and the threads; an ISA unit supplies the two loops.
 *
 * Activation layout, per row, chunk pairs p = 0 .. ceil(chunks/2)-1 (zero-padded past in):
 *   xo [pairs][64] int8: xo[p][b] = x̂[128p + 2b + 1] (the low nibble of code byte 64p + b),
 *   xe [pairs][64] int8: xe[p][b] = x̂[128p + 2b]     (its high nibble); chunk c's 32 bytes of each
 *                        start at 32c;
 *   xcorr [2·pairs + 16] float: -128 · Σ_{k in c} x̂_k (the table is stored +128, unsigned);
 *   sxm   [2·pairs + 16] float: (a_c / 127) / m; the 16 past the end are 0 (full-width loads). */
#define MSBNB__FI8_MAX_N 16 /* most activation rows a FAST int8 product takes (see max_n) */
#define MSBNB__FI8_PASSES_MIN_IN 2048 /* fewest inputs for which larger n runs in passes (any_n) */
typedef struct msbnb__fi8_act {
    const int8_t *xo[MSBNB__FI8_MAX_N], *xe[MSBNB__FI8_MAX_N];
    const float *xcorr[MSBNB__FI8_MAX_N], *sxm[MSBNB__FI8_MAX_N];
} msbnb__fi8_act;

/* The activation rows i0 and i0 + 1 of a (of n) as entries 0 and 1 of *pair (row i0 twice when it
 * is the last): the ISA loops meet a weight row two activation rows at a time. */
static inline void msbnb__fi8_act_pair(const msbnb__fi8_act *a, int64_t n, int64_t i0, msbnb__fi8_act *pair) {
    for (int i = 0; i < 2; i++) {
        const int64_t r = i0 + i < n ? i0 + i : i0;
        pair->xo[i] = a->xo[r], pair->xe[i] = a->xe[r], pair->xcorr[i] = a->xcorr[r], pair->sxm[i] = a->sxm[r];
    }
}

typedef struct msbnb__fi8_kernels {
    /* Fill one activation row's arrays (pre-zeroed) from x [in]; 0 if some x is not finite. */
    int (*quantize_row)(const float *x, int64_t in, float inv_m, int8_t *xo, int8_t *xe, float *xcorr, float *sxm);
    /* Y[i, row] (+ bias) for rows [rb, re) and activation rows i < n; tb[q] = t̂(q) + 128;
     * kblk [chunks]: INT4 group of each chunk; bs_shift = log2(blocksize) for flat blocks. */
    void (*rows)(const msbnb__w4 *w, const msbnb__fi8_act *a, int64_t n, const uint8_t tb[16], int64_t rb,
                 int64_t re, const int64_t *kblk, int bs_shift, const float *bias, float *Y);
    /* rows() takes 1 <= n <= max_n (<= MSBNB__FI8_MAX_N); larger n runs the tiles (EXACT or bf16) */
    int max_n;
} msbnb__fi8_kernels;

/* The product with an ISA's loops: MSBNB_ERR_UNSUPPORTED (no message) when n > k->max_n (unless
 * any_n and in >= MSBNB__FI8_PASSES_MIN_IN: then passes of max_n rows), in % 64 != 0, the block
 * (group) is not a multiple of 64 or an activation is not finite: then the tiles run (the whole
 * call: Y is rewritten). */
msbnb_status msbnb__matmul_4bit_fast_int8(const msbnb__fi8_kernels *k, const msbnb__w4 *w, const float *X, int64_t n,
                                          const float *bias, float *Y, int any_n);
/* Plain statistics of chunks [c0, ce) of `row` (msbnb__w4_stat's values) into buf [ce - c0], for the
 * formats whose statistics are not read in place (INT4 groups, blocks > 64, double quantization). */
void msbnb__fi8_row_scales(const msbnb__w4 *w, int64_t row, int64_t c0, int64_t ce, const int64_t *kblk, int bs_shift,
                           float *buf);

#if MSBNB_HAVE_X86
extern const msbnb__mm4_kernels msbnb__mm4_avx2;
extern const msbnb__mm4_kernels msbnb__mm4_avx512;
/* Only to_bf16 and block_bf16 are set: matmul.c combines them with msbnb__mm4_avx512. */
extern const msbnb__mm4_kernels msbnb__mm4_avx512bf16;
/* FAST int8 loops: AVX512-VNNI (vpermb with VBMI), AVX2 + AVX-VNNI (when msbnb__cpu()->avxvnni). */
extern const msbnb__fi8_kernels msbnb__fi8_avx512vnni;
extern const msbnb__fi8_kernels msbnb__fi8_avxvnni;
/* Plain AVX2 (vpmaddubsw), for AVX2 CPUs without AVX-VNNI. */
extern const msbnb__fi8_kernels msbnb__fi8_avx2;
/* The AVX2-level units' activation quantizer (msbnb__fi8_kernels.quantize_row). */
int msbnb__fi8_quantize_row_avx2(const float *x, int64_t in, float inv_m, int8_t *xo, int8_t *xe, float *xcorr,
                                 float *sxm);
/* Tests: 1 makes it use its vpshufb byte lookup even where the CPU has AVX512-VBMI (vpermb). */
void msbnb__mm4_fast_force_shufb(int on);
/* Tests: 1 makes the AVX2 level use its plain-AVX2 int8 loops even where the CPU has AVX-VNNI. */
void msbnb__mm4_fast_force_no_avxvnni(int on);
/* Tests: 1 makes the AVX-512 double-quant statistics decoder use its fp32 permutes even where the
 * CPU has AVX512-VBMI (byte lookups); both give msbnb__w4_stat's values bit for bit. */
void msbnb__mm4_dq_force_no_vbmi(int on);
/* Double-quantized scales of n consecutive flat blocks from i0 into out [n]: each exactly
 * msbnb__w4_stat's value (code[q] * absmax rounded, then + offset rounded; no FMA). Defined in
 * x86/dq_scales_avx512.c (byte lookups where the CPU has AVX512-VBMI); shared by the streaming
 * kernels of the AVX-512 levels. Needs AVX-512F. */
void msbnb__mm4_dq_scales_avx512(const msbnb__w4 *w, int64_t i0, int64_t n, float *out);
/* The same with AVX2 (eight at a time with a gather; x86/dq_scales_avx2.c). Needs AVX2. */
void msbnb__mm4_dq_scales_avx2(const msbnb__w4 *w, int64_t i0, int64_t n, float *out);
#endif

/* Tile sizes shared by the SIMD units (fixed: results must not depend on how work is split). */
#define MSBNB__MM4_KC 512 /* k per decoded tile (multiple of 32)  */
#define MSBNB__MM4_OT 64  /* W rows per decoded tile                */

#endif
