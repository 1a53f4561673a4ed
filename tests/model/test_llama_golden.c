/*
 * test_llama_golden.c — the fp32 forward against ../shared/models/stories260K/golden.json, an
 * independent float64 implementation of llama2.c's forward: prompt ids, top-5 logits at the last
 * prompt position, the first logits at position 0, 64 greedy tokens from BOS, perplexity on
 * tinystories_sample.txt. Also: the HF layout (q/k rows permuted for rotate_half) gives the same
 * logits as the llama2.c file, batched prefill equals token-by-token decoding, and results do not
 * depend on the thread count.
 */
#include <cjson/cJSON.h>

#include <msbnb/model.h>

#include "test.h"

#define MODEL_DIR MSBNB_SHARED_DIR "/models/stories260K"

static cJSON *golden;
static msbnb_model *bin_model;
static msbnb_model *hf_model;
static msbnb_tokenizer *tok;

static cJSON *jget(const char *a, const char *b) {
    cJSON *o = cJSON_GetObjectItemCaseSensitive(golden, a);
    return b ? cJSON_GetObjectItemCaseSensitive(o, b) : o;
}

/* Golden prompt ids into ids; returns the count (0 on error). */
static int golden_prompt(int32_t *ids, int cap) {
    cJSON *arr = jget("encode", "ids");
    int n = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (n < cap) ids[n] = (int32_t)e->valuedouble;
        n++;
    }
    return n <= cap ? n : 0;
}

TEST(prompt_ids) {
    const char *text = cJSON_GetStringValue(jget("encode", "text"));
    CHECK(text != NULL);
    if (!text) return;
    int32_t want[64], got[256];
    int nw = golden_prompt(want, 64), ng = 0;
    CHECK_OK(msbnb_tokenizer_encode(tok, text, strlen(text), 1, 0, got, 256, &ng));
    CHECK_EQ_INT(ng, nw);
    for (int i = 0; i < nw && i < ng; i++) CHECK_EQ_INT(got[i], want[i]);
}

/* Top-5 at the prompt's last position and the first 8 logits at position 0. */
static void check_logits(msbnb_model *m) {
    int32_t ids[64];
    int n = golden_prompt(ids, 64);
    CHECK(n > 1);
    float *logits = (float *)malloc(sizeof(float) * 512 * (size_t)n);
    CHECK_OK(msbnb_model_forward(m, ids, n, 0, logits, 1));
    const float *last = logits + (size_t)(n - 1) * 512;
    int rank = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, jget("logits_last_position_top5", NULL)) {
        int id = (int)cJSON_GetArrayItem(e, 0)->valuedouble;
        double v = cJSON_GetArrayItem(e, 1)->valuedouble;
        CHECK_NEAR(last[id], v, 1e-4);
        /* it is the rank-th largest: exactly `rank` logits exceed it */
        int above = 0;
        for (int i = 0; i < 512; i++) above += last[i] > last[id];
        CHECK_EQ_INT(above, rank);
        rank++;
    }
    CHECK_EQ_INT(rank, 5);
    int i = 0;
    cJSON_ArrayForEach(e, jget("logits_pos0_first8", NULL)) {
        CHECK_NEAR(logits[i], e->valuedouble, 1e-4);
        i++;
    }
    CHECK_EQ_INT(i, 8);
    free(logits);
}

TEST(logits_llama2c) { check_logits(bin_model); }
TEST(logits_hf) { check_logits(hf_model); }

/* The two layouts agree on every logit of the prompt (same fp32 arithmetic up to row order). */
TEST(hf_equals_llama2c) {
    int32_t ids[64];
    int n = golden_prompt(ids, 64);
    float *a = (float *)malloc(sizeof(float) * 512 * (size_t)n), *b = (float *)malloc(sizeof(float) * 512 * (size_t)n);
    CHECK_OK(msbnb_model_forward(bin_model, ids, n, 0, a, 1));
    CHECK_OK(msbnb_model_forward(hf_model, ids, n, 0, b, 1));
    double maxd = 0;
    for (size_t i = 0; i < 512 * (size_t)n; i++) maxd = fmax(maxd, fabs((double)a[i] - b[i]));
    CHECK_MSG_(maxd <= 1e-5, "max |llama2c - hf| = %g", maxd);
    free(a);
    free(b);
}

TEST(greedy_64_tokens) {
    /* golden: 64 ids, BOS included, i.e. 63 greedy steps */
    cJSON *arr = jget("greedy_from_bos_64_tokens", "ids");
    int want_n = cJSON_GetArraySize(arr);
    CHECK_EQ_INT(want_n, 64);
    int32_t bos = 1, out[128];
    int n = 0;
    msbnb_sampler_params sp = msbnb_sampler_params_default(); /* greedy */
    CHECK_OK(msbnb_model_generate(bin_model, &bos, 1, want_n - 1, &sp, NULL, NULL, out, 128, &n));
    CHECK_EQ_INT(n, want_n);
    for (int i = 0; i < n && i < want_n; i++) CHECK_EQ_INT(out[i], (int)cJSON_GetArrayItem(arr, i)->valuedouble);
    /* decoded text */
    char text[2048];
    size_t len = 0;
    for (int i = 1; i < n; i++) {
        const char *p;
        size_t l;
        CHECK_OK(msbnb_tokenizer_decode(tok, out[i - 1], out[i], &p, &l));
        if (len + l < sizeof text) {
            memcpy(text + len, p, l);
            len += l;
        }
    }
    text[len] = '\0';
    const char *want_text = cJSON_GetStringValue(jget("greedy_from_bos_64_tokens", "text"));
    CHECK(want_text && strcmp(text, want_text) == 0);
}

TEST(perplexity_sample) {
    size_t len = 0;
    char *text = (char *)test_read_file(MSBNB_SHARED_DIR "/data/tinystories_sample.txt", &len);
    CHECK(text != NULL);
    if (!text) return;
    msbnb_ppl_params pp = msbnb_ppl_params_default();
    msbnb_ppl_result r;
    CHECK_OK(msbnb_model_perplexity(bin_model, tok, text, len, &pp, &r));
    cJSON *g = jget("nll_tinystories_v2_sample_cs336", NULL);
    double ppl = cJSON_GetObjectItemCaseSensitive(g, "ppl")->valuedouble;
    double nll = cJSON_GetObjectItemCaseSensitive(g, "mean_nll_nats")->valuedouble;
    CHECK_EQ_INT(r.n_tokens, (int)cJSON_GetObjectItemCaseSensitive(g, "tokens_scored")->valuedouble);
    CHECK_EQ_INT(r.n_docs, (int)cJSON_GetObjectItemCaseSensitive(g, "stories")->valuedouble);
    CHECK_MSG_(fabs(r.perplexity / ppl - 1.0) <= 0.005, "ppl %.5f vs golden %.5f", r.perplexity, ppl);
    CHECK_NEAR(r.mean_nll, nll, 1e-4); /* golden rounds to 5 digits */
    printf("  fp32 ppl %.5f (golden %.5f), mean nll %.6f over %lld tokens\n", r.perplexity, ppl, r.mean_nll,
           (long long)r.n_tokens);
    /* Windowing: a window shorter than the stories gives a finite, somewhat higher perplexity. */
    pp.window = 64;
    pp.stride = 32;
    msbnb_ppl_result w;
    CHECK_OK(msbnb_model_perplexity(bin_model, tok, text, len, &pp, &w));
    CHECK_EQ_INT(w.n_tokens, r.n_tokens); /* every target scored exactly once */
    CHECK(w.perplexity >= r.perplexity * 0.99 && w.perplexity < r.perplexity * 1.5);
    free(text);
}

/* Token-by-token decoding through the cache equals one batched prefill, bit for bit or nearly
 * (the products see different row counts, so only summation order may differ). */
TEST(cache_equals_prefill) {
    int32_t ids[64];
    int n = golden_prompt(ids, 64);
    float *all = (float *)malloc(sizeof(float) * 512 * (size_t)n), one[512];
    CHECK_OK(msbnb_model_forward(bin_model, ids, n, 0, all, 1));
    double maxd = 0;
    for (int t = 0; t < n; t++) {
        CHECK_OK(msbnb_model_forward(bin_model, ids + t, 1, t, one, 0));
        for (int i = 0; i < 512; i++) maxd = fmax(maxd, fabs((double)one[i] - all[(size_t)t * 512 + i]));
    }
    CHECK_MSG_(maxd <= 2e-5, "max |cached - prefill| = %g", maxd);
    /* last-only output equals the last row (the output product sees 1 row instead of n) */
    CHECK_OK(msbnb_model_forward(bin_model, ids, n, 0, one, 0));
    maxd = 0;
    for (int i = 0; i < 512; i++) maxd = fmax(maxd, fabs((double)one[i] - all[(size_t)(n - 1) * 512 + i]));
    CHECK_MSG_(maxd <= 1e-5, "max |last-only - all| = %g", maxd);
    free(all);
}

TEST(thread_invariance) {
    int32_t ids[64];
    int n = golden_prompt(ids, 64);
    float *ref = (float *)malloc(sizeof(float) * 512 * (size_t)n), *got = (float *)malloc(sizeof(float) * 512 * (size_t)n);
    int saved = msbnb_get_num_threads();
    msbnb_set_num_threads(1);
    CHECK_OK(msbnb_model_forward(bin_model, ids, n, 0, ref, 1));
    for (int th = 2; th <= 3; th++) {
        msbnb_set_num_threads(th);
        CHECK_OK(msbnb_model_forward(bin_model, ids, n, 0, got, 1));
        CHECK_MSG_(memcmp(ref, got, sizeof(float) * 512 * (size_t)n) == 0, "threads %d differ from 1", th);
    }
    msbnb_set_num_threads(saved);
    free(ref);
    free(got);
}

TEST(sampling_seeded) {
    int32_t bos = 1, a[80], b[80], c[80];
    int na = 0, nb = 0, nc = 0;
    msbnb_sampler_params sp = msbnb_sampler_params_default();
    sp.temperature = 1.0f;
    sp.top_p = 0.9f;
    sp.seed = 1234;
    CHECK_OK(msbnb_model_generate(bin_model, &bos, 1, 60, &sp, NULL, NULL, a, 80, &na));
    CHECK_OK(msbnb_model_generate(bin_model, &bos, 1, 60, &sp, NULL, NULL, b, 80, &nb));
    CHECK_EQ_INT(na, nb);
    CHECK(memcmp(a, b, sizeof(int32_t) * (size_t)na) == 0);
    sp.seed = 99;
    CHECK_OK(msbnb_model_generate(bin_model, &bos, 1, 60, &sp, NULL, NULL, c, 80, &nc));
    CHECK(nc != na || memcmp(a, c, sizeof(int32_t) * (size_t)na) != 0);
    /* errors: prompt beyond context, bad token id */
    int32_t badtok = 512;
    float lg[512];
    CHECK_STATUS(msbnb_model_forward(bin_model, &badtok, 1, 0, lg, 0), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_model_forward(bin_model, &bos, 1, 512, lg, 0), MSBNB_ERR_SHAPE);
}

int main(void) {
    size_t len = 0;
    char *g = (char *)test_read_file(MODEL_DIR "/golden.json", &len);
    golden = g ? cJSON_ParseWithLength(g, len) : NULL;
    free(g);
    msbnb_status s1 = msbnb_model_load(MODEL_DIR "/stories260K.bin", NULL, &bin_model);
    if (s1 != MSBNB_OK) printf("load .bin: %s\n", msbnb_last_error());
    msbnb_status s2 = msbnb_model_load(MODEL_DIR "/hf", NULL, &hf_model);
    if (s2 != MSBNB_OK) printf("load hf: %s\n", msbnb_last_error());
    msbnb_status s3 = msbnb_tokenizer_load(MODEL_DIR "/tok512.bin", 512, &tok);
    if (!golden || s1 != MSBNB_OK || s2 != MSBNB_OK || s3 != MSBNB_OK) {
        printf("setup failed\n0 passed, 1 failed\n");
        return 1;
    }
    RUN(prompt_ids);
    RUN(greedy_64_tokens);
    RUN(logits_llama2c);
    RUN(logits_hf);
    RUN(hf_equals_llama2c);
    RUN(perplexity_sample);
    RUN(cache_equals_prefill);
    RUN(thread_invariance);
    RUN(sampling_seeded);
    msbnb_model_free(bin_model);
    msbnb_model_free(hf_model);
    msbnb_tokenizer_free(tok);
    cJSON_Delete(golden);
    return test_report();
}
