/*
 * matmul_4bit_avx512.c — AVX-512 kernels of the fused 4-bit products (EXACT precision): tile
 * decode, forward register-blocked kernel, transposed kernel. The driver is
 * kernels/matmul_4bit_tiled.c; the specification kernels/matmul_4bit_ref.c.
 */
#include "kernels/x86/matmul_4bit_avx512.h"

/* ---------------------------------------------------------------- decode */
/* 32 weights = 16 bytes of one row. Byte b holds element 2b in its high nibble and 2b+1 in its
 * low nibble. Zero-extend the 16 bytes to 16 int32 lanes; vpermps reads only the low 4 bits of
 * each index, so the lanes index the 16-entry table directly for the odd elements and after a
 * 4-bit right shift for the even ones. The table is pre-multiplied by the block's scale (one
 * vmulps per block), and table[q] * scale is the very product msbnb_dequantize rounds, so the
 * decoded values are bit-identical to it. Two vpermt2ps interleave even/odd back into k order.
 * Steps of 32 elements within each statistics block (one scale per step), the last step of a block
 * or of the range masked. Needs rows and blocks to start on a byte: cols, k0 and the block (or
 * group) size even; otherwise the scalar decoder runs. */
#define DEC_PF_ROWS 8 /* rows ahead whose segment the decoder prefetches */
static void decode_avx512(const msbnb__w4 *w, int64_t r0, int64_t nr, int64_t k0, int64_t kc, float *out,
                          int64_t ld) {
    if (w->cols % 2 || k0 % 2 || w->block % 2) { /* rows or blocks starting mid-byte */
        msbnb__w4_decode_ref(w, r0, nr, k0, kc, out, ld);
        return;
    }
    const __m512 table = _mm512_loadu_ps(w->table);
    const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const uintptr_t data_end = (uintptr_t)w->data + (uintptr_t)((w->rows * w->cols + 1) / 2); /* packed bytes */
    for (int64_t r = r0; r < r0 + nr; r++) {
        float *dst = out + (r - r0) * ld;
        const uint8_t *src = w->data + (r * w->cols + k0) / 2;
        /* the segment of the row DEC_PF_ROWS below: rows are separate short bursts (kc / 2 bytes
         * every cols / 2) that the hardware prefetchers do not follow (integer address: may lie
         * past W, which prefetching tolerates). With the full-width loads below: NF4 4096 x 4096
         * from DRAM, EXACT n = 32 100 -> 115 (loads) -> 150 GFLOP/s, FAST (bf16) n = 17 75 -> 96
         * -> 146; 4, 8 and 16 rows ahead measured alike */
        for (uintptr_t o = 0; o < (uintptr_t)(kc / 2) + 64; o += 64)
            _mm_prefetch((const char *)((uintptr_t)src + (uintptr_t)(DEC_PF_ROWS * w->cols / 2) + o), _MM_HINT_T0);
        /* walk the statistics blocks of this row segment: one division per row, none per chunk */
        const int64_t pos0 = w->flat_blocks ? r * w->cols + k0 : k0;
        int64_t q = pos0 / w->block, rem = pos0 % w->block;
        for (int64_t k = 0; k < kc; q++, rem = 0) {
            const int64_t si = w->flat_blocks ? q : q * w->rows + r;
            const __m512 tbl = _mm512_mul_ps(table, _mm512_set1_ps(msbnb__w4_stat(w, si)));
            const int64_t end = k + (w->block - rem) < kc ? k + (w->block - rem) : kc;
            for (int64_t len; k < end; k += len) {
                /* a block boundary or the range's end may cut the last step short (even length:
                 * cols, k0 and the block are even): masked load and stores */
                len = end - k < 32 ? end - k : 32;
                /* a full 16-byte load wherever 16 bytes are readable (the lanes past the step go
                 * to masked-off stores): a masked load that misses the caches holds up the loads
                 * behind it on this core — with one per step, products over INT4 groups that are
                 * not multiples of 64 (which take these tiles even at n = 1) ran 16x slower */
                __m128i raw;
                if ((uintptr_t)(src + k / 2) + 16 <= data_end) raw = _mm_loadu_si128((const __m128i *)(src + k / 2));
                else raw = _mm_maskz_loadu_epi8((__mmask16)((1u << (len / 2)) - 1u), src + k / 2);
                __m512i v = _mm512_cvtepu8_epi32(raw);
                __m512 we = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), tbl); /* elements k, k+2, ... */
                __m512 wo = _mm512_permutexvar_ps(v, tbl);                       /* elements k+1, k+3, ... */
                const __mmask16 lo = (__mmask16)(len >= 16 ? 0xFFFFu : (1u << len) - 1u);
                const __mmask16 hi = (__mmask16)(len >= 32 ? 0xFFFFu : len > 16 ? (1u << (len - 16)) - 1u : 0u);
                _mm512_mask_storeu_ps(dst + k, lo, _mm512_permutex2var_ps(we, lo_idx, wo));
                _mm512_mask_storeu_ps(dst + k + 16, hi, _mm512_permutex2var_ps(we, hi_idx, wo));
            }
        }
    }
}

/* ---------------------------------------------------------------- forward kernel */
/* acc[i][j] (16 lanes) += X[i, k..k+15] * Wt[j, k..k+15]; lane l sums k ≡ l (mod 16) in
 * increasing k, the last partial vector masked. Then mm4_hsum4 and y (+)= sum. mr, nr are
 * compile-time constants in each instantiation; every element sees the same operations. */
MM4_INLINE void fwd_tile(const float *X, int64_t ldx, const float *Wt, int64_t ldw, int64_t kc, float *Y,
                         int64_t ldy, int first, const int mr, const int nr) {
    __m512 acc[MM4_MR][MM4_NR];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) acc[i][j] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= kc; k += 16) {
        __m512 wv[MM4_NR];
        for (int j = 0; j < nr; j++) wv[j] = _mm512_loadu_ps(Wt + j * ldw + k);
        for (int i = 0; i < mr; i++) {
            __m512 xv = _mm512_loadu_ps(X + i * ldx + k);
            for (int j = 0; j < nr; j++) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
        }
    }
    if (k < kc) {
        __mmask16 m = (__mmask16)((1u << (kc - k)) - 1u);
        __m512 wv[MM4_NR];
        for (int j = 0; j < nr; j++) wv[j] = _mm512_maskz_loadu_ps(m, Wt + j * ldw + k);
        for (int i = 0; i < mr; i++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, X + i * ldx + k);
            for (int j = 0; j < nr; j++) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
        }
    }
    const __m512 z = _mm512_setzero_ps();
    for (int i = 0; i < mr; i++) {
        __m128 s = mm4_hsum4(acc[i][0], nr > 1 ? acc[i][1] : z, nr > 2 ? acc[i][2] : z, nr > 3 ? acc[i][3] : z);
        mm4_store_row(Y + i * ldy, s, nr, first);
    }
}

/* X [n][ldx] (chunk of kc columns), Wt [nr][ldw], Y [n][ldy] (the tile's nr columns). */
MM4_FWD_DRIVER(block_avx512, float, fwd_tile)

/* ---------------------------------------------------------------- transposed kernel */
/* dX[i, k..k+63] += dY[i, j] * Wt[j, k..k+63] for j = 0 .. nr-1 in order: 6 rows × 4 vectors of
 * accumulators loaded from dX, one FMA per (i, vector, j). Masks cut the columns past kc. */
#define T_MR 6
/* acc loads/stores are masked only in the instantiation for the last (partial) 64 columns; with
 * masks everywhere GCC kept a memory copy of all 24 accumulators, stored every iteration. The
 * per-element operations are the same in both instantiations. */
MM4_INLINE void t_tile(const float *dY, int64_t ldy, const float *Wt, int64_t ldw, int64_t nr, int64_t kleft,
                       float *dX, int64_t ldx, const int mr, const int masked) {
    __mmask16 m0 = 0xFFFF, m1 = 0xFFFF, m2 = 0xFFFF, m3 = 0xFFFF;
    if (masked) {
        __mmask16 mm[4];
        for (int v = 0; v < 4; v++) {
            int64_t left = kleft - 16 * v;
            mm[v] = left >= 16 ? (__mmask16)0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1u) : (__mmask16)0;
        }
        m0 = mm[0], m1 = mm[1], m2 = mm[2], m3 = mm[3];
    }
#define T_LOAD(mk, p) (masked ? _mm512_maskz_loadu_ps((mk), (p)) : _mm512_loadu_ps(p))
    __m512 acc[T_MR][4];
    for (int i = 0; i < mr; i++) {
        acc[i][0] = T_LOAD(m0, dX + i * ldx);
        acc[i][1] = T_LOAD(m1, dX + i * ldx + 16);
        acc[i][2] = T_LOAD(m2, dX + i * ldx + 32);
        acc[i][3] = T_LOAD(m3, dX + i * ldx + 48);
    }
    for (int64_t j = 0; j < nr; j++) {
        const float *wj = Wt + j * ldw;
        const __m512 w0 = T_LOAD(m0, wj), w1 = T_LOAD(m1, wj + 16), w2 = T_LOAD(m2, wj + 32), w3 = T_LOAD(m3, wj + 48);
        for (int i = 0; i < mr; i++) {
            __m512 g = _mm512_set1_ps(dY[i * ldy + j]);
            acc[i][0] = _mm512_fmadd_ps(g, w0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(g, w1, acc[i][1]);
            acc[i][2] = _mm512_fmadd_ps(g, w2, acc[i][2]);
            acc[i][3] = _mm512_fmadd_ps(g, w3, acc[i][3]);
        }
    }
#undef T_LOAD
    for (int i = 0; i < mr; i++) {
        float *d = dX + i * ldx;
        if (masked) {
            _mm512_mask_storeu_ps(d, m0, acc[i][0]);
            _mm512_mask_storeu_ps(d + 16, m1, acc[i][1]);
            _mm512_mask_storeu_ps(d + 32, m2, acc[i][2]);
            _mm512_mask_storeu_ps(d + 48, m3, acc[i][3]);
        } else {
            _mm512_storeu_ps(d, acc[i][0]);
            _mm512_storeu_ps(d + 16, acc[i][1]);
            _mm512_storeu_ps(d + 32, acc[i][2]);
            _mm512_storeu_ps(d + 48, acc[i][3]);
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

static void block_t_avx512(const float *dY, int64_t ldy, int64_t n, const float *Wt, int64_t ldw, int64_t nr,
                           int64_t kc, float *dX, int64_t ldx) {
    for (int64_t k0 = 0; k0 < kc; k0 += 64) {
        const int masked = kc - k0 < 64;
        for (int64_t i0 = 0; i0 < n; i0 += T_MR) {
            int mr = (int)(n - i0 < T_MR ? n - i0 : T_MR);
            t_table[masked][mr - 1](dY + i0 * ldy, ldy, Wt + k0, ldw, nr, kc - k0, dX + i0 * ldx + k0, ldx);
        }
    }
}



/* ---------------------------------------------------------------- streaming kernel for n <= GV_MAX_N */
/* One or two activation rows (token generation) are bound by the weight stream, so here the packed
 * codes are read once, straight into registers, with the fewest operations per nibble:
 * 32 code bytes = 64 weights are zero-extended as 16 words into 16 dword lanes (one vpmovzxwd);
 * lane j holds elements 4j .. 4j+3 of the chunk. vpermps reads only bits [3:0] of each index, so
 * shifting the lanes right by 4s (s = 0..3) exposes nibble s of every lane: element 4j + (s ^ 1)
 * (the low nibble of a byte is the odd element). With blocks (INT4: groups) a multiple of 64 the
 * chunk has one scale, and the table is pre-multiplied by it once per chunk: table[q] * scale is
 * exactly msbnb_dequantize's value. Per 16 weights: 1/4 vpmovzxwd, 3/4 shift, one vpermps, one FMA.
 * The activations are permuted once per product to match: Xp [n][in], per 64-chunk
 * Xp[16s + j] = x[4j + (s ^ 1)]. Each row keeps two accumulators per activation row (even / odd s)
 * to hide the FMA latency; they are added, then lane-reduced by mm4_hsum4. Rows go in groups of 4
 * over the threads; every row sees the same operations whatever its group. */
#define GV_ROWS 4
#define GV_PF 2048 /* prefetch distance along each row, bytes */
#define GV_SEG 128 /* chunks per segment: scales of 4 rows x 128 chunks on the stack (2 KB) */
#define GV_MAX_N 16 /* activation rows the streaming kernel takes (then the tiles are as fast) */

/* Prefetch the line of statistic si (a float, or a code byte when double-quantized); the address is
 * formed as an integer: it may lie past the statistics, which prefetching tolerates. */
MM4_INLINE void gv_prefetch_scale(const msbnb__w4 *w, int64_t si) {
    uintptr_t p = w->stats ? (uintptr_t)w->stats + (uintptr_t)si * sizeof(float)
                           : (uintptr_t)w->stats_q + (uintptr_t)si;
    _mm_prefetch((const char *)p, _MM_HINT_T0);
}

/* One 64-weight chunk c of nr rows (see gemv_rows). Row r's scale is scp[r][si]. pf: issue the
 * prefetches (once per 64-byte line, every other
 * chunk: a prefetch per 32 bytes was half redundant). */
MM4_INLINE void gemv_chunk(const uint8_t *const *src, const float *Xp, int64_t in, int64_t c, int64_t si,
                           const float *const *scp, __m512 table, __m512 (*even)[2], __m512 (*odd)[2], const int nr,
                           const int nn, const int pf) {
    const int64_t row_bytes = in / 2;
    if (pf) {
        /* Four short streams (one per row, in/2 bytes each) restart with every row group, too short
         * for the hardware prefetchers to follow from DRAM: prefetch GV_PF bytes ahead along each
         * row, continuing into the same row of the next group (the next rows this thread reads
         * under schedule(static)). Addresses formed as integers: they may point past W, which
         * prefetching tolerates. */
        const int64_t ahead = c * 32 + GV_PF;
        const int64_t off = ahead < row_bytes ? ahead : GV_ROWS * row_bytes + (ahead - row_bytes);
        for (int r = 0; r < nr; r++) _mm_prefetch((const char *)((uintptr_t)src[r] + (uintptr_t)off), _MM_HINT_T0);
    }
    __m512i d[GV_ROWS];
    __m512 tbl[GV_ROWS];
    for (int r = 0; r < nr; r++) {
        tbl[r] = _mm512_mul_ps(table, _mm512_set1_ps(scp[r][si]));
        d[r] = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src[r] + c * 32)));
    }
    const float *xc = Xp + c * 64;
    for (int s = 0; s < 4; s += 2) {
        __m512 xe[2], xo[2];
        for (int i = 0; i < nn; i++) {
            xe[i] = _mm512_loadu_ps(xc + i * in + 16 * s);
            xo[i] = _mm512_loadu_ps(xc + i * in + 16 * s + 16);
        }
        for (int r = 0; r < nr; r++) {
            __m512 we = _mm512_permutexvar_ps(s ? _mm512_srli_epi32(d[r], 8) : d[r], tbl[r]);
            __m512 wo = _mm512_permutexvar_ps(_mm512_srli_epi32(d[r], s ? 12 : 4), tbl[r]);
            for (int i = 0; i < nn; i++) {
                even[r][i] = _mm512_fmadd_ps(xe[i], we, even[r][i]);
                odd[r][i] = _mm512_fmadd_ps(xo[i], wo, odd[r][i]);
            }
        }
    }
}

/* nr (<= 4) rows from r0, nn (1 or 2) activation rows; both compile-time constants per instance so
 * every accumulator stays in a register. kblk [in/64]: INT4 group of each chunk. The row is walked
 * in segments of GV_SEG chunks: first the scale of every chunk of the segment is read (and
 * dequantized when double-quantized: msbnb__w4_stat, so the values are exactly msbnb_dequantize's)
 * into sc, a branch-free pass over 4 short sequential streams; then the chunks, whose only scale
 * work is one vmulps with a broadcast operand from sc. */
MM4_INLINE void gemv_rows(const msbnb__w4 *w, const float *Xp, int64_t r0, const int nr, const int nn,
                          const int64_t *kblk, int bs_shift, const float *bias, float *Y) {
    const int64_t in = w->cols, chunks = in / 64;
    const __m512 table = _mm512_loadu_ps(w->table);
    __m512 even[GV_ROWS][2], odd[GV_ROWS][2]; /* [row][activation row], even / odd shift steps */
    for (int r = 0; r < nr; r++)
        for (int i = 0; i < nn; i++) even[r][i] = odd[r][i] = _mm512_setzero_ps();
    const uint8_t *src[GV_ROWS];
    for (int r = 0; r < nr; r++) src[r] = w->data + (r0 + r) * (in / 2);
    /* Scale of row r, chunk c: scp[r][si]. Plain statistics are read in place: flat blocks of 64
     * (the chunk scales themselves) with si = c - c0 from the row's first block of the segment;
     * INT4 groups [groups][rows] with si = kblk[c] * rows from the row's entry in group 0.
     * Otherwise (double quant, larger flat blocks) the segment's chunk scales are decoded into sc. */
    float sc[GV_ROWS][GV_SEG]; /* [row][chunk of the segment] */
    const float *scp[GV_ROWS];
    const int flat_direct = w->stats && w->flat_blocks && w->block == 64;
    const int group_direct = w->stats && !w->flat_blocks;
    for (int64_t c0 = 0; c0 < chunks; c0 += GV_SEG) {
        const int64_t ce = c0 + GV_SEG < chunks ? c0 + GV_SEG : chunks;
        for (int r = 0; r < nr; r++) {
            const int64_t row = r0 + r;
            if (flat_direct) {
                scp[r] = w->stats + row * chunks + c0;
            } else if (group_direct) {
                scp[r] = w->stats + row;
            } else {
                scp[r] = sc[r];
                if (w->flat_blocks && w->block == 64)
                    msbnb__mm4_dq_scales_avx512(w, row * chunks + c0, ce - c0, sc[r]);
                else
                    for (int64_t c = c0; c < ce; c++) {
                        const int64_t si = w->flat_blocks ? (row * in + c * 64) >> bs_shift : kblk[c] * w->rows + row;
                        sc[r][c - c0] = msbnb__w4_stat(w, si);
                    }
            }
        }
        int64_t c = c0;
        for (; c + 1 < ce; c += 2) {
            if (!w->flat_blocks) {
                /* INT4 scales [groups][rows]: one line serves 16 rows of a group, and the lines of
                 * all groups form as many strided streams as there are groups, which no hardware
                 * prefetcher follows: fetch the lines of rows r0+16.. (read 4 row groups later) */
                gv_prefetch_scale(w, kblk[c] * w->rows + r0 + 16);
                gv_prefetch_scale(w, kblk[c + 1] * w->rows + r0 + 16);
            }
            const int64_t s0 = group_direct ? kblk[c] * w->rows : c - c0;
            const int64_t s1 = group_direct ? kblk[c + 1] * w->rows : c + 1 - c0;
            gemv_chunk(src, Xp, in, c, s0, scp, table, even, odd, nr, nn, 1);
            gemv_chunk(src, Xp, in, c + 1, s1, scp, table, even, odd, nr, nn, 0);
        }
        if (c < ce) {
            const int64_t s0 = group_direct ? kblk[c] * w->rows : c - c0;
            gemv_chunk(src, Xp, in, c, s0, scp, table, even, odd, nr, nn, 1);
        }
    }
    const __m512 z = _mm512_setzero_ps();
    const __mmask8 m = (__mmask8)((1u << nr) - 1u);
    for (int i = 0; i < nn; i++) {
        __m512 t[GV_ROWS];
        for (int r = 0; r < GV_ROWS; r++) t[r] = r < nr ? _mm512_add_ps(even[r][i], odd[r][i]) : z;
        __m128 sum = mm4_hsum4(t[0], t[1], t[2], t[3]);
        if (bias) sum = _mm_add_ps(sum, _mm_maskz_loadu_ps(m, bias + r0));
        _mm_mask_storeu_ps(Y + i * w->rows + r0, m, sum);
    }
}

typedef void (*gemv_fn)(const msbnb__w4 *, const float *, int64_t, const int64_t *, int, const float *, float *);
#define GEMV(R, N)                                                                                           \
    static void gemv_##R##_##N(const msbnb__w4 *w, const float *Xp, int64_t r0, const int64_t *kblk, int sh,  \
                               const float *bias, float *Y) {                                                \
        gemv_rows(w, Xp, r0, R, N, kblk, sh, bias, Y);                                                       \
    }
GEMV(1, 1)
GEMV(2, 1)
GEMV(3, 1)
GEMV(4, 1)
GEMV(1, 2)
GEMV(2, 2)
GEMV(3, 2)
GEMV(4, 2)
static const gemv_fn gemv_table[2][GV_ROWS] = {{gemv_1_1, gemv_2_1, gemv_3_1, gemv_4_1},
                                               {gemv_1_2, gemv_2_2, gemv_3_2, gemv_4_2}};

static msbnb_status small_n_avx512(const msbnb__w4 *w, const float *X, int64_t n, const float *bias, float *Y) {
    const int64_t in = w->cols, out = w->rows;
    if (n > GV_MAX_N || in % 64 || w->block % 64) return MSBNB_ERR_UNSUPPORTED; /* not this kernel's shapes */
    int bs_shift = -1;
    for (int b = 0; b < 62; b++)
        if (((int64_t)1 << b) == w->block) bs_shift = b;
    if (w->flat_blocks && bs_shift < 0) return MSBNB_ERR_UNSUPPORTED;
    const int64_t chunks = in / 64;
    /* Xp [n][in]: permuted activations; kblk [chunks]: INT4 group of each 64-chunk */
    float *Xp = msbnb__alloc_aligned((size_t)(n * in) * sizeof(float) + (size_t)(chunks + 1) * sizeof(int64_t));
    RETURN_IF(!Xp, MSBNB_ERR_OUT_OF_MEMORY, "no memory for [%lld, %lld] permuted activations", (long long)n,
              (long long)in);
    int64_t *kblk = (int64_t *)(Xp + n * in + (n * in) % 2); /* 8-byte aligned after the floats */
    /* per 64-chunk Xp[16s + j] = x[4j + (s ^ 1)]: lanes j < 8 gather from x[0..31], j >= 8 from
     * x[32..63], both with index (4j + t) mod 32 (vpermt2ps reads 5 bits); one blend joins them */
    __m512i gidx[4];
    for (int s = 0; s < 4; s++) {
        int32_t lanes[16];
        for (int j = 0; j < 16; j++) lanes[j] = (4 * j + (s ^ 1)) & 31;
        gidx[s] = _mm512_loadu_si512(lanes);
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < chunks; c++) {
            const float *x = X + i * in + c * 64;
            const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
            const __m512 v2 = _mm512_loadu_ps(x + 32), v3 = _mm512_loadu_ps(x + 48);
            for (int s = 0; s < 4; s++) {
                const __m512 lo = _mm512_permutex2var_ps(v0, gidx[s], v1), hi = _mm512_permutex2var_ps(v2, gidx[s], v3);
                _mm512_storeu_ps(Xp + i * in + c * 64 + 16 * s, _mm512_mask_blend_ps((__mmask16)0xFF00, lo, hi));
            }
        }
    for (int64_t c = 0; c < chunks; c++) kblk[c] = c * 64 / w->block;
    const int64_t groups = (out + GV_ROWS - 1) / GV_ROWS;
    /* each group of weight rows meets the activation rows two at a time while it stays in L1; an
     * activation row sees the operations of n = 1 whatever n is */
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) \
    if ((double)n * (double)out * (double)in >= MSBNB__PARALLEL_MIN_WORK)
    for (int64_t g = 0; g < groups; g++) {
        const int64_t r0 = g * GV_ROWS;
        const int nr = (int)(out - r0 < GV_ROWS ? out - r0 : GV_ROWS);
        for (int64_t i0 = 0; i0 < n; i0 += 2)
            gemv_table[n - i0 >= 2 ? 1 : 0][nr - 1](w, Xp + i0 * in, r0, kblk, bs_shift, bias, Y + i0 * out);
    }
    msbnb__free_aligned(Xp);
    return MSBNB_OK;
}

const msbnb__mm4_kernels msbnb__mm4_avx512 = {
    .small_n = small_n_avx512,
    .decode = decode_avx512,
    .block = block_avx512,
    .block_t = block_t_avx512,
    .to_bf16 = NULL,
    .block_bf16 = NULL,
};
