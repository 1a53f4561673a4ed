/*
 * perplexity.c — mean negative log-likelihood of a text under the model.
 *
 * Protocol (the one of ../shared/models/stories260K/golden.json for tinystories_sample.txt):
 *   documents = text split on the separator, each strip()ped (ASCII whitespace), empty ones skipped;
 *   tokens = [BOS] + encode(document)   (dummy-prefix space, no EOS);
 *   scored: tokens 1..n-1, token j predicted from tokens 0..j-1.
 * Documents longer than the window (default: the context length) are scored in overlapping
 * windows: window w covers tokens [s_w, s_w + window) with s_w = w * stride and is run from
 * position 0 with a fresh cache; it scores only the targets not scored by earlier windows, so
 * every target beyond the first window sees at least window - stride tokens of context.
 * NLL uses log-softmax in double precision and sums in a fixed order (thread-count independent).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/llama_internal.h"

msbnb_ppl_params msbnb_ppl_params_default(void) {
    msbnb_ppl_params p;
    p.separator = "<|endoftext|>";
    p.window = 0;
    p.stride = 0;
    p.max_tokens = 0;
    return p;
}

/* -log softmax(row)[target], in double. */
static double nll_of(const float *row, int vocab, int target) {
    float mx = row[0];
    for (int i = 1; i < vocab; i++)
        if (row[i] > mx) mx = row[i];
    double sum = 0.0;
    for (int i = 0; i < vocab; i++) sum += exp((double)row[i] - mx);
    return log(sum) - ((double)row[target] - mx);
}

static int is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v'; }

typedef struct {
    msbnb_model *m;
    int window, stride;
    int64_t max_tokens;
    msbnb_ppl_result *r;
    float *logits; /* [batch_cap, vocab] */
} ppl_state;

/* Score targets from+1..to of tokens with the window starting at s: run tokens [s, to) from
 * position 0; the row of token j (position j - s) predicts target j + 1. */
static msbnb_status score_window(ppl_state *ps, const int32_t *tokens, int s, int from, int to) {
    msbnb_model *m = ps->m;
    const int V = m->cfg.vocab_size, B = m->batch_cap;
    for (int done = 0; s + done < to;) {
        const int chunk = (to - s - done < B) ? to - s - done : B;
        TRY(msbnb_model_forward(m, tokens + s + done, chunk, done, ps->logits, 1));
        for (int row = 0; row < chunk; row++) {
            const int target = s + done + row + 1; /* predicted by this row; always <= to */
            if (target <= from) continue;          /* context only: scored by an earlier window */
            if (ps->max_tokens > 0 && ps->r->n_tokens >= ps->max_tokens) return MSBNB_OK;
            ps->r->nll_sum += nll_of(ps->logits + (size_t)row * V, V, tokens[target]);
            ps->r->n_tokens++;
        }
        done += chunk;
    }
    return MSBNB_OK;
}

static msbnb_status score_document(ppl_state *ps, const int32_t *tokens, int n) {
    if (n < 2) return MSBNB_OK;
    ps->r->n_docs++;
    const int W = ps->window;
    if (n <= W) return score_window(ps, tokens, 0, 0, n - 1);
    int scored = 0; /* targets 1..scored are done */
    for (int s = 0; scored < n - 1; s += ps->stride) {
        int end = s + W < n ? s + W : n; /* tokens [s, end) are run: targets up to end - 1 */
        TRY(score_window(ps, tokens, s, scored, end - 1));
        scored = end - 1;
        if (ps->max_tokens > 0 && ps->r->n_tokens >= ps->max_tokens) break;
    }
    return MSBNB_OK;
}

msbnb_status msbnb_model_perplexity(msbnb_model *m, const msbnb_tokenizer *tok, const char *text, size_t len,
                                    const msbnb_ppl_params *params, msbnb_ppl_result *result) {
    RETURN_IF(!m || !tok || (!text && len) || !result, MSBNB_ERR_INVALID_ARG, "NULL argument");
    /* a model may have more rows than its tokenizer has ids (Phi-3: 32064 for 32011), never fewer */
    RETURN_IF(msbnb_tokenizer_vocab_size(tok) > m->cfg.vocab_size, MSBNB_ERR_SHAPE,
              "tokenizer has %d tokens, the model only %d rows", msbnb_tokenizer_vocab_size(tok), m->cfg.vocab_size);
    msbnb_ppl_params p = params ? *params : msbnb_ppl_params_default();
    RETURN_IF(p.window < 0 || p.stride < 0 || p.max_tokens < 0, MSBNB_ERR_INVALID_ARG, "negative window/stride");
    memset(result, 0, sizeof *result);
    ppl_state ps;
    ps.m = m;
    ps.window = (p.window == 0 || p.window > m->ctx_len) ? m->ctx_len : p.window;
    RETURN_IF(ps.window < 2, MSBNB_ERR_INVALID_ARG, "window %d too short", ps.window);
    ps.stride = p.stride == 0 ? ps.window / 2 : p.stride;
    if (ps.stride > ps.window - 1) ps.stride = ps.window - 1;
    ps.max_tokens = p.max_tokens;
    ps.r = result;
    ps.logits = m->logits;

    const char *sep = (p.separator && p.separator[0]) ? p.separator : NULL;
    const size_t sep_len = sep ? strlen(sep) : 0;
    int32_t *ids = NULL;
    size_t ids_cap = 0;
    msbnb_status st = MSBNB_OK;
    size_t at = 0;
    while (st == MSBNB_OK && at <= len) {
        /* next document: [at, end) */
        size_t end = len;
        if (sep) {
            for (size_t i = at; i + sep_len <= len; i++)
                if (text[i] == sep[0] && memcmp(text + i, sep, sep_len) == 0) {
                    end = i;
                    break;
                }
        }
        size_t a = at, b = end;
        while (a < b && is_space(text[a])) a++;
        while (b > a && is_space(text[b - 1])) b--;
        /* With max_tokens, only the start of a long document is scored: encode a prefix that ends
         * before a space (sentencepiece tokens never hold an interior space, so every token of the
         * prefix but possibly its last is the full text's), doubled until it yields two tokens more
         * than are scored. Keeps a 30 MB one-line text with --max-tokens 2000 at a few KB of work. */
        const size_t b_full = b;
        size_t guess = 0;
        if (p.max_tokens > 0 && b > a) {
            const int64_t want = p.max_tokens - result->n_tokens + 2;
            guess = want < (int64_t)(SIZE_MAX / 64) ? (size_t)want * 8 + 256 : b - a;
        }
    retry_prefix:
        if (guess > 0 && guess < b_full - a) {
            size_t cut = a + guess;
            while (cut > a && text[cut] != ' ') cut--;
            b = cut > a ? cut : b_full;
        } else {
            b = b_full;
        }
        if (b > a) {
            const size_t need = (b - a) + 3;
            if (need > ids_cap) {
                int32_t *nid = (int32_t *)realloc(ids, need * sizeof(int32_t));
                if (!nid) {
                    st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "token buffer of %zu", need);
                    break;
                }
                ids = nid;
                ids_cap = need;
            }
            if (need > (size_t)INT32_MAX) {
                st = MSBNB_FAIL(MSBNB_ERR_SHAPE, "document of %zu bytes", b - a);
                break;
            }
            int n = 0;
            st = msbnb_tokenizer_encode(tok, text + a, b - a, 1, 0, ids, (int)need, &n);
            if (st == MSBNB_OK && b < b_full && (int64_t)n < p.max_tokens - result->n_tokens + 3) {
                guess *= 2; /* too few tokens in the prefix: a longer one */
                goto retry_prefix;
            }
            if (st == MSBNB_OK) st = score_document(&ps, ids, n);
            if (p.max_tokens > 0 && result->n_tokens >= p.max_tokens) break;
        }
        if (end == len) break;
        at = end + sep_len;
    }
    free(ids);
    TRY(st);
    RETURN_IF(result->n_tokens == 0, MSBNB_ERR_NUMERIC, "no token was scored (empty text?)");
    result->mean_nll = result->nll_sum / (double)result->n_tokens;
    result->perplexity = exp(result->mean_nll);
    return MSBNB_OK;
}
