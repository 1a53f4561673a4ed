/*
 * tok_spm.c — reads a SentencePiece tokenizer.model (a protobuf ModelProto) of BPE type, with a
 * minimal protobuf reader of our own, and expresses it in the engine's terms:
 *
 *   ModelProto    1: pieces (repeated SentencePiece: 1 piece, 2 score (float), 3 type)
 *                 2: trainer_spec (3 model_type: 1 unigram, 2 BPE; 35 byte_fallback; 40 unk_id,
 *                    41 bos_id, 42 eos_id, 43 pad_id)
 *                 3: normalizer_spec (1 name, 2 precompiled_charsmap, 3 add_dummy_prefix,
 *                    4 remove_extra_whitespaces, 5 escape_whitespaces)
 *   piece types   1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
 *
 * SentencePiece's BPE merges the adjacent pair whose concatenation is a normal piece of highest
 * score, leftmost on ties: tok_merges_from_scores turns scores into ranks (equal scores share a
 * rank), so the one BPE core gives the same result. User-defined pieces are matched whole in the
 * normalized text and never merged (SentencePiece's "frozen" symbols): they become added tokens
 * matched verbatim after normalization. Control pieces (<s>, </s>, [INST], ...) are never read from
 * text, as in SentencePiece. Normalization: identity (a non-empty precompiled charsmap, as in
 * nmt_nfkc, is approximated by NFKC), then remove_extra_whitespaces, the dummy prefix "▁", and
 * spaces → "▁".
 *
 * Complexity: one pass over the file; every length is checked against the bytes left, varints are
 * at most 10 bytes, nesting is fixed (two levels), so the reader is linear and cannot overrun.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

typedef struct {
    const unsigned char *p, *end, *base;
} pb;

/* ================================================================ wire format */

static int pb_varint(pb *r, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) return 0;
        unsigned char c = *r->p++;
        x |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

/* Next field: its number, wire type and (for LEN) the sub-range; scalars in *v. 0 at the end,
 * -1 malformed. */
static int pb_next(pb *r, uint32_t *field, int *wt, uint64_t *v, pb *sub) {
    if (r->p >= r->end) return 0;
    uint64_t key;
    if (!pb_varint(r, &key) || (key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF) return -1;
    *field = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    switch (*wt) {
    case 0:
        return pb_varint(r, v) ? 1 : -1;
    case 1:
        if (r->end - r->p < 8) return -1;
        memcpy(v, r->p, 8);
        r->p += 8;
        return 1;
    case 5: {
        if (r->end - r->p < 4) return -1;
        uint32_t w;
        memcpy(&w, r->p, 4);
        *v = w;
        r->p += 4;
        return 1;
    }
    case 2: {
        uint64_t len;
        if (!pb_varint(r, &len) || len > (uint64_t)(r->end - r->p)) return -1;
        sub->p = r->p;
        sub->end = r->p + len;
        sub->base = r->base;
        r->p += len;
        return 1;
    }
    default:
        return -1; /* groups (3, 4) and reserved types */
    }
}

/* ================================================================ the model */

typedef struct {
    const char *s;
    size_t len;
    float score;
    int type;
} spm_piece;

typedef struct {
    int model_type, byte_fallback;
    int64_t unk_id, bos_id, eos_id, pad_id;
    int add_dummy_prefix, remove_extra_ws, escape_ws, has_charsmap;
} spm_spec;

static msbnb_status parse_piece(pb *r, spm_piece *pc, const char *path) {
    uint32_t f;
    int wt, rc;
    uint64_t v;
    pb sub;
    pc->s = NULL;
    pc->len = 0;
    pc->score = 0.0f;
    pc->type = 1;
    while ((rc = pb_next(r, &f, &wt, &v, &sub)) == 1) {
        if (f == 1 && wt == 2) {
            pc->s = (const char *)sub.p;
            pc->len = (size_t)(sub.end - sub.p);
        } else if (f == 2 && wt == 5) {
            uint32_t w = (uint32_t)v;
            memcpy(&pc->score, &w, 4);
        } else if (f == 3 && wt == 0) {
            pc->type = (int)v;
        }
    }
    RETURN_IF(rc < 0, MSBNB_ERR_FORMAT, "%s: malformed piece (byte %zu)", path, (size_t)(r->p - r->base));
    return MSBNB_OK;
}

static int64_t as_int32(uint64_t v) { return (int64_t)(int32_t)(uint32_t)v; } /* negative int32 varints */

static msbnb_status parse_specs(pb *r, int which, spm_spec *sp, const char *path) {
    uint32_t f;
    int wt, rc;
    uint64_t v;
    pb sub;
    while ((rc = pb_next(r, &f, &wt, &v, &sub)) == 1) {
        if (wt == 0 && which == 2) {
            if (f == 3) sp->model_type = (int)v;
            else if (f == 35) sp->byte_fallback = v != 0;
            else if (f == 40) sp->unk_id = as_int32(v);
            else if (f == 41) sp->bos_id = as_int32(v);
            else if (f == 42) sp->eos_id = as_int32(v);
            else if (f == 43) sp->pad_id = as_int32(v);
        } else if (which == 3) {
            if (f == 2 && wt == 2) sp->has_charsmap = sub.end > sub.p;
            else if (f == 3 && wt == 0) sp->add_dummy_prefix = v != 0;
            else if (f == 4 && wt == 0) sp->remove_extra_ws = v != 0;
            else if (f == 5 && wt == 0) sp->escape_ws = v != 0;
        }
    }
    RETURN_IF(rc < 0, MSBNB_ERR_FORMAT, "%s: malformed %s (byte %zu)", path, which == 2 ? "trainer_spec" : "normalizer_spec",
              (size_t)(r->p - r->base));
    return MSBNB_OK;
}

static msbnb_status add_norm(msbnb_tokenizer *t, tok_norm_kind kind, const char *a, const char *b, const char *re) {
    tok_norm *v = (tok_norm *)realloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *v);
    RETURN_IF(!v, MSBNB_ERR_OUT_OF_MEMORY, "normalizers");
    t->norm = v;
    tok_norm *n = &t->norm[t->n_norm];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    if (a) {
        n->a_len = strlen(a);
        n->a = (char *)malloc(n->a_len + 1);
        RETURN_IF(!n->a, MSBNB_ERR_OUT_OF_MEMORY, "normalizers");
        memcpy(n->a, a, n->a_len + 1);
    }
    t->n_norm++; /* counted now so tok_destroy frees what is set below */
    if (b) {
        n->b_len = strlen(b);
        n->b = (char *)malloc(n->b_len + 1);
        RETURN_IF(!n->b, MSBNB_ERR_OUT_OF_MEMORY, "normalizers");
        memcpy(n->b, b, n->b_len + 1);
    }
    if (re) TRY(tok_regex_compile(re, strlen(re), &n->re));
    return MSBNB_OK;
}

static msbnb_status add_dec(msbnb_tokenizer *t, tok_dec_kind kind, const char *a, const char *b, int start) {
    tok_dec *v = (tok_dec *)realloc(t->dec, (size_t)(t->n_dec + 1) * sizeof *v);
    RETURN_IF(!v, MSBNB_ERR_OUT_OF_MEMORY, "decoders");
    t->dec = v;
    tok_dec *d = &t->dec[t->n_dec++];
    memset(d, 0, sizeof *d);
    d->kind = kind;
    d->start = start;
    if (a) {
        d->a_len = strlen(a);
        d->a = (char *)malloc(d->a_len + 1);
        RETURN_IF(!d->a, MSBNB_ERR_OUT_OF_MEMORY, "decoders");
        memcpy(d->a, a, d->a_len + 1);
    }
    if (b) {
        d->b_len = strlen(b);
        d->b = (char *)malloc(d->b_len + 1);
        RETURN_IF(!d->b, MSBNB_ERR_OUT_OF_MEMORY, "decoders");
        memcpy(d->b, b, d->b_len + 1);
    }
    return MSBNB_OK;
}

#define SPACE_MARK "\xE2\x96\x81" /* "▁" U+2581 */

static msbnb_status build_spm(msbnb_tokenizer *t, const char *path, const spm_piece *pc, int n, const spm_spec *sp) {
    RETURN_IF(sp->model_type != 2, MSBNB_ERR_UNSUPPORTED,
              "%s: SentencePiece model type %d is not supported (supported: 2 = BPE; unigram models need their "
              "tokenizer.json)", path, sp->model_type);
    TRY(tok_alloc_ids(t, n));
    float *score = (float *)malloc((size_t)n * sizeof(float));
    uint8_t *skip = (uint8_t *)calloc((size_t)n, 1);
    int n_user = 0;
    msbnb_status st = (score && skip) ? MSBNB_OK : MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "pieces");
    for (int i = 0; st == MSBNB_OK && i < n; i++) {
        st = tok_set_token(t, i, pc[i].s, pc[i].len);
        score[i] = pc[i].score;
        skip[i] = pc[i].type != 1; /* only normal pieces are merge results */
        if (pc[i].type == 2 || pc[i].type == 3) t->flags[i] |= TOKF_SPECIAL | TOKF_ADDED;
        if (pc[i].type == 4) n_user++;
    }
    if (st == MSBNB_OK) st = tok_build_vocab(t);
    if (st == MSBNB_OK) st = tok_merges_from_scores(t, score, skip);
    free(score);
    free(skip);
    TRY(st);
    if (n_user > 0) {
        t->added = (tok_added *)calloc((size_t)n_user, sizeof *t->added);
        RETURN_IF(!t->added, MSBNB_ERR_OUT_OF_MEMORY, "user-defined pieces");
        for (int i = 0; i < n; i++) {
            if (pc[i].type != 4 || pc[i].len == 0) continue;
            tok_added *a = &t->added[t->n_added];
            a->content = (char *)malloc(pc[i].len + 1);
            RETURN_IF(!a->content, MSBNB_ERR_OUT_OF_MEMORY, "user-defined pieces");
            memcpy(a->content, pc[i].s, pc[i].len);
            a->content[pc[i].len] = '\0';
            a->len = pc[i].len;
            a->id = i;
            a->normalized = 1;
            a->verbatim = 1;
            t->n_added++;
        }
    }
    t->byte_fallback = sp->byte_fallback;
    t->fuse_unk = 1;
    t->unk_id = (sp->unk_id >= 0 && sp->unk_id < n) ? (int32_t)sp->unk_id : -1;
    tok_find_byte_tokens(t);

    if (sp->has_charsmap) TRY(add_norm(t, NORM_NFKC, NULL, NULL, NULL));
    if (sp->remove_extra_ws) {
        TRY(add_norm(t, NORM_REPLACE, NULL, "", "^ +| +$"));
        TRY(add_norm(t, NORM_REPLACE, NULL, " ", " {2,}"));
    }
    if (sp->add_dummy_prefix) TRY(add_norm(t, NORM_PREPEND, sp->escape_ws ? SPACE_MARK : " ", NULL, NULL));
    if (sp->escape_ws) TRY(add_norm(t, NORM_REPLACE, " ", SPACE_MARK, NULL));

    if (sp->escape_ws) TRY(add_dec(t, DEC_REPLACE, SPACE_MARK, " ", 0));
    TRY(add_dec(t, DEC_BYTEFALLBACK, NULL, NULL, 0));
    TRY(add_dec(t, DEC_FUSE, NULL, NULL, 0));
    if (sp->add_dummy_prefix) TRY(add_dec(t, DEC_STRIP, " ", NULL, 1));

    t->bos = (sp->bos_id >= 0 && sp->bos_id < n) ? (int32_t)sp->bos_id : -1;
    t->pad = (sp->pad_id >= 0 && sp->pad_id < n) ? (int32_t)sp->pad_id : -1;
    if (sp->eos_id >= 0 && sp->eos_id < n) TRY(tok_add_eos(t, (int32_t)sp->eos_id));
    if (t->bos >= 0) { /* what HF's Llama / Mistral tokenizers add: BOS, no EOS */
        t->post_pre = (int32_t *)malloc(sizeof(int32_t));
        RETURN_IF(!t->post_pre, MSBNB_ERR_OUT_OF_MEMORY, "post-processor");
        t->post_pre[0] = t->bos;
        t->n_post_pre = 1;
    }
    return MSBNB_OK;
}

msbnb_status tok_load_spm(msbnb_tokenizer *t, const char *path, const unsigned char *data, size_t len) {
    pb r = {data, data + len, data};
    spm_spec sp = {1, 0, 0, 1, 2, -1, 1, 1, 1, 0}; /* the proto defaults (model_type unigram) */
    size_t cap = 0;
    int n = 0;
    spm_piece *pc = NULL;
    uint32_t f;
    int wt, rc;
    uint64_t v;
    pb sub;
    msbnb_status st = MSBNB_OK;
    while (st == MSBNB_OK && (rc = pb_next(&r, &f, &wt, &v, &sub)) == 1) {
        if (f == 1 && wt == 2) {
            if ((size_t)n == cap) {
                cap = cap ? 2 * cap : 1024;
                spm_piece *q = (spm_piece *)realloc(pc, cap * sizeof *q);
                if (!q) {
                    st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "pieces");
                    break;
                }
                pc = q;
            }
            if (n >= (1 << 24)) st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: more than 2^24 pieces", path);
            else st = parse_piece(&sub, &pc[n++], path);
            if (st == MSBNB_OK && !pc[n - 1].s) st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: piece %d has no text", path, n - 1);
        } else if ((f == 2 || f == 3) && wt == 2) {
            st = parse_specs(&sub, (int)f, &sp, path);
        }
    }
    if (st == MSBNB_OK && rc < 0)
        st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: malformed protobuf (byte %zu)", path, (size_t)(r.p - data));
    if (st == MSBNB_OK && n == 0) st = MSBNB_FAIL(MSBNB_ERR_FORMAT, "%s: no pieces", path);
    if (st == MSBNB_OK) st = build_spm(t, path, pc, n, &sp);
    free(pc);
    return st;
}
