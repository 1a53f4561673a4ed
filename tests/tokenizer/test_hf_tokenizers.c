/*
 * test_hf_tokenizers.c — every entry of ../shared/tokenizers/<name>/vectors.json, for the six
 * tokenizers (GPT-2, Llama-3, Llama-2, Phi-3, Mistral v1, Mistral v3): the ids without and with
 * special tokens and the decoded text, all made by the HF tokenizers library (0.23.3). The two
 * Mistral directories also ship SentencePiece's tokenizer.model: loaded alone it must give
 * sentencepiece's own ids (the vectors' sentencepiece_ids) and decode them as HF does.
 */
#include <cjson/cJSON.h>

#include <msbnb/tokenizer.h>

#include "test.h"

#define TOK_DIR MSBNB_SHARED_DIR "/tokenizers/"

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = (char *)malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}

/* A directory name below ../shared/tokenizers, or an absolute path (MSBNB_TOKENIZER_DIR). */
static void dir_of(const char *name, char *out, size_t cap) {
    if (name[0] == '/') snprintf(out, cap, "%s", name);
    else snprintf(out, cap, TOK_DIR "%s", name);
}

static cJSON *load_vectors(const char *name) {
    char path[1024], dir[512];
    dir_of(name, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/vectors.json", dir);
    char *s = read_all(path, NULL);
    cJSON *j = s ? cJSON_Parse(s) : NULL;
    free(s);
    return j;
}

/* ids equal to the JSON array? Prints the first difference (unless what is ""). */
static int same_ids(const int32_t *ids, size_t n, const cJSON *want, const char *what, const char *text) {
    size_t m = (size_t)cJSON_GetArraySize(want);
    size_t i = 0;
    const cJSON *e;
    int ok = n == m;
    cJSON_ArrayForEach(e, want) {
        if (i < n && ids[i] != (int32_t)e->valuedouble) {
            ok = 0;
            break;
        }
        i++;
    }
    if (!ok && *what && test_checks_failed_in_current_ < 6) {
        printf("  %s of \"%.50s\": got %zu ids, want %zu; first difference at %zu:", what, text, n, m, i);
        size_t k = i > 2 ? i - 2 : 0;
        for (size_t c = 0; c < 6 && k + c < n; c++) printf(" %d", ids[k + c]);
        printf(" vs");
        for (size_t c = 0; c < 6 && k + c < m; c++) printf(" %d", (int)cJSON_GetArrayItem(want, (int)(k + c))->valuedouble);
        printf("\n");
    }
    return ok;
}

/* All vectors of one directory through `tok`; spm = compare with sentencepiece_ids instead. */
static void check_dir(const char *name, const msbnb_tokenizer *tok, int spm) {
    cJSON *v = load_vectors(name);
    CHECK_MSG_(v != NULL && cJSON_GetArraySize(v) >= (name[0] == '/' ? 1 : 76), "%s: vectors.json with its entries", name);
    if (!v) return;
    int bad_ids = 0, bad_special = 0, bad_text = 0, n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        const char *text = cJSON_GetObjectItem(e, "text")->valuestring;
        const cJSON *want = cJSON_GetObjectItem(e, spm ? "sentencepiece_ids" : "ids");
        int32_t *ids = NULL;
        size_t k = 0;
        n++;
        CHECK_OK(msbnb_tokenizer_encode_alloc(tok, text, strlen(text), 0, &ids, &k));
        if (!same_ids(ids, k, want, "ids", text)) bad_ids++;
        /* decoding these ids gives the library's decoded text (for .model: where the ids agree) */
        int ids_agree = same_ids(ids, k, cJSON_GetObjectItem(e, "ids"), "", "") || !spm;
        if (ids_agree) {
            char *out = NULL;
            size_t len = 0;
            CHECK_OK(msbnb_tokenizer_decode_alloc(tok, ids, k, 0, &out, &len));
            const char *dec = cJSON_GetObjectItem(e, "decoded")->valuestring;
            if (!out || len != strlen(dec) || memcmp(out, dec, len) != 0) {
                bad_text++;
                if (bad_text <= 3) printf("  decode of \"%.40s\": got \"%.60s\"\n", text, out ? out : "(null)");
            }
            free(out);
        }
        free(ids);
        if (!spm) {
            CHECK_OK(msbnb_tokenizer_encode_alloc(tok, text, strlen(text), MSBNB_ENCODE_ADD_SPECIAL, &ids, &k));
            if (!same_ids(ids, k, cJSON_GetObjectItem(e, "ids_with_special"), "ids_with_special", text)) bad_special++;
            free(ids);
        }
    }
    printf("  %s%s: %d vectors, %d ids / %d ids_with_special / %d decoded differ\n", name, spm ? " (tokenizer.model)" : "",
           n, bad_ids, bad_special, bad_text);
    CHECK_EQ_INT(bad_ids, 0);
    CHECK_EQ_INT(bad_special, 0);
    CHECK_EQ_INT(bad_text, 0);
    cJSON_Delete(v);
}

static void check_json(const char *name) {
    msbnb_tokenizer *tok = NULL;
    char path[1024], dir[512];
    dir_of(name, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK_OK(msbnb_tokenizer_load(path, 0, &tok));
    if (!tok) return;
    CHECK_EQ_INT(msbnb_tokenizer_kind_of(tok), MSBNB_TOKENIZER_HF_JSON);
    check_dir(name, tok, 0);
    msbnb_tokenizer_free(tok);
}

TEST(gpt2) { check_json("gpt-2"); }
TEST(llama3) { check_json("llama-bpe"); }
TEST(llama2) { check_json("llama-spm"); }
TEST(phi3) { check_json("phi-3"); }
TEST(mistral_v1) { check_json("mistral-v1"); }
TEST(mistral_v3) { check_json("mistral-v3"); }

static void check_model(const char *name) {
    msbnb_tokenizer *tok = NULL;
    char path[512];
    snprintf(path, sizeof path, TOK_DIR "%s/tokenizer.model", name);
    CHECK_OK(msbnb_tokenizer_load(path, 0, &tok));
    if (!tok) return;
    CHECK_EQ_INT(msbnb_tokenizer_kind_of(tok), MSBNB_TOKENIZER_SPM);
    check_dir(name, tok, 1);
    msbnb_tokenizer_free(tok);
}

TEST(mistral_v1_model) { check_model("mistral-v1"); }
TEST(mistral_v3_model) { check_model("mistral-v3"); }

/* Another tokenizer with vectors in the same format (tokenizer.json, tokenizer_config.json,
 * vectors.json made by the HF library), checked from outside:
 *     MSBNB_TOKENIZER_DIR=/abs/dir build/tests/test_hf_tokenizers */
TEST(outside) { check_json(getenv("MSBNB_TOKENIZER_DIR")); }

int main(void) {
    if (getenv("MSBNB_TOKENIZER_DIR") && getenv("MSBNB_TOKENIZER_DIR")[0] == '/') {
        RUN(outside);
        return test_report();
    }
    RUN(gpt2);
    RUN(llama3);
    RUN(llama2);
    RUN(phi3);
    RUN(mistral_v1);
    RUN(mistral_v3);
    RUN(mistral_v1_model);
    RUN(mistral_v3_model);
    return test_report();
}
