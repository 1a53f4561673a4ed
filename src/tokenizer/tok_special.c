/*
 * tok_special.c — BOS, the EOS set and PAD, from the files beside the tokenizer:
 *
 *   tokenizer_config.json   bos_token / eos_token / pad_token (a string, {"content": ...} or null),
 *                           add_bos_token / add_eos_token
 *   generation_config.json  bos_token_id / eos_token_id (an id or a list) / pad_token_id
 *   config.json             the same keys
 *
 * Priority: tokenizer_config.json, then generation_config.json, then config.json, then what the
 * tokenizer file itself says (SentencePiece's trainer spec, llama2.c's "<s>"). The EOS set is the
 * union, eos_token first: generation stops on any member (Llama-3 instruct models end turns with
 * <|eot_id|> while eos_token is <|end_of_text|>). An explicit null (Qwen's bos_token) means none.
 *
 * When tokenizer_config.json has add_bos_token or add_eos_token, they decide what
 * MSBNB_ENCODE_ADD_SPECIAL adds (as transformers rebuilds the post-processor from them);
 * otherwise the tokenizer's own post-processor does.
 *
 * Complexity: each file is parsed once by cJSON (linear).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

msbnb_status tok_add_eos(msbnb_tokenizer *t, int32_t id) {
    for (int i = 0; i < t->n_eos; i++)
        if (t->eos[i] == id) return MSBNB_OK;
    int32_t *v = (int32_t *)realloc(t->eos, (size_t)(t->n_eos + 1) * sizeof(int32_t));
    RETURN_IF(!v, MSBNB_ERR_OUT_OF_MEMORY, "EOS ids");
    t->eos = v;
    t->eos[t->n_eos++] = id;
    return MSBNB_OK;
}

/* The parsed JSON object of dir/name, or NULL when the file does not exist. FORMAT if it exists and
 * is not a JSON object. */
static msbnb_status read_json(const char *dir, const char *name, cJSON **out) {
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *data = NULL;
    size_t len = 0;
    msbnb_status st = tok_read_file(path, 64u << 20, &data, &len);
    if (st == MSBNB_ERR_NOT_FOUND) return MSBNB_OK;
    TRY(st);
    cJSON *j = cJSON_ParseWithLength(data, len);
    free(data);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: not a JSON object", path);
    }
    *out = j;
    return MSBNB_OK;
}

/* A token named in tokenizer_config.json: 1 and *id (-1 for null or unknown spelling) when the key
 * is present, 0 when absent. */
static int named_token(const msbnb_tokenizer *t, const cJSON *cfg, const char *key, int32_t *id) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v) return 0;
    *id = -1;
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (cJSON_IsString(v)) *id = msbnb_tokenizer_token_to_id(t, v->valuestring, strlen(v->valuestring));
    return 1;
}

typedef struct {
    int present;   /* the key exists (possibly null) */
    int n;
    int32_t id[16];
} id_list;

static msbnb_status one_id(const cJSON *e, int32_t limit, const char *file, const char *key, id_list *out) {
    RETURN_IF(!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= (double)limit ||
                  e->valuedouble != (double)(int32_t)e->valuedouble,
              MSBNB_ERR_FORMAT, "%s: %s holds %g, not an id below %d", file, key, cJSON_IsNumber(e) ? e->valuedouble : -1.0,
              (int)limit);
    if (out->n < 16) out->id[out->n++] = (int32_t)e->valuedouble;
    return MSBNB_OK;
}

static msbnb_status ids_of(const cJSON *cfg, const char *key, int32_t limit, const char *file, id_list *out) {
    out->present = 0;
    out->n = 0;
    const cJSON *v = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, key) : NULL, *e;
    if (!v) return MSBNB_OK;
    out->present = 1;
    if (cJSON_IsNull(v)) return MSBNB_OK;
    if (!cJSON_IsArray(v)) return one_id(v, limit, file, key, out);
    cJSON_ArrayForEach(e, v) TRY(one_id(e, limit, file, key, out));
    return MSBNB_OK;
}

msbnb_status tok_load_special(msbnb_tokenizer *t, const char *dir) {
    cJSON *tc = NULL, *gc = NULL, *mc = NULL;
    msbnb_status st = read_json(dir, "tokenizer_config.json", &tc);
    if (st == MSBNB_OK) st = read_json(dir, "generation_config.json", &gc);
    if (st == MSBNB_OK) st = read_json(dir, "config.json", &mc);
    int32_t limit = t->n_ids > t->model_vocab ? t->n_ids : t->model_vocab;
    id_list gb, ge, gp, mb, me, mp;
    if (st == MSBNB_OK) st = ids_of(gc, "bos_token_id", limit, "generation_config.json", &gb);
    if (st == MSBNB_OK) st = ids_of(gc, "eos_token_id", limit, "generation_config.json", &ge);
    if (st == MSBNB_OK) st = ids_of(gc, "pad_token_id", limit, "generation_config.json", &gp);
    if (st == MSBNB_OK) st = ids_of(mc, "bos_token_id", limit, "config.json", &mb);
    if (st == MSBNB_OK) st = ids_of(mc, "eos_token_id", limit, "config.json", &me);
    if (st == MSBNB_OK) st = ids_of(mc, "pad_token_id", limit, "config.json", &mp);
    if (st != MSBNB_OK) goto done;

    int32_t id;
    /* BOS and PAD: the first source that names them */
    if (named_token(t, tc, "bos_token", &id)) t->bos = id;
    else if (gb.present) t->bos = gb.n ? gb.id[0] : -1;
    else if (mb.present) t->bos = mb.n ? mb.id[0] : -1;
    if (named_token(t, tc, "pad_token", &id)) t->pad = id;
    else if (gp.present) t->pad = gp.n ? gp.id[0] : -1;
    else if (mp.present) t->pad = mp.n ? mp.id[0] : -1;

    /* EOS: the union, eos_token first, the file's own last */
    int32_t *old = t->eos;
    int n_old = t->n_eos;
    t->eos = NULL;
    t->n_eos = 0;
    if (named_token(t, tc, "eos_token", &id) && id >= 0) st = tok_add_eos(t, id);
    for (int i = 0; st == MSBNB_OK && i < ge.n; i++) st = tok_add_eos(t, ge.id[i]);
    for (int i = 0; st == MSBNB_OK && i < me.n; i++) st = tok_add_eos(t, me.id[i]);
    for (int i = 0; st == MSBNB_OK && i < n_old; i++) st = tok_add_eos(t, old[i]);
    free(old);
    if (st != MSBNB_OK) goto done;

    /* add_bos_token / add_eos_token replace the post-processor */
    const cJSON *ab = cJSON_GetObjectItemCaseSensitive(tc, "add_bos_token");
    const cJSON *ae = cJSON_GetObjectItemCaseSensitive(tc, "add_eos_token");
    if (cJSON_IsBool(ab) || cJSON_IsBool(ae)) {
        free(t->post_pre);
        free(t->post_post);
        t->post_pre = t->post_post = NULL;
        t->n_post_pre = t->n_post_post = 0;
        if (cJSON_IsTrue(ab) && t->bos >= 0) {
            t->post_pre = (int32_t *)malloc(sizeof(int32_t));
            if (!t->post_pre) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "post-processor");
            else t->post_pre[t->n_post_pre++] = t->bos;
        }
        if (st == MSBNB_OK && cJSON_IsTrue(ae) && t->n_eos > 0) {
            t->post_post = (int32_t *)malloc(sizeof(int32_t));
            if (!t->post_post) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "post-processor");
            else t->post_post[t->n_post_post++] = t->eos[0];
        }
    }
    if (st == MSBNB_OK && t->bos >= 0 && t->bos < t->n_ids) t->flags[t->bos] |= TOKF_SPECIAL;
done:
    cJSON_Delete(tc);
    cJSON_Delete(gc);
    cJSON_Delete(mc);
    return st;
}
