/*
 * matmul_int8_avx512.c — AVX-512 (F/BW/VL) INT8 product kernels. Compiled with the AVX512 flags
 * only; reached through msbnb__i8_kernels_get() when msbnb__isa() ≥ AVX512.
 *
 *  exact       n < GEMM_MIN_N: 4 weight rows are dequantized 16 codes at a time in registers and
 *              dotted with up to 4 activation rows (16 lanes along k, reduced at the end).
 *              n ≥ GEMM_MIN_N: a [KC][32] panel of dequantized weights (k-major, built with dword
 *              gathers across 16 rows) feeds an 8×32 register tile: broadcast x[i, k], two 16-wide weight
 *              vectors, 16 accumulators; Y holds the running sums between k panels, so every
 *              element is one sequential fused multiply-add chain over k.
 *  transposed  dequantize 8 rows W[o.., k0:k1] (to scratch, or in registers for ≤ 4 dX rows), then
 *              dX[i, k] = fma(dY[i, o], ŵ, dX[i, k]) for o ascending — the reference's order
 *              exactly, so the bits match it.
 *  dot         int8 × int8/uint8 → int32 without VNNI: vpmaddubsw needs an unsigned operand and
 *              saturates at ±32767, so the unsigned side is |w| and the signed side a·sign(w)
 *              (|w|·|a| ≤ 128·127, two products per int16 stay below 32767); uint8 weights are
 *              first shifted to w − 128 and the shift restored with 128·Σa.
 */
#include <immintrin.h>
#include <stdint.h>

#include "kernels/int8_kernels.h"

#define GEMM_MIN_N 48
#define KC 256 /* k panel of the GEMM path */
#define NR 32  /* weight rows per panel    */
#define MR 8   /* activation rows per tile */

#define INLINE static inline __attribute__((always_inline))

/* 16 codes (bytes of a 128-bit lane) → 16 dequantized floats, msbnb_dequantize's rule. */
INLINE __m512 deq16(__m128i c, int asym, __m512 vs, __m512i vzp) {
    if (asym) return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(c), vzp)), vs);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(c)), vs),
                         _mm512_set1_ps(MSBNB__I8_INV127));
}

static __mmask16 mask16(int64_t left) { return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u); }

/* ---------------------------------------------------------------- exact: few rows */

#ifndef GV8_PF
#define GV8_PF 2048 /* software prefetch distance along each of the 4 weight rows, bytes */
#endif

/* Y[i, o + j] = Σ_k X[i, k]·ŵ[o + j, k] for i < r ≤ 4, j < q ≤ 4: 16 codes of each of the q weight
 * rows are dequantized per step and each activation vector is loaded once for all q rows (the
 * activation rows are re-read from cache once per 4 weight rows, not once per row). 16 lanes
 * along k per accumulator, reduced at the end. */
INLINE void gemv_tile(const msbnb__i8w *w, int64_t o, const float *X, int64_t ldx, const int r, const int q, float *Y,
                      int64_t ldy) {
    const int64_t K = w->cols;
    const int asym = w->asym;
    const uint8_t *c = w->codes + o * K;
    __m512 vs[4];
    __m512i vzp[4];
    for (int j = 0; j < q; j++) {
        vs[j] = _mm512_set1_ps(msbnb__i8w_stat(w, o + j));
        vzp[j] = _mm512_set1_epi32(msbnb__i8w_zp(w, o + j));
    }
    __m512 acc[4][4];
    for (int i = 0; i < r; i++)
        for (int j = 0; j < q; j++) acc[i][j] = _mm512_setzero_ps();
    const int64_t kv = K & ~(int64_t)15;
    for (int64_t k = 0; k < kv; k += 16) {
        if (!(k & 63)) /* each row's line GV8_PF bytes ahead (integer address: may lie past W) */
            for (int j = 0; j < q; j++)
                _mm_prefetch((const char *)((uintptr_t)(c + j * K + k) + GV8_PF), _MM_HINT_T0);
        __m512 wv[4]; /* widening loads (vpmovsxbd/vpmovzxbd from memory) need no shuffles */
        for (int j = 0; j < q; j++) wv[j] = deq16(_mm_loadu_si128((const __m128i *)(c + j * K + k)), asym, vs[j], vzp[j]);
        for (int i = 0; i < r; i++) {
            __m512 xv = _mm512_loadu_ps(X + i * ldx + k);
            for (int j = 0; j < q; j++) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
        }
    }
    if (kv < K) {
        __mmask16 m = mask16(K - kv);
        __m512 wv[4];
        for (int j = 0; j < q; j++) wv[j] = deq16(_mm_maskz_loadu_epi8(m, c + j * K + kv), asym, vs[j], vzp[j]);
        for (int i = 0; i < r; i++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, X + i * ldx + kv);
            for (int j = 0; j < q; j++) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
        }
    }
    for (int i = 0; i < r; i++)
        for (int j = 0; j < q; j++) Y[i * ldy + o + j] = _mm512_reduce_add_ps(acc[i][j]);
}

static void exact_gemv(const msbnb__i8w *w, int64_t o0, int64_t o1, const float *X, int64_t ldx, int64_t n,
                       float *Y, int64_t ldy) {
    for (int64_t i = 0; i < n; i += 4) {
        const float *x = X + i * ldx;
        float *y = Y + i * ldy;
        const int r = (int)(n - i < 4 ? n - i : 4);
        int64_t o = o0;
        for (; o + 4 <= o1; o += 4) switch (r) {
            case 1: gemv_tile(w, o, x, ldx, 1, 4, y, ldy); break;
            case 2: gemv_tile(w, o, x, ldx, 2, 4, y, ldy); break;
            case 3: gemv_tile(w, o, x, ldx, 3, 4, y, ldy); break;
            default: gemv_tile(w, o, x, ldx, 4, 4, y, ldy); break;
            }
        if (o < o1) gemv_tile(w, o, x, ldx, r, (int)(o1 - o), y, ldy);
    }
}

/* ---------------------------------------------------------------- exact: GEMM */

/* panel [KC][NR]: panel[k * NR + j] = ŵ[ob + j, kb + k] for j < nr, 0 beyond.
 * Lanes run over 16 weight rows: one dword gather fetches codes k..k+3 of 16 rows, and each byte
 * is shifted out, widened and dequantized with the same IEEE operations as deq16 — the transpose
 * comes for free. The last < 4 columns of a panel that ends the row go through msbnb__i8_deq
 * (a 4-byte gather there could read past the matrix). */
static void pack_panel(const msbnb__i8w *w, int64_t ob, int nr, int64_t kb, int64_t kn, float *panel) {
    const int64_t K = w->cols;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i vidx = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)K));
    const __m512 inv127 = _mm512_set1_ps(MSBNB__I8_INV127);
    /* columns safe for 4-byte gathers; none when 16·K overflows the gathers' int32 offsets */
    const int64_t k4 = K > INT32_MAX / 16 ? 0 : kb + kn + 3 <= K ? kn : kn & ~(int64_t)3;
    for (int h = 0; h < NR / 16; h++) {
        int rows = nr - 16 * h;
        rows = rows < 0 ? 0 : rows > 16 ? 16 : rows;
        __mmask16 m = mask16(rows);
        float *dst = panel + 16 * h;
        if (!rows) {
            for (int64_t k = 0; k < kn; k++) _mm512_store_ps(dst + k * NR, _mm512_setzero_ps());
            continue;
        }
        const int64_t o = ob + 16 * h;
        __m512 vs = w->per_row ? _mm512_maskz_loadu_ps(m, w->stats + o) : _mm512_set1_ps(w->stats[0]);
        __m512i vzp = _mm512_setzero_si512();
        if (w->asym) vzp = w->per_row ? _mm512_maskz_loadu_epi32(m, w->zp + o) : _mm512_set1_epi32(w->zp[0]);
        const uint8_t *base = w->codes + o * K + kb;
        int64_t k = 0;
        for (; k + 4 <= k4; k += 4) {
            __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, vidx, base + k, 1);
            __m512i c0, c1, c2, c3;
            if (w->asym) {
                const __m512i ff = _mm512_set1_epi32(0xff);
                c0 = _mm512_sub_epi32(_mm512_and_si512(g, ff), vzp);
                c1 = _mm512_sub_epi32(_mm512_and_si512(_mm512_srli_epi32(g, 8), ff), vzp);
                c2 = _mm512_sub_epi32(_mm512_and_si512(_mm512_srli_epi32(g, 16), ff), vzp);
                c3 = _mm512_sub_epi32(_mm512_srli_epi32(g, 24), vzp);
                _mm512_store_ps(dst + (k + 0) * NR, _mm512_mul_ps(_mm512_cvtepi32_ps(c0), vs));
                _mm512_store_ps(dst + (k + 1) * NR, _mm512_mul_ps(_mm512_cvtepi32_ps(c1), vs));
                _mm512_store_ps(dst + (k + 2) * NR, _mm512_mul_ps(_mm512_cvtepi32_ps(c2), vs));
                _mm512_store_ps(dst + (k + 3) * NR, _mm512_mul_ps(_mm512_cvtepi32_ps(c3), vs));
            } else {
                c0 = _mm512_srai_epi32(_mm512_slli_epi32(g, 24), 24);
                c1 = _mm512_srai_epi32(_mm512_slli_epi32(g, 16), 24);
                c2 = _mm512_srai_epi32(_mm512_slli_epi32(g, 8), 24);
                c3 = _mm512_srai_epi32(g, 24);
                _mm512_store_ps(dst + (k + 0) * NR, _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(c0), vs), inv127));
                _mm512_store_ps(dst + (k + 1) * NR, _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(c1), vs), inv127));
                _mm512_store_ps(dst + (k + 2) * NR, _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(c2), vs), inv127));
                _mm512_store_ps(dst + (k + 3) * NR, _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(c3), vs), inv127));
            }
        }
        for (; k < kn; k++)
            for (int j = 0; j < 16; j++) dst[k * NR + j] = j < rows ? msbnb__i8_deq(w, o + j, kb + k) : 0.0f;
    }
}

/* Y[i, ob + j] (+)= Σ_k x[i, k] · panel[k][j] for i < mr, j < 32 (masked by om0/om1 on store). */
INLINE void micro(const float *X, int64_t ldx, const float *panel, int64_t kn, float *Y, int64_t ldy, const int mr,
                  int first, __mmask16 om0, __mmask16 om1) {
    __m512 acc[MR][2];
    for (int i = 0; i < mr; i++) {
        if (first) {
            acc[i][0] = _mm512_setzero_ps();
            acc[i][1] = _mm512_setzero_ps();
        } else {
            acc[i][0] = _mm512_maskz_loadu_ps(om0, Y + i * ldy);
            acc[i][1] = _mm512_maskz_loadu_ps(om1, Y + i * ldy + 16);
        }
    }
    for (int64_t k = 0; k < kn; k++) {
        __m512 w0 = _mm512_load_ps(panel + k * NR), w1 = _mm512_load_ps(panel + k * NR + 16);
        for (int i = 0; i < mr; i++) {
            __m512 xb = _mm512_set1_ps(X[i * ldx + k]);
            acc[i][0] = _mm512_fmadd_ps(xb, w0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(xb, w1, acc[i][1]);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm512_mask_storeu_ps(Y + i * ldy, om0, acc[i][0]);
        _mm512_mask_storeu_ps(Y + i * ldy + 16, om1, acc[i][1]);
    }
}

static void micro_any(const float *X, int64_t ldx, const float *panel, int64_t kn, float *Y, int64_t ldy, int mr,
                      int first, __mmask16 om0, __mmask16 om1) {
    switch (mr) {
    case 1: micro(X, ldx, panel, kn, Y, ldy, 1, first, om0, om1); break;
    case 2: micro(X, ldx, panel, kn, Y, ldy, 2, first, om0, om1); break;
    case 3: micro(X, ldx, panel, kn, Y, ldy, 3, first, om0, om1); break;
    case 4: micro(X, ldx, panel, kn, Y, ldy, 4, first, om0, om1); break;
    case 5: micro(X, ldx, panel, kn, Y, ldy, 5, first, om0, om1); break;
    case 6: micro(X, ldx, panel, kn, Y, ldy, 6, first, om0, om1); break;
    case 7: micro(X, ldx, panel, kn, Y, ldy, 7, first, om0, om1); break;
    default: micro(X, ldx, panel, kn, Y, ldy, 8, first, om0, om1); break;
    }
}

static void exact_gemm(const msbnb__i8w *w, int64_t o0, int64_t o1, const float *X, int64_t ldx, int64_t n,
                       float *Y, int64_t ldy, float *panel) {
    const int64_t K = w->cols;
    for (int64_t ob = o0; ob < o1; ob += NR) {
        int nr = (int)(o1 - ob < NR ? o1 - ob : NR);
        __mmask16 om0 = mask16(nr), om1 = mask16(nr > 16 ? nr - 16 : 0);
        for (int64_t kb = 0; kb < K; kb += KC) {
            int64_t kn = K - kb < KC ? K - kb : KC;
            pack_panel(w, ob, nr, kb, kn, panel);
            int64_t i = 0;
            for (; i + MR <= n; i += MR)
                micro(X + i * ldx + kb, ldx, panel, kn, Y + i * ldy + ob, ldy, MR, kb == 0, om0, om1);
            if (i < n) micro_any(X + i * ldx + kb, ldx, panel, kn, Y + i * ldy + ob, ldy, (int)(n - i), kb == 0, om0, om1);
        }
    }
}

void msbnb__i8_exact_avx512(const msbnb__i8w *w, int64_t o0, int64_t o1, const float *X, int64_t ldx, int64_t n,
                            float *Y, int64_t ldy, void *scratch) {
    if (n < GEMM_MIN_N) exact_gemv(w, o0, o1, X, ldx, n, Y, ldy);
    else exact_gemm(w, o0, o1, X, ldx, n, Y, ldy, (float *)scratch);
}

/* ---------------------------------------------------------------- transposed */

/* ≤ 4 rows of dX: for each block of MSBNB__I8_T_OB weight rows and each 16 columns, the codes are
 * dequantized in registers and applied to every row in o order — the same chain per element. */
static void t_few_rows(const msbnb__i8w *w, const float *dY, int64_t i0, int64_t i1, int64_t k0, int64_t k1,
                       float *dX) {
    const int64_t K = w->cols, out = w->rows, kn = k1 - k0;
    for (int64_t o = 0; o < out; o += MSBNB__I8_T_OB) {
        int ob = (int)(out - o < MSBNB__I8_T_OB ? out - o : MSBNB__I8_T_OB);
        __m512 vs[MSBNB__I8_T_OB];
        __m512i vzp[MSBNB__I8_T_OB];
        for (int b = 0; b < ob; b++) {
            vs[b] = _mm512_set1_ps(msbnb__i8w_stat(w, o + b));
            vzp[b] = _mm512_set1_epi32(msbnb__i8w_zp(w, o + b));
        }
        const uint8_t *c = w->codes + o * K + k0;
        for (int64_t k = 0; k < kn; k += 16) {
            __mmask16 m = mask16(kn - k);
            __m512 wv[MSBNB__I8_T_OB];
            /* full-width code loads except at the range's end: a masked load that misses the
             * caches holds up the loads behind it on this core */
            if (kn - k >= 16)
                for (int b = 0; b < ob; b++)
                    wv[b] = deq16(_mm_loadu_si128((const __m128i *)(c + b * K + k)), w->asym, vs[b], vzp[b]);
            else
                for (int b = 0; b < ob; b++) wv[b] = deq16(_mm_maskz_loadu_epi8(m, c + b * K + k), w->asym, vs[b], vzp[b]);
            for (int64_t i = i0; i < i1; i++) {
                const float *g = dY + i * out + o;
                float *d = dX + i * K + k0 + k;
                __m512 acc = _mm512_maskz_loadu_ps(m, d);
                for (int b = 0; b < ob; b++) acc = _mm512_fmadd_ps(_mm512_set1_ps(g[b]), wv[b], acc);
                _mm512_mask_storeu_ps(d, m, acc);
            }
        }
    }
}

/* dX rows d[r·ldd + k] += Σ_b g[r·ldg + b]·wk[b][k] for r < nr (1 or 2), b ascending: each
 * dequantized weight vector loaded once serves every row. Per 16 columns all loads come before
 * the stores, so rows a multiple of 4 KiB apart do not 4K-alias. */
INLINE void t_rows_from_scratch(const float *wk, const float *g, int64_t ldg, int ob, float *d, int64_t ldd,
                                int64_t kn, const int nr) {
    __m512 gb[2][MSBNB__I8_T_OB]; /* 16 broadcasts + 2 accumulators + 1 weight vector in registers */
    for (int r = 0; r < nr; r++)
        for (int b = 0; b < ob; b++) gb[r][b] = _mm512_set1_ps(g[r * ldg + b]);
    for (int64_t k = 0; k < kn; k += 16) {
        __mmask16 m = mask16(kn - k);
        __m512 acc[2];
        for (int r = 0; r < nr; r++) acc[r] = _mm512_maskz_loadu_ps(m, d + r * ldd + k);
        for (int b = 0; b < ob; b++) { /* o ascending, as the reference */
            __m512 wv = _mm512_maskz_loadu_ps(m, wk + b * MSBNB__I8_T_KB_MAX + k);
            for (int r = 0; r < nr; r++) acc[r] = _mm512_fmadd_ps(gb[r][b], wv, acc[r]);
        }
        for (int r = 0; r < nr; r++) _mm512_mask_storeu_ps(d + r * ldd + k, m, acc[r]);
    }
}

void msbnb__i8_t_avx512(const msbnb__i8w *w, const float *dY, int64_t i0, int64_t i1, int64_t k0, int64_t k1,
                        float *dX, int accumulate, void *scratch) {
    float *wk = (float *)scratch; /* [MSBNB__I8_T_OB][MSBNB__I8_T_KB_MAX]: dequantized row segments */
    const int64_t K = w->cols, out = w->rows, kn = k1 - k0;
    if (!accumulate)
        for (int64_t i = i0; i < i1; i++)
            for (int64_t k = k0; k < k1; k++) dX[i * K + k] = 0.0f;
    if (i1 - i0 <= 4) { /* few rows: dequantize in registers, no scratch round trip */
        t_few_rows(w, dY, i0, i1, k0, k1, dX);
        return;
    }
    for (int64_t o = 0; o < out; o += MSBNB__I8_T_OB) {
        int ob = (int)(out - o < MSBNB__I8_T_OB ? out - o : MSBNB__I8_T_OB);
        for (int b = 0; b < ob; b++) {
            const uint8_t *c = w->codes + (o + b) * K + k0;
            const __m512 vs = _mm512_set1_ps(msbnb__i8w_stat(w, o + b));
            const __m512i vzp = _mm512_set1_epi32(msbnb__i8w_zp(w, o + b));
            for (int64_t k = 0; k < kn; k += 16) {
                __mmask16 m = mask16(kn - k);
                _mm512_mask_storeu_ps(wk + b * MSBNB__I8_T_KB_MAX + k, m,
                                      deq16(_mm_maskz_loadu_epi8(m, c + k), w->asym, vs, vzp));
            }
        }
        int64_t i = i0;
        for (; i + 2 <= i1; i += 2) t_rows_from_scratch(wk, dY + i * out + o, out, ob, dX + i * K + k0, K, kn, 2);
        if (i < i1) t_rows_from_scratch(wk, dY + i * out + o, out, ob, dX + i * K + k0, K, kn, 1);
    }
}

/* ---------------------------------------------------------------- integer dot (no VNNI) */

#define DR 4 /* activation rows per register tile */
#define DO 4 /* weight rows per register tile     */

/* Sum of the 16 int32 lanes in uint32 arithmetic (wraps modulo 2³², never signed overflow). */
static uint32_t hsum_u32(__m512i v) {
    uint32_t t[16], s = 0;
    _mm512_storeu_si512((void *)t, v);
    for (int l = 0; l < 16; l++) s += t[l];
    return s;
}

static __mmask64 mask64(int64_t left) { return left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1); }

/* Σ over 64 bytes of a·w into int32 lanes, w signed (after the uint8 shift when needed). */
INLINE __m512i dot64(__m512i acc, __m512i a, __m512i w) {
    __m512i u = _mm512_abs_epi8(w);
    __m512i s = _mm512_mask_sub_epi8(a, _mm512_movepi8_mask(w), _mm512_setzero_si512(), a);
    __m512i p16 = _mm512_maddubs_epi16(u, s);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(p16, _mm512_set1_epi16(1)));
}

INLINE void dot_tile(const msbnb__i8w *w, int64_t o, const int8_t *a, int64_t lda, const int32_t *asum, const int r,
                     const int q, int32_t *C, int64_t ldc) {
    const int64_t K = w->cols;
    const __m512i shift = _mm512_set1_epi8((char)(w->asym ? 0x80 : 0));
    __m512i acc[DR][DO];
    for (int i = 0; i < r; i++)
        for (int j = 0; j < q; j++) acc[i][j] = _mm512_setzero_si512();
    for (int64_t k = 0; k < K; k += 64) {
        __mmask64 m = mask64(K - k);
        __m512i wv[DO];
        for (int j = 0; j < q; j++) /* bytes past K meet a = 0 (masked), so their shift is harmless */
            wv[j] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, w->codes + (o + j) * K + k), shift);
        for (int i = 0; i < r; i++) {
            __m512i av = _mm512_maskz_loadu_epi8(m, a + i * lda + k);
            for (int j = 0; j < q; j++) acc[i][j] = dot64(acc[i][j], av, wv[j]);
        }
    }
    for (int i = 0; i < r; i++)
        for (int j = 0; j < q; j++) {
            uint32_t s = hsum_u32(acc[i][j]);
            /* uint8 weights were shifted by −128: add back 128·Σa (wraps harmlessly mod 2³²) */
            if (w->asym) s += 128u * (uint32_t)asum[i];
            C[i * ldc + j] = (int32_t)s;
        }
}

void msbnb__i8_dot_avx512(const msbnb__i8w *w, int64_t o0, int64_t o1, const int8_t *a, int64_t lda,
                          const int32_t *asum, int64_t m, int32_t *C, int64_t ldc) {
    for (int64_t i = 0; i < m; i += DR)
        for (int64_t o = o0; o < o1; o += DO) {
            int r = (int)(m - i < DR ? m - i : DR), q = (int)(o1 - o < DO ? o1 - o : DO);
            const int8_t *ai = a + i * lda;
            int32_t *c = C + i * ldc + (o - o0);
            if (r == DR && q == DO) dot_tile(w, o, ai, lda, asum + i, DR, DO, c, ldc);
            else dot_tile(w, o, ai, lda, asum + i, r, q, c, ldc);
        }
}
