/*
 * linear_quant.c — layers over quantized weights: the seed's Linear8bit (training mode with fp32
 * weights, then quantize_weights() to INT8 once) and Linear4bit (INT4 / NF4 / FP4, optionally
 * double-quantized), and layers wrapped around an existing msbnb_qtensor.
 *
 * The quantized weight is an msbnb_qtensor with rows = out_features, cols = in_features (quant.h
 * documents every format); the forward reads it through the fused products of kernels.h.
 */
#include <stdlib.h>
#include <string.h>

#include "nn/nn_internal.h"
#include "quant/qtensor_internal.h"

msbnb_quant_config msbnb__config_of_qtensor(const msbnb_qtensor *q) {
    const msbnb_qtensor_view *v = &q->v;
    msbnb_quant_config c = msbnb_quant_config_default(v->type);
    c.type = v->type;
    if (v->blocksize > 0) c.blocksize = v->blocksize;
    if (v->group_size > 0) c.group_size = v->group_size;
    c.double_quant = v->double_quant;
    if (v->nested_blocksize > 0) c.nested_blocksize = v->nested_blocksize;
    c.asymmetric = v->asymmetric;
    c.per_row = v->per_row;
    c.threshold = v->threshold;
    c.code = NULL;
    return c;
}

/* ================================================================ Linear8bit */

msbnb_linear8bit_params msbnb_linear8bit_params_default(void) {
    msbnb_linear8bit_params p;
    memset(&p, 0, sizeof p);
    p.has_bias = 1;
    p.has_fp16_weights = 1;
    p.asymmetric = 0;
    p.per_row = 1;
    p.threshold = 6.0f;
    p.seed = 0;
    return p;
}

static msbnb_status create_8bit(const float *w, const float *bias, int64_t in, int64_t out,
                                const msbnb_linear8bit_params *pp, msbnb_linear **out_l) {
    RETURN_IF(!out_l, MSBNB_ERR_INVALID_ARG, "out is NULL");
    *out_l = NULL;
    msbnb_linear8bit_params p = pp ? *pp : msbnb_linear8bit_params_default();
    RETURN_IF(!(p.threshold >= 0.0f), MSBNB_ERR_INVALID_ARG, "threshold %g must be >= 0", (double)p.threshold);
    msbnb_linear *l = NULL;
    int has_bias = w ? (bias != NULL) : (p.has_bias != 0);
    TRY(msbnb__linear_create_f32_kind(MSBNB_LINEAR_INT8, w, bias, has_bias, in, out, p.seed, &l));
    l->qcfg = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
    l->qcfg.asymmetric = p.asymmetric ? 1 : 0;
    l->qcfg.per_row = p.per_row ? 1 : 0;
    l->qcfg.threshold = p.threshold;
    if (!p.has_fp16_weights) {
        msbnb_status st = msbnb_linear_quantize_weights(l);
        if (st != MSBNB_OK) {
            msbnb_linear_free(l);
            return st;
        }
    }
    *out_l = l;
    return MSBNB_OK;
}

msbnb_status msbnb_linear8bit_create(int64_t in_features, int64_t out_features, const msbnb_linear8bit_params *p,
                                     msbnb_linear **out) {
    return create_8bit(NULL, NULL, in_features, out_features, p, out);
}

msbnb_status msbnb_linear8bit_create_from_weights(const float *w, const float *bias, int64_t in_features,
                                                  int64_t out_features, const msbnb_linear8bit_params *p,
                                                  msbnb_linear **out) {
    RETURN_IF(!w, MSBNB_ERR_INVALID_ARG, "w is NULL");
    return create_8bit(w, bias, in_features, out_features, p, out);
}

/* The seed's "FP16 -> INT8" switch: quantize, drop the fp32 weight and its gradient, freeze. */
msbnb_status msbnb_linear_quantize_weights(msbnb_linear *l) {
    RETURN_IF(!l, MSBNB_ERR_INVALID_ARG, "layer is NULL");
    RETURN_IF(l->kind != MSBNB_LINEAR_INT8, MSBNB_ERR_INVALID_ARG, "not an INT8 layer (kind %s)",
              msbnb_linear_kind_name(l->kind));
    RETURN_IF(!l->w, MSBNB_ERR_INVALID_ARG, "weights are already quantized");
    RETURN_IF(l->merged >= 0, MSBNB_ERR_INVALID_ARG, "an adapter is merged: unmerge first");
    msbnb_qtensor *q = NULL;
    TRY(msbnb_quantize(l->w, l->out, l->in, &l->qcfg, &q));
    l->q = q;
    msbnb__free_aligned(l->w);
    msbnb__free_aligned(l->dw);
    free(l->dbias);
    l->w = l->dw = l->dbias = NULL;
    l->frozen = 1;
    return MSBNB_OK;
}

/* ================================================================ Linear4bit */

static msbnb_status check_4bit_config(const msbnb_quant_config *cfg) {
    RETURN_IF(cfg->type != MSBNB_QTYPE_INT4 && cfg->type != MSBNB_QTYPE_NF4 && cfg->type != MSBNB_QTYPE_FP4,
              MSBNB_ERR_INVALID_ARG, "type %s is not a 4-bit format (int4, nf4, fp4)", msbnb_qtype_name(cfg->type));
    return MSBNB_OK;
}

msbnb_status msbnb_linear4bit_create_from_weights(const float *w, const float *bias, int64_t in_features,
                                                  int64_t out_features, const msbnb_quant_config *cfg,
                                                  msbnb_linear **out) {
    RETURN_IF(!w || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    msbnb_quant_config c = cfg ? *cfg : msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    TRY(check_4bit_config(&c));
    msbnb_linear *l = NULL;
    TRY(msbnb__linear_alloc(MSBNB_LINEAR_4BIT, in_features, out_features, &l));
    msbnb_status st = msbnb_quantize(w, out_features, in_features, &c, &l->q);
    if (st == MSBNB_OK) st = msbnb__linear_set_bias(l, bias);
    if (st != MSBNB_OK) {
        msbnb_linear_free(l);
        return st;
    }
    l->frozen = 1;
    *out = l;
    return MSBNB_OK;
}

msbnb_status msbnb_linear4bit_from_linear(const msbnb_linear *src, const msbnb_quant_config *cfg, msbnb_linear **out) {
    RETURN_IF(!src || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(!src->w, MSBNB_ERR_INVALID_ARG, "source layer has no fp32 weights (kind %s, quantized)",
              msbnb_linear_kind_name(src->kind));
    return msbnb_linear4bit_create_from_weights(src->w, src->bias, src->in, src->out, cfg, out);
}

/* ================================================================ wrap a qtensor */

msbnb_status msbnb_linear_from_qtensor(msbnb_qtensor *q, const float *bias, msbnb_linear **out) {
    RETURN_IF(!q || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    msbnb_linear_kind kind;
    switch (q->v.type) {
    case MSBNB_QTYPE_INT8: kind = MSBNB_LINEAR_INT8; break;
    case MSBNB_QTYPE_INT4:
    case MSBNB_QTYPE_NF4:
    case MSBNB_QTYPE_FP4: kind = MSBNB_LINEAR_4BIT; break;
    default:
        return MSBNB_FAIL(MSBNB_ERR_INVALID_ARG, "a layer cannot hold a %s tensor", msbnb_qtype_name(q->v.type));
    }
    msbnb_linear *l = NULL;
    TRY(msbnb__linear_alloc(kind, q->v.cols, q->v.rows, &l));
    msbnb_status st = msbnb__linear_set_bias(l, bias);
    if (st != MSBNB_OK) {
        msbnb_linear_free(l); /* q not attached yet: the caller keeps it */
        return st;
    }
    if (kind == MSBNB_LINEAR_INT8) l->qcfg = msbnb__config_of_qtensor(q);
    l->q = q;
    l->frozen = 1;
    *out = l;
    return MSBNB_OK;
}
