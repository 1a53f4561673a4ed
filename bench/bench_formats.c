/* bench_formats.c — benchmark section 'formats' (filled in by its area). */
#include <stdio.h>

#include "bench.h"

int bench_formats(int quick) {
    (void)quick;
    printf("[formats] no benchmark in this build\n");
    return 0;
}
