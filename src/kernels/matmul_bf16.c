/*
 * matmul_bf16.c — 4-bit products with bf16 numerics for bf16 training (train.h, MSBNB_COMPUTE_BF16):
 * every activation and every dequantized weight rounded to bf16 (round to nearest even), products
 * and sums in fp32. A bf16 x bf16 product is exact in fp32, so fp32 products of bf16-rounded
 * operands ARE bf16 products with fp32 accumulation: where the CPU has no bf16 dot products the
 * same numbers come from the fp32 engines on rounded operands (the oneDNN f32 tiles where the
 * `onednn` level takes the shape, else msbnb's tiles with a rounding decoder, else the scalar
 * loop below), at fp32 speed. Where it has them (AVX512-BF16, AMX) they run natively: oneDNN bf16,
 * or msbnb's bf16 tiles.
 * Error: |y - exact| <= (2·2^-9 + 2^-17 + (K + 3)·u)·Σ|x·w| (u = 2^-24, K terms; tested in
 * tests/kernels/test_onednn.c against the exact product of the dequantized weights).
 * Scratch: the rounded activations (activation-sized), the level's tile buffers.
 */
#include <stdatomic.h>
#include <string.h>

#include "kernels/matmul_4bit.h"
#include "kernels/onednn_matmul.h"

/* x rounded to the nearest bf16 (ties to even), as msbnb_f32_to_bf16 then back; NaN stays NaN. */
static inline float bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u) {
        if (u & 0x007fffffu) u |= 0x00400000u; /* quiet NaN, payload kept in the high bits */
    } else {
        u += 0x7fffu + ((u >> 16) & 1u);
    }
    u &= 0xffff0000u;
    memcpy(&x, &u, sizeof x);
    return x;
}

void msbnb__bf16_round_array(float *x, int64_t count) {
    for (int64_t i = 0; i < count; i++) x[i] = bf16_round(x[i]);
}

/* A rounded copy of A [count] (64-byte aligned; msbnb__free_aligned), NULL when out of memory. */
static float *rounded_copy(const float *A, int64_t count) {
    size_t bytes;
    if (!msbnb__mul_ok((size_t)count, sizeof(float), &bytes)) return NULL;
    float *r = msbnb__alloc_aligned(bytes);
    if (!r) return NULL;
    for (int64_t i = 0; i < count; i++) r[i] = bf16_round(A[i]);
    return r;
}

#if MSBNB_HAVE_X86
/* The level's decoders, then rounding: tiles of bf16 values for the fp32 kernels. */
static void decode_bf16_avx2(const msbnb__w4 *w, int64_t r0, int64_t nr, int64_t k0, int64_t kc, float *out,
                             int64_t ld) {
    msbnb__mm4_avx2.decode(w, r0, nr, k0, kc, out, ld);
    for (int64_t r = 0; r < nr; r++) msbnb__bf16_round_array(out + r * ld, kc);
}
static void decode_bf16_avx512(const msbnb__w4 *w, int64_t r0, int64_t nr, int64_t k0, int64_t kc, float *out,
                               int64_t ld) {
    msbnb__mm4_avx512.decode(w, r0, nr, k0, kc, out, ld);
    for (int64_t r = 0; r < nr; r++) msbnb__bf16_round_array(out + r * ld, kc);
}

/* The level's table for emulation: rounding decoder, no whole-product shortcuts (they decode on
 * their own), no bf16 entries. NULL below AVX2. */
static int emu_kernels(msbnb_isa isa, msbnb__mm4_kernels *k) {
    if (isa < MSBNB_ISA_AVX2) return 0;
    *k = isa >= MSBNB_ISA_AVX512 ? msbnb__mm4_avx512 : msbnb__mm4_avx2;
    k->decode = isa >= MSBNB_ISA_AVX512 ? decode_bf16_avx512 : decode_bf16_avx2;
    k->small_n = NULL, k->small_n_fast = NULL, k->to_bf16 = NULL, k->block_bf16 = NULL;
    return 1;
}
#endif

/* Scalar: one decoded, rounded row of W at a time; Y[i, o] = Σ_k (in order) xr[i, k]·wr[o, k] + bias.
 * t != 0: dX[i, k] (+)= Σ_o (in order) dyr[i, o]·wr[o, k]. Scratch: one row [cols]. */
static msbnb_status scalar_loop(const msbnb__w4 *w, const float *Ar, int64_t n, const float *bias, float *C, int t,
                                int accumulate) {
    const int64_t in = w->cols, out = w->rows;
    float *row = msbnb__alloc_aligned((size_t)in * sizeof(float));
    RETURN_IF(!row, MSBNB_ERR_OUT_OF_MEMORY, "no memory for a decoded row of %lld", (long long)in);
    if (t && !accumulate) memset(C, 0, (size_t)(n * in) * sizeof(float));
    for (int64_t o = 0; o < out; o++) {
        msbnb__w4_decode_ref(w, o, 1, 0, in, row, in);
        msbnb__bf16_round_array(row, in);
        for (int64_t i = 0; i < n; i++) {
            if (t) {
                const float d = Ar[i * out + o];
                for (int64_t k = 0; k < in; k++) C[i * in + k] += d * row[k];
            } else {
                float s = 0.0f;
                for (int64_t k = 0; k < in; k++) s += Ar[i * in + k] * row[k];
                C[i * out + o] = bias ? s + bias[o] : s;
            }
        }
    }
    msbnb__free_aligned(row);
    return MSBNB_OK;
}

msbnb_status msbnb__matmul_4bit_bf16(const msbnb__w4 *w, const float *X, int64_t n, const float *bias, float *Y) {
    const msbnb_isa isa = msbnb__isa();
#if MSBNB_HAVE_X86
    msbnb__od_dtype dt;
    if (isa >= MSBNB_ISA_AVX512_BF16 && n >= 4) { /* native: oneDNN bf16 or msbnb's bf16 tiles */
        msbnb__mm4_kernels k = msbnb__mm4_avx512;
        k.small_n = NULL, k.small_n_fast = NULL;
        k.to_bf16 = msbnb__mm4_avx512bf16.to_bf16, k.block_bf16 = msbnb__mm4_avx512bf16.block_bf16;
        if (msbnb__od4_forward_dtype(isa, n, MSBNB_PRECISION_FAST, &dt)) {
            msbnb_status st = msbnb__matmul_4bit_onednn(&k, w, X, n, bias, Y, dt, 0);
            if (st != MSBNB_ERR_UNSUPPORTED) return st;
        }
        return msbnb__matmul_4bit_tiled(&k, w, X, n, bias, Y, MSBNB_PRECISION_FAST);
    }
#endif
    float *Xr = rounded_copy(X, n * w->cols); /* [n, in] */
    RETURN_IF(!Xr, MSBNB_ERR_OUT_OF_MEMORY, "no memory for rounded activations [%lld, %lld]", (long long)n,
              (long long)w->cols);
    msbnb_status st = MSBNB_ERR_UNSUPPORTED;
#if MSBNB_HAVE_X86
    msbnb__mm4_kernels k;
    if (emu_kernels(isa, &k)) {
        if (msbnb__od4_forward_dtype(isa, n, MSBNB_PRECISION_EXACT, &dt) && dt == MSBNB__OD_F32)
            st = msbnb__matmul_4bit_onednn(&k, w, Xr, n, bias, Y, MSBNB__OD_F32, 1);
        if (st == MSBNB_ERR_UNSUPPORTED) st = msbnb__matmul_4bit_tiled(&k, w, Xr, n, bias, Y, MSBNB_PRECISION_EXACT);
    }
#endif
    if (st == MSBNB_ERR_UNSUPPORTED) st = scalar_loop(w, Xr, n, bias, Y, 0, 0);
    msbnb__free_aligned(Xr);
    return st;
}

msbnb_status msbnb__matmul_4bit_t_bf16(const msbnb__w4 *w, const float *dY, int64_t n, float *dX, int accumulate) {
    const msbnb_isa isa = msbnb__isa();
#if MSBNB_HAVE_X86
    msbnb__od_dtype dt;
    if (isa >= MSBNB_ISA_AVX512_BF16 && msbnb__od4_transposed_dtype(isa, n, 1, &dt) && dt == MSBNB__OD_BF16) {
        msbnb__mm4_kernels k = msbnb__mm4_avx512;
        k.to_bf16 = msbnb__mm4_avx512bf16.to_bf16;
        msbnb_status st = msbnb__matmul_4bit_t_onednn(&k, w, dY, n, dX, accumulate, dt, 0);
        if (st != MSBNB_ERR_UNSUPPORTED) return st;
    }
#endif
    float *dYr = rounded_copy(dY, n * w->rows); /* [n, out] */
    RETURN_IF(!dYr, MSBNB_ERR_OUT_OF_MEMORY, "no memory for rounded gradients [%lld, %lld]", (long long)n,
              (long long)w->rows);
    msbnb_status st = MSBNB_ERR_UNSUPPORTED;
#if MSBNB_HAVE_X86
    msbnb__mm4_kernels k;
    if (emu_kernels(isa, &k)) {
        if (msbnb__od4_transposed_dtype(isa, n, 0, &dt) && dt == MSBNB__OD_F32)
            st = msbnb__matmul_4bit_t_onednn(&k, w, dYr, n, dX, accumulate, MSBNB__OD_F32, 1);
        if (st == MSBNB_ERR_UNSUPPORTED) st = msbnb__matmul_4bit_t_tiled(&k, w, dYr, n, dX, accumulate);
    }
#endif
    if (st == MSBNB_ERR_UNSUPPORTED) st = scalar_loop(w, dYr, n, NULL, dX, 1, accumulate);
    msbnb__free_aligned(dYr);
    return st;
}

/* ---- dense fp32 weights (the model's output matrix in bf16 training).
 * Policy: oneDNN bf16 where the CPU has native bf16 dot products, from n = 32 — oneDNN's bf16
 * matmul ran 730–750 GFLOP/s on the AMX host against 165–186 for OpenBLAS's sgemm, and
 * AVX512-BF16 doubles the fp32 FMA rate; not measured here (no such CPU). On this AVX2 host the
 * output matrix stays fp32 on OpenBLAS: bf16 is not native, so rounding would only cost accuracy,
 * and oneDNN's f32 matmul measured level with OpenBLAS on it (bench `onednn`, dense table). */
#define DENSE_BF16_MIN_N 32
static atomic_int dense_force;
int msbnb__dense_bf16_force(int on) { return atomic_exchange(&dense_force, on ? 1 : 0); }

int msbnb__dense_bf16_pick(int64_t n) {
    if (!msbnb__onednn_on()) return 0;
    if (atomic_load(&dense_force)) return 1;
    return n >= DENSE_BF16_MIN_N && msbnb__od_has(MSBNB__OD_BF16);
}

msbnb_status msbnb__matmul_f32_bf16(const float *W, int64_t out, int64_t in, const float *X, int64_t n,
                                    const float *bias, float *Y) {
    if (!msbnb__onednn_on()) return MSBNB_ERR_UNSUPPORTED;
    if (msbnb__od_has(MSBNB__OD_BF16)) {
        msbnb_status st = msbnb__matmul_dense_onednn(W, out, in, X, n, bias, Y, MSBNB__OD_BF16, 0);
        if (st != MSBNB_ERR_UNSUPPORTED) return st;
    }
    float *Xr = rounded_copy(X, n * in); /* [n, in] */
    RETURN_IF(!Xr, MSBNB_ERR_OUT_OF_MEMORY, "no memory for rounded activations [%lld, %lld]", (long long)n,
              (long long)in);
    msbnb_status st = msbnb__matmul_dense_onednn(W, out, in, Xr, n, bias, Y, MSBNB__OD_F32, 1);
    msbnb__free_aligned(Xr);
    return st;
}

msbnb_status msbnb__matmul_f32_t_bf16(const float *W, int64_t out, int64_t in, const float *dY, int64_t n, float *dX,
                                      int accumulate) {
    if (!msbnb__onednn_on()) return MSBNB_ERR_UNSUPPORTED;
    if (msbnb__od_has(MSBNB__OD_BF16)) {
        msbnb_status st = msbnb__matmul_dense_t_onednn(W, out, in, dY, n, dX, accumulate, MSBNB__OD_BF16, 0);
        if (st != MSBNB_ERR_UNSUPPORTED) return st;
    }
    float *dYr = rounded_copy(dY, n * out); /* [n, out] */
    RETURN_IF(!dYr, MSBNB_ERR_OUT_OF_MEMORY, "no memory for rounded gradients [%lld, %lld]", (long long)n,
              (long long)out);
    msbnb_status st = msbnb__matmul_dense_t_onednn(W, out, in, dYr, n, dX, accumulate, MSBNB__OD_F32, 1);
    msbnb__free_aligned(dYr);
    return st;
}
