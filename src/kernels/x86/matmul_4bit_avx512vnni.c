/*
 * matmul_4bit_avx512vnni.c — FAST product of 4-bit weights (NF4, FP4, INT4; plain or
 * double-quantized statistics) for up to MSBNB__FI8_MAX_N activation rows (token generation,
 * small batches), on AVX512-VNNI. EXACT needs one table lookup and one fp32 FMA per 16 weights and is bound by them
 * (docs/kernels.md, "n = 1"); here four u8·s8 products per int32 lane (vpdpbusd) do the work of
 * 64 FMAs per instruction, so the weight stream from memory is the only limit.
 *
 * Arithmetic (the FAST semantics of small n; docs/kernels.md states the error):
 *   activations: per 64-element chunk c of a row, a_c = max|x|, x̂ = rint(x · 127/a_c) ∈ [-127, 127]
 *                (int8, the chunk's scale a_c/127; a chunk of zeros has x̂ = 0);
 *   codes:       t̂(q) = rint(table[q] · m) ∈ [-127, 127], m = 127 / max|table| (NF4, FP4: 127) or
 *                m = 1 when the table holds small integers (INT4: exact);
 *   y[o] = Σ_c (stat(o, c) · ((a_c / 127) / m)) · Σ_{k ∈ c} t̂(q_ok) · x̂_k  (+ bias[o]),
 *   the inner sums exact in int32, the outer one in fp32 FMAs (16 lanes, fixed tree).
 * So besides fp32 rounding the result differs from the exact product by the rounding of each
 * activation to 1/254 of its chunk's max and of each code value to 1/(2m) of its block scale.
 *
 * Layout per 64 code bytes of a row (a chunk pair p, elements 128p .. 128p+127): byte b holds
 * element 128p+2b in its high nibble and 128p+2b+1 in its low one. A byte lookup turns nibbles into
 * the unsigned bytes T[q] = t̂(q) + 128 (vpdpbusd's unsigned side): vpermb (AVX512-VBMI) reads the
 * low 6 bits of each index, so with T repeated 4 times it needs no masking; without VBMI, vpshufb
 * after an `and` with 0x0F (same values, 2 more operations). The activations are prepared once
 * per product in the matching order, xo[p][b] = x̂[128p+2b+1] and xe[p][b] = x̂[128p+2b], so that
 * int32 lane j sums the 8 elements 128p+8j .. 128p+8j+7: lanes 0-7 belong to chunk 2p, 8-15 to
 * chunk 2p+1. The +128 adds 128 · Σ x̂ over each chunk: that is removed per 16 chunks by one FMA of
 * the chunk scales with xcorr[c] = -128 · Σ_{k ∈ c} x̂_k (an integer, exact in fp32).
 * Each lane's sum is converted to fp32 and multiplied into the row's accumulator by its chunk's
 * scale, permuted out of a vector holding the scales of 16 chunks (statistic · activation scale).
 * Per 64 bytes of a row: 1 shift, 2 vpermb, 2 vpdpbusd per activation row, 1 vcvtdq2ps, 1 vpermps,
 * 1 FMA, and a prefetch VN_PF bytes ahead.
 *
 * Shapes, thresholds, the code table, threads and scratch: matmul_4bit_fast_int8.c (the driver);
 * this unit supplies the activation quantization and the row loop for AVX512-VNNI. Results are
 * identical for both byte-lookup variants.
 */
#include <string.h>

#include "kernels/x86/matmul_4bit_avx512.h"

#define VN_ACC 4    /* independent accumulator chains per row (FMA latency 4)                         */
#ifndef VN_PF /* (overridable for bench/gemv_ab.c experiments) */
#define VN_PF 6144  /* prefetch distance along W, bytes (3, 4, 8, 12, 16 KiB and none measured)      */
#endif
#define VN_SEG 128  /* chunks per segment of scales kept on the stack (multiple of 16)                */
#define VN_DQ 1024  /* double-quantized statistics held decoded (rows of up to this many chunks)        */
#ifndef VN_DQ_BATCH
#define VN_DQ_BATCH 256 /* ... of which decoded per call, rounded down to whole rows (at least one)     */
#endif

/* ---------------------------------------------------------------- activations */

/* Quantize activation row x [in] into the layout of matmul_4bit.h ("FAST int8 products"; arrays
 * pre-zeroed). Returns 0 if some |x| is not finite. */
static int quantize_row(const float *x, int64_t in, float inv_m, int8_t *xo, int8_t *xe, float *xcorr, float *sxm) {
    const int64_t chunks = in / 64, pairs = (chunks + 1) / 2;
    const __m512i low8 = _mm512_set1_epi16(0xFF);
    for (int64_t p = 0; p < pairs; p++) {
        __m512i pk[2]; /* the pair's 128 x̂ as bytes, natural order: [chunk 2p][chunk 2p+1] */
        for (int h = 0; h < 2; h++) {
            const int64_t c = 2 * p + h;
            if (c >= chunks) {
                pk[h] = _mm512_setzero_si512();
                sxm[c] = xcorr[c] = 0.0f;
                continue;
            }
            __m512 v[4], mx = _mm512_setzero_ps();
            __mmask16 bad = 0;
            for (int t = 0; t < 4; t++) {
                v[t] = _mm512_loadu_ps(x + 64 * c + 16 * t);
                mx = _mm512_max_ps(mx, _mm512_abs_ps(v[t]));
                bad |= _mm512_fpclass_ps_mask(v[t], 0x99); /* QNaN, SNaN, +Inf, -Inf */
            }
            if (bad) return 0;
            const float amax = _mm512_reduce_max_ps(mx);
            const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
            sxm[c] = amax / 127.0f * inv_m;
            __m512i sum = _mm512_setzero_si512();
            __m128i b[4];
            for (int t = 0; t < 4; t++) {
                const __m512i q = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v[t], inv),
                                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                sum = _mm512_add_epi32(sum, q);
                b[t] = _mm512_cvtsepi32_epi8(q);
            }
            xcorr[c] = (float)(-128 * _mm512_reduce_add_epi32(sum)); /* |.| <= 128·64·127: exact */
            pk[h] = _mm512_inserti64x2(_mm512_inserti64x2(_mm512_inserti64x2(_mm512_castsi128_si512(b[0]), b[1], 1),
                                                          b[2], 2),
                                       b[3], 3);
        }
        /* de-interleave: as 16-bit words, the low byte is the even element, the high byte the odd */
        for (int h = 0; h < 2; h++) {
            _mm256_storeu_si256((__m256i *)(xe + 64 * p + 32 * h), _mm512_cvtepi16_epi8(_mm512_and_si512(pk[h], low8)));
            _mm256_storeu_si256((__m256i *)(xo + 64 * p + 32 * h), _mm512_cvtepi16_epi8(_mm512_srli_epi16(pk[h], 8)));
        }
    }
    return 1;
}

/* ---------------------------------------------------------------- weights */

/* Plain statistics of chunks [c0, ce) of `row` (each exactly msbnb__w4_stat's value) into buf:
 * double-quantized blocks of 64 decoded 16 at a time, the other formats by the driver's helper. */
static const float *row_scales(const msbnb__w4 *w, int64_t row, int64_t c0, int64_t ce, const int64_t *kblk,
                               int bs_shift, float *buf) {
    if (w->flat_blocks && w->block == 64 && !w->stats) {
        msbnb__mm4_dq_scales_avx512(w, row * (w->cols / 64) + c0, ce - c0, buf);
        return buf;
    }
    msbnb__fi8_row_scales(w, row, c0, ce, kblk, bs_shift, buf);
    return buf;
}

/* vpermb (AVX512-VBMI): byte i of the result is T[idx[i] & 63]. Written as assembly because this
 * unit is compiled without VBMI (its other paths must run on CPUs without it); only reached after
 * the run-time check in use_vbmi(). */
MM4_INLINE __m512i vpermb(__m512i idx, __m512i T) {
    __m512i r;
    __asm__("vpermb %2, %1, %0" : "=v"(r) : "v"(idx), "v"(T));
    return r;
}

/* One chunk pair p of a row for nn activation rows. T: the byte table (vbmi: 4 copies in 64 bytes;
 * else in each 16-byte lane). idx selects each lane's chunk scale out of the 16-chunk scale vectors
 * sg; acc is the accumulator set this pair adds into. half: only the first 32 bytes belong to the
 * row (odd chunk count, last pair): 1 = load 64 and zero the rest (the next row follows), 2 = masked
 * load (the tensor's last row; see the partial group in vn_range for why masked loads are avoided). */
MM4_INLINE void vn_pair(const uint8_t *src, int64_t p, const msbnb__fi8_act *a, __m512i T, __m512i idx, const __m512 *sg,
                        __m512 *acc, const int nn, const int half, const int vbmi, const int pf) {
    /* W VN_PF bytes ahead, one line per pair (past the row end into the next rows: W is contiguous;
     * the address is formed as an integer: it may point past the tensor, which prefetching
     * tolerates). Every line is needed (every other line: -25 %), one prefetch per line is best
     * (a second, redundant one: -10 %), and issuing them here rather than 8 at a time at the group
     * start gained ~3 % (A/B in one process, docs/kernels.md). */
    if (pf) _mm_prefetch((const char *)((uintptr_t)src + (uintptr_t)(64 * p + VN_PF)), _MM_HINT_T0);
    const __mmask64 low32 = (__mmask64)0xFFFFFFFFu;
    const __m512i v = half == 2 ? _mm512_maskz_loadu_epi8(low32, src + 64 * p)
                      : half    ? _mm512_maskz_mov_epi8(low32, mm4_load_full_si512(src + 64 * p))
                                : _mm512_loadu_si512((const void *)(src + 64 * p));
    const __m512i vh = _mm512_srli_epi16(v, 4); /* high nibbles in bits [3:0] of every byte */
    __m512i wl, wh;
    if (vbmi) {
        wl = vpermb(v, T);
        wh = vpermb(vh, T);
    } else {
        const __m512i low4 = _mm512_set1_epi8(0x0F);
        wl = _mm512_shuffle_epi8(T, _mm512_and_si512(v, low4));
        wh = _mm512_shuffle_epi8(T, _mm512_and_si512(vh, low4));
    }
    for (int i = 0; i < nn; i++) {
        __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wl, _mm512_loadu_si512((const void *)(a->xo[i] + 64 * p)));
        d = _mm512_dpbusd_epi32(d, wh, _mm512_loadu_si512((const void *)(a->xe[i] + 64 * p)));
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_permutexvar_ps(idx, sg[i]), acc[i]);
    }
}

/* Row `row` of W against nn activation rows (nn, vbmi compile-time constants): Y[i * w->rows + row]
 * for i < nn. scp_dq: the row's decoded statistics (double-quantized, or INT4 batches), or NULL;
 * gidx: plain INT4 only, else NULL: gidx[c] = (group of chunk c) * rows, padded with 16 zeros, so
 * that a gather from w->stats + row fetches 16 chunks' scales in one instruction; buf: VN_SEG + 16
 * floats of scratch; pf: issue the W prefetches (only the first pass over a row, see vn_range). */
MM4_INLINE void vn_row(const msbnb__w4 *w, const msbnb__fi8_act *a, __m512i T, const __m512i *idx, int64_t row,
                       const float *scp_dq, const int32_t *gidx, const int nn, const int vbmi, const int pf,
                       const int64_t *kblk, int bs_shift, float *buf, const float *bias, float *Y) {
    const int64_t chunks = w->cols / 64;
    const int direct = w->stats && w->flat_blocks && w->block == 64;
    const uint8_t *src = w->data + row * (w->cols / 2);
    __m512 acc[VN_ACC][2], corr[2]; /* [pair mod VN_ACC][activation row]: independent FMA chains */
    for (int i = 0; i < nn; i++) {
        corr[i] = _mm512_setzero_ps();
        for (int c = 0; c < VN_ACC; c++) acc[c][i] = _mm512_setzero_ps();
    }
    for (int64_t c0 = 0; c0 < chunks; c0 += VN_SEG) {
        const int64_t ce = c0 + VN_SEG < chunks ? c0 + VN_SEG : chunks;
        const float *scp = direct   ? w->stats + row * chunks + c0
                           : scp_dq ? scp_dq + c0
                           : gidx   ? NULL
                                    : row_scales(w, row, c0, ce, kblk, bs_shift, buf);
        for (int64_t g = c0; g < ce; g += 16) { /* 16 chunks = 8 pairs share one scale vector */
            const int64_t gc = ce - g < 16 ? ce - g : 16;
            /* (no software prefetch of the statistics: the hardware prefetchers follow their
             * sequential stream, and one more prefetch per group measured ~1 % slower) */
            __m512 sg[2];
            if (gc == 16) {
                const __m512 st = gidx ? _mm512_i32gather_ps(_mm512_loadu_si512((const void *)(gidx + g)),
                                                             w->stats + row, 4)
                                       : _mm512_loadu_ps(scp + (g - c0));
                for (int i = 0; i < nn; i++) {
                    sg[i] = _mm512_mul_ps(st, _mm512_loadu_ps(a->sxm[i] + g));
                    corr[i] = _mm512_fmadd_ps(sg[i], _mm512_loadu_ps(a->xcorr[i] + g), corr[i]);
                }
                for (int q = 0; q < 8; q++) vn_pair(src, g / 2 + q, a, T, idx[q], sg, acc[q % VN_ACC], nn, 0, vbmi, pf);
            } else {
                /* the row's last (partial) group. A masked load that misses the caches holds up
                 * the loads behind it on this core (the kernel ran at half speed from DRAM with
                 * masked statistics loads in every group), so load 16 and zero the lanes past
                 * the row; only a group whose 16 would reach past the statistics (the last
                 * rows' of a small tensor) uses a masked load. buf and the activation arrays
                 * are padded. */
                const __mmask16 m = (__mmask16)((1u << gc) - 1u);
                const int near_end = direct && row * chunks + g + 16 > w->rows * chunks;
                const __m512 st = gidx ? _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m,
                                                                  _mm512_loadu_si512((const void *)(gidx + g)),
                                                                  w->stats + row, 4)
                                  : near_end ? _mm512_maskz_loadu_ps(m, scp + (g - c0))
                                             : _mm512_maskz_mov_ps(m, mm4_load_full_ps(scp + (g - c0)));
                for (int i = 0; i < nn; i++) {
                    sg[i] = _mm512_mul_ps(st, _mm512_maskz_mov_ps(m, _mm512_loadu_ps(a->sxm[i] + g)));
                    corr[i] = _mm512_fmadd_ps(sg[i], _mm512_maskz_mov_ps(m, _mm512_loadu_ps(a->xcorr[i] + g)), corr[i]);
                }
                for (int q = 0; 2 * q < gc; q++)
                    vn_pair(src, g / 2 + q, a, T, idx[q], sg, acc[0], nn,
                            2 * q + 1 == gc ? (row == w->rows - 1 ? 2 : 1) : 0, vbmi, pf);
            }
        }
    }
    for (int i = 0; i < nn; i++) {
        __m512 t = _mm512_add_ps(acc[0][i], corr[i]);
        for (int c = 1; c < VN_ACC; c++) t = _mm512_add_ps(t, acc[c][i]);
        const float y = _mm512_reduce_add_ps(t);
        Y[i * w->rows + row] = bias ? y + bias[row] : y;
    }
}

/* Rows [rb, re) of Y for n activation rows (1 <= n <= MSBNB__FI8_MAX_N), one W row after the
 * other. Each W row meets the activation rows two at a time (the register budget of the n = 2
 * loop: four FMA chains per activation row); the row stays in L1 for the later pairs, so only the
 * first pass prefetches. Every activation row thus sees exactly the operations of n = 1: results
 * do not depend on n (nor on the range). vbmi: compile-time constant per instance. */
MM4_INLINE void vn_range(const msbnb__w4 *w, const msbnb__fi8_act *a, __m512i T, int64_t n, int64_t rb, int64_t re,
                         const int vbmi, const int gather, const int64_t *kblk, int bs_shift, const float *bias,
                         float *Y) {
    const int64_t in = w->cols, chunks = in / 64, row_bytes = in / 2;
    /* lane l of the scale vector for pair q of a 16-chunk group: chunk 2q + (l >= 8) */
    const __m512i upper = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    __m512i idx[8];
    for (int q = 0; q < 8; q++) idx[q] = _mm512_add_epi32(_mm512_set1_epi32(2 * q), upper);
    float buf[VN_SEG + 16]; /* + 16: the partial group's full-width load */
    /* Double-quantized blocks of 64 over rows of at most VN_DQ chunks: the statistics of
     * dq_rows rows are decoded per call into dq[(row - dq_row0) * chunks + c], rows
     * [dq_row0, dq_row1). The decoder has a fixed cost per call about as large as one 4096-input
     * row's decoding, and a long burst of decoding fills the reorder window so that no code loads
     * issue meanwhile: ~256 statistics per call measured 0-4 % faster from DRAM than 64 or 1024
     * (A/B, bench/gemv_ab.c ... dq). */
    const int dq_flat = !w->stats && w->flat_blocks && w->block == 64;
    /* INT4 scales [groups][rows]: plain ones are gathered, 16 chunks per instruction (gidx); the
     * row-by-row scalar copy they replace cost ~30 % of the product, and its vector read-back
     * right after the scalar stores stalled on store forwarding (768-input rows: 23 us against
     * NF4's 10; 4096- and 11008-input rows gained 5-7 %). Double-quantized INT4 statistics are
     * decoded in batches of rows like dq_flat's when rows are short (<= 32 chunks: 768 inputs
     * 1.5x faster), per row otherwise (batches measured 10-13 % slower at 4096 and 11008). */
    int32_t gidx[VN_DQ + 16];
    if (gather) { /* compile-time constant per instance (the caller checked vn_can_gather) */
        for (int64_t c = 0; c < chunks; c++) gidx[c] = (int32_t)(kblk[c] * w->rows);
        memset(gidx + chunks, 0, 16 * sizeof(int32_t));
    }
    const int dq_batches = chunks <= VN_DQ && (dq_flat || (!w->flat_blocks && !w->stats && chunks <= 32));
    const int dq_rows = !dq_batches ? 0 : chunks < VN_DQ_BATCH ? (int)(VN_DQ_BATCH / chunks) : 1;
    float dq[VN_DQ + 16];
    int64_t dq_row0 = rb, dq_row1 = rb;
    /* the first VN_PF bytes of the range at once: the per-pair prefetches start VN_PF ahead
     * (4096 x 4096: +1 to +2.5 % in A/B runs) */
    for (int64_t o = 0; o < VN_PF && rb < re; o += 64)
        _mm_prefetch((const char *)((uintptr_t)(w->data + rb * row_bytes) + (uintptr_t)o), _MM_HINT_T0);
    for (int64_t row = rb; row < re; row++) {
        /* the gathers' lines: +15 % on short rows (768 / 2048 inputs), -2 % on long ones */
        if (gather && chunks <= 32) msbnb__w4_prefetch_group_stats(w, row);
        if (dq_rows) {
            /* the codes of the next batch's statistics, a batch ahead: read in bursts, they are
             * not a stream the hardware prefetchers follow well (with batches of 16 rows:
             * 0.83-0.88 -> 0.89-0.94 of the read bandwidth, gemv_profile 11008 4096) */
            const uintptr_t q0 = (uintptr_t)w->stats_q + (uintptr_t)((row + dq_rows) * chunks);
            if (dq_flat)
                for (uintptr_t o = 0; o < (uintptr_t)chunks; o += 64) _mm_prefetch((const char *)(q0 + o), _MM_HINT_T0);
            if (row >= dq_row1) {
                dq_row0 = row;
                dq_row1 = re - row < dq_rows ? re : row + dq_rows;
                if (dq_flat) msbnb__mm4_dq_scales_avx512(w, row * chunks, (dq_row1 - row) * chunks, dq);
                else
                    for (int64_t r = row; r < dq_row1; r++)
                        msbnb__fi8_row_scales(w, r, 0, chunks, kblk, bs_shift, dq + (r - row) * chunks);
            }
        }
        const float *scp_dq = dq_rows ? dq + (row - dq_row0) * chunks : NULL;
        for (int64_t i0 = 0; i0 < n; i0 += 2) {
            msbnb__fi8_act ai; /* activation rows i0, i0 + 1 (entries 0 and 1 only) */
            msbnb__fi8_act_pair(a, n, i0, &ai);
            float *Yi = Y + i0 * w->rows;
            const int32_t *gi = gather ? gidx : NULL;
            if (n - i0 >= 2) vn_row(w, &ai, T, idx, row, scp_dq, gi, 2, vbmi, i0 == 0, kblk, bs_shift, buf, bias, Yi);
            else vn_row(w, &ai, T, idx, row, scp_dq, gi, 1, vbmi, i0 == 0, kblk, bs_shift, buf, bias, Yi);
        }
    }
    MSBNB__SIMD_LEAVE(); /* see kernels_internal.h */
}

typedef void (*vn_fn)(const msbnb__w4 *, const msbnb__fi8_act *, __m512i, int64_t, int64_t, int64_t, const int64_t *,
                      int, const float *, float *);
/* One instance per byte lookup, and for plain INT4 statistics one with the gathers: as separate
 * instances the other formats' loops stay free of them (a run-time choice inside cost 3-5 %). */
#define VN_INSTANCE(NAME, VBMI, GATHER)                                                                    \
    static void NAME(const msbnb__w4 *w, const msbnb__fi8_act *a, __m512i T, int64_t n, int64_t rb, int64_t re, \
                     const int64_t *kblk, int sh, const float *bias, float *Y) {                              \
        vn_range(w, a, T, n, rb, re, VBMI, GATHER, kblk, sh, bias, Y);                                        \
    }
VN_INSTANCE(vn_shufb, 0, 0)
VN_INSTANCE(vn_vbmi, 1, 0)
VN_INSTANCE(vn_shufb_gather, 0, 1)
VN_INSTANCE(vn_vbmi_gather, 1, 1)

/* Plain INT4 statistics whose rows fit gidx and whose indices fit int32. */
static int vn_can_gather(const msbnb__w4 *w) {
    return !w->flat_blocks && w->stats && w->cols / 64 <= VN_DQ && (w->cols / w->block) * w->rows <= (int64_t)INT32_MAX;
}

/* Byte-lookup variant: vpermb where the CPU has AVX512-VBMI, unless a test forces vpshufb. */
static int force_shufb;
void msbnb__mm4_fast_force_shufb(int on) { force_shufb = on != 0; }
static int use_vbmi(void) { return !force_shufb && __builtin_cpu_supports("avx512vbmi"); }

static void rows_avx512vnni(const msbnb__w4 *w, const msbnb__fi8_act *a, int64_t n, const uint8_t tb[16], int64_t rb,
                            int64_t re, const int64_t *kblk, int bs_shift, const float *bias, float *Y) {
    const __m512i T = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)tb)); /* 4 copies: both lookups */
    const int gather = vn_can_gather(w);
    const vn_fn fn = use_vbmi() ? (gather ? vn_vbmi_gather : vn_vbmi) : (gather ? vn_shufb_gather : vn_shufb);
    fn(w, a, T, n, rb, re, kblk, bs_shift, bias, Y);
}

const msbnb__fi8_kernels msbnb__fi8_avx512vnni = {quantize_row, rows_avx512vnni, MSBNB__FI8_MAX_N};
