/*
 * matmul_4bit_tiled.c — the driver shared by the SIMD levels of the fused 4-bit products: tiles,
 * threads and scratch. The arithmetic lives in the ISA units (x86/matmul_4bit_*.c), reached
 * through a msbnb__mm4_kernels table (matmul_4bit.h).
 *
 * Forward, Y[n, out] = X[n, in] · deq(W)ᵀ (+ bias):
 *   W is cut into tiles of OT rows × KC columns. A thread owns whole row tiles (disjoint columns of
 *   Y); for each KC chunk it decodes the tile once into an L2-resident buffer
 *   Wt [OT][KC] float32 and runs the register-blocked kernel over ALL n rows of X, so each decoded
 *   weight is reused n times. Y[i, o] = sum over chunks (in order) of the chunk's lane-reduced
 *   sum; the order depends only on (in, KC), never on the thread count.
 *   OT = 64 rows: X[:, chunk] is streamed once per 64 outputs (with 16 rows, n = 512 and in = 11008
 *   the re-reads of X from L3/DRAM cost a third of the time), while the tile stays L2-resident.
 *   Scratch per thread: Wt (128 KiB), plus for FAST a bf16 tile Wb [OT][KCF] (256 KiB: 4x longer in
 *   k, so the lane reductions are 4x rarer); FAST also converts X once to bf16: Xb [n][in rounded up
 *   to 32] (activation-sized, never weight-sized).
 *
 * Transposed, dX[n, in] (+)= dY[n, out] · deq(W):
 *   a thread owns whole KC column chunks of dX; for each OT row tile (in order) it decodes
 *   Wt [OT][KC] and adds dY[:, tile] · Wt into dX[:, chunk]. The sum over o runs in increasing o.
 */
#include "kernels/matmul_4bit.h"

#include <string.h>

#define KC MSBNB__MM4_KC
#define OT MSBNB__MM4_OT
#define KCF (4 * MSBNB__MM4_KC) /* FAST: k per bf16 tile, [OT][KCF] bf16 = 256 KiB */

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---------------------------------------------------------------- forward */

msbnb_status msbnb__matmul_4bit_tiled(const msbnb__mm4_kernels *kern, const msbnb__w4 *w, const float *X,
                                      int64_t n, const float *bias, float *Y, msbnb_precision precision) {
    const int64_t in = w->cols, out = w->rows;
    const double work = (double)n * (double)in * (double)out; /* multiply-adds: threads or not */
    const int64_t tiles = (out + OT - 1) / OT;
    /* FAST pays for converting X and each tile to bf16 only when the tile is reused over rows */
    const int fast = precision == MSBNB_PRECISION_FAST && kern->block_bf16 && kern->to_bf16 && n >= 4;
    const int64_t inp = (in + 31) / 32 * 32; /* FAST: X rows padded with zeros to whole 32-lane pairs */
    if (precision == MSBNB_PRECISION_FAST && kern->small_n_fast) {
        msbnb_status st = kern->small_n_fast(w, X, n, bias, Y);
        if (st != MSBNB_ERR_UNSUPPORTED) return st;
    }
    if (kern->small_n) {
        msbnb_status st = kern->small_n(w, X, n, bias, Y);
        if (st != MSBNB_ERR_UNSUPPORTED) return st;
    }

    uint16_t *Xb = NULL; /* FAST: Xb [n][inp] bf16 copy of X */
    if (fast) {
        size_t bytes;
        RETURN_IF(!msbnb__mul_ok((size_t)n, (size_t)inp * sizeof(uint16_t), &bytes), MSBNB_ERR_OUT_OF_MEMORY,
                  "bf16 activations [%lld, %lld] overflow size_t", (long long)n, (long long)inp);
        Xb = msbnb__alloc_aligned(bytes);
        RETURN_IF(!Xb, MSBNB_ERR_OUT_OF_MEMORY, "no memory for bf16 activations [%lld, %lld]", (long long)n,
                  (long long)inp);
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (work >= MSBNB__PARALLEL_MIN_WORK)
        for (int64_t i = 0; i < n; i++) {
            kern->to_bf16(X + i * in, Xb + i * inp, in);
            memset(Xb + i * inp + in, 0, (size_t)(inp - in) * sizeof(uint16_t));
        }
    }

    int failed = 0;
    /* tile scratch sized to W when W is smaller than a tile (row strides multiples of 32): a full
     * [OT][KC] (+ [OT][KCF]) is 128 (384) KiB, which malloc serves by mmap and the first touch of
     * every page then faults — per call, for small models' layers */
    const int64_t ot = min64(OT, out), ldt = min64(KC, inp), ldb = min64(KCF, inp);
#pragma omp parallel num_threads(msbnb__threads()) if (work >= MSBNB__PARALLEL_MIN_WORK)
    {
        float *Wt = msbnb__alloc_aligned((size_t)ot * ldt * sizeof(float));                      /* [ot][ldt] */
        uint16_t *Wb = fast ? msbnb__alloc_aligned((size_t)ot * ldb * sizeof(uint16_t)) : NULL; /* [ot][ldb] */
        int ok = Wt && (!fast || Wb);
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; t++) {
            if (!ok) continue;
            const int64_t o0 = t * OT, nr = min64(OT, out - o0);
            if (fast) {
                /* bf16 tiles of KCF columns (fewer lane reductions), decoded KC columns at a time */
                for (int64_t k0 = 0; k0 < in; k0 += KCF) {
                    const int64_t kc = min64(KCF, in - k0), kcp = (kc + 31) / 32 * 32;
                    for (int64_t d0 = 0; d0 < kc; d0 += KC) {
                        const int64_t dc = min64(KC, kc - d0);
                        kern->decode(w, o0, nr, k0 + d0, dc, Wt, ldt);
                        for (int64_t j = 0; j < nr; j++) kern->to_bf16(Wt + j * ldt, Wb + j * ldb + d0, dc);
                    }
                    for (int64_t j = 0; j < nr; j++)
                        memset(Wb + j * ldb + kc, 0, (size_t)(kcp - kc) * sizeof(uint16_t));
                    kern->block_bf16(Xb + k0, inp, n, Wb, ldb, nr, kcp, Y + o0, out, k0 == 0);
                }
            } else {
                for (int64_t k0 = 0; k0 < in; k0 += KC) {
                    const int64_t kc = min64(KC, in - k0);
                    kern->decode(w, o0, nr, k0, kc, Wt, ldt);
                    kern->block(X + k0, in, n, Wt, ldt, nr, kc, Y + o0, out, k0 == 0);
                }
            }
            if (bias)
                for (int64_t i = 0; i < n; i++)
                    for (int64_t j = 0; j < nr; j++) Y[i * out + o0 + j] += bias[o0 + j];
        }
        msbnb__free_aligned(Wt);
        msbnb__free_aligned(Wb);
    }
    msbnb__free_aligned(Xb);
    RETURN_IF(failed, MSBNB_ERR_OUT_OF_MEMORY, "no memory for a [%d, %d] weight tile", OT, KC);
    return MSBNB_OK;
}

/* ---------------------------------------------------------------- transposed */

msbnb_status msbnb__matmul_4bit_t_tiled(const msbnb__mm4_kernels *kern, const msbnb__w4 *w, const float *dY,
                                        int64_t n, float *dX, int accumulate) {
    const int64_t in = w->cols, out = w->rows;
    const double work = (double)n * (double)in * (double)out; /* multiply-adds: threads or not */
    const int64_t chunks = (in + KC - 1) / KC;
    int failed = 0;
#pragma omp parallel num_threads(msbnb__threads()) if (work >= MSBNB__PARALLEL_MIN_WORK)
    {
        float *Wt = msbnb__alloc_aligned((size_t)OT * KC * sizeof(float)); /* [OT][KC] */
        if (!Wt) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; c++) {
            if (!Wt) continue;
            const int64_t k0 = c * KC, kc = min64(KC, in - k0);
            if (!accumulate)
                for (int64_t i = 0; i < n; i++) memset(dX + i * in + k0, 0, (size_t)kc * sizeof(float));
            for (int64_t o0 = 0; o0 < out; o0 += OT) {
                const int64_t nr = min64(OT, out - o0);
                kern->decode(w, o0, nr, k0, kc, Wt, KC);
                kern->block_t(dY + o0, out, n, Wt, KC, nr, kc, dX + k0, in);
            }
        }
        msbnb__free_aligned(Wt);
    }
    RETURN_IF(failed, MSBNB_ERR_OUT_OF_MEMORY, "no memory for a [%d, %d] weight tile", OT, KC);
    return MSBNB_OK;
}
