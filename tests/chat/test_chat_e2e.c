/* test_chat_e2e.c — `msbnb chat` and `generate --chat` end to end on checkpoints in the Hugging
 * Face layout: for each ../shared/tokenizers directory with chat_vectors.json, a one-layer
 * random-weight Llama with that tokenizer's vocabulary is written beside the real tokenizer.json
 * and tokenizer_config.json (chat template, BOS / EOS text). The commands must load the model's
 * own template, and the prompt they run must be exactly the chat vector's ids: the status line's
 * prompt token count equals the ids of the "user_only" entry (same message, generation prompt on).
 * The same holds for chat on the model's `msbnb quantize --type nf4` output (quantize copies the
 * tokenizer files). The weights are random, so the reply's text is not checked, only that the
 * commands succeed. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "json_file.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msbnb/io.h>

#define TOKENIZERS MSBNB_SHARED_DIR "/tokenizers"
#define DIM 8
#define HIDDEN 16

static int add_random(msbnb_st_writer *w, test_rng *r, const char *name, int64_t rows, int64_t cols, float scale) {
    const int64_t shape[2] = {rows, cols};
    const size_t n = (size_t)(rows * (cols ? cols : 1));
    float *x = malloc(n * sizeof(float));
    if (!x) return 0;
    test_fill_normal(r, x, n, scale);
    if (scale == 0) /* norms: ones */
        for (size_t i = 0; i < n; i++) x[i] = 1.0f;
    const int ok = msbnb_st_writer_add_f32(w, name, cols ? 2 : 1, shape, x) == MSBNB_OK;
    free(x);
    return ok;
}

/* A one-layer Llama (GQA 2 heads / 1 kv head, tied embedding) of vocab rows in dir. */
static int write_model(const char *dir, int vocab, int bos, int eos) {
    char path[1024];
    if (snprintf(path, sizeof path, "%s/config.json", dir) >= (int)sizeof path) return 0;
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fprintf(f,
            "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"vocab_size\": %d, "
            "\"hidden_size\": %d, \"intermediate_size\": %d, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
            "\"num_key_value_heads\": 1, \"max_position_embeddings\": 256, \"rms_norm_eps\": 1e-05, "
            "\"rope_theta\": 10000.0, \"tie_word_embeddings\": true, \"bos_token_id\": %d, \"eos_token_id\": %d, "
            "\"torch_dtype\": \"float32\"}\n",
            vocab, DIM, HIDDEN, bos, eos);
    fclose(f);
    if (snprintf(path, sizeof path, "%s/model.safetensors", dir) >= (int)sizeof path) return 0;
    msbnb_st_writer *w = NULL;
    if (msbnb_st_writer_create(path, &w) != MSBNB_OK) return 0;
    test_rng r = {7};
    int ok = add_random(w, &r, "model.embed_tokens.weight", vocab, DIM, 0.5f) &&
             add_random(w, &r, "model.norm.weight", DIM, 0, 0) &&
             add_random(w, &r, "model.layers.0.input_layernorm.weight", DIM, 0, 0) &&
             add_random(w, &r, "model.layers.0.post_attention_layernorm.weight", DIM, 0, 0) &&
             add_random(w, &r, "model.layers.0.self_attn.q_proj.weight", DIM, DIM, 0.3f) &&
             add_random(w, &r, "model.layers.0.self_attn.k_proj.weight", DIM / 2, DIM, 0.3f) &&
             add_random(w, &r, "model.layers.0.self_attn.v_proj.weight", DIM / 2, DIM, 0.3f) &&
             add_random(w, &r, "model.layers.0.self_attn.o_proj.weight", DIM, DIM, 0.3f) &&
             add_random(w, &r, "model.layers.0.mlp.gate_proj.weight", HIDDEN, DIM, 0.3f) &&
             add_random(w, &r, "model.layers.0.mlp.up_proj.weight", HIDDEN, DIM, 0.3f) &&
             add_random(w, &r, "model.layers.0.mlp.down_proj.weight", DIM, HIDDEN, 0.3f);
    ok = ok && msbnb_st_writer_finish(w) == MSBNB_OK;
    msbnb_st_writer_free(w);
    return ok;
}

/* Run cmd; the number opening (after an optional '[') the first stderr line that contains marker
 * — the status line's prompt token count — or -1. *rc: the exit code. */
static long run_count(const char *cmd, const char *marker, int *rc) {
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1 >/dev/null", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    char line[4096];
    long count = -1;
    while (fgets(line, sizeof line, p)) {
        if (count < 0 && strstr(line, marker)) count = strtol(line + (line[0] == '['), NULL, 10);
    }
    const int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return count;
}

static void check_dir(const char *name) {
    char src[512], dir[512], path[1024];
    snprintf(src, sizeof src, "%s/%s", TOKENIZERS, name);
    snprintf(dir, sizeof dir, "%s/chat_e2e_%s", MSBNB_BINARY_DIR, name);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/special.json", src);
    cJSON *special = parse_json_file(path);
    snprintf(path, sizeof path, "%s/chat_vectors.json", src);
    cJSON *vectors = parse_json_file(path);
    const cJSON *vocab = cJSON_GetObjectItem(special, "vocab_size"), *bos = cJSON_GetObjectItem(special, "bos_token_id"),
                *eos = cJSON_GetObjectItem(special, "eos_token_id");
    CHECK(cJSON_IsNumber(vocab) && cJSON_IsArray(vectors));
    long want = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, vectors) if (!strcmp(cJSON_GetObjectItem(e, "name")->valuestring, "user_only")) {
        want = cJSON_GetArraySize(cJSON_GetObjectItem(e, "ids"));
        CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(e, "messages"), 0), "content")->valuestring,
                      "Hello! How are you?"));
    }
    CHECK(want > 0);
    if (cJSON_IsNumber(vocab) && want > 0 &&
        write_model(dir, vocab->valueint, cJSON_IsNumber(bos) ? bos->valueint : 1, cJSON_IsNumber(eos) ? eos->valueint : 2)) {
        static const char *const files[] = {"tokenizer.json", "tokenizer_config.json"};
        for (int i = 0; i < 2; i++) {
            char from[1024], to[1024];
            snprintf(from, sizeof from, "%s/%s", src, files[i]);
            snprintf(to, sizeof to, "%s/%s", dir, files[i]);
            unlink(to);
            CHECK(symlink(from, to) == 0);
        }
        char cmd[4096];
        int rc = -1;
        snprintf(cmd, sizeof cmd, "%s/msbnb chat %s --prompt 'Hello! How are you?' --max-new-tokens 3", MSBNB_BINARY_DIR, dir);
        long got = run_count(cmd, " prompt tokens (", &rc);
        CHECK_MSG_(rc == 0 && got == want, "%s: chat exit %d, %ld prompt tokens, expected %ld", name, rc, got, want);
        snprintf(cmd, sizeof cmd, "%s/msbnb generate %s --chat --prompt 'Hello! How are you?' --max-new-tokens 3",
                 MSBNB_BINARY_DIR, dir);
        const long got_generate = run_count(cmd, " prompt + ", &rc);
        CHECK_MSG_(rc == 0 && got_generate == want, "%s: generate --chat exit %d, %ld prompt tokens, expected %ld", name,
                   rc, got_generate, want);
        /* quantize copies the tokenizer files: its output is a model `chat` opens directly */
        snprintf(cmd, sizeof cmd, "rm -rf %s-nf4 && %s/msbnb quantize %s %s-nf4 --type nf4 --double-quant", dir,
                 MSBNB_BINARY_DIR, dir, dir);
        run_count(cmd, "\n", &rc);
        CHECK_MSG_(rc == 0, "%s: quantize exit %d", name, rc);
        snprintf(cmd, sizeof cmd, "%s/msbnb chat %s-nf4 --prompt 'Hello! How are you?' --max-new-tokens 3", MSBNB_BINARY_DIR,
                 dir);
        const long got_nf4 = run_count(cmd, " prompt tokens (", &rc);
        CHECK_MSG_(rc == 0 && got_nf4 == want, "%s: chat on the NF4 copy exit %d, %ld prompt tokens, expected %ld", name,
                   rc, got_nf4, want);
        printf("  %s: chat %ld, generate --chat %ld, chat on its NF4 quantization %ld prompt tokens (chat_vectors "
               "user_only: %ld ids)\n",
               name, got, got_generate, got_nf4, want);
    } else {
        CHECK_MSG_(0, "%s: cannot write the model", name);
    }
    cJSON_Delete(special);
    cJSON_Delete(vectors);
}

TEST(chat_cli_on_hf_checkpoints) {
    check_dir("llama-bpe");
    check_dir("mistral-v3");
    check_dir("phi-3");
}

int main(void) {
    RUN(chat_cli_on_hf_checkpoints);
    return test_report();
}
