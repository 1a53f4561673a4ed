/*
 * test_load.c — model loading: corrupt llama2.c checkpoints and config.json files give clean
 * errors (no crash, no leak under ASan), config.json variants (rope_parameters, head_dim, GQA),
 * random models, and module lookup by PEFT name.
 */
#define _POSIX_C_SOURCE 200809L
#include <sys/stat.h>
#include <unistd.h>

#include <msbnb/io.h>
#include <msbnb/model.h>
#include <msbnb/nn.h>

#include "model/llama_internal.h"
#include "test.h"

#define BIN_PATH MSBNB_SHARED_DIR "/models/stories260K/stories260K.bin"

static unsigned char *good_bin;
static size_t good_len;

static msbnb_status load_bin_bytes(const char *name, const void *data, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/test_load_%s.bin", MSBNB_BINARY_DIR, name);
    FILE *f = fopen(path, "wb");
    if (!f) return MSBNB_ERR_IO;
    if (n) fwrite(data, 1, n, f);
    fclose(f);
    msbnb_model *m = NULL;
    msbnb_status st = msbnb_model_load(path, NULL, &m);
    if (st != MSBNB_OK) printf("  (%s: %s)\n", name, msbnb_last_error());
    CHECK(st == MSBNB_OK ? m != NULL : m == NULL);
    msbnb_model_free(m);
    remove(path);
    return st;
}

/* good file with header field i set to v */
static msbnb_status load_with_header(const char *name, int i, int32_t v) {
    unsigned char *b = (unsigned char *)malloc(good_len);
    memcpy(b, good_bin, good_len);
    memcpy(b + 4 * i, &v, 4);
    msbnb_status st = load_bin_bytes(name, b, good_len);
    free(b);
    return st;
}

TEST(corrupt_llama2c) {
    CHECK_OK(load_bin_bytes("good", good_bin, good_len));
    CHECK_STATUS(load_bin_bytes("empty", good_bin, 0), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_bin_bytes("short_header", good_bin, 27), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_bin_bytes("header_only", good_bin, 28), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_bin_bytes("one_short", good_bin, good_len - 1), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_bin_bytes("half", good_bin, good_len / 2), MSBNB_ERR_FORMAT);
    unsigned char *longer = (unsigned char *)calloc(1, good_len + 4);
    memcpy(longer, good_bin, good_len);
    CHECK_STATUS(load_bin_bytes("trailing", longer, good_len + 4), MSBNB_ERR_FORMAT);
    free(longer);
    CHECK_STATUS(load_with_header("dim0", 0, 0), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_with_header("dim_neg", 0, -64), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_with_header("dim_huge", 0, 0x7fffffff), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_with_header("hidden_huge", 1, 0x40000000), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_with_header("layers_neg", 2, -1), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_with_header("heads_0", 3, 0), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_with_header("heads_not_dividing", 3, 7), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_with_header("kv_0", 4, 0), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_with_header("kv_not_dividing", 4, 3), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_with_header("kv_more", 4, 16), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_with_header("vocab_0", 5, 0), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_with_header("vocab_min", 5, INT32_MIN), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_with_header("vocab_neg", 5, -512), MSBNB_ERR_FORMAT); /* needs wcls bytes */
    CHECK_STATUS(load_with_header("seq_0", 6, 0), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_with_header("seq_bigger", 6, 1024), MSBNB_ERR_FORMAT);
    CHECK_STATUS(load_with_header("layers_more", 2, 6), MSBNB_ERR_FORMAT);
    msbnb_model *m = NULL;
    CHECK_STATUS(msbnb_model_load("/nonexistent/model.bin", NULL, &m), MSBNB_ERR_IO);
    CHECK_STATUS(msbnb_model_load(NULL, NULL, &m), MSBNB_ERR_INVALID_ARG);
    msbnb_model_free(NULL);
}

/* A separate classifier (negative vocab) is read from the end of the file. */
TEST(untied_classifier) {
    size_t n = good_len + 512 * 64 * 4;
    unsigned char *b = (unsigned char *)malloc(n);
    memcpy(b, good_bin, good_len);
    int32_t v = -512;
    memcpy(b + 20, &v, 4);
    memcpy(b + good_len, good_bin + 28, 512 * 64 * 4); /* wcls = embedding: same logits as tied */
    char path[512];
    snprintf(path, sizeof path, "%s/test_load_untied.bin", MSBNB_BINARY_DIR);
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
    msbnb_model *tied = NULL, *untied = NULL;
    CHECK_OK(msbnb_model_load(BIN_PATH, NULL, &tied));
    CHECK_OK(msbnb_model_load(path, NULL, &untied));
    if (tied && untied) {
        msbnb_model_config c;
        CHECK_OK(msbnb_model_get_config(untied, &c));
        CHECK_EQ_INT(c.tied, 0);
        int32_t ids[3] = {1, 403, 407};
        float a[3 * 512], bb[3 * 512];
        CHECK_OK(msbnb_model_forward(tied, ids, 3, 0, a, 1));
        CHECK_OK(msbnb_model_forward(untied, ids, 3, 0, bb, 1));
        double d = 0;
        for (int i = 0; i < 3 * 512; i++) d = fmax(d, fabs((double)a[i] - bb[i]));
        CHECK(d <= 1e-5);
    }
    msbnb_model_free(tied);
    msbnb_model_free(untied);
    remove(path);
    free(b);
}

static const char *base_json =
    "{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":172,\"num_hidden_layers\":5,"
    "\"num_attention_heads\":8,\"num_key_value_heads\":4,\"vocab_size\":512,\"max_position_embeddings\":512,"
    "\"rms_norm_eps\":1e-05,\"rope_theta\":10000.0,\"tie_word_embeddings\":true}";

static msbnb_status parse(const char *json, msbnb_model_config *c) {
    msbnb_status st = msbnb__llama_config_from_json(json, strlen(json), c);
    if (st != MSBNB_OK) printf("  (%s)\n", msbnb_last_error());
    return st;
}

TEST(config_json) {
    msbnb_model_config c;
    CHECK_OK(parse(base_json, &c));
    CHECK_EQ_INT(c.dim, 64);
    CHECK_EQ_INT(c.head_dim, 8);
    CHECK_EQ_INT(c.n_kv_heads, 4);
    CHECK_EQ_INT(c.tied, 1);
    CHECK_NEAR(c.norm_eps, 1e-5, 1e-12);
    /* rope_theta inside rope_parameters, head_dim explicit, kv heads absent (= heads) */
    CHECK_OK(parse("{\"hidden_size\":64,\"intermediate_size\":100,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                   "\"head_dim\":32,\"vocab_size\":300,\"rope_parameters\":{\"rope_theta\":500000.0,"
                   "\"rope_type\":\"default\"}}",
                   &c));
    CHECK_EQ_INT(c.head_dim, 32);
    CHECK_EQ_INT(c.n_kv_heads, 4);
    CHECK_NEAR(c.rope_theta, 500000.0, 1e-3);
    CHECK_EQ_INT(c.seq_len, 2048);
    CHECK_EQ_INT(c.tied, 0);
    /* failures */
    CHECK_STATUS(parse("{", &c), MSBNB_ERR_FORMAT);
    CHECK_STATUS(parse("[1,2]", &c), MSBNB_ERR_FORMAT);
    CHECK_STATUS(parse("{\"hidden_size\":64}", &c), MSBNB_ERR_FORMAT);
    CHECK_STATUS(parse("{\"hidden_size\":\"64\",\"intermediate_size\":1,\"num_hidden_layers\":1,"
                       "\"num_attention_heads\":1,\"vocab_size\":3}",
                       &c),
                 MSBNB_ERR_FORMAT);
    CHECK_STATUS(parse("{\"hidden_size\":64.5,\"intermediate_size\":1,\"num_hidden_layers\":1,"
                       "\"num_attention_heads\":1,\"vocab_size\":3}",
                       &c),
                 MSBNB_ERR_FORMAT);
    CHECK_STATUS(parse("{\"hidden_size\":-64,\"intermediate_size\":1,\"num_hidden_layers\":1,"
                       "\"num_attention_heads\":1,\"vocab_size\":3}",
                       &c),
                 MSBNB_ERR_FORMAT);
    CHECK_STATUS(parse("{\"hidden_size\":64,\"intermediate_size\":1,\"num_hidden_layers\":1,"
                       "\"num_attention_heads\":6,\"vocab_size\":3}",
                       &c),
                 MSBNB_ERR_FORMAT); /* 64 % 6 */
    CHECK_STATUS(parse("{\"hidden_size\":64,\"intermediate_size\":1,\"num_hidden_layers\":1,"
                       "\"num_attention_heads\":8,\"num_key_value_heads\":3,\"vocab_size\":3}",
                       &c),
                 MSBNB_ERR_FORMAT);
    CHECK_STATUS(parse("{\"hidden_size\":64,\"intermediate_size\":1,\"num_hidden_layers\":1,"
                       "\"num_attention_heads\":8,\"vocab_size\":3,\"rms_norm_eps\":-1}",
                       &c),
                 MSBNB_ERR_FORMAT);
    CHECK_STATUS(parse("{\"model_type\":\"gpt2\",\"hidden_size\":64}", &c), MSBNB_ERR_UNSUPPORTED);
    CHECK_STATUS(parse("{\"hidden_size\":64,\"intermediate_size\":1,\"num_hidden_layers\":1,"
                       "\"num_attention_heads\":8,\"vocab_size\":3,\"rope_scaling\":{\"rope_type\":\"yarn\"}}",
                       &c),
                 MSBNB_ERR_UNSUPPORTED);
}

/* An HF directory with a broken config.json next to the real weights. */
static msbnb_status load_dir_with_config(const char *name, const char *json) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/test_load_dir_%s", MSBNB_BINARY_DIR, name);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return MSBNB_ERR_IO;
    fputs(json, f);
    fclose(f);
    char st_path[600];
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", dir);
    remove(st_path);
    if (symlink(MSBNB_SHARED_DIR "/models/stories260K/hf/model.safetensors", st_path) != 0) return MSBNB_ERR_IO;
    msbnb_model *m = NULL;
    msbnb_status st = msbnb_model_load(dir, NULL, &m);
    if (st != MSBNB_OK) printf("  (%s: %s)\n", name, msbnb_last_error());
    msbnb_model_free(m);
    remove(st_path);
    remove(path);
    rmdir(dir);
    return st;
}

TEST(hf_dir_config_mismatch) {
    CHECK_OK(load_dir_with_config("good", base_json));
    /* 6 layers in the config, 5 in the file -> missing tensor */
    CHECK_STATUS(load_dir_with_config("layers", "{\"hidden_size\":64,\"intermediate_size\":172,\"num_hidden_layers\":6,"
                                                "\"num_attention_heads\":8,\"num_key_value_heads\":4,\"vocab_size\":512,"
                                                "\"tie_word_embeddings\":true}"),
                 MSBNB_ERR_FORMAT);
    /* wrong intermediate size -> shape mismatch */
    CHECK_STATUS(load_dir_with_config("hidden", "{\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":5,"
                                                "\"num_attention_heads\":8,\"num_key_value_heads\":4,\"vocab_size\":512,"
                                                "\"tie_word_embeddings\":true}"),
                 MSBNB_ERR_SHAPE);
    /* untied without lm_head */
    CHECK_STATUS(load_dir_with_config("untied", "{\"hidden_size\":64,\"intermediate_size\":172,\"num_hidden_layers\":5,"
                                                "\"num_attention_heads\":8,\"num_key_value_heads\":4,\"vocab_size\":512,"
                                                "\"tie_word_embeddings\":false}"),
                 MSBNB_ERR_FORMAT);
    CHECK(load_dir_with_config("garbage", "not json at all") != MSBNB_OK);
}

TEST(random_model_and_names) {
    msbnb_model_config c;
    memset(&c, 0, sizeof c);
    c.dim = 32;
    c.hidden_dim = 48;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.vocab_size = 50;
    c.seq_len = 16;
    c.norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.tied = 0;
    msbnb_model *m = NULL;
    CHECK_OK(msbnb_model_create_random(&c, NULL, 7, &m));
    if (!m) return;
    CHECK_EQ_INT(msbnb_model_context_len(m), 16);
    msbnb_linear *l = NULL;
    CHECK_OK(msbnb_model_find_linear(m, "base_model.model.model.layers.1.mlp.down_proj", &l));
    CHECK(l == msbnb_model_linear(m, 1, MSBNB_PROJ_DOWN));
    CHECK_EQ_INT(msbnb_linear_in_features(l), 48);
    CHECK_OK(msbnb_model_find_linear(m, "model.layers.0.self_attn.k_proj", &l));
    CHECK_EQ_INT(msbnb_linear_out_features(l), 16);
    CHECK_STATUS(msbnb_model_find_linear(m, "model.layers.2.self_attn.k_proj", &l), MSBNB_ERR_NOT_FOUND);
    CHECK_STATUS(msbnb_model_find_linear(m, "model.layers.0.mlp.k_proj", &l), MSBNB_ERR_NOT_FOUND);
    CHECK_STATUS(msbnb_model_find_linear(m, "lm_head", &l), MSBNB_ERR_NOT_FOUND);
    CHECK(msbnb_model_linear(m, 2, MSBNB_PROJ_Q) == NULL);
    /* fills the context exactly, then refuses */
    int32_t ids[16];
    for (int i = 0; i < 16; i++) ids[i] = i * 3 % 50;
    float logits[50];
    CHECK_OK(msbnb_model_forward(m, ids, 16, 0, logits, 0));
    for (int i = 0; i < 50; i++) CHECK(isfinite(logits[i]));
    CHECK_STATUS(msbnb_model_forward(m, ids, 1, 16, logits, 0), MSBNB_ERR_SHAPE);
    msbnb_model_free(m);
    /* invalid params */
    msbnb_model_params p = msbnb_model_params_default();
    p.quant = MSBNB_QTYPE_BLOCKWISE8;
    CHECK_STATUS(msbnb_model_create_random(&c, &p, 7, &m), MSBNB_ERR_INVALID_ARG);
    c.head_dim = 3;
    CHECK_STATUS(msbnb_model_create_random(&c, NULL, 7, &m), MSBNB_ERR_FORMAT);
    msbnb_proj pj;
    CHECK_OK(msbnb_proj_parse("gate_proj", &pj));
    CHECK_EQ_INT(pj, MSBNB_PROJ_GATE);
    CHECK_STATUS(msbnb_proj_parse("lm_head", &pj), MSBNB_ERR_INVALID_ARG);
}

/* The HF model written with bf16 / f16 weights loads (converted to fp32) and stays close. */
TEST(half_precision_checkpoint) {
    static const msbnb_st_dtype dts[2] = {MSBNB_ST_BF16, MSBNB_ST_F16};
    msbnb_model *ref = NULL;
    CHECK_OK(msbnb_model_load(MSBNB_SHARED_DIR "/models/stories260K/hf", NULL, &ref));
    int32_t ids[4] = {1, 403, 407, 261};
    float a[4 * 512], b[4 * 512];
    if (ref) CHECK_OK(msbnb_model_forward(ref, ids, 4, 0, a, 1));
    for (int k = 0; ref && k < 2; k++) {
        char dir[512], path[600], cfg[600];
        snprintf(dir, sizeof dir, "%s/test_load_half%d", MSBNB_BINARY_DIR, k);
        mkdir(dir, 0755);
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        snprintf(cfg, sizeof cfg, "%s/config.json", dir);
        msbnb_checkpoint *ck = NULL;
        msbnb_st_writer *w = NULL;
        CHECK_OK(msbnb_checkpoint_open(MSBNB_SHARED_DIR "/models/stories260K/hf", &ck));
        CHECK_OK(msbnb_st_writer_create(path, &w));
        for (size_t i = 0; ck && w && i < msbnb_checkpoint_count(ck); i++) {
            msbnb_tensor_info t;
            CHECK_OK(msbnb_checkpoint_get(ck, i, &t));
            float *f = (float *)malloc(sizeof(float) * (size_t)t.numel);
            uint16_t *h = (uint16_t *)malloc(sizeof(uint16_t) * (size_t)t.numel);
            CHECK_OK(msbnb_tensor_to_f32(&t, f));
            if (k == 0) msbnb_f32_to_bf16_array(f, h, (size_t)t.numel);
            else msbnb_f32_to_f16_array(f, h, (size_t)t.numel);
            CHECK_OK(msbnb_st_writer_add(w, t.name, dts[k], t.ndim, t.shape, h, sizeof(uint16_t) * (size_t)t.numel));
            free(f);
            free(h);
        }
        CHECK_OK(msbnb_st_writer_finish(w));
        msbnb_st_writer_free(w);
        msbnb_checkpoint_close(ck);
        size_t clen = 0;
        char *json = (char *)test_read_file(MSBNB_SHARED_DIR "/models/stories260K/hf/config.json", &clen);
        FILE *f = fopen(cfg, "wb");
        if (f && json) fwrite(json, 1, clen, f);
        if (f) fclose(f);
        free(json);
        msbnb_model *m = NULL;
        CHECK_OK(msbnb_model_load(dir, NULL, &m));
        if (m) {
            CHECK_OK(msbnb_model_forward(m, ids, 4, 0, b, 1));
            double d = 0;
            for (int i = 0; i < 4 * 512; i++) d = fmax(d, fabs((double)a[i] - b[i]));
            printf("  %s checkpoint: max logit change %.3g\n", k ? "f16" : "bf16", d);
            /* bf16 keeps 8 mantissa bits: logits of magnitude ~10-20 move by a few tenths at most */
            CHECK_MSG_(d > 0 && d < (k == 0 ? 0.4 : 0.1), "%s: max logit change %g", k ? "f16" : "bf16", d);
        }
        msbnb_model_free(m);
        remove(path);
        remove(cfg);
        rmdir(dir);
    }
    msbnb_model_free(ref);
}

/* Generation stops at the end of the context. */
TEST(generate_stops_at_context) {
    msbnb_model_config c;
    memset(&c, 0, sizeof c);
    c.dim = 16;
    c.hidden_dim = 24;
    c.n_layers = 1;
    c.n_heads = 2;
    c.vocab_size = 40;
    c.seq_len = 12;
    c.norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.tied = 1;
    msbnb_model *m = NULL;
    CHECK_OK(msbnb_model_create_random(&c, NULL, 3, &m));
    if (!m) return;
    int32_t prompt[2] = {1, 5}, out[64];
    int n = 0;
    msbnb_sampler_params sp = msbnb_sampler_params_default();
    sp.temperature = 1.5f;
    sp.top_p = 1.0f;
    const int32_t stop[2] = {2, 1};
    sp.stop_ids = stop;
    sp.n_stop = 2;
    CHECK_OK(msbnb_model_generate(m, prompt, 2, 100, &sp, NULL, NULL, out, 64, &n));
    CHECK(n >= 2 && n <= 12);
    for (int i = 2; i < n; i++) CHECK(out[i] >= 0 && out[i] < 40 && out[i] != 1 && out[i] != 2); /* EOS/BOS stop, not emitted */
    int32_t long_prompt[13] = {1};
    CHECK_STATUS(msbnb_model_generate(m, long_prompt, 13, 1, &sp, NULL, NULL, out, 64, &n), MSBNB_ERR_SHAPE);
    msbnb_model_free(m);
}

int main(void) {
    good_bin = (unsigned char *)test_read_file(BIN_PATH, &good_len);
    if (!good_bin) {
        printf("cannot read %s\n0 passed, 1 failed\n", BIN_PATH);
        return 1;
    }
    RUN(corrupt_llama2c);
    RUN(untied_classifier);
    RUN(config_json);
    RUN(hf_dir_config_mismatch);
    RUN(random_model_and_names);
    RUN(half_precision_checkpoint);
    RUN(generate_stops_at_context);
    free(good_bin);
    return test_report();
}
