/*
 * rope.c — rotary position embedding frequencies: the default RoPE and the scaled types of
 * transformers' modeling_rope_utils (linear, dynamic NTK, YaRN, Llama 3.1), parsed from config.json.
 *
 * transformers computes the frequencies and angles in fp32 tensors; the code below rounds at the
 * same points (exponent, power, reciprocal, angle = pos · inv_freq) so the tables agree with its
 * cos/sin to about an ulp, then takes cos/sin of the fp32 angle in double.
 *
 * Per type, with d = head_dim, i < d/2, b = rope_theta, f = factor:
 *   default  inv[i] = 1 / b^(2i/d)
 *   linear   inv[i] / f
 *   dynamic  b' = b · (f·S/M - (f - 1))^(d/(d-2)), S = max(seq_len, M), M = max_position_embeddings
 *   yarn     inv[i] = interp[i]·(1 - e[i]) + extrap[i]·e[i]: extrap = 1/b^(2i/d), interp = extrap/f,
 *            e = 1 - clamp((i - lo)/(hi - lo), 0, 1), lo/hi the dimensions where the wavelength turns
 *            beta_fast / beta_slow times over original_max_position_embeddings (floored/ceiled
 *            when truncate); cos and sin multiplied by the attention factor
 *   llama3   wavelength w = 2π/inv: w > O/low → inv/f; w < O/high → inv; between, a linear blend
 *            s = (O/w - low)/(high - low): (1 - s)·inv/f + s·inv (O = original_max_position_embeddings)
 */
#include <math.h>
#include <string.h>

#include "model/llama_internal.h"

#define PI_D 3.14159265358979323846

/* 1 / b^(2i/d) rounded as transformers' fp32 tensors are. */
static float base_inv_freq(double base, int i, int dim) {
    const float e = (float)(2 * i) / (float)dim;
    return 1.0f / (float)pow(base, (double)e);
}

static double yarn_correction_dim(double rotations, int dim, double base, double max_pos) {
    return (double)dim * log(max_pos / (rotations * 2.0 * PI_D)) / (2.0 * log(base));
}

void msbnb__rope_inv_freq(const msbnb_model_config *c, int64_t seq_len, float *inv_freq, float *scale) {
    const int dim = c->head_dim, half = dim / 2;
    const msbnb_rope_scaling *r = &c->rope;
    double base = c->rope_theta;
    *scale = 1.0f;
    switch (r->type) {
    case MSBNB_ROPE_LINEAR:
        for (int i = 0; i < half; i++) inv_freq[i] = base_inv_freq(base, i, dim) / r->factor;
        return;
    case MSBNB_ROPE_DYNAMIC: {
        const int64_t M = c->seq_len, S = seq_len > M ? seq_len : M;
        const float f = r->factor;
        const float grow = f * (float)S / (float)M - (f - 1.0f);
        const float b = (float)base * powf(grow, (float)dim / (float)(dim - 2));
        for (int i = 0; i < half; i++) inv_freq[i] = 1.0f / powf(b, (float)(2 * i) / (float)dim);
        return;
    }
    case MSBNB_ROPE_YARN: {
        const double f = r->factor, orig = (double)r->original_max_pos;
        double lo = yarn_correction_dim(r->beta_fast, dim, base, orig);
        double hi = yarn_correction_dim(r->beta_slow, dim, base, orig);
        if (r->truncate) {
            lo = floor(lo);
            hi = ceil(hi);
        }
        if (lo < 0) lo = 0;
        if (hi > dim - 1) hi = dim - 1;
        if (lo == hi) hi += 0.001;
        for (int i = 0; i < half; i++) {
            const float pos_freq = (float)pow(base, (double)((float)(2 * i) / (float)dim));
            const float extrap = 1.0f / pos_freq, interp = 1.0f / ((float)f * pos_freq);
            float ramp = (float)(((double)i - lo) / (hi - lo));
            ramp = ramp < 0.0f ? 0.0f : ramp > 1.0f ? 1.0f : ramp;
            const float e = 1.0f - ramp;
            inv_freq[i] = interp * (1.0f - e) + extrap * e;
        }
        *scale = r->attention_factor > 0.0f ? r->attention_factor : 1.0f;
        return;
    }
    case MSBNB_ROPE_LLAMA3: {
        const float f = r->factor, lowf = r->low_freq_factor, highf = r->high_freq_factor;
        const float O = (float)r->original_max_pos;
        const float low_wavelen = O / lowf, high_wavelen = O / highf;
        for (int i = 0; i < half; i++) {
            const float inv = base_inv_freq(base, i, dim);
            const float wavelen = (float)(2.0 * PI_D) / inv;
            float v = wavelen > low_wavelen ? inv / f : inv;
            if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
                const float s = (O / wavelen - lowf) / (highf - lowf);
                v = (1.0f - s) * v / f + s * v;
            }
            inv_freq[i] = v;
        }
        return;
    }
    case MSBNB_ROPE_DEFAULT:
    default:
        for (int i = 0; i < half; i++) inv_freq[i] = base_inv_freq(base, i, dim);
        return;
    }
}

void msbnb__rope_fill(const float *inv_freq, float scale, int half, int64_t pos0, int64_t n, float *cos_t,
                      float *sin_t) {
    for (int64_t t = 0; t < n; t++)
        for (int i = 0; i < half; i++) {
            const float angle = (float)(pos0 + t) * inv_freq[i];
            cos_t[t * half + i] = (float)cos((double)angle) * scale;
            sin_t[t * half + i] = (float)sin((double)angle) * scale;
        }
}

/* ================================================================ config.json */

static const char *const rope_names[] = {"default", "linear", "dynamic", "yarn", "llama3"};
#define ROPE_SUPPORTED "default, linear, dynamic, yarn, llama3"

/* A number of the rope dictionary `dict` (NOT_FOUND leaves *out; null counts as absent). */
static msbnb_status rope_num(const msbnb_config *j, const char *dict, const char *key, double *out) {
    char path[96];
    snprintf(path, sizeof path, "%s.%s", dict, key);
    msbnb_status st = msbnb_config_get_double(j, path, out);
    if (st == MSBNB_ERR_NOT_FOUND) return MSBNB_OK;
    RETURN_IF(st != MSBNB_OK, MSBNB_ERR_FORMAT, "config.json: '%s' is not a number", path);
    return MSBNB_OK;
}

msbnb_status msbnb__rope_from_json(const msbnb_config *j, msbnb_model_config *c) {
    memset(&c->rope, 0, sizeof c->rope);
    /* the dictionary: rope_scaling (older configs; transformers prefers it when both are set) or
     * rope_parameters (transformers >= 5); the type under "rope_type" or the older "type" */
    const char *dicts[] = {"rope_scaling", "rope_parameters"}, *keys[] = {"rope_type", "type"};
    const char *dict = NULL, *type = NULL;
    for (int d = 0; d < 2 && !type; d++)
        for (int k = 0; k < 2 && !type; k++) {
            char path[64];
            snprintf(path, sizeof path, "%s.%s", dicts[d], keys[k]);
            if (msbnb_config_get_string(j, path, &type) == MSBNB_OK) dict = dicts[d];
            else type = NULL;
        }
    double theta = 10000.0;
    /* rope_theta: top level (older configs) or inside rope_parameters */
    msbnb_status st = msbnb_config_get_double(j, "rope_theta", &theta);
    RETURN_IF(st != MSBNB_OK && st != MSBNB_ERR_NOT_FOUND, MSBNB_ERR_FORMAT, "config.json: 'rope_theta' is not a number");
    TRY(rope_num(j, "rope_parameters", "rope_theta", &theta));
    if (dict) TRY(rope_num(j, dict, "rope_theta", &theta));
    RETURN_IF(!(theta > 1.0 && theta < 1e12), MSBNB_ERR_FORMAT, "config.json: rope_theta %g out of range", theta);
    c->rope_theta = (float)theta;
    double partial = 1.0;
    st = msbnb_config_get_double(j, "partial_rotary_factor", &partial);
    if (dict) TRY(rope_num(j, dict, "partial_rotary_factor", &partial));
    RETURN_IF(partial != 1.0, MSBNB_ERR_UNSUPPORTED,
              "config.json: partial_rotary_factor %g is not supported (RoPE over the whole head only)", partial);
    if (!type) return MSBNB_OK;
    int t = -1;
    for (int i = 0; i < (int)(sizeof rope_names / sizeof rope_names[0]); i++)
        if (!strcmp(type, rope_names[i])) t = i;
    RETURN_IF(t < 0, MSBNB_ERR_UNSUPPORTED, "config.json: rope type '%s' is not supported (supported: " ROPE_SUPPORTED ")",
              type);
    msbnb_rope_scaling *r = &c->rope;
    r->type = (msbnb_rope_type)t;
    if (r->type == MSBNB_ROPE_DEFAULT) return MSBNB_OK;
    double factor = NAN, low = NAN, high = NAN, orig = (double)c->seq_len, beta_fast = 0, beta_slow = 0;
    double attn = NAN, mscale = 0, mscale_all = 0;
    TRY(rope_num(j, dict, "factor", &factor));
    TRY(rope_num(j, dict, "low_freq_factor", &low));
    TRY(rope_num(j, dict, "high_freq_factor", &high));
    TRY(rope_num(j, dict, "original_max_position_embeddings", &orig));
    /* transformers gives a top-level original_max_position_embeddings priority (Phi-3 style) */
    st = msbnb_config_get_double(j, "original_max_position_embeddings", &orig);
    TRY(rope_num(j, dict, "beta_fast", &beta_fast));
    TRY(rope_num(j, dict, "beta_slow", &beta_slow));
    TRY(rope_num(j, dict, "attention_factor", &attn));
    TRY(rope_num(j, dict, "mscale", &mscale));
    TRY(rope_num(j, dict, "mscale_all_dim", &mscale_all));
    RETURN_IF(!(orig >= 1.0 && orig <= (double)(1 << 24)), MSBNB_ERR_FORMAT,
              "config.json: original_max_position_embeddings %g out of range", orig);
    r->original_max_pos = (int)orig;
    if (r->type == MSBNB_ROPE_YARN && isnan(factor)) factor = (double)c->seq_len / orig;
    RETURN_IF(isnan(factor), MSBNB_ERR_FORMAT, "config.json: rope type '%s' needs a 'factor'", type);
    RETURN_IF(!(factor > 0.0 && factor < 1e6), MSBNB_ERR_FORMAT, "config.json: rope factor %g out of range", factor);
    r->factor = (float)factor;
    if (r->type == MSBNB_ROPE_LLAMA3) {
        RETURN_IF(isnan(low) || isnan(high), MSBNB_ERR_FORMAT,
                  "config.json: rope type 'llama3' needs low_freq_factor and high_freq_factor");
        RETURN_IF(!(low > 0.0 && high > low && high < 1e6), MSBNB_ERR_FORMAT,
                  "config.json: llama3 rope needs 0 < low_freq_factor < high_freq_factor (got %g, %g)", low, high);
        r->low_freq_factor = (float)low;
        r->high_freq_factor = (float)high;
    }
    if (r->type == MSBNB_ROPE_YARN) {
        r->beta_fast = beta_fast != 0.0 ? (float)beta_fast : 32.0f;
        r->beta_slow = beta_slow != 0.0 ? (float)beta_slow : 1.0f;
        RETURN_IF(!(r->beta_fast > 0.0f && r->beta_slow > 0.0f), MSBNB_ERR_FORMAT,
                  "config.json: yarn beta_fast/beta_slow must be > 0");
        int truncate = 1;
        char path[64];
        snprintf(path, sizeof path, "%s.truncate", dict);
        msbnb_config_get_bool(j, path, &truncate);
        r->truncate = truncate;
        if (isnan(attn)) {
            /* transformers: 0.1·m·ln(f) + 1 for f > 1 (else 1), m = mscale / mscale_all_dim when both */
            double num = factor <= 1.0 ? 1.0 : 0.1 * (mscale != 0 && mscale_all != 0 ? mscale : 1.0) * log(factor) + 1.0;
            double den = factor <= 1.0 || !(mscale != 0 && mscale_all != 0) ? 1.0 : 0.1 * mscale_all * log(factor) + 1.0;
            attn = num / den;
        }
        RETURN_IF(!(attn > 0.0 && attn < 1e3), MSBNB_ERR_FORMAT, "config.json: yarn attention_factor %g out of range",
                  attn);
        r->attention_factor = (float)attn;
    }
    return MSBNB_OK;
}
