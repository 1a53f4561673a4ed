/*
 * internal.h — helpers shared by every part of the library (never installed).
 *
 * Error handling: functions return msbnb_status; on failure they record a message for
 * msbnb_last_error() through MSBNB_FAIL, which formats "function: message".
 *
 *     RETURN_IF(blocksize < 32, MSBNB_ERR_INVALID_ARG, "blocksize %d below 32", blocksize);
 *     TRY(msbnb__checked_mul(rows, cols, &n));   // forward a failure unchanged
 */
#ifndef MSBNB_CORE_INTERNAL_H
#define MSBNB_CORE_INTERNAL_H

#include <msbnb/msbnb.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Record a formatted message for the calling thread and return st. */
msbnb_status msbnb__fail(msbnb_status st, const char *func, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#define MSBNB_FAIL(st, ...) msbnb__fail((st), __func__, __VA_ARGS__)
#define RETURN_IF(cond, st, ...)               \
    do {                                       \
        if (cond) return MSBNB_FAIL((st), __VA_ARGS__); \
    } while (0)
#define TRY(expr)                              \
    do {                                       \
        msbnb_status try_st_ = (expr);         \
        if (try_st_ != MSBNB_OK) return try_st_; \
    } while (0)

/* ---------------------------------------------------------------- sizes */

/* Largest dimension any single tensor axis may have; guards against hostile shapes. */
#define MSBNB_MAX_DIM ((int64_t)1 << 40)

/* *out = a*b for non-negative a, b; MSBNB_ERR_OUT_OF_MEMORY (with message) on overflow of
 * size_t or when either factor is negative. */
msbnb_status msbnb__checked_mul(int64_t a, int64_t b, size_t *out);
/* Same without recording an error: returns false on overflow. */
bool msbnb__mul_ok(size_t a, size_t b, size_t *out);

/* 64-byte aligned allocation (malloc'ed size rounded up); NULL on failure or size 0 overflow.
 * Release with msbnb__free_aligned (NULL accepted). */
void *msbnb__alloc_aligned(size_t bytes);
void msbnb__free_aligned(void *p);
/* The same for large payloads (tensor codes and statistics): from 4 MiB on, 2 MiB aligned and
 * advised to use transparent huge pages (Linux). Release with msbnb__free_aligned. */
void *msbnb__alloc_large(size_t bytes);
/* Bytes this process can still allocate and touch: MemAvailable + SwapFree, capped by what an
 * address-space limit (RLIMIT_AS) leaves; 0 when unknown (not Linux). For refusing a request
 * that cannot fit with a clear error instead of being killed (or failing deep inside a BLAS). */
uint64_t msbnb__memory_available(void);
/* MemAvailable + SwapFree alone (no address-space limit); 0 when unknown. For memory already
 * reserved (so within any RLIMIT_AS) but not yet touched. */
uint64_t msbnb__memory_physical(void);
/* What an address-space limit (RLIMIT_AS) leaves this process; UINT64_MAX when unlimited. */
uint64_t msbnb__address_space_left(void);

/* ---------------------------------------------------------------- dispatch */

/* Current ISA level (cheap: one relaxed atomic load after the first call). */
msbnb_isa msbnb__isa(void);

/* 1 when the current level is MSBNB_ISA_ONEDNN: the oneDNN engine may run (kernels/onednn.h). */
int msbnb__onednn_on(void);
#ifndef MSBNB_HAVE_ONEDNN
#define MSBNB_HAVE_ONEDNN 0
#endif

/* Individual CPU features, valid after the first msbnb__isa() call. */
typedef struct msbnb_cpu_features {
    bool avx2, fma, f16c, avxvnni;
    bool avx512f, avx512bw, avx512dq, avx512vl, avx512vnni, avx512bf16;
} msbnb_cpu_features;
const msbnb_cpu_features *msbnb__cpu(void);

/* True when the x86 SIMD translation units were compiled in (x86-64 builds). */
#if defined(__x86_64__) || defined(_M_X64)
#define MSBNB_HAVE_X86 1
#else
#define MSBNB_HAVE_X86 0
#endif

/* ---------------------------------------------------------------- threads */

/* Threads to use in parallel regions (msbnb_get_num_threads()). Use with
 *     #pragma omp parallel for num_threads(msbnb__threads()) schedule(static)
 * and make every iteration write disjoint outputs. */
int msbnb__threads(void);

#endif /* MSBNB_CORE_INTERNAL_H */
