/* cpu.c — CPU feature detection (cpuid + XGETBV) and the process-wide ISA level.
 *
 * A feature counts only when the OS also saves its register state: AVX needs XCR0 bits 1-2
 * (SSE, AVX), AVX-512 needs bits 5-7 (opmask, ZMM_Hi256, Hi16_ZMM). The level is computed once
 * (pthread_once) and then lowered by MSBNB_ISA or msbnb_isa_set(). */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if MSBNB_HAVE_X86
#include <cpuid.h>
#endif

static msbnb_cpu_features features;
static msbnb_isa detected = MSBNB_ISA_SCALAR;
static atomic_int current_level = MSBNB_ISA_SCALAR;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const char *const isa_names[MSBNB_ISA_COUNT] = {"scalar", "avx2", "avx512", "avx512_vnni", "avx512_bf16", "onednn"};

#if MSBNB_HAVE_X86
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect_x86(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    features.fma = (c >> 12) & 1;
    features.f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return;
    uint64_t xcr0 = read_xcr0();
    bool os_avx = (xcr0 & 0x6) == 0x6;
    bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
    if (!os_avx) return;
    if (__get_cpuid_max(0, NULL) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    features.avx2 = (b >> 5) & 1;
    if (os_avx512) {
        features.avx512f = (b >> 16) & 1;
        features.avx512dq = (b >> 17) & 1;
        features.avx512bw = (b >> 30) & 1;
        features.avx512vl = (b >> 31) & 1;
        features.avx512vnni = (c >> 11) & 1;
    }
    __cpuid_count(7, 1, a, b, c, d);
    features.avxvnni = (a >> 4) & 1;
    if (os_avx512) features.avx512bf16 = (a >> 5) & 1;
}
#endif

static msbnb_isa level_from_features(void) {
    const msbnb_cpu_features *f = &features;
    if (!(f->avx2 && f->fma && f->f16c)) return MSBNB_ISA_SCALAR;
    if (!(f->avx512f && f->avx512bw && f->avx512dq && f->avx512vl)) return MSBNB_ISA_AVX2;
    if (!f->avx512vnni) return MSBNB_ISA_AVX512;
    if (!f->avx512bf16) return MSBNB_ISA_AVX512_VNNI;
    return MSBNB_ISA_AVX512_BF16;
}

/* The ONEDNN level: built with oneDNN (MSBNB_HAVE_ONEDNN, set by CMake) and a CPU with AVX2, whose
 * decoders fill the engine's weight tiles. */
static int onednn_ok(void) {
#if MSBNB_HAVE_ONEDNN
    return detected >= MSBNB_ISA_AVX2;
#else
    return 0;
#endif
}

static void init_once(void) {
#if MSBNB_HAVE_X86
    detect_x86();
#endif
    detected = level_from_features();
    msbnb_isa level = onednn_ok() ? MSBNB_ISA_ONEDNN : detected;
    const char *env = getenv("MSBNB_ISA");
    msbnb_isa forced;
    if (env && *env && msbnb_isa_parse(env, &forced) == MSBNB_OK) {
        /* A SIMD level above the CPU's is capped to it (the ONEDNN level sits above every SIMD level
         * but runs the kernels at the detected one, so a forced SIMD level must not exceed that). */
        if (forced != MSBNB_ISA_ONEDNN && forced > detected) forced = detected;
        if (forced < level) level = forced;
    }
    atomic_store(&current_level, (int)level);
}

/* The SIMD level of the kernels: the ONEDNN level runs them at the detected level. */
msbnb_isa msbnb__isa(void) {
    pthread_once(&once, init_once);
    int l = atomic_load_explicit(&current_level, memory_order_relaxed);
    return l == MSBNB_ISA_ONEDNN ? detected : (msbnb_isa)l;
}

int msbnb__onednn_on(void) {
    pthread_once(&once, init_once);
    return atomic_load_explicit(&current_level, memory_order_relaxed) == MSBNB_ISA_ONEDNN;
}

int msbnb_onednn_available(void) {
    pthread_once(&once, init_once);
    return onednn_ok();
}

const msbnb_cpu_features *msbnb__cpu(void) {
    pthread_once(&once, init_once);
    return &features;
}

msbnb_isa msbnb_isa_detected(void) {
    pthread_once(&once, init_once);
    return detected;
}

msbnb_isa msbnb_isa_current(void) {
    pthread_once(&once, init_once);
    return (msbnb_isa)atomic_load_explicit(&current_level, memory_order_relaxed);
}

msbnb_status msbnb_isa_set(msbnb_isa isa) {
    pthread_once(&once, init_once);
    RETURN_IF((int)isa < 0 || (int)isa >= MSBNB_ISA_COUNT, MSBNB_ERR_INVALID_ARG, "unknown ISA level %d", (int)isa);
    if (isa == MSBNB_ISA_ONEDNN) {
        RETURN_IF(!onednn_ok(), MSBNB_ERR_UNSUPPORTED, "the onednn level needs %s",
                  MSBNB_HAVE_ONEDNN ? "a CPU with AVX2" : "msbnb built with oneDNN (libdnnl-dev)");
        atomic_store(&current_level, (int)isa);
        return MSBNB_OK;
    }
    RETURN_IF(isa > detected, MSBNB_ERR_UNSUPPORTED, "this CPU supports up to %s, not %s", isa_names[detected],
              isa_names[isa]);
    atomic_store(&current_level, (int)isa);
    return MSBNB_OK;
}

const char *msbnb_isa_name(msbnb_isa isa) {
    if ((int)isa < 0 || (int)isa >= MSBNB_ISA_COUNT) return "?";
    return isa_names[isa];
}

msbnb_status msbnb_isa_parse(const char *name, msbnb_isa *out) {
    RETURN_IF(!name || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    for (int i = 0; i < MSBNB_ISA_COUNT; i++) {
        if (strcmp(name, isa_names[i]) == 0) {
            *out = (msbnb_isa)i;
            return MSBNB_OK;
        }
    }
    return MSBNB_FAIL(MSBNB_ERR_INVALID_ARG, "unknown ISA '%s' (scalar, avx2, avx512, avx512_vnni, avx512_bf16, onednn)", name);
}
