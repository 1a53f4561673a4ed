/* bench_train.c — benchmark section 'train' (filled in by its area). */
#include <stdio.h>

#include "bench.h"

int bench_train(int quick) {
    (void)quick;
    printf("[train] no benchmark in this build\n");
    return 0;
}
