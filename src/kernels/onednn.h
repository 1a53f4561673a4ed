/*
 * onednn.h — the oneDNN engine inside kernels/ (onednn.c): one matrix product C (+)= A · op(B) on
 * the calling thread, with oneDNN's matmul primitive (Debian libdnnl, any version 2.x), primitives
 * cached by shape. Built only when CMake found oneDNN (MSBNB_HAVE_ONEDNN); otherwise every call
 * answers MSBNB_ERR_UNSUPPORTED and the callers keep msbnb's own kernels.
 *
 * Determinism: a call always runs single-threaded (the OpenMP thread count of the calling thread
 * is 1 while oneDNN creates and runs the primitive), so its arithmetic depends only on the
 * description below, never on msbnb's thread count; callers cut their work into fixed blocks and
 * run one call per block on msbnb's threads (onednn_matmul.c, dense.c).
 */
#ifndef MSBNB_KERNELS_ONEDNN_H
#define MSBNB_KERNELS_ONEDNN_H

#include "core/internal.h"

typedef enum msbnb__od_dtype {
    MSBNB__OD_F32 = 0, /* A, B float32                                     */
    MSBNB__OD_BF16 = 1, /* A, B bfloat16 (uint16 bit patterns); C float32  */
    MSBNB__OD_S8 = 2    /* A, B int8; C int32 (exact integer sums, see below) */
} msbnb__od_dtype;
#define MSBNB__OD_DTYPES 3

/* C[m][ldc] (+)= A[m][lda] · op(B), all row-major, C float32 (int32 for MSBNB__OD_S8).
 *   trans_b = 0: B is [k][ldb] (k rows of n values);
 *   trans_b = 1: B is [n][ldb] and used transposed (a weight W [out][in] with n = out, k = in). */
typedef struct msbnb__od_gemm {
    msbnb__od_dtype dt;
    int64_t m, n, k;
    int64_t lda, ldb, ldc;
    int trans_b;
    int accumulate; /* 1: C += A · op(B) (oneDNN sum post-op); 0: C = A · op(B) */
} msbnb__od_gemm;

/* Runs the product described by g on the calling thread. MSBNB_ERR_UNSUPPORTED (no message
 * recorded) when oneDNN is not built in or has no implementation for g on this CPU (for S8: no
 * implementation whose integer sums are exact, see msbnb__od_supported);
 * MSBNB_ERR_OUT_OF_MEMORY / MSBNB_ERR_INTERNAL with a message on other failures. */
msbnb_status msbnb__od_run(const msbnb__od_gemm *g, const void *A, const void *B, void *C);

/* 1 when msbnb__od_run(g) would run (oneDNN built in and implementing g here), else 0. Cheap after
 * the first call for a shape (the primitive is cached).
 * S8 products must be exact: CPUs without VNNI/AMX make oneDNN multiply int8 pairs with an int16
 * saturating instruction (vpmaddubsw), whose sums are wrong for large codes (measured on AVX2:
 * 127·127 pairs give 130560 for 16516096). So each S8 primitive is probed once, when it is
 * created, on worst-case codes of its own shape against exact int64 sums; an inexact one counts
 * as unimplemented (its msbnb__od_impl string says "inexact") unless msbnb__od_s8_accept_inexact
 * is on. */
int msbnb__od_supported(const msbnb__od_gemm *g);

/* Tests and the bench only: on = 1 lets inexact S8 primitives run (to exercise the int8 driver's
 * tiling and epilogue on codes small enough not to saturate, and to time them); returns the
 * previous setting. The library never turns it on. */
int msbnb__od_s8_accept_inexact(int on);

/* The oneDNN CPU class the thresholds are keyed on (dnnl_get_effective_cpu_isa, grouped). */
typedef enum msbnb__od_class {
    MSBNB__OD_NONE = 0,    /* no oneDNN in this build, or an ISA below AVX2 */
    MSBNB__OD_AVX2,        /* AVX2, no VNNI: int8 through int16 saturating multiplies */
    MSBNB__OD_AVX2_VNNI,   /* AVX-VNNI (256-bit) */
    MSBNB__OD_AVX512,      /* AVX-512 without VNNI */
    MSBNB__OD_AVX512_VNNI, /* AVX512-VNNI, with or without AVX512-BF16 */
    MSBNB__OD_AMX          /* AMX-INT8 / AMX-BF16 tiles */
} msbnb__od_class;
msbnb__od_class msbnb__od_cpu_class(void);
const char *msbnb__od_class_name(msbnb__od_class c);

/* oneDNN's name for the implementation it picks for g ("gemm:jit", "brg:avx512_core_amx", ...), or
 * "unimplemented" / "no oneDNN in this build". Static storage, valid for the process. */
const char *msbnb__od_impl(const msbnb__od_gemm *g);

/* 1 when products of dtype dt have a non-reference oneDNN implementation on this CPU (bf16: only
 * where the CPU has native bf16 dot products, AVX512-BF16 or AMX, so the FAST bf16 contract of
 * kernels.h holds). Measured once. */
int msbnb__od_has(msbnb__od_dtype dt);

/* Products run by msbnb__od_run since the process started (tests check the engine was reached). */
int64_t msbnb__od_calls(void);

/* "oneDNN 2.6.3 (cpu isa: avx2)" or "no oneDNN in this build"; static storage. */
const char *msbnb__od_version(void);

#endif
