/*
 * peft.c — LoRA adapters in PEFT's on-disk format (facts from huggingface/peft: LoraConfig
 * fields saved by PeftConfig.save_pretrained as adapter_config.json; weights saved by
 * get_peft_model_state_dict as adapter_model.safetensors with keys
 *   base_model.model.<module path>.lora_A.weight   [r, in_features]
 *   base_model.model.<module path>.lora_B.weight   [out_features, r]
 * (the adapter name, e.g. ".default", is removed on save; we accept it on load).
 * Complexity: linear in adapter_config.json plus O(n log n) in the n weights (lora_A/lora_B are
 * paired in the file's sorted name order), plus O(modules x pattern keys) for rank_pattern /
 * alpha_pattern matching.
 */
#define _POSIX_C_SOURCE 200809L
#define IO_API "msbnb_peft"
#include "io/io_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PEFT_PREFIX "base_model.model."

msbnb_peft_config msbnb_peft_config_default(void) {
    msbnb_peft_config c;
    memset(&c, 0, sizeof c);
    c.r = 8;
    c.lora_alpha = 8;
    c.lora_dropout = 0;
    c.bias = "none";
    c.task_type = "CAUSAL_LM";
    return c;
}

typedef struct peft_pair {
    char *module;
    int64_t r, in, out; /* from lora_A [r, in] and lora_B [out, r_b] */
    int64_t r_b;
    float *A, *B;       /* [r, in], [out, r] */
    double alpha;       /* lora_alpha, or its alpha_pattern entry */
} peft_pair;

/* rank_pattern / alpha_pattern: {module pattern: value}, in the file's order (the first match
 * wins, as in PEFT's get_pattern_key). */
typedef struct peft_pattern {
    char *key;
    double value;
} peft_pattern;

struct msbnb_peft_adapter {
    msbnb_peft_config cfg; /* strings point into the fields below */
    char *bias, *task_type, *base;
    char **targets;
    size_t n_targets;
    peft_pattern *rank_pat, *alpha_pat;
    size_t n_rank_pat, n_alpha_pat;
    peft_pair *pairs;
    size_t n_pairs;
};

void msbnb_peft_adapter_free(msbnb_peft_adapter *a) {
    if (!a) return;
    free(a->bias);
    free(a->task_type);
    free(a->base);
    for (size_t i = 0; i < a->n_targets; i++) free(a->targets[i]);
    free(a->targets);
    for (size_t i = 0; i < a->n_rank_pat; i++) free(a->rank_pat[i].key);
    for (size_t i = 0; i < a->n_alpha_pat; i++) free(a->alpha_pat[i].key);
    free(a->rank_pat);
    free(a->alpha_pat);
    for (size_t i = 0; i < a->n_pairs; i++) {
        free(a->pairs[i].module);
        free(a->pairs[i].A);
        free(a->pairs[i].B);
    }
    free(a->pairs);
    free(a);
}

const msbnb_peft_config *msbnb_peft_adapter_config(const msbnb_peft_adapter *a) { return a ? &a->cfg : NULL; }
size_t msbnb_peft_adapter_count(const msbnb_peft_adapter *a) { return a ? a->n_pairs : 0; }

msbnb_status msbnb_peft_adapter_get(const msbnb_peft_adapter *a, size_t i, msbnb_lora_pair *out) {
    RETURN_IF(!a || !out || i >= a->n_pairs, MSBNB_ERR_INVALID_ARG, "adapter pair index out of range");
    const peft_pair *p = &a->pairs[i];
    *out = (msbnb_lora_pair){p->module, p->r, p->in, p->out, p->A, p->B};
    return MSBNB_OK;
}

double msbnb_peft_adapter_alpha(const msbnb_peft_adapter *a, size_t i) {
    if (!a || i >= a->n_pairs) return 0;
    return a->pairs[i].alpha;
}

/* ================================================================ adapter_config.json */

/* Optional string field: absent or null -> NULL; another type -> error. */
static bool opt_string(const cJSON *o, const char *key, char **out) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    if (!x || cJSON_IsNull(x)) return true;
    if (!cJSON_IsString(x)) return false;
    *out = msbnb__strdup(x->valuestring);
    return *out != NULL;
}

static bool opt_bool(const cJSON *o, const char *key, int *out) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!x || cJSON_IsNull(x)) return true;
    if (!cJSON_IsBool(x)) return false;
    *out = cJSON_IsTrue(x);
    return true;
}

static bool opt_number(const cJSON *o, const char *key, double lo, double hi, double *out) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!x || cJSON_IsNull(x)) return true;
    if (!cJSON_IsNumber(x) || !(x->valuedouble >= lo && x->valuedouble <= hi)) return false;
    *out = x->valuedouble;
    return true;
}

/* ---------------------------------------------------------------- settings msbnb does not implement */

/* Keys read above, and keys that never change what a saved adapter computes (metadata, how
 * the weights were initialised or chosen for training: the saved tensors say which modules have
 * an adapter). */
static const char *const known_keys[] = {
    "peft_type", "r", "lora_alpha", "lora_dropout", "use_rslora", "fan_in_fan_out", "inference_mode", "bias",
    "task_type", "base_model_name_or_path", "target_modules", "rank_pattern", "alpha_pattern",
    /* harmless for inference */
    "peft_version", "revision", "auto_mapping", "init_lora_weights", "exclude_modules", "layers_to_transform",
    "layers_pattern", "megatron_core", "qalora_group_size", "loftq_config", "eva_config", "corda_config",
    "lora_ga_config", NULL};

/* A value that leaves a setting off: null, false, 0, "", {} or []. */
static bool is_off(const cJSON *x) {
    return cJSON_IsNull(x) || cJSON_IsFalse(x) || (cJSON_IsNumber(x) && x->valuedouble == 0) ||
           (cJSON_IsString(x) && !x->valuestring[0]) || ((cJSON_IsObject(x) || cJSON_IsArray(x)) && !x->child);
}

/* Every other key (use_dora, lora_bias, modules_to_save, layer_replication, target_parameters,
 * trainable_token_indices, use_qalora, megatron_config, ... and whatever later PEFT versions add)
 * must be off: a setting msbnb does not implement is refused, never ignored. fan_in_fan_out is
 * checked here too: these layers are nn.Linear, PEFT's default false. */
static msbnb_status check_unsupported(const cJSON *o, const char *name) {
    const cJSON *fif = cJSON_GetObjectItemCaseSensitive(o, "fan_in_fan_out");
    if (cJSON_IsTrue(fif))
        return MSBNB_FAIL(MSBNB_ERR_UNSUPPORTED, "%s: \"fan_in_fan_out\": true (Conv1D-style weights) is not supported",
                          name);
    for (const cJSON *x = o->child; x; x = x->next) {
        bool known = false;
        for (size_t i = 0; known_keys[i] && !known; i++) known = !strcmp(x->string, known_keys[i]);
        if (!known && !is_off(x))
            return MSBNB_FAIL(MSBNB_ERR_UNSUPPORTED, "%s: \"%.60s\" is set, and msbnb does not implement it%s", name,
                              x->string, !strcmp(x->string, "use_dora") ? " (DoRA)" : "");
    }
    return MSBNB_OK;
}

/* A rank_pattern / alpha_pattern key: PEFT matches it as the regex "(.*\.)?(key)$" against the module
 * path. Keys made of [A-Za-z0-9_.] (module names, where '.' also matches any one character) are
 * matched exactly so; any other regex syntax is refused when parsed. */
static bool pattern_key_ok(const char *k) {
    if (!k[0]) return false;
    for (const char *c = k; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
              *c == '.'))
            return false;
    return true;
}

static bool pattern_matches(const char *key, const char *module) {
    size_t kl = strlen(key), ml = strlen(module);
    if (kl > ml) return false;
    size_t s = ml - kl; /* the key must cover module[s..] exactly, s at 0 or after a '.' */
    if (s > 0 && module[s - 1] != '.') return false;
    for (size_t i = 0; i < kl; i++)
        if (key[i] != '.' && key[i] != module[s + i]) return false;
    return true;
}

/* First pattern matching module, else NULL. O(patterns x key length). */
static const peft_pattern *pattern_find(const peft_pattern *p, size_t n, const char *module) {
    for (size_t i = 0; i < n; i++)
        if (pattern_matches(p[i].key, module)) return &p[i];
    return NULL;
}

static msbnb_status parse_pattern(const cJSON *o, const char *key, const char *name, double lo, double hi,
                                  peft_pattern **out, size_t *n_out) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    *n_out = 0;
    if (!x || cJSON_IsNull(x)) return MSBNB_OK;
    if (!cJSON_IsObject(x)) return MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: \"%s\" must be an object", name, key);
    size_t n = 0;
    for (const cJSON *e = x->child; e; e = e->next) n++;
    *out = calloc(n ? n : 1, sizeof(peft_pattern));
    RETURN_IF(!*out, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    for (const cJSON *e = x->child; e; e = e->next) {
        if (!cJSON_IsNumber(e) || !(e->valuedouble >= lo && e->valuedouble <= hi) ||
            (lo >= 1 && e->valuedouble != (double)(int64_t)e->valuedouble))
            return MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: %s entry '%.80s' must be a number in [%g, %g]%s", name, key,
                              e->string, lo, hi, lo >= 1 ? " (an integer)" : "");
        if (!pattern_key_ok(e->string))
            return MSBNB_FAIL(MSBNB_ERR_UNSUPPORTED,
                              "%s: %s key '%.80s' is a regular expression; only module names are supported", name, key,
                              e->string);
        peft_pattern *p = &(*out)[(*n_out)++];
        p->value = e->valuedouble;
        if (!(p->key = msbnb__strdup(e->string))) return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return MSBNB_OK;
}

static msbnb_status parse_config_json(const cJSON *o, const char *name, msbnb_peft_adapter *a) {
#define BADCFG(...) MSBNB_FAIL(MSBNB_ERR_FORMAT, __VA_ARGS__)
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(o, "peft_type");
    if (!cJSON_IsString(pt) || strcmp(pt->valuestring, "LORA"))
        return BADCFG("%s: peft_type must be \"LORA\"", name);
    msbnb_peft_config c = msbnb_peft_config_default();
    int64_t r;
    if (!msbnb__json_int(cJSON_GetObjectItemCaseSensitive(o, "r"), 1, 1 << 20, &r))
        return BADCFG("%s: \"r\" must be an integer in [1, 2^20]", name);
    c.r = (int)r;
    if (!opt_number(o, "lora_alpha", -1e9, 1e9, &c.lora_alpha)) return BADCFG("%s: bad \"lora_alpha\"", name);
    if (!opt_number(o, "lora_dropout", 0, 1, &c.lora_dropout) || c.lora_dropout >= 1)
        return BADCFG("%s: \"lora_dropout\" must be in [0, 1)", name);
    if (!opt_bool(o, "use_rslora", &c.use_rslora) || !opt_bool(o, "fan_in_fan_out", &c.fan_in_fan_out) ||
        !opt_bool(o, "inference_mode", &c.inference_mode))
        return BADCFG("%s: use_rslora / fan_in_fan_out / inference_mode must be true or false", name);
    if (!opt_string(o, "bias", &a->bias)) return BADCFG("%s: \"bias\" must be a string", name);
    if (a->bias && strcmp(a->bias, "none") && strcmp(a->bias, "all") && strcmp(a->bias, "lora_only"))
        return BADCFG("%s: \"bias\" must be none, all or lora_only", name);
    if (!opt_string(o, "task_type", &a->task_type) || !opt_string(o, "base_model_name_or_path", &a->base))
        return BADCFG("%s: task_type / base_model_name_or_path must be strings", name);
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(o, "target_modules");
    if (cJSON_IsString(tm)) { /* PEFT also accepts one regex string */
        a->targets = malloc(sizeof(char *));
        if (!a->targets || !(a->targets[0] = msbnb__strdup(tm->valuestring)))
            return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
        a->n_targets = 1;
    } else if (cJSON_IsArray(tm)) {
        size_t n = (size_t)cJSON_GetArraySize(tm);
        a->targets = calloc(n ? n : 1, sizeof(char *));
        RETURN_IF(!a->targets, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
        for (const cJSON *x = tm->child; x; x = x->next) {
            if (!cJSON_IsString(x)) return BADCFG("%s: target_modules must hold strings", name);
            if (!(a->targets[a->n_targets] = msbnb__strdup(x->valuestring)))
                return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
            a->n_targets++;
        }
    } else if (tm && !cJSON_IsNull(tm)) {
        return BADCFG("%s: target_modules must be a list of strings, a string or null", name);
    }
#undef BADCFG
    TRY(parse_pattern(o, "rank_pattern", name, 1, 1 << 20, &a->rank_pat, &a->n_rank_pat));
    TRY(parse_pattern(o, "alpha_pattern", name, -1e9, 1e9, &a->alpha_pat, &a->n_alpha_pat));
    TRY(check_unsupported(o, name));
    if (a->bias && strcmp(a->bias, "none"))
        return MSBNB_FAIL(MSBNB_ERR_UNSUPPORTED, "%s: \"bias\": \"%s\" (trained bias vectors) is not supported", name,
                          a->bias);
    if (!a->bias && !(a->bias = msbnb__strdup("none"))) return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    c.bias = a->bias;
    c.task_type = a->task_type;
    c.base_model_name_or_path = a->base;
    c.target_modules = (const char *const *)a->targets;
    c.n_target_modules = a->n_targets;
    a->cfg = c;
    return MSBNB_OK;
}

msbnb_status msbnb_peft_config_parse(const char *text, size_t len, const char *name, msbnb_peft_adapter **out) {
    RETURN_IF(!out || (!text && len), MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    if (!name) name = "adapter_config.json";
    RETURN_IF(len > ((size_t)16 << 20), MSBNB_ERR_FORMAT, "%s: larger than 16 MB", name);
    cJSON *root;
    size_t off;
    const char *reason;
    msbnb_status st = msbnb__json_parse(text ? text : "", len, 64, false, &root, &off, &reason);
    if (st != MSBNB_OK) return MSBNB_FAIL(st, "%s: %s (byte %zu)", name, reason, off);
    msbnb_peft_adapter *a = calloc(1, sizeof *a);
    if (!a) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    else if (!cJSON_IsObject(root)) st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: top level is not a JSON object (byte 0)", name);
    else st = parse_config_json(root, name, a);
    cJSON_Delete(root);
    if (st != MSBNB_OK) {
        msbnb_peft_adapter_free(a);
        return st;
    }
    *out = a;
    return MSBNB_OK;
}

/* ================================================================ adapter_model.safetensors */

/* "base_model.model.<module>.lora_A[.<adapter>].weight" -> module (malloc'ed) and 'A'/'B'. */
static bool split_key(const char *key, char **module, char *which) {
    const char *k = strncmp(key, PEFT_PREFIX, strlen(PEFT_PREFIX)) ? key : key + strlen(PEFT_PREFIX);
    const char *a = strstr(k, ".lora_A."), *b = strstr(k, ".lora_B.");
    const char *m = a ? a : b;
    if (!m || (a && b)) return false;
    const char *rest = m + 8; /* after ".lora_X." */
    const char *dot = strchr(rest, '.');
    /* "weight", or "<adapter>.weight" where <adapter> holds no dot */
    if (strcmp(rest, "weight") && !(dot && !strcmp(dot, ".weight") && dot > rest)) return false;
    if (m == k) return false;
    *which = a ? 'A' : 'B';
    *module = malloc((size_t)(m - k) + 1);
    if (!*module) return false;
    memcpy(*module, k, (size_t)(m - k));
    (*module)[m - k] = '\0';
    return true;
}

static int cmp_pair(const void *x, const void *y) {
    return strcmp(((const peft_pair *)x)->module, ((const peft_pair *)y)->module);
}

static msbnb_status load_weights(msbnb_peft_adapter *a, const char *path) {
    msbnb_safetensors *f = NULL;
    TRY(msbnb_safetensors_open(path, &f));
    size_t n = msbnb_safetensors_count(f);
    msbnb_status st = MSBNB_OK;
    a->pairs = calloc(n ? n : 1, sizeof(peft_pair));
    if (!a->pairs) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < n && st == MSBNB_OK; i++) {
        msbnb_tensor_info t;
        char *module = NULL;
        char which = 0;
        st = msbnb_safetensors_get(f, i, &t);
        if (st != MSBNB_OK) break;
        if (!split_key(t.name, &module, &which)) {
            st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: tensor '%.120s': not a LoRA lora_A/lora_B weight (byte %llu)", path,
                            t.name, (unsigned long long)t.file_offset);
            break;
        }
        if (t.ndim != 2 || t.shape[0] < 1 || t.shape[1] < 1 ||
            (t.dtype != MSBNB_ST_F32 && t.dtype != MSBNB_ST_F16 && t.dtype != MSBNB_ST_BF16)) {
            free(module);
            st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: tensor '%.120s': must be a non-empty F32/F16/BF16 matrix (byte %llu)",
                            path, t.name, (unsigned long long)t.file_offset);
            break;
        }
        /* names are sorted, so a module's lora_A and lora_B are neighbours: only the last pair can
         * be this module's (a module split elsewhere is caught as a duplicate after the sort) */
        peft_pair *p = a->n_pairs && !strcmp(a->pairs[a->n_pairs - 1].module, module) ? &a->pairs[a->n_pairs - 1]
                                                                                      : NULL;
        if (!p) {
            p = &a->pairs[a->n_pairs++];
            p->module = module;
        } else {
            free(module);
        }
        float **dst = which == 'A' ? &p->A : &p->B;
        if (*dst) {
            st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: tensor '%.120s': second lora_%c for module '%.120s' (byte %llu)", path,
                            t.name, which, p->module, (unsigned long long)t.file_offset);
            break;
        }
        *dst = malloc((size_t)t.numel * sizeof(float));
        if (!*dst) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
        else st = msbnb_tensor_to_f32(&t, *dst);
        if (which == 'A') {
            p->r = t.shape[0];
            p->in = t.shape[1];
        } else {
            p->out = t.shape[0];
            p->r_b = t.shape[1];
        }
    }
    for (size_t k = 0; k < a->n_pairs && st == MSBNB_OK; k++) {
        const peft_pair *p = &a->pairs[k];
        if (!p->A || !p->B)
            st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: module '%.120s' has lora_%c but no lora_%c", path, p->module,
                            p->A ? 'A' : 'B', p->A ? 'B' : 'A');
        else if (p->r != p->r_b)
            st = MSBNB_FAIL(MSBNB_ERR_SHAPE, "%s: module '%.120s': lora_A has rank %lld, lora_B %lld", path, p->module,
                            (long long)p->r, (long long)p->r_b);
    }
    if (st == MSBNB_OK && a->n_pairs > 1) qsort(a->pairs, a->n_pairs, sizeof(peft_pair), cmp_pair);
    for (size_t k = 1; k < a->n_pairs && st == MSBNB_OK; k++)
        if (!strcmp(a->pairs[k - 1].module, a->pairs[k].module))
            st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: module '%.120s' has two lora_A or two lora_B", path,
                            a->pairs[k].module);
    /* the config's r (or its rank_pattern entry) must be the weights' rank; alpha per module */
    for (size_t k = 0; k < a->n_pairs && st == MSBNB_OK; k++) {
        peft_pair *p = &a->pairs[k];
        const peft_pattern *rp = pattern_find(a->rank_pat, a->n_rank_pat, p->module);
        const peft_pattern *ap = pattern_find(a->alpha_pat, a->n_alpha_pat, p->module);
        int64_t r = rp ? (int64_t)rp->value : a->cfg.r;
        p->alpha = ap ? ap->value : a->cfg.lora_alpha;
        if (p->r != r)
            st = MSBNB_FAIL(MSBNB_ERR_SHAPE, "%s: module '%.120s' has rank %lld but adapter_config.json says r %lld%s",
                            path, p->module, (long long)p->r, (long long)r, rp ? " (rank_pattern)" : "");
    }
    msbnb_safetensors_close(f);
    return st;
}

msbnb_status msbnb_peft_load(const char *dir, msbnb_peft_adapter **out) {
    RETURN_IF(!dir || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    char *cfg_path = msbnb__path_join(dir, "adapter_config.json");
    char *w_path = msbnb__path_join(dir, "adapter_model.safetensors");
    char *text = NULL;
    size_t len = 0;
    msbnb_peft_adapter *a = NULL;
    msbnb_status st = cfg_path && w_path ? MSBNB_OK : MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == MSBNB_OK) st = msbnb__read_file(cfg_path, (size_t)16 << 20, &text, &len, NULL);
    if (st == MSBNB_OK) st = msbnb_peft_config_parse(text, len, cfg_path, &a);
    if (st == MSBNB_OK) st = load_weights(a, w_path);
    free(text);
    free(cfg_path);
    free(w_path);
    if (st != MSBNB_OK) {
        msbnb_peft_adapter_free(a);
        return st;
    }
    *out = a;
    return MSBNB_OK;
}

/* ================================================================ saving */

static char *config_json(const msbnb_peft_config *c) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    /* keys in sorted order, as PEFT's save_pretrained (json.dumps sort_keys) */
    cJSON_AddItemToObject(o, "alpha_pattern", cJSON_CreateObject());
    if (c->base_model_name_or_path) cJSON_AddStringToObject(o, "base_model_name_or_path", c->base_model_name_or_path);
    else cJSON_AddNullToObject(o, "base_model_name_or_path");
    cJSON_AddStringToObject(o, "bias", c->bias ? c->bias : "none");
    cJSON_AddBoolToObject(o, "fan_in_fan_out", c->fan_in_fan_out);
    cJSON_AddBoolToObject(o, "inference_mode", c->inference_mode);
    cJSON_AddBoolToObject(o, "init_lora_weights", 1);
    cJSON_AddNullToObject(o, "layers_pattern");
    cJSON_AddNullToObject(o, "layers_to_transform");
    cJSON_AddItemToObject(o, "lora_alpha", msbnb__json_float_number(c->lora_alpha, true));
    cJSON_AddItemToObject(o, "lora_dropout", msbnb__json_float_number(c->lora_dropout, false));
    cJSON_AddNullToObject(o, "modules_to_save");
    cJSON_AddStringToObject(o, "peft_type", "LORA");
    cJSON_AddNumberToObject(o, "r", c->r);
    cJSON_AddItemToObject(o, "rank_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(o, "revision");
    cJSON *tm = cJSON_CreateArray();
    for (size_t i = 0; tm && i < c->n_target_modules; i++)
        cJSON_AddItemToArray(tm, cJSON_CreateString(c->target_modules[i]));
    cJSON_AddItemToObject(o, "target_modules", tm);
    if (c->task_type) cJSON_AddStringToObject(o, "task_type", c->task_type);
    else cJSON_AddNullToObject(o, "task_type");
    cJSON_AddBoolToObject(o, "use_dora", 0);
    cJSON_AddBoolToObject(o, "use_rslora", c->use_rslora);
    char *s = msbnb__json_print_pretty(o);
    cJSON_Delete(o);
    return s;
}

msbnb_status msbnb_peft_save(const char *dir, const msbnb_peft_config *cfg, const msbnb_lora_pair *pairs,
                             size_t n_pairs) {
    RETURN_IF(!dir || !cfg || (n_pairs && !pairs), MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(cfg->r < 1, MSBNB_ERR_INVALID_ARG, "r must be >= 1, got %d", cfg->r);
    RETURN_IF(!(cfg->lora_dropout >= 0 && cfg->lora_dropout < 1), MSBNB_ERR_INVALID_ARG, "lora_dropout must be in [0, 1)");
    for (size_t i = 0; i < n_pairs; i++) {
        const msbnb_lora_pair *p = &pairs[i];
        RETURN_IF(!p->module || !p->A || !p->B, MSBNB_ERR_INVALID_ARG, "pair %zu: NULL module or matrix", i);
        RETURN_IF(p->r != cfg->r || p->in_features < 1 || p->out_features < 1, MSBNB_ERR_SHAPE,
                  "module '%.120s': r %lld (config r %d), in %lld, out %lld", p->module, (long long)p->r, cfg->r,
                  (long long)p->in_features, (long long)p->out_features);
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return MSBNB_FAIL(MSBNB_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
    char *w_path = msbnb__path_join(dir, "adapter_model.safetensors");
    char *c_path = msbnb__path_join(dir, "adapter_config.json");
    char *json = config_json(cfg);
    msbnb_st_writer *w = NULL;
    msbnb_status st = w_path && c_path && json ? MSBNB_OK : MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == MSBNB_OK) st = msbnb_st_writer_create(w_path, &w);
    for (size_t i = 0; i < n_pairs && st == MSBNB_OK; i++) {
        const msbnb_lora_pair *p = &pairs[i];
        size_t len = strlen(PEFT_PREFIX) + strlen(p->module) + 32;
        char *key = malloc(len);
        if (!key) {
            st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        int64_t sa[2] = {p->r, p->in_features}, sb[2] = {p->out_features, p->r};
        snprintf(key, len, "%s%s.lora_A.weight", PEFT_PREFIX, p->module);
        st = msbnb_st_writer_add_f32(w, key, 2, sa, p->A);
        snprintf(key, len, "%s%s.lora_B.weight", PEFT_PREFIX, p->module);
        if (st == MSBNB_OK) st = msbnb_st_writer_add_f32(w, key, 2, sb, p->B);
        free(key);
    }
    if (st == MSBNB_OK) st = msbnb_st_writer_finish(w);
    if (st == MSBNB_OK) {
        size_t n = strlen(json);
        st = msbnb__write_file_atomic(c_path, json, n, NULL);
    }
    msbnb_st_writer_free(w);
    free(json);
    free(w_path);
    free(c_path);
    return st;
}
