/*
 * test_tokenizer_api.c — the tokenizer engine's properties beyond the HF vectors: special ids from
 * the config files (an EOS list, a null BOS, add_eos_token), split_special_tokens against
 * SentencePiece's own ids, the streaming detokenizer (pieces are whole characters and add up to
 * the full decode, also over random ids), the buffer-size protocol, and refusals (invalid UTF-8, ids out of range, bad
 * arguments, a tokenizer larger than the model).
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msbnb/tokenizer.h>

#include "test.h"

#define TOK_DIR MSBNB_SHARED_DIR "/tokenizers/"

static msbnb_tokenizer *load(const char *name) {
    msbnb_tokenizer *t = NULL;
    char path[512];
    snprintf(path, sizeof path, TOK_DIR "%s", name);
    CHECK_OK(msbnb_tokenizer_load(path, 0, &t));
    return t;
}

/* A scratch model directory: tokenizer.json of `from` (symlinked) and the given config files. */
static void make_dir(char *dir, const char *from, const char *tok_cfg, const char *gen_cfg, const char *cfg) {
    snprintf(dir, 64, "/tmp/msbnb-tok-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    char p[512], q[512];
    snprintf(p, sizeof p, TOK_DIR "%s/tokenizer.json", from);
    snprintf(q, sizeof q, "%s/tokenizer.json", dir);
    CHECK(symlink(p, q) == 0);
    const char *names[3] = {"tokenizer_config.json", "generation_config.json", "config.json"};
    const char *bodies[3] = {tok_cfg, gen_cfg, cfg};
    for (int i = 0; i < 3; i++) {
        if (!bodies[i]) continue;
        snprintf(q, sizeof q, "%s/%s", dir, names[i]);
        FILE *f = fopen(q, "w");
        CHECK(f != NULL);
        if (f) {
            fputs(bodies[i], f);
            fclose(f);
        }
    }
}

static void remove_dir(const char *dir) {
    const char *names[4] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json", "config.json"};
    char q[512];
    for (int i = 0; i < 4; i++) {
        snprintf(q, sizeof q, "%s/%s", dir, names[i]);
        unlink(q);
    }
    rmdir(dir);
}

TEST(special_ids_of_the_fixtures) {
    msbnb_tokenizer *t = load("llama-bpe");
    int n = 0;
    const int32_t *eos = msbnb_tokenizer_eos_ids(t, &n);
    CHECK_EQ_INT(msbnb_tokenizer_bos(t), 128000);
    CHECK(n >= 1 && eos && eos[0] == 128001);
    CHECK(msbnb_tokenizer_is_eos(t, 128001) && !msbnb_tokenizer_is_eos(t, 1) && !msbnb_tokenizer_is_eos(t, 2));
    CHECK(msbnb_tokenizer_is_special(t, 128009) && !msbnb_tokenizer_is_special(t, 9906));
    CHECK_EQ_INT(msbnb_tokenizer_token_to_id(t, "<|eot_id|>", 10), 128009);
    size_t len = 0;
    const char *s = msbnb_tokenizer_id_to_token(t, 9906, &len);
    CHECK(s && len == 5 && !memcmp(s, "Hello", 5));
    msbnb_tokenizer_free(t);

    t = load("phi-3");
    CHECK_EQ_INT(msbnb_tokenizer_bos(t), 1);
    CHECK(msbnb_tokenizer_is_eos(t, 32000) && !msbnb_tokenizer_is_eos(t, 2));
    CHECK_EQ_INT(msbnb_tokenizer_pad(t), 32000);
    CHECK_EQ_INT(msbnb_tokenizer_vocab_size(t), 32011);
    msbnb_tokenizer_free(t);

    t = load("gpt-2");
    CHECK_EQ_INT(msbnb_tokenizer_bos(t), 50256);
    CHECK(msbnb_tokenizer_is_eos(t, 50256));
    msbnb_tokenizer_free(t);

    msbnb_tokenizer *m = NULL;
    CHECK_OK(msbnb_tokenizer_load(TOK_DIR "mistral-v3/tokenizer.model", 0, &m));
    CHECK_EQ_INT(msbnb_tokenizer_kind_of(m), MSBNB_TOKENIZER_SPM);
    CHECK_EQ_INT(msbnb_tokenizer_bos(m), 1);
    CHECK(msbnb_tokenizer_is_eos(m, 2));
    CHECK(msbnb_tokenizer_is_special(m, 3)); /* [INST]: a control piece */
    msbnb_tokenizer_free(m);
}

TEST(special_ids_from_config_files) {
    char dir[64];
    /* generation_config's list joins the EOS set (Llama-3 instruct: <|eot_id|>); config.json too */
    make_dir(dir, "llama-bpe", NULL, "{\"bos_token_id\": 128000, \"eos_token_id\": [128001, 128009]}",
             "{\"eos_token_id\": 128008, \"pad_token_id\": null}");
    msbnb_tokenizer *t = NULL;
    CHECK_OK(msbnb_tokenizer_load(dir, 0, &t));
    int n = 0;
    const int32_t *eos = msbnb_tokenizer_eos_ids(t, &n);
    CHECK_EQ_INT(n, 3);
    CHECK(eos && eos[0] == 128001 && eos[1] == 128009 && eos[2] == 128008);
    CHECK(msbnb_tokenizer_is_eos(t, 128009) && msbnb_tokenizer_is_eos(t, 128008));
    CHECK_EQ_INT(msbnb_tokenizer_pad(t), -1);
    msbnb_tokenizer_free(t);
    remove_dir(dir);

    /* an explicit null BOS (Qwen) and add_eos_token: ADD_SPECIAL appends the EOS, adds no BOS */
    make_dir(dir, "llama-bpe",
             "{\"bos_token\": null, \"eos_token\": {\"content\": \"<|eot_id|>\"}, \"add_bos_token\": false, "
             "\"add_eos_token\": true}",
             NULL, "{\"bos_token_id\": 128000}");
    CHECK_OK(msbnb_tokenizer_load(dir, 0, &t));
    CHECK_EQ_INT(msbnb_tokenizer_bos(t), -1);
    eos = msbnb_tokenizer_eos_ids(t, &n);
    CHECK(n >= 1 && eos && eos[0] == 128009);
    int32_t ids[8];
    size_t k = 0;
    CHECK_OK(msbnb_tokenizer_encode_text(t, "Hello", 5, MSBNB_ENCODE_ADD_SPECIAL, ids, 8, &k));
    CHECK(k == 2 && ids[0] == 9906 && ids[1] == 128009);
    msbnb_tokenizer_free(t);
    remove_dir(dir);

    /* an id beyond both the tokenizer and the model is refused, naming the file */
    make_dir(dir, "gpt-2", NULL, "{\"eos_token_id\": [50256, 99999999]}", NULL);
    CHECK_STATUS(msbnb_tokenizer_load(dir, 0, &t), MSBNB_ERR_FORMAT);
    CHECK(strstr(msbnb_last_error(), "generation_config.json") != NULL);
    remove_dir(dir);
}

/* split_special_tokens: special tokens' text is plain text, SentencePiece's behaviour (the README
 * of the fixtures: 76/76 for mistral-v1 / -v3 and llama-spm with encode_special_tokens=True). */
TEST(split_special_matches_sentencepiece) {
    const char *names[2] = {"mistral-v1", "mistral-v3"};
    for (int d = 0; d < 2; d++) {
        msbnb_tokenizer *t = load(names[d]);
        char path[512];
        snprintf(path, sizeof path, TOK_DIR "%s/vectors.json", names[d]);
        size_t len = 0;
        char *js = (char *)test_read_file(path, &len);
        cJSON *v = js ? cJSON_ParseWithLength(js, len) : NULL;
        int bad = 0, total = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v) {
            const char *text = cJSON_GetObjectItem(e, "text")->valuestring;
            const cJSON *want = cJSON_GetObjectItem(e, "sentencepiece_ids");
            int32_t *ids = NULL;
            size_t n = 0;
            CHECK_OK(msbnb_tokenizer_encode_alloc(t, text, strlen(text), MSBNB_ENCODE_SPLIT_SPECIAL, &ids, &n));
            int same = (int)n == cJSON_GetArraySize(want);
            for (size_t i = 0; same && i < n; i++) same = ids[i] == (int32_t)cJSON_GetArrayItem(want, (int)i)->valuedouble;
            bad += !same;
            total++;
            free(ids);
        }
        CHECK_EQ_INT(total, 76);
        CHECK_EQ_INT(bad, 0);
        cJSON_Delete(v);
        free(js);
        msbnb_tokenizer_free(t);
    }
}

/* The detokenizer: each push gives valid UTF-8 (no half characters), and the pushes plus the flush
 * equal decode_ids of everything, over every vector of a byte-level and a byte-fallback tokenizer. */
TEST(streaming_decode) {
    const char *names[3] = {"llama-bpe", "llama-spm", "phi-3"};
    for (int d = 0; d < 3; d++) {
        msbnb_tokenizer *t = load(names[d]);
        char path[512];
        snprintf(path, sizeof path, TOK_DIR "%s/vectors.json", names[d]);
        size_t len = 0;
        char *js = (char *)test_read_file(path, &len);
        cJSON *v = js ? cJSON_ParseWithLength(js, len) : NULL;
        const cJSON *e;
        int bad = 0;
        cJSON_ArrayForEach(e, v) {
            const cJSON *ids_j = cJSON_GetObjectItem(e, "ids_with_special");
            size_t n = (size_t)cJSON_GetArraySize(ids_j);
            int32_t *ids = (int32_t *)malloc((n + 1) * sizeof(int32_t));
            for (size_t i = 0; i < n; i++) ids[i] = (int32_t)cJSON_GetArrayItem(ids_j, (int)i)->valuedouble;
            char *whole = NULL;
            size_t wl = 0;
            CHECK_OK(msbnb_tokenizer_decode_alloc(t, ids, n, 0, &whole, &wl));
            msbnb_detokenizer *dt = NULL;
            CHECK_OK(msbnb_detokenizer_create(t, 0, &dt));
            char *acc = (char *)malloc(wl + 64);
            size_t al = 0;
            for (size_t i = 0; i <= n; i++) {
                const char *p;
                size_t pl;
                CHECK_OK(i < n ? msbnb_detokenizer_push(dt, ids[i], &p, &pl) : msbnb_detokenizer_flush(dt, &p, &pl));
                /* a piece never ends inside a character */
                if (pl > 0) {
                    size_t k = pl - 1;
                    while (k > 0 && ((unsigned char)p[k] & 0xC0) == 0x80) k--;
                    unsigned char lead = (unsigned char)p[k];
                    size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
                    if (pl - k != need) bad++;
                }
                if (al + pl <= wl + 63) memcpy(acc + al, p, pl);
                al += pl;
            }
            if (al != wl || memcmp(acc, whole, wl) != 0) bad++;
            free(acc);
            free(whole);
            free(ids);
            msbnb_detokenizer_free(dt);
        }
        CHECK_EQ_INT(bad, 0);
        /* a flush before any push: nothing, and no arithmetic on the absent id array (UBSan: NULL
         * + 0 in the detokenizer, found by fuzz_tokenizer_json; issue #15) */
        msbnb_detokenizer *empty = NULL;
        const char *ep = "x";
        size_t epl = 99;
        CHECK_OK(msbnb_detokenizer_create(t, 0, &empty));
        CHECK_OK(msbnb_detokenizer_flush(empty, &ep, &epl));
        CHECK_EQ_INT((long long)epl, 0);
        msbnb_detokenizer_free(empty);
        cJSON_Delete(v);
        free(js);
        msbnb_tokenizer_free(t);
    }
}

/* Streaming over random id sequences equals the whole decode (with and without skipping special
 * tokens): the six tokenizers, mistral-v3's tokenizer.model, and the two fuzz finds whose decoders
 * are start-dependent (Strip of two spaces after Fuse) or join runs of byte tokens (a tokenizer.model
 * with <0x..> pieces). The ids come from a pool rich in byte tokens and special tokens, where a
 * window cut can go wrong. */
static int stream_matches(const msbnb_tokenizer *t, const int32_t *ids, size_t n, unsigned flags) {
    char *whole = NULL;
    size_t wl = 0;
    CHECK_OK(msbnb_tokenizer_decode_alloc(t, ids, n, flags, &whole, &wl));
    msbnb_detokenizer *dt = NULL;
    CHECK_OK(msbnb_detokenizer_create(t, flags, &dt));
    char *acc = (char *)malloc(wl + 64);
    size_t al = 0;
    int ok = acc != NULL;
    for (size_t i = 0; i <= n; i++) {
        const char *p;
        size_t pl;
        CHECK_OK(i < n ? msbnb_detokenizer_push(dt, ids[i], &p, &pl) : msbnb_detokenizer_flush(dt, &p, &pl));
        if (al + pl > wl + 63) ok = 0;
        else memcpy(acc + al, p, pl), al += pl;
    }
    ok = ok && al == wl && memcmp(acc, whole, wl) == 0;
    free(acc);
    free(whole);
    msbnb_detokenizer_free(dt);
    return ok;
}

TEST(streaming_random_ids) {
    const char *paths[9] = {TOK_DIR "llama-bpe", TOK_DIR "llama-spm", TOK_DIR "phi-3", TOK_DIR "gpt-2",
                            TOK_DIR "mistral-v1", TOK_DIR "mistral-v3", TOK_DIR "mistral-v3/tokenizer.model",
                            MSBNB_SOURCE_DIR "/tests/fuzz/corpus/tokenizer_json/good_strip2_after_fuse_stream.json",
                            MSBNB_SOURCE_DIR "/tests/fuzz/corpus/tokenizer_model/good_bytefallback_run_stream.model"};
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (int f = 0; f < 9; f++) {
        msbnb_tokenizer *t = NULL;
        CHECK_OK(msbnb_tokenizer_load(paths[f], 0, &t));
        int vocab = msbnb_tokenizer_vocab_size(t);
        int32_t pool[24];
        int np = 0;
        static const char *const named[] = {"<0x09>", "<0xE2>", "<0x82>", "<0xAC>", "<0xBF>", "<0x20>", "<s>", "</s>",
                                            "\xE2\x96\x81", "\xE2\x96\x81\xE2\x96\x81", " ", "\xC4\xA0"};
        for (size_t k = 0; k < sizeof named / sizeof named[0]; k++) {
            int32_t id = msbnb_tokenizer_token_to_id(t, named[k], strlen(named[k]));
            if (id >= 0) pool[np++] = id;
        }
        while (np < 24) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            pool[np++] = (int32_t)((rng >> 33) % (uint64_t)vocab);
        }
        int bad = 0;
        for (int seq = 0; seq < 200; seq++) {
            int32_t ids[24];
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t n = 1 + (size_t)((rng >> 33) % 24);
            for (size_t i = 0; i < n; i++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                ids[i] = pool[(rng >> 33) % 24];
            }
            bad += !stream_matches(t, ids, n, 0) + !stream_matches(t, ids, n, MSBNB_DECODE_SKIP_SPECIAL);
        }
        CHECK_EQ_INT(bad, 0);
        msbnb_tokenizer_free(t);
    }
}

TEST(buffers_and_refusals) {
    msbnb_tokenizer *t = load("llama-spm");
    const char *text = "Hello world, this is a test";
    size_t need = 0;
    CHECK_STATUS(msbnb_tokenizer_encode_text(t, text, strlen(text), 0, NULL, 0, &need), MSBNB_ERR_SHAPE);
    CHECK(need > 3);
    int32_t ids[64];
    size_t n = 0;
    CHECK_STATUS(msbnb_tokenizer_encode_text(t, text, strlen(text), 0, ids, need - 1, &n), MSBNB_ERR_SHAPE);
    CHECK_EQ_INT(n, need);
    CHECK_OK(msbnb_tokenizer_encode_text(t, text, strlen(text), 0, ids, need, &n));
    char out[64];
    size_t len = 0;
    CHECK_STATUS(msbnb_tokenizer_decode_ids(t, ids, n, 0, out, 4, &len), MSBNB_ERR_SHAPE);
    CHECK_EQ_INT(len, strlen(text));
    CHECK_OK(msbnb_tokenizer_decode_ids(t, ids, n, 0, out, sizeof out, &len));
    CHECK(len == strlen(text) && !strcmp(out, text));
    /* skip_special leaves BOS out */
    int32_t with_bos[2] = {1, 15043};
    CHECK_OK(msbnb_tokenizer_decode_ids(t, with_bos, 2, MSBNB_DECODE_SKIP_SPECIAL, out, sizeof out, &len));
    CHECK(!strcmp(out, "Hello"));
    /* the older per-token call: byte tokens give their byte, the space after BOS is dropped */
    const char *piece;
    size_t pl;
    CHECK_OK(msbnb_tokenizer_decode(t, 1, 15043, &piece, &pl));
    CHECK(pl == 5 && !memcmp(piece, "Hello", 5));
    CHECK_OK(msbnb_tokenizer_decode(t, 15043, 15043, &piece, &pl));
    CHECK(pl == 6 && !memcmp(piece, " Hello", 6));
    CHECK_OK(msbnb_tokenizer_decode(t, 5, 3 + 0x41, &piece, &pl));
    CHECK(pl == 1 && piece[0] == 'A');
    /* refusals */
    int32_t *none = ids;
    CHECK_STATUS(msbnb_tokenizer_encode_alloc(t, "ab\xff", 3, 0, &none, &n), MSBNB_ERR_INVALID_ARG);
    CHECK(none == NULL);
    CHECK(strstr(msbnb_last_error(), "UTF-8") && strstr(msbnb_last_error(), "byte 2"));
    int32_t badid = 32000;
    CHECK_STATUS(msbnb_tokenizer_decode_ids(t, &badid, 1, 0, out, sizeof out, &len), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_tokenizer_decode(t, 1, -1, &piece, &pl), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_tokenizer_encode_text(NULL, "a", 1, 0, ids, 4, &n), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_detokenizer_push(NULL, 1, &piece, &pl), MSBNB_ERR_INVALID_ARG);
    msbnb_tokenizer_free(t);
    msbnb_tokenizer_free(NULL);
    msbnb_detokenizer_free(NULL);
    CHECK_EQ_INT(msbnb_tokenizer_vocab_size(NULL), 0);
    CHECK_EQ_INT(msbnb_tokenizer_is_eos(NULL, 2), 0);

    msbnb_tokenizer *x = NULL;
    /* a tokenizer with more ids than the model has rows */
    CHECK_STATUS(msbnb_tokenizer_load(TOK_DIR "llama-bpe", 32000, &x), MSBNB_ERR_SHAPE);
    CHECK(x == NULL);
    CHECK_STATUS(msbnb_tokenizer_load("/nonexistent-dir/tokenizer.json", 0, &x), MSBNB_ERR_IO);
    CHECK_STATUS(msbnb_tokenizer_load(MSBNB_SHARED_DIR "/data", 0, &x), MSBNB_ERR_NOT_FOUND);
    char path[256];
    CHECK_OK(msbnb_tokenizer_find(MSBNB_SHARED_DIR "/models/stories260K/hf/model.safetensors", path, sizeof path));
    CHECK(strstr(path, "tok512.bin") != NULL);
    CHECK_STATUS(msbnb_tokenizer_find(MSBNB_SHARED_DIR "/data/austen.txt", path, sizeof path), MSBNB_ERR_NOT_FOUND);
}

int main(void) {
    RUN(special_ids_of_the_fixtures);
    RUN(special_ids_from_config_files);
    RUN(split_special_matches_sentencepiece);
    RUN(streaming_decode);
    RUN(streaming_random_ids);
    RUN(buffers_and_refusals);
    return test_report();
}
