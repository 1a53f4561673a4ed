/* test_quantize_model.c — the whole-checkpoint API (include/msbnb/convert.h) and the output
 * directories written whole (msbnb_outdir_*, io.h):
 *  - stories260K's HF directory to NF4 and INT8: the output opens, every quantized weight
 *    dequantizes within its format's bound of the source (NF4: half the widest gap of the code
 *    table times the block's absmax; INT8: half a step, absmax/254, per row), kept tensors are
 *    copied bit for bit, the report's rows are IN's linear layers with the bytes the file holds,
 *    and the files are byte-identical to what the `msbnb quantize` binary writes (and dequantize's
 *    to `msbnb dequantize`'s);
 *  - progress events: done 0 first, then every tensor once, in order;
 *  - bad parameters, each: INVALID_ARG with one line, nothing written, an existing OUT intact;
 *    unreadable / already-quantized input, OUT == IN, a missing calibration text: their status,
 *    one line, nothing left; NULL arguments;
 *  - msbnb_outdir: free without commit removes the temporary and leaves the previous directory,
 *    commit swaps the new one in and leaves no temporary, stale temporaries of dead processes are
 *    cleaned, a file or a missing parent is refused. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "test_scratch.h"

#include <dirent.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <msbnb/convert.h>
#include <msbnb/io.h>
#include <msbnb/quant.h>

#define MSBNB MSBNB_BINARY_DIR "/msbnb"
#define STORIES MSBNB_SHARED_DIR "/models/stories260K/hf"
#define CALIB MSBNB_SHARED_DIR "/data/tinystories_sample.txt"

static char tmp[256];

static bool exists(const char *p) { return access(p, F_OK) == 0; }

static int sh(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Entries of dir whose name contains ".msbnb-tmp-" (temporaries left behind). */
static int temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".msbnb-tmp-") != NULL;
    closedir(d);
    return n;
}

/* Every regular file of a equals b's of the same name, and both have the same names. */
static bool same_tree(const char *a, const char *b) {
    char cmd[2100];
    snprintf(cmd, sizeof cmd, "diff -r '%s' '%s' >/dev/null 2>&1", a, b);
    return sh(cmd) == 0;
}

static bool one_line(const char *m) { return m && m[0] && !strchr(m, '\n'); }

static bool is_linear_name(const msbnb_tensor_info *t) {
    size_t n = strlen(t->name);
    return t->ndim == 2 && n > 7 && !strcmp(t->name + n - 7, ".weight") && !strstr(t->name, "embed") &&
           !strstr(t->name, "norm");
}

/* ---------------------------------------------------------------- progress */

typedef struct events {
    size_t n, last_done, total;
    bool ordered;
} events;

static void on_progress(void *ctx, const msbnb_convert_progress *p) {
    events *e = ctx;
    if (p->stage != MSBNB_CONVERT_TENSOR) return;
    if (e->n == 0) e->ordered = p->done == 0, e->total = p->total;
    else e->ordered = e->ordered && p->done == e->last_done + 1 && p->total == e->total;
    e->last_done = p->done;
    e->n++;
}

/* ---------------------------------------------------------------- quantize through the API */

/* The largest |w - deq| the format allows for element i of row r (w: the source [rows, cols]). */
static double bound_of(msbnb_qtype type, const float *w, int64_t cols, size_t i) {
    double absmax = 0;
    if (type == MSBNB_QTYPE_NF4) { /* blocks of 64 over the flattened tensor; widest NF4 gap -1 .. -0.6962 */
        size_t b0 = i / 64 * 64;
        for (size_t k = b0; k < b0 + 64; k++) absmax = fmax(absmax, fabs(w[k]));
        return absmax * (1.0 - 0.6961928009986877) / 2 * (1 + 1e-5) + 1e-12;
    }
    size_t r0 = i / (size_t)cols * (size_t)cols; /* INT8: absmax per row, 127 steps each side */
    for (size_t k = r0; k < r0 + (size_t)cols; k++) absmax = fmax(absmax, fabs(w[k]));
    return absmax / 254.0 * (1 + 1e-5) + 1e-12;
}

static void quantize_and_check(msbnb_qtype type, const char *type_name) {
    char api[512], cli[512], cmd[1400];
    snprintf(api, sizeof api, "%s/api_%s", tmp, type_name);
    snprintf(cli, sizeof cli, "%s/cli_%s", tmp, type_name);
    msbnb_quantize_params p = msbnb_quantize_params_default(type);
    events ev = {0};
    p.progress = on_progress, p.progress_ctx = &ev;
    msbnb_quantize_report *rep = NULL;
    CHECK_MSG_(msbnb_quantize_model(STORIES, api, &p, &rep) == MSBNB_OK, "%s: %s", type_name, msbnb_last_error());
    if (!rep) return;

    /* the CLI writes the same bytes */
    snprintf(cmd, sizeof cmd, "%s quantize %s %s --type %s --quiet", MSBNB, STORIES, cli, type_name);
    CHECK(sh(cmd) == 0);
    CHECK_MSG_(same_tree(api, cli), "%s: API and CLI outputs differ", type_name);
    CHECK(temporaries(tmp) == 0);

    msbnb_checkpoint *src = NULL, *out = NULL;
    CHECK_OK(msbnb_checkpoint_open(STORIES, &src));
    CHECK_OK(msbnb_checkpoint_open(api, &out));
    if (!src || !out) {
        msbnb_checkpoint_close(src);
        msbnb_quantize_report_free(rep);
        return;
    }
    CHECK(msbnb_checkpoint_is_dir(out));
    size_t n_linear = 0, n_src = msbnb_checkpoint_count(src);
    uint64_t src_bytes = 0, out_bytes = 0;
    for (size_t i = 0; i < n_src; i++) {
        msbnb_tensor_info t;
        msbnb_checkpoint_get(src, i, &t);
        n_linear += is_linear_name(&t);
        src_bytes += t.nbytes;
    }
    for (size_t i = 0; i < msbnb_checkpoint_count(out); i++) {
        msbnb_tensor_info t;
        msbnb_checkpoint_get(out, i, &t);
        out_bytes += t.nbytes;
    }
    msbnb_quantize_totals tot;
    msbnb_quantize_report_totals(rep, &tot);
    size_t rows = msbnb_quantize_report_count(rep);
    CHECK(rows == n_linear && n_linear > 0);
    CHECK(tot.n_quantized + tot.n_kept == rows && tot.n_other == n_src - n_linear);
    CHECK(tot.bytes_before == src_bytes && tot.bytes_after == out_bytes);
    CHECK(tot.calib_tokens == 0);
    CHECK(ev.ordered && ev.n == n_src + 1 && ev.last_done == n_src);

    size_t n_quantized = 0;
    for (size_t i = 0; i < rows; i++) {
        msbnb_quantize_row r;
        CHECK_OK(msbnb_quantize_report_get(rep, i, &r));
        msbnb_tensor_info t;
        CHECK_OK(msbnb_checkpoint_find(src, r.name, &t));
        CHECK(r.bytes_before == t.nbytes && r.shape[0] == t.shape[0] && r.shape[1] == t.shape[1]);
        CHECK(r.bytes_after == msbnb_bnb_logical_bytes(out, r.name));
        msbnb_qtype qt = MSBNB_QTYPE_NONE;
        CHECK_OK(msbnb_bnb_detect(out, r.name, &qt));
        if (r.kept) {
            msbnb_tensor_info o;
            CHECK(qt == MSBNB_QTYPE_NONE && msbnb_checkpoint_find(out, r.name, &o) == MSBNB_OK &&
                  o.nbytes == t.nbytes && !memcmp(o.data, t.data, t.nbytes));
            continue;
        }
        n_quantized++;
        CHECK_MSG_(qt == type, "%s stored as %d", r.name, (int)qt);
        size_t n = (size_t)(r.shape[0] * r.shape[1]);
        float *w = malloc(n * sizeof(float)), *d = malloc(n * sizeof(float));
        msbnb_qtensor *q = NULL;
        CHECK_OK(msbnb_tensor_to_f32(&t, w));
        CHECK_OK(msbnb_bnb_read(out, r.name, &q));
        if (q && w && d && msbnb_dequantize(q, d) == MSBNB_OK) {
            size_t bad = 0;
            double s2 = 0, e2 = 0;
            for (size_t k = 0; k < n; k++) {
                double e = (double)w[k] - d[k];
                bad += fabs(e) > bound_of(type, w, r.shape[1], k);
                s2 += (double)w[k] * w[k], e2 += e * e;
            }
            CHECK_MSG_(bad == 0, "%s: %zu elements beyond the %s bound", r.name, bad, type_name);
            /* the report's error is the file's */
            CHECK_NEAR(r.rel_err_pct, 100.0 * sqrt(e2 / s2), 1e-9 * (1 + r.rel_err_pct));
            CHECK_NEAR(r.snr_db, 10.0 * log10(s2 / e2), 1e-9 * (1 + fabs(r.snr_db)));
        } else {
            CHECK_MSG_(false, "%s: cannot read back", r.name);
        }
        msbnb_qtensor_free(q);
        free(w);
        free(d);
    }
    CHECK(n_quantized == tot.n_quantized && n_quantized + 0 < rows + 1 && n_quantized > 0);
    msbnb_checkpoint_close(src);
    msbnb_checkpoint_close(out);
    msbnb_quantize_report_free(rep);

    /* and back: msbnb_dequantize_model writes what `msbnb dequantize` writes */
    char dapi[600], dcli[600];
    snprintf(dapi, sizeof dapi, "%s_deq_api", api);
    snprintf(dcli, sizeof dcli, "%s_deq_cli", api);
    msbnb_dequantize_result res = {0, MSBNB_DTYPE_BF16};
    CHECK_OK(msbnb_dequantize_model(api, dapi, NULL, &res));
    CHECK(res.n_dequantized == n_quantized && res.dtype == MSBNB_DTYPE_F32);
    snprintf(cmd, sizeof cmd, "%s dequantize %s %s --quiet", MSBNB, api, dcli);
    CHECK(sh(cmd) == 0);
    CHECK(same_tree(dapi, dcli));
}

TEST(nf4_and_int8_through_the_api) {
    quantize_and_check(MSBNB_QTYPE_NF4, "nf4");
    quantize_and_check(MSBNB_QTYPE_INT8, "int8");
}

TEST(calibrated_gptq_equals_the_cli) {
    char api[512], cli[512], cmd[1400];
    snprintf(api, sizeof api, "%s/gptq_api", tmp);
    snprintf(cli, sizeof cli, "%s/gptq_cli", tmp);
    msbnb_quantize_params p = msbnb_quantize_params_default(MSBNB_QTYPE_NF4);
    p.method = MSBNB_QMETHOD_GPTQ;
    p.calib_text = CALIB;
    p.calib_tokens = 512;
    msbnb_quantize_report *rep = NULL;
    CHECK_MSG_(msbnb_quantize_model(STORIES, api, &p, &rep) == MSBNB_OK, "%s", msbnb_last_error());
    msbnb_quantize_totals tot;
    msbnb_quantize_report_totals(rep, &tot);
    CHECK(tot.calib_tokens == 512 && tot.n_quantized > 0);
    msbnb_quantize_report_free(rep);
    snprintf(cmd, sizeof cmd, "%s quantize %s %s --type nf4 --method gptq --calibrate %s --calib-tokens 512 --quiet",
             MSBNB, STORIES, cli, CALIB);
    CHECK(sh(cmd) == 0);
    CHECK(same_tree(api, cli));
}

/* ---------------------------------------------------------------- refusals */

/* quantize STORIES (or in) into out with p: status st, one line, out as it was. */
static void refused(const char *in, const char *out, const msbnb_quantize_params *p, msbnb_status st,
                    const char *words) {
    char marker[600];
    snprintf(marker, sizeof marker, "%s/marker", out);
    msbnb_quantize_report *rep = (msbnb_quantize_report *)&rep; /* must be reset to NULL */
    msbnb_status got = msbnb_quantize_model(in, out, p, &rep);
    const char *m = msbnb_last_error();
    CHECK_MSG_(got == st, "'%s': status %d, wanted %d (%s)", words, (int)got, (int)st, m);
    CHECK_MSG_(one_line(m) && strstr(m, words), "'%s' not in one line '%s'", words, m);
    CHECK(rep == NULL);
    CHECK_MSG_(exists(marker), "'%s': the existing output was touched", words);
    CHECK_MSG_(temporaries(tmp) == 0, "'%s': a temporary was left", words);
    if (st == MSBNB_ERR_INVALID_ARG)
        CHECK(msbnb_quantize_model_check(in, out, p) == MSBNB_ERR_INVALID_ARG);
}

TEST(bad_parameters_refused_and_nothing_written) {
    char out[512], marker[600], file[512], qdir[512];
    snprintf(out, sizeof out, "%s/existing", tmp);
    snprintf(marker, sizeof marker, "%s/marker", out);
    mkdir(out, 0777);
    write_text(marker, "previous output");
    msbnb_quantize_params d = msbnb_quantize_params_default(MSBNB_QTYPE_NF4), p;
    static const char *const empty[] = {""};
#define BAD(words, st, ...)                        \
    do {                                           \
        p = d;                                     \
        __VA_ARGS__;                               \
        refused(STORIES, out, &p, st, words);      \
    } while (0)
    BAD("blocksize 48 is not a power of two", MSBNB_ERR_INVALID_ARG, p.cfg.blocksize = 48);
    BAD("blocksize 8192", MSBNB_ERR_INVALID_ARG, p.cfg.blocksize = 8192);
    BAD("group_size 3 is not an even", MSBNB_ERR_INVALID_ARG, p.cfg = msbnb_quant_config_default(MSBNB_QTYPE_INT4);
        p.cfg.group_size = 3);
    BAD("double_quant applies to", MSBNB_ERR_INVALID_ARG, p.cfg = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
        p.cfg.double_quant = 1);
    BAD("method search applies to nf4, fp4 and int4", MSBNB_ERR_INVALID_ARG,
        p.cfg = msbnb_quant_config_default(MSBNB_QTYPE_INT8); p.method = MSBNB_QMETHOD_SEARCH);
    BAD("method gptq needs a calibration text", MSBNB_ERR_INVALID_ARG, p.method = MSBNB_QMETHOD_GPTQ);
    BAD("method awq+rtn needs a calibration text", MSBNB_ERR_INVALID_ARG, p.awq = 1);
    BAD("needs method search, gptq or awq", MSBNB_ERR_INVALID_ARG, p.calib_text = CALIB);
    BAD("calib_tokens 1 is not in", MSBNB_ERR_INVALID_ARG, p.calib_tokens = 1);
    BAD("calib_seq 1 is not", MSBNB_ERR_INVALID_ARG, p.calib_seq = 1);
    BAD("skip[0] is NULL or empty", MSBNB_ERR_INVALID_ARG, p.skip = empty);
    BAD("targets is NULL", MSBNB_ERR_INVALID_ARG, p.n_targets = 2);
    BAD("type must be nf4, fp4, int4 or int8", MSBNB_ERR_INVALID_ARG,
        p.cfg = msbnb_quant_config_default(MSBNB_QTYPE_BLOCKWISE8));
    BAD("threshold", MSBNB_ERR_INVALID_ARG, p.cfg = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
        p.cfg.threshold = NAN);
    BAD("is not a method", MSBNB_ERR_INVALID_ARG, p.method = (msbnb_qmethod)7);
    BAD("cannot open calibration text", MSBNB_ERR_IO, p.method = MSBNB_QMETHOD_GPTQ;
        p.calib_text = "/nonexistent/calib.txt");
    /* OUT == IN, and an OUT that contains IN: refused before anything is created */
    p = d;
    msbnb_quantize_report *r0 = NULL;
    CHECK(msbnb_quantize_model(STORIES, STORIES, &p, &r0) == MSBNB_ERR_IO && r0 == NULL);
    CHECK(one_line(msbnb_last_error()) && strstr(msbnb_last_error(), "output would overwrite the input"));
    CHECK(msbnb_quantize_model(STORIES, MSBNB_SHARED_DIR "/models/stories260K", &p, &r0) == MSBNB_ERR_IO);
    CHECK(strstr(msbnb_last_error(), "output would overwrite the input") != NULL);
    /* an IN file with an OUT directory; calibration of a file */
    snprintf(file, sizeof file, "%s/model.safetensors", STORIES);
    p = d;
    refused(file, out, &p, MSBNB_ERR_INVALID_ARG, "IN is a file, so OUT must be a file too");
    p.method = MSBNB_QMETHOD_GPTQ, p.calib_text = CALIB;
    refused(file, out, &p, MSBNB_ERR_INVALID_ARG, "IN is a file"); /* the pair comes first */
    /* unreadable and already-quantized inputs */
    p = d;
    refused("/nonexistent/model", out, &p, MSBNB_ERR_IO, "no such file");
    snprintf(qdir, sizeof qdir, "%s/api_nf4", tmp);
    if (exists(qdir)) refused(qdir, out, &p, MSBNB_ERR_FORMAT, "is already quantized");
    /* a failure mid-way (a file output whose directory is missing) leaves nothing either */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no/such/dir/out.safetensors", tmp);
    msbnb_quantize_report *rep = NULL;
    CHECK(msbnb_quantize_model(file, missing, &p, &rep) == MSBNB_ERR_IO && rep == NULL);
    CHECK(one_line(msbnb_last_error()) && temporaries(tmp) == 0);
    /* a bad OUT for the dequantizer too */
    msbnb_dequantize_params dp = {5, NULL, NULL};
    CHECK(msbnb_dequantize_model(STORIES, out, &dp, NULL) == MSBNB_ERR_INVALID_ARG && exists(marker));
    CHECK(msbnb_dequantize_model(file, out, NULL, NULL) == MSBNB_ERR_INVALID_ARG && exists(marker));
    CHECK(one_line(msbnb_last_error()) && strstr(msbnb_last_error(), "IN is a file"));
#undef BAD
}

TEST(null_arguments) {
    msbnb_quantize_params p = msbnb_quantize_params_default(MSBNB_QTYPE_NF4);
    msbnb_quantize_report *rep = NULL;
    char out[512];
    snprintf(out, sizeof out, "%s/null_out", tmp);
    CHECK(msbnb_quantize_model(NULL, out, &p, &rep) == MSBNB_ERR_INVALID_ARG && rep == NULL);
    CHECK(msbnb_quantize_model(STORIES, NULL, &p, &rep) == MSBNB_ERR_INVALID_ARG);
    CHECK(one_line(msbnb_last_error()));
    CHECK(msbnb_quantize_model_check(STORIES, out, NULL) == MSBNB_ERR_INVALID_ARG);
    CHECK(msbnb_dequantize_model(NULL, out, NULL, NULL) == MSBNB_ERR_INVALID_ARG);
    msbnb_qmethod m;
    int awq;
    CHECK(msbnb_quantize_method_parse(NULL, &m, &awq) == MSBNB_ERR_INVALID_ARG);
    CHECK(msbnb_quantize_method_parse("awq+awq", &m, &awq) == MSBNB_ERR_INVALID_ARG);
    CHECK(msbnb_quantize_method_parse("awq", &m, &awq) == MSBNB_OK && m == MSBNB_QMETHOD_RTN && awq == 1);
    CHECK(msbnb_quantize_method_parse("awq+gptq", &m, &awq) == MSBNB_OK && m == MSBNB_QMETHOD_GPTQ && awq == 1);
    CHECK(msbnb_quantize_method_parse("search", &m, &awq) == MSBNB_OK && m == MSBNB_QMETHOD_SEARCH && awq == 0);
    CHECK(!strcmp(msbnb_quantize_method_name(MSBNB_QMETHOD_SEARCH, 1), "awq+search"));
    msbnb_quantize_row row;
    CHECK(msbnb_quantize_report_get(NULL, 0, &row) == MSBNB_ERR_INVALID_ARG);
    CHECK(msbnb_quantize_report_count(NULL) == 0);
    msbnb_quantize_totals t = {1, 1, 1, 1, 1, 1};
    msbnb_quantize_report_totals(NULL, &t);
    CHECK(t.bytes_before == 0 && t.n_quantized == 0);
    msbnb_quantize_report_free(NULL);
    msbnb_outdir *d = (msbnb_outdir *)&d;
    CHECK(msbnb_outdir_begin(NULL, &d) == MSBNB_ERR_INVALID_ARG && d == NULL);
    CHECK(msbnb_outdir_begin(out, NULL) == MSBNB_ERR_INVALID_ARG);
    CHECK(msbnb_outdir_commit(NULL) == MSBNB_ERR_INVALID_ARG);
    CHECK(msbnb_outdir_path(NULL) == NULL && msbnb_outdir_final(NULL) == NULL);
    msbnb_outdir_free(NULL);
    CHECK(msbnb_model_dir_copy_side_files(NULL, out) == MSBNB_ERR_INVALID_ARG);
    CHECK(!msbnb_path_same_or_inside(NULL, out));
    char *parent = (char *)&parent;
    CHECK(msbnb_bnb_aux_parent(NULL, "x.absmax", &parent) == 0 && parent == NULL);
    CHECK(msbnb_bnb_logical_bytes(NULL, "x") == 0);
    CHECK(!exists(out));
}

/* ---------------------------------------------------------------- output directories */

TEST(outdir_commit_and_abort) {
    char final[512], path[700], stale[600];
    snprintf(final, sizeof final, "%s/od", tmp);
    mkdir(final, 0777);
    snprintf(path, sizeof path, "%s/old.txt", final);
    write_text(path, "old");
    /* a dead process's temporary (pid far above pid_max) is cleaned by the next begin */
    snprintf(stale, sizeof stale, "%s/.msbnb-tmp-od.2147483600", tmp);
    mkdir(stale, 0777);

    msbnb_outdir *d = NULL;
    CHECK_OK(msbnb_outdir_begin(final, &d));
    CHECK(!exists(stale));
    const char *t = msbnb_outdir_path(d);
    CHECK(t && strcmp(t, final) && strstr(t, "/.msbnb-tmp-od.") && exists(t));
    CHECK(msbnb_outdir_final(d) && !strcmp(msbnb_outdir_final(d), final));
    char tpath[800];
    snprintf(tpath, sizeof tpath, "%s/new.txt", t ? t : "");
    write_text(tpath, "new");
    msbnb_outdir_free(d); /* no commit: the temporary goes, the previous directory stays */
    CHECK(temporaries(tmp) == 0);
    CHECK(exists(path));
    snprintf(tpath, sizeof tpath, "%s/new.txt", final);
    CHECK(!exists(tpath));

    d = NULL;
    CHECK_OK(msbnb_outdir_begin(final, &d));
    char tnew[800];
    snprintf(tnew, sizeof tnew, "%s/new.txt", msbnb_outdir_path(d) ? msbnb_outdir_path(d) : "");
    write_text(tnew, "new");
    CHECK_OK(msbnb_outdir_commit(d));
    CHECK(msbnb_outdir_path(d) == NULL);
    CHECK(msbnb_outdir_commit(d) == MSBNB_ERR_INVALID_ARG); /* once */
    msbnb_outdir_free(d);
    CHECK(exists(tpath) && !exists(path)); /* swapped whole: the new content, none of the old */
    CHECK(temporaries(tmp) == 0);

    /* into a place that does not exist yet */
    char fresh[512];
    snprintf(fresh, sizeof fresh, "%s/fresh", tmp);
    d = NULL;
    CHECK_OK(msbnb_outdir_begin(fresh, &d));
    CHECK(!exists(fresh));
    CHECK_OK(msbnb_outdir_commit(d));
    msbnb_outdir_free(d);
    CHECK(exists(fresh) && temporaries(tmp) == 0);

    /* refusals: a file in the way, a missing parent */
    char file[512], orphan[512];
    snprintf(file, sizeof file, "%s/afile", tmp);
    write_text(file, "x");
    d = (msbnb_outdir *)&d;
    CHECK(msbnb_outdir_begin(file, &d) == MSBNB_ERR_IO && d == NULL);
    CHECK(one_line(msbnb_last_error()) && strstr(msbnb_last_error(), "exists and is not a directory"));
    snprintf(orphan, sizeof orphan, "%s/no/such/parent", tmp);
    CHECK(msbnb_outdir_begin(orphan, &d) == MSBNB_ERR_IO && d == NULL);
    CHECK(one_line(msbnb_last_error()) && strstr(msbnb_last_error(), "does not exist"));
    CHECK(temporaries(tmp) == 0);

    /* "would overwrite the input" */
    CHECK(msbnb_path_same_or_inside(tmp, final) && msbnb_path_same_or_inside(final, final));
    CHECK(msbnb_path_same_or_inside(tmp, orphan + 0) == 0); /* parent missing: cannot resolve */
    CHECK(!msbnb_path_same_or_inside(final, tmp));
}

int main(void) {
    if (test_scratch_make(tmp, sizeof tmp, MSBNB_BINARY_DIR, "io_test_quantize_model")) return 1;
    RUN(nf4_and_int8_through_the_api);
    RUN(calibrated_gptq_equals_the_cli);
    RUN(bad_parameters_refused_and_nothing_written);
    RUN(null_arguments);
    RUN(outdir_commit_and_abort);
    test_scratch_remove(tmp);
    return test_report();
}
