/*
 * load_llama2c.c — llama2.c "v0" checkpoints (Karpathy's llama2.c run.c / export.py legacy format).
 *
 * File layout (little-endian):
 *   int32 header[7]: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 *                    (vocab_size < 0: the classifier is stored separately, |vocab_size| is the size)
 *   float32 token_embedding [vocab, dim]
 *   float32 rms_att         [n_layers, dim]
 *   float32 wq              [n_layers, n_heads*head, dim]      head = dim / n_heads
 *   float32 wk, wv          [n_layers, n_kv_heads*head, dim]
 *   float32 wo              [n_layers, dim, n_heads*head]
 *   float32 rms_ffn         [n_layers, dim]
 *   float32 w1 (gate)       [n_layers, hidden, dim]
 *   float32 w2 (down)       [n_layers, dim, hidden]
 *   float32 w3 (up)         [n_layers, hidden, dim]
 *   float32 rms_final       [dim]
 *   float32 freq_cis_real, freq_cis_imag [seq_len, head/2]   (skipped: recomputed)
 *   float32 wcls            [vocab, dim]                       only when vocab_size < 0
 * The file length must equal exactly 28 bytes + 4 * (sum of the above).
 *
 * RoPE: llama2.c rotates adjacent pairs (2i, 2i+1) of each head; our model uses HF's rotate_half
 * (i, i + head/2). The two are the same rotation on permuted rows, so q and k rows are permuted at
 * load (HF's convert_llama_weights_to_hf.py permute): HF row h*head + p*head/2 + i = llama2.c row
 * h*head + 2i + p, for p in {0, 1}.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/llama_internal.h"

/* Read n floats at the current position. */
static msbnb_status read_floats(FILE *f, float *dst, size_t n, const char *path, const char *what) {
    RETURN_IF(fread(dst, sizeof(float), n, f) != n, MSBNB_ERR_FORMAT, "%s: truncated while reading %s", path, what);
    return MSBNB_OK;
}

/* dst [rows, cols] = src with q/k rows moved from adjacent-pair to rotate_half order. */
static void permute_rows(float *dst, const float *src, int n_heads, int head, int cols) {
    const int half = head / 2;
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < half; i++)
            for (int p = 0; p < 2; p++) {
                const float *s = src + ((size_t)h * head + 2 * (size_t)i + p) * cols;
                float *d = dst + ((size_t)h * head + (size_t)p * half + i) * cols;
                memcpy(d, s, sizeof(float) * (size_t)cols);
            }
}

/* Layer-major weight block (all layers of one projection) -> the model's projections. */
static msbnb_status load_proj_block(msbnb_model *m, FILE *f, const char *path, msbnb_proj p, float *buf,
                                    float *perm) {
    int64_t out, in;
    msbnb__llama_proj_shape(&m->cfg, p, &out, &in);
    const size_t per = (size_t)out * (size_t)in;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        TRY(read_floats(f, buf, per, path, msbnb_proj_name(p)));
        const float *w = buf;
        if (p == MSBNB_PROJ_Q || p == MSBNB_PROJ_K) {
            permute_rows(perm, buf, p == MSBNB_PROJ_Q ? m->cfg.n_heads : m->cfg.n_kv_heads, m->cfg.head_dim, (int)in);
            w = perm;
        }
        TRY(msbnb__llama_set_proj_f32(m, l, p, w));
    }
    return MSBNB_OK;
}

static msbnb_status load_body(msbnb_model *m, FILE *f, const char *path) {
    const msbnb_model_config *c = &m->cfg;
    const size_t dim = (size_t)c->dim, L = (size_t)c->n_layers;
    TRY(read_floats(f, m->tok_emb, (size_t)c->vocab_size * dim, path, "token_embedding"));
    for (size_t l = 0; l < L; l++) TRY(read_floats(f, m->layers[l].attn_norm, dim, path, "rms_att"));

    size_t maxw = 0;
    for (int p = 0; p < MSBNB_PROJ_COUNT; p++) {
        int64_t o, in;
        msbnb__llama_proj_shape(c, (msbnb_proj)p, &o, &in);
        if ((size_t)(o * in) > maxw) maxw = (size_t)(o * in);
    }
    float *buf = (float *)malloc(maxw * sizeof(float)), *perm = (float *)malloc(maxw * sizeof(float));
    msbnb_status st = (buf && perm) ? MSBNB_OK : MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "weight buffer");
    /* File order: wq wk wv wo | rms_ffn | w1 (gate) w2 (down) w3 (up). */
    static const msbnb_proj attn_order[4] = {MSBNB_PROJ_Q, MSBNB_PROJ_K, MSBNB_PROJ_V, MSBNB_PROJ_O};
    static const msbnb_proj mlp_order[3] = {MSBNB_PROJ_GATE, MSBNB_PROJ_DOWN, MSBNB_PROJ_UP};
    for (int i = 0; st == MSBNB_OK && i < 4; i++) st = load_proj_block(m, f, path, attn_order[i], buf, perm);
    for (size_t l = 0; st == MSBNB_OK && l < L; l++) st = read_floats(f, m->layers[l].ffn_norm, dim, path, "rms_ffn");
    for (int i = 0; st == MSBNB_OK && i < 3; i++) st = load_proj_block(m, f, path, mlp_order[i], buf, perm);
    if (st == MSBNB_OK) st = read_floats(f, m->final_norm, dim, path, "rms_final");
    /* freq_cis_real/imag: skip; our tables come from rope_theta. */
    if (st == MSBNB_OK && fseek(f, (long)((size_t)c->seq_len * (size_t)c->head_dim * sizeof(float)), SEEK_CUR) != 0)
        st = MSBNB_FAIL(MSBNB_ERR_IO, "%s: seek failed", path);
    if (st == MSBNB_OK && !c->tied) {
        float *wcls = (float *)malloc((size_t)c->vocab_size * dim * sizeof(float));
        if (!wcls) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "classifier");
        if (st == MSBNB_OK) st = read_floats(f, wcls, (size_t)c->vocab_size * dim, path, "wcls");
        if (st == MSBNB_OK) st = msbnb_linear_create_from_weights(wcls, NULL, c->dim, c->vocab_size, &m->output);
        free(wcls);
    }
    free(buf);
    free(perm);
    if (st == MSBNB_OK) st = msbnb__llama_finish_head(m);
    return st;
}

/* Total floats after the header, with overflow checks (sizes are bounded by the config check). */
static size_t expected_floats(const msbnb_model_config *c) {
    const size_t dim = (size_t)c->dim, L = (size_t)c->n_layers, V = (size_t)c->vocab_size;
    const size_t qd = (size_t)msbnb__llama_q_dim(c), kvd = (size_t)msbnb__llama_kv_dim(c), hid = (size_t)c->hidden_dim;
    size_t n = V * dim;                                 /* token embedding        */
    n += L * dim * 2;                                   /* rms_att, rms_ffn       */
    n += L * (qd * dim + 2 * kvd * dim + dim * qd);     /* wq wk wv wo            */
    n += L * 3 * hid * dim;                             /* w1 w2 w3               */
    n += dim;                                           /* rms_final              */
    n += (size_t)c->seq_len * (size_t)c->head_dim;      /* freq_cis real + imag   */
    if (!c->tied) n += V * dim;                         /* wcls                   */
    return n;
}

msbnb_status msbnb__llama_load_llama2c(const char *path, const msbnb_model_params *params, msbnb_model **out) {
    RETURN_IF(!path || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    RETURN_IF(!f, MSBNB_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    int32_t h[7];
    msbnb_status st = MSBNB_OK;
    long file_len = -1;
    if (fseek(f, 0, SEEK_END) == 0) file_len = ftell(f);
    if (file_len < 0 || fseek(f, 0, SEEK_SET) != 0) st = MSBNB_FAIL(MSBNB_ERR_IO, "%s: cannot determine size", path);
    else if (fread(h, sizeof(int32_t), 7, f) != 7)
        st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: %ld bytes, shorter than the 28-byte llama2.c header", path, file_len);
    msbnb_model_config c;
    memset(&c, 0, sizeof c);
    if (st == MSBNB_OK) {
        c.dim = h[0];
        c.hidden_dim = h[1];
        c.n_layers = h[2];
        c.n_heads = h[3];
        c.n_kv_heads = h[4];
        c.tied = h[5] > 0;
        c.vocab_size = (h[5] == INT32_MIN) ? -1 : (h[5] < 0 ? -h[5] : h[5]);
        c.seq_len = h[6];
        c.head_dim = 0; /* llama2.c: dim / n_heads */
        c.norm_eps = 1e-5f;
        c.rope_theta = 10000.0f;
        st = (c.n_kv_heads < 1 || c.vocab_size < 1) ? MSBNB_ERR_FORMAT : msbnb__llama_config_check(&c);
        if (st != MSBNB_OK)
            st = MSBNB_FAIL(st, "%s: bad llama2.c header (dim %d hidden %d layers %d heads %d kv_heads %d vocab %d "
                            "seq %d)", path, h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
    }
    if (st == MSBNB_OK) {
        const size_t want = 28 + 4 * expected_floats(&c);
        if ((size_t)file_len != want)
            st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: file has %ld bytes, header implies %zu", path, file_len, want);
    }
    msbnb_model *m = NULL;
    if (st == MSBNB_OK) st = msbnb__llama_alloc(&c, params, &m);
    if (st == MSBNB_OK) st = load_body(m, f, path);
    fclose(f);
    if (st != MSBNB_OK) {
        msbnb_model_free(m);
        return st;
    }
    *out = m;
    return MSBNB_OK;
}
