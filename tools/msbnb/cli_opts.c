/* cli_opts.c — the strict option parser shared by every command (see cli_opts.h). */
#include "cli_opts.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ messages */

void cli_error_line(const char *fmt, ...) {
    /* formatted first so the line reaches stderr in one write */
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

static void vusage(const char *cmd, const char *fmt, va_list ap) {
    char msg[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (char *c = msg; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    cli_error_line("msbnb %s: %s (see `msbnb %s --help`)", cmd, msg, cmd);
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vusage(cmd, fmt, ap);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_args_error(cli_args *a, const char *fmt, ...) {
    if (a->failed) return EXIT_USAGE; /* one line per run */
    va_list ap;
    va_start(ap, fmt);
    vusage(a->cmd, fmt, ap);
    va_end(ap);
    a->failed = true;
    return EXIT_USAGE;
}

/* ================================================================ conversions */

bool cli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!s) return false;
    const char *d = s + (s[0] == '-' || s[0] == '+');
    if (*d < '0' || *d > '9') return false; /* no spaces, no empty string, no sign alone */
    for (const char *c = d; *c; c++)
        if (*c < '0' || *c > '9') return false;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = (int64_t)v;
    return true;
}

bool cli_parse_double(const char *s, double lo, double hi, double *out) {
    if (!s || !s[0] || s[0] == ' ' || s[0] == '\t' || s[0] == '\n') return false;
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    /* isfinite rejects nan and inf; the comparisons are false for NaN anyway */
    if (*end || !isfinite(v) || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

/* ================================================================ the walk */

void cli_args_begin(cli_args *a, const char *cmd, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->argc = argc;
    a->argv = argv;
    a->i = 0;
}

bool cli_args_next(cli_args *a) {
    if (a->failed || a->i + 1 >= a->argc) return false;
    a->arg = a->argv[++a->i];
    const char *eq = a->arg[0] == '-' && a->arg[1] == '-' ? strchr(a->arg, '=') : NULL;
    a->name_len = eq ? (size_t)(eq - a->arg) : strlen(a->arg);
    return true;
}

bool cli_is_help(const cli_args *a) { return !strcmp(a->arg, "--help") || !strcmp(a->arg, "-h"); }

static bool is_opt(const cli_args *a, const char *name) {
    return !a->failed && strlen(name) == a->name_len && !strncmp(a->arg, name, a->name_len);
}

/* The value of the current option: attached ("--x=v") or the next argument (consumed). NULL and
 * a usage error when there is none. */
static const char *take_value(cli_args *a, const char *name) {
    if (a->arg[a->name_len] == '=') return a->arg + a->name_len + 1;
    if (a->i + 1 >= a->argc) {
        cli_args_error(a, "%s needs a value", name);
        return NULL;
    }
    return a->argv[++a->i];
}

bool cli_flag(cli_args *a, const char *name, bool *out) {
    if (!is_opt(a, name)) return false;
    if (a->arg[a->name_len] == '=') cli_args_error(a, "%s takes no value", name);
    else *out = true;
    return true;
}

bool cli_str(cli_args *a, const char *name, const char **out) {
    if (!is_opt(a, name)) return false;
    const char *v = take_value(a, name);
    if (v) *out = v;
    return true;
}

bool cli_i64(cli_args *a, const char *name, int64_t lo, int64_t hi, int64_t *out) {
    if (!is_opt(a, name)) return false;
    const char *v = take_value(a, name);
    if (v && !cli_parse_i64(v, lo, hi, out))
        cli_args_error(a, "%s must be an integer in %" PRId64 "..%" PRId64 ", not '%s'", name, lo, hi, v);
    return true;
}

bool cli_int(cli_args *a, const char *name, long long lo, long long hi, int *out) {
    if (lo < INT32_MIN) lo = INT32_MIN;
    if (hi > INT32_MAX) hi = INT32_MAX;
    int64_t v = 0;
    if (!cli_i64(a, name, lo, hi, &v)) return false;
    if (!a->failed) *out = (int)v;
    return true;
}

bool cli_u64(cli_args *a, const char *name, uint64_t *out) {
    if (!is_opt(a, name)) return false;
    const char *v = take_value(a, name);
    if (!v) return true;
    bool ok = v[0] >= '0' && v[0] <= '9';
    for (const char *c = v; ok && *c; c++) ok = *c >= '0' && *c <= '9';
    errno = 0;
    char *end = NULL;
    unsigned long long x = ok ? strtoull(v, &end, 10) : 0;
    if (!ok || errno || *end)
        cli_args_error(a, "%s must be an integer in 0..18446744073709551615, not '%s'", name, v);
    else
        *out = (uint64_t)x;
    return true;
}

bool cli_float(cli_args *a, const char *name, double lo, double hi, float *out) {
    if (!is_opt(a, name)) return false;
    const char *v = take_value(a, name);
    double x = 0;
    if (v && !cli_parse_double(v, lo, hi, &x))
        cli_args_error(a, "%s must be a number in [%g, %g], not '%s'", name, lo, hi, v);
    else if (v)
        *out = (float)x;
    return true;
}

bool cli_choice(cli_args *a, const char *name, const char *const *choices, int *out) {
    if (!is_opt(a, name)) return false;
    const char *v = take_value(a, name);
    if (!v) return true;
    for (int k = 0; choices[k]; k++)
        if (!strcmp(v, choices[k])) {
            *out = k;
            return true;
        }
    char list[300] = "";
    for (int k = 0; choices[k]; k++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s", k ? (choices[k + 1] ? ", " : " or ") : "", choices[k]);
    }
    cli_args_error(a, "%s must be %s, not '%s'", name, list, v);
    return true;
}

bool cli_positional(cli_args *a, const char **slots, int n) {
    if (a->failed) return true;
    if (a->arg[0] == '-' && a->arg[1]) cli_args_error(a, "unknown option '%s'", a->arg);
    else if (a->npos >= n) cli_args_error(a, "unexpected argument '%s'", a->arg);
    else slots[a->npos++] = a->arg;
    return true;
}
