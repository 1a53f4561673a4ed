/* test_chat_template.c — the chat-template engine against real data:
 *  - every entry of ../shared/tokenizers/<dir>/chat_vectors.json (rendered by transformers 5.25's
 *    apply_chat_template) renders byte for byte from the directory's tokenizer_config.json, and
 *    the directory's tokenizer turns the text into exactly the entry's ids;
 *  - tests/chat/data/jinja_cases.json: templates exercising each supported construct, rendered by
 *    jinja2 3.1.6 in transformers' environment (tests/chat/make_jinja_cases.py), must render the
 *    same, and each case jinja2 refuses must be refused;
 *  - hostile templates (runaway loops, doubling strings, deep nesting) end with a one-line error;
 *  - API manners: NULL arguments, missing templates, params defaults. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "json_file.h"

#include <cjson/cJSON.h>
#include <dirent.h>

#include <msbnb/chat.h>
#include <msbnb/tokenizer.h>

#define TOKENIZERS MSBNB_SHARED_DIR "/tokenizers"

static int id_entries; /* chat vectors whose ids were checked */

/* Render one chat_vectors.json entry with the directory's template; its ids are the rendered
 * text encoded by the directory's tokenizer with special tokens matched and none added (HF
 * add_special_tokens=False, what apply_chat_template(tokenize=True) does). */
static void check_vector(const char *dir, const msbnb_chat_template *t, const msbnb_tokenizer *tok, const cJSON *e) {
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
    const cJSON *want_ids = cJSON_GetObjectItem(e, "ids");
    int32_t *ids = NULL;
    size_t n_ids = 0;
    CHECK(tok != NULL && cJSON_IsArray(want_ids));
    if (tok && got && cJSON_IsArray(want_ids)) {
        CHECK_OK(msbnb_tokenizer_encode_alloc(tok, got, len, 0, &ids, &n_ids));
        int same = ids && n_ids == (size_t)cJSON_GetArraySize(want_ids);
        for (size_t i = 0; same && i < n_ids; i++) same = ids[i] == cJSON_GetArrayItem(want_ids, (int)i)->valueint;
        CHECK_MSG_(same, "%s/%s: %zu ids differ from the %d expected", dir, name->valuestring, n_ids,
                   cJSON_GetArraySize(want_ids));
        id_entries++;
    }
    free(ids);
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
        cJSON *v = parse_json_file(path);
        if (!v) continue;
        files++;
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", TOKENIZERS, de->d_name);
        msbnb_chat_template *t = NULL;
        CHECK_OK(msbnb_chat_template_load(dir, &t));
        msbnb_tokenizer *tok = NULL;
        CHECK_OK(msbnb_tokenizer_load(dir, 0, &tok));
        CHECK(cJSON_IsArray(v));
        const cJSON *e;
        if (t) cJSON_ArrayForEach(e, v) {
            check_vector(de->d_name, t, tok, e);
            entries++;
        }
        cJSON_Delete(v);
        msbnb_chat_template_free(t);
        msbnb_tokenizer_free(tok);
    }
    closedir(d);
    printf("  chat_vectors: %d entries in %d files, %d with ids checked\n", entries, files, id_entries);
    CHECK(files >= 3 && entries >= 12 && id_entries == entries);
}


/* The chat_template string of ../shared/tokenizers/<dir>/tokenizer_config.json (malloc'ed). */
static char *shared_template(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/tokenizer_config.json", TOKENIZERS, dir);
    cJSON *cfg = parse_json_file(path);
    const cJSON *ct = cJSON_GetObjectItem(cfg, "chat_template");
    char *src = cJSON_IsString(ct) ? strdup(ct->valuestring) : NULL;
    cJSON_Delete(cfg);
    return src;
}

/* One jinja_cases.json entry: same text as transformers/jinja2, or an error where it failed. */
static void check_case(const cJSON *c) {
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    const cJSON *tpl = cJSON_GetObjectItem(c, "template"), *of = cJSON_GetObjectItem(c, "template_of");
    char *src = cJSON_IsString(tpl) ? strdup(tpl->valuestring) : shared_template(of->valuestring);
    CHECK_MSG_(src != NULL, "%s: no template", name);
    if (!src) return;
    cJSON *vars = cJSON_Duplicate(cJSON_GetObjectItem(c, "vars"), 1);
    msbnb_chat_render_params p = msbnb_chat_render_params_default();
    const cJSON *agp = cJSON_GetObjectItem(vars, "add_generation_prompt");
    p.add_generation_prompt = cJSON_IsTrue(agp);
    const cJSON *bos = cJSON_GetObjectItem(vars, "bos_token"), *eos = cJSON_GetObjectItem(vars, "eos_token");
    p.bos_token = cJSON_IsString(bos) ? bos->valuestring : NULL;
    p.eos_token = cJSON_IsString(eos) ? eos->valuestring : NULL;
    cJSON *msgs = cJSON_DetachItemFromObject(vars, "messages");
    char *mj = msgs ? cJSON_PrintUnformatted(msgs) : strdup("[]");
    cJSON *extra = cJSON_CreateObject();
    const cJSON *v;
    cJSON_ArrayForEach(v, vars) {
        if (!strcmp(v->string, "add_generation_prompt") || !strcmp(v->string, "bos_token") || !strcmp(v->string, "eos_token"))
            continue;
        cJSON_AddItemToObject(extra, v->string, cJSON_Duplicate(v, 1));
    }
    char *ej = cJSON_PrintUnformatted(extra);
    p.extra_json = ej;
    const cJSON *want = cJSON_GetObjectItem(c, "rendered"), *err = cJSON_GetObjectItem(c, "error");
    msbnb_chat_template *t = NULL;
    msbnb_status st = msbnb_chat_template_compile(src, strlen(src), &t);
    char *got = NULL;
    if (st == MSBNB_OK) st = msbnb_chat_template_render_json(t, mj, strlen(mj), &p, &got, NULL);
    if (cJSON_IsString(want)) {
        CHECK_MSG_(st == MSBNB_OK, "%s: %s", name, msbnb_last_error());
        CHECK_MSG_(got && !strcmp(got, want->valuestring), "%s: rendered\n[%s]\n--- expected\n[%s]", name, got ? got : "",
                   want->valuestring);
    } else {
        const char *msg = msbnb_last_error();
        CHECK_MSG_(st != MSBNB_OK, "%s: accepted (jinja2: %s), rendered [%s]", name, err ? err->valuestring : "?", got ? got : "");
        CHECK_MSG_(st == MSBNB_OK || (!strchr(msg, '\n') && strlen(msg) > 10), "%s: message not one line: '%s'", name, msg);
    }
    free(got);
    msbnb_chat_template_free(t);
    free(ej);
    cJSON_Delete(extra);
    free(mj);
    cJSON_Delete(msgs);
    cJSON_Delete(vars);
    free(src);
}

TEST(jinja_cases) {
    cJSON *cases = parse_json_file(MSBNB_SOURCE_DIR "/tests/chat/data/jinja_cases.json");
    CHECK(cJSON_IsArray(cases));
    int n = 0, errors = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        check_case(c);
        n++;
        errors += cJSON_GetObjectItem(c, "error") != NULL;
    }
    printf("  jinja_cases: %d cases, %d of them errors\n", n, errors);
    CHECK(n >= 70 && errors >= 10);
    cJSON_Delete(cases);
}

/* Compile + render src; returns the status (the first failure). */
static msbnb_status try_render(const char *src, const msbnb_chat_render_params *p, char **out) {
    msbnb_chat_template *t = NULL;
    *out = NULL;
    msbnb_status st = msbnb_chat_template_compile(src, strlen(src), &t);
    if (st == MSBNB_OK) st = msbnb_chat_template_render(t, NULL, 0, p, out, NULL);
    msbnb_chat_template_free(t);
    return st;
}

static char *repeat_str(const char *a, int n, const char *mid, const char *b) {
    const size_t la = strlen(a), lb = strlen(b), lm = strlen(mid);
    char *s = malloc((la + lb) * (size_t)n + lm + 1), *o = s;
    for (int i = 0; i < n; i++) memcpy(o, a, la), o += la;
    memcpy(o, mid, lm), o += lm;
    for (int i = 0; i < n; i++) memcpy(o, b, lb), o += lb;
    *o = 0;
    return s;
}

/* Hostile templates end with the stated error (one line), never a hang, crash or huge allocation. */
TEST(hostile_templates) {
    static const struct {
        const char *src;
        msbnb_status want;
    } cases[] = {
        /* jinja2's sandbox (transformers' renderer) refuses ranges over 100,000 items */
        {"{% for i in range(100000000) %}{% endfor %}", MSBNB_ERR_UNSUPPORTED},
        {"{{ range(100001) | length }}", MSBNB_ERR_UNSUPPORTED},
        /* building a range costs a step per item: 20 lists of 100,000 pass the 10^6-step limit */
        {"{% for i in range(20) %}{% set x = range(100000) %}{% endfor %}", MSBNB_ERR_UNSUPPORTED},
        {"{% for i in range(2000) %}{% for j in range(2000) %}{% endfor %}{% endfor %}", MSBNB_ERR_UNSUPPORTED},
        {"{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", MSBNB_ERR_OUT_OF_MEMORY},
        {"{{ 'x' * 1000000000000 }}", MSBNB_ERR_OUT_OF_MEMORY},
        {"{{ [1, 2] * 1000000000000 }}", MSBNB_ERR_OUT_OF_MEMORY},
        {"{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", MSBNB_ERR_UNSUPPORTED},
        {"{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}", MSBNB_ERR_FORMAT},
        {"{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x | tojson }}", MSBNB_ERR_FORMAT},
        {"{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}", MSBNB_ERR_OUT_OF_MEMORY},
        {"{{ 9223372036854775807 + 1 }}", MSBNB_ERR_UNSUPPORTED},
        {"{{ 2 ** 64 }}", MSBNB_ERR_UNSUPPORTED},
        {"{% break %}", MSBNB_ERR_FORMAT},
    };
    msbnb_chat_render_params p = msbnb_chat_render_params_default();
    p.max_output = 1 << 20;
    p.max_memory = 64 << 20;
    p.max_steps = 1000000;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        const msbnb_status st = try_render(cases[i].src, &p, &out);
        const char *msg = msbnb_last_error();
        CHECK_MSG_(st == cases[i].want, "case %zu (%s): %s (%s), expected %s", i, cases[i].src, msbnb_status_str(st), msg,
                   msbnb_status_str(cases[i].want));
        CHECK_MSG_(!strchr(msg, '\n') && strlen(msg) > 10, "case %zu: message '%s'", i, msg);
        CHECK(out == NULL);
        free(out);
    }
    /* the sandbox's largest range still renders */
    char *edge = NULL;
    CHECK(try_render("{{ range(100000) | length }}", &p, &edge) == MSBNB_OK && edge && strcmp(edge, "100000") == 0);
    free(edge);
    /* nesting: expressions, statements, brackets */
    char *parens = repeat_str("(", 5000, "1", ")");
    char *srcs[4] = {repeat_str("{{ ", 1, parens, " }}"), repeat_str("{% if 1 %}", 5000, "x", "{% endif %}"),
                     repeat_str("{{ [", 2000, "1", "] }}"), repeat_str("{{ not ", 5000, "1", "}}")};
    for (int i = 0; i < 4; i++) {
        char *out = NULL;
        const msbnb_status st = try_render(srcs[i], &p, &out);
        CHECK_MSG_(st != MSBNB_OK && !strchr(msbnb_last_error(), '\n'), "nesting %d: %s", i, msbnb_last_error());
        free(out);
        free(srcs[i]);
    }
    free(parens);
    /* the same constructs at a sane size pass */
    char *fine = repeat_str("(", 50, "1", ")"), *ok = NULL;
    char buf[256];
    snprintf(buf, sizeof buf, "{{ %s }}", fine);
    CHECK_OK(try_render(buf, &p, &ok));
    CHECK(ok && !strcmp(ok, "1"));
    free(ok);
    free(fine);
}

/* Errors name the line; raise_exception's text is quoted on one line. */
TEST(error_messages) {
    char *out = NULL;
    CHECK_STATUS(try_render("a\nb\n{{ x.y }}", NULL, &out), MSBNB_ERR_FORMAT);
    CHECK_MSG_(strstr(msbnb_last_error(), "line 3") && strstr(msbnb_last_error(), "'x' is undefined"), "%s", msbnb_last_error());
    CHECK_STATUS(try_render("{{ raise_exception('two\nlines') }}", NULL, &out), MSBNB_ERR_INVALID_ARG);
    CHECK_MSG_(strstr(msbnb_last_error(), "two lines") && !strchr(msbnb_last_error(), '\n'), "%s", msbnb_last_error());
    CHECK_STATUS(try_render("{% include 'x.j2' %}", NULL, &out), MSBNB_ERR_UNSUPPORTED);
    CHECK_MSG_(strstr(msbnb_last_error(), "include"), "%s", msbnb_last_error());
    CHECK_STATUS(try_render("{{ x | frobnicate }}", NULL, &out), MSBNB_ERR_UNSUPPORTED);
    CHECK_MSG_(strstr(msbnb_last_error(), "frobnicate"), "%s", msbnb_last_error());
    CHECK_STATUS(try_render("{{ 'abc }}", NULL, &out), MSBNB_ERR_FORMAT);
    CHECK(out == NULL);
}

TEST(api) {
    msbnb_chat_template *t = NULL;
    char *out = NULL;
    size_t len = 7;
    CHECK_STATUS(msbnb_chat_template_compile("x", 1, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK_OK(msbnb_chat_template_compile(NULL, 0, &t)); /* the empty template renders "" */
    CHECK_OK(msbnb_chat_template_render(t, NULL, 0, NULL, &out, &len));
    CHECK(out && out[0] == 0 && len == 0);
    free(out);
    CHECK_STATUS(msbnb_chat_template_render(NULL, NULL, 0, NULL, &out, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_chat_template_render(t, NULL, 1, NULL, &out, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_chat_template_render_json(t, "{}", 2, NULL, &out, NULL), MSBNB_ERR_FORMAT);
    msbnb_chat_render_params p = msbnb_chat_render_params_default();
    p.extra_json = "[1]";
    CHECK_STATUS(msbnb_chat_template_render(t, NULL, 0, &p, &out, NULL), MSBNB_ERR_FORMAT);
    msbnb_chat_template_free(t);
    msbnb_chat_template_free(NULL);
    /* gpt-2 has no template: NOT_FOUND naming the way out */
    t = NULL;
    CHECK_STATUS(msbnb_chat_template_load(TOKENIZERS "/gpt-2", &t), MSBNB_ERR_NOT_FOUND);
    CHECK_MSG_(strstr(msbnb_last_error(), "--chat-template"), "%s", msbnb_last_error());
    CHECK(t == NULL);
    CHECK_STATUS(msbnb_chat_template_load("/nonexistent/dir", &t), MSBNB_ERR_NOT_FOUND);
    /* a file inside the directory, and the config itself, both find the template and its tokens */
    CHECK_OK(msbnb_chat_template_load(TOKENIZERS "/llama-bpe/tokenizer.json", &t));
    CHECK(t && !strcmp(msbnb_chat_template_bos_token(t), "<|begin_of_text|>") &&
          !strcmp(msbnb_chat_template_eos_token(t), "<|end_of_text|>"));
    /* bos_token override; defaults add the generation prompt */
    msbnb_chat_message m = {"user", "Hi"};
    p = msbnb_chat_render_params_default();
    p.bos_token = "<BOS>";
    CHECK_OK(msbnb_chat_template_render(t, &m, 1, &p, &out, NULL));
    CHECK(out && !strncmp(out, "<BOS><|start_header_id|>", 24));
    const char *tail = "<|start_header_id|>assistant<|end_header_id|>\n\n";
    CHECK(out && strlen(out) > strlen(tail) && !strcmp(out + strlen(out) - strlen(tail), tail));
    free(out);
    msbnb_chat_template_free(t);
    t = NULL;
    CHECK_OK(msbnb_chat_template_load(TOKENIZERS "/phi-3/tokenizer_config.json", &t));
    CHECK(t && !strcmp(msbnb_chat_template_eos_token(t), "<|endoftext|>"));
    msbnb_chat_template_free(t);
}

int main(void) {
    RUN(chat_vectors);
    RUN(jinja_cases);
    RUN(hostile_templates);
    RUN(error_messages);
    RUN(api);
    return test_report();
}
