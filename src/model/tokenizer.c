/*
 * tokenizer.c — the llama2.c tokenizer (sentencepiece BPE exported by llama2.c's tokenizer.py).
 *
 * File: int32 max_token_length, then for each of vocab_size tokens: float32 score, int32 len,
 * len bytes (no NUL). Ids 0..2 are <unk>, <s> (BOS), </s> (EOS); ids 3..258 are the byte tokens
 * "<0x00>".."<0xFF>" in sentencepiece vocabularies (we detect them by their spelling).
 *
 * Encoding (the same result as llama2.c run.c's encode()):
 *   1. BOS if asked; a dummy-prefix " " token when the text is non-empty (sentencepiece's
 *      add_dummy_prefix);
 *   2. each UTF-8 code point becomes its token if the vocabulary has it, else one byte token per
 *      byte (id = byte + 3, sentencepiece's byte_fallback);
 *   3. repeatedly merge the adjacent pair whose concatenation is a token with the highest score,
 *      the leftmost one on ties, until no pair merges;
 *   4. EOS if asked.
 * Step 3 with a linear scan per merge is O(n²); we keep candidate pairs in a binary heap ordered by
 * (score desc, position asc) over a doubly linked list of symbols, with stale entries discarded when
 * popped, which selects exactly the same pair at every step in O(n log n) — long texts (a whole
 * perplexity corpus) encode in well under a second.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/llama_internal.h"

#define TOK_BOS 1
#define TOK_EOS 2

struct msbnb_tokenizer {
    int vocab_size;
    int max_token_length;
    char **vocab;          /* [vocab_size] NUL-terminated pieces (owned)                    */
    int *len;              /* [vocab_size] byte lengths (pieces may not contain NUL)        */
    float *scores;         /* [vocab_size] merge scores                                     */
    int *sorted;           /* [vocab_size] ids sorted by piece (bytes), for binary search  */
    int byte_id[256];      /* id of "<0xXX>" for each byte, -1 if absent                    */
    int *is_byte;          /* [vocab_size] byte value for byte tokens, else -1              */
    unsigned char byte_piece[256]; /* the single bytes decode returns for byte tokens          */
};

/* ================================================================ loading */

/* Sort key for the lookup table (qsort has no context argument: sort these, then keep the ids). */
typedef struct {
    const char *s;
    int len, id;
} piece_key;

static int cmp_piece_keys(const void *a, const void *b) {
    const piece_key *x = (const piece_key *)a, *y = (const piece_key *)b;
    int c = memcmp(x->s, y->s, (size_t)(x->len < y->len ? x->len : y->len));
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id; /* duplicate pieces: lowest id first (lookup finds it) */
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

void msbnb_tokenizer_free(msbnb_tokenizer *t) {
    if (!t) return;
    if (t->vocab)
        for (int i = 0; i < t->vocab_size; i++) free(t->vocab[i]);
    free(t->vocab);
    free(t->len);
    free(t->scores);
    free(t->sorted);
    free(t->is_byte);
    free(t);
}

static msbnb_status load_entries(msbnb_tokenizer *t, FILE *f, const char *path, long file_len) {
    int32_t mtl;
    RETURN_IF(fread(&mtl, 4, 1, f) != 1, MSBNB_ERR_FORMAT, "%s: truncated header (byte 0)", path);
    RETURN_IF(mtl < 1 || mtl > 65536, MSBNB_ERR_FORMAT, "%s: max_token_length %d out of range (byte 0)", path, mtl);
    t->max_token_length = mtl;
    long off = 4;
    for (int i = 0; i < t->vocab_size; i++) {
        float score;
        int32_t len;
        RETURN_IF(fread(&score, 4, 1, f) != 1 || fread(&len, 4, 1, f) != 1, MSBNB_ERR_FORMAT,
                  "%s: truncated at token %d of %d (byte %ld)", path, i, t->vocab_size, off);
        RETURN_IF(len < 0 || len > mtl || (long)len > file_len - off - 8, MSBNB_ERR_FORMAT,
                  "%s: token %d has length %d (max_token_length %d, byte %ld)", path, i, len, mtl, off + 4);
        RETURN_IF(score != score, MSBNB_ERR_FORMAT, "%s: token %d has a NaN score (byte %ld)", path, i, off);
        t->scores[i] = score;
        t->len[i] = len;
        t->vocab[i] = (char *)malloc((size_t)len + 1);
        RETURN_IF(!t->vocab[i], MSBNB_ERR_OUT_OF_MEMORY, "token %d", i);
        RETURN_IF(len > 0 && fread(t->vocab[i], 1, (size_t)len, f) != (size_t)len, MSBNB_ERR_FORMAT,
                  "%s: truncated in token %d (byte %ld)", path, i, off + 8);
        t->vocab[i][len] = '\0';
        RETURN_IF(memchr(t->vocab[i], 0, (size_t)len) != NULL, MSBNB_ERR_FORMAT,
                  "%s: token %d contains a NUL byte (byte %ld)", path, i, off + 8);
        off += 8 + len;
    }
    RETURN_IF(off != file_len, MSBNB_ERR_FORMAT, "%s: %ld trailing bytes after %d tokens (byte %ld)", path,
              file_len - off, t->vocab_size, off);
    return MSBNB_OK;
}

msbnb_status msbnb_tokenizer_load(const char *path, int vocab_size, msbnb_tokenizer **out) {
    RETURN_IF(!path || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    RETURN_IF(vocab_size < 3 || vocab_size > (1 << 21), MSBNB_ERR_INVALID_ARG, "vocab_size %d out of range",
              vocab_size);
    FILE *f = fopen(path, "rb");
    RETURN_IF(!f, MSBNB_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    long file_len = -1;
    if (fseek(f, 0, SEEK_END) == 0) file_len = ftell(f);
    if (file_len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return MSBNB_FAIL(MSBNB_ERR_IO, "%s: cannot determine size", path);
    }
    msbnb_tokenizer *t = (msbnb_tokenizer *)calloc(1, sizeof *t);
    msbnb_status st = MSBNB_OK;
    if (t) {
        t->vocab_size = vocab_size;
        t->vocab = (char **)calloc((size_t)vocab_size, sizeof(char *));
        t->len = (int *)calloc((size_t)vocab_size, sizeof(int));
        t->scores = (float *)calloc((size_t)vocab_size, sizeof(float));
        t->sorted = (int *)calloc((size_t)vocab_size, sizeof(int));
        t->is_byte = (int *)calloc((size_t)vocab_size, sizeof(int));
    }
    if (!t || !t->vocab || !t->len || !t->scores || !t->sorted || !t->is_byte)
        st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "tokenizer");
    if (st == MSBNB_OK) st = load_entries(t, f, path, file_len);
    fclose(f);
    if (st != MSBNB_OK) {
        msbnb_tokenizer_free(t);
        return st;
    }
    for (int b = 0; b < 256; b++) {
        t->byte_id[b] = -1;
        t->byte_piece[b] = (unsigned char)b;
    }
    piece_key *keys = (piece_key *)malloc((size_t)vocab_size * sizeof *keys);
    if (!keys) {
        msbnb_tokenizer_free(t);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "tokenizer index");
    }
    for (int i = 0; i < vocab_size; i++) {
        keys[i].s = t->vocab[i];
        keys[i].len = t->len[i];
        keys[i].id = i;
        t->is_byte[i] = -1;
        const char *s = t->vocab[i];
        if (t->len[i] == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>') {
            int hi = hexval(s[3]), lo = hexval(s[4]);
            if (hi >= 0 && lo >= 0) {
                t->is_byte[i] = hi * 16 + lo;
                if (t->byte_id[hi * 16 + lo] < 0) t->byte_id[hi * 16 + lo] = i;
            }
        }
    }
    qsort(keys, (size_t)vocab_size, sizeof *keys, cmp_piece_keys);
    for (int i = 0; i < vocab_size; i++) t->sorted[i] = keys[i].id;
    free(keys);
    *out = t;
    return MSBNB_OK;
}

int msbnb_tokenizer_vocab_size(const msbnb_tokenizer *t) { return t ? t->vocab_size : 0; }

/* Id of the piece s[0..n) or -1 (binary search over the sorted ids; lowest id among duplicates). */
static int lookup(const msbnb_tokenizer *t, const char *s, int n) {
    int lo = 0, hi = t->vocab_size;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, id = t->sorted[mid], l = t->len[id];
        int c = memcmp(t->vocab[id], s, (size_t)(l < n ? l : n));
        if (c == 0) c = (l < n) ? -1 : (l > n);
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo < t->vocab_size) {
        int id = t->sorted[lo];
        if (t->len[id] == n && memcmp(t->vocab[id], s, (size_t)n) == 0) return id;
    }
    return -1;
}

/* ================================================================ BPE merges */

/* Symbols form a linked list; sym i spans bytes of its current token. */
typedef struct {
    int id;          /* current token id, -1 once merged into its left neighbour */
    int prev, next;  /* neighbour indices, -1 at the ends                      */
} bpe_sym;

/* A candidate merge of symbol `left` with its current right neighbour, valid only while both
 * still carry the ids recorded here. */
typedef struct {
    float score;
    int left, right;
    int left_id, right_id, merged_id;
} bpe_cand;

static int cand_before(const bpe_cand *a, const bpe_cand *b) { /* higher score first, then leftmost */
    if (a->score != b->score) return a->score > b->score;
    return a->left < b->left;
}

typedef struct {
    bpe_cand *v;
    size_t n, cap;
} bpe_heap;

static int heap_push(bpe_heap *h, bpe_cand c) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        bpe_cand *v = (bpe_cand *)realloc(h->v, cap * sizeof *v);
        if (!v) return 0;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&c, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = c;
    return 1;
}

static bpe_cand heap_pop(bpe_heap *h) {
    bpe_cand top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && cand_before(&h->v[c + 1], &h->v[c])) c++;
        if (!cand_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0) h->v[i] = last;
    return top;
}

/* Push the pair (left, its right neighbour) if their concatenation is a token. */
static int push_pair(const msbnb_tokenizer *t, const bpe_sym *sym, int left, bpe_heap *h, char *buf) {
    int right = sym[left].next;
    if (right < 0) return 1;
    int a = sym[left].id, b = sym[right].id;
    int la = t->len[a], lb = t->len[b];
    if (la + lb > t->max_token_length) return 1;
    memcpy(buf, t->vocab[a], (size_t)la);
    memcpy(buf + la, t->vocab[b], (size_t)lb);
    int id = lookup(t, buf, la + lb);
    if (id < 0) return 1;
    bpe_cand c = {t->scores[id], left, right, a, b, id};
    return heap_push(h, c);
}

static msbnb_status bpe_merge(const msbnb_tokenizer *t, int32_t *ids, int *n) {
    const int count = *n;
    if (count < 2) return MSBNB_OK;
    bpe_sym *sym = (bpe_sym *)malloc((size_t)count * sizeof *sym);
    char *buf = (char *)malloc((size_t)t->max_token_length * 2 + 2);
    bpe_heap h = {NULL, 0, 0};
    int ok = sym && buf;
    for (int i = 0; ok && i < count; i++) {
        sym[i].id = ids[i];
        sym[i].prev = i - 1;
        sym[i].next = (i + 1 < count) ? i + 1 : -1;
    }
    for (int i = 0; ok && i + 1 < count; i++) ok = push_pair(t, sym, i, &h, buf);
    while (ok && h.n > 0) {
        bpe_cand c = heap_pop(&h);
        /* Stale if either side changed since the candidate was made. */
        if (sym[c.left].id != c.left_id || sym[c.left].next != c.right || sym[c.right].id != c.right_id) continue;
        sym[c.left].id = c.merged_id;
        int nx = sym[c.right].next;
        sym[c.left].next = nx;
        if (nx >= 0) sym[nx].prev = c.left;
        sym[c.right].id = -1;
        if (sym[c.left].prev >= 0) ok = push_pair(t, sym, sym[c.left].prev, &h, buf);
        if (ok) ok = push_pair(t, sym, c.left, &h, buf);
    }
    int m = 0;
    if (ok)
        for (int i = 0; i >= 0; i = sym[i].next) ids[m++] = sym[i].id;
    free(sym);
    free(buf);
    free(h.v);
    RETURN_IF(!ok, MSBNB_ERR_OUT_OF_MEMORY, "BPE merge of %d symbols", count);
    *n = m;
    return MSBNB_OK;
}

/* ================================================================ encode / decode */

msbnb_status msbnb_tokenizer_encode(const msbnb_tokenizer *t, const char *text, size_t len, int bos, int eos,
                                    int32_t *ids, int cap, int *n_ids) {
    RETURN_IF(!t || (!text && len) || !ids || !n_ids, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(cap < 0 || (size_t)cap < len + 3, MSBNB_ERR_SHAPE, "ids holds %d, text of %zu bytes may need %zu", cap,
              len, len + 3);
    RETURN_IF(len > 0 && memchr(text, 0, len) != NULL, MSBNB_ERR_INVALID_ARG, "text contains a NUL byte");
    int n = 0;
    if (bos) ids[n++] = TOK_BOS;
    int first = n;
    if (len > 0) {
        int sp = lookup(t, " ", 1);
        if (sp >= 0) ids[n++] = sp;
    }
    /* Code points: a lead byte and its continuation bytes (10xxxxxx), at most 4 bytes. */
    size_t i = 0;
    while (i < len) {
        size_t j = i + 1;
        while (j < len && j - i < 4 && ((unsigned char)text[j] & 0xC0) == 0x80) j++;
        int id = lookup(t, text + i, (int)(j - i));
        if (id >= 0) {
            ids[n++] = id;
        } else {
            for (size_t b = i; b < j; b++) {
                int bid = t->byte_id[(unsigned char)text[b]];
                /* llama2.c's fallback is byte + 3 (sentencepiece layout); prefer the spelled token. */
                ids[n++] = bid >= 0 ? bid : ((unsigned char)text[b] + 3 < t->vocab_size ? (unsigned char)text[b] + 3 : 0);
            }
        }
        i = j;
    }
    int m = n - first;
    TRY(bpe_merge(t, ids + first, &m));
    n = first + m;
    if (eos) ids[n++] = TOK_EOS;
    *n_ids = n;
    return MSBNB_OK;
}

msbnb_status msbnb_tokenizer_decode(const msbnb_tokenizer *t, int32_t prev, int32_t token, const char **piece,
                                    size_t *len) {
    RETURN_IF(!t || !piece || !len, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(token < 0 || token >= t->vocab_size, MSBNB_ERR_INVALID_ARG, "token %d out of range 0..%d", token,
              t->vocab_size - 1);
    if (t->is_byte[token] >= 0) {
        *piece = (const char *)&t->byte_piece[t->is_byte[token]];
        *len = 1;
        return MSBNB_OK;
    }
    const char *s = t->vocab[token];
    size_t n = (size_t)t->len[token];
    if (prev == TOK_BOS && n > 0 && s[0] == ' ') { /* sentencepiece strips the dummy prefix */
        s++;
        n--;
    }
    *piece = s;
    *len = n;
    return MSBNB_OK;
}
