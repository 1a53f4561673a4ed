/*
 * nn_gemm.c — the small products of LoRA adapters and weight gradients, with a fixed operation
 * order so results are bit-identical for every thread count.
 *
 * Why not OpenBLAS: its sgemm gives different bits with 1 thread than with 2 or more (measured
 * with OPENBLAS_NUM_THREADS on this host's Debian build), and its threads are not ours to set.
 * The adapter products are thin (one dimension is the rank r, 4..64), so plain loops cost little
 * next to the base product they sit beside; the fp32 weight gradient dW is the one large product
 * here, written as row axpys over a tile of output rows.
 *
 * Every output element is produced by one thread, in an order that depends only on the shapes:
 *  - dot products use 8 interleaved partial sums (lane u takes elements j ≡ u mod 8) added in a
 *    fixed tree, then the tail in order — the compiler vectorises the lanes without reassociating;
 *  - axpy forms add their terms in increasing index order.
 * -ffp-contract=off (global) keeps every multiply and add separately rounded, so scalar and
 * vectorised code give the same bits.
 */
#include <string.h>

#include "nn/nn_internal.h"

/* Parallelise only when there is enough work to pay for waking the threads. */
#define NN_PAR_MIN_WORK ((int64_t)1 << 16)

static inline float dot8(const float *a, const float *b, int64_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int u = 0; u < 8; u++) acc[u] += a[j + u] * b[j + u];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; j < n; j++) s += a[j] * b[j];
    return s;
}

/* y[i, m] (+)= alpha · Σ_k x[i, k] · w[m, k]      x: [n, kd], w: [md, kd], y: [n, md] */
void msbnb__nn_gemm_nt(const float *x, const float *w, int64_t n, int64_t kd, int64_t md, float alpha,
                       int accumulate, float *y) {
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (n * kd * md >= NN_PAR_MIN_WORK)
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * kd;
        float *yi = y + i * md;
        for (int64_t m = 0; m < md; m++) {
            float v = alpha * dot8(xi, w + m * kd, kd);
            yi[m] = accumulate ? yi[m] + v : v;
        }
    }
}

/* Column chunk of the axpy forms: partial rows live on the stack, so the full product is formed
 * first and then added to y — "accumulate" adds the finished product, as BLAS's beta = 1 does,
 * and a second identical call adds exactly the same values. */
#define NN_CHUNK 256

/* y[i, :] (+)= Σ_k (alpha · g[i, k]) · a[k, :]      g: [n, kd], a: [kd, md], y: [n, md] */
void msbnb__nn_gemm_nn(const float *g, const float *a, int64_t n, int64_t kd, int64_t md, float alpha,
                       int accumulate, float *y) {
    const int64_t chunks = (md + NN_CHUNK - 1) / NN_CHUNK;
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (n * kd * md >= NN_PAR_MIN_WORK)
    for (int64_t task = 0; task < n * chunks; task++) {
        const int64_t i = task / chunks, j0 = (task % chunks) * NN_CHUNK;
        const int64_t len = md - j0 < NN_CHUNK ? md - j0 : NN_CHUNK;
        float acc[NN_CHUNK];
        memset(acc, 0, sizeof acc);
        for (int64_t k = 0; k < kd; k++) {
            const float c = alpha * g[i * kd + k];
            const float *ak = a + k * md + j0;
            for (int64_t j = 0; j < len; j++) acc[j] += c * ak[j];
        }
        float *yi = y + i * md + j0;
        if (accumulate)
            for (int64_t j = 0; j < len; j++) yi[j] += acc[j];
        else
            memcpy(yi, acc, (size_t)len * sizeof(float));
    }
}

/* y[o, :] (+)= Σ_i (alpha · d[i, o]) · x[i, :]      d: [n, od], x: [n, md], y: [od, md]
 * Tasks are (tile of TN_TILE rows of y) × (chunk of NN_CHUNK columns), so each piece of a row of x
 * is read once per tile; terms are added in increasing i. */
#define TN_TILE 4
void msbnb__nn_gemm_tn(const float *d, const float *x, int64_t n, int64_t od, int64_t md, float alpha,
                       int accumulate, float *y) {
    const int64_t tiles = (od + TN_TILE - 1) / TN_TILE, chunks = (md + NN_CHUNK - 1) / NN_CHUNK;
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (n * od * md >= NN_PAR_MIN_WORK)
    for (int64_t task = 0; task < tiles * chunks; task++) {
        const int64_t o0 = (task / chunks) * TN_TILE, o1 = o0 + TN_TILE < od ? o0 + TN_TILE : od;
        const int64_t j0 = (task % chunks) * NN_CHUNK, len = md - j0 < NN_CHUNK ? md - j0 : NN_CHUNK;
        float acc[TN_TILE][NN_CHUNK];
        memset(acc, 0, sizeof acc);
        for (int64_t i = 0; i < n; i++) {
            const float *xi = x + i * md + j0;
            for (int64_t o = o0; o < o1; o++) {
                const float c = alpha * d[i * od + o];
                float *ao = acc[o - o0];
                for (int64_t j = 0; j < len; j++) ao[j] += c * xi[j];
            }
        }
        for (int64_t o = o0; o < o1; o++) {
            float *yo = y + o * md + j0;
            if (accumulate)
                for (int64_t j = 0; j < len; j++) yo[j] += acc[o - o0][j];
            else
                memcpy(yo, acc[o - o0], (size_t)len * sizeof(float));
        }
    }
}
