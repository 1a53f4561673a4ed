/* test_safetensors.c — reader validation, writer round trip and crash safety, config.json,
 * model directories (single file and sharded). */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "test_scratch.h"

#include <dirent.h>
#include <msbnb/io.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_internal.h"

#define STORIES MSBNB_SHARED_DIR "/models/stories260K/hf"

static char tmpdir[256];

static char *tpath(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

/* Number of entries in tmpdir whose name starts with prefix (temporary files included). */
static int count_files(const char *prefix) {
    DIR *d = opendir(tmpdir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
    closedir(d);
    return n;
}

/* A safetensors file in memory from a header string and a data size (data bytes = 0..255). */
static uint8_t *make_file(const char *header, size_t data_len, size_t *len) {
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    uint8_t *b = malloc(*len);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    for (size_t i = 0; i < data_len; i++) b[8 + h + i] = (uint8_t)i;
    return b;
}

static msbnb_status open_mem(const char *header, size_t data_len) {
    size_t len;
    uint8_t *b = make_file(header, data_len, &len);
    msbnb_safetensors *f = NULL;
    msbnb_status st = msbnb_safetensors_open_memory(b, len, "mem.safetensors", &f);
    if (st == MSBNB_OK) CHECK(f != NULL);
    else CHECK(f == NULL);
    msbnb_safetensors_close(f);
    free(b);
    return st;
}

TEST(stories_model_opens) {
    msbnb_checkpoint *ck = NULL;
    CHECK_OK(msbnb_checkpoint_open(STORIES, &ck));
    if (!ck) return;
    CHECK_EQ_INT(msbnb_checkpoint_count(ck), 47); /* embed + 5 x 9 + norm */
    CHECK(msbnb_checkpoint_is_dir(ck));
    msbnb_tensor_info t;
    CHECK_OK(msbnb_checkpoint_find(ck, "model.layers.0.mlp.down_proj.weight", &t));
    CHECK_EQ_INT(t.dtype, MSBNB_ST_F32);
    CHECK_EQ_INT(t.ndim, 2);
    CHECK_EQ_INT(t.shape[0], 64);
    CHECK_EQ_INT(t.shape[1], 172);
    CHECK_EQ_INT(t.nbytes, 64 * 172 * 4);
    CHECK_EQ_INT(t.file_offset, 8 + 4856 + 131328);
    CHECK_STATUS(msbnb_checkpoint_find(ck, "nope", &t), MSBNB_ERR_NOT_FOUND);
    CHECK(strstr(msbnb_checkpoint_errmsg(ck), "nope") != NULL);
    /* sorted order, and the metadata of the file */
    msbnb_tensor_info a, b;
    for (size_t i = 1; i < msbnb_checkpoint_count(ck); i++) {
        msbnb_checkpoint_get(ck, i - 1, &a);
        msbnb_checkpoint_get(ck, i, &b);
        CHECK(strcmp(a.name, b.name) < 0);
    }
    const char *fmt = msbnb_safetensors_metadata(msbnb_checkpoint_shard(ck, 0), "format");
    CHECK(fmt && !strcmp(fmt, "pt"));
    /* config.json getters */
    const msbnb_config *c = msbnb_checkpoint_config(ck);
    int64_t layers = 0;
    double eps = 0;
    int tied = 0;
    const char *act = NULL;
    CHECK_OK(msbnb_config_get_int(c, "num_hidden_layers", &layers));
    CHECK_EQ_INT(layers, 5);
    CHECK_OK(msbnb_config_get_double(c, "rms_norm_eps", &eps));
    CHECK(eps == 1e-5);
    CHECK_OK(msbnb_config_get_bool(c, "tie_word_embeddings", &tied));
    CHECK_EQ_INT(tied, 1);
    CHECK_OK(msbnb_config_get_string(c, "hidden_act", &act));
    CHECK(act && !strcmp(act, "silu"));
    CHECK_STATUS(msbnb_config_get_int(c, "rms_norm_eps", &layers), MSBNB_ERR_FORMAT);
    CHECK_STATUS(msbnb_config_get_int(c, "rope_scaling", &layers), MSBNB_ERR_NOT_FOUND); /* null */
    CHECK_STATUS(msbnb_config_get_int(c, "missing.key", &layers), MSBNB_ERR_NOT_FOUND);
    size_t n = 0;
    const char *arch = NULL;
    CHECK_OK(msbnb_config_array_len(c, "architectures", &n));
    CHECK_EQ_INT(n, 1);
    CHECK_OK(msbnb_config_array_string(c, "architectures", 0, &arch));
    CHECK(arch && !strcmp(arch, "LlamaForCausalLM"));
    msbnb_checkpoint_close(ck);
}

TEST(config_nested_and_errors) {
    const char *j = "{\"rope_parameters\": {\"rope_theta\": 500000.0, \"rope_type\": \"llama3\", \"factor\": 8},"
                    " \"n\": 3, \"b\": false, \"s\": [1, 2]}";
    msbnb_config *c = NULL;
    CHECK_OK(msbnb_config_parse(j, strlen(j), "cfg", &c));
    double theta = 0;
    int64_t f = 0, s1 = 0;
    int b = 1;
    const char *rt = NULL;
    CHECK_OK(msbnb_config_get_double(c, "rope_parameters.rope_theta", &theta));
    CHECK(theta == 500000.0);
    CHECK_OK(msbnb_config_get_int(c, "rope_parameters.factor", &f));
    CHECK_EQ_INT(f, 8);
    CHECK_OK(msbnb_config_get_string(c, "rope_parameters.rope_type", &rt));
    CHECK(rt && !strcmp(rt, "llama3"));
    CHECK_OK(msbnb_config_get_bool(c, "b", &b));
    CHECK_EQ_INT(b, 0);
    CHECK_OK(msbnb_config_array_int(c, "s", 1, &s1));
    CHECK_EQ_INT(s1, 2);
    CHECK_STATUS(msbnb_config_array_int(c, "s", 2, &s1), MSBNB_ERR_NOT_FOUND);
    CHECK_STATUS(msbnb_config_get_bool(c, "n", &b), MSBNB_ERR_FORMAT);
    CHECK(msbnb_config_has(c, "rope_parameters.factor"));
    CHECK(!msbnb_config_has(c, "rope_parameters.nope"));
    msbnb_config_free(c);
    /* malformed inputs: the message carries the byte offset */
    static const char *bad[] = {"[1,2]", "{\"a\": }", "{\"a\": 1} x", "", "{\"a\": \"\xff\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = NULL;
        CHECK_STATUS(msbnb_config_parse(bad[i], strlen(bad[i]), "bad.json", &c), MSBNB_ERR_FORMAT);
        CHECK(c == NULL);
        CHECK(strstr(msbnb_last_error(), "bad.json") && strstr(msbnb_last_error(), "byte"));
    }
    /* deep nesting is refused before the parser recurses */
    char deep[2001];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    deep[2000] = 0;
    CHECK_STATUS(msbnb_config_parse(deep, 2000, "deep.json", &c), MSBNB_ERR_FORMAT);
    CHECK(strstr(msbnb_last_error(), "deep") != NULL);
    msbnb_config_free(NULL);
}

TEST(reader_accepts_valid_edge_cases) {
    /* scalar, empty tensor, sub-byte F4, trailing spaces, metadata, every dtype name */
    CHECK_OK(open_mem("{\"a\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}  ", 1));
    CHECK_OK(open_mem("{\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
                      "\"a\":{\"dtype\":\"F4\",\"shape\":[2,3],\"data_offsets\":[0,3]},"
                      "\"__metadata__\":{\"k\":\"v\"}}",
                      3));
    CHECK_OK(open_mem("{}", 0));
    for (int d = 0; d < MSBNB_ST_DTYPE_COUNT; d++) {
        char h[256];
        int bits = msbnb_st_dtype_bits((msbnb_st_dtype)d);
        snprintf(h, sizeof h, "{\"t\":{\"dtype\":\"%s\",\"shape\":[8],\"data_offsets\":[0,%d]}}",
                 msbnb_st_dtype_name((msbnb_st_dtype)d), bits);
        CHECK_OK(open_mem(h, (size_t)bits));
        msbnb_st_dtype back;
        CHECK_OK(msbnb_st_dtype_parse(msbnb_st_dtype_name((msbnb_st_dtype)d), &back));
        CHECK_EQ_INT(back, d);
    }
}

TEST(reader_rejects_each_failure_mode) {
    static const struct {
        const char *header;
        size_t data;
        const char *expect; /* substring of the message */
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "needs 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}",
         6, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "gap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 6, "not covered"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 2, "outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,4]}}", 4, "overflow"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,1]}}", 1, "whole bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "dimensions"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
         2, "twice"},
        {"{\"__metadata__\":{\"k\":1}}", 0, "not a string"},
        {"{\"__metadata__\":[]}", 0, "not an object"},
        {"{\"a\":[]}", 0, "not an object"},
        {"[1]    ", 0, "start with"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}", 1, "syntax"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}x", 1, "after the JSON"},
        {"{\"\xc3\x28\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "UTF-8"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[[[[[[[[[[1]]]]]]]]]],\"data_offsets\":[0,1]}}", 1, "deeply"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        msbnb_status st = open_mem(cases[i].header, cases[i].data);
        CHECK_MSG_(st == MSBNB_ERR_FORMAT, "case %zu: status %d", i, (int)st);
        const char *m = msbnb_last_error();
        CHECK_MSG_(strstr(m, cases[i].expect) != NULL, "case %zu: message '%s' lacks '%s'", i, m, cases[i].expect);
        CHECK_MSG_(strstr(m, "mem.safetensors") && strstr(m, "(byte "), "case %zu: message '%s'", i, m);
        CHECK_MSG_(!strchr(m, '\n'), "case %zu: multi-line message", i);
    }
    /* header length past EOF, over the limit, file too short */
    uint8_t b[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    msbnb_safetensors *f = NULL;
    CHECK_STATUS(msbnb_safetensors_open_memory(b, 16, "x", &f), MSBNB_ERR_FORMAT);
    CHECK(strstr(msbnb_last_error(), "exceeds") != NULL);
    b[0] = 100, b[1] = b[2] = b[3] = 0;
    CHECK_STATUS(msbnb_safetensors_open_memory(b, 16, "x", &f), MSBNB_ERR_FORMAT);
    CHECK(strstr(msbnb_last_error(), "past the end") != NULL);
    CHECK_STATUS(msbnb_safetensors_open_memory(b, 5, "x", &f), MSBNB_ERR_FORMAT);
    CHECK(strstr(msbnb_last_error(), "too short") != NULL);
    CHECK(f == NULL);
    CHECK_STATUS(msbnb_safetensors_open(tpath("does-not-exist"), &f), MSBNB_ERR_IO);
}

TEST(writer_round_trip_is_exact_and_aligned) {
    const char *path = tpath("rt.safetensors");
    msbnb_st_writer *w = NULL;
    CHECK_OK(msbnb_st_writer_create(path, &w));
    float a[6] = {1, -2, 3.5f, 0, -0.0f, 1e-30f};
    uint8_t u[3] = {7, 8, 9};
    int64_t i64[2] = {-5, INT64_C(1) << 40};
    int64_t s23[2] = {2, 3}, s3 = 3, s2 = 2;
    CHECK_OK(msbnb_st_writer_add(w, "u8", MSBNB_ST_U8, 1, &s3, u, 3));
    CHECK_OK(msbnb_st_writer_add_f32(w, "a.weight", 2, s23, a));
    CHECK_OK(msbnb_st_writer_add(w, "z.i64", MSBNB_ST_I64, 1, &s2, i64, sizeof i64));
    CHECK_OK(msbnb_st_writer_set_metadata(w, "note", "quote \" and \\ ok"));
    CHECK_STATUS(msbnb_st_writer_add(w, "u8", MSBNB_ST_U8, 1, &s3, u, 3), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_st_writer_add(w, "bad", MSBNB_ST_U8, 1, &s3, u, 2), MSBNB_ERR_SHAPE);
    CHECK_STATUS(msbnb_st_writer_add(w, "__metadata__", MSBNB_ST_U8, 1, &s3, u, 3), MSBNB_ERR_INVALID_ARG);
    CHECK(access(path, F_OK) != 0); /* nothing at the destination before finish */
    CHECK_OK(msbnb_st_writer_finish(w));
    msbnb_st_writer_free(w);

    msbnb_safetensors *f = NULL;
    CHECK_OK(msbnb_safetensors_open(path, &f));
    if (!f) return;
    CHECK_EQ_INT(msbnb_safetensors_count(f), 3);
    msbnb_tensor_info t;
    CHECK_OK(msbnb_safetensors_find(f, "a.weight", &t));
    CHECK(t.nbytes == sizeof a && !memcmp(t.data, a, sizeof a));
    CHECK_EQ_INT(t.file_offset % 4, 0);
    CHECK_OK(msbnb_safetensors_find(f, "z.i64", &t));
    CHECK(!memcmp(t.data, i64, sizeof i64));
    CHECK_EQ_INT(t.file_offset % 8, 0);
    CHECK_OK(msbnb_safetensors_find(f, "u8", &t));
    CHECK(!memcmp(t.data, u, 3));
    float conv[3];
    CHECK_OK(msbnb_tensor_to_f32(&t, conv));
    CHECK(conv[0] == 7 && conv[2] == 9);
    const char *note = msbnb_safetensors_metadata(f, "note");
    CHECK(note && !strcmp(note, "quote \" and \\ ok"));
    const char *ver = msbnb_safetensors_metadata(f, "msbnb_format_version");
    CHECK(ver && atoi(ver) == MSBNB_FORMAT_VERSION);
    msbnb_safetensors_close(f);
    CHECK_EQ_INT(count_files(".rt.safetensors"), 0); /* no temporaries left */
}

TEST(writer_abandoned_or_failing_leaves_nothing) {
    const char *path = tpath("abandoned.safetensors");
    msbnb_st_writer *w = NULL;
    CHECK_OK(msbnb_st_writer_create(path, &w));
    float x[4] = {1, 2, 3, 4};
    int64_t s = 4;
    CHECK_OK(msbnb_st_writer_add_f32(w, "x", 1, &s, x));
    msbnb_st_writer_free(w); /* never finished */
    CHECK(access(path, F_OK) != 0);
    CHECK_EQ_INT(count_files(".abandoned"), 0);
    /* an existing destination is untouched by an abandoned rewrite */
    FILE *fp = fopen(path, "wb");
    fputs("old", fp);
    fclose(fp);
    CHECK_OK(msbnb_st_writer_create(path, &w));
    msbnb_st_writer_free(w);
    size_t len = 0;
    char *old = test_read_file(path, &len);
    CHECK(old && len == 3 && !memcmp(old, "old", 3));
    free(old);
    /* destination directory missing: error, nothing created */
    CHECK_STATUS(msbnb_st_writer_create(tpath("no/such/dir.safetensors"), &w), MSBNB_ERR_IO);
    CHECK(w == NULL);
}

TEST(sharded_directory) {
    /* two shards + index; then a broken index (a tensor mapped to the wrong shard) */
    char dir[600];
    snprintf(dir, sizeof dir, "%s/sharded", tmpdir);
    mkdir(dir, 0777);
    float a[2] = {1, 2}, b[3] = {3, 4, 5};
    int64_t s2 = 2, s3 = 3;
    char p[700];
    msbnb_st_writer *w = NULL;
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
    CHECK_OK(msbnb_st_writer_create(p, &w));
    CHECK_OK(msbnb_st_writer_add_f32(w, "a.weight", 1, &s2, a));
    CHECK_OK(msbnb_st_writer_finish(w));
    msbnb_st_writer_free(w);
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    CHECK_OK(msbnb_st_writer_create(p, &w));
    CHECK_OK(msbnb_st_writer_add_f32(w, "b.weight", 1, &s3, b));
    CHECK_OK(msbnb_st_writer_finish(w));
    msbnb_st_writer_free(w);
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *fp = fopen(p, "w");
    fputs("{\"model_type\": \"llama\"}", fp);
    fclose(fp);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    fp = fopen(p, "w");
    fputs("{\"metadata\": {\"total_size\": 20}, \"weight_map\": {\"a.weight\": \"model-00001-of-00002.safetensors\","
          " \"b.weight\": \"model-00002-of-00002.safetensors\"}}",
          fp);
    fclose(fp);
    msbnb_checkpoint *ck = NULL;
    CHECK_OK(msbnb_checkpoint_open(dir, &ck));
    CHECK_EQ_INT(msbnb_checkpoint_count(ck), 2);
    CHECK_EQ_INT(msbnb_checkpoint_shard_count(ck), 2);
    float got[3];
    CHECK_OK(msbnb_checkpoint_read_f32(ck, "b.weight", got, 3));
    CHECK(got[0] == 3 && got[2] == 5);
    CHECK_STATUS(msbnb_checkpoint_read_f32(ck, "b.weight", got, 2), MSBNB_ERR_SHAPE);
    msbnb_checkpoint_close(ck);
    fp = fopen(p, "w");
    fputs("{\"weight_map\": {\"a.weight\": \"model-00002-of-00002.safetensors\","
          " \"b.weight\": \"model-00002-of-00002.safetensors\"}}",
          fp);
    fclose(fp);
    ck = NULL;
    CHECK_STATUS(msbnb_checkpoint_open(dir, &ck), MSBNB_ERR_FORMAT);
    CHECK(ck == NULL);
    fp = fopen(p, "w");
    fputs("{\"weight_map\": {\"a.weight\": \"../escape.safetensors\"}}", fp);
    fclose(fp);
    CHECK_STATUS(msbnb_checkpoint_open(dir, &ck), MSBNB_ERR_FORMAT);
}

TEST(python_float_repr_matches_json_dumps) {
    static const struct {
        double v;
        const char *want;
    } cases[] = {{2.563678741455078, "2.563678741455078"},
                 {(double)2.5636787f, "2.563678741455078"},
                 {1e-05, "1e-05"},
                 {0.0001, "0.0001"},
                 {1e16, "1e+16"},
                 {1234567890123456.0, "1234567890123456.0"},
                 {6.0, "6.0"},
                 {-0.5, "-0.5"},
                 {0.0, "0.0"},
                 {(double)0.1f, "0.10000000149011612"},
                 {1.5e-7, "1.5e-07"},
                 {123.25, "123.25"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        msbnb__python_float_repr(cases[i].v, buf, sizeof buf);
        CHECK_MSG_(!strcmp(buf, cases[i].want), "repr(%.17g) = %s, want %s", cases[i].v, buf, cases[i].want);
    }
}

/* config.json keeps its text byte for byte; only quantization_config is cut out / appended. */
TEST(config_quantization_splice) {
    static const char *const inputs[] = {
        "{\n  \"rope_theta\": 10000.0,\n  \"eps\": 1e-05\n}\n",
        "{\"a\": 1.0, \"quantization_config\": {\"x\": [1, {\"y\": \"}\"}]}, \"b\": 2.50}",
        "{\"a\": 1.0, \"quantization_config\": {\"x\": 1}}",
        "{\"quantization_config\": {\"x\": 1}}",
        "{}",
    };
    const char *src = tpath("cfg_in.json"), *dst = tpath("cfg_out.json");
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        FILE *f = fopen(src, "w");
        fputs(inputs[i], f);
        fclose(f);
        for (int add = 0; add < 2; add++) {
            CHECK_OK(msbnb_config_write_with_quantization(src, dst, add ? "{\"quant_method\":\"bitsandbytes\",\"t\":6.0}" : NULL));
            msbnb_config *c = NULL;
            CHECK_OK(msbnb_config_open(dst, &c));
            if (!c) continue;
            const char *qm = NULL;
            CHECK_EQ_INT(msbnb_config_has(c, "quantization_config"), add);
            if (add) CHECK_OK(msbnb_config_get_string(c, "quantization_config.quant_method", &qm));
            size_t len = 0;
            char *text = test_read_file(dst, &len);
            /* values other than quantization_config keep their spelling (10000.0, 2.50, 6.0) */
            if (i == 0) CHECK(text && strstr(text, "\"rope_theta\": 10000.0") && strstr(text, "1e-05"));
            if (i == 1) CHECK(text && strstr(text, "2.50") && (!add || strstr(text, "6.0")));
            free(text);
            msbnb_config_free(c);
        }
    }
}

int main(void) {
    if (test_scratch_make(tmpdir, sizeof tmpdir, MSBNB_BINARY_DIR, "io_test_st")) return 1;
    RUN(stories_model_opens);
    RUN(config_nested_and_errors);
    RUN(reader_accepts_valid_edge_cases);
    RUN(reader_rejects_each_failure_mode);
    RUN(writer_round_trip_is_exact_and_aligned);
    RUN(writer_abandoned_or_failing_leaves_nothing);
    RUN(sharded_directory);
    RUN(python_float_repr_matches_json_dumps);
    RUN(config_quantization_splice);
    test_scratch_remove(tmpdir);
    return test_report();
}
