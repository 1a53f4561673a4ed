/*
 * tok_json.c — reads a Hugging Face tokenizer.json into the engine's tables: the BPE model (vocab,
 * merges as "a b" strings or [a, b] pairs, unk_token, byte_fallback, fuse_unk, ignore_merges),
 * added_tokens, normalizer, pre_tokenizer, post_processor and decoder. Anything else (another model
 * type, an unknown step type) is refused with one line naming it and what is supported.
 *
 * Complexity: cJSON parses in linear time (nesting is bounded by cJSON's limit); building the
 * tables is linear in the vocabulary and merges with hash lookups.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* ================================================================ small JSON helpers */

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL; }
static const char *get_str(const cJSON *o, const char *k) {
    const cJSON *v = get(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
static int get_bool(const cJSON *o, const char *k, int dflt) {
    const cJSON *v = get(o, k);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}
/* An integer-valued JSON number in [lo, hi], else -1 result with *ok = 0. */
static int64_t get_int(const cJSON *v, int64_t lo, int64_t hi, int *ok) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= (double)lo) || !(v->valuedouble <= (double)hi) ||
        v->valuedouble != (double)(int64_t)v->valuedouble) {
        *ok = 0;
        return -1;
    }
    return (int64_t)v->valuedouble;
}

static char *dup_n(const char *s, size_t n) {
    char *p = (char *)malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* {"String": "x"} or {"Regex": "x"}: *is_regex tells which; NULL if neither. */
static const char *pattern_of(const cJSON *o, int *is_regex) {
    const cJSON *p = get(o, "pattern");
    const char *s = get_str(p, "String");
    *is_regex = 0;
    if (s) return s;
    s = get_str(p, "Regex");
    if (s) *is_regex = 1;
    return s;
}

#define GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/* ================================================================ normalizers */

static msbnb_status add_norm(msbnb_tokenizer *t, tok_norm *n) {
    tok_norm *v = (tok_norm *)realloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *v);
    if (!v) {
        free(n->a);
        free(n->b);
        tok_regex_free(n->re);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "normalizers");
    }
    t->norm = v;
    t->norm[t->n_norm++] = *n;
    return MSBNB_OK;
}

static msbnb_status parse_norm(msbnb_tokenizer *t, const cJSON *o, int depth) {
    if (!o || cJSON_IsNull(o)) return MSBNB_OK;
    RETURN_IF(depth > 8, MSBNB_ERR_FORMAT, "normalizer Sequence nested too deeply");
    const char *type = get_str(o, "type");
    RETURN_IF(!type, MSBNB_ERR_FORMAT, "normalizer without a \"type\"");
    tok_norm n;
    memset(&n, 0, sizeof n);
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = get(o, "normalizers"), *e;
        RETURN_IF(!cJSON_IsArray(arr), MSBNB_ERR_FORMAT, "normalizer Sequence without \"normalizers\"");
        cJSON_ArrayForEach(e, arr) TRY(parse_norm(t, e, depth + 1));
        return MSBNB_OK;
    }
    if (!strcmp(type, "NFC")) n.kind = NORM_NFC;
    else if (!strcmp(type, "NFD")) n.kind = NORM_NFD;
    else if (!strcmp(type, "NFKC")) n.kind = NORM_NFKC;
    else if (!strcmp(type, "NFKD")) n.kind = NORM_NFKD;
    else if (!strcmp(type, "Lowercase")) n.kind = NORM_LOWERCASE;
    else if (!strcmp(type, "Strip")) {
        n.kind = NORM_STRIP;
        n.left = get_bool(o, "strip_left", 1);
        n.right = get_bool(o, "strip_right", 1);
    } else if (!strcmp(type, "Prepend")) {
        const char *p = get_str(o, "prepend");
        RETURN_IF(!p, MSBNB_ERR_FORMAT, "normalizer Prepend without \"prepend\"");
        n.kind = NORM_PREPEND;
        n.a_len = strlen(p);
        n.a = dup_n(p, n.a_len);
        RETURN_IF(!n.a, MSBNB_ERR_OUT_OF_MEMORY, "normalizer");
    } else if (!strcmp(type, "Replace")) {
        int is_re;
        const char *p = pattern_of(o, &is_re), *c = get_str(o, "content");
        RETURN_IF(!p || !c, MSBNB_ERR_FORMAT, "normalizer Replace needs \"pattern\" and \"content\"");
        n.kind = NORM_REPLACE;
        n.b_len = strlen(c);
        n.b = dup_n(c, n.b_len);
        RETURN_IF(!n.b, MSBNB_ERR_OUT_OF_MEMORY, "normalizer");
        if (is_re) {
            msbnb_status st = tok_regex_compile(p, strlen(p), &n.re);
            if (st != MSBNB_OK) {
                free(n.b);
                return st;
            }
        } else {
            n.a_len = strlen(p);
            n.a = dup_n(p, n.a_len);
            if (!n.a) {
                free(n.b);
                return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "normalizer");
            }
        }
    } else {
        return MSBNB_FAIL(MSBNB_ERR_UNSUPPORTED,
                          "normalizer type '%s' is not supported (supported: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, "
                          "Replace, Strip, Sequence)", type);
    }
    return add_norm(t, &n);
}

/* ================================================================ pre-tokenizers */

static msbnb_status add_pre(msbnb_tokenizer *t, tok_pre *p) {
    tok_pre *v = (tok_pre *)realloc(t->pre, (size_t)(t->n_pre + 1) * sizeof *v);
    if (!v) {
        tok_regex_free(p->re);
        free(p->literal);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "pre-tokenizers");
    }
    t->pre = v;
    t->pre[t->n_pre++] = *p;
    return MSBNB_OK;
}

static msbnb_status parse_replacement(const cJSON *o, char *out, size_t *len, const char *what) {
    const char *r = get_str(o, "replacement");
    if (!r) r = "\xE2\x96\x81"; /* "▁" */
    size_t n = strlen(r);
    uint32_t cp;
    RETURN_IF(n == 0 || n > 4 || tok_utf8_next((const unsigned char *)r, n, &cp) != (int)n, MSBNB_ERR_FORMAT,
              "%s: \"replacement\" must be one character", what);
    memcpy(out, r, n);
    *len = n;
    return MSBNB_OK;
}

static tok_prepend_scheme parse_scheme(const cJSON *o, int *ok) {
    const char *s = get_str(o, "prepend_scheme");
    *ok = 1;
    if (!s) return get_bool(o, "add_prefix_space", 1) ? PREPEND_ALWAYS : PREPEND_NEVER;
    if (!strcmp(s, "always")) return PREPEND_ALWAYS;
    if (!strcmp(s, "first")) return PREPEND_FIRST;
    if (!strcmp(s, "never")) return PREPEND_NEVER;
    *ok = 0;
    return PREPEND_NEVER;
}

static msbnb_status parse_pre(msbnb_tokenizer *t, const cJSON *o, int depth) {
    if (!o || cJSON_IsNull(o)) return MSBNB_OK;
    RETURN_IF(depth > 8, MSBNB_ERR_FORMAT, "pre_tokenizer Sequence nested too deeply");
    const char *type = get_str(o, "type");
    RETURN_IF(!type, MSBNB_ERR_FORMAT, "pre_tokenizer without a \"type\"");
    tok_pre p;
    memset(&p, 0, sizeof p);
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = get(o, "pretokenizers"), *e;
        RETURN_IF(!cJSON_IsArray(arr), MSBNB_ERR_FORMAT, "pre_tokenizer Sequence without \"pretokenizers\"");
        cJSON_ArrayForEach(e, arr) TRY(parse_pre(t, e, depth + 1));
        return MSBNB_OK;
    }
    if (!strcmp(type, "Split")) {
        int is_re;
        const char *pat = pattern_of(o, &is_re), *beh = get_str(o, "behavior");
        RETURN_IF(!pat || !beh, MSBNB_ERR_FORMAT, "pre_tokenizer Split needs \"pattern\" and \"behavior\"");
        p.kind = PRE_SPLIT;
        if (!strcmp(beh, "Removed")) p.behavior = SPLIT_REMOVED;
        else if (!strcmp(beh, "Isolated")) p.behavior = SPLIT_ISOLATED;
        else if (!strcmp(beh, "MergedWithPrevious")) p.behavior = SPLIT_MERGED_PREV;
        else if (!strcmp(beh, "MergedWithNext")) p.behavior = SPLIT_MERGED_NEXT;
        else if (!strcmp(beh, "Contiguous")) p.behavior = SPLIT_CONTIGUOUS;
        else return MSBNB_FAIL(MSBNB_ERR_FORMAT, "pre_tokenizer Split: unknown behavior '%s'", beh);
        p.invert = get_bool(o, "invert", 0);
        if (is_re) {
            TRY(tok_regex_compile(pat, strlen(pat), &p.re));
        } else {
            p.literal_len = strlen(pat);
            p.literal = dup_n(pat, p.literal_len);
            RETURN_IF(!p.literal, MSBNB_ERR_OUT_OF_MEMORY, "pre-tokenizer");
        }
    } else if (!strcmp(type, "ByteLevel")) {
        p.kind = PRE_BYTELEVEL;
        p.add_prefix_space = get_bool(o, "add_prefix_space", 1);
        if (get_bool(o, "use_regex", 1)) TRY(tok_regex_compile(GPT2_PATTERN, strlen(GPT2_PATTERN), &p.re));
    } else if (!strcmp(type, "Metaspace")) {
        int ok;
        p.kind = PRE_METASPACE;
        TRY(parse_replacement(o, p.replacement, &p.replacement_len, "pre_tokenizer Metaspace"));
        p.prepend = parse_scheme(o, &ok);
        RETURN_IF(!ok, MSBNB_ERR_FORMAT, "pre_tokenizer Metaspace: unknown prepend_scheme");
        p.split = get_bool(o, "split", 1);
    } else if (!strcmp(type, "Digits")) {
        p.kind = PRE_DIGITS;
        p.individual = get_bool(o, "individual_digits", 0);
    } else if (!strcmp(type, "WhitespaceSplit")) {
        p.kind = PRE_WS_SPLIT;
    } else if (!strcmp(type, "Whitespace")) { /* the \w+|[^\w\s]+ runs, everything else dropped */
        p.kind = PRE_SPLIT;
        p.behavior = SPLIT_REMOVED;
        p.invert = 1;
        TRY(tok_regex_compile("\\w+|[^\\w\\s]+", 13, &p.re));
    } else {
        return MSBNB_FAIL(MSBNB_ERR_UNSUPPORTED,
                          "pre_tokenizer type '%s' is not supported (supported: Split, ByteLevel, Metaspace, Digits, "
                          "Whitespace, WhitespaceSplit, Sequence)", type);
    }
    return add_pre(t, &p);
}

/* ================================================================ decoders */

static msbnb_status add_dec(msbnb_tokenizer *t, tok_dec *d) {
    tok_dec *v = (tok_dec *)realloc(t->dec, (size_t)(t->n_dec + 1) * sizeof *v);
    if (!v) {
        free(d->a);
        free(d->b);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "decoders");
    }
    t->dec = v;
    t->dec[t->n_dec++] = *d;
    return MSBNB_OK;
}

static msbnb_status parse_dec(msbnb_tokenizer *t, const cJSON *o, int depth) {
    RETURN_IF(depth > 8, MSBNB_ERR_FORMAT, "decoder Sequence nested too deeply");
    const char *type = get_str(o, "type");
    RETURN_IF(!type, MSBNB_ERR_FORMAT, "decoder without a \"type\"");
    tok_dec d;
    memset(&d, 0, sizeof d);
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = get(o, "decoders"), *e;
        RETURN_IF(!cJSON_IsArray(arr), MSBNB_ERR_FORMAT, "decoder Sequence without \"decoders\"");
        cJSON_ArrayForEach(e, arr) TRY(parse_dec(t, e, depth + 1));
        return MSBNB_OK;
    }
    if (!strcmp(type, "ByteLevel")) d.kind = DEC_BYTELEVEL;
    else if (!strcmp(type, "ByteFallback")) d.kind = DEC_BYTEFALLBACK;
    else if (!strcmp(type, "Fuse")) d.kind = DEC_FUSE;
    else if (!strcmp(type, "Metaspace")) {
        char rep[8];
        size_t rl;
        int ok;
        TRY(parse_replacement(o, rep, &rl, "decoder Metaspace"));
        d.kind = DEC_METASPACE;
        d.prepend = parse_scheme(o, &ok) != PREPEND_NEVER;
        RETURN_IF(!ok, MSBNB_ERR_FORMAT, "decoder Metaspace: unknown prepend_scheme");
        d.a = dup_n(rep, rl);
        d.a_len = rl;
        RETURN_IF(!d.a, MSBNB_ERR_OUT_OF_MEMORY, "decoder");
    } else if (!strcmp(type, "Replace")) {
        int is_re;
        const char *p = pattern_of(o, &is_re), *c = get_str(o, "content");
        RETURN_IF(!p || !c, MSBNB_ERR_FORMAT, "decoder Replace needs \"pattern\" and \"content\"");
        RETURN_IF(is_re, MSBNB_ERR_UNSUPPORTED, "decoder Replace with a Regex pattern is not supported (String only)");
        d.kind = DEC_REPLACE;
        d.a_len = strlen(p);
        d.b_len = strlen(c);
        d.a = dup_n(p, d.a_len);
        d.b = dup_n(c, d.b_len);
        if (!d.a || !d.b) {
            free(d.a);
            free(d.b);
            return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "decoder");
        }
    } else if (!strcmp(type, "Strip")) {
        const char *c = get_str(o, "content");
        int ok = 1;
        RETURN_IF(!c || !*c, MSBNB_ERR_FORMAT, "decoder Strip needs \"content\"");
        d.kind = DEC_STRIP;
        d.start = (int)get_int(get(o, "start"), 0, 1 << 20, &ok);
        d.stop = (int)get_int(get(o, "stop"), 0, 1 << 20, &ok);
        RETURN_IF(!ok, MSBNB_ERR_FORMAT, "decoder Strip: \"start\" / \"stop\" must be small non-negative integers");
        d.a_len = strlen(c);
        d.a = dup_n(c, d.a_len);
        RETURN_IF(!d.a, MSBNB_ERR_OUT_OF_MEMORY, "decoder");
    } else {
        return MSBNB_FAIL(MSBNB_ERR_UNSUPPORTED,
                          "decoder type '%s' is not supported (supported: ByteLevel, Metaspace, Replace, ByteFallback, "
                          "Fuse, Strip, Sequence)", type);
    }
    return add_dec(t, &d);
}

/* ================================================================ post-processor */

static msbnb_status push_id(int32_t **v, int *n, int32_t id) {
    int32_t *p = (int32_t *)realloc(*v, (size_t)(*n + 1) * sizeof(int32_t));
    RETURN_IF(!p, MSBNB_ERR_OUT_OF_MEMORY, "post-processor");
    *v = p;
    p[(*n)++] = id;
    return MSBNB_OK;
}

/* ["<s>", 1] of Roberta/Bert processors */
static int32_t pair_id(const cJSON *o, const char *k, int *ok) {
    const cJSON *a = get(o, k);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 2) {
        *ok = 0;
        return -1;
    }
    return (int32_t)get_int(cJSON_GetArrayItem(a, 1), 0, INT32_MAX, ok);
}

static msbnb_status parse_post(msbnb_tokenizer *t, const cJSON *o, int depth) {
    if (!o || cJSON_IsNull(o)) return MSBNB_OK;
    RETURN_IF(depth > 8, MSBNB_ERR_FORMAT, "post_processor Sequence nested too deeply");
    const char *type = get_str(o, "type");
    RETURN_IF(!type, MSBNB_ERR_FORMAT, "post_processor without a \"type\"");
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = get(o, "processors"), *e;
        RETURN_IF(!cJSON_IsArray(arr), MSBNB_ERR_FORMAT, "post_processor Sequence without \"processors\"");
        cJSON_ArrayForEach(e, arr) TRY(parse_post(t, e, depth + 1));
        return MSBNB_OK;
    }
    if (!strcmp(type, "ByteLevel")) return MSBNB_OK; /* offsets only: ids unchanged */
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        int ok = 1;
        int32_t cls = pair_id(o, "cls", &ok), sep = pair_id(o, "sep", &ok);
        RETURN_IF(!ok, MSBNB_ERR_FORMAT, "post_processor %s: \"cls\" / \"sep\" must be [token, id]", type);
        TRY(push_id(&t->post_pre, &t->n_post_pre, cls));
        return push_id(&t->post_post, &t->n_post_post, sep);
    }
    if (strcmp(type, "TemplateProcessing") != 0)
        return MSBNB_FAIL(MSBNB_ERR_UNSUPPORTED,
                          "post_processor type '%s' is not supported (supported: TemplateProcessing, ByteLevel, "
                          "RobertaProcessing, BertProcessing, Sequence)", type);
    const cJSON *single = get(o, "single"), *specials = get(o, "special_tokens"), *e;
    RETURN_IF(!cJSON_IsArray(single), MSBNB_ERR_FORMAT, "TemplateProcessing without \"single\"");
    int seen_a = 0;
    cJSON_ArrayForEach(e, single) {
        const cJSON *seq = get(e, "Sequence"), *sp = get(e, "SpecialToken");
        if (seq) {
            RETURN_IF(seen_a, MSBNB_ERR_UNSUPPORTED, "TemplateProcessing with $A twice in \"single\"");
            seen_a = 1;
            continue;
        }
        const char *name = get_str(sp, "id");
        RETURN_IF(!name, MSBNB_ERR_FORMAT, "TemplateProcessing: a piece of \"single\" is neither Sequence nor SpecialToken");
        const cJSON *ids = get(get(specials, name), "ids"), *x;
        RETURN_IF(!cJSON_IsArray(ids), MSBNB_ERR_FORMAT, "TemplateProcessing: special token '%s' has no \"ids\"", name);
        cJSON_ArrayForEach(x, ids) {
            int ok = 1;
            int32_t id = (int32_t)get_int(x, 0, INT32_MAX, &ok);
            RETURN_IF(!ok, MSBNB_ERR_FORMAT, "TemplateProcessing: special token '%s' has a bad id", name);
            if (seen_a) TRY(push_id(&t->post_post, &t->n_post_post, id));
            else TRY(push_id(&t->post_pre, &t->n_post_pre, id));
        }
    }
    RETURN_IF(!seen_a, MSBNB_ERR_FORMAT, "TemplateProcessing: \"single\" has no $A");
    return MSBNB_OK;
}

/* ================================================================ the model */

static msbnb_status load_merges(msbnb_tokenizer *t, const cJSON *merges, tok_buf *tmp) {
    int n = cJSON_GetArraySize(merges);
    TRY(tok_merges_alloc(t, (size_t)n));
    const cJSON *m;
    int32_t rank = 0;
    cJSON_ArrayForEach(m, merges) {
        const char *a, *b;
        size_t la, lb;
        if (cJSON_IsString(m)) { /* "a b" (the older spelling) */
            const char *sp = strchr(m->valuestring, ' ');
            RETURN_IF(!sp || strchr(sp + 1, ' '), MSBNB_ERR_FORMAT, "model.merges[%d]: '%.40s' is not two tokens", (int)rank,
                      m->valuestring);
            a = m->valuestring;
            la = (size_t)(sp - a);
            b = sp + 1;
            lb = strlen(b);
        } else {
            RETURN_IF(!cJSON_IsArray(m) || cJSON_GetArraySize(m) != 2 || !cJSON_IsString(cJSON_GetArrayItem(m, 0)) ||
                          !cJSON_IsString(cJSON_GetArrayItem(m, 1)),
                      MSBNB_ERR_FORMAT, "model.merges[%d] is neither \"a b\" nor [a, b]", (int)rank);
            a = cJSON_GetArrayItem(m, 0)->valuestring;
            b = cJSON_GetArrayItem(m, 1)->valuestring;
            la = strlen(a);
            lb = strlen(b);
        }
        tmp->n = 0;
        RETURN_IF(!tok_buf_put(tmp, a, la) || !tok_buf_put(tmp, b, lb), MSBNB_ERR_OUT_OF_MEMORY, "merges");
        int32_t ia = tok_vocab_find(t, a, la), ib = tok_vocab_find(t, b, lb), im = tok_vocab_find(t, tmp->p, tmp->n);
        RETURN_IF(ia < 0 || ib < 0 || im < 0, MSBNB_ERR_FORMAT, "model.merges[%d]: '%.*s' + '%.*s' is not in the vocab",
                  (int)rank, (int)(la < 30 ? la : 30), a, (int)(lb < 30 ? lb : 30), b);
        tok_merge_add(t, ia, ib, rank, im);
        rank++;
    }
    return MSBNB_OK;
}

static msbnb_status load_model(msbnb_tokenizer *t, const cJSON *root) {
    const cJSON *model = get(root, "model"), *vocab = get(model, "vocab"), *merges = get(model, "merges");
    const cJSON *added = get(root, "added_tokens"), *e;
    RETURN_IF(!cJSON_IsObject(model), MSBNB_ERR_FORMAT, "no \"model\" object");
    const char *type = get_str(model, "type");
    if (!type && cJSON_IsArray(merges)) type = "BPE";
    RETURN_IF(!type || strcmp(type, "BPE") != 0, MSBNB_ERR_UNSUPPORTED,
              "model type '%s' is not supported (supported: BPE)", type ? type : "(none)");
    RETURN_IF(!cJSON_IsObject(vocab), MSBNB_ERR_FORMAT, "model.vocab is not an object");
    RETURN_IF(!cJSON_IsArray(merges), MSBNB_ERR_FORMAT, "model.merges is not an array");
    RETURN_IF(get_str(model, "continuing_subword_prefix") || get_str(model, "end_of_word_suffix"),
              MSBNB_ERR_UNSUPPORTED, "BPE with continuing_subword_prefix / end_of_word_suffix is not supported");
    RETURN_IF(added && !cJSON_IsArray(added) && !cJSON_IsNull(added), MSBNB_ERR_FORMAT, "added_tokens is not an array");

    /* the id range: every vocab and added id */
    int64_t max_id = -1;
    int ok = 1;
    cJSON_ArrayForEach(e, vocab) {
        int64_t id = get_int(e, 0, (1 << 24) - 1, &ok);
        RETURN_IF(!ok, MSBNB_ERR_FORMAT, "model.vocab['%.40s']: id must be an integer in 0..16777215", e->string);
        if (id > max_id) max_id = id;
    }
    cJSON_ArrayForEach(e, added) {
        int64_t id = get_int(get(e, "id"), 0, (1 << 24) - 1, &ok);
        RETURN_IF(!ok || !get_str(e, "content"), MSBNB_ERR_FORMAT, "added_tokens has an entry without a valid id / content");
        if (id > max_id) max_id = id;
    }
    RETURN_IF(max_id < 0, MSBNB_ERR_FORMAT, "empty vocabulary");
    TRY(tok_alloc_ids(t, (int)max_id + 1));
    cJSON_ArrayForEach(e, vocab) TRY(tok_set_token(t, (int32_t)e->valuedouble, e->string, strlen(e->string)));
    int n_added = cJSON_GetArraySize(added);
    if (n_added > 0) {
        t->added = (tok_added *)calloc((size_t)n_added, sizeof *t->added);
        RETURN_IF(!t->added, MSBNB_ERR_OUT_OF_MEMORY, "added tokens");
    }
    cJSON_ArrayForEach(e, added) {
        int32_t id = (int32_t)get(e, "id")->valuedouble;
        const char *c = get_str(e, "content");
        size_t len = strlen(c);
        if (t->tok_off[id] == TOK_GAP) {
            TRY(tok_set_token(t, id, c, len));
            t->flags[id] |= TOKF_ADDED;
        } else {
            RETURN_IF(t->tok_len[id] != len || memcmp(tok_s(t, id), c, len) != 0, MSBNB_ERR_FORMAT,
                      "added token %d '%.40s' has a different vocab entry", (int)id, c);
        }
        tok_added *a = &t->added[t->n_added++];
        a->id = id;
        a->len = len;
        a->content = dup_n(c, len);
        RETURN_IF(!a->content, MSBNB_ERR_OUT_OF_MEMORY, "added tokens");
        a->special = (uint8_t)get_bool(e, "special", 0);
        a->normalized = (uint8_t)get_bool(e, "normalized", !a->special);
        a->lstrip = (uint8_t)get_bool(e, "lstrip", 0);
        a->rstrip = (uint8_t)get_bool(e, "rstrip", 0);
        a->single_word = (uint8_t)get_bool(e, "single_word", 0);
        if (a->special) t->flags[id] |= TOKF_SPECIAL;
    }
    TRY(tok_build_vocab(t));

    tok_buf tmp = {NULL, 0, 0};
    msbnb_status st = load_merges(t, merges, &tmp);
    free(tmp.p);
    TRY(st);
    t->ignore_merges = get_bool(model, "ignore_merges", 0);
    t->byte_fallback = get_bool(model, "byte_fallback", 0);
    t->fuse_unk = get_bool(model, "fuse_unk", 0);
    t->unk_id = -1;
    const char *unk = get_str(model, "unk_token");
    if (unk) {
        t->unk_id = tok_vocab_find(t, unk, strlen(unk));
        RETURN_IF(t->unk_id < 0, MSBNB_ERR_FORMAT, "model.unk_token '%.40s' is not in the vocab", unk);
    }
    tok_find_byte_tokens(t);
    return MSBNB_OK;
}

msbnb_status tok_load_json(msbnb_tokenizer *t, const char *path, const char *data, size_t len) {
    cJSON *root = cJSON_ParseWithLength(data, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = (at && at >= data && at <= data + len) ? (size_t)(at - data) : 0;
        return MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: not valid JSON (byte %zu)", path, off);
    }
    msbnb_status st = cJSON_IsObject(root) ? MSBNB_OK : MSBNB_FAIL(MSBNB_ERR_FORMAT, "not a JSON object");
    if (st == MSBNB_OK) st = load_model(t, root);
    if (st == MSBNB_OK) st = parse_norm(t, get(root, "normalizer"), 0);
    if (st == MSBNB_OK) st = parse_pre(t, get(root, "pre_tokenizer"), 0);
    if (st == MSBNB_OK) st = parse_post(t, get(root, "post_processor"), 0);
    if (st == MSBNB_OK) {
        const cJSON *d = get(root, "decoder");
        if (!d || cJSON_IsNull(d)) t->no_decoder = 1;
        else st = parse_dec(t, d, 0);
    }
    cJSON_Delete(root);
    if (st != MSBNB_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", tok_error_body(msbnb_last_error()));
        return MSBNB_FAIL(st, "%s: %s", path, msg); /* the helpers did not know the file name */
    }
    for (int k = 0; k < t->n_post_pre; k++)
        RETURN_IF(!tok_valid(t, t->post_pre[k]), MSBNB_ERR_FORMAT, "%s: post_processor id %d is not a token", path,
                  (int)t->post_pre[k]);
    for (int k = 0; k < t->n_post_post; k++)
        RETURN_IF(!tok_valid(t, t->post_post[k]), MSBNB_ERR_FORMAT, "%s: post_processor id %d is not a token", path,
                  (int)t->post_post[k]);
    return MSBNB_OK;
}
