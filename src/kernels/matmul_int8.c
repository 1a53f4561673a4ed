/*
 * matmul_int8.c — INT8-weight products: dispatch table, tiling over threads, FAST mode and the
 * integer product shared with LLM.int8().
 *
 *   forward     Y[n, out]  = X[n, in] · Ŵᵀ (+ bias)        Ŵ = msbnb_dequantize(W)
 *   transposed  dX[n, in] (+)= dY[n, out] · Ŵ
 *
 * Tiling: the forward splits the OUTPUT COLUMNS (weight rows) into tiles of TILE_O rows, one task
 * each, so every task reads its weight rows once and writes a disjoint slice of Y; the transposed
 * product splits dX into (row block × TILE_K column) tiles. Inside a task the order of operations
 * does not depend on which thread runs it, so results are identical for every thread count.
 * Scratch is per thread and bounded (tile-sized), never proportional to W.
 */
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/int8_kernels.h"
#include "kernels/onednn_matmul.h"

#define TILE_O 64 /* weight rows per forward task                          */
#define TILE_N 64 /* activation rows per integer block (C tile 64×64 int32) */
#define TILE_T_ROWS 64
#define PARALLEL_MIN_WORK MSBNB__PARALLEL_MIN_WORK /* (kernels_internal.h) */

/* ---------------------------------------------------------------- dispatch */

static const msbnb__i8_kernels kernels_ref = {"scalar", msbnb__i8_exact_ref, msbnb__i8_t_ref, msbnb__i8_dot_ref};
#if MSBNB_HAVE_X86
static const msbnb__i8_kernels kernels_avx2 = {"avx2", msbnb__i8_exact_avx2, msbnb__i8_t_avx2, msbnb__i8_dot_avx2};
static const msbnb__i8_kernels kernels_avxvnni = {"avx2+avx_vnni", msbnb__i8_exact_avx2, msbnb__i8_t_avx2,
                                                  msbnb__i8_dot_avxvnni};
static const msbnb__i8_kernels kernels_avx512 = {"avx512", msbnb__i8_exact_avx512, msbnb__i8_t_avx512,
                                                 msbnb__i8_dot_avx512};
static const msbnb__i8_kernels kernels_vnni = {"avx512_vnni", msbnb__i8_exact_avx512, msbnb__i8_t_avx512,
                                               msbnb__i8_dot_avx512vnni};
#endif

const msbnb__i8_kernels *msbnb__i8_kernels_get(void) {
#if MSBNB_HAVE_X86
    switch (msbnb__isa()) {
    case MSBNB_ISA_SCALAR: return &kernels_ref;
    case MSBNB_ISA_AVX2: return msbnb__cpu()->avxvnni ? &kernels_avxvnni : &kernels_avx2;
    case MSBNB_ISA_AVX512: return &kernels_avx512;
    default: return &kernels_vnni; /* AVX512_VNNI and above */
    }
#else
    return &kernels_ref;
#endif
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* One aligned block of `per` bytes per thread; NULL on failure. */
static void *alloc_per_thread(int threads, size_t per) {
    size_t total;
    if (!msbnb__mul_ok((size_t)threads, per, &total)) return NULL;
    return msbnb__alloc_aligned(total);
}

/* ---------------------------------------------------------------- EXACT forward */

static msbnb_status exact_forward(const msbnb__i8w *w, const float *X, int64_t n, const float *bias, float *Y) {
    const msbnb__i8_kernels *kern = msbnb__i8_kernels_get();
    const int threads = msbnb__threads();
    const int64_t out = w->rows, tiles = (out + TILE_O - 1) / TILE_O;
    const double work = (double)n * (double)out * (double)w->cols;
    uint8_t *scratch = alloc_per_thread(threads, MSBNB__I8_EXACT_SCRATCH);
    RETURN_IF(!scratch, MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate %d x %zu bytes of tile scratch", threads,
              MSBNB__I8_EXACT_SCRATCH);
#pragma omp parallel for num_threads(threads) schedule(static) if (work >= PARALLEL_MIN_WORK)
    for (int64_t t = 0; t < tiles; t++) {
        int64_t o0 = t * TILE_O, o1 = o0 + TILE_O < out ? o0 + TILE_O : out;
        kern->exact(w, o0, o1, X, w->cols, n, Y, out, scratch + (size_t)thread_id() * MSBNB__I8_EXACT_SCRATCH);
        if (bias)
            for (int64_t i = 0; i < n; i++)
                for (int64_t o = o0; o < o1; o++) Y[i * out + o] += bias[o];
    }
    msbnb__free_aligned(scratch);
    return MSBNB_OK;
}

/* ---------------------------------------------------------------- integer product */

/* Σ_k a[k]·(code[o, k] − zp) in int64, for K beyond the int32 kernels (plain C, any ISA). */
static int64_t dot_wide(const msbnb__i8w *w, int64_t o, const int8_t *a) {
    const int64_t K = w->cols;
    const uint8_t *c = w->codes + o * K;
    int64_t s = 0;
    if (w->asym) {
        const int32_t zp = msbnb__i8w_zp(w, o);
        for (int64_t k = 0; k < K; k++) s += (int64_t)a[k] * ((int32_t)c[k] - zp);
    } else {
        for (int64_t k = 0; k < K; k++) s += (int64_t)a[k] * (int8_t)c[k];
    }
    return s;
}

/* Outlier columns of weight rows [o0, o1): subB[o, j] = ŵ[o, ocols[j]] (LLM.int8(), nout > 0). */
static void gather_outliers(const msbnb__i8w *w, int64_t o0, int64_t o1, const int32_t *ocols, int64_t nout,
                            float *subB) {
    for (int64_t o = o0; o < o1; o++)
        for (int64_t j = 0; j < nout; j++) subB[o * nout + j] = msbnb__i8_deq(w, o, ocols[j]);
}

/* The epilogue of rows [i0, i0 + m) × weight rows [o0, o1): C [m][ldc] holds Σ_k a·code (or NULL when
 * wide: sums in int64 here), rescaled into Y [n, out] as msbnb__i8_int_product documents. */
static void epilogue(const msbnb__i8w *w, const int32_t *C, int64_t ldc, int64_t o0, int64_t o1, int64_t i0,
                     int64_t m, const int8_t *a, const int32_t *asum, const float *row_stats, const float *bias,
                     float *Y) {
    const int64_t out = w->rows, K = w->cols;
    for (int64_t i = 0; i < m; i++) {
        float rs = row_stats[i0 + i];
        float *y = Y + (i0 + i) * out;
        for (int64_t o = o0; o < o1; o++) {
            /* Σ a·(code − zp) = Σ a·code − zp·Σ a, exact integers */
            int64_t c = !C ? dot_wide(w, o, a + (i0 + i) * K)
                           : (int64_t)C[i * ldc + (o - o0)] - (int64_t)msbnb__i8w_zp(w, o) * asum[i0 + i];
            float v = (float)c * (rs * msbnb__i8w_stat(w, o));
            v = v * (w->asym ? MSBNB__I8_INV127 : MSBNB__I8_INV127SQ);
            y[o] = bias ? v + bias[o] : v;
        }
    }
}

/* ---- the same integer product on oneDNN's s8 matmul (where msbnb__od8_pick chooses it).
 * A thread owns tiles of OD_OT weight rows (disjoint columns of Y) and, per block of OD_NT
 * activation rows, has oneDNN compute C [m][OD_OT] = a[i0 .. i0+m, :] · codes[tile]ᵀ in int32, then
 * runs the shared epilogue. Asymmetric (uint8) codes are shifted into int8 (code − 128, a tile copy
 * Bs [OD_OT][K]) and 128·Σa is added back: C = Σ a·code exactly (|C| ≤ 127·255·K < 2³¹ for
 * K ≤ MSBNB__INT8_MAX_K). Integer sums do not depend on the order, so Y is bit-identical to msbnb's
 * kernels and to the scalar reference, for every thread count.
 * Scratch per thread: C [OD_NT][OD_OT] int32 (256 KiB), Bs [OD_OT][K] int8 when asymmetric. */
#define OD_OT 256
#define OD_NT 256

static int od8_shapes_ok(int64_t n, int64_t out, int64_t K) {
    const int64_t mv[2] = {n < OD_NT ? n : OD_NT, n % OD_NT ? n % OD_NT : (n < OD_NT ? n : OD_NT)};
    const int64_t nv[2] = {out < OD_OT ? out : OD_OT, out % OD_OT ? out % OD_OT : (out < OD_OT ? out : OD_OT)};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            const msbnb__od_gemm g = {MSBNB__OD_S8, mv[i], nv[j], K, K, K, OD_OT, 1, 0};
            if (!msbnb__od_supported(&g)) return 0;
        }
    return 1;
}

msbnb_status msbnb__i8_int_product_onednn(const msbnb__i8w *w, const int8_t *a, const int32_t *asum,
                                          const float *row_stats, int64_t n, const float *bias, float *Y,
                                          const int32_t *ocols, int64_t nout, float *subB) {
    const int64_t out = w->rows, K = w->cols, tiles = (out + OD_OT - 1) / OD_OT;
    const double work = (double)n * (double)out * (double)K;
    if (n < 1 || K > MSBNB__INT8_MAX_K || !od8_shapes_ok(n, out, K)) return MSBNB_ERR_UNSUPPORTED;
    int failed = 0; /* 1: out of memory, 2: a oneDNN call failed */
#pragma omp parallel num_threads(msbnb__threads()) if (work >= PARALLEL_MIN_WORK)
    {
        int32_t *C = msbnb__alloc_aligned((size_t)OD_NT * OD_OT * sizeof(int32_t));
        int8_t *Bs = w->asym ? msbnb__alloc_aligned((size_t)(OD_OT * K)) : NULL;
        if (!C || (w->asym && !Bs)) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; t++) {
            int f;
#pragma omp atomic read
            f = failed;
            if (f) continue;
            const int64_t o0 = t * OD_OT, nr = out - o0 < OD_OT ? out - o0 : OD_OT;
            const int8_t *B = (const int8_t *)w->codes + o0 * K;
            if (w->asym) {
                for (int64_t j = 0; j < nr * K; j++) Bs[j] = (int8_t)(w->codes[o0 * K + j] ^ 0x80u);
                B = Bs;
            }
            gather_outliers(w, o0, o0 + nr, ocols, nout, subB);
            for (int64_t i0 = 0; i0 < n; i0 += OD_NT) {
                const int64_t m = n - i0 < OD_NT ? n - i0 : OD_NT;
                const msbnb__od_gemm g = {MSBNB__OD_S8, m, nr, K, K, K, OD_OT, 1, 0};
                if (msbnb__od_run(&g, a + i0 * K, B, C) != MSBNB_OK) {
#pragma omp atomic write
                    failed = 2;
                    break;
                }
                if (w->asym) /* Σ a·(code − 128) + 128·Σ a = Σ a·code (unsigned: no overflow UB) */
                    for (int64_t i = 0; i < m; i++)
                        for (int64_t j = 0; j < nr; j++)
                            C[i * OD_OT + j] = (int32_t)((uint32_t)C[i * OD_OT + j] + 128u * (uint32_t)asum[i0 + i]);
                epilogue(w, C, OD_OT, o0, o0 + nr, i0, m, a, asum, row_stats, bias, Y);
            }
        }
        msbnb__free_aligned(C);
        msbnb__free_aligned(Bs);
    }
    RETURN_IF(failed == 1, MSBNB_ERR_OUT_OF_MEMORY, "no memory for the int8 tiles of the oneDNN product");
    RETURN_IF(failed == 2, MSBNB_ERR_INTERNAL, "a oneDNN int8 matmul failed on a worker thread");
    return MSBNB_OK;
}

msbnb_status msbnb__i8_int_product(const msbnb__i8w *w, const int8_t *a, const int32_t *asum,
                                   const float *row_stats, int64_t n, const float *bias, float *Y,
                                   const int32_t *ocols, int64_t nout, float *subB) {
    const int wide = w->cols > MSBNB__INT8_MAX_K; /* int32 sums could overflow: int64 scalar path */
    if (!wide && msbnb__od8_pick(n)) {
        msbnb_status st = msbnb__i8_int_product_onednn(w, a, asum, row_stats, n, bias, Y, ocols, nout, subB);
        if (st != MSBNB_ERR_UNSUPPORTED) return st; /* else: no exact oneDNN product here, msbnb's kernels */
    }
    const msbnb__i8_kernels *kern = msbnb__i8_kernels_get();
    const int threads = msbnb__threads();
    const int64_t out = w->rows, K = w->cols, tiles = (out + TILE_O - 1) / TILE_O;
    const double work = (double)n * (double)out * (double)K;
    const size_t per = (size_t)TILE_N * TILE_O * sizeof(int32_t);
    int32_t *cbuf = alloc_per_thread(threads, per);
    RETURN_IF(!cbuf, MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate %d x %zu bytes of tile scratch", threads, per);
#pragma omp parallel for num_threads(threads) schedule(static) if (work >= PARALLEL_MIN_WORK)
    for (int64_t t = 0; t < tiles; t++) {
        int32_t *C = cbuf + (size_t)thread_id() * TILE_N * TILE_O; /* [TILE_N, TILE_O] */
        int64_t o0 = t * TILE_O, o1 = o0 + TILE_O < out ? o0 + TILE_O : out;
        for (int64_t i0 = 0; i0 < n; i0 += TILE_N) {
            int64_t m = n - i0 < TILE_N ? n - i0 : TILE_N;
            if (!wide) kern->dot(w, o0, o1, a + i0 * K, K, asum + i0, m, C, TILE_O);
            if (i0 == 0) /* the tile's rows were just read: their outlier columns are in cache */
                gather_outliers(w, o0, o1, ocols, nout, subB);
            epilogue(w, wide ? NULL : C, TILE_O, o0, o1, i0, m, a, asum, row_stats, bias, Y);
        }
    }
    msbnb__free_aligned(cbuf);
    return MSBNB_OK;
}

/* FAST: activations rounded to int8 per row (absmax over the row, the LLM.int8() rule without
 * outliers), then the integer product. */
static msbnb_status fast_forward(const msbnb__i8w *w, const float *X, int64_t n, const float *bias, float *Y) {
    const int64_t K = w->cols;
    size_t codes_bytes;
    TRY(msbnb__checked_mul(n, K, &codes_bytes));
    int8_t *a = msbnb__alloc_aligned(codes_bytes);
    float *rs = malloc((size_t)n * sizeof(float));
    int32_t *asum = malloc((size_t)n * sizeof(int32_t));
    msbnb_status st = MSBNB_OK;
    if (!a || !rs || !asum) {
        st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate int8 activations [%lld, %lld]", (long long)n,
                        (long long)K);
    } else {
        msbnb__i8_quant_rows(X, n, K, NULL, 0.0f, a, K, rs, asum);
        st = msbnb__i8_int_product(w, a, asum, rs, n, bias, Y, NULL, 0, NULL);
    }
    msbnb__free_aligned(a);
    free(rs);
    free(asum);
    return st;
}

msbnb_status msbnb__matmul_int8(const msbnb_qtensor *W, const float *X, int64_t n, const float *bias, float *Y,
                                msbnb_precision precision) {
    if (n == 0) return MSBNB_OK;
    msbnb__i8w w = msbnb__i8w_of(W);
    if (precision == MSBNB_PRECISION_FAST) return fast_forward(&w, X, n, bias, Y);
    return exact_forward(&w, X, n, bias, Y);
}

/* ---------------------------------------------------------------- transposed */

msbnb_status msbnb__matmul_int8_t(const msbnb_qtensor *W, const float *dY, int64_t n, float *dX, int accumulate) {
    if (n == 0) return MSBNB_OK;
    msbnb__i8w w = msbnb__i8w_of(W);
    const msbnb__i8_kernels *kern = msbnb__i8_kernels_get();
    const int threads = msbnb__threads();
    const int64_t K = w.cols, it = (n + TILE_T_ROWS - 1) / TILE_T_ROWS;
    /* Column tile width. Each weight row is read kw contiguous bytes at a time, so few rows of dX
     * (decode, small batches) want wide tiles — one per thread — for the prefetchers' sake, and
     * many rows want narrow ones that keep the dX tile in cache. The width changes no element's
     * arithmetic (each is one chain over o), so it may depend on the thread count. */
    int64_t kw = MSBNB__I8_T_KB;
    if (it < threads || n < TILE_T_ROWS) {
        int64_t split = threads / it > 1 ? threads / it : 1;
        int64_t per = (K + split - 1) / split;
        per = (per + 63) & ~(int64_t)63;
        kw = per < MSBNB__I8_T_KB ? MSBNB__I8_T_KB : per > MSBNB__I8_T_KB_MAX ? MSBNB__I8_T_KB_MAX : per;
    }
    const int64_t kt = (K + kw - 1) / kw, tiles = kt * it;
    const double work = (double)n * (double)w.rows * (double)K;
    uint8_t *scratch = alloc_per_thread(threads, MSBNB__I8_T_SCRATCH);
    RETURN_IF(!scratch, MSBNB_ERR_OUT_OF_MEMORY, "cannot allocate %d x %zu bytes of tile scratch", threads,
              MSBNB__I8_T_SCRATCH);
#pragma omp parallel for num_threads(threads) schedule(static) if (work >= PARALLEL_MIN_WORK)
    for (int64_t t = 0; t < tiles; t++) {
        int64_t ib = t / kt, kb = t % kt;
        int64_t i0 = ib * TILE_T_ROWS, i1 = i0 + TILE_T_ROWS < n ? i0 + TILE_T_ROWS : n;
        int64_t k0 = kb * kw, k1 = k0 + kw < K ? k0 + kw : K;
        kern->transposed(&w, dY, i0, i1, k0, k1, dX, accumulate,
                         scratch + (size_t)thread_id() * MSBNB__I8_T_SCRATCH);
    }
    msbnb__free_aligned(scratch);
    return MSBNB_OK;
}
