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

/* ================================================================ which tensors */

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !memcmp(s + a - b, suf, b);
}

char *cli_module_of(const char *w) {
    size_t n = strlen(w);
    if (ends_with(w, ".weight")) n -= 7;
    return dupstr(w, n);
}

bool cli_pattern_match(const char *module, const char *pat) {
    if (strpbrk(pat, "*?[")) return fnmatch(pat, module, 0) == 0;
    size_t m = strlen(module), k = strlen(pat);
    for (const char *p = module; (p = strstr(p, pat)); p++) {
        bool start_ok = p == module || p[-1] == '.';
        size_t end = (size_t)(p - module) + k;
        bool end_ok = end == m || module[end] == '.';
        if (start_ok && end_ok) return true;
    }
    return false;
}

bool cli_is_linear_weight(const msbnb_tensor_info *t) {
    if (t->ndim != 2 || !ends_with(t->name, ".weight")) return false;
    if (t->dtype != MSBNB_ST_F32 && t->dtype != MSBNB_ST_F16 && t->dtype != MSBNB_ST_BF16) return false;
    /* embeddings and norms are not linear layers (bitsandbytes keeps them in full precision) */
    static const char *const not_linear[] = {"embed", "wte", "wpe", "norm", "ln_"};
    for (size_t i = 0; i < sizeof not_linear / sizeof not_linear[0]; i++)
        if (strstr(t->name, not_linear[i])) return false;
    return true;
}

/* ================================================================ quantized tensors' parts */

/* Entries hanging off "<weight>" and off "<module>." (Linear8bitLt) */
static const char *const weight_suffixes[] = {
    ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map", ".quant_state.bitsandbytes__nf4",
    ".quant_state.bitsandbytes__fp4", ".quant_state.msbnb__int4", ".quant_state.msbnb__int8", ".scales", ".zero_point"};
static const char *const module_suffixes[] = {"SCB", "weight_format"};

static bool is_quantized(const msbnb_checkpoint *ck, const char *name) {
    msbnb_qtype q = MSBNB_QTYPE_NONE;
    return msbnb_bnb_detect(ck, name, &q) == MSBNB_OK && q != MSBNB_QTYPE_NONE;
}

char *cli_aux_parent(const msbnb_checkpoint *ck, const char *name) {
    if (!msbnb_bnb_is_aux_name(name)) return NULL;
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof weight_suffixes / sizeof weight_suffixes[0]; i++)
        if (ends_with(name, weight_suffixes[i])) {
            char *p = dupstr(name, n - strlen(weight_suffixes[i]));
            if (p && is_quantized(ck, p)) return p;
            free(p);
        }
    for (size_t i = 0; i < sizeof module_suffixes / sizeof module_suffixes[0]; i++)
        if (ends_with(name, module_suffixes[i])) {
            size_t keep = n - strlen(module_suffixes[i]);
            char *p = malloc(keep + 7);
            if (!p) return NULL;
            memcpy(p, name, keep);
            strcpy(p + keep, "weight");
            if (is_quantized(ck, p)) return p;
            free(p);
        }
    return NULL;
}

uint64_t cli_logical_bytes(const msbnb_checkpoint *ck, const msbnb_tensor_info *t) {
    uint64_t total = t->nbytes;
    if (!is_quantized(ck, t->name)) return total;
    char key[1024];
    msbnb_tensor_info a;
    for (size_t i = 0; i < sizeof weight_suffixes / sizeof weight_suffixes[0]; i++) {
        snprintf(key, sizeof key, "%s%s", t->name, weight_suffixes[i]);
        if (msbnb_checkpoint_find(ck, key, &a) == MSBNB_OK) total += a.nbytes;
    }
    char *mod = cli_module_of(t->name);
    for (size_t i = 0; mod && i < sizeof module_suffixes / sizeof module_suffixes[0]; i++) {
        snprintf(key, sizeof key, "%s.%s", mod, module_suffixes[i]);
        if (msbnb_checkpoint_find(ck, key, &a) == MSBNB_OK) total += a.nbytes;
    }
    free(mod);
    return total;
}

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

/* ================================================================ output locations */

static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* A failure of the tool itself (not of a library call): cli_fail prints its message instead of
 * msbnb_last_error(). */
static msbnb_status io_error(const char *fmt, const char *a, const char *b) {
    snprintf(cli_error, sizeof cli_error, fmt, a, b ? b : "");
    return MSBNB_ERR_IO;
}

msbnb_status cli_output_begin(cli_output *o, const char *in, const char *out, bool dir_mode) {
    memset(o, 0, sizeof *o);
    if (same_file(in, out) || (dir_mode && cli_same_or_inside(out, in)))
        return io_error("%s: output would overwrite the input %s", out, in);
    if (dir_mode) {
        msbnb_status st = cli_atomic_begin(&o->atomic, out, cli_error, sizeof cli_error);
        if (st != MSBNB_OK) return st;
        o->dir = malloc(strlen(o->atomic.tmp) + 1);
        if (o->dir) strcpy(o->dir, o->atomic.tmp);
        o->model_path = o->dir ? join(o->dir, "model.safetensors") : NULL;
    } else {
        o->model_path = malloc(strlen(out) + 1);
        if (o->model_path) strcpy(o->model_path, out);
    }
    if (!o->model_path || (dir_mode && !o->dir)) return cli_oom();
    return MSBNB_OK;
}

void cli_output_created(cli_output *o, const char *path) {
    if (o->dir) return; /* the temporary directory goes as a whole */
    char **c = realloc(o->created, (o->n_created + 1) * sizeof(char *));
    if (!c) return;
    o->created = c;
    o->created[o->n_created] = malloc(strlen(path) + 1);
    if (o->created[o->n_created]) strcpy(o->created[o->n_created++], path);
}

msbnb_status cli_output_commit(cli_output *o) {
    if (!o->dir) return MSBNB_OK;
    return cli_atomic_commit(&o->atomic, cli_error, sizeof cli_error);
}

void cli_output_abort(cli_output *o) {
    for (size_t i = 0; i < o->n_created; i++) unlink(o->created[i]);
    cli_atomic_abort(&o->atomic);
}

void cli_output_free(cli_output *o) {
    for (size_t i = 0; i < o->n_created; i++) free(o->created[i]);
    free(o->created);
    free(o->dir);
    free(o->model_path);
    cli_atomic_free(&o->atomic);
    memset(o, 0, sizeof *o);
}

static msbnb_status copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb");
    if (!in) return io_error("%s: cannot open: %s", src, strerror(errno));
    char *tmp = malloc(strlen(dst) + 16);
    if (!tmp) {
        fclose(in);
        return cli_oom();
    }
    sprintf(tmp, "%s.msbnb-tmp", dst);
    FILE *out = fopen(tmp, "wb");
    msbnb_status st = MSBNB_OK;
    if (!out) st = io_error("%s: cannot create: %s", tmp, strerror(errno));
    char buf[1 << 16];
    size_t k;
    while (st == MSBNB_OK && (k = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, k, out) != k) st = io_error("%s: write failed: %s", tmp, strerror(errno));
    if (st == MSBNB_OK && ferror(in)) st = io_error("%s: read failed%s", src, "");
    if (out && fclose(out) != 0 && st == MSBNB_OK) st = io_error("%s: write failed: %s", tmp, strerror(errno));
    fclose(in);
    if (st == MSBNB_OK && rename(tmp, dst) != 0) st = io_error("%s: rename failed: %s", dst, strerror(errno));
    if (st != MSBNB_OK) unlink(tmp);
    free(tmp);
    return st;
}

msbnb_status cli_copy_side_files(cli_output *o, const char *in_dir) {
    DIR *d = opendir(in_dir);
    if (!d) return io_error("%s: cannot list directory: %s", in_dir, strerror(errno));
    msbnb_status st = MSBNB_OK;
    for (struct dirent *e; st == MSBNB_OK && (e = readdir(d));) {
        const char *n = e->d_name;
        if (n[0] == '.' || ends_with(n, ".safetensors") || !strcmp(n, "model.safetensors.index.json") ||
            !strcmp(n, "config.json"))
            continue;
        char *src = join(in_dir, n), *dst = join(o->dir, n);
        struct stat sb;
        if (src && dst && stat(src, &sb) == 0 && S_ISREG(sb.st_mode)) {
            st = copy_file(src, dst);
            if (st == MSBNB_OK) cli_output_created(o, dst);
        }
        free(src);
        free(dst);
    }
    closedir(d);
    return st;
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
