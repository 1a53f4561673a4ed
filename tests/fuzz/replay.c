/* replay.c — the fuzz seed corpus as an ordinary test, without libFuzzer: every file of
 * tests/fuzz/corpus/{safetensors,config,adapter,bnb,llama2c,tokenizer,optim,
 * tokenizer_json,tokenizer_model,state,adapter_dir,chat_template} goes through every fuzz target (no crash, no
 * sanitizer report), and each bad_* file must be rejected with a one-line message (safetensors:
 * naming the file and a byte offset) while each good_* file must be accepted. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"

#include <dirent.h>
#include <stdbool.h>

#include "fuzz_targets.h"
#include "fuzz_targets_chat.h"

#define CORPUS MSBNB_SOURCE_DIR "/tests/fuzz/corpus"

typedef msbnb_status (*target_fn)(const uint8_t *, size_t);

static int replay_dir(const char *sub, target_fn expect_fn, bool want_offset) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", CORPUS, sub);
    DIR *d = opendir(dir);
    CHECK_MSG_(d != NULL, "cannot open %s", dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        uint8_t *buf = test_read_file(path, &len);
        CHECK_MSG_(buf != NULL, "cannot read %s", path);
        if (!buf) continue;
        n++;
        /* crash-freedom on every target, whatever the file was made for */
        fuzz_one_safetensors(buf, len);
        fuzz_one_config(buf, len);
        fuzz_one_bnb(buf, len);
        fuzz_one_llama2c(buf, len);
        fuzz_one_tokenizer(buf, len);
        fuzz_one_tokenizer_json(buf, len);
        fuzz_one_tokenizer_model(buf, len);
        fuzz_one_optim_state(buf, len);
        fuzz_one_chat_template(buf, len);
        fuzz_one_adapter_dir(buf, len);
        char state_err[400] = "";
        msbnb_status state_st = fuzz_one_train_state(buf, len, state_err, sizeof state_err);
        msbnb_status st = expect_fn ? expect_fn(buf, len) : state_st;
        const char *msg = expect_fn ? msbnb_last_error() : state_err; /* state.json: the CLI's own reason */
        if (!strncmp(e->d_name, "bad_", 4)) {
            CHECK_MSG_(st != MSBNB_OK, "%s/%s was accepted", sub, e->d_name);
            CHECK_MSG_(!strchr(msg, '\n') && strlen(msg) > 10, "%s: message not one line: '%s'", e->d_name, msg);
            if (want_offset)
                CHECK_MSG_(strstr(msg, "fuzz.safetensors") && strstr(msg, "(byte "), "%s: message '%s' lacks file/offset",
                           e->d_name, msg);
        } else {
            CHECK_MSG_(st == MSBNB_OK, "%s/%s was rejected: %s", sub, e->d_name, msg);
        }
        free(buf);
    }
    closedir(d);
    return n;
}

TEST(safetensors_corpus) { CHECK(replay_dir("safetensors", fuzz_one_safetensors, true) >= 40); }
TEST(config_corpus) { CHECK(replay_dir("config", fuzz_one_config, false) >= 10); }
TEST(adapter_corpus) { CHECK(replay_dir("adapter", fuzz_one_adapter_config, false) >= 10); }
TEST(bnb_corpus) { CHECK(replay_dir("bnb", fuzz_one_bnb, false) >= 20); }
TEST(llama2c_corpus) { CHECK(replay_dir("llama2c", fuzz_one_llama2c, false) >= 12); }
TEST(tokenizer_corpus) { CHECK(replay_dir("tokenizer", fuzz_one_tokenizer, false) >= 10); }
TEST(optim_corpus) { CHECK(replay_dir("optim", fuzz_one_optim_state, false) >= 10); }
TEST(state_corpus) { CHECK(replay_dir("state", NULL, false) >= 10); }
TEST(adapter_dir_corpus) { CHECK(replay_dir("adapter_dir", fuzz_one_adapter_dir, false) >= 10); }
TEST(tokenizer_json_corpus) { CHECK(replay_dir("tokenizer_json", fuzz_one_tokenizer_json, false) >= 30); }
TEST(tokenizer_model_corpus) { CHECK(replay_dir("tokenizer_model", fuzz_one_tokenizer_model, false) >= 10); }
TEST(chat_template_corpus) { CHECK(replay_dir("chat_template", fuzz_one_chat_template, false) >= 30); }

int main(void) {
    RUN(safetensors_corpus);
    RUN(config_corpus);
    RUN(adapter_corpus);
    RUN(bnb_corpus);
    RUN(llama2c_corpus);
    RUN(tokenizer_corpus);
    RUN(optim_corpus);
    RUN(state_corpus);
    RUN(adapter_dir_corpus);
    RUN(tokenizer_json_corpus);
    RUN(tokenizer_model_corpus);
    RUN(chat_template_corpus);
    return test_report();
}
