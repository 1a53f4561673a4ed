/*
 * tok_internal.h — the tokenizer engine's shared state (never installed).
 *
 * One struct serves the three file formats: every loader (tok_json.c, tok_spm.c, tok_llama2c.c)
 * fills the same vocabulary, merge table, added tokens and step lists, and one pipeline
 * (tokenizer.c → tok_added.c → tok_normalize.c → tok_pretokenize.c → tok_bpe.c, decoding in
 * tok_decode.c) runs them. Nothing in the pipeline knows which format or model family it serves.
 */
#ifndef MSBNB_TOK_INTERNAL_H
#define MSBNB_TOK_INTERNAL_H

#include <msbnb/tokenizer.h>

#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"

/* ================================================================ growable buffers */

typedef struct {
    char *p;
    size_t n, cap;
} tok_buf;

typedef struct {
    int32_t *p;
    size_t n, cap;
} tok_ids;

int tok_buf_put(tok_buf *b, const void *s, size_t n); /* 1 ok, 0 out of memory */
int tok_ids_push(tok_ids *v, int32_t id);

/* A piece of text: bytes [off, off+len) of some buffer. */
typedef struct {
    size_t off, len;
} tok_span;

typedef struct {
    tok_span *p;
    size_t n, cap;
} tok_spans;

int tok_spans_push(tok_spans *v, size_t off, size_t len);

/* ================================================================ UTF-8 and Unicode helpers */

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 if invalid there. *cp its code point. */
int tok_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);
/* Offset of the first invalid byte, or n when s[0..n) is valid UTF-8. */
size_t tok_utf8_check(const char *s, size_t n);
int tok_utf8_put(uint32_t cp, char out[4]);
/* Append s[0..n) to b with every maximal invalid subsequence replaced by U+FFFD (as Rust's
 * String::from_utf8_lossy). */
int tok_buf_put_lossy(tok_buf *b, const char *s, size_t n);
int tok_is_whitespace(uint32_t cp); /* Unicode White_Space (Rust char::is_whitespace) */

/* ================================================================ hashing */

uint64_t tok_hash(const void *s, size_t n);

/* A recorded error message without its leading "function_name: " (when it has one), so a caller
 * can re-record it with the file name in front. */
const char *tok_error_body(const char *msg);

/* ================================================================ steps of the pipeline */

/* Normalizers (a Sequence is flattened into the list). */
typedef enum {
    NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD, NORM_LOWERCASE, NORM_PREPEND, NORM_REPLACE, NORM_STRIP
} tok_norm_kind;

typedef struct {
    tok_norm_kind kind;
    char *a;           /* PREPEND: the prefix; REPLACE: the literal pattern (NULL when regex) */
    size_t a_len;
    char *b;           /* REPLACE: the replacement                                            */
    size_t b_len;
    void *re;          /* REPLACE with a Regex pattern: pcre2_code_8 *                        */
    int left, right;   /* STRIP                                                               */
} tok_norm;

/* Pre-tokenizers (a Sequence is flattened). */
typedef enum { PRE_SPLIT, PRE_BYTELEVEL, PRE_METASPACE, PRE_DIGITS, PRE_WS_SPLIT } tok_pre_kind;
typedef enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS } tok_split_behavior;
typedef enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER } tok_prepend_scheme;

typedef struct {
    tok_pre_kind kind;
    void *re;                  /* SPLIT with a Regex, BYTELEVEL with use_regex: pcre2_code_8 * */
    char *literal;             /* SPLIT with a String pattern                                   */
    size_t literal_len;
    tok_split_behavior behavior;
    int invert;
    int add_prefix_space;      /* BYTELEVEL                                                     */
    char replacement[8];       /* METASPACE: the replacement character, UTF-8 (usually "▁")     */
    size_t replacement_len;
    tok_prepend_scheme prepend;/* METASPACE                                                     */
    int split;                 /* METASPACE                                                     */
    int individual;            /* DIGITS                                                        */
} tok_pre;

/* Decoders (a Sequence is flattened). */
typedef enum { DEC_BYTELEVEL, DEC_METASPACE, DEC_REPLACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP } tok_dec_kind;

typedef struct {
    tok_dec_kind kind;
    char *a;           /* REPLACE: literal pattern; METASPACE: replacement; STRIP: content char */
    size_t a_len;
    char *b;           /* REPLACE: replacement                                                */
    size_t b_len;
    int start, stop;   /* STRIP: characters to strip at each end                             */
    int prepend;       /* METASPACE: strip the first token's leading space (scheme != never)  */
} tok_dec;

/* ================================================================ added tokens */

typedef struct {
    int32_t id;
    char *content;      /* the text matched (for normalized tokens: the normalized content) */
    size_t len;
    uint8_t special, normalized, lstrip, rstrip, single_word;
    uint8_t verbatim;   /* normalized, but matched with its content as is (SentencePiece user symbols) */
} tok_added;

/* A byte trie over added-token contents (one for raw-text matching, one for normalized text):
 * nodes with singly linked edge lists, plus a 256-entry table for the root. */
typedef struct {
    uint8_t byte;
    int32_t node;       /* child node index */
    int32_t next;       /* next edge of the same parent, -1 at the end */
} tok_edge;

typedef struct {
    int32_t *first;     /* [n_nodes] first edge, -1 none */
    int32_t *term;      /* [n_nodes] index into t->added of the token ending here, -1 none */
    int32_t root[256];  /* child of the root per byte (-1 none): the hot first step */
    tok_edge *edges;
    int n_nodes, n_edges, cap_nodes, cap_edges;
} tok_trie;

/* ================================================================ the tokenizer */

#define TOKF_SPECIAL 1u  /* special added token / control piece: skipped by MSBNB_DECODE_SKIP_SPECIAL */
#define TOKF_ADDED 2u    /* an added token (never produced by the BPE model itself)                 */

struct msbnb_tokenizer {
    msbnb_tokenizer_kind kind;
    char *path;

    /* ids 0..n_ids-1; spelling of id i: strings.p[tok_off[i] .. + tok_len[i]), TOK_GAP for none */
    int n_ids;
    size_t *tok_off;            /* [n_ids]                                                      */
    uint32_t *tok_len;          /* [n_ids]                                                      */
    uint8_t *flags;             /* [n_ids] TOKF_*                                               */
    tok_buf strings;            /* every spelling, NUL after each                               */
    char *raw;                  /* per-token decoded bytes (msbnb_tokenizer_decode)            */
    size_t *raw_off;            /* [n_ids + 1] raw bytes of id i: raw[raw_off[i] .. raw_off[i+1]) */

    /* vocabulary lookup (the model's tokens): open addressing, slots hold ids, -1 empty */
    int32_t *vocab_slot;
    uint64_t vocab_mask;

    /* merges: (left id, right id) -> (rank, merged id) */
    uint64_t *merge_key;        /* left << 32 | right; UINT64_MAX empty */
    int32_t *merge_rank, *merge_new;
    uint64_t merge_mask;
    int n_merges;

    /* character pairs (a << 32 | b) that occur inside some vocabulary token: between two known
     * characters that form no such pair, no token can span, so BPE may run on each side alone */
    uint64_t *pair_key;         /* UINT64_MAX empty */
    uint64_t pair_mask;
    uint8_t ascii_known[128];   /* the single character c is a vocabulary token */

    /* BPE model options */
    int ignore_merges, byte_fallback, fuse_unk;
    int32_t unk_id;             /* -1 none */
    int32_t byte_id[256];       /* id of "<0xXX>", -1 absent */

    /* added tokens */
    tok_added *added;
    int n_added;
    tok_trie trie_raw, trie_norm;
    int has_norm_added;

    /* pipeline steps */
    tok_norm *norm;
    int n_norm;
    tok_pre *pre;
    int n_pre;
    tok_dec *dec;
    int n_dec;
    int no_decoder;             /* tokenizer.json with decoder null: HF joins tokens with " " */

    /* post-processing (MSBNB_ENCODE_ADD_SPECIAL): ids before and after the text */
    int32_t *post_pre, *post_post;
    int n_post_pre, n_post_post;

    /* special ids */
    int32_t bos, pad;
    int32_t *eos;
    int n_eos;
    int strip_after_bos;        /* per-token decode: drop a leading space right after BOS */
    int model_vocab;            /* the model's rows (0 = unknown)                          */
    int llama2c_compat;         /* llama2.c encode rules (invalid UTF-8 passes as bytes)    */
};

/* ================================================================ building (loaders) */

#define TOK_GAP ((size_t)-1)
static inline const char *tok_s(const msbnb_tokenizer *t, int32_t id) { return t->strings.p + t->tok_off[id]; }
static inline int tok_valid(const msbnb_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_ids && t->tok_off[id] != TOK_GAP;
}

/* Allocate the id tables for n_ids ids (all gaps). */
msbnb_status tok_alloc_ids(msbnb_tokenizer *t, int n_ids);
/* Set the spelling of id (copied). FORMAT if the id already has one. */
msbnb_status tok_set_token(msbnb_tokenizer *t, int32_t id, const char *s, size_t len);
/* Build the vocabulary hash from ids [0, n_ids) that are not flagged TOKF_ADDED (lowest id wins on
 * duplicate spellings). */
msbnb_status tok_build_vocab(msbnb_tokenizer *t);
int32_t tok_vocab_find(const msbnb_tokenizer *t, const char *s, size_t n);
/* Merge table of capacity for n merges; tok_merge_add keeps the first (best) rank per pair. */
msbnb_status tok_merges_alloc(msbnb_tokenizer *t, size_t n);
void tok_merge_add(msbnb_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t merged);
int tok_merge_find(const msbnb_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *merged);
/* Merges from scores (SentencePiece / llama2.c): every split of every piece into two pieces,
 * ranked by the piece's score (equal scores share a rank: ties go to the leftmost pair). Pieces with
 * `skip[id]` set (control, byte, unused) are never merge results. */
msbnb_status tok_merges_from_scores(msbnb_tokenizer *t, const float *score, const uint8_t *skip);
/* The character-pair set above (after tok_build_vocab). */
msbnb_status tok_build_pairs(msbnb_tokenizer *t);
int tok_pair_in_vocab(const msbnb_tokenizer *t, uint32_t a, uint32_t b);
/* Byte-fallback ids from "<0xXX>" spellings. */
void tok_find_byte_tokens(msbnb_tokenizer *t);
/* Added tokens: register t->added[0..n_added) in the tries (after normalizers are known). */
msbnb_status tok_build_added(msbnb_tokenizer *t);
/* Per-token decoded bytes and strip_after_bos (after the decoder steps are known). */
msbnb_status tok_build_raw(msbnb_tokenizer *t);
/* Resolve BOS / EOS / PAD and add_bos_token / add_eos_token from the config files in dir. */
msbnb_status tok_load_special(msbnb_tokenizer *t, const char *dir);
/* Append a unique id to the EOS set. */
msbnb_status tok_add_eos(msbnb_tokenizer *t, int32_t id);

msbnb_status tok_load_json(msbnb_tokenizer *t, const char *path, const char *data, size_t len);
msbnb_status tok_load_spm(msbnb_tokenizer *t, const char *path, const unsigned char *data, size_t len);
msbnb_status tok_load_llama2c(msbnb_tokenizer *t, const char *path, const unsigned char *data, size_t len,
                              int vocab_size);
/* Compile a regex (UTF + Unicode properties, JIT when available). */
msbnb_status tok_regex_compile(const char *pattern, size_t len, void **out);
void tok_regex_free(void *re);

/* Read a whole file (at most max bytes) into a malloc'ed buffer with a NUL after it. NOT_FOUND
 * when it does not exist, IO / FORMAT (too large) otherwise. */
msbnb_status tok_read_file(const char *path, size_t max, char **data, size_t *len);

/* Release everything a loader set; t itself too. */
void tok_destroy(msbnb_tokenizer *t);

/* ================================================================ running */

/* Per-call scratch: reused buffers, the word cache and the regex match data. */
typedef struct tok_run tok_run;
tok_run *tok_run_new(const msbnb_tokenizer *t);
void tok_run_free(tok_run *r);

/* Normalize s[0..n) through t's normalizers into out (cleared first). */
msbnb_status tok_normalize(const msbnb_tokenizer *t, tok_run *r, const char *s, size_t n, tok_buf *out);
/* Same with an explicit step list (used for added-token contents at load time). */
msbnb_status tok_normalize_steps(const tok_norm *steps, int n_steps, const char *s, size_t n, tok_buf *out);
/* Pre-tokenize text into pieces; `at_start` = the text begins the input (Metaspace "first").
 * Piece bytes are in *store afterwards (spans index it). */
msbnb_status tok_pretokenize(const msbnb_tokenizer *t, tok_run *r, const char *s, size_t n, int at_start,
                             tok_buf *store, tok_spans *pieces);
/* BPE model over one pre-token; ids appended to out (cached per call). */
msbnb_status tok_bpe_word(const msbnb_tokenizer *t, tok_run *r, const char *s, size_t n, tok_ids *out);
/* Find leftmost-longest matches of `trie` in s and split; used by tokenizer.c. */
typedef struct {
    size_t start, end; /* span in s */
    int32_t added;     /* index into t->added, -1 for plain text */
} tok_seg;
typedef struct {
    tok_seg *p;
    size_t n, cap;
} tok_segs;
msbnb_status tok_split_added(const msbnb_tokenizer *t, const tok_trie *trie, const char *s, size_t n, int skip_special,
                             tok_segs *out);

/* Regex find: next match at or after `from` in s[0..n): returns 1 and [*ms, *me), 0 none, <0 error. */
int tok_regex_find(tok_run *r, void *re, const char *s, size_t n, size_t from, size_t *ms, size_t *me);

/* Scratch access for tok_pretokenize / tok_bpe_word (defined in tokenizer.c). */
struct tok_run {
    void *match;          /* pcre2_match_data_8 *          */
    void *jit_stack;      /* pcre2_jit_stack_8 *           */
    void *mctx;           /* pcre2_match_context_8 *       */
    tok_buf tmp1, tmp2;   /* normalizer / pre-tokenizer ping-pong buffers */
    tok_spans sp1, sp2;
    /* BPE scratch */
    void *sym;            /* symbol array */
    size_t sym_cap;
    void *heap;
    size_t heap_cap;
    /* word cache: piece bytes -> ids */
    uint32_t *cache_slot; /* [cache_mask + 1] entry index + 1, 0 empty */
    uint64_t cache_mask;
    size_t cache_n;
    tok_buf cache_keys;
    tok_ids cache_ids;
    struct tok_cache_entry *cache_ent;
    size_t cache_cap;
};

#endif /* MSBNB_TOK_INTERNAL_H */
