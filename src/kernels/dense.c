/*
 * dense.c — dense fp32 products through OpenBLAS sgemm (Debian's libopenblas).
 *
 *   msbnb_matmul_f32    Y[n, out]  = X[n, in] · W[out, in]ᵀ (+ bias[out])
 *   msbnb_matmul_f32_t  dX[n, in] (+)= dY[n, out] · W[out, in]
 *
 * Thread-count invariance: OpenBLAS's own threading is not bit-stable (with 1 thread it takes
 * other code paths than with 2+, and its threaded gemv splits the K sum), so msbnb splits the
 * output columns into fixed chunks of DENSE_CHUNK — the split never depends on the thread count —
 * and runs one single-threaded sgemm per chunk on msbnb's OpenMP threads. OpenBLAS's thread count
 * is set to 1 for the duration of the call and restored afterwards (a host program that calls
 * OpenBLAS concurrently from other threads may see its setting change meanwhile; see README).
 * cblas takes 32-bit sizes: in and out must be below 2³¹, n is processed in chunks that fit.
 *
 * Tiled path (x86, AVX-512 level and up, n ≥ TILED_MIN_N): the register-blocked micro-kernels of
 * the fused 4-bit products (matmul_4bit.h, x86/matmul_4bit_avx512.c) run on W — the fp32 matrix
 * needs no decoding, only a copy of each tile into contiguous scratch — so the product runs at
 * their AVX-512 speed instead of OpenBLAS's AVX2 sgemm on this Debian build (measured on the
 * 32000×768 output matrix, N = 256, two cores: see docs/training.md). Same tiling as the 4-bit
 * driver (matmul_4bit_tiled.c): forward, a thread owns tiles of OT rows of W and runs the kernel
 * over all n rows of X per KC chunk of k; each Y element is the in-order sum over the fixed KC
 * chunks of a fixed lane-reduced sum, so the bits do not depend on the thread count. Transposed,
 * a thread owns a column range of dX and adds dY[:, tile] · W[tile, range] for the OT-row tiles in
 * increasing order; every dX element is updated by the same FMAs in the same order (j = 0, 1, ...)
 * whatever the range, so the range width may follow the thread count without changing a bit.
 */
#include <limits.h>
#include <string.h>

#include <cblas.h>

#include "core/internal.h"
#include "kernels/kernels_internal.h"
#include "kernels/matmul_4bit.h"
#include <msbnb/kernels.h>

#define BLAS_MAX ((int64_t)INT_MAX)
/* Output columns per sgemm call: large enough to keep sgemm efficient, small enough to spread
 * a 4096-wide layer over many threads. */
#define DENSE_CHUNK ((int64_t)256)

/* OpenBLAS's run-time thread control (declared in its cblas.h on Debian). */
int msbnb__blas_single_thread_begin(void) {
    int prev = openblas_get_num_threads();
    if (prev != 1) openblas_set_num_threads(1);
    return prev;
}
void msbnb__blas_single_thread_end(int prev) {
    if (prev != 1) openblas_set_num_threads(prev);
}
/* OpenBLAS takes a work buffer of about 128 MiB of address space for each thread that calls it
 * (Debian's build: 134221824 bytes seen under ulimit -v), and when the mmap fails it retries
 * forever: under a tight address-space limit the first product would hang. Detected up front. */
#define BLAS_BUFFER_BYTES ((uint64_t)134221824 + ((uint64_t)8 << 20))

msbnb_status msbnb__blas_check_memory(void) {
    uint64_t left = msbnb__address_space_left();
    if (left == UINT64_MAX) return MSBNB_OK;
    const uint64_t threads = (uint64_t)msbnb__threads(), need = threads * BLAS_BUFFER_BYTES;
    RETURN_IF(left < need, MSBNB_ERR_OUT_OF_MEMORY,
              "the address-space limit (ulimit -v) leaves %llu MB, and OpenBLAS needs about 136 MB per thread "
              "(%llu threads): raise the limit or use fewer threads",
              (unsigned long long)(left >> 20), (unsigned long long)threads);
    return MSBNB_OK;
}

#define blas_single_thread_begin msbnb__blas_single_thread_begin
#define blas_single_thread_end msbnb__blas_single_thread_end

/* C is cut into fixed blocks, one single-threaded sgemm call each: FIXED_ROWS rows (fewer blocks
 * mean fewer re-packings of B by OpenBLAS: 128 measured 7% faster than 64 on the 768-wide training
 * bench); when that leaves a single block (a thin C such as a LoRA gradient [r, in]), FIXED_COLS
 * columns instead, so the work still spreads over the threads. The cut depends only on the shape. */
#define FIXED_ROWS ((int64_t)128)
#define FIXED_COLS ((int64_t)256)

void msbnb__sgemm_fixed(int trans_a, int trans_b, int64_t M, int64_t Nc, int64_t K, float alpha, const float *A,
                        int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    const int by_rows = M > FIXED_ROWS;
    const int64_t span = by_rows ? FIXED_ROWS : FIXED_COLS, extent = by_rows ? M : Nc;
    const int64_t blocks = (extent + span - 1) / span;
    const int threaded = blocks > 1 && M * Nc * K >= ((int64_t)1 << 18);
    int prev = blas_single_thread_begin();
#pragma omp parallel for if(threaded) num_threads(msbnb__threads()) schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t x0 = b * span, w = extent - x0 < span ? extent - x0 : span;
        const float *a = A, *bb = B;
        float *c = C;
        int64_t m = M, nc = Nc;
        if (by_rows) { /* rows x0.. of op(A) and C */
            a = trans_a ? A + x0 : A + x0 * lda;
            c = C + x0 * ldc;
            m = w;
        } else { /* columns x0.. of op(B) and C */
            bb = trans_b ? B + x0 * ldb : B + x0;
            c = C + x0;
            nc = w;
        }
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)m,
                    (int)nc, (int)K, alpha, a, (int)lda, bb, (int)ldb, beta, c, (int)ldc);
    }
    blas_single_thread_end(prev);
}

static msbnb_status check_shape(int64_t out, int64_t in, int64_t n) {
    RETURN_IF(n < 0, MSBNB_ERR_INVALID_ARG, "n = %lld is negative", (long long)n);
    RETURN_IF(out < 1 || in < 1, MSBNB_ERR_SHAPE, "W shape [%lld, %lld] must be at least [1, 1]", (long long)out,
              (long long)in);
    RETURN_IF(out > BLAS_MAX || in > BLAS_MAX, MSBNB_ERR_UNSUPPORTED,
              "W shape [%lld, %lld] exceeds the 32-bit BLAS interface", (long long)out, (long long)in);
    size_t tmp;
    TRY(msbnb__checked_mul(n, in > out ? in : out, &tmp));
    TRY(msbnb__checked_mul(out, in, &tmp));
    return MSBNB_OK;
}

/* Below this many rows sgemm is kept: each W tile is reused only n times by the tiled path. Measured
 * on the 32000×768 matrix, 2 threads: at n = 16 tiled 160/180 GFLOP/s (forward/transposed) against
 * sgemm's 75/90; at n = 8 72/55 against 41/59, too close to switch without more shapes. */
#define TILED_MIN_N ((int64_t)16)

/* Micro-kernels for the tiled path at the current level, or NULL to use sgemm. */
static const msbnb__mm4_kernels *tiled_kernels(int64_t n) {
#if MSBNB_HAVE_X86
    if (n >= TILED_MIN_N && msbnb__isa() >= MSBNB_ISA_AVX512) return &msbnb__mm4_avx512;
#else
    (void)n;
#endif
    return NULL;
}

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Copy W[r0 .. r0+nr, k0 .. k0+kc) (W [out][in]) into Wt [nr][MSBNB__MM4_KC]: the kernels read a
 * contiguous 128 KiB tile instead of nr rows 4·in bytes apart (measured ~7% faster on the
 * 32000×768 output matrix); values are unchanged. */
static void copy_tile(const float *W, int64_t in, int64_t r0, int64_t nr, int64_t k0, int64_t kc, float *Wt) {
    for (int64_t j = 0; j < nr; j++)
        memcpy(Wt + j * MSBNB__MM4_KC, W + (r0 + j) * in + k0, (size_t)kc * sizeof(float));
}

/* One thread's tile buffer Wt [OT][KC] float32 (called inside the parallel region); on failure
 * raises *failed (the caller reports OUT_OF_MEMORY) and returns NULL. */
static float *tile_scratch(int *failed) {
    float *Wt = msbnb__alloc_aligned((size_t)MSBNB__MM4_OT * MSBNB__MM4_KC * sizeof(float));
    if (!Wt) {
#pragma omp atomic write
        *failed = 1;
    }
    return Wt;
}

/* Y[n, out] = X[n, in] · W[out, in]ᵀ (+ bias). Scratch per thread: Wt [OT][KC] float32. */
static msbnb_status f32_tiled(const msbnb__mm4_kernels *kern, const float *W, int64_t out, int64_t in,
                              const float *X, int64_t n, const float *bias, float *Y) {
    const int64_t tiles = (out + MSBNB__MM4_OT - 1) / MSBNB__MM4_OT;
    int failed = 0;
#pragma omp parallel num_threads(msbnb__threads()) \
    if ((double)n * (double)out * (double)in >= MSBNB__PARALLEL_MIN_WORK)
    {
        float *Wt = tile_scratch(&failed);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; t++) {
            if (!Wt) continue;
            const int64_t o0 = t * MSBNB__MM4_OT, nr = min64(MSBNB__MM4_OT, out - o0);
            for (int64_t k0 = 0; k0 < in; k0 += MSBNB__MM4_KC) {
                const int64_t kc = min64(MSBNB__MM4_KC, in - k0);
                copy_tile(W, in, o0, nr, k0, kc, Wt);
                kern->block(X + k0, in, n, Wt, MSBNB__MM4_KC, nr, kc, Y + o0, out, k0 == 0);
            }
            if (bias)
                for (int64_t i = 0; i < n; i++)
                    for (int64_t j = 0; j < nr; j++) Y[i * out + o0 + j] += bias[o0 + j];
        }
        msbnb__free_aligned(Wt);
    }
    RETURN_IF(failed, MSBNB_ERR_OUT_OF_MEMORY, "no memory for a [%d, %d] weight tile", MSBNB__MM4_OT,
              MSBNB__MM4_KC);
    return MSBNB_OK;
}

/* dX[n, in] (+)= dY[n, out] · W[out, in]: the c-th of `ranges` threads' work items owns dX columns
 * [c·cw, (c+1)·cw), cw a multiple of 64 (the transposed kernel's column block); for each OT-row tile
 * of W, in order, and each KC-wide piece of its columns, the kernel adds dY[:, tile] · W[tile, piece].
 * Scratch per thread: Wt [OT][KC] float32. */
static msbnb_status f32_t_tiled(const msbnb__mm4_kernels *kern, const float *W, int64_t out, int64_t in,
                                const float *dY, int64_t n, float *dX, int accumulate) {
    const int64_t threads = msbnb__threads();
    const int64_t cw = ((in + threads - 1) / threads + 63) / 64 * 64;
    const int64_t ranges = (in + cw - 1) / cw;
    int failed = 0;
#pragma omp parallel num_threads(msbnb__threads()) \
    if ((double)n * (double)out * (double)in >= MSBNB__PARALLEL_MIN_WORK)
    {
        float *Wt = tile_scratch(&failed);
#pragma omp for schedule(static)
        for (int64_t c = 0; c < ranges; c++) {
            if (!Wt) continue;
            const int64_t c0 = c * cw, c1 = min64(in, c0 + cw);
            if (!accumulate)
                for (int64_t i = 0; i < n; i++) memset(dX + i * in + c0, 0, (size_t)(c1 - c0) * sizeof(float));
            for (int64_t o0 = 0; o0 < out; o0 += MSBNB__MM4_OT) {
                const int64_t nr = min64(MSBNB__MM4_OT, out - o0);
                for (int64_t k0 = c0; k0 < c1; k0 += MSBNB__MM4_KC) {
                    const int64_t kc = min64(MSBNB__MM4_KC, c1 - k0);
                    copy_tile(W, in, o0, nr, k0, kc, Wt);
                    kern->block_t(dY + o0, out, n, Wt, MSBNB__MM4_KC, nr, kc, dX + k0, in);
                }
            }
        }
        msbnb__free_aligned(Wt);
    }
    RETURN_IF(failed, MSBNB_ERR_OUT_OF_MEMORY, "no memory for a [%d, %d] weight tile", MSBNB__MM4_OT,
              MSBNB__MM4_KC);
    return MSBNB_OK;
}

/* Rows per sgemm call so that rows · max(in, out) stays addressable by a 32-bit leading size. */
static int64_t chunk_rows(int64_t n) { return n < BLAS_MAX ? n : BLAS_MAX; }

msbnb_status msbnb_matmul_f32(const float *W, int64_t out, int64_t in, const float *X, int64_t n,
                              const float *bias, float *Y) {
    TRY(check_shape(out, in, n));
    RETURN_IF(!W, MSBNB_ERR_INVALID_ARG, "W must not be NULL");
    if (n == 0) return MSBNB_OK;
    RETURN_IF(!X || !Y, MSBNB_ERR_INVALID_ARG, "X and Y must not be NULL");
    const msbnb__mm4_kernels *kern = tiled_kernels(n);
    if (kern) {
        return f32_tiled(kern, W, out, in, X, n, bias, Y);
    }
    int prev = blas_single_thread_begin();
    int64_t n_chunks = (out + DENSE_CHUNK - 1) / DENSE_CHUNK;
    for (int64_t r0 = 0; r0 < n; r0 += chunk_rows(n - r0)) {
        int64_t m = chunk_rows(n - r0);
        float *y = Y + r0 * out;
        const float *x = X + r0 * in;
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) \
    if (n_chunks > 1 && (double)m * (double)out * (double)in >= MSBNB__PARALLEL_MIN_WORK)
        for (int64_t c = 0; c < n_chunks; c++) {
            int64_t o0 = c * DENSE_CHUNK, w = out - o0 < DENSE_CHUNK ? out - o0 : DENSE_CHUNK;
            float beta = 0.0f;
            if (bias) {
                for (int64_t i = 0; i < m; i++)
                    for (int64_t o = o0; o < o0 + w; o++) y[i * out + o] = bias[o];
                beta = 1.0f;
            }
            /* y[:, o0:o0+w] = x · W[o0:o0+w, :]ᵀ; one row: sgemv (OpenBLAS' sgemm with m = 1 streamed W
             * at ~10 GB/s here, a third of the memory: a tied 32000-token output layer dominated
             * decoding) */
            if (m == 1)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)w, (blasint)in, 1.0f, W + o0 * in, (blasint)in, x, 1,
                            beta, y + o0, 1);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)m, (blasint)w, (blasint)in, 1.0f, x,
                            (blasint)in, W + o0 * in, (blasint)in, beta, y + o0, (blasint)out);
        }
    }
    blas_single_thread_end(prev);
    return MSBNB_OK;
}

msbnb_status msbnb_matmul_f32_t(const float *W, int64_t out, int64_t in, const float *dY, int64_t n, float *dX,
                                int accumulate) {
    TRY(check_shape(out, in, n));
    RETURN_IF(!W, MSBNB_ERR_INVALID_ARG, "W must not be NULL");
    if (n == 0) return MSBNB_OK;
    RETURN_IF(!dY || !dX, MSBNB_ERR_INVALID_ARG, "dY and dX must not be NULL");
    const msbnb__mm4_kernels *kern = tiled_kernels(n);
    if (kern) {
        return f32_t_tiled(kern, W, out, in, dY, n, dX, accumulate);
    }
    int prev = blas_single_thread_begin();
    int64_t n_chunks = (in + DENSE_CHUNK - 1) / DENSE_CHUNK;
    for (int64_t r0 = 0; r0 < n; r0 += chunk_rows(n - r0)) {
        int64_t m = chunk_rows(n - r0);
        const float *dy = dY + r0 * out;
        float *dx = dX + r0 * in;
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) \
    if (n_chunks > 1 && (double)m * (double)out * (double)in >= MSBNB__PARALLEL_MIN_WORK)
        for (int64_t c = 0; c < n_chunks; c++) {
            int64_t i0 = c * DENSE_CHUNK, w = in - i0 < DENSE_CHUNK ? in - i0 : DENSE_CHUNK;
            /* dx[:, i0:i0+w] (+)= dy · W[:, i0:i0+w] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)m, (blasint)w, (blasint)out, 1.0f, dy,
                        (blasint)out, W + i0, (blasint)in, accumulate ? 1.0f : 0.0f, dx + i0, (blasint)in);
        }
    }
    blas_single_thread_end(prev);
    return MSBNB_OK;
}
