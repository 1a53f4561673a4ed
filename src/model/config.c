/*
 * config.c — the LLaMA model object: hyperparameters (validation, config.json), allocation,
 * projections built at the chosen quantization, accessors, load dispatch, random models.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <msbnb/io.h>

#include "kernels/kernels_internal.h"
#include "model/llama_internal.h"

/* ================================================================ names and defaults */

static const char *const proj_names[MSBNB_PROJ_COUNT] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                         "gate_proj", "up_proj", "down_proj"};

const char *msbnb_proj_name(msbnb_proj p) {
    return ((unsigned)p < MSBNB_PROJ_COUNT) ? proj_names[p] : "?";
}

msbnb_status msbnb_proj_parse(const char *name, msbnb_proj *out) {
    RETURN_IF(!name || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    for (int i = 0; i < MSBNB_PROJ_COUNT; i++)
        if (!strcmp(name, proj_names[i])) {
            *out = (msbnb_proj)i;
            return MSBNB_OK;
        }
    return MSBNB_FAIL(MSBNB_ERR_INVALID_ARG, "unknown projection '%s' (q_proj, k_proj, v_proj, o_proj, "
                      "gate_proj, up_proj, down_proj)", name);
}

msbnb_model_params msbnb_model_params_default(void) {
    msbnb_model_params p;
    memset(&p, 0, sizeof p);
    p.quant = MSBNB_QTYPE_NONE;
    p.double_quant = 0;
    p.blocksize = 64;
    p.group_size = 128;
    p.int8_threshold = -1.0f; /* as stored */
    p.max_seq_len = 0;
    p.max_batch = 64;
    return p;
}

void msbnb__llama_proj_shape(const msbnb_model_config *c, msbnb_proj p, int64_t *out_features,
                             int64_t *in_features) {
    int64_t o = 0, i = 0;
    switch (p) {
    case MSBNB_PROJ_Q: o = msbnb__llama_q_dim(c); i = c->dim; break;
    case MSBNB_PROJ_K:
    case MSBNB_PROJ_V: o = msbnb__llama_kv_dim(c); i = c->dim; break;
    case MSBNB_PROJ_O: o = c->dim; i = msbnb__llama_q_dim(c); break;
    case MSBNB_PROJ_GATE:
    case MSBNB_PROJ_UP: o = c->hidden_dim; i = c->dim; break;
    case MSBNB_PROJ_DOWN: o = c->dim; i = c->hidden_dim; break;
    }
    *out_features = o;
    *in_features = i;
}

/* ================================================================ config */

/* Limits that keep every product of sizes far from overflow and reject absurd headers early. */
#define LLAMA_MAX_DIM (1 << 16)
#define LLAMA_MAX_HIDDEN (1 << 18)
#define LLAMA_MAX_LAYERS 1024
#define LLAMA_MAX_VOCAB (1 << 21)
#define LLAMA_MAX_SEQ (1 << 20)

msbnb_status msbnb__llama_config_check(msbnb_model_config *c) {
    RETURN_IF(!c, MSBNB_ERR_INVALID_ARG, "NULL config");
    RETURN_IF(c->dim < 1 || c->dim > LLAMA_MAX_DIM, MSBNB_ERR_FORMAT, "dim %d out of range 1..%d", c->dim,
              LLAMA_MAX_DIM);
    RETURN_IF(c->hidden_dim < 1 || c->hidden_dim > LLAMA_MAX_HIDDEN, MSBNB_ERR_FORMAT,
              "hidden_dim %d out of range 1..%d", c->hidden_dim, LLAMA_MAX_HIDDEN);
    RETURN_IF(c->n_layers < 1 || c->n_layers > LLAMA_MAX_LAYERS, MSBNB_ERR_FORMAT, "n_layers %d out of range",
              c->n_layers);
    RETURN_IF(c->n_heads < 1 || c->n_heads > c->dim, MSBNB_ERR_FORMAT, "n_heads %d out of range 1..dim",
              c->n_heads);
    if (c->n_kv_heads == 0) c->n_kv_heads = c->n_heads;
    RETURN_IF(c->n_kv_heads < 1 || c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0,
              MSBNB_ERR_FORMAT, "n_kv_heads %d must divide n_heads %d", c->n_kv_heads, c->n_heads);
    if (c->head_dim == 0) {
        RETURN_IF(c->dim % c->n_heads != 0, MSBNB_ERR_FORMAT, "dim %d not divisible by n_heads %d", c->dim,
                  c->n_heads);
        c->head_dim = c->dim / c->n_heads;
    }
    RETURN_IF(c->head_dim < 2 || c->head_dim % 2 != 0 || c->head_dim > LLAMA_MAX_DIM, MSBNB_ERR_FORMAT,
              "head_dim %d must be even and >= 2", c->head_dim);
    RETURN_IF((int64_t)c->head_dim * c->n_heads > LLAMA_MAX_DIM, MSBNB_ERR_FORMAT, "n_heads*head_dim too large");
    RETURN_IF(c->vocab_size < 1 || c->vocab_size > LLAMA_MAX_VOCAB, MSBNB_ERR_FORMAT, "vocab_size %d out of range",
              c->vocab_size);
    RETURN_IF(c->seq_len < 1 || c->seq_len > LLAMA_MAX_SEQ, MSBNB_ERR_FORMAT, "seq_len %d out of range",
              c->seq_len);
    RETURN_IF(!(c->norm_eps > 0.0f) || !isfinite(c->norm_eps), MSBNB_ERR_FORMAT, "norm_eps must be > 0");
    RETURN_IF(!(c->rope_theta > 1.0f) || !isfinite(c->rope_theta), MSBNB_ERR_FORMAT, "rope_theta must be > 1");
    c->tied = c->tied ? 1 : 0;
    c->qk_norm = c->qk_norm ? 1 : 0;
    RETURN_IF((unsigned)c->family > MSBNB_FAMILY_QWEN3, MSBNB_ERR_FORMAT, "family %d unknown", (int)c->family);
    RETURN_IF(c->bias >= (1u << MSBNB_PROJ_COUNT), MSBNB_ERR_FORMAT, "bias mask 0x%x has unknown bits", c->bias);
    RETURN_IF(c->sliding_window < 0, MSBNB_ERR_FORMAT, "sliding_window %d < 0", c->sliding_window);
    RETURN_IF(c->window_from_layer < 0 || c->window_from_layer > c->n_layers, MSBNB_ERR_FORMAT,
              "window_from_layer %d out of range 0..n_layers", c->window_from_layer);
    const msbnb_rope_scaling *r = &c->rope;
    RETURN_IF((unsigned)r->type > MSBNB_ROPE_LLAMA3, MSBNB_ERR_FORMAT, "rope type %d unknown", (int)r->type);
    if (r->type != MSBNB_ROPE_DEFAULT)
        RETURN_IF(!(r->factor > 0.0f) || !isfinite(r->factor), MSBNB_ERR_FORMAT, "rope factor must be > 0");
    if (r->type == MSBNB_ROPE_LLAMA3 || r->type == MSBNB_ROPE_YARN)
        RETURN_IF(r->original_max_pos < 1, MSBNB_ERR_FORMAT, "rope original_max_position_embeddings must be >= 1");
    if (r->type == MSBNB_ROPE_LLAMA3)
        RETURN_IF(!(r->low_freq_factor > 0.0f) || !(r->high_freq_factor > r->low_freq_factor) ||
                      !isfinite(r->high_freq_factor),
                  MSBNB_ERR_FORMAT, "llama3 rope needs 0 < low_freq_factor < high_freq_factor");
    if (r->type == MSBNB_ROPE_YARN)
        RETURN_IF(!(r->beta_fast > 0.0f) || !(r->beta_slow > 0.0f) || !isfinite(r->beta_fast) ||
                      !isfinite(r->beta_slow) || !(r->attention_factor >= 0.0f) || !isfinite(r->attention_factor),
                  MSBNB_ERR_FORMAT, "yarn rope needs beta_fast, beta_slow > 0 and attention_factor >= 0");
    if (r->type == MSBNB_ROPE_DYNAMIC)
        RETURN_IF(c->head_dim <= 2, MSBNB_ERR_FORMAT, "dynamic RoPE needs head_dim > 2");
    return MSBNB_OK;
}

/* Integer field: required unless def >= 0 (then the default when absent). */
static msbnb_status json_int(const msbnb_config *j, const char *key, int64_t def, int *out) {
    int64_t v = def;
    msbnb_status st = msbnb_config_get_int(j, key, &v);
    RETURN_IF(st == MSBNB_ERR_NOT_FOUND && def < 0, MSBNB_ERR_FORMAT, "config.json: '%s' missing", key);
    RETURN_IF(st != MSBNB_OK && st != MSBNB_ERR_NOT_FOUND, MSBNB_ERR_FORMAT, "config.json: '%s' is not an integer",
              key);
    RETURN_IF(v < 0 || v > INT32_MAX, MSBNB_ERR_FORMAT, "config.json: '%s' = %lld out of range", key, (long long)v);
    *out = (int)v;
    return MSBNB_OK;
}

static msbnb_status json_double(const msbnb_config *j, const char *key, double *inout) {
    msbnb_status st = msbnb_config_get_double(j, key, inout);
    RETURN_IF(st != MSBNB_OK && st != MSBNB_ERR_NOT_FOUND, MSBNB_ERR_FORMAT, "config.json: '%s' is not a number",
              key);
    return MSBNB_OK;
}

static const char *const family_names[] = {"llama", "mistral", "qwen2", "qwen3"};
#define FAMILIES_SUPPORTED "llama, mistral, qwen2, qwen3"

const char *msbnb_family_name(msbnb_family f) {
    return ((unsigned)f < sizeof family_names / sizeof family_names[0]) ? family_names[f] : "?";
}

static msbnb_status json_bool(const msbnb_config *j, const char *key, int *out) {
    msbnb_status st = msbnb_config_get_bool(j, key, out);
    RETURN_IF(st != MSBNB_OK && st != MSBNB_ERR_NOT_FOUND, MSBNB_ERR_FORMAT, "config.json: '%s' is not a bool", key);
    return MSBNB_OK;
}

/* sliding_window: an integer; absent -> def, null -> 0 (full attention). */
static msbnb_status json_window(const msbnb_config *j, int def, int *out) {
    int64_t v = 0;
    msbnb_status st = msbnb_config_get_int(j, "sliding_window", &v);
    if (st == MSBNB_ERR_NOT_FOUND) {
        *out = msbnb_config_has(j, "sliding_window") ? 0 : def;
        return MSBNB_OK;
    }
    RETURN_IF(st != MSBNB_OK, MSBNB_ERR_FORMAT, "config.json: 'sliding_window' is not an integer");
    RETURN_IF(v < 1 || v > INT32_MAX, MSBNB_ERR_FORMAT, "config.json: sliding_window %lld out of range", (long long)v);
    *out = (int)v;
    return MSBNB_OK;
}

/* Qwen2/Qwen3 with use_sliding_window: the window applies to the layers transformers marks
 * "sliding_attention" in layer_types, by default those from max_window_layers (28) on. msbnb
 * supports a full-attention prefix followed by sliding layers (the only pattern the default makes). */
static msbnb_status qwen_window(const msbnb_config *j, msbnb_model_config *c) {
    TRY(json_window(j, 4096, &c->sliding_window));
    if (c->sliding_window == 0) return MSBNB_OK; /* sliding_window null: no window anywhere */
    size_t n = 0;
    if (msbnb_config_array_len(j, "layer_types", &n) == MSBNB_OK && n > 0) {
        RETURN_IF(n != (size_t)c->n_layers, MSBNB_ERR_FORMAT, "config.json: layer_types has %zu entries for %d layers",
                  n, c->n_layers);
        int first = -1;
        for (size_t i = 0; i < n; i++) {
            const char *t = NULL;
            RETURN_IF(msbnb_config_array_string(j, "layer_types", i, &t) != MSBNB_OK, MSBNB_ERR_FORMAT,
                      "config.json: layer_types[%zu] is not a string", i);
            const int sl = !strcmp(t, "sliding_attention");
            RETURN_IF(!sl && strcmp(t, "full_attention") != 0, MSBNB_ERR_UNSUPPORTED,
                      "config.json: layer type '%s' is not supported (full_attention, sliding_attention)", t);
            if (sl && first < 0) first = (int)i;
            RETURN_IF(!sl && first >= 0, MSBNB_ERR_UNSUPPORTED,
                      "config.json: full attention after sliding layers (layer_types) is not supported");
        }
        if (first < 0) c->sliding_window = 0;
        else c->window_from_layer = first;
        return MSBNB_OK;
    }
    int from = 28;
    TRY(json_int(j, "max_window_layers", 28, &from));
    if (from >= c->n_layers) c->sliding_window = 0;
    else c->window_from_layer = from;
    return MSBNB_OK;
}

static msbnb_status config_from_json(const msbnb_config *j, msbnb_model_config *c) {
    memset(c, 0, sizeof *c);
    const char *type = NULL;
    c->family = MSBNB_FAMILY_LLAMA; /* no model_type: a plain Llama config */
    if (msbnb_config_get_string(j, "model_type", &type) == MSBNB_OK) {
        int f = -1;
        for (int i = 0; i < (int)(sizeof family_names / sizeof family_names[0]); i++)
            if (!strcmp(type, family_names[i])) f = i;
        RETURN_IF(f < 0, MSBNB_ERR_UNSUPPORTED, "model type '%s' is not supported (supported: " FAMILIES_SUPPORTED ")",
                  type);
        c->family = (msbnb_family)f;
    }
    TRY(json_int(j, "hidden_size", -1, &c->dim));
    TRY(json_int(j, "intermediate_size", -1, &c->hidden_dim));
    TRY(json_int(j, "num_hidden_layers", -1, &c->n_layers));
    TRY(json_int(j, "num_attention_heads", -1, &c->n_heads));
    TRY(json_int(j, "num_key_value_heads", 0, &c->n_kv_heads));
    /* transformers' Qwen3Config defaults head_dim to 128; the others derive it from the sizes */
    TRY(json_int(j, "head_dim", c->family == MSBNB_FAMILY_QWEN3 ? 128 : 0, &c->head_dim));
    TRY(json_int(j, "vocab_size", -1, &c->vocab_size));
    TRY(json_int(j, "max_position_embeddings", 2048, &c->seq_len));
    double eps = 1e-6;
    TRY(json_double(j, "rms_norm_eps", &eps));
    int tied = 0;
    TRY(json_bool(j, "tie_word_embeddings", &tied));
    int attn_bias = 0, mlp_bias = 0;
    TRY(json_bool(j, "attention_bias", &attn_bias));
    TRY(json_bool(j, "mlp_bias", &mlp_bias));
    switch (c->family) {
    case MSBNB_FAMILY_LLAMA:
        c->bias = (attn_bias ? 0x0fu : 0u) | (mlp_bias ? 0x70u : 0u);
        break;
    case MSBNB_FAMILY_MISTRAL:
        TRY(json_window(j, 4096, &c->sliding_window));
        break;
    case MSBNB_FAMILY_QWEN2:
    case MSBNB_FAMILY_QWEN3: {
        c->bias = c->family == MSBNB_FAMILY_QWEN2 ? MSBNB_BIAS_QKV : (attn_bias ? MSBNB_BIAS_QKV | 0x08u : 0u);
        c->qk_norm = c->family == MSBNB_FAMILY_QWEN3;
        int sliding = 0;
        TRY(json_bool(j, "use_sliding_window", &sliding));
        if (sliding) TRY(qwen_window(j, c));
        break;
    }
    }
    const char *act = NULL;
    if (msbnb_config_get_string(j, "hidden_act", &act) == MSBNB_OK)
        RETURN_IF(strcmp(act, "silu") != 0, MSBNB_ERR_UNSUPPORTED, "config.json: hidden_act '%s' is not supported (silu only)",
                  act);
    RETURN_IF(!(eps > 0.0 && eps < 1.0), MSBNB_ERR_FORMAT, "config.json: rms_norm_eps %g out of range", eps);
    c->norm_eps = (float)eps;
    c->tied = tied;
    TRY(msbnb__rope_from_json(j, c));
    return msbnb__llama_config_check(c);
}

msbnb_status msbnb__llama_config_from_json(const char *json, size_t len, msbnb_model_config *cfg) {
    RETURN_IF(!json || !cfg, MSBNB_ERR_INVALID_ARG, "NULL argument");
    msbnb_config *j = NULL;
    TRY(msbnb_config_parse(json, len, "config.json", &j));
    msbnb_status st = config_from_json(j, cfg);
    msbnb_config_free(j);
    return st;
}

/* ================================================================ allocation */

static float *alloc_floats(size_t n) {
    size_t bytes;
    if (!msbnb__mul_ok(n ? n : 1, sizeof(float), &bytes)) return NULL;
    return (float *)calloc(1, bytes);
}

/* RoPE tables for every cached position, with the frequencies of sequences up to seq_len. */
static void rope_tables(msbnb_model *m) {
    msbnb__rope_inv_freq(&m->cfg, m->cfg.seq_len, m->inv_freq, &m->rope_scale);
    msbnb__rope_fill(m->inv_freq, m->rope_scale, m->cfg.head_dim / 2, 0, m->rope_len, m->rope_cos, m->rope_sin);
}

msbnb_status msbnb__llama_alloc(const msbnb_model_config *cfg_in, const msbnb_model_params *params,
                                msbnb_model **out) {
    RETURN_IF(!cfg_in || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    msbnb_model_config cfg = *cfg_in;
    TRY(msbnb__llama_config_check(&cfg));
    msbnb_model_params p = params ? *params : msbnb_model_params_default();
    RETURN_IF(p.max_seq_len < 0 || p.max_batch < 0, MSBNB_ERR_INVALID_ARG, "negative max_seq_len/max_batch");
    RETURN_IF(p.quant != MSBNB_QTYPE_NONE && p.quant != MSBNB_QTYPE_INT8 && p.quant != MSBNB_QTYPE_INT4 &&
                  p.quant != MSBNB_QTYPE_NF4 && p.quant != MSBNB_QTYPE_FP4,
              MSBNB_ERR_INVALID_ARG, "quantization '%s' is not available for model layers", msbnb_qtype_name(p.quant));
    RETURN_IF(!isfinite(p.int8_threshold), MSBNB_ERR_INVALID_ARG, "int8 threshold must be finite");
    if (p.int8_threshold < 0.0f) p.int8_threshold = -1.0f; /* as stored */
    RETURN_IF(p.head_quant != MSBNB_QTYPE_NONE && p.head_quant != MSBNB_QTYPE_INT8 && p.head_quant != MSBNB_QTYPE_NF4,
              MSBNB_ERR_INVALID_ARG, "output layer quantization '%s' is not available (int8 or nf4)",
              msbnb_qtype_name(p.head_quant));
    RETURN_IF(p.max_seq_len > LLAMA_MAX_SEQ, MSBNB_ERR_INVALID_ARG, "context %d beyond %d positions", p.max_seq_len,
              LLAMA_MAX_SEQ);
    if (p.max_batch == 0) p.max_batch = 64;
    if (p.max_batch > 4096) p.max_batch = 4096;

    {
        /* estimate before allocating: embeddings, KV cache and activations below (projections are
         * bounded by the checkpoint itself) */
        const double T = (double)((p.max_seq_len > 0 && p.max_seq_len < cfg.seq_len) ? p.max_seq_len : cfg.seq_len);
        const double kv = 2.0 * cfg.n_layers * T * msbnb__llama_kv_dim(&cfg) * 4.0;
        const double need = kv + 4.0 * ((double)cfg.vocab_size * cfg.dim +
                                        (double)p.max_batch * (6.0 * cfg.dim + 2.0 * cfg.hidden_dim +
                                                               (double)cfg.n_heads * T + cfg.vocab_size));
        TRY(msbnb__blas_check_memory());
        const uint64_t avail = msbnb__memory_available();
        RETURN_IF(avail && need > (double)avail, MSBNB_ERR_OUT_OF_MEMORY,
                  "the model's buffers need %.0f MB (KV cache %.0f MB for a context of %.0f tokens: a smaller "
                  "max_seq_len / --ctx lowers it), %.0f MB are available",
                  need / 1e6, kv / 1e6, T, (double)avail / 1e6);
    }
    msbnb_model *m = (msbnb_model *)calloc(1, sizeof *m);
    RETURN_IF(!m, MSBNB_ERR_OUT_OF_MEMORY, "model");
    m->cfg = cfg;
    m->params = p;
    m->ctx_len = p.max_seq_len > 0 ? p.max_seq_len : cfg.seq_len;
    m->rope_len = m->ctx_len;
    m->batch_cap = p.max_batch;

    const size_t dim = (size_t)cfg.dim, qd = (size_t)msbnb__llama_q_dim(&cfg), kvd = (size_t)msbnb__llama_kv_dim(&cfg);
    const size_t hid = (size_t)cfg.hidden_dim, V = (size_t)cfg.vocab_size, L = (size_t)cfg.n_layers;
    const size_t B = (size_t)m->batch_cap, T = (size_t)m->ctx_len, half = (size_t)cfg.head_dim / 2;
    /* All sizes are bounded by the config limits: products below stay far from SIZE_MAX on 64-bit. */
    m->layers = (msbnb_llama_layer *)calloc(L, sizeof *m->layers);
    m->tok_emb = alloc_floats(V * dim);
    m->final_norm = alloc_floats(dim);
    m->rope_cos = alloc_floats((size_t)m->rope_len * half);
    m->rope_sin = alloc_floats((size_t)m->rope_len * half);
    m->inv_freq = alloc_floats(half);
    if (cfg.rope.type == MSBNB_ROPE_DYNAMIC) {
        m->rope_dyn_cos = alloc_floats(B * half);
        m->rope_dyn_sin = alloc_floats(B * half);
        m->rope_dyn_freq = alloc_floats(half);
    }
    m->key_cache = alloc_floats(L * T * kvd);
    m->value_cache = alloc_floats(L * T * kvd);
    m->x = alloc_floats(B * dim);
    m->xb = alloc_floats(B * (qd > dim ? qd : dim));
    m->xb2 = alloc_floats(B * dim);
    m->q = alloc_floats(B * qd);
    m->k = alloc_floats(B * kvd);
    m->v = alloc_floats(B * kvd);
    m->att = alloc_floats(B * (size_t)cfg.n_heads * T);
    m->hb = alloc_floats(B * hid);
    m->hb2 = alloc_floats(B * hid);
    m->logits = alloc_floats(B * V);
    int ok = m->layers && m->tok_emb && m->final_norm && m->rope_cos && m->rope_sin && m->inv_freq && m->key_cache &&
             (cfg.rope.type != MSBNB_ROPE_DYNAMIC || (m->rope_dyn_cos && m->rope_dyn_sin && m->rope_dyn_freq)) &&
             m->value_cache && m->x && m->xb && m->xb2 && m->q && m->k && m->v && m->att && m->hb && m->hb2 &&
             m->logits;
    for (size_t l = 0; ok && l < L; l++) {
        m->layers[l].attn_norm = alloc_floats(dim);
        m->layers[l].ffn_norm = alloc_floats(dim);
        ok = m->layers[l].attn_norm && m->layers[l].ffn_norm;
        if (ok && cfg.qk_norm) {
            m->layers[l].q_norm = alloc_floats((size_t)cfg.head_dim);
            m->layers[l].k_norm = alloc_floats((size_t)cfg.head_dim);
            ok = m->layers[l].q_norm && m->layers[l].k_norm;
        }
    }
    if (!ok) {
        msbnb_model_free(m);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "model buffers (%zu layers, dim %zu, vocab %zu, ctx %zu)", L, dim,
                          V, T);
    }
    rope_tables(m);
    *out = m;
    return MSBNB_OK;
}

void msbnb_model_free(msbnb_model *m) {
    if (!m) return;
    if (m->layers) {
        for (int l = 0; l < m->cfg.n_layers; l++) {
            free(m->layers[l].attn_norm);
            free(m->layers[l].ffn_norm);
            free(m->layers[l].q_norm);
            free(m->layers[l].k_norm);
            for (int p = 0; p < MSBNB_PROJ_COUNT; p++) msbnb_linear_free(m->layers[l].proj[p]);
        }
        free(m->layers);
    }
    msbnb_linear_free(m->output);
    free(m->src_config);
    free(m->tok_emb);
    free(m->tok_emb16);
    free(m->head16);
    free(m->head_scratch);
    free(m->final_norm);
    free(m->rope_cos);
    free(m->rope_sin);
    free(m->inv_freq);
    free(m->rope_dyn_cos);
    free(m->rope_dyn_sin);
    free(m->rope_dyn_freq);
    free(m->key_cache);
    free(m->value_cache);
    free(m->x);
    free(m->xb);
    free(m->xb2);
    free(m->q);
    free(m->k);
    free(m->v);
    free(m->att);
    free(m->hb);
    free(m->hb2);
    free(m->logits);
    free(m);
}

/* ================================================================ projections */

msbnb_status msbnb__llama_set_proj_f32(msbnb_model *m, int l, msbnb_proj p, const float *w) {
    return msbnb__llama_set_proj(m, l, p, w, NULL);
}

msbnb_status msbnb__llama_set_proj(msbnb_model *m, int l, msbnb_proj p, const float *w, const float *bias) {
    RETURN_IF(!m || !w || l < 0 || l >= m->cfg.n_layers || (unsigned)p >= MSBNB_PROJ_COUNT, MSBNB_ERR_INVALID_ARG,
              "bad argument");
    int64_t out, in;
    msbnb__llama_proj_shape(&m->cfg, p, &out, &in);
    msbnb_linear *lin = NULL;
    const msbnb_model_params *mp = &m->params;
    switch (mp->quant) {
    case MSBNB_QTYPE_INT8: {
        msbnb_linear8bit_params ip = msbnb_linear8bit_params_default();
        ip.has_fp16_weights = 0;
        ip.threshold = mp->int8_threshold >= 0.0f ? mp->int8_threshold : m->stored_int8_threshold;
        TRY(msbnb_linear8bit_create_from_weights(w, bias, in, out, &ip, &lin));
        break;
    }
    case MSBNB_QTYPE_INT4:
    case MSBNB_QTYPE_NF4:
    case MSBNB_QTYPE_FP4: {
        msbnb_quant_config qc = msbnb_quant_config_default(mp->quant);
        qc.double_quant = mp->double_quant;
        if (mp->quant == MSBNB_QTYPE_INT4) {
            qc.group_size = msbnb_int4_group_for(in, mp->group_size > 0 ? mp->group_size : 128);
            if (qc.group_size == 0) { /* odd in_features: no INT4 grouping exists */
                TRY(msbnb_linear_create_from_weights(w, bias, in, out, &lin));
                break;
            }
        } else if (mp->blocksize > 0) {
            qc.blocksize = mp->blocksize;
        }
        TRY(msbnb_linear4bit_create_from_weights(w, bias, in, out, &qc, &lin));
        break;
    }
    default: TRY(msbnb_linear_create_from_weights(w, bias, in, out, &lin)); break;
    }
    msbnb_linear_free(m->layers[l].proj[p]);
    m->layers[l].proj[p] = lin;
    return MSBNB_OK;
}

/* ================================================================ public accessors */

msbnb_status msbnb_model_get_config(const msbnb_model *m, msbnb_model_config *cfg) {
    RETURN_IF(!m || !cfg, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *cfg = m->cfg;
    return MSBNB_OK;
}

int msbnb_model_vocab_size(const msbnb_model *m) { return m ? m->cfg.vocab_size : 0; }
int msbnb_model_context_len(const msbnb_model *m) { return m ? m->ctx_len : 0; }

msbnb_linear *msbnb_model_linear(msbnb_model *m, int layer, msbnb_proj which) {
    if (!m || layer < 0 || layer >= m->cfg.n_layers || (unsigned)which >= MSBNB_PROJ_COUNT) return NULL;
    return m->layers[layer].proj[which];
}

msbnb_status msbnb_model_set_precision(msbnb_model *m, msbnb_precision precision) {
    RETURN_IF(!m, MSBNB_ERR_INVALID_ARG, "model is NULL");
    RETURN_IF(precision != MSBNB_PRECISION_EXACT && precision != MSBNB_PRECISION_FAST, MSBNB_ERR_INVALID_ARG,
              "precision %d is neither EXACT (0) nor FAST (1)", (int)precision);
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int p = 0; p < MSBNB_PROJ_COUNT; p++) TRY(msbnb_linear_set_precision(m->layers[l].proj[p], precision));
    return MSBNB_OK;
}

msbnb_status msbnb_model_find_linear(msbnb_model *m, const char *name, msbnb_linear **out) {
    RETURN_IF(!m || !name || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    const char *s = name;
    if (!strncmp(s, "base_model.model.", 17)) s += 17;
    if (!strncmp(s, "model.", 6)) s += 6;
    RETURN_IF(strncmp(s, "layers.", 7) != 0, MSBNB_ERR_NOT_FOUND, "no module '%s'", name);
    s += 7;
    char *end = NULL;
    long l = strtol(s, &end, 10);
    RETURN_IF(end == s || *end != '.' || l < 0 || l >= m->cfg.n_layers, MSBNB_ERR_NOT_FOUND, "no module '%s'", name);
    s = end + 1;
    if (!strncmp(s, "self_attn.", 10)) s += 10;
    else if (!strncmp(s, "mlp.", 4)) s += 4;
    else return MSBNB_FAIL(MSBNB_ERR_NOT_FOUND, "no module '%s'", name);
    for (int p = 0; p < MSBNB_PROJ_COUNT; p++) {
        int attn = p <= MSBNB_PROJ_O;
        if (!strcmp(s, proj_names[p]) && (attn == (strstr(name, "self_attn.") != NULL))) {
            *out = m->layers[l].proj[p];
            return MSBNB_OK;
        }
    }
    return MSBNB_FAIL(MSBNB_ERR_NOT_FOUND, "no module '%s'", name);
}

size_t msbnb_model_weight_bytes(const msbnb_model *m) {
    if (!m) return 0;
    const size_t dim = (size_t)m->cfg.dim;
    const size_t table = (size_t)m->cfg.vocab_size * dim;
    size_t total = sizeof(float) * (dim + 2 * dim * (size_t)m->cfg.n_layers) +
                   (m->tok_emb ? sizeof(float) : sizeof(uint16_t)) * table + (m->head16 ? sizeof(uint16_t) * table : 0);
    if (m->cfg.qk_norm) total += sizeof(float) * 2 * (size_t)m->cfg.head_dim * (size_t)m->cfg.n_layers;
    msbnb_linear_memory mem;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int p = 0; p < MSBNB_PROJ_COUNT; p++)
            if (m->layers[l].proj[p] && msbnb_linear_memory_usage(m->layers[l].proj[p], &mem) == MSBNB_OK)
                total += mem.weight_bytes + mem.stats_bytes + mem.bias_bytes;
    if (m->output && msbnb_linear_memory_usage(m->output, &mem) == MSBNB_OK)
        total += mem.weight_bytes + mem.stats_bytes + mem.bias_bytes;
    return total;
}

/* ================================================================ load dispatch, random models */

msbnb_status msbnb_model_load(const char *path, const msbnb_model_params *params, msbnb_model **out) {
    RETURN_IF(!path || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    struct stat sb;
    RETURN_IF(stat(path, &sb) != 0, MSBNB_ERR_IO, "cannot open '%s'", path);
    if (S_ISDIR(sb.st_mode)) return msbnb__llama_load_hf(path, params, out);
    size_t n = strlen(path);
    if (n > 12 && !strcmp(path + n - 12, ".safetensors")) return msbnb__llama_load_hf(path, params, out);
    return msbnb__llama_load_llama2c(path, params, out);
}

/* splitmix64 + Box-Muller: a platform-independent N(0, 1) stream. */
static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static void fill_normal(uint64_t *s, float *x, size_t n, double stddev) {
    for (size_t i = 0; i < n; i++) {
        double u1 = ((double)(splitmix(s) >> 11) + 1.0) * 0x1p-53, u2 = (double)(splitmix(s) >> 11) * 0x1p-53;
        x[i] = (float)(stddev * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
}

msbnb_status msbnb_model_create_random(const msbnb_model_config *cfg, const msbnb_model_params *params,
                                       uint64_t seed, msbnb_model **out) {
    msbnb_model *m = NULL;
    TRY(msbnb__llama_alloc(cfg, params, &m));
    uint64_t s = seed;
    const size_t dim = (size_t)m->cfg.dim;
    fill_normal(&s, m->tok_emb, (size_t)m->cfg.vocab_size * dim, 0.02);
    for (size_t i = 0; i < dim; i++) m->final_norm[i] = 1.0f;
    msbnb_status st = MSBNB_OK;
    size_t maxw = 0;
    for (int p = 0; p < MSBNB_PROJ_COUNT; p++) {
        int64_t o, in;
        msbnb__llama_proj_shape(&m->cfg, (msbnb_proj)p, &o, &in);
        if ((size_t)(o * in) > maxw) maxw = (size_t)(o * in);
    }
    float *w = alloc_floats(maxw), *bias = alloc_floats(maxw);
    if (!w || !bias) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "weights");
    for (int l = 0; st == MSBNB_OK && l < m->cfg.n_layers; l++) {
        for (size_t i = 0; i < dim; i++) m->layers[l].attn_norm[i] = m->layers[l].ffn_norm[i] = 1.0f;
        for (int i = 0; m->cfg.qk_norm && i < m->cfg.head_dim; i++) m->layers[l].q_norm[i] = m->layers[l].k_norm[i] = 1.0f;
        for (int p = 0; st == MSBNB_OK && p < MSBNB_PROJ_COUNT; p++) {
            int64_t o, in;
            msbnb__llama_proj_shape(&m->cfg, (msbnb_proj)p, &o, &in);
            fill_normal(&s, w, (size_t)(o * in), 0.02);
            const int has_bias = (m->cfg.bias >> p) & 1u;
            if (has_bias) fill_normal(&s, bias, (size_t)o, 0.02);
            st = msbnb__llama_set_proj(m, l, (msbnb_proj)p, w, has_bias ? bias : NULL);
        }
    }
    free(bias);
    if (st == MSBNB_OK && !m->cfg.tied) {
        float *wo = alloc_floats((size_t)m->cfg.vocab_size * dim);
        if (!wo) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "output layer");
        else {
            fill_normal(&s, wo, (size_t)m->cfg.vocab_size * dim, 0.02);
            st = msbnb_linear_create_from_weights(wo, NULL, (int64_t)dim, m->cfg.vocab_size, &m->output);
        }
        free(wo);
    }
    free(w);
    if (st == MSBNB_OK) st = msbnb__llama_finish_head(m);
    if (st != MSBNB_OK) {
        msbnb_model_free(m);
        return st;
    }
    *out = m;
    return MSBNB_OK;
}
