/* test_chat_fuzz_replay.c — the chat-template fuzz corpus as an ordinary test, without libFuzzer:
 * every file of tests/fuzz/corpus/chat_template must behave as its name says (good_* rendered,
 * bad_* refused with a one-line message), and every file of every other corpus directory goes
 * through the chat target too (crash-freedom on foreign bytes). */
#define _POSIX_C_SOURCE 200809L
#include "test.h"

#include <dirent.h>

#include "fuzz_targets_chat.h"

#define CORPUS MSBNB_SOURCE_DIR "/tests/fuzz/corpus"

static int replay_dir(const char *sub, int check_names) {
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
        if (!buf) continue; /* a subdirectory */
        n++;
        const msbnb_status st = fuzz_one_chat_template(buf, len);
        const char *msg = msbnb_last_error();
        if (check_names && !strncmp(e->d_name, "bad_", 4)) {
            CHECK_MSG_(st != MSBNB_OK, "%s/%s was accepted", sub, e->d_name);
            CHECK_MSG_(!strchr(msg, '\n') && strlen(msg) > 10, "%s: message not one line: '%s'", e->d_name, msg);
        } else if (check_names) {
            CHECK_MSG_(st == MSBNB_OK, "%s/%s was rejected: %s", sub, e->d_name, msg);
        }
        free(buf);
    }
    closedir(d);
    return n;
}

TEST(chat_template_corpus) { CHECK(replay_dir("chat_template", 1) >= 30); }

TEST(other_corpora) {
    DIR *d = opendir(CORPUS);
    CHECK(d != NULL);
    if (!d) return;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.' && strcmp(e->d_name, "chat_template")) n += replay_dir(e->d_name, 0);
    closedir(d);
    CHECK(n >= 50);
}

int main(void) {
    RUN(chat_template_corpus);
    RUN(other_corpora);
    return test_report();
}
