/* cli_opts.h — the one strict option parser of every msbnb command.
 *
 * Every command walks its arguments with the same loop; each matcher returns true when the current
 * argument is its option (whether its value was good or not), so they chain with `||`:
 *
 *     cli_args a;
 *     cli_args_begin(&a, "finetune", argc, argv);
 *     const char *pos[2] = {0};
 *     while (cli_args_next(&a)) {
 *         if (cli_is_help(&a)) { usage(stdout); return EXIT_OK; }
 *         (void)(cli_flag(&a, "--quiet", &quiet) ||
 *             cli_int(&a, "--steps", 1, CLI_MAX_STEPS, &steps) ||
 *             cli_float(&a, "--lr", 0, 1e6, &lr) ||
 *             cli_str(&a, "--out", &out) ||
 *             cli_positional(&a, pos, 2));        // last: unknown options and extra arguments
 *     }
 *     if (a.failed) return EXIT_USAGE;             // the one-line message is already on stderr
 *
 * Values follow the option ("--steps 20") or are attached ("--steps=20"). Integers are decimal,
 * an optional sign then digits only (no spaces, no hex, no trailing text, no overflow); floats are
 * what strtod reads, finite (no nan, no inf) and within [lo, hi]. A usage error prints exactly one
 * line, "msbnb CMD: MESSAGE (see `msbnb CMD --help`)", and makes cli_args_next return false.
 * Nothing allocates; no state outside the cli_args.
 */
#ifndef MSBNB_CLI_OPTS_H
#define MSBNB_CLI_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes (docs/io.md) */
#define EXIT_OK 0
#define EXIT_FAIL 1  /* the command ran and failed: bad input file, I/O error, ... */
#define EXIT_USAGE 2 /* bad command line */

/* The same caps for the same quantities in every command (upper bounds; lower bounds may differ,
 * e.g. generate accepts --steps 0). They keep every product of them far from int overflow. */
#define CLI_MAX_THREADS 1024     /* --threads */
#define CLI_MAX_BATCH 65536      /* --batch (sequences per step, or tokens per forward pass) */
#define CLI_MAX_SEQ (1 << 20)    /* --seq, --ctx, --window: tokens per sequence */
#define CLI_MAX_STEPS (1 << 24)  /* --steps, --stop-at, --warmup, --eval-every */

typedef struct cli_args {
    const char *cmd;   /* command name, for messages ("quantize") */
    int argc;
    char **argv;       /* argv[0] is the command name; borrowed */
    int i;             /* index of the current argument */
    const char *arg;   /* the current argument (argv[i]) */
    size_t name_len;   /* length of its "--name" part (before any '=') */
    int npos;          /* positional arguments taken by cli_positional so far */
    bool failed;       /* a usage error was printed: return EXIT_USAGE */
} cli_args;

void cli_args_begin(cli_args *a, const char *cmd, int argc, char **argv);
/* Move to the next argument; false at the end or once a usage error was reported. */
bool cli_args_next(cli_args *a);
/* The current argument is --help or -h. */
bool cli_is_help(const cli_args *a);

/* Matchers: true when the current argument is option `name`. On a missing or bad value they
 * report the usage error (a->failed) and still return true. */
bool cli_flag(cli_args *a, const char *name, bool *out); /* no value; sets *out = true */
bool cli_str(cli_args *a, const char *name, const char **out);
bool cli_int(cli_args *a, const char *name, long long lo, long long hi, int *out);
bool cli_i64(cli_args *a, const char *name, int64_t lo, int64_t hi, int64_t *out);
bool cli_u64(cli_args *a, const char *name, uint64_t *out); /* any value in 0..2^64-1 (seeds) */
bool cli_float(cli_args *a, const char *name, double lo, double hi, float *out);
/* One of `choices` (NULL-terminated); *out = its index. */
bool cli_choice(cli_args *a, const char *name, const char *const *choices, int *out);
/* Last in the chain: stores a positional argument into the next of the n slots; anything starting
 * with '-' (except "-" itself) is an unknown option, and an argument beyond n is unexpected. */
bool cli_positional(cli_args *a, const char **slots, int n);

/* One error line (no trailing newline in fmt) to stderr, in one write. */
void cli_error_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Report a usage error about the current command line (one line; a->failed). Returns EXIT_USAGE. */
int cli_args_error(cli_args *a, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The same without a cli_args: "msbnb CMD: MESSAGE (see `msbnb CMD --help`)". Returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The strict conversions themselves (whole string, range inclusive); false when s is not one. */
bool cli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
bool cli_parse_double(const char *s, double lo, double hi, double *out);

#endif
