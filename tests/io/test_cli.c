/* test_cli.c — the `msbnb` checkpoint commands, driven as a user would (the built binary):
 *  - round trip on stories260K for every type: quantize -> inspect -> dequantize -> compare;
 *  - the 4-bit entries the CLI writes are byte-identical to the functional API's output
 *    (msbnb_quantize_4bit_blockwise, msbnb_quantize + msbnb_bnb_write);
 *  - every malicious corpus file: exit 1, exactly one line on stderr naming the file, no output
 *    file and no temporary left; usage errors exit 2; --help exits 0. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "test_scratch.h"

#include <dirent.h>
#include <stdbool.h>
#include <msbnb/io.h>
#include <msbnb/quant.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSBNB MSBNB_BINARY_DIR "/msbnb"
#define STORIES MSBNB_SHARED_DIR "/models/stories260K/hf"
#define CORPUS MSBNB_SOURCE_DIR "/tests/fuzz/corpus/safetensors"

static char tmp[256];

/* Run "msbnb <args>" with stdout/stderr captured into tmp/out.txt and tmp/err.txt; exit code. */
static int run(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s >%s/out.txt 2>%s/err.txt", MSBNB, args, tmp, tmp);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char *slurp(const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmp, name);
    size_t n = 0;
    char *s = test_read_file(p, &n);
    if (!s) return calloc(1, 1);
    char *z = realloc(s, n + 1);
    if (!z) return s;
    z[n] = 0;
    return z;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static bool exists(const char *p) { return access(p, F_OK) == 0; }

static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* ---------------------------------------------------------------- round trips */

static void round_trip(const char *type, const char *extra, const char *inspect_expect) {
    char args[2048], q[512], d[520];
    snprintf(q, sizeof q, "%s/%s%s", tmp, type, extra[0] ? "_x" : "");
    snprintf(d, sizeof d, "%s_deq", q);
    snprintf(args, sizeof args, "quantize %s %s --type %s %s", STORIES, q, type, extra);
    CHECK_EQ_INT(run(args), 0);
    char *out = slurp("out.txt");
    CHECK_MSG_(strstr(out, "model size:") && strstr(out, "memory saved") && strstr(out, "SNR dB"),
               "%s: no summary table:\n%s", type, out);
    CHECK(strstr(out, "model.layers.4.mlp.down_proj.weight") != NULL);
    free(out);
    snprintf(args, sizeof args, "inspect %s", q);
    CHECK_EQ_INT(run(args), 0);
    out = slurp("out.txt");
    CHECK_MSG_(strstr(out, inspect_expect) != NULL, "inspect %s lacks '%s'", type, inspect_expect);
    CHECK(strstr(out, "msbnb_format_version") != NULL);
    free(out);
    snprintf(args, sizeof args, "dequantize %s %s", q, d);
    CHECK_EQ_INT(run(args), 0);
    snprintf(args, sizeof args, "compare %s %s", STORIES, d);
    CHECK_EQ_INT(run(args), 0);
    out = slurp("out.txt");
    CHECK_MSG_(strstr(out, "47 tensors compared"), "compare output:\n%s", out);
    /* norms and embeddings are copied exactly; quantized layers have a bounded error */
    CHECK(strstr(out, "model.norm.weight") && strstr(out, "inf"));
    free(out);
    /* the dequantized checkpoint equals the library's dequantization of the quantized one */
    msbnb_checkpoint *cq = NULL, *cd = NULL;
    CHECK_OK(msbnb_checkpoint_open(q, &cq));
    CHECK_OK(msbnb_checkpoint_open(d, &cd));
    if (cq && cd) {
        msbnb_qtensor *qt = NULL;
        const char *w = "model.layers.2.self_attn.q_proj.weight";
        CHECK_OK(msbnb_bnb_read(cq, w, &qt));
        float *a = malloc(64 * 64 * 4), *b = malloc(64 * 64 * 4);
        if (qt) CHECK_OK(msbnb_dequantize(qt, a));
        CHECK_OK(msbnb_checkpoint_read_f32(cd, w, b, 64 * 64));
        CHECK(qt && !memcmp(a, b, 64 * 64 * 4));
        free(a);
        free(b);
        msbnb_qtensor_free(qt);
        CHECK(!msbnb_config_has(msbnb_checkpoint_config(cd), "quantization_config"));
        CHECK(msbnb_config_has(msbnb_checkpoint_config(cq), "quantization_config.quant_method"));
    }
    msbnb_checkpoint_close(cq);
    msbnb_checkpoint_close(cd);
}

TEST(round_trip_every_type) {
    round_trip("nf4", "", "nf4 bs=64");
    round_trip("nf4", "--double-quant --blocksize 128", "nf4 bs=128 dq");
    round_trip("fp4", "", "fp4 bs=64");
    round_trip("int8", "", "int8 sym row");
    round_trip("int4", "--group-size 32", "int4 g=32");
    round_trip("int4", "", "int4 g=172"); /* 172 columns: the smallest even divisor >= 128 (msbnb_int4_group_for) */
}

/* Every entry of a CLI-written 4-bit weight equals what the library API writes for it. */
static void check_4bit_bytes(const char *type, bool dq) {
    char args[1024], q[512], ref[512];
    snprintf(q, sizeof q, "%s/bytes_%s%s", tmp, type, dq ? "_dq" : "");
    snprintf(args, sizeof args, "quantize %s %s --type %s %s --quiet", STORIES, q, type, dq ? "--double-quant" : "");
    CHECK_EQ_INT(run(args), 0);
    msbnb_checkpoint *orig = NULL, *cli = NULL, *api = NULL;
    CHECK_OK(msbnb_checkpoint_open(STORIES, &orig));
    CHECK_OK(msbnb_checkpoint_open(q, &cli));
    if (!orig || !cli) return;
    msbnb_quant_config cfg = msbnb_quant_config_default(!strcmp(type, "nf4") ? MSBNB_QTYPE_NF4 : MSBNB_QTYPE_FP4);
    cfg.double_quant = dq;
    snprintf(ref, sizeof ref, "%s/api_%s%s.safetensors", tmp, type, dq ? "_dq" : "");
    msbnb_st_writer *w = NULL;
    CHECK_OK(msbnb_st_writer_create(ref, &w));
    int n_checked = 0;
    for (size_t i = 0; i < msbnb_checkpoint_count(orig); i++) {
        msbnb_tensor_info t;
        msbnb_checkpoint_get(orig, i, &t);
        if (t.ndim != 2 || strstr(t.name, "embed")) continue;
        size_t n = (size_t)t.numel;
        float *x = malloc(n * 4);
        CHECK_OK(msbnb_tensor_to_f32(&t, x));
        /* flat functional API: packed codes (and absmax without double quant) */
        uint8_t *packed = malloc((n + 1) / 2);
        float *absmax = malloc((n / 64 + 1) * 4);
        CHECK_OK(msbnb_quantize_4bit_blockwise(cfg.type, x, n, 64, packed, absmax));
        msbnb_tensor_info e;
        CHECK_OK(msbnb_checkpoint_find(cli, t.name, &e));
        CHECK_MSG_(e.nbytes == (n + 1) / 2 && !memcmp(e.data, packed, e.nbytes), "%s: packed bytes differ", t.name);
        if (!dq) {
            char k[512];
            snprintf(k, sizeof k, "%s.absmax", t.name);
            CHECK_OK(msbnb_checkpoint_find(cli, k, &e));
            CHECK_MSG_(!memcmp(e.data, absmax, e.nbytes), "%s: absmax differs", t.name);
        }
        /* object API + bnb writer: every entry, double quant and JSON included */
        msbnb_qtensor *qt = NULL;
        CHECK_OK(msbnb_quantize(x, t.shape[0], t.shape[1], &cfg, &qt));
        if (qt) CHECK_OK(msbnb_bnb_write(w, t.name, qt, MSBNB_DTYPE_F32));
        msbnb_qtensor_free(qt);
        free(x);
        free(packed);
        free(absmax);
        n_checked++;
    }
    CHECK_EQ_INT(n_checked, 35);
    CHECK_OK(msbnb_st_writer_finish(w));
    msbnb_st_writer_free(w);
    CHECK_OK(msbnb_checkpoint_open(ref, &api));
    int n_entries = 0;
    for (size_t i = 0; api && i < msbnb_checkpoint_count(api); i++) {
        msbnb_tensor_info a, c;
        msbnb_checkpoint_get(api, i, &a);
        CHECK_OK(msbnb_checkpoint_find(cli, a.name, &c));
        CHECK_MSG_(a.dtype == c.dtype && a.nbytes == c.nbytes && !memcmp(a.data, c.data, a.nbytes), "%s differs", a.name);
        n_entries++;
    }
    CHECK_EQ_INT(n_entries, 35 * (dq ? 6 : 4));
    msbnb_checkpoint_close(api);
    msbnb_checkpoint_close(cli);
    msbnb_checkpoint_close(orig);
}

TEST(cli_4bit_bytes_equal_functional_api) {
    check_4bit_bytes("nf4", false);
    check_4bit_bytes("nf4", true);
    check_4bit_bytes("fp4", false);
    check_4bit_bytes("fp4", true);
}

/* ---------------------------------------------------------------- rejected inputs */

TEST(every_malicious_file_is_rejected_cleanly) {
    DIR *d = opendir(CORPUS);
    CHECK(d != NULL);
    if (!d) return;
    char outdir[512];
    snprintf(outdir, sizeof outdir, "%s/rejects", tmp);
    mkdir(outdir, 0777);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "bad_", 4)) continue;
        char args[2048], out[600];
        snprintf(out, sizeof out, "%s/out.safetensors", outdir);
        static const char *const cmds[] = {"quantize %s/%s %s --type nf4", "dequantize %s/%s %s", "inspect %s/%s"};
        for (size_t c = 0; c < 3; c++) {
            snprintf(args, sizeof args, cmds[c], CORPUS, e->d_name, out);
            int rc = run(args);
            char *err = slurp("err.txt");
            CHECK_MSG_(rc == 1, "%s on %s: exit %d", cmds[c], e->d_name, rc);
            CHECK_MSG_(count_lines(err) == 1 && strstr(err, e->d_name), "%s: stderr not one line naming the file: %s",
                       e->d_name, err);
            CHECK_MSG_(c == 2 || strstr(err, "byte "), "%s: no byte offset: %s", e->d_name, err);
            free(err);
            CHECK_MSG_(!exists(out), "%s: output file left behind", e->d_name);
            CHECK_MSG_(dir_entries(outdir) == 0, "%s: temporary files left behind", e->d_name);
        }
        n++;
    }
    closedir(d);
    CHECK(n >= 40);
    /* quantized weights with inconsistent parts: dequantize refuses them the same way */
    char bnbdir[600];
    snprintf(bnbdir, sizeof bnbdir, "%s/../bnb", CORPUS);
    d = opendir(bnbdir);
    CHECK(d != NULL);
    int nb = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, "bad_", 4)) continue;
        char args[2048], out[600];
        snprintf(out, sizeof out, "%s/deq.safetensors", outdir);
        snprintf(args, sizeof args, "dequantize %s/%s %s", bnbdir, e->d_name, out);
        CHECK_MSG_(run(args) == 1, "dequantize %s did not fail", e->d_name);
        char *err = slurp("err.txt");
        CHECK_MSG_(count_lines(err) == 1 && strstr(err, e->d_name) && strstr(err, "(byte "), "%s: %s", e->d_name, err);
        free(err);
        CHECK_MSG_(dir_entries(outdir) == 0, "%s: output left behind", e->d_name);
        nb++;
    }
    if (d) closedir(d);
    CHECK(nb >= 15);
    /* a model directory whose model.safetensors is malicious: the output directory never appears */
    char model[512], outd[512], cmd[2048];
    snprintf(model, sizeof model, "%s/badmodel", tmp);
    snprintf(outd, sizeof outd, "%s/badmodel_q", tmp);
    mkdir(model, 0777);
    snprintf(cmd, sizeof cmd, "cp %s/config.json %s/ && cp %s/bad_overlapping_offsets.safetensors %s/model.safetensors",
             STORIES, model, CORPUS, model);
    CHECK_EQ_INT(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "quantize %s %s --type nf4", model, outd);
    CHECK_EQ_INT(run(cmd), 1);
    char *err = slurp("err.txt");
    CHECK(count_lines(err) == 1 && strstr(err, "overlap") && strstr(err, "model.safetensors"));
    free(err);
    CHECK(!exists(outd));
    /* an already-quantized input is refused, and nothing is written */
    snprintf(cmd, sizeof cmd, "quantize %s/nf4 %s --type nf4", tmp, outd);
    CHECK_EQ_INT(run(cmd), 1);
    CHECK(!exists(outd));
    /* output into a missing directory: exit 1, nothing created */
    snprintf(cmd, sizeof cmd, "quantize %s/model.safetensors %s/no/such/dir/x.safetensors --type nf4", STORIES, tmp);
    CHECK_EQ_INT(run(cmd), 1);
    /* the output may never be the input */
    snprintf(cmd, sizeof cmd, "quantize %s/rt_in.safetensors %s/rt_in.safetensors --type nf4", tmp, tmp);
    snprintf(model, sizeof model, "cp %s/model.safetensors %s/rt_in.safetensors", STORIES, tmp);
    CHECK_EQ_INT(system(model), 0);
    CHECK_EQ_INT(run(cmd), 1);
}

TEST(usage_errors_and_help) {
    static const char *const usage[] = {"quantize", "quantize a b", "quantize a b --type nf5", "quantize a b --type nf4 --blocksize 100",
                                        "quantize a b --type int8 --double-quant", "quantize a b --type nf4 --bogus",
                                        "dequantize a", "dequantize a b --dtype f8", "inspect", "compare a"};
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        int rc = run(usage[i]);
        CHECK_MSG_(rc == 2, "'msbnb %s' exited %d, expected 2", usage[i], rc);
        char *err = slurp("err.txt");
        CHECK_MSG_(count_lines(err) == 1, "'msbnb %s': stderr '%s'", usage[i], err);
        free(err);
    }
    static const char *const help[] = {"quantize --help", "dequantize --help", "inspect --help", "compare --help"};
    for (size_t i = 0; i < sizeof help / sizeof help[0]; i++) {
        CHECK_EQ_INT(run(help[i]), 0);
        char *out = slurp("out.txt");
        CHECK(strstr(out, "usage: msbnb") && strstr(out, "Exit codes"));
        free(out);
    }
}

int main(void) {
    if (test_scratch_make(tmp, sizeof tmp, MSBNB_BINARY_DIR, "io_test_cli")) return 1;
    RUN(round_trip_every_type);
    RUN(cli_4bit_bytes_equal_functional_api);
    RUN(every_malicious_file_is_rejected_cleanly);
    RUN(usage_errors_and_help);
    test_scratch_remove(tmp);
    return test_report();
}
