/*
 * matmul_4bit_avx2.c — AVX2 + FMA kernels of the fused 4-bit products (EXACT precision; FAST runs
 * as EXACT on this level): tile decode, forward and transposed register-blocked kernels, streaming
 * kernel for n == 1. Driver:
 * kernels/matmul_4bit_tiled.c; specification: kernels/matmul_4bit_ref.c.
 */
#include <immintrin.h>

#include "kernels/matmul_4bit.h"

#define AVX2_INLINE static inline __attribute__((always_inline))

/* ---------------------------------------------------------------- decode */
/* 16 weights = 8 bytes of one row, zero-extended to 8 int32 lanes. vpermps indexes only 8
 * entries, so the 16-entry scaled table is split in two halves and bit 3 of the nibble (moved to
 * the sign bit by a 28-bit left shift) selects the half with vblendvps. Even elements come from the
 * high nibbles (>> 4), odd ones from the low nibbles; unpack + 128-bit permutes restore k order.
 * Values are table[q] * scale, bit-identical to msbnb_dequantize. Same shape conditions as the
 * AVX-512 decoder, else the scalar decoder runs. */
AVX2_INLINE __m256 lookup16(__m256i idx, __m256 lo, __m256 hi) {
    __m256 a = _mm256_permutevar8x32_ps(lo, idx), b = _mm256_permutevar8x32_ps(hi, idx);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

static void decode_avx2(const msbnb__w4 *w, int64_t r0, int64_t nr, int64_t k0, int64_t kc, float *out,
                        int64_t ld) {
    if (w->cols % 2 || k0 % 2 || w->block % 2) { /* rows or blocks starting mid-byte */
        msbnb__w4_decode_ref(w, r0, nr, k0, kc, out, ld);
        return;
    }
    const __m256 t_lo = _mm256_loadu_ps(w->table), t_hi = _mm256_loadu_ps(w->table + 8);
    for (int64_t r = r0; r < r0 + nr; r++) {
        float *dst = out + (r - r0) * ld;
        const uint8_t *src = w->data + (r * w->cols + k0) / 2;
        /* the segment 8 rows below, as in the AVX-512 decoder (short bursts per row that the
         * hardware prefetchers do not follow; integer address: may lie past W) */
        for (uintptr_t o = 0; o < (uintptr_t)(kc / 2) + 64; o += 64)
            _mm_prefetch((const char *)((uintptr_t)src + (uintptr_t)(8 * w->cols / 2) + o), _MM_HINT_T0);
        /* walk the statistics blocks of this row segment: one division per row, none per chunk */
        const int64_t pos0 = w->flat_blocks ? r * w->cols + k0 : k0;
        int64_t q = pos0 / w->block, rem = pos0 % w->block;
        for (int64_t k = 0; k < kc; q++, rem = 0) {
            const int64_t si = w->flat_blocks ? q : q * w->rows + r;
            const __m256 s = _mm256_set1_ps(msbnb__w4_stat(w, si));
            const __m256 lo = _mm256_mul_ps(t_lo, s), hi = _mm256_mul_ps(t_hi, s);
            const int64_t end = k + (w->block - rem) < kc ? k + (w->block - rem) : kc;
            for (; k + 16 <= end; k += 16) {
                __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(src + k / 2)));
                __m256 e = lookup16(_mm256_srli_epi32(v, 4), lo, hi); /* elements k, k+2, ..., k+14 */
                __m256 o = lookup16(v, lo, hi); /* elements k+1, ..., k+15 (bits above 3 ignored) */
                __m256 a = _mm256_unpacklo_ps(e, o), b = _mm256_unpackhi_ps(e, o);
                _mm256_storeu_ps(dst + k, _mm256_permute2f128_ps(a, b, 0x20));
                _mm256_storeu_ps(dst + k + 8, _mm256_permute2f128_ps(a, b, 0x31));
            }
            if (k < end) { /* a block cut short by the row or the range: the same products, one by one */
                float sc[16];
                _mm256_storeu_ps(sc, lo);
                _mm256_storeu_ps(sc + 8, hi);
                for (; k < end; k++) dst[k] = sc[k & 1 ? src[k / 2] & 15 : src[k / 2] >> 4];
            }
        }
    }
}

/* ---------------------------------------------------------------- forward kernel */

#define MR 4
#define NR 3

/* Lane sum of an 8-lane accumulator by a fixed tree (128-bit halves, 64-bit, 32-bit pairs). */
AVX2_INLINE float hsum8(__m256 a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Mask of the first `left` (0..8) lanes for vmaskmovps. */
AVX2_INLINE __m256i lane_mask(int64_t left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

AVX2_INLINE void fwd_tile(const float *X, int64_t ldx, const float *Wt, int64_t ldw, int64_t kc, float *Y,
                          int64_t ldy, int first, const int mr, const int nr) {
    __m256 acc[MR][NR];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) acc[i][j] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        __m256 wv[NR];
        for (int j = 0; j < nr; j++) wv[j] = _mm256_loadu_ps(Wt + j * ldw + k);
        for (int i = 0; i < mr; i++) {
            __m256 xv = _mm256_loadu_ps(X + i * ldx + k);
            for (int j = 0; j < nr; j++) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
        }
    }
    if (k < kc) {
        __m256i m = lane_mask(kc - k);
        __m256 wv[NR];
        for (int j = 0; j < nr; j++) wv[j] = _mm256_maskload_ps(Wt + j * ldw + k, m);
        for (int i = 0; i < mr; i++) {
            __m256 xv = _mm256_maskload_ps(X + i * ldx + k, m);
            for (int j = 0; j < nr; j++) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float s = hsum8(acc[i][j]);
            float *y = Y + i * ldy + j;
            *y = first ? s : *y + s;
        }
}

typedef void (*fwd_fn)(const float *, int64_t, const float *, int64_t, int64_t, float *, int64_t, int);
#define FWD(M, N)                                                                                            \
    static void fwd_##M##x##N(const float *X, int64_t ldx, const float *Wt, int64_t ldw, int64_t kc, float *Y, \
                              int64_t ldy, int first) {                                                      \
        fwd_tile(X, ldx, Wt, ldw, kc, Y, ldy, first, M, N);                                                  \
    }
#define FWD_ROW(M) FWD(M, 1) FWD(M, 2) FWD(M, 3)
FWD_ROW(1)
FWD_ROW(2)
FWD_ROW(3)
FWD_ROW(4)
static const fwd_fn fwd_table[MR][NR] = {
    {fwd_1x1, fwd_1x2, fwd_1x3}, {fwd_2x1, fwd_2x2, fwd_2x3}, {fwd_3x1, fwd_3x2, fwd_3x3}, {fwd_4x1, fwd_4x2, fwd_4x3}};

static void block_avx2(const float *X, int64_t ldx, int64_t n, const float *Wt, int64_t ldw, int64_t nr, int64_t kc,
                       float *Y, int64_t ldy, int first) {
    for (int64_t i0 = 0; i0 < n; i0 += MR) {
        int mr = (int)(n - i0 < MR ? n - i0 : MR);
        for (int64_t j0 = 0; j0 < nr; j0 += NR) {
            int jr = (int)(nr - j0 < NR ? nr - j0 : NR);
            fwd_table[mr - 1][jr - 1](X + i0 * ldx, ldx, Wt + j0 * ldw, ldw, kc, Y + i0 * ldy + j0, ldy, first);
        }
    }
}

/* ---------------------------------------------------------------- transposed kernel */
/* dX[i, k..k+15] += dY[i, j] * Wt[j, k..k+15] for j in order: 6 rows × 2 vectors of accumulators
 * (12 of the 16 ymm registers). Loads/stores are masked only in the instantiation for the last
 * partial 16 columns (with masks everywhere GCC kept the accumulators in memory); the per-element
 * operations are the same in both. */
#define T_MR 6
AVX2_INLINE void t_tile(const float *dY, int64_t ldy, const float *Wt, int64_t ldw, int64_t nr, int64_t kleft,
                        float *dX, int64_t ldx, const int mr, const int masked) {
    const __m256i m0 = lane_mask(kleft), m1 = lane_mask(kleft - 8);
#define T_LOAD(mk, p) (masked ? _mm256_maskload_ps((p), (mk)) : _mm256_loadu_ps(p))
    __m256 acc[T_MR][2];
    for (int i = 0; i < mr; i++) {
        acc[i][0] = T_LOAD(m0, dX + i * ldx);
        acc[i][1] = T_LOAD(m1, dX + i * ldx + 8);
    }
    for (int64_t j = 0; j < nr; j++) {
        const __m256 w0 = T_LOAD(m0, Wt + j * ldw), w1 = T_LOAD(m1, Wt + j * ldw + 8);
        for (int i = 0; i < mr; i++) {
            __m256 g = _mm256_set1_ps(dY[i * ldy + j]);
            acc[i][0] = _mm256_fmadd_ps(g, w0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(g, w1, acc[i][1]);
        }
    }
#undef T_LOAD
    for (int i = 0; i < mr; i++) {
        if (masked) {
            _mm256_maskstore_ps(dX + i * ldx, m0, acc[i][0]);
            _mm256_maskstore_ps(dX + i * ldx + 8, m1, acc[i][1]);
        } else {
            _mm256_storeu_ps(dX + i * ldx, acc[i][0]);
            _mm256_storeu_ps(dX + i * ldx + 8, acc[i][1]);
        }
    }
}

typedef void (*t_fn)(const float *, int64_t, const float *, int64_t, int64_t, int64_t, float *, int64_t);
#define TT(M)                                                                                                \
    static void t_##M(const float *dY, int64_t ldy, const float *Wt, int64_t ldw, int64_t nr, int64_t kleft,   \
                      float *dX, int64_t ldx) {                                                              \
        t_tile(dY, ldy, Wt, ldw, nr, kleft, dX, ldx, M, 0);                                                  \
    }                                                                                                        \
    static void tm_##M(const float *dY, int64_t ldy, const float *Wt, int64_t ldw, int64_t nr, int64_t kleft,  \
                       float *dX, int64_t ldx) {                                                             \
        t_tile(dY, ldy, Wt, ldw, nr, kleft, dX, ldx, M, 1);                                                  \
    }
TT(1)
TT(2)
TT(3)
TT(4)
TT(5)
TT(6)
static const t_fn t_table[2][T_MR] = {{t_1, t_2, t_3, t_4, t_5, t_6}, {tm_1, tm_2, tm_3, tm_4, tm_5, tm_6}};

static void block_t_avx2(const float *dY, int64_t ldy, int64_t n, const float *Wt, int64_t ldw, int64_t nr,
                         int64_t kc, float *dX, int64_t ldx) {
    for (int64_t k0 = 0; k0 < kc; k0 += 16) {
        const int masked = kc - k0 < 16;
        for (int64_t i0 = 0; i0 < n; i0 += T_MR) {
            int mr = (int)(n - i0 < T_MR ? n - i0 : T_MR);
            t_table[masked][mr - 1](dY + i0 * ldy, ldy, Wt + k0, ldw, nr, kc - k0, dX + i0 * ldx + k0, ldx);
        }
    }
}

/* ---------------------------------------------------------------- streaming kernel for n == 1 */
/* One activation row is bound by the weight stream: read the codes once, straight into registers.
 * 16 code bytes = 32 weights are zero-extended as 8 words into 8 dword lanes (vpmovzxwd); lane j
 * holds elements 4j .. 4j+3 of the chunk, and shifting by 4s (s = 0..3) exposes element
 * 4j + (s ^ 1) in bits [3:0] for lookup16. With blocks (INT4: groups) a multiple of 32 the chunk
 * has one scale, folded into the two table halves once per chunk (exact values again). X is
 * permuted once per product to match: per 32-chunk Xp[8s + j] = x[4j + (s ^ 1)]. Two rows per
 * group (16 ymm registers: 4 accumulators, 4 table halves, codes, activations, temporaries), two
 * accumulators per row (even / odd s); every row sees the same operations. */
#define GV_ROWS 2
#define GV_PF 2048 /* prefetch distance along each row, bytes (see the AVX-512 kernel) */

AVX2_INLINE void gemv_rows(const msbnb__w4 *w, const float *Xp, int64_t r0, const int nr, const int64_t *kblk,
                           int bs_shift, const float *bias, float *Y) {
    const int64_t in = w->cols, chunks = in / 32, row_bytes = in / 2;
    const __m256 t_lo = _mm256_loadu_ps(w->table), t_hi = _mm256_loadu_ps(w->table + 8);
    __m256 even[GV_ROWS], odd[GV_ROWS];
    const uint8_t *src[GV_ROWS];
    for (int r = 0; r < nr; r++) {
        even[r] = odd[r] = _mm256_setzero_ps();
        src[r] = w->data + (r0 + r) * row_bytes;
    }
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t ahead = c * 16 + GV_PF;
        for (int r = 0; r < nr; r++) {
            const int64_t off = ahead < row_bytes ? ahead : GV_ROWS * row_bytes + (ahead - row_bytes);
            _mm_prefetch((const char *)((uintptr_t)src[r] + (uintptr_t)off), _MM_HINT_T0);
        }
        __m256i d[GV_ROWS];
        __m256 lo[GV_ROWS], hi[GV_ROWS];
        for (int r = 0; r < nr; r++) {
            const int64_t row = r0 + r;
            const int64_t si = w->flat_blocks ? (row * in + c * 32) >> bs_shift : kblk[c] * w->rows + row;
            const __m256 sc = _mm256_set1_ps(msbnb__w4_stat(w, si));
            lo[r] = _mm256_mul_ps(t_lo, sc);
            hi[r] = _mm256_mul_ps(t_hi, sc);
            d[r] = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src[r] + c * 16)));
        }
        const float *xc = Xp + c * 32;
        for (int s = 0; s < 4; s += 2) {
            const __m256 xe = _mm256_loadu_ps(xc + 8 * s), xo = _mm256_loadu_ps(xc + 8 * s + 8);
            for (int r = 0; r < nr; r++) {
                __m256 we = lookup16(s ? _mm256_srli_epi32(d[r], 8) : d[r], lo[r], hi[r]);
                __m256 wo = lookup16(_mm256_srli_epi32(d[r], s ? 12 : 4), lo[r], hi[r]);
                even[r] = _mm256_fmadd_ps(xe, we, even[r]);
                odd[r] = _mm256_fmadd_ps(xo, wo, odd[r]);
            }
        }
    }
    for (int r = 0; r < nr; r++) {
        float y = hsum8(_mm256_add_ps(even[r], odd[r]));
        Y[r0 + r] = bias ? y + bias[r0 + r] : y;
    }
}

static void gemv_1(const msbnb__w4 *w, const float *Xp, int64_t r0, const int64_t *kblk, int sh, const float *bias,
                   float *Y) {
    gemv_rows(w, Xp, r0, 1, kblk, sh, bias, Y);
}
static void gemv_2(const msbnb__w4 *w, const float *Xp, int64_t r0, const int64_t *kblk, int sh, const float *bias,
                   float *Y) {
    gemv_rows(w, Xp, r0, 2, kblk, sh, bias, Y);
}

static msbnb_status small_n_avx2(const msbnb__w4 *w, const float *X, int64_t n, const float *bias, float *Y) {
    const int64_t in = w->cols, out = w->rows;
    if (n != 1 || in % 32 || w->block % 32) return MSBNB_ERR_UNSUPPORTED; /* not this kernel's shapes */
    int bs_shift = -1;
    for (int b = 0; b < 62; b++)
        if (((int64_t)1 << b) == w->block) bs_shift = b;
    if (w->flat_blocks && bs_shift < 0) return MSBNB_ERR_UNSUPPORTED;
    const int64_t chunks = in / 32;
    /* Xp [in]: permuted activations; kblk [chunks]: INT4 group of each 32-chunk (after the floats,
     * 8-byte aligned since in is a multiple of 32) */
    float *Xp = msbnb__alloc_aligned((size_t)in * sizeof(float) + (size_t)chunks * sizeof(int64_t));
    RETURN_IF(!Xp, MSBNB_ERR_OUT_OF_MEMORY, "no memory for [1, %lld] permuted activations", (long long)in);
    int64_t *kblk = (int64_t *)(Xp + in);
    for (int64_t c = 0; c < chunks; c++)
        for (int s = 0; s < 4; s++)
            for (int j = 0; j < 8; j++) Xp[c * 32 + 8 * s + j] = X[c * 32 + 4 * j + (s ^ 1)];
    for (int64_t c = 0; c < chunks; c++) kblk[c] = c * 32 / w->block;
    const int64_t groups = (out + GV_ROWS - 1) / GV_ROWS;
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) \
    if ((double)n * (double)out * (double)in >= MSBNB__PARALLEL_MIN_WORK)
    for (int64_t g = 0; g < groups; g++) {
        const int64_t r0 = g * GV_ROWS;
        if (out - r0 >= 2) gemv_2(w, Xp, r0, kblk, bs_shift, bias, Y);
        else gemv_1(w, Xp, r0, kblk, bs_shift, bias, Y);
    }
    msbnb__free_aligned(Xp);
    return MSBNB_OK;
}

const msbnb__mm4_kernels msbnb__mm4_avx2 = {
    .small_n = small_n_avx2,
    .decode = decode_avx2,
    .block = block_avx2,
    .block_t = block_t_avx2,
    .to_bf16 = NULL,
    .block_bf16 = NULL,
};
