/*
 * calibrate_internal.h — pieces of the calibration-aware quantizer shared by calibrate.c and
 * awq.c (and the tests). model/ only.
 */
#ifndef MSBNB_MODEL_CALIBRATE_INTERNAL_H
#define MSBNB_MODEL_CALIBRATE_INTERNAL_H

#include <msbnb/calibrate.h>

#include "model/llama_internal.h"

/* Statistics of one input site over the calibration tokens. */
typedef struct msbnb__site_stats {
    int64_t cols;
    int64_t n;     /* rows of X summed                                        */
    double *h;     /* [cols, cols] XᵀX, or NULL when only the diagonal is kept */
    double *diag;  /* [cols] diagonal of XᵀX (always)                          */
} msbnb__site_stats;

/* The projections reading a site: first msbnb_proj and how many (q,k,v / o / gate,up / down). */
void msbnb__awq_site_projs(int site, int *first, int *count);

/* Fold scales s [site's cols] into the layer's fp32 weights w[p] [out, in] and norms (awq.c). */
void msbnb__awq_fold(const msbnb_model_config *c, int site, const float *s, float *const w[MSBNB_PROJ_COUNT],
                     float *attn_norm, float *ffn_norm);

/* Choose the site's AWQ scales for the selected projections (sel[p]) quantized with cfg and method
 * (the least output error of the method itself on the scaled weights and statistics):
 * s_out [cols] (all 1 when α = 0 wins), *alpha_out. When α > 0, ss is transformed to the statistics
 * of the scaled inputs. */
msbnb_status msbnb__awq_search(const msbnb_model_config *c, int site, const msbnb_quant_config *cfg,
                               const msbnb_quant_method *method, float *const w[MSBNB_PROJ_COUNT],
                               const int sel[MSBNB_PROJ_COUNT], msbnb__site_stats *ss, float *s_out, float *alpha_out);

#endif
