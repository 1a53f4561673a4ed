/*
 * matmul_int8_avx2.c — AVX2 + FMA INT8 product kernels. Compiled with the AVX2 flags only;
 * reached through msbnb__i8_kernels_get() when msbnb__isa() == AVX2. Same structure as the
 * AVX-512 file (see its header comment), with 8-lane vectors:
 *  exact       n < GEMM_MIN_N: weight rows dequantized 16 codes at a time, dotted with up to 4
 *              activation rows; otherwise a [KC][16] dequantized panel and a 6×16 register tile.
 *  transposed  the reference's fused multiply-add chain over o, 8 lanes at a time (bit-identical).
 *  dot         vpmaddubsw with |w| unsigned and a·sign(w) signed (vpsignb), int16 pairs summed by
 *              vpmaddwd; uint8 weights shifted to w − 128 and restored with 128·Σa.
 */
#include <math.h>

#include <immintrin.h>

#include "kernels/int8_kernels.h"

#define GEMM_MIN_N 8
#define KC 256
#define NR 16
#define MR 6
#define INLINE static inline __attribute__((always_inline))

/* 8 codes (low 8 bytes of c) → 8 dequantized floats, msbnb_dequantize's rule. */
INLINE __m256 deq8(__m128i c, int asym, __m256 vs, __m256i vzp) {
    if (asym) return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(c), vzp)), vs);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c)), vs),
                         _mm256_set1_ps(MSBNB__I8_INV127));
}

static float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---------------------------------------------------------------- exact: few rows */

INLINE void gemv_rows(const msbnb__i8w *w, int64_t o, const float *X, int64_t ldx, const int r, float *Y,
                      int64_t ldy) {
    const int64_t K = w->cols;
    const uint8_t *c = w->codes + o * K;
    const __m256 vs = _mm256_set1_ps(msbnb__i8w_stat(w, o));
    const __m256i vzp = _mm256_set1_epi32(msbnb__i8w_zp(w, o));
    const int asym = w->asym;
    __m256 acc[4][2];
    for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        __m128i raw = _mm_loadu_si128((const __m128i *)(c + k));
        __m256 w0 = deq8(raw, asym, vs, vzp), w1 = deq8(_mm_srli_si128(raw, 8), asym, vs, vzp);
        for (int i = 0; i < r; i++) {
            acc[i][0] = _mm256_fmadd_ps(_mm256_loadu_ps(X + i * ldx + k), w0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(_mm256_loadu_ps(X + i * ldx + k + 8), w1, acc[i][1]);
        }
    }
    for (int i = 0; i < r; i++) {
        float s = hsum8(_mm256_add_ps(acc[i][0], acc[i][1]));
        for (int64_t t = k; t < K; t++) s += X[i * ldx + t] * msbnb__i8_deq(w, o, t);
        Y[i * ldy + o] = s;
    }
}

static void exact_gemv(const msbnb__i8w *w, int64_t o0, int64_t o1, const float *X, int64_t ldx, int64_t n,
                       float *Y, int64_t ldy) {
    for (int64_t o = o0; o < o1; o++)
        for (int64_t i = 0; i < n; i += 4) {
            const float *x = X + i * ldx;
            float *y = Y + i * ldy;
            switch (n - i < 4 ? n - i : 4) {
            case 1: gemv_rows(w, o, x, ldx, 1, y, ldy); break;
            case 2: gemv_rows(w, o, x, ldx, 2, y, ldy); break;
            case 3: gemv_rows(w, o, x, ldx, 3, y, ldy); break;
            default: gemv_rows(w, o, x, ldx, 4, y, ldy); break;
            }
        }
}

/* ---------------------------------------------------------------- exact: GEMM */

/* panel [KC][NR]: panel[k * NR + j] = ŵ[ob + j, kb + k] for j < nr, 0 beyond. */
static void pack_panel(const msbnb__i8w *w, int64_t ob, int nr, int64_t kb, int64_t kn, float *panel) {
    const int64_t K = w->cols;
    float tmp[8];
    for (int j = 0; j < NR; j++) {
        if (j >= nr) {
            for (int64_t k = 0; k < kn; k++) panel[k * NR + j] = 0.0f;
            continue;
        }
        int64_t o = ob + j;
        const uint8_t *c = w->codes + o * K + kb;
        const __m256 vs = _mm256_set1_ps(msbnb__i8w_stat(w, o));
        const __m256i vzp = _mm256_set1_epi32(msbnb__i8w_zp(w, o));
        int64_t k = 0;
        for (; k + 8 <= kn; k += 8) {
            _mm256_storeu_ps(tmp, deq8(_mm_loadl_epi64((const __m128i *)(c + k)), w->asym, vs, vzp));
            for (int t = 0; t < 8; t++) panel[(k + t) * NR + j] = tmp[t];
        }
        for (; k < kn; k++) panel[k * NR + j] = msbnb__i8_deq(w, o, kb + k);
    }
}

INLINE void micro(const float *X, int64_t ldx, const float *panel, int64_t kn, float *Y, int64_t ldy, const int mr,
                  int first, int nr) {
    __m256 acc[MR][2];
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8), lane);
    for (int i = 0; i < mr; i++) {
        if (first) {
            acc[i][0] = acc[i][1] = _mm256_setzero_ps();
        } else {
            acc[i][0] = _mm256_maskload_ps(Y + i * ldy, m0);
            acc[i][1] = _mm256_maskload_ps(Y + i * ldy + 8, m1);
        }
    }
    for (int64_t k = 0; k < kn; k++) {
        __m256 w0 = _mm256_load_ps(panel + k * NR), w1 = _mm256_load_ps(panel + k * NR + 8);
        for (int i = 0; i < mr; i++) {
            __m256 xb = _mm256_broadcast_ss(X + i * ldx + k);
            acc[i][0] = _mm256_fmadd_ps(xb, w0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(xb, w1, acc[i][1]);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm256_maskstore_ps(Y + i * ldy, m0, acc[i][0]);
        _mm256_maskstore_ps(Y + i * ldy + 8, m1, acc[i][1]);
    }
}

static void micro_any(const float *X, int64_t ldx, const float *panel, int64_t kn, float *Y, int64_t ldy, int mr,
                      int first, int nr) {
    switch (mr) {
    case 1: micro(X, ldx, panel, kn, Y, ldy, 1, first, nr); break;
    case 2: micro(X, ldx, panel, kn, Y, ldy, 2, first, nr); break;
    case 3: micro(X, ldx, panel, kn, Y, ldy, 3, first, nr); break;
    case 4: micro(X, ldx, panel, kn, Y, ldy, 4, first, nr); break;
    case 5: micro(X, ldx, panel, kn, Y, ldy, 5, first, nr); break;
    default: micro(X, ldx, panel, kn, Y, ldy, 6, first, nr); break;
    }
}

static void exact_gemm(const msbnb__i8w *w, int64_t o0, int64_t o1, const float *X, int64_t ldx, int64_t n,
                       float *Y, int64_t ldy, float *panel) {
    const int64_t K = w->cols;
    for (int64_t ob = o0; ob < o1; ob += NR) {
        int nr = (int)(o1 - ob < NR ? o1 - ob : NR);
        for (int64_t kb = 0; kb < K; kb += KC) {
            int64_t kn = K - kb < KC ? K - kb : KC;
            pack_panel(w, ob, nr, kb, kn, panel);
            int64_t i = 0;
            for (; i + MR <= n; i += MR)
                micro(X + i * ldx + kb, ldx, panel, kn, Y + i * ldy + ob, ldy, MR, kb == 0, nr);
            if (i < n) micro_any(X + i * ldx + kb, ldx, panel, kn, Y + i * ldy + ob, ldy, (int)(n - i), kb == 0, nr);
        }
    }
}

void msbnb__i8_exact_avx2(const msbnb__i8w *w, int64_t o0, int64_t o1, const float *X, int64_t ldx, int64_t n,
                          float *Y, int64_t ldy, void *scratch) {
    if (n < GEMM_MIN_N) exact_gemv(w, o0, o1, X, ldx, n, Y, ldy);
    else exact_gemm(w, o0, o1, X, ldx, n, Y, ldy, (float *)scratch);
}

/* ---------------------------------------------------------------- transposed */

void msbnb__i8_t_avx2(const msbnb__i8w *w, const float *dY, int64_t i0, int64_t i1, int64_t k0, int64_t k1,
                      float *dX, int accumulate, void *scratch) {
    float *wk = (float *)scratch; /* [MSBNB__I8_T_OB][MSBNB__I8_T_KB_MAX]: dequantized row segments */
    const int64_t K = w->cols, out = w->rows, kn = k1 - k0, kv = kn & ~(int64_t)7;
    if (!accumulate)
        for (int64_t i = i0; i < i1; i++)
            for (int64_t k = k0; k < k1; k++) dX[i * K + k] = 0.0f;
    for (int64_t o = 0; o < out; o += MSBNB__I8_T_OB) {
        int ob = (int)(out - o < MSBNB__I8_T_OB ? out - o : MSBNB__I8_T_OB);
        for (int b = 0; b < ob; b++) {
            const uint8_t *c = w->codes + (o + b) * K + k0;
            const __m256 vs = _mm256_set1_ps(msbnb__i8w_stat(w, o + b));
            const __m256i vzp = _mm256_set1_epi32(msbnb__i8w_zp(w, o + b));
            int64_t k = 0;
            for (; k < kv; k += 8)
                _mm256_storeu_ps(wk + b * MSBNB__I8_T_KB_MAX + k, deq8(_mm_loadl_epi64((const __m128i *)(c + k)), w->asym, vs, vzp));
            for (; k < kn; k++) wk[b * MSBNB__I8_T_KB_MAX + k] = msbnb__i8_deq(w, o + b, k0 + k);
        }
        for (int64_t i = i0; i < i1; i++) {
            const float *g = dY + i * out + o;
            float *d = dX + i * K + k0;
            int64_t k = 0;
            for (; k < kv; k += 8) {
                __m256 acc = _mm256_loadu_ps(d + k);
                for (int b = 0; b < ob; b++) /* o ascending, as the reference */
                    acc = _mm256_fmadd_ps(_mm256_set1_ps(g[b]), _mm256_loadu_ps(wk + b * MSBNB__I8_T_KB_MAX + k), acc);
                _mm256_storeu_ps(d + k, acc);
            }
            for (; k < kn; k++)
                for (int b = 0; b < ob; b++) d[k] = fmaf(g[b], wk[b * MSBNB__I8_T_KB_MAX + k], d[k]);
        }
    }
}

/* ---------------------------------------------------------------- integer dot */

#define DR 2
#define DO 4

static uint32_t hsum_u32(__m256i v) {
    uint32_t t[8], s = 0;
    _mm256_storeu_si256((__m256i *)t, v);
    for (int l = 0; l < 8; l++) s += t[l];
    return s;
}

INLINE __m256i dot32(__m256i acc, __m256i a, __m256i w) {
    __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

INLINE void dot_tile(const msbnb__i8w *w, int64_t o, const int8_t *a, int64_t lda, const int32_t *asum, const int r,
                     const int q, int32_t *C, int64_t ldc) {
    const int64_t K = w->cols, kv = K & ~(int64_t)31;
    const int asym = w->asym;
    const __m256i shift = _mm256_set1_epi8((char)(asym ? 0x80 : 0));
    __m256i acc[DR][DO];
    for (int i = 0; i < r; i++)
        for (int j = 0; j < q; j++) acc[i][j] = _mm256_setzero_si256();
    for (int64_t k = 0; k < kv; k += 32) {
        __m256i wv[DO];
        for (int j = 0; j < q; j++)
            wv[j] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(w->codes + (o + j) * K + k)), shift);
        for (int i = 0; i < r; i++) {
            __m256i av = _mm256_loadu_si256((const __m256i *)(a + i * lda + k));
            for (int j = 0; j < q; j++) acc[i][j] = dot32(acc[i][j], av, wv[j]);
        }
    }
    for (int i = 0; i < r; i++)
        for (int j = 0; j < q; j++) {
            uint32_t s = hsum_u32(acc[i][j]);
            const uint8_t *c = w->codes + (o + j) * K;
            for (int64_t k = kv; k < K; k++) /* tail, with the same −128 shift for uint8 codes */
                s += (uint32_t)((int32_t)a[i * lda + k] * (asym ? (int32_t)c[k] - 128 : (int32_t)(int8_t)c[k]));
            if (asym) s += 128u * (uint32_t)asum[i];
            C[i * ldc + j] = (int32_t)s;
        }
}

void msbnb__i8_dot_avx2(const msbnb__i8w *w, int64_t o0, int64_t o1, const int8_t *a, int64_t lda,
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
