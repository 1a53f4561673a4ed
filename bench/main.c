/* main.c — msbnb_bench [all|formats|matmul|matmul4|int8|train|parsers|tokenizer] [--quick]: the numbers behind the README's
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
    /* sections: formats, matmul (= matmul4 + int8), matmul4 (4-bit products), int8, train, parsers, onednn */
    const int all = !strcmp(which, "all"), matmul = !strcmp(which, "matmul");
    const int formats = all || !strcmp(which, "formats"), mm4 = all || matmul || !strcmp(which, "matmul4");
    const int int8 = all || matmul || !strcmp(which, "int8"), train = all || !strcmp(which, "train");
    const int parsers = all || !strcmp(which, "parsers"), tokenizer = all || !strcmp(which, "tokenizer");
    const int onednn = all || !strcmp(which, "onednn");
    if (!formats && !mm4 && !int8 && !train && !parsers && !tokenizer && !onednn) {
        fprintf(stderr, "usage: %s [--quick] [all|formats|matmul|matmul4|int8|train|parsers|tokenizer|onednn] (unknown section '%s')\n",
                argv[0], which);
        return 2;
    }
    printf("msbnb %s bench, ISA %s, %d threads available\n", msbnb_version_string(),
           msbnb_isa_name(msbnb_isa_current()), msbnb_get_num_threads());
    printf("CPU: %s\nengine: %s\n", bench_cpu_model(), bench_engine());
    bench_jsonl_open(argv[0]);
    int rc = 0;
    if (formats) rc |= bench_formats(quick);
    if (mm4) rc |= bench_matmul(quick);
    if (int8) rc |= bench_matmul_int8(quick);
    if (train) rc |= bench_train(quick);
    if (parsers) rc |= bench_parsers(quick);
    if (tokenizer) rc |= bench_tokenizer(quick);
    if (onednn) rc |= bench_onednn(quick);
    printf("\nevery figure as JSON lines: %s\n", bench_jsonl_path());
    bench_jsonl_close();
    return rc;
}
