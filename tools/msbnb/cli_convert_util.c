/* cli_convert_util.c — helpers of the checkpoint commands (see cli_convert_util.h). */
#define _POSIX_C_SOURCE 200809L
#include "cli_convert_util.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ================================================================ messages and options */

static char cli_error[700];

int cli_fail(const char *cmd) {
    cli_error_line("msbnb %s: %s", cmd, cli_error[0] ? cli_error : msbnb_last_error());
    cli_error[0] = '\0';
    return EXIT_FAIL;
}

msbnb_status cli_oom(void) {
    snprintf(cli_error, sizeof cli_error, "out of memory");
    return MSBNB_ERR_OUT_OF_MEMORY;
}

int cli_tensor_error(const char *cmd, const msbnb_tensor_info *t) {
    char own[sizeof cli_error];
    snprintf(own, sizeof own, "%s", cli_error); /* the tool's own failure (cli_oom) comes first */
    cli_error[0] = '\0';
    const char *m = own[0] ? own : msbnb_last_error();
    if (strstr(m, "tensor '") && strstr(m, "(byte "))
        cli_error_line("msbnb %s: %s", cmd, m);
    else
        cli_error_line("msbnb %s: %s: tensor '%s' (byte %llu): %s", cmd, t->file, t->name,
                (unsigned long long)t->file_offset, m);
    return EXIT_FAIL;
}

static char *dupstr(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char **cli_split_list(const char *s, size_t *n) {
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    char **list = calloc(cap + 1, sizeof(char *));
    *n = 0;
    if (!list) return NULL;
    const char *p = s;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len) list[(*n)++] = dupstr(p, len);
        p += len + (c != NULL);
    }
    return list;
}

void cli_free_list(char **list) {
    if (!list) return;
    for (char **p = list; *p; p++) free(*p);
    free(list);
}

/* ================================================================ values */

msbnb_status cli_read_values(const msbnb_checkpoint *ck, const char *name, float **out, size_t *n, msbnb_qtype *type) {
    *out = NULL;
    *n = 0;
    msbnb_status st = msbnb_bnb_detect(ck, name, type);
    if (st != MSBNB_OK) return st;
    if (*type == MSBNB_QTYPE_NONE) {
        msbnb_tensor_info t;
        if ((st = msbnb_checkpoint_find(ck, name, &t)) != MSBNB_OK) return st;
        float *v = malloc(((size_t)t.numel ? (size_t)t.numel : 1) * sizeof(float));
        if (!v) return cli_oom();
        if ((st = msbnb_tensor_to_f32(&t, v)) != MSBNB_OK) {
            free(v);
            return st;
        }
        *out = v;
        *n = (size_t)t.numel;
        return MSBNB_OK;
    }
    msbnb_qtensor *q = NULL;
    if ((st = msbnb_bnb_read(ck, name, &q)) != MSBNB_OK) return st;
    msbnb_qtensor_view v;
    msbnb_qtensor_get_view(q, &v);
    size_t count = (size_t)v.rows * (size_t)v.cols;
    float *y = malloc((count ? count : 1) * sizeof(float));
    st = y ? msbnb_dequantize(q, y) : cli_oom();
    msbnb_qtensor_free(q);
    if (st != MSBNB_OK) {
        free(y);
        return st;
    }
    *out = y;
    *n = count;
    return MSBNB_OK;
}

/* ================================================================ files */

char *cli_read_file(const char *path, size_t max, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && (!max || (size_t)n <= max) &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = 0;
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* ================================================================ progress */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_progress_begin(cli_progress *p, size_t total, uint64_t bytes_total, bool quiet) {
    memset(p, 0, sizeof *p);
    p->on = !quiet && isatty(STDERR_FILENO);
    p->total = total;
    p->bytes_total = bytes_total;
    p->t0 = now_s();
}

void cli_progress_step(cli_progress *p, size_t done, uint64_t bytes) {
    p->bytes_done += bytes;
    if (!p->on) return;
    double dt = now_s() - p->t0;
    double mbs = dt > 0 ? (double)p->bytes_done / 1e6 / dt : 0;
    double eta = p->bytes_done && dt > 0 ? dt * (double)(p->bytes_total - p->bytes_done) / (double)p->bytes_done : 0;
    int width = 30, fill = p->total ? (int)(width * done / p->total) : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '-';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %zu/%zu tensors  %7.1f MB/s  ETA %5.0fs", bar, done, p->total, mbs, eta);
    fflush(stderr);
}

void cli_progress_end(cli_progress *p) {
    if (p->on) fprintf(stderr, "\n");
}

/* ================================================================ error statistics */

void cli_err_add(cli_err_acc *a, const float *ref, const float *approx, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double x = ref[i], e = (double)ref[i] - (double)approx[i];
        a->sum_sq_ref += x * x;
        a->sum_sq_err += e * e;
        if (fabs(e) > a->max_abs || e != e) a->max_abs = fabs(e);
    }
    a->n += n;
}

void cli_err_finish(const cli_err_acc *a, double *rel_pct, double *snr_db, double *mse) {
    *mse = a->n ? a->sum_sq_err / (double)a->n : 0;
    *rel_pct = a->sum_sq_ref > 0 ? 100.0 * sqrt(a->sum_sq_err / a->sum_sq_ref) : (a->sum_sq_err > 0 ? INFINITY : 0);
    *snr_db = a->sum_sq_err > 0 ? 10.0 * log10(a->sum_sq_ref / a->sum_sq_err) : INFINITY;
}

const char *cli_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

const char *cli_bytes_str(uint64_t b, char *buf, size_t cap) {
    if (b >= 1000000000ull) snprintf(buf, cap, "%.2f GB", (double)b / 1e9);
    else if (b >= 1000000ull) snprintf(buf, cap, "%.2f MB", (double)b / 1e6);
    else if (b >= 1000ull) snprintf(buf, cap, "%.1f KB", (double)b / 1e3);
    else snprintf(buf, cap, "%llu B", (unsigned long long)b);
    return buf;
}
