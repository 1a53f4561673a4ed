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
    MSBNB__OD_BF16 = 1 /* A, B bfloat16 (uint16 bit patterns); C float32   */
} msbnb__od_dtype;

/* C[m][ldc] (+)= A[m][lda] · op(B), all row-major, C float32.
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
 * recorded) when oneDNN is not built in or has no implementation for g on this CPU;
 * MSBNB_ERR_OUT_OF_MEMORY / MSBNB_ERR_INTERNAL with a message on other failures. */
msbnb_status msbnb__od_run(const msbnb__od_gemm *g, const void *A, const void *B, float *C);

/* 1 when msbnb__od_run(g) would run (oneDNN built in and implementing g here), else 0. Cheap after
 * the first call for a shape (the primitive is cached). */
int msbnb__od_supported(const msbnb__od_gemm *g);

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
