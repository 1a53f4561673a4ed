/* test_cli_opts.c — the one option parser of every msbnb command (tools/msbnb/cli_opts.h):
 *  - the strict conversions: whole-string decimal integers in range, finite floats in range
 *    (no atoi/atof leniency: "12x", " 4", "0x10", "nan", "inf", overflow all refused);
 *  - the matchers on a hand-made argv ("--x v" and "--x=v", missing values, unknown options);
 *  - the built binary: every command refuses absurd values (the audit's --val-frac nan,
 *    --threads 100000, --steps 99999999999, --seed xyz, --seq 2147483647, ...) with exit 2 and
 *    exactly one line on stderr, before touching any file. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"

#include <sys/wait.h>

#include "../tools/msbnb/cli_opts.h"

#define MSBNB MSBNB_BINARY_DIR "/msbnb"

TEST(parse_i64) {
    int64_t v = 0;
    CHECK(cli_parse_i64("42", 0, 100, &v) && v == 42);
    CHECK(cli_parse_i64("-7", -10, 10, &v) && v == -7);
    CHECK(cli_parse_i64("+7", -10, 10, &v) && v == 7);
    CHECK(cli_parse_i64("9223372036854775807", 0, INT64_MAX, &v) && v == INT64_MAX);
    const char *bad[] = {"", "-", "+", " 4", "4 ", "12x", "0x10", "1e3", "4.0", "--4", "99999999999999999999", NULL};
    for (int i = 0; bad[i]; i++) CHECK_MSG_(!cli_parse_i64(bad[i], INT64_MIN, INT64_MAX, &v), "accepted '%s'", bad[i]);
    CHECK(!cli_parse_i64("101", 0, 100, &v));
    CHECK(!cli_parse_i64("-1", 0, 100, &v));
    CHECK(!cli_parse_i64(NULL, 0, 100, &v));
}

TEST(parse_double) {
    double v = 0;
    CHECK(cli_parse_double("2e-4", 0, 1, &v) && v == 2e-4);
    CHECK(cli_parse_double("1", 0, 1, &v) && v == 1.0); /* bounds inclusive */
    const char *bad[] = {"", "nan", "NaN", "-nan", "inf", "-inf", "1e400", " 1", "1 ", "0.5x", "x", NULL};
    for (int i = 0; bad[i]; i++) CHECK_MSG_(!cli_parse_double(bad[i], -1e300, 1e300, &v), "accepted '%s'", bad[i]);
    CHECK(!cli_parse_double("1.0000001", 0, 1, &v));
}

/* Parse argv (NULL-terminated, argv[0] = the command) with one of each matcher. */
typedef struct parsed {
    bool flag, failed, help;
    int n, choice;
    float x;
    uint64_t seed;
    const char *s, *pos[2];
} parsed;

static parsed parse(char **argv) {
    int argc = 0;
    while (argv[argc]) argc++;
    parsed r = {0};
    r.n = -1;
    static const char *const choices[] = {"adamw", "adamw8bit", NULL};
    cli_args a;
    cli_args_begin(&a, "t", argc, argv);
    while (cli_args_next(&a)) {
        if (cli_is_help(&a)) {
            r.help = true;
            break;
        }
        (void)(cli_flag(&a, "--flag", &r.flag) || cli_int(&a, "--n", 1, 10, &r.n) ||
               cli_float(&a, "--x", 0, 1, &r.x) || cli_u64(&a, "--seed", &r.seed) || cli_str(&a, "--s", &r.s) ||
               cli_choice(&a, "--optim", choices, &r.choice) || cli_positional(&a, r.pos, 2));
    }
    r.failed = a.failed;
    return r;
}

TEST(matchers) {
    char *ok[] = {"t", "in", "--n", "3", "--x=0.5", "--flag", "--seed", "18446744073709551615", "--s", "-",
                  "--optim", "adamw8bit", "out", NULL};
    parsed r = parse(ok);
    CHECK(!r.failed && r.n == 3 && r.x == 0.5f && r.flag && r.seed == UINT64_MAX && r.choice == 1);
    CHECK(r.s && !strcmp(r.s, "-") && r.pos[0] && !strcmp(r.pos[0], "in") && r.pos[1] && !strcmp(r.pos[1], "out"));
    char *help[] = {"t", "-h", "--bogus", NULL};
    CHECK(parse(help).help);
    char *bad[][4] = {{"t", "--n", NULL},          {"t", "--n", "11", NULL},     {"t", "--n=", NULL},
                      {"t", "--x", "nan", NULL},   {"t", "--flag=1", NULL},      {"t", "--bogus", NULL},
                      {"t", "a", "b", "c"},        {"t", "--optim", "sgd", NULL}, {"t", "--seed", "-1", NULL},
                      {"t", "--nn", "3", NULL},    {"t", "-n", "3", NULL},       {"t", "--x", "1e39", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[5] = {0};
        memcpy(argv, bad[i], sizeof bad[i]);
        parsed p = parse(argv);
        CHECK_MSG_(p.failed, "accepted case %zu (%s %s)", i, argv[1], argv[2] ? argv[2] : "");
    }
}

/* Run the binary with stderr captured; exit code, *lines = stderr line count. */
static int run(const char *args, int *lines, char *first, size_t cap) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd /tmp && %s %s 2>&1 >/dev/null", MSBNB, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char buf[400];
    *lines = 0;
    first[0] = 0;
    while (fgets(buf, sizeof buf, p)) {
        if (!*lines && cap > 0) {
            strncpy(first, buf, cap - 1);
            first[cap - 1] = 0;
        }
        (*lines)++;
    }
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(binary_usage_errors) {
    /* No file named here exists: a usage check that ran after opening files would say so with
     * exit 1, not 2. */
    const char *cases[] = {
        "",
        "frobnicate",
        "finetune nomodel notext --out noout --val-frac nan",
        "finetune nomodel notext --out noout --threads 100000",
        "finetune nomodel notext --out noout --steps 99999999999",
        "finetune nomodel notext --out noout --seed xyz",
        "finetune nomodel notext --out noout --seq 2147483647",
        "finetune nomodel notext --out noout --lr nan",
        "finetune nomodel notext --out noout --dropout 1",
        "finetune nomodel notext --out noout --r 0",
        "finetune nomodel notext --out noout --batch 100000",
        "finetune nomodel notext --out noout --optim sgd",
        "finetune nomodel notext",
        "generate nomodel --threads 100000",
        "generate nomodel --batch 0",
        "generate nomodel --ctx 2147483647",
        "generate nomodel --steps 99999999999",
        "generate nomodel --seed xyz",
        "generate nomodel --temp nan",
        "generate nomodel --top-p 0",
        "generate nomodel --quant nf5",
        "generate",
        "perplexity nomodel notext --threads 100000",
        "perplexity nomodel notext --window 1",
        "perplexity nomodel notext --max-tokens 0",
        "perplexity nomodel",
        "quantize in out --type nf4 --blocksize 33",
        "quantize in out --type nf4 --threshold nan",
        "quantize in out",
        "quantize in out --type int8 --double-quant",
        "dequantize in out --dtype f8",
        "inspect",
        "inspect a b",
        "compare a",
        "merge a b",
        "merge a b c --bogus",
        "merge a b c --quant nf5",
        NULL,
    };
    for (int i = 0; cases[i]; i++) {
        int lines = 0;
        char first[512];
        int rc = run(cases[i], &lines, first, sizeof first);
        CHECK_MSG_(rc == 2 && lines == 1, "'msbnb %s': exit %d, %d stderr lines (%s)", cases[i], rc, lines, first);
    }
    const char *helps[] = {"--help", "finetune --help", "generate -h", "perplexity --help", "quantize --help",
                           "dequantize --help", "inspect --help", "compare --help", "merge --help", NULL};
    for (int i = 0; helps[i]; i++) {
        int lines = 0;
        char first[512];
        CHECK_MSG_(run(helps[i], &lines, first, sizeof first) == 0 && lines == 0, "'msbnb %s'", helps[i]);
    }
}

int main(void) {
    RUN(parse_i64);
    RUN(parse_double);
    RUN(matchers);
    RUN(binary_usage_errors);
    return test_report();
}
