/*
 * lora_model.c — LoRA adapters on a whole model: attach by target names, activate, save / load in
 * PEFT's format (io.h), and write a merged standalone checkpoint.
 *
 * PEFT names a module by its path in the HF model ("model.layers.3.mlp.down_proj") and stores
 * A and B under "base_model.model.<path>.lora_A.weight" / ".lora_B.weight" (io.h does the keys).
 */
#include <msbnb/io.h>
#include <msbnb/train.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/llama_internal.h"
#include "model/train_internal.h"

/* ================================================================ names */

void msbnb__train_module_path(int layer, msbnb_proj p, char *buf, size_t cap) {
    const char *group = p <= MSBNB_PROJ_O ? "self_attn" : "mlp";
    snprintf(buf, cap, "model.layers.%d.%s.%s", layer, group, msbnb_proj_name(p));
}

msbnb_status msbnb_lora_targets_parse(const char *csv, unsigned *mask) {
    RETURN_IF(!csv || !mask, MSBNB_ERR_INVALID_ARG, "NULL argument");
    unsigned m = 0;
    const char *s = csv;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        char name[32];
        RETURN_IF(len == 0 || len >= sizeof name, MSBNB_ERR_INVALID_ARG, "bad target list '%s'", csv);
        memcpy(name, s, len);
        name[len] = 0;
        if (!strcmp(name, "all")) {
            m |= MSBNB_LORA_TARGETS_ALL;
        } else {
            msbnb_proj p;
            RETURN_IF(msbnb_proj_parse(name, &p) != MSBNB_OK, MSBNB_ERR_INVALID_ARG,
                      "unknown target module '%s' (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj)",
                      name);
            m |= 1u << p;
        }
        s += len;
        if (*s == ',') s++;
    }
    RETURN_IF(m == 0, MSBNB_ERR_INVALID_ARG, "empty target list");
    *mask = m;
    return MSBNB_OK;
}

/* ================================================================ attach / activate */

msbnb_status msbnb_model_lora_attach(msbnb_model *m, const char *name, const msbnb_lora_params *p,
                                     unsigned targets) {
    RETURN_IF(!m || !name || !p, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(targets == 0 || (targets & ~MSBNB_LORA_TARGETS_ALL), MSBNB_ERR_INVALID_ARG,
              "target mask 0x%x out of range", targets);
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int q = 0; q < MSBNB_PROJ_COUNT; q++) {
            if (!(targets & (1u << q))) continue;
            msbnb_lora_params lp = *p;
            lp.seed = p->seed + 1000u * (uint64_t)l + (uint64_t)q;
            msbnb_linear *lin = m->layers[l].proj[q];
            msbnb_status st = msbnb_lora_add(lin, name, &lp);
            int added = st == MSBNB_OK;
            if (added) st = msbnb_lora_set_active(lin, name);
            if (st != MSBNB_OK) {
                /* undo what this call added, newest first (the failing module only if its add
                 * succeeded: a failed add may mean the name was already there before us) */
                for (int l2 = l; l2 >= 0; l2--)
                    for (int q2 = (l2 == l ? q : MSBNB_PROJ_COUNT - 1); q2 >= 0; q2--) {
                        if (!(targets & (1u << q2)) || (l2 == l && q2 == q && !added)) continue;
                        msbnb_lora_set_active(m->layers[l2].proj[q2], NULL);
                        msbnb_lora_delete(m->layers[l2].proj[q2], name);
                    }
                return st;
            }
        }
    return MSBNB_OK;
}

msbnb_status msbnb_model_lora_set_active(msbnb_model *m, const char *name) {
    RETURN_IF(!m, MSBNB_ERR_INVALID_ARG, "NULL model");
    int found = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int q = 0; q < MSBNB_PROJ_COUNT; q++) {
            msbnb_linear *lin = m->layers[l].proj[q];
            msbnb_lora_view v;
            if (name && msbnb_lora_get(lin, name, &v) == MSBNB_OK) {
                TRY(msbnb_lora_set_active(lin, name));
                found = 1;
            } else if (msbnb_lora_count(lin) > 0) {
                TRY(msbnb_lora_set_active(lin, NULL));
            }
        }
    RETURN_IF(name && !found, MSBNB_ERR_NOT_FOUND, "no module has an adapter named '%s'", name);
    return MSBNB_OK;
}

/* ================================================================ PEFT save / load */

msbnb_status msbnb_model_lora_save(msbnb_model *m, const char *name, const char *dir, const char *base_model) {
    RETURN_IF(!m || !name || !dir, MSBNB_ERR_INVALID_ARG, "NULL argument");
    int L = m->cfg.n_layers;
    msbnb_lora_pair *pairs = calloc((size_t)L * MSBNB_PROJ_COUNT, sizeof *pairs);
    char(*paths)[96] = calloc((size_t)L * MSBNB_PROJ_COUNT, sizeof *paths);
    if (!pairs || !paths) {
        free(pairs);
        free(paths);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "adapter table");
    }
    size_t n = 0;
    unsigned targets = 0;
    msbnb_lora_view first = {0};
    for (int l = 0; l < L; l++)
        for (int q = 0; q < MSBNB_PROJ_COUNT; q++) {
            msbnb_lora_view v;
            if (msbnb_lora_get(m->layers[l].proj[q], name, &v) != MSBNB_OK) continue;
            if (n == 0) first = v;
            targets |= 1u << q;
            msbnb__train_module_path(l, (msbnb_proj)q, paths[n], sizeof paths[n]);
            pairs[n] = (msbnb_lora_pair){paths[n], v.r, v.in_features, v.out_features, v.A, v.B};
            n++;
        }
    msbnb_status st = MSBNB_OK;
    if (n == 0) {
        st = MSBNB_FAIL(MSBNB_ERR_NOT_FOUND, "no module has an adapter named '%s'", name);
    } else {
        const char *names[MSBNB_PROJ_COUNT];
        size_t nt = 0;
        for (int q = 0; q < MSBNB_PROJ_COUNT; q++)
            if (targets & (1u << q)) names[nt++] = msbnb_proj_name((msbnb_proj)q);
        msbnb_peft_config cfg = msbnb_peft_config_default();
        cfg.r = first.r;
        cfg.lora_alpha = first.lora_alpha;
        cfg.lora_dropout = first.lora_dropout;
        cfg.use_rslora = first.use_rslora;
        cfg.base_model_name_or_path = base_model;
        cfg.target_modules = names;
        cfg.n_target_modules = nt;
        st = msbnb_peft_save(dir, &cfg, pairs, n);
    }
    free(pairs);
    free(paths);
    return st;
}

/* Module path "model.layers.L.<group>.<proj>" (an optional "base_model.model." prefix already
 * stripped by io) -> layer and projection. */
static int parse_module(const msbnb_model *m, const char *path, int *layer, msbnb_proj *p) {
    char group[16], proj[16];
    int l = -1, used = 0;
    if (sscanf(path, "model.layers.%d.%15[a-z_].%15[a-z_]%n", &l, group, proj, &used) != 3) return 0;
    if (path[used] != 0 || l < 0 || l >= m->cfg.n_layers) return 0;
    if (msbnb_proj_parse(proj, p) != MSBNB_OK) return 0;
    if (strcmp(group, *p <= MSBNB_PROJ_O ? "self_attn" : "mlp")) return 0;
    *layer = l;
    return 1;
}

msbnb_status msbnb_model_lora_load(msbnb_model *m, const char *dir, const char *name) {
    RETURN_IF(!m || !dir || !name, MSBNB_ERR_INVALID_ARG, "NULL argument");
    msbnb_peft_adapter *a = NULL;
    TRY(msbnb_peft_load(dir, &a));
    const msbnb_peft_config *cfg = msbnb_peft_adapter_config(a);
    msbnb_status st = MSBNB_OK;
    size_t count = msbnb_peft_adapter_count(a);
    /* validate every module first so a bad file leaves the model untouched */
    for (size_t i = 0; i < count && st == MSBNB_OK; i++) {
        msbnb_lora_pair pr;
        int l;
        msbnb_proj p;
        st = msbnb_peft_adapter_get(a, i, &pr);
        if (st != MSBNB_OK) break;
        const char *path = pr.module;
        if (!strncmp(path, "base_model.model.", 17)) path += 17;
        if (!parse_module(m, path, &l, &p)) {
            st = MSBNB_FAIL(MSBNB_ERR_NOT_FOUND, "%s: the model has no module '%s'", dir, pr.module);
        } else if (pr.in_features != msbnb_linear_in_features(m->layers[l].proj[p]) ||
                   pr.out_features != msbnb_linear_out_features(m->layers[l].proj[p])) {
            st = MSBNB_FAIL(MSBNB_ERR_SHAPE, "%s: module '%s' is [%lld, %lld] in the adapter, [%lld, %lld] in the model",
                            dir, pr.module, (long long)pr.out_features, (long long)pr.in_features,
                            (long long)msbnb_linear_out_features(m->layers[l].proj[p]),
                            (long long)msbnb_linear_in_features(m->layers[l].proj[p]));
        }
    }
    size_t done = 0; /* modules that received the adapter, for the rollback */
    for (size_t i = 0; i < count && st == MSBNB_OK; i++) {
        msbnb_lora_pair pr;
        int l;
        msbnb_proj p;
        msbnb_peft_adapter_get(a, i, &pr);
        const char *path = pr.module;
        if (!strncmp(path, "base_model.model.", 17)) path += 17;
        parse_module(m, path, &l, &p);
        msbnb_linear *lin = m->layers[l].proj[p];
        msbnb_lora_params lp = msbnb_lora_params_default();
        lp.r = (int)pr.r;
        lp.lora_alpha = (float)msbnb_peft_adapter_alpha(a, i); /* alpha_pattern, else lora_alpha */
        lp.lora_dropout = (float)cfg->lora_dropout;
        lp.use_rslora = cfg->use_rslora;
        st = msbnb_lora_add(lin, name, &lp);
        if (st != MSBNB_OK) break;
        done = i + 1;
        st = msbnb_lora_set_active(lin, name);
        msbnb_lora_view v;
        if (st == MSBNB_OK) st = msbnb_lora_get(lin, name, &v);
        if (st == MSBNB_OK) {
            memcpy(v.A, pr.A, sizeof(float) * (size_t)(pr.r * pr.in_features));
            memcpy(v.B, pr.B, sizeof(float) * (size_t)(pr.r * pr.out_features));
        }
    }
    /* on failure take the adapter off every module this call gave it to */
    for (size_t i = 0; st != MSBNB_OK && i < done; i++) {
        msbnb_lora_pair pr;
        int l;
        msbnb_proj p;
        msbnb_peft_adapter_get(a, i, &pr);
        const char *path = pr.module;
        if (!strncmp(path, "base_model.model.", 17)) path += 17;
        parse_module(m, path, &l, &p);
        msbnb_lora_set_active(m->layers[l].proj[p], NULL);
        msbnb_lora_delete(m->layers[l].proj[p], name);
    }
    msbnb_peft_adapter_free(a);
    return st;
}

/* ================================================================ merged checkpoint */

static const char *dtype_name(msbnb_dtype d) {
    return d == MSBNB_DTYPE_BF16 ? "bfloat16" : d == MSBNB_DTYPE_F16 ? "float16" : "float32";
}

/* config.json of a model without a source config (llama2.c files, random models), in the form
 * transformers >= 5 writes and msbnb__llama_config_from_json reads back. */
static cJSON *generated_config(const msbnb_model *m) {
    static const char *const arch[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"};
    static const char *const rope[] = {"default", "linear", "dynamic", "yarn", "llama3"};
    const msbnb_model_config *c = &m->cfg;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON *a = cJSON_AddArrayToObject(o, "architectures");
    cJSON_AddItemToArray(a, cJSON_CreateString(arch[c->family]));
    cJSON_AddStringToObject(o, "model_type", msbnb_family_name(c->family));
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(o, "hidden_size", c->dim);
    cJSON_AddNumberToObject(o, "intermediate_size", c->hidden_dim);
    cJSON_AddNumberToObject(o, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(o, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(o, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->seq_len);
    cJSON_AddNumberToObject(o, "rms_norm_eps", (double)c->norm_eps);
    cJSON *r = cJSON_AddObjectToObject(o, "rope_parameters");
    cJSON_AddStringToObject(r, "rope_type", rope[c->rope.type]);
    cJSON_AddNumberToObject(r, "rope_theta", (double)c->rope_theta);
    if (c->rope.type != MSBNB_ROPE_DEFAULT) cJSON_AddNumberToObject(r, "factor", (double)c->rope.factor);
    if (c->rope.type == MSBNB_ROPE_LLAMA3 || c->rope.type == MSBNB_ROPE_YARN)
        cJSON_AddNumberToObject(r, "original_max_position_embeddings", c->rope.original_max_pos);
    if (c->rope.type == MSBNB_ROPE_LLAMA3) {
        cJSON_AddNumberToObject(r, "low_freq_factor", (double)c->rope.low_freq_factor);
        cJSON_AddNumberToObject(r, "high_freq_factor", (double)c->rope.high_freq_factor);
    }
    if (c->rope.type == MSBNB_ROPE_YARN) {
        cJSON_AddNumberToObject(r, "beta_fast", (double)c->rope.beta_fast);
        cJSON_AddNumberToObject(r, "beta_slow", (double)c->rope.beta_slow);
        cJSON_AddNumberToObject(r, "attention_factor", (double)c->rope.attention_factor);
        cJSON_AddBoolToObject(r, "truncate", c->rope.truncate);
    }
    cJSON_AddStringToObject(o, "hidden_act", "silu");
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tied);
    if (c->family == MSBNB_FAMILY_LLAMA) {
        cJSON_AddBoolToObject(o, "attention_bias", (c->bias & 0x0fu) != 0);
        cJSON_AddBoolToObject(o, "mlp_bias", (c->bias & 0x70u) != 0);
    } else if (c->family == MSBNB_FAMILY_QWEN3) {
        cJSON_AddBoolToObject(o, "attention_bias", (c->bias & 0x0fu) != 0);
    }
    if (c->family == MSBNB_FAMILY_MISTRAL) {
        if (c->sliding_window > 0) cJSON_AddNumberToObject(o, "sliding_window", c->sliding_window);
        else cJSON_AddNullToObject(o, "sliding_window");
    }
    if (c->family == MSBNB_FAMILY_QWEN2 || c->family == MSBNB_FAMILY_QWEN3) {
        cJSON_AddBoolToObject(o, "use_sliding_window", c->sliding_window > 0);
        if (c->sliding_window > 0) {
            cJSON_AddNumberToObject(o, "sliding_window", c->sliding_window);
            cJSON_AddNumberToObject(o, "max_window_layers", c->window_from_layer);
        }
    }
    cJSON_AddNumberToObject(o, "bos_token_id", 1);
    cJSON_AddNumberToObject(o, "eos_token_id", 2);
    return o;
}

/* cJSON prints 8.0 as 8; transformers type-checks some fields as floats (a BitsAndBytesConfig
 * threshold of 6 is refused, a RoPE factor of 8 warned about). Those keep their ".0". */
static void keep_floats(cJSON *o) {
    static const char *const keys[] = {"factor", "rope_theta", "rms_norm_eps", "low_freq_factor", "high_freq_factor",
                                       "attention_factor", "beta_fast", "beta_slow", "mscale", "mscale_all_dim",
                                       "initializer_range", "attention_dropout", "partial_rotary_factor"};
    for (cJSON *it = o ? o->child : NULL, *next = NULL; it; it = next) {
        next = it->next;
        if (cJSON_IsObject(it)) {
            keep_floats(it);
            continue;
        }
        if (!cJSON_IsNumber(it) || !it->string || it->valuedouble != (double)(int64_t)it->valuedouble ||
            fabs(it->valuedouble) > 1e15)
            continue;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            if (!strcmp(it->string, keys[k])) {
                char text[40];
                snprintf(text, sizeof text, "%.1f", it->valuedouble);
                cJSON *raw = cJSON_CreateRaw(text);
                if (raw) cJSON_ReplaceItemInObjectCaseSensitive(o, keys[k], raw); /* frees it */
                break;
            }
    }
}

/* config.json: the source's (every field kept) or a generated one, with the dtype and the
 * quantization_config of what was written; through a temporary file renamed into place. */
static msbnb_status write_config(const msbnb_model *m, const char *path, const char *quant_json, msbnb_dtype dtype) {
    cJSON *o = m->src_config ? cJSON_Parse(m->src_config) : generated_config(m);
    RETURN_IF(!o || !cJSON_IsObject(o), MSBNB_ERR_OUT_OF_MEMORY, "config");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "quantization_config");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "torch_dtype");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "dtype");
    cJSON_AddStringToObject(o, "dtype", dtype_name(dtype));
    keep_floats(o);
    /* verbatim: a re-parse would print llm_int8_threshold 6.0 as 6, which transformers refuses */
    if (quant_json) cJSON_AddRawToObject(o, "quantization_config", quant_json);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    RETURN_IF(!text, MSBNB_ERR_OUT_OF_MEMORY, "config text");
    size_t n = strlen(path) + 8;
    char *tmp = malloc(n);
    int ok = tmp != NULL;
    if (ok) snprintf(tmp, n, "%s.tmp", path);
    FILE *f = ok ? fopen(tmp, "wb") : NULL;
    ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0) ok = 0;
    if (ok && rename(tmp, path) != 0) ok = 0;
    if (!ok && tmp) remove(tmp);
    free(tmp);
    free(text);
    RETURN_IF(!ok, MSBNB_ERR_IO, "cannot write %s", path);
    return MSBNB_OK;
}

/* A plain tensor x (fp32 values, shape [shape[0]] or [shape[0], shape[1]]) stored as dtype. */
static msbnb_status add_plain(msbnb_st_writer *w, const char *name, int ndim, const int64_t *shape, const float *x,
                              msbnb_dtype dtype) {
    if (dtype == MSBNB_DTYPE_F32) return msbnb_st_writer_add_f32(w, name, ndim, shape, x);
    size_t n = (size_t)shape[0] * (size_t)(ndim > 1 ? shape[1] : 1);
    uint16_t *h = malloc(n * sizeof(uint16_t));
    RETURN_IF(!h, MSBNB_ERR_OUT_OF_MEMORY, "%s", name);
    if (dtype == MSBNB_DTYPE_F16) msbnb_f32_to_f16_array(x, h, n);
    else
        for (size_t i = 0; i < n; i++) h[i] = msbnb_f32_to_bf16(x[i]);
    msbnb_status st = msbnb_st_writer_add(w, name, dtype == MSBNB_DTYPE_F16 ? MSBNB_ST_F16 : MSBNB_ST_BF16, ndim,
                                          shape, h, n * sizeof(uint16_t));
    free(h);
    return st;
}

static msbnb_status add_vec(msbnb_st_writer *w, const char *name, const float *x, int64_t n, msbnb_dtype dtype) {
    int64_t shape[1] = {n};
    return add_plain(w, name, 1, shape, x, dtype);
}

msbnb_status msbnb_model_save_merged(msbnb_model *m, const char *out_dir, int requantize) {
    return msbnb_model_save_merged_ex(m, out_dir, requantize, -1);
}

msbnb_status msbnb_model_save_merged_ex(msbnb_model *m, const char *out_dir, int requantize, int dtype_arg) {
    RETURN_IF(!m || !out_dir, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(dtype_arg < -1 || dtype_arg > MSBNB_DTYPE_BF16, MSBNB_ERR_INVALID_ARG, "dtype %d", dtype_arg);
    const msbnb_dtype dtype = dtype_arg < 0 ? m->src_dtype : (msbnb_dtype)dtype_arg;
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST)
        return MSBNB_FAIL(MSBNB_ERR_IO, "cannot create directory %s", out_dir);
    const msbnb_model_config *c = &m->cfg;
    size_t cap = strlen(out_dir) + 64;
    char *path = malloc(cap);
    RETURN_IF(!path, MSBNB_ERR_OUT_OF_MEMORY, "path");
    snprintf(path, cap, "%s/model.safetensors", out_dir);
    msbnb_st_writer *w = NULL;
    msbnb_status st = msbnb_st_writer_create(path, &w);
    /* w, delta: [out, in] of the largest projection */
    int64_t maxn = 0;
    for (int q = 0; q < MSBNB_PROJ_COUNT; q++) {
        int64_t o, i;
        msbnb__llama_proj_shape(c, (msbnb_proj)q, &o, &i);
        if (o * i > maxn) maxn = o * i;
    }
    float *wt = malloc(sizeof(float) * (size_t)maxn), *delta = malloc(sizeof(float) * (size_t)maxn);
    if (st == MSBNB_OK && (!wt || !delta)) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "merge buffers");
    int64_t emb_shape[2] = {c->vocab_size, c->dim};
    float *table = st == MSBNB_OK ? malloc(sizeof(float) * (size_t)c->vocab_size * (size_t)c->dim) : NULL;
    if (st == MSBNB_OK && !table) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "embedding");
    if (st == MSBNB_OK) st = msbnb__llama_embedding_f32(m, table);
    if (st == MSBNB_OK) st = add_plain(w, "model.embed_tokens.weight", 2, emb_shape, table, dtype);
    if (st == MSBNB_OK) st = add_vec(w, "model.norm.weight", m->final_norm, c->dim, dtype);
    if (st == MSBNB_OK && !c->tied) {
        st = msbnb__llama_head_f32(m, table);
        if (st == MSBNB_OK) st = add_plain(w, "lm_head.weight", 2, emb_shape, table, dtype);
    }
    free(table);
    char name[128], mod[96];
    msbnb_quant_config qcfg_seen = {0};
    int any_quant = 0;
    for (int l = 0; l < c->n_layers && st == MSBNB_OK; l++) {
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
        st = add_vec(w, name, m->layers[l].attn_norm, c->dim, dtype);
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        if (st == MSBNB_OK) st = add_vec(w, name, m->layers[l].ffn_norm, c->dim, dtype);
        if (st == MSBNB_OK && c->qk_norm) {
            snprintf(name, sizeof name, "model.layers.%d.self_attn.q_norm.weight", l);
            st = add_vec(w, name, m->layers[l].q_norm, c->head_dim, dtype);
            snprintf(name, sizeof name, "model.layers.%d.self_attn.k_norm.weight", l);
            if (st == MSBNB_OK) st = add_vec(w, name, m->layers[l].k_norm, c->head_dim, dtype);
        }
        for (int q = 0; q < MSBNB_PROJ_COUNT && st == MSBNB_OK; q++) {
            msbnb_linear *lin = m->layers[l].proj[q];
            int64_t o = msbnb_linear_out_features(lin), in = msbnb_linear_in_features(lin);
            st = msbnb_linear_get_weight_f32(lin, wt);
            if (st == MSBNB_OK && msbnb_lora_active(lin)) {
                msbnb_lora_view v;
                st = msbnb_lora_get(lin, NULL, &v);
                if (st == MSBNB_OK && !v.merged) {
                    st = msbnb_lora_get_merged_weight(lin, NULL, delta);
                    for (int64_t i = 0; st == MSBNB_OK && i < o * in; i++) wt[i] += delta[i];
                }
            }
            msbnb__train_module_path(l, (msbnb_proj)q, mod, sizeof mod);
            const float *bias = msbnb_linear_bias(lin); /* frozen in training: written as loaded */
            if (st == MSBNB_OK && bias) {
                snprintf(name, sizeof name, "%s.bias", mod);
                st = add_vec(w, name, bias, o, dtype);
            }
            snprintf(name, sizeof name, "%s.weight", mod);
            const msbnb_qtensor *base = msbnb_linear_qtensor(lin);
            if (st == MSBNB_OK && requantize && base) {
                msbnb_qtensor_view bv;
                msbnb_qtensor_get_view(base, &bv);
                msbnb_quant_config qc = msbnb_quant_config_default(bv.type);
                qc.blocksize = bv.blocksize ? bv.blocksize : qc.blocksize;
                qc.group_size = bv.group_size ? bv.group_size : qc.group_size;
                qc.double_quant = bv.double_quant;
                qc.asymmetric = bv.asymmetric;
                qc.per_row = bv.per_row;
                qc.threshold = bv.threshold;
                if (bv.double_quant && bv.nested_blocksize) qc.nested_blocksize = bv.nested_blocksize;
                msbnb_qtensor *nq = NULL;
                st = msbnb_quantize(wt, o, in, &qc, &nq);
                if (st == MSBNB_OK) st = msbnb_bnb_write(w, name, nq, dtype);
                msbnb_qtensor_free(nq);
                if (!any_quant) qcfg_seen = qc;
                any_quant = 1;
            } else if (st == MSBNB_OK) {
                int64_t shape[2] = {o, in};
                st = add_plain(w, name, 2, shape, wt, dtype);
            }
        }
    }
    if (st == MSBNB_OK) st = msbnb_st_writer_finish(w);
    msbnb_st_writer_free(w);
    free(wt);
    free(delta);
    char *qjson = NULL;
    if (st == MSBNB_OK && any_quant) {
        const char *skip[] = {"lm_head"};
        st = msbnb_bnb_quantization_config_json(&qcfg_seen, skip, 1, &qjson);
    }
    snprintf(path, cap, "%s/config.json", out_dir);
    if (st == MSBNB_OK) st = write_config(m, path, qjson, dtype);
    free(qjson);
    free(path);
    return st;
}
