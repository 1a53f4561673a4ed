/* bench_matmul.c — benchmark section 'matmul' (filled in by its area). */
#include <stdio.h>

#include "bench.h"

int bench_matmul(int quick) {
    (void)quick;
    printf("[matmul] no benchmark in this build\n");
    return 0;
}
