/* main.c — msbnb_bench [all|formats|matmul|train] [--quick]: the numbers behind the README's
 * performance claims, each quoted next to the machine limits measured in the same run. */
#include <stdio.h>
#include <string.h>

#include <msbnb/msbnb.h>

#include "bench.h"

int main(int argc, char **argv) {
    const char *which = "all";
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = 1;
        else which = argv[i];
    }
    printf("msbnb %s bench, ISA %s, %d threads available\n", msbnb_version_string(),
           msbnb_isa_name(msbnb_isa_current()), msbnb_get_num_threads());
    int rc = 0;
    if (!strcmp(which, "all") || !strcmp(which, "formats")) rc |= bench_formats(quick);
    if (!strcmp(which, "all") || !strcmp(which, "matmul")) {
        rc |= bench_matmul(quick);
        rc |= bench_matmul_int8(quick);
    }
    if (!strcmp(which, "all") || !strcmp(which, "train")) rc |= bench_train(quick);
    return rc;
}
