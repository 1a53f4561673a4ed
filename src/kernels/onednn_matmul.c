/*
 * onednn_matmul.c — the 4-bit products (NF4, FP4, INT4, plain or double-quantized statistics) on
 * the oneDNN engine (onednn.h): a tile of W is decoded by the level's own decoder into bounded
 * scratch (float32, or bf16 on CPUs with native bf16 dot products) and multiplied with a cached
 * oneDNN matmul primitive. No dequantized copy of W larger than one tile ever exists.
 *
 * Forward, Y[n, out] = X[n, in] · deq(W)ᵀ (+ bias): a thread owns tiles of FR rows of W (disjoint
 * columns of Y) and walks k in chunks of FK: decode Wt [FR][FK], then Y[:, tile] (+)= X[:, chunk] ·
 * Wtᵀ, one oneDNN call over all n rows (the first chunk writes, the next ones add: sum post-op).
 * Transposed, dX[n, in] (+)= dY[n, out] · deq(W): a thread owns TK-column chunks of dX and walks
 * the rows of W in tiles of TR, in order: decode Wt [TR][TK], dX[:, chunk] += dY[:, tile] · Wt.
 * The cut depends only on the shape, every oneDNN call is single-threaded, and each output element
 * is always produced by the same sequence of calls: results are identical for every thread count.
 *
 * Scratch per thread: Wt [FR][FK] float32 = 1 MiB (forward) or [TR][TK] = 512 KiB (transposed),
 * plus the bf16 copy of the tile (half that) when the product runs in bf16; bf16 products also
 * convert the activations once (Xb [n][in] or dYb [n][out] bf16: activation-sized).
 */
#include "kernels/onednn_matmul.h"

#include <string.h>

#define FR 256  /* forward: W rows per tile (oneDNN's N)               */
#define FK 1024 /* forward: k per tile (oneDNN's K; a multiple of 32)   */
#define TR 512  /* transposed: W rows per tile (oneDNN's K)             */
#define TK 256  /* transposed: dX columns per chunk (oneDNN's N; x32)   */

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Where the weight tiles come from: a 4-bit tensor decoded by the level's decoder (kern, w4), or a
 * dense fp32 matrix W [rows][cols] copied tile by tile (the model's output matrix). to_bf16: the
 * converter for bf16 operands (NULL: bf16 not possible). */
typedef struct od_src {
    int64_t rows, cols;
    const msbnb__mm4_kernels *kern;
    const msbnb__w4 *w4;
    const float *W;
    void (*to_bf16)(const float *src, uint16_t *dst, int64_t count);
} od_src;

static void src_decode(const od_src *s, int64_t r0, int64_t nr, int64_t k0, int64_t kc, float *Wt, int64_t ld) {
    if (s->w4) {
        s->kern->decode(s->w4, r0, nr, k0, kc, Wt, ld);
        return;
    }
    for (int64_t j = 0; j < nr; j++) memcpy(Wt + j * ld, s->W + (r0 + j) * s->cols + k0, (size_t)kc * sizeof(float));
}

/* Crossovers, measured with bench `onednn` (docs/onednn.md): below these n msbnb's own kernels
 * (streaming, int8 and tiled) are faster.
 *   AVX2 host (AMD EPYC Zen 2; oneDNN 2.6.3 gemm:jit f32; bf16 unimplemented there), one thread,
 *   4096 x 4096 NF4, GFLOP/s own tiles / oneDNN f32 tiles (crossover table of `msbnb_bench onednn`,
 *   a loaded host):
 *     forward:    n = 32 51 / 38, 64 57 / 53, 128 57 / 49, 256 56 / 50, 512 56 / 48: msbnb's tiles
 *                 win everywhere (an earlier quiet run had oneDNN ~7 % ahead at n >= 256, within
 *                 the noise): the forward stays on msbnb's kernels;
 *     transposed: n = 32 42 / 38, 64 51 / 51, 128 44 / 49, 256 42 / 58, 512 32 / 50: oneDNN
 *                 from n = 64 (n = 512 in the main table: 33 -> 53-62 GFLOP/s).
 *   AVX-512 levels: not measured on this host; msbnb's EXACT AVX-512 tiles stay (they outran
 *     OpenBLAS's sgemm 1.4-1.6x); bf16 products (FAST, and bf16 training) take oneDNN from n = 32
 *     where the CPU has AVX512-BF16 (the AMX host: oneDNN bf16 730-750 GFLOP/s against
 *     msbnb's 104-125). */
#define T_F32_MIN_N 64
#define BF16_MIN_N 32

/* INT8 integer products (s8 activation codes · int8 / shifted uint8 weight codes, int32 sums) on
 * oneDNN's s8 matmul, by oneDNN's CPU class. The sums are exact integers, so the engine changes no
 * bit — where its int8 instructions are exact: the S8 probe (onednn.c) refuses an inexact
 * implementation whatever this table says.
 *   AVX2 (this Zen 2): never. oneDNN 2.6.3 runs gemm:jit through vpmaddubsw, whose int16 sums
 *     saturate (probe: 127·127 pairs give 130560 for 16516096), and even ignoring that it was not
 *     faster than msbnb's AVX2 kernels (bench `onednn`, INT8 table, docs/onednn.md).
 *   AVX-512 without VNNI: never (the same saturating instruction).
 *   AVX-VNNI / AVX512-VNNI: from n = 64; AMX-INT8: from n = 32 — not measured on this host (the
 *     issue's AMX host ran ggml's AMX int8 at 2.5–4x msbnb's products); msbnb's VNNI kernels keep
 *     n = 1 ... 16 where they stream the weights. `msbnb_bench onednn` prints the measured
 *     crossover and the threshold it suggests on such a host. */
int64_t msbnb__od8_min_n(msbnb__od_class c) {
    switch (c) {
    case MSBNB__OD_AVX2_VNNI:
    case MSBNB__OD_AVX512_VNNI: return 64;
    case MSBNB__OD_AMX: return 32;
    default: return 0;
    }
}

int msbnb__od8_pick(int64_t n) {
    if (!msbnb__onednn_on()) return 0;
    const int64_t min_n = msbnb__od8_min_n(msbnb__od_cpu_class());
    return min_n > 0 && n >= min_n;
}

int msbnb__od4_forward_dtype(msbnb_isa isa, int64_t n, msbnb_precision precision, msbnb__od_dtype *dt) {
    if (!msbnb__onednn_on()) return 0;
    if (precision == MSBNB_PRECISION_FAST && isa >= MSBNB_ISA_AVX512_BF16 && n >= BF16_MIN_N &&
        msbnb__od_has(MSBNB__OD_BF16)) {
        *dt = MSBNB__OD_BF16;
        return 1;
    }
    return 0; /* fp32 forward: msbnb's tiles (see above) */
}

int msbnb__od4_transposed_dtype(msbnb_isa isa, int64_t n, int bf16, msbnb__od_dtype *dt) {
    if (!msbnb__onednn_on()) return 0;
    if (bf16 && isa >= MSBNB_ISA_AVX512_BF16 && n >= BF16_MIN_N && msbnb__od_has(MSBNB__OD_BF16)) {
        *dt = MSBNB__OD_BF16;
        return 1;
    }
    if (isa == MSBNB_ISA_AVX2 && n >= T_F32_MIN_N && msbnb__od_has(MSBNB__OD_F32)) {
        *dt = MSBNB__OD_F32;
        return 1;
    }
    return 0;
}

/* rows of src [rows][lds] float32 -> dst [rows][ldd] bf16 (cols values each) with the source's
 * converter (round to nearest even) */
static void rows_to_bf16(const od_src *s, const float *src, int64_t lds, uint16_t *dst, int64_t ldd, int64_t rows,
                         int64_t cols) {
    for (int64_t r = 0; r < rows; r++) s->to_bf16(src + r * lds, dst + r * ldd, cols);
}

/* Activations [n][cols] converted to bf16 (same layout), or NULL with OUT_OF_MEMORY recorded. */
static uint16_t *acts_bf16(const od_src *s, const float *A, int64_t n, int64_t cols, double work) {
    size_t bytes;
    if (!msbnb__mul_ok((size_t)n, (size_t)cols * sizeof(uint16_t), &bytes)) return NULL;
    uint16_t *Ab = msbnb__alloc_aligned(bytes);
    if (!Ab) return NULL;
#pragma omp parallel for num_threads(msbnb__threads()) schedule(static) if (work >= MSBNB__PARALLEL_MIN_WORK)
    for (int64_t i = 0; i < n; i++) s->to_bf16(A + i * cols, Ab + i * cols, cols);
    return Ab;
}

/* Every product shape a call will issue, checked before any output is touched: a call either runs
 * wholly on oneDNN or answers UNSUPPORTED with its outputs untouched (then msbnb's tiles run). The
 * shapes: full and last tiles in both directions, first (write) and later (add) steps. */
static int preflight(msbnb__od_dtype dt, int64_t n, int64_t nn, int64_t kk, int64_t nstep, int64_t kstep, int64_t lda,
                     int64_t ldb, int64_t ldc, int trans_b) {
    const int64_t nv[2] = {min64(nstep, nn), nn % nstep ? nn % nstep : min64(nstep, nn)};
    const int64_t kv[2] = {min64(kstep, kk), kk % kstep ? kk % kstep : min64(kstep, kk)};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int acc = 0; acc < 2; acc++) {
                const msbnb__od_gemm g = {dt, n, nv[a], kv[b], lda, ldb, ldc, trans_b, acc};
                if (!msbnb__od_supported(&g)) return 0;
            }
    return 1;
}

/* records the first failure of a parallel region */
static void set_failed(msbnb_status *failed, msbnb_status st) {
#pragma omp critical(msbnb_od4)
    if (*failed == MSBNB_OK) *failed = st;
}
static msbnb_status get_failed(const msbnb_status *failed) {
    msbnb_status v;
#pragma omp critical(msbnb_od4)
    v = *failed;
    return v;
}

/* One thread's tile scratch: Wt [rows][ld] float32, and Wb [rows][ld] bf16 when bf; 0 when out of
 * memory (both freed by the caller, NULL accepted). */
static int alloc_tiles(int64_t rows, int64_t ld, int bf, float **Wt, uint16_t **Wb) {
    *Wt = msbnb__alloc_aligned((size_t)(rows * ld) * sizeof(float));
    *Wb = bf ? msbnb__alloc_aligned((size_t)(rows * ld) * sizeof(uint16_t)) : NULL;
    return *Wt && (!bf || *Wb);
}

/* Decode W[r0 .. r0+nr, k0 .. k0+kc) into Wt (ld), then into Wb as bf16 (bf) or rounded to bf16
 * values in place (round_bf16). Returns the operand for oneDNN. */
static const void *decode_tile(const od_src *s, int64_t r0, int64_t nr, int64_t k0, int64_t kc, float *Wt,
                               uint16_t *Wb, int64_t ld, int bf, int round_bf16) {
    src_decode(s, r0, nr, k0, kc, Wt, ld);
    if (bf) {
        rows_to_bf16(s, Wt, ld, Wb, ld, nr, kc);
        return Wb;
    }
    if (round_bf16)
        for (int64_t j = 0; j < nr; j++) msbnb__bf16_round_array(Wt + j * ld, kc);
    return Wt;
}

/* The message of a failure in the workers, recorded on the calling thread (messages are per thread). */
static msbnb_status report(msbnb_status failed) {
    RETURN_IF(failed == MSBNB_ERR_OUT_OF_MEMORY, failed, "no memory for a weight tile of the oneDNN products");
    RETURN_IF(failed != MSBNB_OK, failed, "a oneDNN matmul failed (status %d)", (int)failed);
    return MSBNB_OK;
}

static msbnb_status od_forward(const od_src *s, const float *X, int64_t n, const float *bias, float *Y,
                               msbnb__od_dtype dt, int round_bf16) {
    const int64_t in = s->cols, out = s->rows;
    const double work = (double)n * (double)in * (double)out;
    const int bf = dt == MSBNB__OD_BF16;
    const int64_t tiles = (out + FR - 1) / FR, ld = min64(FK, (in + 31) / 32 * 32), fr = min64(FR, out);
    if ((bf && !s->to_bf16) || !preflight(dt, n, out, in, FR, FK, in, ld, out, 1)) return MSBNB_ERR_UNSUPPORTED;
    uint16_t *Xb = NULL; /* bf16: Xb [n][in] */
    if (bf) {
        Xb = acts_bf16(s, X, n, in, work);
        RETURN_IF(!Xb, MSBNB_ERR_OUT_OF_MEMORY, "no memory for bf16 activations [%lld, %lld]", (long long)n,
                  (long long)in);
    }
    msbnb_status failed = MSBNB_OK;
#pragma omp parallel num_threads(msbnb__threads()) if (work >= MSBNB__PARALLEL_MIN_WORK)
    {
        float *Wt;
        uint16_t *Wb;
        const int ok = alloc_tiles(fr, ld, bf, &Wt, &Wb);
        if (!ok) set_failed(&failed, MSBNB_ERR_OUT_OF_MEMORY);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; t++) {
            if (!ok || get_failed(&failed) != MSBNB_OK) continue;
            const int64_t o0 = t * FR, nr = min64(FR, out - o0);
            for (int64_t k0 = 0; k0 < in; k0 += FK) {
                const int64_t kc = min64(FK, in - k0);
                const void *B = decode_tile(s, o0, nr, k0, kc, Wt, Wb, ld, bf, round_bf16);
                const msbnb__od_gemm g = {dt, n, nr, kc, in, ld, out, 1, k0 > 0};
                msbnb_status st =
                    msbnb__od_run(&g, bf ? (const void *)(Xb + k0) : (const void *)(X + k0), B, Y + o0);
                if (st != MSBNB_OK) {
                    set_failed(&failed, st == MSBNB_ERR_UNSUPPORTED ? MSBNB_ERR_INTERNAL : st);
                    break;
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
    return report(failed);
}

static msbnb_status od_transposed(const od_src *s, const float *dY, int64_t n, float *dX, int accumulate,
                                  msbnb__od_dtype dt, int round_bf16) {
    const int64_t in = s->cols, out = s->rows;
    const double work = (double)n * (double)in * (double)out;
    const int bf = dt == MSBNB__OD_BF16;
    const int64_t chunks = (in + TK - 1) / TK, tr = min64(TR, out), ld = min64(TK, (in + 31) / 32 * 32);
    if ((bf && !s->to_bf16) || !preflight(dt, n, in, out, TK, TR, out, ld, in, 0)) return MSBNB_ERR_UNSUPPORTED;
    uint16_t *dYb = NULL; /* bf16: dYb [n][out] */
    if (bf) {
        dYb = acts_bf16(s, dY, n, out, work);
        RETURN_IF(!dYb, MSBNB_ERR_OUT_OF_MEMORY, "no memory for bf16 gradients [%lld, %lld]", (long long)n,
                  (long long)out);
    }
    msbnb_status failed = MSBNB_OK;
#pragma omp parallel num_threads(msbnb__threads()) if (work >= MSBNB__PARALLEL_MIN_WORK)
    {
        float *Wt;
        uint16_t *Wb;
        const int ok = alloc_tiles(tr, ld, bf, &Wt, &Wb);
        if (!ok) set_failed(&failed, MSBNB_ERR_OUT_OF_MEMORY);
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; c++) {
            if (!ok || get_failed(&failed) != MSBNB_OK) continue;
            const int64_t k0 = c * TK, kc = min64(TK, in - k0);
            for (int64_t o0 = 0; o0 < out; o0 += TR) {
                const int64_t nr = min64(TR, out - o0);
                const void *B = decode_tile(s, o0, nr, k0, kc, Wt, Wb, ld, bf, round_bf16);
                const msbnb__od_gemm g = {dt, n, kc, nr, out, ld, in, 0, accumulate || o0 > 0};
                msbnb_status st =
                    msbnb__od_run(&g, bf ? (const void *)(dYb + o0) : (const void *)(dY + o0), B, dX + k0);
                if (st != MSBNB_OK) {
                    set_failed(&failed, st == MSBNB_ERR_UNSUPPORTED ? MSBNB_ERR_INTERNAL : st);
                    break;
                }
            }
        }
        msbnb__free_aligned(Wt);
        msbnb__free_aligned(Wb);
    }
    msbnb__free_aligned(dYb);
    return report(failed);
}

msbnb_status msbnb__matmul_4bit_onednn(const msbnb__mm4_kernels *kern, const msbnb__w4 *w, const float *X, int64_t n,
                                       const float *bias, float *Y, msbnb__od_dtype dt, int round_bf16) {
    const od_src s = {w->rows, w->cols, kern, w, NULL, kern->to_bf16};
    return od_forward(&s, X, n, bias, Y, dt, round_bf16);
}

msbnb_status msbnb__matmul_4bit_t_onednn(const msbnb__mm4_kernels *kern, const msbnb__w4 *w, const float *dY,
                                         int64_t n, float *dX, int accumulate, msbnb__od_dtype dt, int round_bf16) {
    const od_src s = {w->rows, w->cols, kern, w, NULL, kern->to_bf16};
    return od_transposed(&s, dY, n, dX, accumulate, dt, round_bf16);
}

/* ---- dense fp32 weights (the model's output matrix) on the same drivers: tiles copied, not decoded */

static void to_bf16_public(const float *src, uint16_t *dst, int64_t count) {
    msbnb_f32_to_bf16_array(src, dst, (size_t)count);
}

msbnb_status msbnb__matmul_dense_onednn(const float *W, int64_t out, int64_t in, const float *X, int64_t n,
                                        const float *bias, float *Y, msbnb__od_dtype dt, int round_bf16) {
    const od_src s = {out, in, NULL, NULL, W, to_bf16_public};
    return od_forward(&s, X, n, bias, Y, dt, round_bf16);
}

msbnb_status msbnb__matmul_dense_t_onednn(const float *W, int64_t out, int64_t in, const float *dY, int64_t n,
                                          float *dX, int accumulate, msbnb__od_dtype dt, int round_bf16) {
    const od_src s = {out, in, NULL, NULL, W, to_bf16_public};
    return od_transposed(&s, dY, n, dX, accumulate, dt, round_bf16);
}
