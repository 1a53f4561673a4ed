/*
 * embed.c — the token embedding and the output layer (lm_head) in the checkpoint's own dtype.
 *
 * A bf16/fp16 checkpoint's embedding [vocab, dim] and untied head stay in 16 bits (half the
 * memory of fp32; on a 0.5B model with a 32K vocabulary that is most of what is not a
 * projection). Rows of the embedding are converted when looked up; the logits x·Wᵀ of a 16-bit
 * head are computed in tiles: HEAD_TILE rows of W converted to fp32 in a per-thread scratch, then
 * dot products in fp32 with a fixed summation order, so the result does not depend on the thread
 * count. --quant-head int8|nf4 replaces either by a quantized layer (model->output).
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "model/llama_internal.h"

#define HEAD_TILE 64 /* rows of W per converted tile: HEAD_TILE·dim floats stay in L2 */

static void half_to_f32(const uint16_t *src, msbnb_dtype dt, size_t n, float *dst) {
    if (dt == MSBNB_DTYPE_F16) msbnb_f16_to_f32_array(src, dst, n);
    else msbnb_bf16_to_f32_array(src, dst, n);
}

void msbnb__llama_embed(const msbnb_model *m, const int32_t *tokens, int64_t n, float *x) {
    const size_t dim = (size_t)m->cfg.dim;
    for (int64_t t = 0; t < n; t++) {
        const size_t row = (size_t)tokens[t] * dim;
        if (m->tok_emb) memcpy(x + (size_t)t * dim, m->tok_emb + row, sizeof(float) * dim);
        else half_to_f32(m->tok_emb16 + row, m->emb_dtype, dim, x + (size_t)t * dim);
    }
}

msbnb_status msbnb__llama_embedding_f32(const msbnb_model *m, float *dst) {
    const size_t n = (size_t)m->cfg.vocab_size * (size_t)m->cfg.dim;
    if (m->tok_emb) memcpy(dst, m->tok_emb, n * sizeof(float));
    else half_to_f32(m->tok_emb16, m->emb_dtype, n, dst);
    return MSBNB_OK;
}

msbnb_status msbnb__llama_head_f32(const msbnb_model *m, float *dst) {
    const size_t n = (size_t)m->cfg.vocab_size * (size_t)m->cfg.dim;
    if (m->output) return msbnb_linear_get_weight_f32(m->output, dst);
    if (m->head16) {
        half_to_f32(m->head16, m->head_dtype, n, dst);
        return MSBNB_OK;
    }
    RETURN_IF(!m->cfg.tied, MSBNB_ERR_INTERNAL, "untied model without an output layer");
    return msbnb__llama_embedding_f32(m, dst);
}

/* Y [n, V] = X [n, D] · Wᵀ, W [V, D] in 16-bit dt. scratch: [msbnb__threads(), HEAD_TILE, D]. */
static void half_product(const uint16_t *W, msbnb_dtype dt, int64_t V, int64_t D, const float *X, int64_t n,
                         float *scratch, int slots, float *Y) {
    const int64_t tiles = (V + HEAD_TILE - 1) / HEAD_TILE;
    int nt = msbnb__threads();
    if (nt > slots) nt = slots;
#pragma omp parallel for num_threads(nt) schedule(static) if (tiles > 1 && nt > 1)
    for (int64_t tile = 0; tile < tiles; tile++) {
        const int slot = omp_get_thread_num();
        float *w = scratch + (size_t)slot * HEAD_TILE * (size_t)D;
        const int64_t v0 = tile * HEAD_TILE, rows = V - v0 < HEAD_TILE ? V - v0 : HEAD_TILE;
        half_to_f32(W + (size_t)v0 * (size_t)D, dt, (size_t)(rows * D), w);
        for (int64_t t = 0; t < n; t++) {
            const float *x = X + t * D;
            for (int64_t r = 0; r < rows; r++) {
                const float *wr = w + r * D;
                /* eight partial sums, added in a fixed order */
                float acc[8] = {0};
                int64_t i = 0;
                for (; i + 8 <= D; i += 8)
                    for (int j = 0; j < 8; j++) acc[j] += x[i + j] * wr[i + j];
                float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
                for (; i < D; i++) s += x[i] * wr[i];
                Y[t * V + v0 + r] = s;
            }
        }
    }
}

size_t msbnb__llama_head_scratch_floats(const msbnb_model_config *c, int slots) {
    return (size_t)slots * HEAD_TILE * (size_t)c->dim;
}

msbnb_status msbnb__llama_logits(msbnb_model *m, const float *x, int64_t rows, float *logits) {
    const msbnb_model_config *c = &m->cfg;
    if (m->output) return msbnb_linear_forward(m->output, x, rows, logits);
    const uint16_t *w16 = c->tied ? m->tok_emb16 : m->head16;
    if (!w16) {
        RETURN_IF(!c->tied || !m->tok_emb, MSBNB_ERR_INTERNAL, "model without an output layer");
        return msbnb_matmul_f32(m->tok_emb, c->vocab_size, c->dim, x, rows, NULL, logits);
    }
    RETURN_IF(!m->head_scratch, MSBNB_ERR_INTERNAL, "no scratch for the 16-bit output layer");
    half_product(w16, c->tied ? m->emb_dtype : m->head_dtype, c->vocab_size, c->dim, x, rows, m->head_scratch,
                 m->head_slots, logits);
    return MSBNB_OK;
}

msbnb_status msbnb__llama_finish_head(msbnb_model *m) {
    const msbnb_model_config *c = &m->cfg;
    const msbnb_qtype hq = m->params.head_quant;
    if (hq != MSBNB_QTYPE_NONE) {
        /* --quant-head: the output layer quantized from its fp32 values (tied: a quantized copy of
         * the embedding, which stays as it is for the lookups) */
        float *w = (float *)malloc(sizeof(float) * (size_t)c->vocab_size * (size_t)c->dim);
        RETURN_IF(!w, MSBNB_ERR_OUT_OF_MEMORY, "output layer");
        msbnb_status st = msbnb__llama_head_f32(m, w);
        msbnb_linear *lin = NULL;
        if (st == MSBNB_OK && hq == MSBNB_QTYPE_INT8) {
            msbnb_linear8bit_params ip = msbnb_linear8bit_params_default();
            ip.has_fp16_weights = 0;
            ip.threshold = 0.0f;
            st = msbnb_linear8bit_create_from_weights(w, NULL, c->dim, c->vocab_size, &ip, &lin);
        } else if (st == MSBNB_OK) {
            msbnb_quant_config qc = msbnb_quant_config_default(hq);
            st = msbnb_linear4bit_create_from_weights(w, NULL, c->dim, c->vocab_size, &qc, &lin);
        }
        free(w);
        TRY(st);
        msbnb_linear_free(m->output);
        m->output = lin;
        free(m->head16);
        m->head16 = NULL;
        return MSBNB_OK;
    }
    const int half_head = m->head16 || (c->tied && !m->tok_emb);
    if (half_head && !m->head_scratch) {
        m->head_slots = msbnb__threads();
        m->head_scratch = (float *)malloc(sizeof(float) * msbnb__llama_head_scratch_floats(c, m->head_slots));
        RETURN_IF(!m->head_scratch, MSBNB_ERR_OUT_OF_MEMORY, "output layer scratch");
    }
    return MSBNB_OK;
}
