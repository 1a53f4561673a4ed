/* test_peft_config.c — adapter_config.json settings (issue #15, defect 7: use_dora, alpha_pattern,
 * rank_pattern, fan_in_fan_out and a config r disagreeing with the weights were silently ignored,
 * every variant merging to the plain adapter's bytes):
 *  - alpha_pattern and use_rslora change the per-module scaling exactly as PEFT defines it
 *    (alpha / r, alpha / sqrt(r) with rslora; pattern keys match a dotted suffix of the module
 *    path, first match wins);
 *  - rank_pattern admits modules of another rank, which the plain config refuses;
 *  - a config r that disagrees with the weights, use_dora, fan_in_fan_out, bias, modules_to_save,
 *    regex pattern keys and unknown settings that are not off are refused (UNSUPPORTED / SHAPE);
 *  - the config PEFT 0.21 writes for a plain LoRA (every key, defaults) loads. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "test_scratch.h"

#include <msbnb/io.h>
#include <msbnb/model.h>
#include <msbnb/nn.h>
#include <msbnb/train.h>
#include <unistd.h>

#define MODEL MSBNB_SHARED_DIR "/models/stories260K/hf"

static char dir[64];
static msbnb_model *model;
static int n_loaded;

/* adapter_model.safetensors: q_proj of layers 0 and 1 with rank rq, v_proj of layer 0 rank 4 */
static void write_weights(int rq) {
    char path[128];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    msbnb_st_writer *w = NULL;
    CHECK(msbnb_st_writer_create(path, &w) == MSBNB_OK);
    msbnb_model_config c;
    msbnb_model_get_config(model, &c);
    int64_t d = c.dim;
    float *buf = calloc((size_t)(d * 64), sizeof(float));
    for (int64_t i = 0; i < d * 64; i++) buf[i] = 0.01f * (float)(i % 7);
    const char *mods[] = {"model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj",
                          "model.layers.0.self_attn.v_proj"};
    for (int k = 0; k < 3; k++) {
        int64_t r = k < 2 ? rq : 4, out = k < 2 ? d : c.n_kv_heads * (d / c.n_heads);
        int64_t sa[2] = {r, d}, sb[2] = {out, r};
        char name[160];
        snprintf(name, sizeof name, "base_model.model.%s.lora_A.weight", mods[k]);
        CHECK(msbnb_st_writer_add_f32(w, name, 2, sa, buf) == MSBNB_OK);
        snprintf(name, sizeof name, "base_model.model.%s.lora_B.weight", mods[k]);
        CHECK(msbnb_st_writer_add_f32(w, name, 2, sb, buf) == MSBNB_OK);
    }
    CHECK(msbnb_st_writer_finish(w) == MSBNB_OK);
    msbnb_st_writer_free(w);
    free(buf);
}

/* Load with this adapter_config.json (extra = more JSON members); status; scalings of layer 0 q,
 * layer 1 q and layer 0 v into s[3]. */
static msbnb_status load(const char *extra, float s[3]) {
    char path[128], json[2048];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    snprintf(json, sizeof json,
             "{\"peft_type\": \"LORA\", \"lora_alpha\": 8, \"target_modules\": [\"q_proj\", \"v_proj\"]%s%s}",
             extra[0] ? ", " : "", extra);
    if (!strstr(json, "\"r\"")) {
        size_t n = strlen(json);
        snprintf(json + n - 1, sizeof json - n + 1, ", \"r\": 4}");
    }
    FILE *f = fopen(path, "w");
    fputs(json, f);
    fclose(f);
    char name[32];
    snprintf(name, sizeof name, "v%d", n_loaded++);
    msbnb_status st = msbnb_model_lora_load(model, dir, name);
    const char *mods[] = {"model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj",
                          "model.layers.0.self_attn.v_proj"};
    for (int k = 0; k < 3; k++) {
        s[k] = -1;
        msbnb_linear *lin = NULL;
        msbnb_lora_view v;
        if (st == MSBNB_OK && msbnb_model_find_linear(model, mods[k], &lin) == MSBNB_OK &&
            msbnb_lora_get(lin, name, &v) == MSBNB_OK)
            s[k] = v.scaling;
    }
    return st;
}

TEST(scaling) {
    float s[3];
    write_weights(4);
    CHECK(load("", s) == MSBNB_OK && s[0] == 2.0f && s[1] == 2.0f && s[2] == 2.0f);
    CHECK(load("\"alpha_pattern\": {\"q_proj\": 16}", s) == MSBNB_OK && s[0] == 4.0f && s[1] == 4.0f && s[2] == 2.0f);
    /* a full path matches only that module; the first matching key wins */
    CHECK(load("\"alpha_pattern\": {\"layers.0.self_attn.q_proj\": 16, \"q_proj\": 4}", s) == MSBNB_OK &&
          s[0] == 4.0f && s[1] == 1.0f && s[2] == 2.0f);
    /* "elf_attn.q_proj" is not a dotted suffix: no match */
    CHECK(load("\"alpha_pattern\": {\"elf_attn.q_proj\": 16}", s) == MSBNB_OK && s[0] == 2.0f);
    CHECK(load("\"use_rslora\": true", s) == MSBNB_OK && s[0] == 4.0f && s[2] == 4.0f); /* 8 / sqrt(4) */
    /* the config's r must be the weights' */
    CHECK(load("\"r\": 8", s) == MSBNB_ERR_SHAPE);
    CHECK(load("\"rank_pattern\": {\"v_proj\": 2}", s) == MSBNB_ERR_SHAPE);
}

TEST(rank_pattern) {
    float s[3];
    write_weights(2); /* q_proj rank 2, v_proj rank 4 */
    CHECK(load("", s) == MSBNB_ERR_SHAPE);
    CHECK(load("\"rank_pattern\": {\"q_proj\": 2}", s) == MSBNB_OK && s[0] == 4.0f && s[1] == 4.0f && s[2] == 2.0f);
    CHECK(load("\"rank_pattern\": {\"layers.0.self_attn.q_proj\": 2}", s) == MSBNB_ERR_SHAPE); /* layer 1 left */
    CHECK(load("\"rank_pattern\": {\"q_proj\": 2}, \"alpha_pattern\": {\"q_proj\": 2}, \"use_rslora\": true", s) ==
              MSBNB_OK &&
          fabsf(s[0] - 2.0f / sqrtf(2.0f)) < 1e-6f && s[2] == 4.0f);
}

TEST(refused) {
    float s[3];
    write_weights(4);
    const char *bad[] = {"\"use_dora\": true",
                         "\"fan_in_fan_out\": true",
                         "\"bias\": \"all\"",
                         "\"lora_bias\": true",
                         "\"modules_to_save\": [\"lm_head\"]",
                         "\"layer_replication\": [[0, 1]]",
                         "\"trainable_token_indices\": [1, 2]",
                         "\"target_parameters\": [\"x\"]",
                         "\"use_qalora\": true",
                         "\"some_future_setting\": 3",
                         "\"rank_pattern\": {\"q_.*\": 4}",
                         "\"alpha_pattern\": {\"^q_proj$\": 4}",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        msbnb_status st = load(bad[i], s);
        CHECK_MSG_(st == MSBNB_ERR_UNSUPPORTED, "%s: status %d (%s)", bad[i], (int)st, msbnb_last_error());
    }
    /* settings at their off value, metadata and initialisation settings are fine */
    CHECK(load("\"use_dora\": false, \"some_future_setting\": null, \"modules_to_save\": null, "
               "\"init_lora_weights\": \"gaussian\", \"layers_to_transform\": [0, 1], \"loftq_config\": {}",
               s) == MSBNB_OK);
}

/* LoraConfig(r=4, lora_alpha=8, target_modules=[...]).to_dict() of PEFT 0.21.2, as saved. */
TEST(peft_0_21_defaults) {
    float s[3];
    write_weights(4);
    CHECK(load("\"alora_invocation_tokens\": null, \"alpha_pattern\": {}, \"arrow_config\": null, \"auto_mapping\": "
               "null, \"base_model_name_or_path\": null, \"bias\": \"none\", \"corda_config\": null, "
               "\"ensure_weight_tying\": false, \"eva_config\": null, \"exclude_modules\": null, \"fan_in_fan_out\": "
               "false, \"inference_mode\": true, \"init_lora_weights\": true, \"kasa_config\": null, "
               "\"layer_replication\": null, \"layers_pattern\": null, \"layers_to_transform\": null, "
               "\"loftq_config\": {}, \"lora_bias\": false, \"lora_dropout\": 0.0, \"lora_ga_config\": null, "
               "\"megatron_config\": null, \"megatron_core\": \"megatron.core\", \"modules_to_save\": null, "
               "\"monteclora_config\": null, \"peft_version\": \"0.21.2\", \"qalora_group_size\": 16, \"r\": 4, "
               "\"rank_pattern\": {}, \"revision\": null, \"target_parameters\": null, \"task_type\": \"CAUSAL_LM\", "
               "\"trainable_token_indices\": null, \"use_bdlora\": null, \"use_dora\": false, \"use_qalora\": false, "
               "\"use_rslora\": false, \"velora_config\": null",
               s) == MSBNB_OK &&
          s[0] == 2.0f);
}

int main(void) {
    if (test_scratch_make(dir, sizeof dir, "/tmp", "msbnb_peftcfg")) return 1;
    msbnb_model_params mp = msbnb_model_params_default();
    if (msbnb_model_load(MODEL, &mp, &model) != MSBNB_OK) {
        printf("cannot load %s: %s\n", MODEL, msbnb_last_error());
        return 1;
    }
    RUN(scaling);
    RUN(rank_pattern);
    RUN(refused);
    RUN(peft_0_21_defaults);
    msbnb_model_free(model);
    test_scratch_remove(dir);
    return test_report();
}
