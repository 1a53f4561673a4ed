/* memory.c — aligned allocations: small 64-byte aligned buffers, and the large buffers of tensor
 * payloads, which ask the kernel for transparent huge pages. */
#define _DEFAULT_SOURCE /* madvise */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
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
