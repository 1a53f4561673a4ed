/*
 * chat.c — the public chat-template API (include/msbnb/chat.h): compile, load a model's template
 * from chat_template.jinja / tokenizer_config.json, render with the variables transformers passes
 * (messages, bos_token, eos_token, add_generation_prompt, tools = none, documents = none, plus
 * caller-given extras).
 */
#define _POSIX_C_SOURCE 200809L
#include <msbnb/chat.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chat/tpl_internal.h"
#include "io/io_internal.h"

struct msbnb_chat_template {
    tpl_template t;
};

#define MAX_TEMPLATE_BYTES ((size_t)16 << 20)
#define MAX_CONFIG_BYTES ((size_t)64 << 20)

msbnb_chat_render_params msbnb_chat_render_params_default(void) {
    msbnb_chat_render_params p = {0};
    p.add_generation_prompt = 1;
    p.max_output = (size_t)16 << 20;
    p.max_memory = (size_t)256 << 20;
    p.max_steps = 10000000;
    return p;
}

/* ---------------------------------------------------------------- compile */

msbnb_status msbnb_chat_template_compile(const char *source, size_t len, msbnb_chat_template **out) {
    RETURN_IF(!out, MSBNB_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    RETURN_IF(!source && len, MSBNB_ERR_INVALID_ARG, "source is NULL");
    RETURN_IF(len > MAX_TEMPLATE_BYTES, MSBNB_ERR_INVALID_ARG, "template of %zu bytes is larger than %zu", len,
              MAX_TEMPLATE_BYTES);
    msbnb_chat_template *h = calloc(1, sizeof *h);
    RETURN_IF(!h, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    tpl_template *t = &h->t;
    /* tokens and tree take a few hundred bytes per source byte at worst */
    tpl_arena_init(&t->env.arena, &t->env, ((size_t)64 << 20) + len * 256);
    if (setjmp(t->env.jb)) {
        const msbnb_status st = msbnb__fail(t->env.st, "msbnb_chat_template_compile", "%s", t->env.msg);
        msbnb_chat_template_free(h);
        return st;
    }
    tpl_token *toks;
    size_t ntoks;
    tpl_lex(&t->env, source ? source : "", len, &toks, &ntoks);
    tpl_parse(&t->env, toks, ntoks, &t->root);
    *out = h;
    return MSBNB_OK;
}

void msbnb_chat_template_free(msbnb_chat_template *h) {
    if (!h) return;
    tpl_arena_free(&h->t.env.arena);
    free(h->t.bos);
    free(h->t.eos);
    free(h);
}

const char *msbnb_chat_template_bos_token(const msbnb_chat_template *t) { return t ? t->t.bos : NULL; }
const char *msbnb_chat_template_eos_token(const msbnb_chat_template *t) { return t ? t->t.eos : NULL; }

/* ---------------------------------------------------------------- load */

/* tokenizer_config.json's token fields: "<s>" or {"content": "<s>", ...}; NULL when absent/null. */
static char *token_string(const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? msbnb__strdup(v->valuestring) : NULL;
}

static bool is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}
static bool is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

msbnb_status msbnb_chat_template_load(const char *path, msbnb_chat_template **out) {
    RETURN_IF(!out || !path, MSBNB_ERR_INVALID_ARG, "path or out is NULL");
    *out = NULL;
    char errbuf[IO_ERRMSG_CAP];
    /* the directory, and the tokenizer_config.json to read */
    char *dir = NULL, *cfg_path = NULL;
    if (is_dir(path)) {
        dir = msbnb__strdup(path);
    } else {
        const char *slash = strrchr(path, '/');
        dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : msbnb__strdup(".");
        const char *base = slash ? slash + 1 : path;
        if (!strcmp(base, "tokenizer_config.json")) cfg_path = msbnb__strdup(path);
    }
    if (dir && !cfg_path) cfg_path = msbnb__path_join(dir, "tokenizer_config.json");
    char *jinja_path = dir ? msbnb__path_join(dir, "chat_template.jinja") : NULL;
    msbnb_status st = MSBNB_OK;
    char *cfg_text = NULL, *source = NULL, *bos = NULL, *eos = NULL;
    size_t cfg_len = 0, source_len = 0;
    cJSON *cfg = NULL;
    if (!dir || !cfg_path || !jinja_path) {
        st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    if (is_file(cfg_path)) {
        st = msbnb__read_file(cfg_path, MAX_CONFIG_BYTES, &cfg_text, &cfg_len, errbuf);
        if (st != MSBNB_OK) goto done;
        cfg = cJSON_ParseWithLength(cfg_text, cfg_len);
        if (!cJSON_IsObject(cfg)) {
            st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: not a JSON object", cfg_path);
            goto done;
        }
        bos = token_string(cfg, "bos_token");
        eos = token_string(cfg, "eos_token");
    }
    if (is_file(jinja_path)) { /* transformers >= 4.43 saves the template beside the config */
        st = msbnb__read_file(jinja_path, MAX_TEMPLATE_BYTES, &source, &source_len, errbuf);
        if (st != MSBNB_OK) goto done;
    } else {
        const cJSON *ct = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "chat_template") : NULL;
        if (cJSON_IsArray(ct)) { /* [{"name": "default", "template": ...}, {"name": "tool_use", ...}] */
            const cJSON *pick = NULL, *e;
            cJSON_ArrayForEach(e, ct) {
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
                if (cJSON_IsString(name) && !strcmp(name->valuestring, "default")) pick = e;
            }
            ct = pick ? cJSON_GetObjectItemCaseSensitive(pick, "template") : NULL;
        }
        if (!cJSON_IsString(ct)) {
            st = MSBNB_FAIL(MSBNB_ERR_NOT_FOUND,
                            "%s has no chat template (neither chat_template.jinja nor a \"chat_template\" in "
                            "tokenizer_config.json); give one with --chat-template FILE",
                            path);
            goto done;
        }
        source = msbnb__strdup(ct->valuestring);
        source_len = source ? strlen(source) : 0;
        if (!source) {
            st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
    }
    st = msbnb_chat_template_compile(source, source_len, out);
    if (st == MSBNB_OK) {
        (*out)->t.bos = bos, (*out)->t.eos = eos;
        bos = eos = NULL;
    }
done:
    cJSON_Delete(cfg);
    free(cfg_text);
    free(source);
    free(bos);
    free(eos);
    free(dir);
    free(cfg_path);
    free(jinja_path);
    return st;
}

/* ---------------------------------------------------------------- render */

/* A JSON value as a template value (objects keep their key order). */
static tpl_value from_json(tpl_arena *a, const cJSON *j) {
    if (cJSON_IsString(j)) return tpl_cstring(a, j->valuestring);
    if (cJSON_IsBool(j)) return tpl_bool(cJSON_IsTrue(j));
    if (cJSON_IsNull(j)) return tpl_none();
    if (cJSON_IsNumber(j)) {
        const double d = j->valuedouble;
        /* integral numbers become ints (cJSON keeps no int/float distinction; "2.0" is int 2 here) */
        if (d == floor(d) && fabs(d) < 9.0e15) return tpl_int((int64_t)d);
        return tpl_float(d);
    }
    if (cJSON_IsArray(j)) {
        tpl_list *l = tpl_list_new(a, (size_t)cJSON_GetArraySize(j));
        const cJSON *e;
        cJSON_ArrayForEach(e, j) tpl_list_push(a, l, from_json(a, e));
        return tpl_list_value(l, false);
    }
    if (cJSON_IsObject(j)) {
        tpl_dict *d = tpl_dict_new(a, (size_t)cJSON_GetArraySize(j));
        const cJSON *e;
        cJSON_ArrayForEach(e, j) tpl_dict_set(a, d, tpl_cstring(a, e->string ? e->string : ""), from_json(a, e));
        tpl_value v = {.t = V_DICT};
        v.u.d = d;
        return v;
    }
    return tpl_none();
}

static void set_var(tpl_arena *a, tpl_dict *g, const char *name, tpl_value v) { tpl_dict_set(a, g, tpl_cstring(a, name), v); }

/* Shared by both render entry points: messages come as structs or as parsed JSON (one is NULL). */
/* Messages of both render entry points name the public function. */
#define RENDER_API "msbnb_chat_template_render"

static msbnb_status render(const msbnb_chat_template *h, const msbnb_chat_message *messages, size_t n,
                           const cJSON *messages_json, const msbnb_chat_render_params *params, char **text, size_t *len) {
    const msbnb_chat_render_params def = msbnb_chat_render_params_default();
    const msbnb_chat_render_params pr = params ? *params : def; /* a copy: nothing lives in registers across setjmp */
    const msbnb_chat_render_params *p = &pr;
    cJSON *extra = NULL;
    if (p->extra_json) {
        extra = cJSON_Parse(p->extra_json);
        if (!cJSON_IsObject(extra)) {
            cJSON_Delete(extra);
            return msbnb__fail(MSBNB_ERR_FORMAT, RENDER_API, "extra_json is not a JSON object");
        }
    }
    tpl_env *env = calloc(1, sizeof *env);
    if (!env) {
        cJSON_Delete(extra);
        return msbnb__fail(MSBNB_ERR_OUT_OF_MEMORY, RENDER_API, "out of memory");
    }
    tpl_arena_init(&env->arena, env, p->max_memory ? p->max_memory : def.max_memory);
    tpl_buf out = {0};
    out.limit = p->max_output ? p->max_output : def.max_output;
    tpl_ctx c = {.env = env, .a = &env->arena, .out = &out, .max_steps = p->max_steps ? p->max_steps : def.max_steps};
    if (setjmp(env->jb)) {
        const msbnb_status st = msbnb__fail(env->st, RENDER_API, "%s", env->msg);
        tpl_arena_free(&env->arena);
        free(env);
        cJSON_Delete(extra);
        return st;
    }
    tpl_arena *a = &env->arena;
    tpl_dict *g = tpl_dict_new(a, 16);
    tpl_value msgs;
    if (messages_json) {
        msgs = from_json(a, messages_json);
    } else {
        tpl_list *l = tpl_list_new(a, n);
        for (size_t i = 0; i < n; i++) {
            tpl_dict *m = tpl_dict_new(a, 2);
            tpl_dict_set(a, m, tpl_cstring(a, "role"), tpl_cstring(a, messages[i].role ? messages[i].role : ""));
            tpl_dict_set(a, m, tpl_cstring(a, "content"), tpl_cstring(a, messages[i].content ? messages[i].content : ""));
            tpl_value mv = {.t = V_DICT};
            mv.u.d = m;
            tpl_list_push(a, l, mv);
        }
        msgs = tpl_list_value(l, false);
    }
    set_var(a, g, "messages", msgs);
    set_var(a, g, "tools", tpl_none());
    set_var(a, g, "documents", tpl_none());
    set_var(a, g, "add_generation_prompt", tpl_bool(p->add_generation_prompt != 0));
    const char *bos = p->bos_token ? p->bos_token : h->t.bos, *eos = p->eos_token ? p->eos_token : h->t.eos;
    if (bos) set_var(a, g, "bos_token", tpl_cstring(a, bos));
    if (eos) set_var(a, g, "eos_token", tpl_cstring(a, eos));
    if (extra) {
        const cJSON *e;
        cJSON_ArrayForEach(e, extra) set_var(a, g, e->string ? e->string : "", from_json(a, e));
    }
    tpl_render(&c, &h->t.root, g);
    char *result = malloc(out.n + 1);
    if (!result) tpl_fail(env, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    if (out.n) memcpy(result, out.p, out.n);
    result[out.n] = 0;
    *text = result;
    if (len) *len = out.n;
    tpl_arena_free(&env->arena);
    free(env);
    cJSON_Delete(extra);
    return MSBNB_OK;
}

msbnb_status msbnb_chat_template_render(const msbnb_chat_template *t, const msbnb_chat_message *messages, size_t n,
                                        const msbnb_chat_render_params *params, char **text, size_t *len) {
    RETURN_IF(!t || !text || (!messages && n), MSBNB_ERR_INVALID_ARG, "template, messages or text is NULL");
    *text = NULL;
    if (len) *len = 0;
    return render(t, messages, n, NULL, params, text, len);
}

msbnb_status msbnb_chat_template_render_json(const msbnb_chat_template *t, const char *messages_json, size_t json_len,
                                             const msbnb_chat_render_params *params, char **text, size_t *len) {
    RETURN_IF(!t || !text || !messages_json, MSBNB_ERR_INVALID_ARG, "template, messages_json or text is NULL");
    *text = NULL;
    if (len) *len = 0;
    cJSON *j = cJSON_ParseWithLength(messages_json, json_len);
    if (!cJSON_IsArray(j)) {
        cJSON_Delete(j);
        return MSBNB_FAIL(MSBNB_ERR_FORMAT, "messages_json is not a JSON array");
    }
    const msbnb_status st = render(t, NULL, 0, j, params, text, len);
    cJSON_Delete(j);
    return st;
}
