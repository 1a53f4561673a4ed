/*
 * load_hf.c — Hugging Face LlamaForCausalLM (and Mistral, Qwen2, Qwen3) checkpoints (a directory with config.json and
 * model.safetensors, possibly sharded), through io.h.
 *
 * Tensor names (transformers' modeling_llama):
 *   model.embed_tokens.weight                       [vocab, dim]
 *   model.layers.L.input_layernorm.weight           [dim]
 *   model.layers.L.self_attn.{q,k,v,o}_proj.weight  [out, in]  (q/k rows already in rotate_half order)
 *   model.layers.L.self_attn.{q,k,v}_proj.bias       [out]      (qwen2; config.bias)
 *   model.layers.L.self_attn.{q,k}_norm.weight      [head_dim] (qwen3)
 *   model.layers.L.post_attention_layernorm.weight  [dim]
 *   model.layers.L.mlp.{gate,up,down}_proj.weight   [out, in]
 *   model.norm.weight                               [dim]
 *   lm_head.weight                                  [vocab, dim]  (absent when tie_word_embeddings)
 * Projections may be plain (F32/F16/BF16) or quantized (bitsandbytes NF4/FP4/INT8 or msbnb's INT4 /
 * INT8 layouts: io.h msbnb_bnb_detect / msbnb_bnb_read). Everything else must be plain.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <msbnb/io.h>

#include "model/llama_internal.h"

/* Read a plain tensor that must have exactly the given shape (ndim 1 or 2) into dst. */
static msbnb_status read_plain(const msbnb_checkpoint *ck, const char *name, int ndim, int64_t d0, int64_t d1,
                               float *dst) {
    msbnb_tensor_info t;
    msbnb_status st = msbnb_checkpoint_find(ck, name, &t);
    RETURN_IF(st == MSBNB_ERR_NOT_FOUND, MSBNB_ERR_FORMAT, "checkpoint has no tensor '%s'", name);
    TRY(st);
    int ok = t.ndim == ndim && t.shape[0] == d0 && (ndim == 1 || t.shape[1] == d1);
    RETURN_IF(!ok, MSBNB_ERR_SHAPE, "tensor '%s' has %d dims [%lld, %lld], expected [%lld%s%lld]", name, t.ndim,
              (long long)(t.ndim > 0 ? t.shape[0] : 0), (long long)(t.ndim > 1 ? t.shape[1] : 0), (long long)d0,
              ndim == 2 ? ", " : "", (long long)(ndim == 2 ? d1 : 0));
    RETURN_IF(t.dtype != MSBNB_ST_F32 && t.dtype != MSBNB_ST_F16 && t.dtype != MSBNB_ST_BF16, MSBNB_ERR_FORMAT,
              "tensor '%s' has dtype %s, expected F32, F16 or BF16", name, msbnb_st_dtype_name(t.dtype));
    TRY(msbnb_tensor_to_f32(&t, dst));
    /* the values are ours now: the file's pages need not stay resident (peak memory of a load) */
    msbnb_checkpoint_release(ck, name);
    return MSBNB_OK;
}

/* Projection p of layer l from the checkpoint, honouring m->params (see model.h); its bias
 * (plain, [out]) into bias_buf when the config says it has one. */
static msbnb_status load_proj(msbnb_model *m, const msbnb_checkpoint *ck, int l, msbnb_proj p, float *buf,
                              float *bias_buf) {
    char name[128];
    int64_t out, in;
    msbnb__llama_proj_shape(&m->cfg, p, &out, &in);
    const float *bias = NULL;
    if ((m->cfg.bias >> p) & 1u) {
        snprintf(name, sizeof name, "model.layers.%d.%s.%s.bias", l, p <= MSBNB_PROJ_O ? "self_attn" : "mlp",
                 msbnb_proj_name(p));
        TRY(read_plain(ck, name, 1, out, 0, bias_buf));
        bias = bias_buf;
    }
    snprintf(name, sizeof name, "model.layers.%d.%s.%s.weight", l, p <= MSBNB_PROJ_O ? "self_attn" : "mlp",
             msbnb_proj_name(p));
    msbnb_qtype qt = MSBNB_QTYPE_NONE;
    msbnb_status st = msbnb_bnb_detect(ck, name, &qt);
    RETURN_IF(st == MSBNB_ERR_NOT_FOUND, MSBNB_ERR_FORMAT, "checkpoint has no tensor '%s'", name);
    TRY(st);
    if (qt == MSBNB_QTYPE_NONE) {
        TRY(read_plain(ck, name, 2, out, in, buf));
        return msbnb__llama_set_proj(m, l, p, buf, bias);
    }
    msbnb_qtensor *q = NULL;
    TRY(msbnb_bnb_read(ck, name, &q));
    msbnb_checkpoint_release(ck, name);
    msbnb_qtensor_view v;
    st = msbnb_qtensor_get_view(q, &v);
    if (st == MSBNB_OK && (v.rows != out || v.cols != in))
        st = MSBNB_FAIL(MSBNB_ERR_SHAPE, "quantized '%s' is [%lld, %lld], expected [%lld, %lld]", name,
                        (long long)v.rows, (long long)v.cols, (long long)out, (long long)in);
    if (st == MSBNB_OK && v.type == MSBNB_QTYPE_INT8 && m->params.int8_threshold >= 0.0f &&
        v.threshold != m->params.int8_threshold) {
        /* an explicit threshold overrides the stored one */
        msbnb_qtensor *q2 = NULL;
        v.threshold = m->params.int8_threshold;
        st = msbnb_qtensor_from_view(&v, &q2);
        if (st == MSBNB_OK) {
            msbnb_qtensor_free(q);
            q = q2;
        }
    }
    if (st == MSBNB_OK && m->params.quant == MSBNB_QTYPE_NONE) {
        /* Keep the checkpoint's own format: the layer takes ownership of q on success. */
        msbnb_linear *lin = NULL;
        st = msbnb_linear_from_qtensor(q, bias, &lin);
        if (st == MSBNB_OK) {
            msbnb_linear_free(m->layers[l].proj[p]);
            m->layers[l].proj[p] = lin;
            return MSBNB_OK;
        }
    } else if (st == MSBNB_OK) {
        /* Another format was asked for: dequantize, then quantize as requested. */
        st = msbnb_dequantize(q, buf);
        if (st == MSBNB_OK) st = msbnb__llama_set_proj(m, l, p, buf, bias);
    }
    msbnb_qtensor_free(q);
    return st;
}

/* A [vocab, dim] table (embedding, lm_head): a bf16/f16 one is kept as stored in a new *half
 * (its dtype in *dt; *half NULL otherwise), anything else read into f32 [vocab, dim]. */
static msbnb_status read_table(const msbnb_checkpoint *ck, const char *name, const msbnb_model_config *c, float *f32,
                               uint16_t **half, msbnb_dtype *dt) {
    *half = NULL;
    msbnb_tensor_info t;
    msbnb_status st = msbnb_checkpoint_find(ck, name, &t);
    if (st == MSBNB_OK && (t.dtype == MSBNB_ST_BF16 || t.dtype == MSBNB_ST_F16) && t.ndim == 2 &&
        t.shape[0] == c->vocab_size && t.shape[1] == c->dim) {
        const size_t n = (size_t)c->vocab_size * (size_t)c->dim;
        *half = (uint16_t *)malloc(n * sizeof(uint16_t));
        RETURN_IF(!*half, MSBNB_ERR_OUT_OF_MEMORY, "%s", name);
        memcpy(*half, t.data, n * sizeof(uint16_t));
        msbnb_checkpoint_release(ck, name);
        *dt = t.dtype == MSBNB_ST_BF16 ? MSBNB_DTYPE_BF16 : MSBNB_DTYPE_F16;
        return MSBNB_OK;
    }
    return read_plain(ck, name, 2, c->vocab_size, c->dim, f32);
}

static msbnb_status load_weights(msbnb_model *m, const msbnb_checkpoint *ck) {
    const msbnb_model_config *c = &m->cfg;
    TRY(read_table(ck, "model.embed_tokens.weight", c, m->tok_emb, &m->tok_emb16, &m->emb_dtype));
    if (m->tok_emb16) { /* the fp32 table was never touched: give it back */
        free(m->tok_emb);
        m->tok_emb = NULL;
    }
    TRY(read_plain(ck, "model.norm.weight", 1, c->dim, 0, m->final_norm));
    size_t maxw = 0;
    for (int p = 0; p < MSBNB_PROJ_COUNT; p++) {
        int64_t o, in;
        msbnb__llama_proj_shape(c, (msbnb_proj)p, &o, &in);
        if ((size_t)(o * in) > maxw) maxw = (size_t)(o * in);
    }
    if (!c->tied && (size_t)c->vocab_size * (size_t)c->dim > maxw) maxw = (size_t)c->vocab_size * (size_t)c->dim;
    const size_t max_out = (size_t)(c->hidden_dim > c->dim ? c->hidden_dim : c->dim) +
                           (size_t)msbnb__llama_q_dim(c);
    float *buf = (float *)malloc(maxw * sizeof(float)), *bias_buf = (float *)malloc(max_out * sizeof(float));
    if (!buf || !bias_buf) {
        free(buf);
        free(bias_buf);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "weight buffer");
    }
    msbnb_status st = MSBNB_OK;
    char name[128];
    for (int l = 0; st == MSBNB_OK && l < c->n_layers; l++) {
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
        st = read_plain(ck, name, 1, c->dim, 0, m->layers[l].attn_norm);
        if (st != MSBNB_OK) break;
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        st = read_plain(ck, name, 1, c->dim, 0, m->layers[l].ffn_norm);
        if (st == MSBNB_OK && c->qk_norm) {
            snprintf(name, sizeof name, "model.layers.%d.self_attn.q_norm.weight", l);
            st = read_plain(ck, name, 1, c->head_dim, 0, m->layers[l].q_norm);
            snprintf(name, sizeof name, "model.layers.%d.self_attn.k_norm.weight", l);
            if (st == MSBNB_OK) st = read_plain(ck, name, 1, c->head_dim, 0, m->layers[l].k_norm);
        }
        for (int p = 0; st == MSBNB_OK && p < MSBNB_PROJ_COUNT; p++)
            st = load_proj(m, ck, l, (msbnb_proj)p, buf, bias_buf);
    }
    if (st == MSBNB_OK && !c->tied) {
        st = read_table(ck, "lm_head.weight", c, buf, &m->head16, &m->head_dtype);
        if (st == MSBNB_OK && !m->head16)
            st = msbnb_linear_create_from_weights(buf, NULL, c->dim, c->vocab_size, &m->output);
    }
    if (st == MSBNB_OK) st = msbnb__llama_finish_head(m);
    free(buf);
    free(bias_buf);
    return st;
}

/* config.json against the tensors, before anything is allocated from it (a config whose sizes
 * are at the limits would otherwise ask for hundreds of GB first): the embedding is [vocab, dim],
 * and the layers present are exactly 0..n_layers-1 (a config with fewer layers than the
 * checkpoint used to load the first ones silently). One pass over the names. */
static msbnb_status check_config(const msbnb_checkpoint *ck, const msbnb_model_config *c, const char *dir) {
    msbnb_tensor_info t;
    msbnb_status st = msbnb_checkpoint_find(ck, "model.embed_tokens.weight", &t);
    RETURN_IF(st == MSBNB_ERR_NOT_FOUND, MSBNB_ERR_FORMAT, "%s: checkpoint has no tensor 'model.embed_tokens.weight'",
              dir);
    TRY(st);
    RETURN_IF(t.ndim != 2 || t.shape[0] != c->vocab_size || t.shape[1] != c->dim, MSBNB_ERR_SHAPE,
              "%s: model.embed_tokens.weight is [%lld, %lld] but config.json says vocab_size %d, hidden_size %d", dir,
              (long long)t.shape[0], (long long)(t.ndim > 1 ? t.shape[1] : 0), c->vocab_size, c->dim);
    long long layers = 0; /* 1 + the highest layer index named */
    size_t n = msbnb_checkpoint_count(ck);
    for (size_t i = 0; i < n; i++) {
        TRY(msbnb_checkpoint_get(ck, i, &t));
        if (strncmp(t.name, "model.layers.", 13)) continue;
        const char *d = t.name + 13;
        long long l = 0;
        int digits = 0;
        for (; *d >= '0' && *d <= '9' && digits < 10; d++, digits++) l = l * 10 + (*d - '0');
        if (digits && *d == '.' && l + 1 > layers) layers = l + 1;
    }
    RETURN_IF(layers != c->n_layers, MSBNB_ERR_FORMAT,
              "%s: config.json says num_hidden_layers %d but the checkpoint has layers 0..%lld", dir, c->n_layers,
              layers - 1);
    return MSBNB_OK;
}

/* The model config from config.json j, checked against ck's tensors. */
static msbnb_status config_of(const msbnb_checkpoint *ck, const msbnb_config *j, const char *dir, msbnb_model_config *c) {
    const char *json = msbnb_config_json(j);
    TRY(msbnb__llama_config_from_json(json, strlen(json), c));
    /* A checkpoint with lm_head.weight but tie_word_embeddings absent: transformers' default for
     * Llama is untied; without lm_head, tie. */
    msbnb_tensor_info t;
    if (!c->tied && msbnb_checkpoint_find(ck, "lm_head.weight", &t) == MSBNB_ERR_NOT_FOUND &&
        !msbnb_config_has(j, "tie_word_embeddings"))
        c->tied = 1;
    return check_config(ck, c, dir);
}

msbnb_status msbnb__llama_config_from_checkpoint(const msbnb_checkpoint *ck, const char *path, msbnb_model_config *c) {
    const msbnb_config *j = msbnb_checkpoint_config(ck);
    RETURN_IF(!j, MSBNB_ERR_FORMAT, "%s: no config.json beside the weights", path);
    return config_of(ck, j, path, c);
}

msbnb_status msbnb__llama_read_plain(const msbnb_checkpoint *ck, const char *name, int ndim, int64_t d0, int64_t d1,
                                     float *dst) {
    return read_plain(ck, name, ndim, d0, d1, dst);
}

msbnb_status msbnb__llama_load_hf(const char *dir, const msbnb_model_params *params, msbnb_model **out) {
    RETURN_IF(!dir || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    msbnb_checkpoint *ck = NULL;
    TRY(msbnb_checkpoint_open(dir, &ck));
    const msbnb_config *j = msbnb_checkpoint_config(ck);
    msbnb_config *beside = NULL; /* a .safetensors file given directly: the config.json next to it */
    msbnb_status st = MSBNB_OK;
    if (!j) {
        size_t n = strlen(dir);
        char *cfg_path = (char *)malloc(n + 16);
        if (cfg_path) {
            memcpy(cfg_path, dir, n + 1);
            char *slash = strrchr(cfg_path, '/');
            if (slash) strcpy(slash + 1, "config.json");
            else strcpy(cfg_path, "config.json");
            struct stat sb;
            if (stat(cfg_path, &sb) == 0 && S_ISREG(sb.st_mode)) st = msbnb_config_open(cfg_path, &beside);
            free(cfg_path);
        }
        j = beside;
    }
    if (st == MSBNB_OK && !j) st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: no config.json beside the weights", dir);
    msbnb_model_config c;
    msbnb_tensor_info t;
    if (st == MSBNB_OK) st = config_of(ck, j, dir, &c);
    msbnb_model *m = NULL;
    if (st == MSBNB_OK) st = msbnb__llama_alloc(&c, params, &m);
    int in8 = 0;
    double thr = 0.0;
    if (st == MSBNB_OK &&
        ((msbnb_config_get_bool(j, "quantization_config.load_in_8bit", &in8) == MSBNB_OK && in8) ||
         (msbnb_config_get_bool(j, "quantization_config._load_in_8bit", &in8) == MSBNB_OK && in8)) &&
        msbnb_config_get_double(j, "quantization_config.llm_int8_threshold", &thr) == MSBNB_OK && thr >= 0.0 &&
        thr < 1e30)
        m->stored_int8_threshold = (float)thr;
    if (st == MSBNB_OK) st = load_weights(m, ck);
    if (st == MSBNB_OK && msbnb_checkpoint_find(ck, "model.embed_tokens.weight", &t) == MSBNB_OK)
        m->src_dtype = t.dtype == MSBNB_ST_BF16 ? MSBNB_DTYPE_BF16 : t.dtype == MSBNB_ST_F16 ? MSBNB_DTYPE_F16 : MSBNB_DTYPE_F32;
    if (st == MSBNB_OK) {
        const char *json = msbnb_config_json(j);
        m->src_config = (char *)malloc(strlen(json) + 1);
        if (!m->src_config) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "config text");
        else strcpy(m->src_config, json);
    }
    msbnb_checkpoint_close(ck);
    msbnb_config_free(beside);
    if (st != MSBNB_OK) {
        msbnb_model_free(m);
        return st;
    }
    *out = m;
    return MSBNB_OK;
}
