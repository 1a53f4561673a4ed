/* memory.c — aligned allocations: small 64-byte aligned buffers, and the large buffers of tensor
 * payloads, which ask the kernel for transparent huge pages. */
#define _DEFAULT_SOURCE /* madvise */
#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

void *msbnb__alloc_aligned(size_t bytes) {
    if (bytes == 0) bytes = 1;
    if (bytes > SIZE_MAX - 63) return NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    return aligned_alloc(64, rounded);
}

void msbnb__free_aligned(void *p) { free(p); }

/* 2 MiB: the x86-64 huge page. Weight streams (the n = 1 products) read whole tensors once per
 * token; with 4 KiB pages the hardware prefetchers restart at every page boundary and every page
 * costs a TLB walk. Measured on the n = 1 FAST product, 11008 x 4096 NF4 from DRAM: +1 to +6 % of
 * the read bandwidth in the same process (docs/kernels.md). */
#define HUGE_PAGE ((size_t)2 << 20)

void *msbnb__alloc_large(size_t bytes) {
    if (bytes < 2 * HUGE_PAGE) return msbnb__alloc_aligned(bytes);
    if (bytes > SIZE_MAX - HUGE_PAGE) return NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(HUGE_PAGE, (rounded + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    /* Advice only, before the first touch: with THP in "madvise" mode (a common default) this is
     * what makes the pages huge; in "always" mode it changes nothing, in "never" it is ignored, and
     * a failure (old kernel, sanitizer allocator) leaves ordinary pages. */
    if (p) (void)madvise(p, bytes / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
#endif
    return p;
}

/* ---------------------------------------------------------------- memory available */

uint64_t msbnb__address_space_left(void) {
#if defined(__linux__)
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return UINT64_MAX;
    unsigned long long pages = 0;
    FILE *s = fopen("/proc/self/statm", "r");
    if (s && fscanf(s, "%llu", &pages) != 1) pages = 0;
    if (s) fclose(s);
    long psz = sysconf(_SC_PAGESIZE);
    uint64_t used = (uint64_t)pages * (uint64_t)(psz > 0 ? psz : 4096);
    return (uint64_t)rl.rlim_cur > used ? (uint64_t)rl.rlim_cur - used : 0;
#else
    return UINT64_MAX;
#endif
}

uint64_t msbnb__memory_physical(void) {
    uint64_t avail = 0;
#if defined(__linux__)
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        unsigned long long kb = 0;
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) avail = (uint64_t)kb * 1024;
        if (sscanf(line, "SwapFree: %llu kB", &kb) == 1) avail += (uint64_t)kb * 1024;
    }
    if (f) fclose(f);
#endif
    return avail;
}

uint64_t msbnb__memory_available(void) {
    uint64_t avail = msbnb__memory_physical();
    /* an address-space limit (ulimit -v) minus what this process already maps */
    uint64_t left = msbnb__address_space_left();
    if (left != UINT64_MAX && (!avail || left < avail)) avail = left ? left : 1;
    return avail;
}
