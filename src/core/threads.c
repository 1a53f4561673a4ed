/* threads.c — the thread count used by parallel kernels (OpenMP underneath). */
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static atomic_int requested = 0; /* 0 = default */

static int default_threads(void) {
    const char *env = getenv("MSBNB_THREADS");
    if (env && *env) {
        long v = strtol(env, NULL, 10);
        if (v >= 1 && v <= 4096) return (int)v;
    }
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void msbnb_set_num_threads(int n) { atomic_store(&requested, n < 1 ? 0 : n); }

int msbnb_get_num_threads(void) {
    int n = atomic_load_explicit(&requested, memory_order_relaxed);
    return n > 0 ? n : default_threads();
}

int msbnb__threads(void) { return msbnb_get_num_threads(); }
