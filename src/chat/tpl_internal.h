/*
 * tpl_internal.h — the chat-template engine (a Jinja subset) shared by its translation units.
 *
 * Pipeline: tpl_lex.c turns the template source into tokens (text runs and the tokens inside
 * {{ }} / {% %}, comments dropped, Jinja's whitespace control and transformers' trim_blocks +
 * lstrip_blocks applied); tpl_parse.c builds a tree of statements and expressions; tpl_eval.c
 * walks it with Python-like values (tpl_value.c) and the filters, tests, methods and globals of
 * tpl_builtins.c (string operations in tpl_strings.c). chat.c is the public API
 * (include/msbnb/chat.h).
 *
 * Memory: everything lives in arenas. The compiled template owns one (tokens, tree, constants);
 * each render has its own, capped at max_memory bytes, freed in one go at the end — so a failure
 * anywhere can leave through longjmp without leaks (tpl_fail). Bounds that keep hostile templates
 * finite: parser nesting (TPL_MAX_NESTING), macro call depth, nesting of values walked
 * recursively (TPL_MAX_VALUE_DEPTH), an evaluation step budget, the output size and the arena cap.
 */
#ifndef MSBNB_CHAT_TPL_INTERNAL_H
#define MSBNB_CHAT_TPL_INTERNAL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"

#define TPL_MAX_NESTING 128     /* parser: nested expressions/statements                    */
#define TPL_MAX_CALL_DEPTH 64   /* evaluator: nested macro calls                            */
#define TPL_MAX_VALUE_DEPTH 256 /* repr / tojson / equality on nested lists and dicts        */

/* ---------------------------------------------------------------- failure and arena */

typedef struct tpl_chunk tpl_chunk;

/* A bump allocator with a byte cap; allocation failure or the cap ends the current operation
 * through env->jb. */
typedef struct tpl_arena {
    tpl_chunk *head;
    size_t used; /* bytes handed out (plus chunk slack) */
    size_t cap;  /* limit on used                        */
    struct tpl_env *env;
} tpl_arena;

/* One operation (compile or render): where to jump on failure and what went wrong. */
typedef struct tpl_env {
    jmp_buf jb;
    msbnb_status st;
    char msg[400];
    int line; /* template line being worked on (0 = unknown) */
    tpl_arena arena;
} tpl_env;

/* Record "line N: message" (one line: newlines become spaces) and longjmp to env->jb. */
_Noreturn void tpl_fail(tpl_env *env, msbnb_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

void tpl_arena_init(tpl_arena *a, tpl_env *env, size_t cap);
void tpl_arena_free(tpl_arena *a);
void *tpl_alloc(tpl_arena *a, size_t bytes);             /* zeroed, 16-byte aligned */
void *tpl_alloc_array(tpl_arena *a, size_t n, size_t size); /* n*size with overflow check */
char *tpl_strdup(tpl_arena *a, const char *s, size_t len);  /* len bytes + NUL */

/* ---------------------------------------------------------------- values */

typedef enum tpl_type {
    V_UNDEF, /* a name or attribute that does not exist: prints "", is false, iterates empty */
    V_NONE,
    V_BOOL,
    V_INT,
    V_FLOAT,
    V_STR,
    V_LIST, /* list or tuple (flag) */
    V_DICT,
    V_NS,    /* namespace(): a dict whose attributes `set ns.x = ...` may change */
    V_FUNC,  /* a global function or a method bound to a value */
    V_MACRO, /* a {% macro %} */
    V_LOOP   /* the `loop` variable of a for loop */
} tpl_type;

typedef struct tpl_str {
    size_t len;
    char s[]; /* len bytes + NUL */
} tpl_str;

typedef struct tpl_value tpl_value;
typedef struct tpl_list {
    size_t n, cap;
    tpl_value *v;
} tpl_list;
typedef struct tpl_dict { /* insertion-ordered, linear lookup (chat data is small) */
    size_t n, cap;
    tpl_value *k, *v;
} tpl_dict;
typedef struct tpl_loop {
    int64_t index0, length;
    const tpl_list *items;
} tpl_loop;

struct tpl_value {
    uint8_t t;     /* tpl_type */
    uint8_t tuple; /* V_LIST: a tuple (repr with parentheses) */
    uint16_t fn;   /* V_FUNC: builtin id (tpl_builtins.c) */
    union {
        int64_t i; /* V_BOOL, V_INT */
        double f;
        const tpl_str *s; /* V_STR; V_UNDEF: the missing name (may be NULL) */
        tpl_list *l;
        tpl_dict *d; /* V_DICT, V_NS */
        tpl_loop *loop;
        const struct tpl_stmt *macro;
        const tpl_value *self; /* V_FUNC: bound receiver (NULL for globals) */
    } u;
};

tpl_value tpl_undef(const tpl_str *name);
tpl_value tpl_none(void);
tpl_value tpl_bool(bool b);
tpl_value tpl_int(int64_t i);
tpl_value tpl_float(double f);
tpl_value tpl_str_value(const tpl_str *s);
tpl_value tpl_func(int fn, const tpl_value *self);
const tpl_str *tpl_str_new(tpl_arena *a, const char *s, size_t len);
tpl_value tpl_string(tpl_arena *a, const char *s, size_t len);
tpl_value tpl_cstring(tpl_arena *a, const char *s);
tpl_list *tpl_list_new(tpl_arena *a, size_t cap);
void tpl_list_push(tpl_arena *a, tpl_list *l, tpl_value v);
tpl_value tpl_list_value(tpl_list *l, bool tuple);
tpl_dict *tpl_dict_new(tpl_arena *a, size_t cap);
void tpl_dict_set(tpl_arena *a, tpl_dict *d, tpl_value k, tpl_value v); /* replaces an equal key */
const tpl_value *tpl_dict_get(const tpl_dict *d, const char *key, size_t len); /* string key */
const tpl_value *tpl_dict_find(tpl_env *env, const tpl_dict *d, tpl_value key);

const char *tpl_type_name(const tpl_value *v); /* Python's: 'str', 'int', 'dict', ... */
bool tpl_truthy(const tpl_value *v);
/* Python ==, deep (True == 1, 1 == 1.0, undefined == undefined). */
bool tpl_equal(tpl_env *env, const tpl_value *a, const tpl_value *b, int depth);
/* Python ordering (<0, 0, >0) for numbers, strings, lists; fails on other types. */
int tpl_compare(tpl_env *env, const tpl_value *a, const tpl_value *b, int depth);

/* Growable byte buffer in an arena (output, string building). */
typedef struct tpl_buf {
    char *p;
    size_t n, cap;
    size_t limit; /* fail with OUT_OF_MEMORY past this many bytes (0 = arena cap only) */
} tpl_buf;
void tpl_buf_put(tpl_arena *a, tpl_buf *b, const char *s, size_t len);
void tpl_buf_putc(tpl_arena *a, tpl_buf *b, char c);
const tpl_str *tpl_buf_str(tpl_arena *a, const tpl_buf *b);

/* str(v) as Python/Jinja prints it (strings as is, None, True, 1.0, ['a', 1], {'k': 'v'}). */
void tpl_to_str(tpl_arena *a, tpl_buf *out, const tpl_value *v, int depth);
/* repr(v): strings quoted. */
void tpl_repr(tpl_arena *a, tpl_buf *out, const tpl_value *v, int depth);
const tpl_str *tpl_stringify(tpl_arena *a, const tpl_value *v);
/* json.dumps(v, ensure_ascii=False, indent, sort_keys) — transformers' tojson. indent < 0: none;
 * indent_str non-NULL overrides indent with that string. */
void tpl_to_json(tpl_arena *a, tpl_buf *out, const tpl_value *v, int indent, const tpl_str *indent_str,
                 bool sort_keys, int level);
/* Python float repr ("1.0", "0.1", "1e+16", "inf"). */
void tpl_float_repr(double f, char buf[40]);

/* UTF-8 helpers: code point count, and the byte offset of code point i (i <= count). */
size_t tpl_utf8_len(const char *s, size_t n);
size_t tpl_utf8_offset(const char *s, size_t n, size_t i);
/* Python's str.isspace() for the code point starting at s (bytes in *w). */
bool tpl_utf8_space(const char *s, size_t n, size_t *w);

/* ---------------------------------------------------------------- tokens */

typedef enum tpl_tok_type {
    T_EOF,
    T_TEXT,
    T_VAR_BEGIN,
    T_VAR_END,
    T_BLOCK_BEGIN,
    T_BLOCK_END,
    T_NAME,
    T_STRING,
    T_INT,
    T_FLOAT,
    T_OP
} tpl_tok_type;

typedef enum tpl_op {
    OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_TILDE,
    OP_LBRACK, OP_RBRACK, OP_LPAREN, OP_RPAREN, OP_LBRACE, OP_RBRACE,
    OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE, OP_ASSIGN, OP_DOT, OP_COLON, OP_PIPE, OP_COMMA,
    OP_SEMI
} tpl_op;

typedef struct tpl_token {
    uint8_t type; /* tpl_tok_type */
    uint8_t op;   /* T_OP: tpl_op */
    int line;
    const char *s; /* T_TEXT, T_NAME, T_STRING (unescaped): bytes in the template's arena */
    size_t len;
    int64_t i;
    double f;
} tpl_token;

/* Tokens of src (n bytes) into *toks (arena), ending with T_EOF. */
void tpl_lex(tpl_env *env, const char *src, size_t n, tpl_token **toks, size_t *ntoks);

/* ---------------------------------------------------------------- tree */

typedef enum tpl_expr_kind {
    E_CONST, E_NAME, E_LIST, E_TUPLE, E_DICT, E_ATTR, E_ITEM, E_SLICE, E_CALL, E_FILTER, E_TEST,
    E_NOT, E_NEG, E_POS, E_BINOP, E_AND, E_OR, E_COMPARE, E_COND
} tpl_expr_kind;

typedef struct tpl_expr tpl_expr;
struct tpl_expr {
    uint8_t kind;
    uint8_t op;      /* E_BINOP: tpl_op; E_TEST: negated */
    int line;
    int fn;          /* E_FILTER / E_TEST: builtin id */
    const tpl_str *name; /* E_NAME, E_ATTR, E_FILTER, E_TEST */
    tpl_value cval;  /* E_CONST */
    tpl_expr *a, *b, *c, *d; /* operands; E_SLICE: a[b:c:d]; E_COND: b if a else c */
    tpl_expr **args; /* list items, dict k/v pairs, call/filter/test arguments (after `a`) */
    const tpl_str **kw; /* per argument: keyword name or NULL */
    uint8_t *ops;    /* E_COMPARE: op of args[i] (OP_EQ.., OP_IN = 100, OP_NOTIN = 101) */
    int nargs;
};
#define OP_IN 100
#define OP_NOTIN 101

typedef enum tpl_stmt_kind {
    S_TEXT, S_OUTPUT, S_IF, S_FOR, S_SET, S_SET_ATTR, S_SET_BLOCK, S_MACRO, S_BREAK, S_CONTINUE
} tpl_stmt_kind;

typedef struct tpl_stmt tpl_stmt;
typedef struct tpl_body {
    tpl_stmt **s;
    int n;
} tpl_body;

struct tpl_stmt {
    uint8_t kind;
    int line;
    const char *text; /* S_TEXT */
    size_t len;
    tpl_expr *expr;   /* S_OUTPUT value, S_IF condition, S_FOR iterable, S_SET value */
    tpl_expr *cond;   /* S_FOR: `if` filter (may be NULL) */
    const tpl_str **names; /* S_FOR / S_SET targets, S_MACRO parameters; S_SET_ATTR: {obj, attr} */
    int nnames;
    tpl_expr **defaults;   /* S_MACRO: per parameter, NULL = required */
    const tpl_str *macro_name;
    tpl_body body, orelse; /* S_IF: then / else (elif nests), S_FOR: body / else, S_MACRO, S_SET_BLOCK */
};

typedef struct tpl_template {
    tpl_env env; /* its arena holds everything below */
    tpl_body root;
    char *bos, *eos; /* from tokenizer_config.json (malloc'ed) or NULL */
} tpl_template;

/* Parse tokens into t->root (failures through t->env). */
void tpl_parse(tpl_env *env, const tpl_token *toks, size_t ntoks, tpl_body *root);

/* ---------------------------------------------------------------- builtins */

/* Ids of filters / tests by name, -1 if unknown (checked at parse time, as Jinja does). */
int tpl_filter_id(const char *name, size_t len);
int tpl_test_id(const char *name, size_t len);

typedef struct tpl_ctx tpl_ctx;
/* Argument list of a call: positional values then keyword ones. */
typedef struct tpl_args {
    const tpl_value *pos;
    int npos;
    const tpl_value *kwv;
    const tpl_str *const *kwn;
    int nkw;
} tpl_args;

tpl_value tpl_apply_filter(tpl_ctx *c, int fn, const tpl_value *v, const tpl_args *args);
bool tpl_apply_test(tpl_ctx *c, int fn, const tpl_value *v, const tpl_args *args);
/* Attribute of a value: dict key, string/dict/list method, loop field, namespace attribute;
 * V_UNDEF when absent. */
tpl_value tpl_getattr(tpl_ctx *c, const tpl_value *obj, const char *name, size_t len);
/* A global function by name (range, namespace, raise_exception, strftime_now, dict), or -1. */
int tpl_global_id(const char *name, size_t len);
tpl_value tpl_call_builtin(tpl_ctx *c, int fn, const tpl_value *self, const tpl_args *args);

/* Python str operations (tpl_strings.c). tpl_strip: whitespace (chars NULL) or the code points of
 * chars, from the left and/or right; tpl_recase mode: 0 lower, 1 upper, 2 capitalize, 3 title
 * (ASCII letters); tpl_find_sub: first occurrence of n in h at or after byte from, or NULL;
 * count / maxsplit < 0 = all; tpl_join: str() of each item (or of its attribute attr). */
tpl_value tpl_strip(tpl_ctx *c, const tpl_str *s, const tpl_str *chars, bool left, bool right);
tpl_value tpl_recase(tpl_ctx *c, const tpl_str *s, int mode);
const char *tpl_find_sub(const tpl_str *h, const tpl_str *n, size_t from);
tpl_value tpl_replace(tpl_ctx *c, const tpl_str *s, const tpl_str *old, const tpl_str *new_, int64_t count);
tpl_value tpl_split(tpl_ctx *c, const tpl_str *s, const tpl_str *sep, int64_t maxsplit, bool from_right);
tpl_value tpl_join(tpl_ctx *c, const tpl_list *items, const tpl_str *sep, const tpl_str *attr);

/* ---------------------------------------------------------------- evaluation */

struct tpl_frame;
struct tpl_ctx {
    tpl_env *env;
    tpl_arena *a;
    tpl_buf *out;
    uint64_t steps, max_steps;
    int call_depth;
    struct tpl_frame *root, *frame; /* globals; innermost scope */
    int loop_depth;
    int loop_ctl; /* 1 break, 2 continue pending */
};

/* The items `for` walks: list/tuple items, dict keys, string characters (undefined: none). */
const tpl_list *tpl_iter(tpl_ctx *c, const tpl_value *v);
/* Call a macro value with args, returning its output as a string. */
tpl_value tpl_call_macro(tpl_ctx *c, const tpl_value *macro, const tpl_args *args);
/* Render body into c->out with the variables in globals (dict of name -> value). */
void tpl_render(tpl_ctx *c, const tpl_body *root, tpl_dict *globals);
/* Apply a filter by name (map('upper'), select('odd')) or a test. */
int tpl_check_steps(tpl_ctx *c);
/* Charges n steps at once (n >= 1) for work proportional to n, such as building range(n). */
int tpl_charge_steps(tpl_ctx *c, uint64_t n);

#endif
