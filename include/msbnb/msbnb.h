/*
 * msbnb.h — core of the msbnb library: version, status codes, CPU dispatch control, threads,
 * half-precision conversion.
 *
 * msbnb is k-bit quantization (INT8, INT4, NF4, FP4, 8-bit dynamic blockwise, double quantization)
 * and QLoRA fine-tuning of large language models, in C11, compatible with the on-disk formats of
 * bitsandbytes and PEFT.
 *
 * Usage (quantize a weight matrix to NF4 with double quantization and measure the error):
 *
 *     #include <msbnb/quant.h>
 *
 *     msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
 *     cfg.double_quant = 1;
 *     msbnb_qtensor *q = NULL;
 *     if (msbnb_quantize(w, out_features, in_features, &cfg, &q) != MSBNB_OK) {
 *         fprintf(stderr, "msbnb: %s\n", msbnb_last_error());
 *         return 1;
 *     }
 *     msbnb_error_stats st;
 *     msbnb_estimate_quantization_error(w, q, &st);   // MSE, max |err|, relative %, SNR dB
 *     msbnb_qtensor_free(q);
 *
 * Conventions used by every header under include/msbnb/:
 *  - Every call that can fail returns msbnb_status; results come through out-parameters. On failure
 *    msbnb_last_error() gives a readable one-line message for the calling thread. Nothing in the
 *    library exits or aborts on bad input.
 *  - Objects are opaque handles created by msbnb_<object>_create/...() and released by
 *    msbnb_<object>_free(), which accepts NULL.
 *  - Buffers passed in are borrowed for the duration of the call unless the doc says otherwise;
 *    buffers returned through handles belong to the handle.
 *  - Matrices are row-major. A weight matrix has shape [out_features, in_features] (PyTorch's
 *    nn.Linear layout), and products compute Y[n, out] = X[n, in] · Wᵀ.
 */
#ifndef MSBNB_MSBNB_H
#define MSBNB_MSBNB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- version */

#define MSBNB_VERSION_MAJOR 0
#define MSBNB_VERSION_MINOR 1
#define MSBNB_VERSION_PATCH 0
#define MSBNB_VERSION_STRING "0.1.0"
#define MSBNB_VERSION_NUMBER (MSBNB_VERSION_MAJOR * 10000 + MSBNB_VERSION_MINOR * 100 + MSBNB_VERSION_PATCH)

/* Version of the library actually linked (MSBNB_VERSION_NUMBER of its build). */
unsigned msbnb_version_number(void);
/* "0.1.0" — static string, never freed. */
const char *msbnb_version_string(void);

/* ---------------------------------------------------------------- status */

/* Pinned values: they are part of the ABI and of the CLI's documented exit codes. */
typedef enum msbnb_status {
    MSBNB_OK = 0,
    MSBNB_ERR_INVALID_ARG = -1,   /* NULL where an object is required, value out of range        */
    MSBNB_ERR_OUT_OF_MEMORY = -2, /* allocation failed, or a size overflowed size_t              */
    MSBNB_ERR_IO = -3,            /* open/read/write/rename failed                               */
    MSBNB_ERR_FORMAT = -4,        /* a file or buffer is malformed (corrupt header, bad JSON)     */
    MSBNB_ERR_SHAPE = -5,         /* shapes do not match or do not divide                        */
    MSBNB_ERR_UNSUPPORTED = -6,   /* valid request that this build or CPU cannot do              */
    MSBNB_ERR_NUMERIC = -7,       /* non-finite input where the operation requires finite values */
    MSBNB_ERR_NOT_FOUND = -8,     /* a named tensor, adapter or key does not exist               */
    MSBNB_ERR_INTERNAL = -9       /* a broken invariant of the library itself (a bug)            */
} msbnb_status;

/* Short fixed description of a status ("invalid argument"). Static string. */
const char *msbnb_status_str(msbnb_status st);

/* Detailed message of the last failure on the calling thread, e.g.
 * "msbnb_quantize: blocksize 100 is not one of 32, 64, ..., 4096". Thread-local storage owned by
 * the library; valid until the next failing call on the same thread. Never NULL. */
const char *msbnb_last_error(void);

/* ---------------------------------------------------------------- CPU dispatch */

/* Instruction-set levels, ordered: each level enables the kernels of the levels below it.
 *  SCALAR       plain C reference kernels (every platform)
 *  AVX2         AVX2 + FMA + F16C
 *  AVX512       AVX-512 F/BW/DQ/VL
 *  AVX512_VNNI  + AVX512-VNNI (vpdpbusd int8 dot products)
 *  AVX512_BF16  + AVX512-BF16 (vdpbf16ps)
 *  ONEDNN       the highest SIMD level the CPU has, plus the oneDNN engine for the compute-bound
 *               products where it was measured faster (docs/kernels.md, "oneDNN"); exists only
 *               when msbnb was built with oneDNN (Debian libdnnl-dev) and the CPU has AVX2. It is
 *               not a CPU feature: msbnb_isa_detected() never returns it; when available it is the
 *               default current level.
 * The environment variable MSBNB_ISA=scalar|avx2|avx512|avx512_vnni|avx512_bf16|onednn, read once at
 * the first call into the library, can lower (never raise) the level: any SIMD level turns oneDNN
 * off. */
typedef enum msbnb_isa {
    MSBNB_ISA_SCALAR = 0,
    MSBNB_ISA_AVX2 = 1,
    MSBNB_ISA_AVX512 = 2,
    MSBNB_ISA_AVX512_VNNI = 3,
    MSBNB_ISA_AVX512_BF16 = 4,
    MSBNB_ISA_ONEDNN = 5
} msbnb_isa;
#define MSBNB_ISA_COUNT 6

/* Highest SIMD level this CPU and OS support (cpuid + XGETBV register-state check); never ONEDNN. */
msbnb_isa msbnb_isa_detected(void);
/* Level the kernels use now: ONEDNN when available and not lowered, else min(detected, MSBNB_ISA,
 * last msbnb_isa_set). */
msbnb_isa msbnb_isa_current(void);
/* Force a level (tests use it to reach every variant). Returns MSBNB_ERR_UNSUPPORTED if the CPU
 * lacks it (ONEDNN: if msbnb was built without oneDNN or the CPU lacks AVX2). Process-wide; not
 * meant to be changed while other threads run kernels. */
msbnb_status msbnb_isa_set(msbnb_isa isa);
/* 1 when the ONEDNN level can be set (built with oneDNN, CPU with AVX2), else 0. */
int msbnb_onednn_available(void);
/* "scalar", "avx2", "avx512", "avx512_vnni", "avx512_bf16", "onednn"; "?" for an unknown value. */
const char *msbnb_isa_name(msbnb_isa isa);
/* Parse a name as above; MSBNB_ERR_INVALID_ARG if unknown. */
msbnb_status msbnb_isa_parse(const char *name, msbnb_isa *out);

/* ---------------------------------------------------------------- threads */

/* Number of threads kernels use (OpenMP). Default: MSBNB_THREADS if set, else the OpenMP default
 * (all cores). Results never depend on this number: work is split into disjoint outputs and every
 * reduction runs in a fixed order. n < 1 resets to the default. Process-wide. */
void msbnb_set_num_threads(int n);
int msbnb_get_num_threads(void);

/* ---------------------------------------------------------------- half precision */

/* IEEE binary16 and bfloat16, stored as uint16_t bit patterns. float -> half rounds to nearest
 * even; NaN stays NaN (quiet), overflow becomes ±Inf, as PyTorch's .to(torch.float16/bfloat16). */
float msbnb_f16_to_f32(uint16_t h);
uint16_t msbnb_f32_to_f16(float f);
float msbnb_bf16_to_f32(uint16_t h);
uint16_t msbnb_f32_to_bf16(float f);
/* Array forms: n elements, src and dst must not overlap. */
void msbnb_f16_to_f32_array(const uint16_t *src, float *dst, size_t n);
void msbnb_f32_to_f16_array(const float *src, uint16_t *dst, size_t n);
void msbnb_bf16_to_f32_array(const uint16_t *src, float *dst, size_t n);
void msbnb_f32_to_bf16_array(const float *src, uint16_t *dst, size_t n);

/* Element types used across the API (activations, file dtypes). */
typedef enum msbnb_dtype {
    MSBNB_DTYPE_F32 = 0,
    MSBNB_DTYPE_F16 = 1,
    MSBNB_DTYPE_BF16 = 2
} msbnb_dtype;

#ifdef __cplusplus
}
#endif
#endif /* MSBNB_MSBNB_H */
