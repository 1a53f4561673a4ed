/*
 * load_hf.c — Hugging Face LlamaForCausalLM checkpoints (a directory with config.json and
 * model.safetensors, possibly sharded), through io.h.
 *
 * Tensor names (transformers' modeling_llama):
 *   model.embed_tokens.weight                       [vocab, dim]
 *   model.layers.L.input_layernorm.weight           [dim]
 *   model.layers.L.self_attn.{q,k,v,o}_proj.weight  [out, in]  (q/k rows already in rotate_half order)
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

#include <msbnb/io.h>

#include "model/llama_internal.h"

/* Read a plain tensor that must have exactly the given shape (ndim 1 or 2) into dst. */
msbnb_status msbnb__llama_read_plain(const msbnb_checkpoint *ck, const char *name, int ndim, int64_t d0, int64_t d1,
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
    return msbnb_tensor_to_f32(&t, dst);
}

/* Projection p of layer l from the checkpoint, honouring m->params (see model.h). */
static msbnb_status load_proj(msbnb_model *m, const msbnb_checkpoint *ck, int l, msbnb_proj p, float *buf) {
    char name[128];
    snprintf(name, sizeof name, "model.layers.%d.%s.%s.weight", l, p <= MSBNB_PROJ_O ? "self_attn" : "mlp",
             msbnb_proj_name(p));
    int64_t out, in;
    msbnb__llama_proj_shape(&m->cfg, p, &out, &in);
    msbnb_qtype qt = MSBNB_QTYPE_NONE;
    msbnb_status st = msbnb_bnb_detect(ck, name, &qt);
    RETURN_IF(st == MSBNB_ERR_NOT_FOUND, MSBNB_ERR_FORMAT, "checkpoint has no tensor '%s'", name);
    TRY(st);
    if (qt == MSBNB_QTYPE_NONE) {
        TRY(msbnb__llama_read_plain(ck, name, 2, out, in, buf));
        return msbnb__llama_set_proj_f32(m, l, p, buf);
    }
    msbnb_qtensor *q = NULL;
    TRY(msbnb_bnb_read(ck, name, &q));
    msbnb_qtensor_view v;
    st = msbnb_qtensor_get_view(q, &v);
    if (st == MSBNB_OK && (v.rows != out || v.cols != in))
        st = MSBNB_FAIL(MSBNB_ERR_SHAPE, "quantized '%s' is [%lld, %lld], expected [%lld, %lld]", name,
                        (long long)v.rows, (long long)v.cols, (long long)out, (long long)in);
    if (st == MSBNB_OK && m->params.quant == MSBNB_QTYPE_NONE) {
        /* Keep the checkpoint's own format: the layer takes ownership of q on success. */
        msbnb_linear *lin = NULL;
        st = msbnb_linear_from_qtensor(q, NULL, &lin);
        if (st == MSBNB_OK) {
            msbnb_linear_free(m->layers[l].proj[p]);
            m->layers[l].proj[p] = lin;
            return MSBNB_OK;
        }
    } else if (st == MSBNB_OK) {
        /* Another format was asked for: dequantize, then quantize as requested. */
        st = msbnb_dequantize(q, buf);
        if (st == MSBNB_OK) st = msbnb__llama_set_proj_f32(m, l, p, buf);
    }
    msbnb_qtensor_free(q);
    return st;
}

static msbnb_status load_weights(msbnb_model *m, const msbnb_checkpoint *ck) {
    const msbnb_model_config *c = &m->cfg;
    TRY(msbnb__llama_read_plain(ck, "model.embed_tokens.weight", 2, c->vocab_size, c->dim, m->tok_emb));
    TRY(msbnb__llama_read_plain(ck, "model.norm.weight", 1, c->dim, 0, m->final_norm));
    size_t maxw = 0;
    for (int p = 0; p < MSBNB_PROJ_COUNT; p++) {
        int64_t o, in;
        msbnb__llama_proj_shape(c, (msbnb_proj)p, &o, &in);
        if ((size_t)(o * in) > maxw) maxw = (size_t)(o * in);
    }
    if (!c->tied && (size_t)c->vocab_size * (size_t)c->dim > maxw) maxw = (size_t)c->vocab_size * (size_t)c->dim;
    float *buf = (float *)malloc(maxw * sizeof(float));
    RETURN_IF(!buf, MSBNB_ERR_OUT_OF_MEMORY, "weight buffer");
    msbnb_status st = MSBNB_OK;
    char name[128];
    for (int l = 0; st == MSBNB_OK && l < c->n_layers; l++) {
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
        st = msbnb__llama_read_plain(ck, name, 1, c->dim, 0, m->layers[l].attn_norm);
        if (st != MSBNB_OK) break;
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        st = msbnb__llama_read_plain(ck, name, 1, c->dim, 0, m->layers[l].ffn_norm);
        for (int p = 0; st == MSBNB_OK && p < MSBNB_PROJ_COUNT; p++) st = load_proj(m, ck, l, (msbnb_proj)p, buf);
    }
    if (st == MSBNB_OK && !c->tied) {
        st = msbnb__llama_read_plain(ck, "lm_head.weight", 2, c->vocab_size, c->dim, buf);
        if (st == MSBNB_OK) st = msbnb_linear_create_from_weights(buf, NULL, c->dim, c->vocab_size, &m->output);
    }
    free(buf);
    return st;
}

msbnb_status msbnb__llama_config_from_checkpoint(const msbnb_checkpoint *ck, const char *path, msbnb_model_config *c) {
    const msbnb_config *j = msbnb_checkpoint_config(ck);
    RETURN_IF(!j, MSBNB_ERR_FORMAT, "%s: no config.json beside the weights", path);
    const char *json = msbnb_config_json(j);
    TRY(msbnb__llama_config_from_json(json, strlen(json), c));
    /* A checkpoint with lm_head.weight but tie_word_embeddings absent: transformers' default for
     * Llama is untied; without lm_head, tie. */
    msbnb_tensor_info t;
    if (!c->tied && msbnb_checkpoint_find(ck, "lm_head.weight", &t) == MSBNB_ERR_NOT_FOUND &&
        !msbnb_config_has(j, "tie_word_embeddings"))
        c->tied = 1;
    return MSBNB_OK;
}

msbnb_status msbnb__llama_load_hf(const char *dir, const msbnb_model_params *params, msbnb_model **out) {
    RETURN_IF(!dir || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    msbnb_checkpoint *ck = NULL;
    TRY(msbnb_checkpoint_open(dir, &ck));
    msbnb_model_config c;
    msbnb_status st = msbnb__llama_config_from_checkpoint(ck, dir, &c);
    msbnb_model *m = NULL;
    if (st == MSBNB_OK) st = msbnb__llama_alloc(&c, params, &m);
    if (st == MSBNB_OK) st = load_weights(m, ck);
    msbnb_checkpoint_close(ck);
    if (st != MSBNB_OK) {
        msbnb_model_free(m);
        return st;
    }
    *out = m;
    return MSBNB_OK;
}
