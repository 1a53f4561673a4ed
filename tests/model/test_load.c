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
#include "quantized_checkpoint.h"

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
                       "\"num_attention_heads\":8,\"vocab_size\":3,\"rope_scaling\":{\"rope_type\":\"longrope\"}}",
                       &c),
                 MSBNB_ERR_UNSUPPORTED);
    CHECK(strstr(msbnb_last_error(), "longrope") && strstr(msbnb_last_error(), "llama3"));
}

#define SIZES "\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4," \
              "\"num_key_value_heads\":2,\"vocab_size\":300,\"max_position_embeddings\":128"

/* Families and RoPE types: what each config.json spelling turns into. */
TEST(config_families_and_rope) {
    msbnb_model_config c;
    /* the older spelling {"type": ...} is read (it used to be ignored silently) */
    CHECK_OK(parse("{" SIZES ",\"rope_scaling\":{\"type\":\"linear\",\"factor\":4.0},\"rope_theta\":500.0}", &c));
    CHECK_EQ_INT(c.rope.type, MSBNB_ROPE_LINEAR);
    CHECK_NEAR(c.rope.factor, 4.0, 0);
    CHECK_NEAR(c.rope_theta, 500.0, 0);
    CHECK_OK(parse("{" SIZES ",\"rope_scaling\":{\"type\":\"dynamic\",\"factor\":2.0}}", &c));
    CHECK_EQ_INT(c.rope.type, MSBNB_ROPE_DYNAMIC);
    CHECK_OK(parse("{" SIZES ",\"rope_parameters\":{\"rope_type\":\"llama3\",\"rope_theta\":500000.0,\"factor\":8.0,"
                   "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}}",
                   &c));
    CHECK_EQ_INT(c.rope.type, MSBNB_ROPE_LLAMA3);
    CHECK_EQ_INT(c.rope.original_max_pos, 8192);
    CHECK_NEAR(c.rope_theta, 500000.0, 0);
    /* yarn: defaults beta 32/1, original = max_position_embeddings, attention factor 0.1 ln f + 1 */
    CHECK_OK(parse("{" SIZES ",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4.0}}", &c));
    CHECK_EQ_INT(c.rope.type, MSBNB_ROPE_YARN);
    CHECK_EQ_INT(c.rope.original_max_pos, 128);
    CHECK_NEAR(c.rope.beta_fast, 32.0, 0);
    CHECK_NEAR(c.rope.beta_slow, 1.0, 0);
    CHECK_NEAR(c.rope.attention_factor, 0.1 * log(4.0) + 1.0, 1e-6);
    CHECK_EQ_INT(c.rope.truncate, 1);
    CHECK_STATUS(parse("{" SIZES ",\"rope_scaling\":{\"type\":\"linear\"}}", &c), MSBNB_ERR_FORMAT); /* no factor */
    CHECK_STATUS(parse("{" SIZES ",\"rope_parameters\":{\"rope_type\":\"llama3\",\"factor\":8.0}}", &c),
                 MSBNB_ERR_FORMAT);
    CHECK_STATUS(parse("{" SIZES ",\"partial_rotary_factor\":0.5}", &c), MSBNB_ERR_UNSUPPORTED);
    /* families */
    CHECK_OK(parse("{\"model_type\":\"mistral\"," SIZES "}", &c));
    CHECK_EQ_INT(c.family, MSBNB_FAMILY_MISTRAL);
    CHECK_EQ_INT(c.sliding_window, 4096); /* transformers' default */
    CHECK_OK(parse("{\"model_type\":\"mistral\"," SIZES ",\"sliding_window\":null}", &c));
    CHECK_EQ_INT(c.sliding_window, 0);
    CHECK_OK(parse("{\"model_type\":\"qwen2\"," SIZES ",\"use_sliding_window\":false,\"sliding_window\":32}", &c));
    CHECK_EQ_INT(c.bias, MSBNB_BIAS_QKV);
    CHECK_EQ_INT(c.sliding_window, 0);
    CHECK_EQ_INT(c.qk_norm, 0);
    /* use_sliding_window: layers from max_window_layers on (transformers' default 28: none of 2) */
    CHECK_OK(parse("{\"model_type\":\"qwen2\"," SIZES ",\"use_sliding_window\":true}", &c));
    CHECK_EQ_INT(c.sliding_window, 0);
    CHECK_OK(parse("{\"model_type\":\"qwen2\"," SIZES ",\"use_sliding_window\":true,\"sliding_window\":8,"
                   "\"max_window_layers\":1}", &c));
    CHECK_EQ_INT(c.sliding_window, 8);
    CHECK_EQ_INT(c.window_from_layer, 1);
    CHECK_EQ_INT(msbnb__llama_window(&c, 0), 0);
    CHECK_EQ_INT(msbnb__llama_window(&c, 1), 8);
    CHECK_OK(parse("{\"model_type\":\"qwen3\"," SIZES ",\"use_sliding_window\":true,\"sliding_window\":8,"
                   "\"layer_types\":[\"sliding_attention\",\"sliding_attention\"]}", &c));
    CHECK_EQ_INT(c.window_from_layer, 0);
    CHECK_STATUS(parse("{\"model_type\":\"qwen2\"," SIZES ",\"use_sliding_window\":true,\"sliding_window\":8,"
                       "\"layer_types\":[\"sliding_attention\",\"full_attention\"]}", &c),
                 MSBNB_ERR_UNSUPPORTED);
    CHECK_OK(parse("{\"model_type\":\"qwen3\"," SIZES "}", &c));
    CHECK_EQ_INT(c.qk_norm, 1);
    CHECK_EQ_INT(c.head_dim, 128); /* Qwen3Config's default, not hidden / heads */
    CHECK_EQ_INT(c.bias, 0);
    CHECK_OK(parse("{\"model_type\":\"llama\"," SIZES ",\"attention_bias\":true}", &c));
    CHECK_EQ_INT(c.bias, 0x0f);
    const char *refused[] = {"gemma", "gemma2", "phi3", "gpt2"};
    for (int i = 0; i < 4; i++) {
        char json[512];
        snprintf(json, sizeof json, "{\"model_type\":\"%s\"," SIZES "}", refused[i]);
        CHECK_STATUS(parse(json, &c), MSBNB_ERR_UNSUPPORTED);
        CHECK(strstr(msbnb_last_error(), refused[i]) && strstr(msbnb_last_error(), "llama, mistral, qwen2, qwen3"));
        CHECK(!strstr(msbnb_last_error(), "msbnb__") && !strstr(msbnb_last_error(), "config_from_json"));
        CHECK(strncmp(msbnb_last_error(), "model type", 10) == 0); /* no function name in front */
    }
}

/* Frequencies of each RoPE type against values worked out by hand from transformers' formulas. */
TEST(rope_frequencies) {
    msbnb_model_config c;
    memset(&c, 0, sizeof c);
    c.head_dim = 8;
    c.rope_theta = 10000.0f;
    c.seq_len = 32;
    float inv[4], scale;
    msbnb__rope_inv_freq(&c, 32, inv, &scale);
    for (int i = 0; i < 4; i++) CHECK_NEAR(inv[i], pow(10000.0, -2.0 * i / 8), 1e-7 * inv[i]);
    CHECK_NEAR(scale, 1.0, 0);
    c.rope.type = MSBNB_ROPE_LINEAR;
    c.rope.factor = 4.0f;
    msbnb__rope_inv_freq(&c, 32, inv, &scale);
    for (int i = 0; i < 4; i++) CHECK_NEAR(inv[i], pow(10000.0, -2.0 * i / 8) / 4, 1e-7 * inv[i]);
    /* dynamic: no change up to max_position_embeddings, then theta·(f·S/M - (f-1))^(d/(d-2)) */
    c.rope.type = MSBNB_ROPE_DYNAMIC;
    c.rope.factor = 2.0f;
    msbnb__rope_inv_freq(&c, 20, inv, &scale);
    for (int i = 0; i < 4; i++) CHECK_NEAR(inv[i], pow(10000.0, -2.0 * i / 8), 1e-6 * inv[i]);
    msbnb__rope_inv_freq(&c, 64, inv, &scale);
    double b = 10000.0 * pow(2.0 * 64 / 32 - 1, 8.0 / 6.0);
    for (int i = 0; i < 4; i++) CHECK_NEAR(inv[i], pow(b, -2.0 * i / 8), 1e-6 * inv[i]);
    /* llama3, original 32, low 1, high 4: wavelengths 2π, 19.9, 62.8, 199 -> kept, blended,
     * divided, divided (wavelengths within [8, 32] blend) */
    c.rope.type = MSBNB_ROPE_LLAMA3;
    c.rope.factor = 8.0f;
    c.rope.low_freq_factor = 1.0f;
    c.rope.high_freq_factor = 4.0f;
    c.rope.original_max_pos = 32;
    c.rope_theta = 100.0f;
    msbnb__rope_inv_freq(&c, 32, inv, &scale);
    CHECK_NEAR(inv[0], 1.0, 1e-7);
    for (int i = 2; i < 4; i++) CHECK_NEAR(inv[i], pow(100.0, -2.0 * i / 8) / 8, 1e-6 * inv[i]);
    c.rope_theta = 10.0f; /* wavelengths 2π, 11.2 (blended), 19.9 (blended), 35.3 (divided) */
    msbnb__rope_inv_freq(&c, 32, inv, &scale);
    for (int i = 1; i < 3; i++) {
        double f = pow(10.0, -2.0 * i / 8), s = (32.0 / (2 * 3.14159265358979323846 / f) - 1.0) / 3.0;
        CHECK_NEAR(inv[i], (1 - s) * f / 8 + s * f, 1e-6 * f);
    }
    CHECK_NEAR(inv[3], pow(10.0, -6.0 / 8) / 8, 1e-6 * inv[3]);
    /* yarn: the attention factor multiplies cos and sin */
    c.rope.type = MSBNB_ROPE_YARN;
    c.rope.factor = 4.0f;
    c.rope.beta_fast = 32.0f;
    c.rope.beta_slow = 1.0f;
    c.rope.attention_factor = 1.25f;
    c.rope.truncate = 1;
    msbnb__rope_inv_freq(&c, 32, inv, &scale);
    CHECK_NEAR(scale, 1.25, 0);
    float cs[4], sn[4];
    msbnb__rope_fill(inv, scale, 4, 3, 1, cs, sn);
    for (int i = 0; i < 4; i++) CHECK_NEAR(cs[i] * cs[i] + sn[i] * sn[i], 1.25 * 1.25, 1e-5);
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
    /* 2 layers in the config, 5 in the file: refused, not loaded as a 2-layer model (issue #15) */
    CHECK_STATUS(load_dir_with_config("fewer", "{\"hidden_size\":64,\"intermediate_size\":172,\"num_hidden_layers\":2,"
                                               "\"num_attention_heads\":8,\"num_key_value_heads\":4,\"vocab_size\":512,"
                                               "\"tie_word_embeddings\":true}"),
                 MSBNB_ERR_FORMAT);
    /* sizes at the config limits are checked against the tensors before anything is allocated */
    CHECK_STATUS(load_dir_with_config("huge", "{\"hidden_size\":65536,\"intermediate_size\":262144,\"num_hidden_layers\":5,"
                                              "\"num_attention_heads\":8,\"num_key_value_heads\":4,\"vocab_size\":2097152,"
                                              "\"max_position_embeddings\":1048576,\"tie_word_embeddings\":true}"),
                 MSBNB_ERR_SHAPE);
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
            /* the (tied) embedding stays in 16 bits: half the fp32 table's bytes */
            CHECK(m->tok_emb == NULL && m->tok_emb16 != NULL && m->emb_dtype == (k ? MSBNB_DTYPE_F16 : MSBNB_DTYPE_BF16));
            CHECK_EQ_INT((long long)(msbnb_model_weight_bytes(ref) - msbnb_model_weight_bytes(m)), 512 * 64 * 2);
            /* the 16-bit logits product equals an fp32 product over the converted table */
            float *table = (float *)malloc(sizeof(float) * 512 * 64), *xn = (float *)malloc(sizeof(float) * 64 * 3);
            float c1[3 * 512], c2[3 * 512];
            test_rng r = {5};
            test_fill_normal(&r, xn, 64 * 3, 1.0f);
            CHECK_OK(msbnb__llama_embedding_f32(m, table));
            CHECK_OK(msbnb__llama_logits(m, xn, 3, c1));
            CHECK_OK(msbnb_matmul_f32(table, 512, 64, xn, 3, NULL, c2));
            double e = 0;
            for (int i = 0; i < 3 * 512; i++) e = fmax(e, fabs((double)c1[i] - c2[i]) / (fabs((double)c2[i]) + 1.0));
            CHECK_MSG_(e < 1e-5, "16-bit head product off by %g", e);
            free(table);
            free(xn);
            /* --quant-head nf4: a quantized copy for the logits, close to the 16-bit head */
            msbnb_model_params hp = msbnb_model_params_default();
            hp.head_quant = MSBNB_QTYPE_NF4;
            msbnb_model *mq = NULL;
            CHECK_OK(msbnb_model_load(dir, &hp, &mq));
            if (mq) {
                float *q = (float *)malloc(sizeof(float) * 4 * 512);
                CHECK_OK(msbnb_model_forward(mq, ids, 4, 0, q, 1));
                double dq = 0;
                for (int i = 0; i < 4 * 512; i++) dq = fmax(dq, fabs((double)q[i] - b[i]));
                printf("  %s checkpoint, nf4 head: max logit change %.3g\n", k ? "f16" : "bf16", dq);
                CHECK(dq > 0 && dq < 2.0);
                free(q);
            }
            msbnb_model_free(mq);
        }
        msbnb_model_free(m);
        remove(path);
        remove(cfg);
        rmdir(dir);
    }
    msbnb_model_free(ref);
}

/* MODEL given as DIR/model.safetensors: the config.json beside it is read. */
TEST(safetensors_file_reads_config_beside) {
    msbnb_model *a = NULL, *b = NULL;
    CHECK_OK(msbnb_model_load(MSBNB_SHARED_DIR "/models/stories260K/hf", NULL, &a));
    CHECK_OK(msbnb_model_load(MSBNB_SHARED_DIR "/models/stories260K/hf/model.safetensors", NULL, &b));
    if (a && b) {
        int32_t ids[3] = {1, 403, 407};
        float la[512], lb[512];
        CHECK_OK(msbnb_model_forward(a, ids, 3, 0, la, 0));
        CHECK_OK(msbnb_model_forward(b, ids, 3, 0, lb, 0));
        CHECK(memcmp(la, lb, sizeof la) == 0);
    }
    msbnb_model_free(a);
    msbnb_model_free(b);
}

/* threshold of the q_proj of layer 0 as the model holds it */
static float q_threshold(const char *dir, float param, msbnb_qtype quant) {
    msbnb_model_params mp = msbnb_model_params_default();
    if (param >= 0) mp.int8_threshold = param;
    mp.quant = quant;
    msbnb_model *m = NULL;
    CHECK_OK(msbnb_model_load(dir, &mp, &m));
    float t = -1;
    msbnb_qtensor_view v;
    if (m && msbnb_qtensor_get_view(msbnb_linear_qtensor(msbnb_model_linear(m, 0, MSBNB_PROJ_Q)), &v) == MSBNB_OK)
        t = v.threshold;
    msbnb_model_free(m);
    return t;
}

/* An INT8 checkpoint's llm_int8_threshold is used as stored (also when re-quantized to INT8);
 * an explicit threshold overrides it. */
TEST(int8_checkpoint_threshold) {
    char dir[512], path[600], cfg[600];
    snprintf(dir, sizeof dir, "%s/test_load_int8", MSBNB_BINARY_DIR);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    msbnb_quant_config qc = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
    qc.threshold = 6.0f;
    write_quantized_checkpoint(MSBNB_SHARED_DIR "/models/stories260K/hf", path, &qc);
    char *qjson = NULL;
    CHECK_OK(msbnb_bnb_quantization_config_json(&qc, NULL, 0, &qjson));
    CHECK_OK(msbnb_config_write_with_quantization(MSBNB_SHARED_DIR "/models/stories260K/hf/config.json", cfg, qjson));
    free(qjson);
    CHECK_NEAR(q_threshold(dir, -1, MSBNB_QTYPE_NONE), 6.0, 0);  /* as stored */
    CHECK_NEAR(q_threshold(dir, 0, MSBNB_QTYPE_NONE), 0.0, 0);   /* --threshold 0 */
    CHECK_NEAR(q_threshold(dir, 3.5, MSBNB_QTYPE_NONE), 3.5, 0); /* --threshold 3.5 */
    CHECK_NEAR(q_threshold(dir, -1, MSBNB_QTYPE_INT8), 6.0, 0);  /* re-quantized: still 6 */
    CHECK_NEAR(q_threshold(MSBNB_SHARED_DIR "/models/stories260K/hf", -1, MSBNB_QTYPE_INT8), 0.0, 0);
    remove(path);
    remove(cfg);
    rmdir(dir);
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
    RUN(config_families_and_rope);
    RUN(rope_frequencies);
    RUN(hf_dir_config_mismatch);
    RUN(random_model_and_names);
    RUN(half_precision_checkpoint);
    RUN(safetensors_file_reads_config_beside);
    RUN(int8_checkpoint_threshold);
    RUN(generate_stops_at_context);
    free(good_bin);
    return test_report();
}
