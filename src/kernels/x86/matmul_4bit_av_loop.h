/*
 * matmul_4bit_av_loop.h — the row loops of the FAST int8 products at the AVX2 level, shared by its
 * two units: x86/matmul_4bit_avxvnni.c (AV_VNNI 1: vpdpbusd of AVX-VNNI, the unsigned t̂ + 128
 * table, +128 removed per 8 chunks by one FMA with xcorr) and x86/matmul_4bit_avx2_int8.c
 * (AV_VNNI 0: plain AVX2, vpmaddubsw + vpmaddwd on |t̂| and x̂·sign(t̂), no offset). Both give the
 * same int32 inner sums; the fp32 steps differ only by the xcorr FMA. Define AV_VNNI, then include
 * once, in a unit compiled with the matching flags.
 *
 * Per chunk (64 weights = 32 code bytes, one ymm): one 16-bit shift and two `and`s expose the
 * nibbles, two vpshufb look up the code bytes, and the dot products against the chunk's odd and
 * even activation bytes leave in int32 lane j the sum over elements 8j..8j+7 — all 8 lanes belong
 * to the chunk, so one vcvtdq2ps and one FMA by the chunk's broadcast scale (statistic · step ÷ m)
 * accumulate it. Four accumulators per activation row hide the FMA latency. Weight rows one after
 * the other, prefetch 6 KiB ahead once per 64-byte line.
 */
#ifndef MSBNB_KERNELS_X86_MATMUL_4BIT_AV_LOOP_H
#define MSBNB_KERNELS_X86_MATMUL_4BIT_AV_LOOP_H

#include <immintrin.h>
#include <string.h>

#include "kernels/matmul_4bit.h"

#ifndef AV_VNNI
#error "define AV_VNNI (0 or 1) before including matmul_4bit_av_loop.h"
#endif

#define AV_INLINE static inline __attribute__((always_inline))
#define AV_ACC 4    /* accumulator chains per activation row                     */
#define AV_PF 6144  /* prefetch distance along W, bytes (as the AVX-512 unit)     */
#define AV_SEG 128  /* chunks per segment of decoded statistics (multiple of 8)  */
#define AV_GIDX 1024 /* INT4 rows of up to this many chunks gather their scales    */
#define AV_DQ_SHORT 16  /* rows of up to this many chunks decode their statistics in batches */
#define AV_DQ_BATCH 256 /* ... of about this many statistics (whole rows)                  */

/* ---------------------------------------------------------------- rows */

/* Chunk c of a row for nn activation rows; s[i] = the chunk's scale for activation row i. T: the
 * 16 code bytes in both 128-bit lanes — t̂ + 128 (unsigned) with AV_VNNI, else t̂ (signed). */
AV_INLINE void av_chunk(const uint8_t *src, int64_t c, const msbnb__fi8_act *a, __m256i T, const float *s,
                        __m256 *acc, const int nn, const int pf) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    if (pf && !(c & 1)) _mm_prefetch((const char *)((uintptr_t)src + (uintptr_t)(32 * c + AV_PF)), _MM_HINT_T0);
    const __m256i v = _mm256_loadu_si256((const __m256i *)(src + 32 * c));
    const __m256i wl = _mm256_shuffle_epi8(T, _mm256_and_si256(v, low4));
    const __m256i wh = _mm256_shuffle_epi8(T, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
#if !AV_VNNI
    /* |t̂| (<= 127) is the unsigned side and x̂·sign(t̂) the signed one: each vpmaddubsw pair sums
     * at most 2·127·127 = 32258, so the int16 never saturates; vpmaddwd by ones then sums the
     * pairs of 4 bytes into the int32 lanes vpdpbusd would fill */
    const __m256i al = _mm256_abs_epi8(wl), ah = _mm256_abs_epi8(wh), ones = _mm256_set1_epi16(1);
#endif
    for (int i = 0; i < nn; i++) {
        const __m256i xo = _mm256_loadu_si256((const __m256i *)(a->xo[i] + 32 * c));
        const __m256i xe = _mm256_loadu_si256((const __m256i *)(a->xe[i] + 32 * c));
#if AV_VNNI
        __m256i d = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), wl, xo);
        d = _mm256_dpbusd_avx_epi32(d, wh, xe);
#else
        const __m256i pl = _mm256_maddubs_epi16(al, _mm256_sign_epi8(xo, wl));
        const __m256i ph = _mm256_maddubs_epi16(ah, _mm256_sign_epi8(xe, wh));
        const __m256i d = _mm256_add_epi32(_mm256_madd_epi16(pl, ones), _mm256_madd_epi16(ph, ones));
#endif
        acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_broadcast_ss(s + 8 * i), acc[i]);
    }
}

/* Row `row` of W against nn activation rows (a compile-time constant): Y[i * w->rows + row] for
 * i < nn. gidx: plain INT4 only, else NULL: gidx[c] = (group of chunk c) * rows, padded with 8
 * zeros (8 chunks' scales gathered from w->stats + row at once; see the AVX-512 unit's vn_range).
 * scp_dq: the row's decoded double-quantized statistics (short rows, decoded in batches) or NULL.
 * buf: AV_SEG + 8 floats of scratch; pf: issue the W prefetches (first pass over the row). */
AV_INLINE void av_row(const msbnb__w4 *w, const msbnb__fi8_act *a, __m256i T, int64_t row, const int32_t *gidx,
                      const float *scp_dq, const int nn, const int pf, const int64_t *kblk, int bs_shift, float *buf,
                      const float *bias, float *Y) {
    const int64_t chunks = w->cols / 64;
    const int direct = w->stats && w->flat_blocks && w->block == 64;
    const int dq = !w->stats && w->flat_blocks && w->block == 64; /* statistics in place, double-quantized */
    const uint8_t *src = w->data + row * (w->cols / 2);
    __m256 acc[AV_ACC][2], corr[2];
    for (int i = 0; i < nn; i++) {
        corr[i] = _mm256_setzero_ps();
        for (int k = 0; k < AV_ACC; k++) acc[k][i] = _mm256_setzero_ps();
    }
    for (int64_t c0 = 0; c0 < chunks; c0 += AV_SEG) {
        const int64_t ce = c0 + AV_SEG < chunks ? c0 + AV_SEG : chunks;
        const float *scp = buf;
        if (direct) scp = w->stats + row * chunks + c0;
        else if (scp_dq) scp = scp_dq + c0;
        else if (dq) msbnb__mm4_dq_scales_avx2(w, row * chunks + c0, ce - c0, buf);
        else if (!gidx) msbnb__fi8_row_scales(w, row, c0, ce, kblk, bs_shift, buf);
        for (int64_t g = c0; g < ce; g += 8) { /* 8 chunks share one vector of scales */
            const int64_t gc = ce - g < 8 ? ce - g : 8;
            float s[2][8]; /* [activation row][chunk of the group] */
            __m256 st;
            if (gidx) { /* gidx is padded and entries past the row are masked off */
                const __m256i gi = _mm256_loadu_si256((const __m256i *)(gidx + g));
                const __m256 live = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)gc),
                                                                           _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
                st = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), w->stats + row, gi, live, 4);
            } else if (gc == 8) {
                st = _mm256_loadu_ps(scp + (g - c0));
            } else if (!direct || row * chunks + g + 8 <= w->rows * chunks) {
                /* the row's last group, 8 scales readable (buf is padded; in place, the next row's
                 * follow): load 8 and zero the lanes past the row. The scalar copy below, read
                 * back at once by a vector load, stalls on store forwarding (768-input rows took
                 * 1.6x as long as 1024-input ones) */
                const __m256 live = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)gc),
                                                                           _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
                st = _mm256_and_ps(_mm256_loadu_ps(scp + (g - c0)), live);
            } else { /* the tensor's last group: only gc scales exist (a scalar copy: no masked loads) */
                float tmp[8] = {0};
                memcpy(tmp, scp + (g - c0), (size_t)gc * sizeof(float));
                st = _mm256_loadu_ps(tmp);
            }
            for (int i = 0; i < nn; i++) { /* sxm and xcorr are 0 past the row's chunks (padded) */
                const __m256 sg = _mm256_mul_ps(st, _mm256_loadu_ps(a->sxm[i] + g));
                if (AV_VNNI) corr[i] = _mm256_fmadd_ps(sg, _mm256_loadu_ps(a->xcorr[i] + g), corr[i]);
                _mm256_storeu_ps(s[i], sg);
            }
            if (gc == 8) {
                for (int q = 0; q < 8; q++) av_chunk(src, g + q, a, T, &s[0][q], acc[q % AV_ACC], nn, pf);
            } else {
                for (int q = 0; q < gc; q++) av_chunk(src, g + q, a, T, &s[0][q], acc[0], nn, pf);
            }
        }
    }
    for (int i = 0; i < nn; i++) {
        __m256 t = _mm256_add_ps(acc[0][i], corr[i]);
        for (int k = 1; k < AV_ACC; k++) t = _mm256_add_ps(t, acc[k][i]);
        const __m128 h = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
        const __m128 h2 = _mm_add_ps(h, _mm_movehl_ps(h, h));
        const float y = _mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)));
        Y[i * w->rows + row] = bias ? y + bias[row] : y;
    }
}

/* Rows [rb, re) for n activation rows (1 <= n <= MSBNB__FI8_MAX_N): each W row meets them two at a
 * time, as in the AVX-512 unit, so every activation row sees the operations of n = 1. */
static void av_range(const msbnb__w4 *w, const msbnb__fi8_act *a, __m256i T, int64_t n, int64_t rb, int64_t re,
                     const int64_t *kblk, int bs_shift, const float *bias, float *Y) {
    const int64_t chunks = w->cols / 64, row_bytes = w->cols / 2;
    const int dq = !w->stats && w->flat_blocks && w->block == 64;
    float buf[AV_SEG + 8]; /* + 8: the partial group's full-width load */
    int32_t gidx[AV_GIDX + 8];
    /* double-quantized statistics of short rows (<= AV_DQ_SHORT chunks) decoded for a batch of
     * rows per call, as in the AVX-512 unit: per row, the decoder's fixed cost weighs on rows of
     * few statistics (768 inputs: 22.2 -> 17.6 us for 768 rows); on 2048- and 4096-input rows
     * batches measured 1-6 % slower (A/B), so those decode per row and segment as before */
    const int dq_rows = !dq || chunks > AV_DQ_SHORT ? 0 : (int)(AV_DQ_BATCH / chunks);
    float dqs[AV_DQ_BATCH + AV_DQ_SHORT + 8]; /* dqs[(row - dq_row0) * chunks + c], rows [dq_row0, dq_row1) */
    int64_t dq_row0 = rb, dq_row1 = rb;
    const int gather = !w->flat_blocks && w->stats && chunks <= AV_GIDX &&
                       (w->cols / w->block) * w->rows <= (int64_t)INT32_MAX;
    if (gather) {
        for (int64_t c = 0; c < chunks; c++) gidx[c] = (int32_t)(kblk[c] * w->rows);
        memset(gidx + chunks, 0, 8 * sizeof(int32_t));
    }
    for (int64_t o = 0; o < AV_PF && rb < re; o += 64)
        _mm_prefetch((const char *)((uintptr_t)(w->data + rb * row_bytes) + (uintptr_t)o), _MM_HINT_T0);
    for (int64_t row = rb; row < re; row++) {
        if (gather && chunks <= 32) msbnb__w4_prefetch_group_stats(w, row); /* see the AVX-512 unit */
        if (dq) { /* the statistics' codes 4 rows ahead: a thin stream the hardware follows late */
            const uintptr_t q0 = (uintptr_t)w->stats_q + (uintptr_t)((row + 4) * chunks);
            for (uintptr_t o = 0; o < (uintptr_t)chunks; o += 64) _mm_prefetch((const char *)(q0 + o), _MM_HINT_T0);
        }
        if (dq_rows && row >= dq_row1) {
            dq_row0 = row;
            dq_row1 = re - row < dq_rows ? re : row + dq_rows;
            msbnb__mm4_dq_scales_avx2(w, row * chunks, (dq_row1 - row) * chunks, dqs);
        }
        const float *scp_dq = dq_rows ? dqs + (row - dq_row0) * chunks : NULL;
        for (int64_t i0 = 0; i0 < n; i0 += 2) {
            msbnb__fi8_act ai; /* activation rows i0, i0 + 1 (entries 0 and 1 only) */
            msbnb__fi8_act_pair(a, n, i0, &ai);
            float *Yi = Y + i0 * w->rows;
            const int two = n - i0 >= 2, pf = i0 == 0; /* gidx: constant NULL where unused */
            if (gather && two) av_row(w, &ai, T, row, gidx, NULL, 2, pf, kblk, bs_shift, buf, bias, Yi);
            else if (gather) av_row(w, &ai, T, row, gidx, NULL, 1, pf, kblk, bs_shift, buf, bias, Yi);
            else if (two) av_row(w, &ai, T, row, NULL, scp_dq, 2, pf, kblk, bs_shift, buf, bias, Yi);
            else av_row(w, &ai, T, row, NULL, scp_dq, 1, pf, kblk, bs_shift, buf, bias, Yi);
        }
    }
    MSBNB__SIMD_LEAVE(); /* see kernels_internal.h */
}

#endif
