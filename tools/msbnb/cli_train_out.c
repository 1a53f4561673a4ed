/* cli_train_out.c — `msbnb finetune`'s output directory as one unit (see cli_train_out.h). */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include "cli_train_out.h"

#include "cli_convert_util.h" /* cli_read_file */

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "svg_plot.h"

void ft_curve_add(ft_curve *c, double x, double y) {
    if (c->n == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 256;
        double *nx = realloc(c->x, nc * sizeof(double)), *ny = nx ? realloc(c->y, nc * sizeof(double)) : NULL;
        if (!nx || !ny) { /* the plot loses a point, nothing else */
            if (nx) c->x = nx;
            return;
        }
        c->x = nx, c->y = ny, c->cap = nc;
    }
    c->x[c->n] = x, c->y[c->n] = y, c->n++;
}

/* The number after "key": in one metrics line [n] (not NUL-terminated); false when absent. */
static bool line_number(const char *line, size_t n, const char *key, double *v) {
    char pat[40];
    int pl = snprintf(pat, sizeof pat, "\"%s\": ", key);
    for (size_t i = 0; i + (size_t)pl < n; i++)
        if (!memcmp(line + i, pat, (size_t)pl)) {
            char num[64];
            size_t k = 0, s = i + (size_t)pl;
            while (s + k < n && k + 1 < sizeof num && line[s + k] != ',' && line[s + k] != '}') {
                num[k] = line[s + k];
                k++;
            }
            num[k] = 0;
            char *end = NULL;
            *v = strtod(num, &end);
            return end != num && isfinite(*v);
        }
    return false;
}

/* Lines of resume_dir/metrics.jsonl of steps <= step into u->metrics, curves rebuilt. A missing
 * file is an empty history. Linear in the file. */
static bool load_history(ft_out *u, const char *resume_dir, int step, char *err, size_t cap) {
    size_t plen = strlen(resume_dir) + sizeof "/metrics.jsonl";
    char *path = malloc(plen), *text = NULL;
    size_t len = 0;
    if (!path) return snprintf(err, cap, "out of memory"), false;
    snprintf(path, plen, "%s/metrics.jsonl", resume_dir);
    struct stat sb;
    bool ok = true;
    if (stat(path, &sb) == 0 && !(text = cli_read_file(path, 0, &len))) {
        ok = false;
        snprintf(err, cap, "%s: cannot read", path);
    }
    for (size_t i = 0; ok && text && i < len;) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        double s = -1, v;
        if (line_number(text + i, e - i, "step", &s) && s >= 0 && s <= step) {
            ok = fwrite(text + i, 1, e - i, u->metrics) == e - i && fputc('\n', u->metrics) != EOF;
            if (line_number(text + i, e - i, "loss", &v)) ft_curve_add(&u->train, s, v);
            if (line_number(text + i, e - i, "val_loss", &v)) ft_curve_add(&u->val, s, v);
            if (!ok) snprintf(err, cap, "out of memory");
        }
        i = e + 1;
    }
    free(text);
    free(path);
    return ok;
}

bool ft_out_begin(ft_out *u, const char *out, const char *resume_dir, int step, char *err, size_t cap) {
    memset(u, 0, sizeof *u);
    if (!(u->final = strdup(out))) return snprintf(err, cap, "out of memory"), false;
    if (msbnb_outdir_begin(out, &u->dir) != MSBNB_OK) return snprintf(err, cap, "%s", msbnb_last_error()), false;
    u->metrics = open_memstream(&u->text, &u->len);
    if (!u->metrics) return snprintf(err, cap, "out of memory"), false;
    return !resume_dir || load_history(u, resume_dir, step, err, cap);
}

/* buf [n] into dir/name. */
static bool write_text(const char *dir, const char *name, const char *buf, size_t n, char *err, size_t cap) {
    size_t plen = strlen(dir) + strlen(name) + 2;
    char *path = malloc(plen);
    if (!path) return snprintf(err, cap, "out of memory"), false;
    snprintf(path, plen, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(buf, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = false;
    if (!ok) snprintf(err, cap, "%s: cannot write", path);
    free(path);
    return ok;
}

bool ft_out_commit(ft_out *u, msbnb_model *m, const msbnb_optim *opt, const char *base_model, const ft_state *s,
                   char *err, size_t cap) {
    /* the staging directory: made by ft_out_begin for the first save, anew after each commit */
    if (!u->dir && msbnb_outdir_begin(u->final, &u->dir) != MSBNB_OK)
        return snprintf(err, cap, "%s", msbnb_last_error()), false;
    const char *t = msbnb_outdir_path(u->dir);
    size_t plen = strlen(t) + sizeof "/checkpoint/optimizer.bin";
    char *ck = malloc(plen), *opath = malloc(plen), state[400];
    bool ok = ck && opath;
    if (!ok) snprintf(err, cap, "out of memory");
    if (ok) {
        snprintf(ck, plen, "%s/checkpoint", t);
        snprintf(opath, plen, "%s/checkpoint/optimizer.bin", t);
        /* the adapter twice (deterministic bytes: the top-level copy equals the checkpoint's) */
        ok = msbnb_model_lora_save(m, "default", t, base_model) == MSBNB_OK &&
             msbnb_model_lora_save(m, "default", ck, base_model) == MSBNB_OK && msbnb_optim_save(opt, opath) == MSBNB_OK;
        if (!ok) snprintf(err, cap, "save: %s", msbnb_last_error());
    }
    if (ok && !ft_state_format(s, state, sizeof state)) ok = false, snprintf(err, cap, "state.json: too long");
    ok = ok && write_text(ck, "state.json", state, strlen(state), err, cap);
    if (ok && fflush(u->metrics) != 0) ok = false, snprintf(err, cap, "metrics.jsonl: out of memory");
    ok = ok && write_text(t, "metrics.jsonl", u->text, u->len, err, cap);
    if (ok) {
        size_t sl = strlen(t) + sizeof "/loss.svg";
        char *svg = malloc(sl);
        svg_series series[2] = {{u->train.x, u->train.y, u->train.n, "train loss", "#1f77b4"},
                                {u->val.x, u->val.y, u->val.n, "validation loss", "#d62728"}};
        if (svg) snprintf(svg, sl, "%s/loss.svg", t);
        ok = svg && svg_plot_write(svg, "msbnb finetune: loss", "step", "cross-entropy (nats/token)", series, 2) == 0;
        if (!ok) snprintf(err, cap, "%s/loss.svg: cannot write", t);
        free(svg);
    }
    free(ck);
    free(opath);
    /* fsync everything, one rename; the previous output (or save) goes */
    if (ok && msbnb_outdir_commit(u->dir) != MSBNB_OK) ok = false, snprintf(err, cap, "%s", msbnb_last_error());
    msbnb_outdir_free(u->dir); /* after a failure: the staging directory goes */
    u->dir = NULL;
    return ok;
}

void ft_out_free(ft_out *u) {
    if (!u) return;
    msbnb_outdir_free(u->dir);
    free(u->final);
    if (u->metrics) fclose(u->metrics);
    free(u->text);
    free(u->train.x), free(u->train.y), free(u->val.x), free(u->val.y);
    memset(u, 0, sizeof *u);
}
