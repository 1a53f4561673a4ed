/*
 * tpl_parse.c — tokens → statement and expression tree, by recursive descent with Jinja's grammar
 * and operator precedence (jinja2/parser.py, lowest first):
 *     x if c else y  <  or  <  and  <  not  <  comparisons (== != < <= > >= in, not in)
 *     <  + -  <  ~  <  * / // %  <  **  <  unary - +  <  primary and postfix (.attr [i] [a:b] (call))
 *     then filters (x | f(args)) and tests (x is [not] t(args)) on the unary operand.
 * Statements: if/elif/else, for (with `if` filter, else, tuple targets), set (name, tuple,
 * ns.attr, block form), macro, break/continue, generation (transformers' extension: rendered as
 * is). Unknown filters and tests fail here, as in Jinja. Nesting is capped at TPL_MAX_NESTING.
 */
#include "chat/tpl_internal.h"

#include <string.h>

typedef struct parser {
    tpl_env *env;
    tpl_arena *a;
    const tpl_token *t;
    size_t nt, p;
    int depth;
} parser;

static const tpl_token *cur(parser *P) { return &P->t[P->p]; }
static const tpl_token *next_tok(parser *P) {
    const tpl_token *t = &P->t[P->p];
    if (P->p + 1 < P->nt) P->p++;
    return t;
}

static const char *tok_desc(const tpl_token *t) {
    switch ((tpl_tok_type)t->type) {
    case T_EOF: return "end of template";
    case T_TEXT: return "text";
    case T_VAR_BEGIN: return "'{{'";
    case T_VAR_END: return "'}}'";
    case T_BLOCK_BEGIN: return "'{%'";
    case T_BLOCK_END: return "'%}'";
    case T_NAME: return "a name";
    case T_STRING: return "a string";
    case T_INT: return "an integer";
    case T_FLOAT: return "a float";
    case T_OP: return "an operator";
    }
    return "?";
}

static _Noreturn void fail_at(parser *P, const char *what) {
    const tpl_token *t = cur(P);
    P->env->line = t->line;
    if (t->type == T_NAME)
        tpl_fail(P->env, MSBNB_ERR_FORMAT, "expected %s, got '%.*s'", what, (int)(t->len > 40 ? 40 : t->len), t->s);
    tpl_fail(P->env, MSBNB_ERR_FORMAT, "expected %s, got %s", what, tok_desc(t));
}

static bool is_op(parser *P, tpl_op op) { return cur(P)->type == T_OP && cur(P)->op == op; }
static bool is_name(parser *P, const char *name) {
    const tpl_token *t = cur(P);
    return t->type == T_NAME && t->len == strlen(name) && !memcmp(t->s, name, t->len);
}
static bool skip_op(parser *P, tpl_op op) {
    if (!is_op(P, op)) return false;
    next_tok(P);
    return true;
}
static bool skip_name(parser *P, const char *name) {
    if (!is_name(P, name)) return false;
    next_tok(P);
    return true;
}
static void expect_op(parser *P, tpl_op op, const char *what) {
    if (!skip_op(P, op)) fail_at(P, what);
}
static const tpl_str *expect_name(parser *P) {
    if (cur(P)->type != T_NAME) fail_at(P, "a name");
    const tpl_token *t = next_tok(P);
    return tpl_str_new(P->a, t->s, t->len);
}

static void enter(parser *P) {
    if (++P->depth > TPL_MAX_NESTING) {
        P->env->line = cur(P)->line;
        tpl_fail(P->env, MSBNB_ERR_UNSUPPORTED, "template nested deeper than %d levels", TPL_MAX_NESTING);
    }
}

static tpl_expr *node(parser *P, tpl_expr_kind kind, int line) {
    tpl_expr *e = tpl_alloc(P->a, sizeof *e);
    e->kind = (uint8_t)kind;
    e->line = line;
    return e;
}

/* A growable array of expressions (+ keyword names) while parsing argument lists. */
typedef struct expr_list {
    tpl_expr **v;
    const tpl_str **kw;
    uint8_t *ops;
    int n, cap;
} expr_list;
static void list_add(parser *P, expr_list *l, tpl_expr *e, const tpl_str *kw, uint8_t op) {
    if (l->n == l->cap) {
        const int cap = l->cap ? l->cap * 2 : 4;
        tpl_expr **v = tpl_alloc_array(P->a, (size_t)cap, sizeof *v);
        const tpl_str **k = tpl_alloc_array(P->a, (size_t)cap, sizeof *k);
        uint8_t *o = tpl_alloc_array(P->a, (size_t)cap, 1);
        if (l->n) {
            memcpy(v, l->v, (size_t)l->n * sizeof *v);
            memcpy(k, l->kw, (size_t)l->n * sizeof *k);
            memcpy(o, l->ops, (size_t)l->n);
        }
        l->v = v, l->kw = k, l->ops = o, l->cap = cap;
    }
    l->v[l->n] = e;
    l->kw[l->n] = kw;
    l->ops[l->n++] = op;
}
static void take_list(tpl_expr *e, const expr_list *l) {
    e->args = l->v;
    e->kw = l->kw;
    e->ops = l->ops;
    e->nargs = l->n;
}

static tpl_expr *parse_expr(parser *P, bool with_cond);
static tpl_expr *parse_unary(parser *P, bool with_filter);

/* (a, b, key=c) after the '(' — call, filter and test arguments. */
static void parse_call_args(parser *P, expr_list *l) {
    while (!skip_op(P, OP_RPAREN)) {
        if (l->n) {
            expect_op(P, OP_COMMA, "',' or ')'");
            if (skip_op(P, OP_RPAREN)) break;
        }
        const tpl_str *kw = NULL;
        if (cur(P)->type == T_NAME && P->p + 1 < P->nt && P->t[P->p + 1].type == T_OP && P->t[P->p + 1].op == OP_ASSIGN) {
            kw = expect_name(P);
            next_tok(P);
        } else if (is_op(P, OP_MUL) || is_op(P, OP_POW)) {
            P->env->line = cur(P)->line;
            tpl_fail(P->env, MSBNB_ERR_UNSUPPORTED, "*args / **kwargs in calls are not supported");
        }
        list_add(P, l, parse_expr(P, true), kw, 0);
    }
}

static tpl_expr *parse_primary(parser *P) {
    const tpl_token *t = cur(P);
    const int line = t->line;
    tpl_expr *e;
    switch ((tpl_tok_type)t->type) {
    case T_NAME: {
        next_tok(P);
        e = node(P, E_CONST, line);
#define NAME_IS(lit) (t->len == sizeof lit - 1 && !memcmp(t->s, lit, t->len))
        if (NAME_IS("true") || NAME_IS("True")) e->cval = tpl_bool(true);
        else if (NAME_IS("false") || NAME_IS("False")) e->cval = tpl_bool(false);
        else if (NAME_IS("none") || NAME_IS("None")) e->cval = tpl_none();
        else e->kind = E_NAME, e->name = tpl_str_new(P->a, t->s, t->len);
#undef NAME_IS
        return e;
    }
    case T_STRING: { /* adjacent literals concatenate */
        tpl_buf b = {0};
        while (cur(P)->type == T_STRING) {
            tpl_buf_put(P->a, &b, cur(P)->s, cur(P)->len);
            next_tok(P);
        }
        e = node(P, E_CONST, line);
        e->cval = tpl_str_value(tpl_buf_str(P->a, &b));
        return e;
    }
    case T_INT:
    case T_FLOAT:
        next_tok(P);
        e = node(P, E_CONST, line);
        e->cval = t->type == T_INT ? tpl_int(t->i) : tpl_float(t->f);
        return e;
    case T_OP:
        if (skip_op(P, OP_LPAREN)) { /* (expr), () or a tuple */
            expr_list l = {0};
            bool tuple = false;
            while (!skip_op(P, OP_RPAREN)) {
                if (l.n) {
                    expect_op(P, OP_COMMA, "',' or ')'");
                    tuple = true;
                    if (skip_op(P, OP_RPAREN)) break;
                }
                list_add(P, &l, parse_expr(P, true), NULL, 0);
            }
            if (l.n == 1 && !tuple) return l.v[0];
            e = node(P, E_TUPLE, line);
            take_list(e, &l);
            return e;
        }
        if (skip_op(P, OP_LBRACK)) {
            expr_list l = {0};
            while (!skip_op(P, OP_RBRACK)) {
                if (l.n) {
                    expect_op(P, OP_COMMA, "',' or ']'");
                    if (skip_op(P, OP_RBRACK)) break;
                }
                list_add(P, &l, parse_expr(P, true), NULL, 0);
            }
            e = node(P, E_LIST, line);
            take_list(e, &l);
            return e;
        }
        if (skip_op(P, OP_LBRACE)) { /* keys and values alternate in args */
            expr_list l = {0};
            while (!skip_op(P, OP_RBRACE)) {
                if (l.n) {
                    expect_op(P, OP_COMMA, "',' or '}'");
                    if (skip_op(P, OP_RBRACE)) break;
                }
                list_add(P, &l, parse_expr(P, true), NULL, 0);
                expect_op(P, OP_COLON, "':' in a dict literal");
                list_add(P, &l, parse_expr(P, true), NULL, 0);
            }
            e = node(P, E_DICT, line);
            take_list(e, &l);
            return e;
        }
        break;
    default: break;
    }
    fail_at(P, "an expression");
}

/* [index] or [start:stop:step] after the '['. */
static tpl_expr *parse_subscript(parser *P, tpl_expr *obj, int line) {
    tpl_expr *parts[3] = {NULL, NULL, NULL};
    int k = 0;
    bool slice = false;
    for (;;) {
        if (is_op(P, OP_COLON)) {
            next_tok(P);
            slice = true;
            if (++k > 2) fail_at(P, "']'");
            continue;
        }
        if (is_op(P, OP_RBRACK)) break;
        if (parts[k]) fail_at(P, "':' or ']'");
        parts[k] = parse_expr(P, true);
        if (!slice && is_op(P, OP_COMMA)) fail_at(P, "']' (tuple subscripts are not supported)");
    }
    next_tok(P);
    if (!slice) {
        if (!parts[0]) fail_at(P, "an index");
        tpl_expr *e = node(P, E_ITEM, line);
        e->a = obj, e->b = parts[0];
        return e;
    }
    tpl_expr *e = node(P, E_SLICE, line);
    e->a = obj, e->b = parts[0], e->c = parts[1], e->d = parts[2];
    return e;
}

static tpl_expr *parse_postfix(parser *P, tpl_expr *e) {
    for (;;) {
        const int line = cur(P)->line;
        if (skip_op(P, OP_DOT)) {
            tpl_expr *g = node(P, E_ATTR, line);
            g->a = e;
            if (cur(P)->type == T_INT) { /* x.0 is x[0] */
                g->kind = E_ITEM;
                g->b = node(P, E_CONST, line);
                g->b->cval = tpl_int(next_tok(P)->i);
            } else {
                g->name = expect_name(P);
            }
            e = g;
        } else if (skip_op(P, OP_LBRACK)) {
            e = parse_subscript(P, e, line);
        } else if (skip_op(P, OP_LPAREN)) {
            tpl_expr *c = node(P, E_CALL, line);
            c->a = e;
            expr_list l = {0};
            parse_call_args(P, &l);
            take_list(c, &l);
            e = c;
        } else {
            return e;
        }
    }
}

/* x | name(args) and x is [not] name arg — Jinja's parse_filter_expr. */
static tpl_expr *parse_filters(parser *P, tpl_expr *e) {
    for (;;) {
        const int line = cur(P)->line;
        if (skip_op(P, OP_PIPE)) {
            const tpl_str *name = expect_name(P);
            tpl_expr *f = node(P, E_FILTER, line);
            f->a = e;
            f->name = name;
            f->fn = tpl_filter_id(name->s, name->len);
            if (f->fn < 0) {
                P->env->line = line;
                tpl_fail(P->env, MSBNB_ERR_UNSUPPORTED, "no filter named '%s'", name->s);
            }
            expr_list l = {0};
            if (skip_op(P, OP_LPAREN)) parse_call_args(P, &l);
            take_list(f, &l);
            e = f;
        } else if (skip_name(P, "is")) {
            tpl_expr *t = node(P, E_TEST, line);
            t->a = e;
            t->op = skip_name(P, "not");
            const tpl_token *tt = cur(P);
            /* `is none` / `is true` etc.: the test names that are also literals */
            if (tt->type != T_NAME) fail_at(P, "a test name");
            t->name = expect_name(P);
            t->fn = tpl_test_id(t->name->s, t->name->len);
            if (t->fn < 0) {
                P->env->line = line;
                tpl_fail(P->env, MSBNB_ERR_UNSUPPORTED, "no test named '%s'", t->name->s);
            }
            expr_list l = {0};
            if (skip_op(P, OP_LPAREN)) {
                parse_call_args(P, &l);
            } else {
                const tpl_token *n = cur(P);
                const bool arg = n->type == T_STRING || n->type == T_INT || n->type == T_FLOAT ||
                                 (n->type == T_OP && (n->op == OP_LBRACK || n->op == OP_LBRACE)) ||
                                 (n->type == T_NAME && !is_name(P, "else") && !is_name(P, "or") && !is_name(P, "and") &&
                                  !is_name(P, "if") && !is_name(P, "is") && !is_name(P, "in") && !is_name(P, "not"));
                if (arg) list_add(P, &l, parse_postfix(P, parse_primary(P)), NULL, 0);
            }
            take_list(t, &l);
            e = t;
        } else {
            return e;
        }
    }
}

static tpl_expr *parse_unary(parser *P, bool with_filter) {
    enter(P);
    const int line = cur(P)->line;
    tpl_expr *e;
    if (is_op(P, OP_SUB) || is_op(P, OP_ADD)) {
        const bool neg = next_tok(P)->op == OP_SUB;
        e = node(P, neg ? E_NEG : E_POS, line);
        e->a = parse_unary(P, false);
    } else {
        e = parse_primary(P);
    }
    e = parse_postfix(P, e);
    if (with_filter) e = parse_filters(P, e);
    P->depth--;
    return e;
}

static tpl_expr *binop(parser *P, tpl_op op, tpl_expr *l, tpl_expr *r, int line) {
    tpl_expr *e = node(P, E_BINOP, line);
    e->op = (uint8_t)op;
    e->a = l, e->b = r;
    return e;
}

static tpl_expr *parse_pow(parser *P) {
    tpl_expr *e = parse_unary(P, true);
    while (is_op(P, OP_POW)) {
        const int line = next_tok(P)->line;
        e = binop(P, OP_POW, e, parse_unary(P, true), line);
    }
    return e;
}
static tpl_expr *parse_math2(parser *P) {
    tpl_expr *e = parse_pow(P);
    while (is_op(P, OP_MUL) || is_op(P, OP_DIV) || is_op(P, OP_FLOORDIV) || is_op(P, OP_MOD)) {
        const tpl_token *t = next_tok(P);
        e = binop(P, (tpl_op)t->op, e, parse_pow(P), t->line);
    }
    return e;
}
static tpl_expr *parse_concat(parser *P) {
    tpl_expr *e = parse_math2(P);
    while (is_op(P, OP_TILDE)) {
        const int line = next_tok(P)->line;
        e = binop(P, OP_TILDE, e, parse_math2(P), line);
    }
    return e;
}
static tpl_expr *parse_math1(parser *P) {
    tpl_expr *e = parse_concat(P);
    while (is_op(P, OP_ADD) || is_op(P, OP_SUB)) {
        const tpl_token *t = next_tok(P);
        e = binop(P, (tpl_op)t->op, e, parse_concat(P), t->line);
    }
    return e;
}
static tpl_expr *parse_compare(parser *P) {
    const int line = cur(P)->line;
    tpl_expr *first = parse_math1(P);
    expr_list l = {0};
    for (;;) {
        const tpl_token *t = cur(P);
        uint8_t op = 0;
        if (t->type == T_OP && (t->op == OP_EQ || t->op == OP_NE || t->op == OP_LT || t->op == OP_LE ||
                                t->op == OP_GT || t->op == OP_GE)) {
            op = t->op;
            next_tok(P);
        } else if (skip_name(P, "in")) {
            op = OP_IN;
        } else if (is_name(P, "not") && P->p + 1 < P->nt && P->t[P->p + 1].type == T_NAME &&
                   P->t[P->p + 1].len == 2 && !memcmp(P->t[P->p + 1].s, "in", 2)) {
            next_tok(P), next_tok(P);
            op = OP_NOTIN;
        } else {
            break;
        }
        list_add(P, &l, parse_math1(P), NULL, op);
    }
    if (!l.n) return first;
    tpl_expr *e = node(P, E_COMPARE, line);
    e->a = first;
    take_list(e, &l);
    return e;
}
static tpl_expr *parse_not(parser *P) {
    if (is_name(P, "not")) {
        const int line = next_tok(P)->line;
        enter(P);
        tpl_expr *e = node(P, E_NOT, line);
        e->a = parse_not(P);
        P->depth--;
        return e;
    }
    return parse_compare(P);
}
static tpl_expr *parse_and(parser *P) {
    tpl_expr *e = parse_not(P);
    while (is_name(P, "and")) {
        tpl_expr *n = node(P, E_AND, next_tok(P)->line);
        n->a = e, n->b = parse_not(P);
        e = n;
    }
    return e;
}
static tpl_expr *parse_or(parser *P) {
    tpl_expr *e = parse_and(P);
    while (is_name(P, "or")) {
        tpl_expr *n = node(P, E_OR, next_tok(P)->line);
        n->a = e, n->b = parse_and(P);
        e = n;
    }
    return e;
}

/* `x if c else y` (else optional: undefined), when with_cond. */
static tpl_expr *parse_expr(parser *P, bool with_cond) {
    enter(P);
    tpl_expr *e = parse_or(P);
    while (with_cond && is_name(P, "if")) {
        tpl_expr *c = node(P, E_COND, next_tok(P)->line);
        c->b = e;
        c->a = parse_or(P);
        if (skip_name(P, "else")) c->c = parse_expr(P, true);
        e = c;
    }
    P->depth--;
    return e;
}

/* expr or expr, expr, ... (a tuple), as after {{, `set x =` and `for ... in`. */
static tpl_expr *parse_tuple(parser *P, bool with_cond) {
    const int line = cur(P)->line;
    tpl_expr *e = parse_expr(P, with_cond);
    if (!is_op(P, OP_COMMA)) return e;
    expr_list l = {0};
    list_add(P, &l, e, NULL, 0);
    while (skip_op(P, OP_COMMA)) {
        if (cur(P)->type == T_VAR_END || cur(P)->type == T_BLOCK_END || is_name(P, "if")) break;
        list_add(P, &l, parse_expr(P, with_cond), NULL, 0);
    }
    tpl_expr *t = node(P, E_TUPLE, line);
    take_list(t, &l);
    return t;
}

/* ---------------------------------------------------------------- statements */

static tpl_stmt *stmt(parser *P, tpl_stmt_kind kind, int line) {
    tpl_stmt *s = tpl_alloc(P->a, sizeof *s);
    s->kind = (uint8_t)kind;
    s->line = line;
    return s;
}

static void body_add(parser *P, tpl_body *b, int *cap, tpl_stmt *s) {
    if (b->n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        tpl_stmt **v = tpl_alloc_array(P->a, (size_t)*cap, sizeof *v);
        if (b->n) memcpy(v, b->s, (size_t)b->n * sizeof *v);
        b->s = v;
    }
    b->s[b->n++] = s;
}

static void expect_block_end(parser *P) {
    if (cur(P)->type != T_BLOCK_END) fail_at(P, "'%}'");
    next_tok(P);
}

/* Names like `a` or `a, b` (for and set targets). */
static void parse_targets(parser *P, tpl_stmt *s) {
    const tpl_str *names[16];
    int n = 0;
    const bool paren = skip_op(P, OP_LPAREN);
    do {
        if (n == 16) fail_at(P, "at most 16 targets");
        names[n++] = expect_name(P);
    } while (skip_op(P, OP_COMMA) && cur(P)->type == T_NAME);
    if (paren) expect_op(P, OP_RPAREN, "')'");
    s->names = tpl_alloc_array(P->a, (size_t)n, sizeof *s->names);
    memcpy(s->names, names, (size_t)n * sizeof *names);
    s->nnames = n;
}

static int parse_body(parser *P, tpl_body *body, const char *const *ends);

static tpl_stmt *parse_if(parser *P, int line) {
    tpl_stmt *s = stmt(P, S_IF, line);
    s->expr = parse_tuple(P, true);
    expect_block_end(P);
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    const int which = parse_body(P, &s->body, ends);
    if (which == 0) { /* elif: an if nested in else */
        const int l = cur(P)->line;
        next_tok(P);
        tpl_stmt *e = parse_if(P, l);
        s->orelse.s = tpl_alloc(P->a, sizeof(tpl_stmt *));
        s->orelse.s[0] = e;
        s->orelse.n = 1;
        return s; /* the nested if consumed endif */
    }
    next_tok(P);
    if (which == 1) {
        expect_block_end(P);
        static const char *const end_only[] = {"endif", NULL};
        parse_body(P, &s->orelse, end_only);
        next_tok(P);
    }
    expect_block_end(P);
    return s;
}

static tpl_stmt *parse_statement(parser *P) {
    const tpl_token *t = cur(P);
    const int line = t->line;
    if (t->type != T_NAME) fail_at(P, "a statement name");
    enter(P);
    tpl_stmt *s;
    if (skip_name(P, "if")) {
        s = parse_if(P, line);
    } else if (skip_name(P, "for")) {
        s = stmt(P, S_FOR, line);
        parse_targets(P, s);
        if (!skip_name(P, "in")) fail_at(P, "'in'");
        s->expr = parse_tuple(P, false);
        if (skip_name(P, "if")) s->cond = parse_expr(P, true);
        if (is_name(P, "recursive")) {
            P->env->line = line;
            tpl_fail(P->env, MSBNB_ERR_UNSUPPORTED, "recursive for loops are not supported");
        }
        expect_block_end(P);
        static const char *const ends[] = {"else", "endfor", NULL};
        const int which = parse_body(P, &s->body, ends);
        next_tok(P);
        if (which == 0) {
            expect_block_end(P);
            static const char *const end_only[] = {"endfor", NULL};
            parse_body(P, &s->orelse, end_only);
            next_tok(P);
        }
        expect_block_end(P);
    } else if (skip_name(P, "set")) {
        s = stmt(P, S_SET, line);
        const tpl_str *first = expect_name(P);
        if (skip_op(P, OP_DOT)) { /* set ns.attr = value */
            s->kind = S_SET_ATTR;
            s->names = tpl_alloc_array(P->a, 2, sizeof *s->names);
            s->names[0] = first;
            s->names[1] = expect_name(P);
            s->nnames = 2;
        } else {
            P->p--; /* re-read the first name as a target list */
            parse_targets(P, s);
        }
        if (skip_op(P, OP_ASSIGN)) {
            s->expr = parse_tuple(P, true);
            expect_block_end(P);
        } else {
            if (s->kind != S_SET || s->nnames != 1) fail_at(P, "'='");
            s->kind = S_SET_BLOCK;
            expect_block_end(P);
            static const char *const ends[] = {"endset", NULL};
            parse_body(P, &s->body, ends);
            next_tok(P);
            expect_block_end(P);
        }
    } else if (skip_name(P, "macro")) {
        s = stmt(P, S_MACRO, line);
        s->macro_name = expect_name(P);
        expect_op(P, OP_LPAREN, "'('");
        const tpl_str *names[32];
        tpl_expr *defs[32];
        int n = 0;
        while (!skip_op(P, OP_RPAREN)) {
            if (n) expect_op(P, OP_COMMA, "',' or ')'");
            if (skip_op(P, OP_RPAREN)) break;
            if (n == 32) fail_at(P, "at most 32 macro parameters");
            names[n] = expect_name(P);
            defs[n] = skip_op(P, OP_ASSIGN) ? parse_expr(P, true) : NULL;
            n++;
        }
        s->names = tpl_alloc_array(P->a, (size_t)n + 1, sizeof *s->names);
        s->defaults = tpl_alloc_array(P->a, (size_t)n + 1, sizeof *s->defaults);
        memcpy(s->names, names, (size_t)n * sizeof *names);
        memcpy(s->defaults, defs, (size_t)n * sizeof *defs);
        s->nnames = n;
        expect_block_end(P);
        static const char *const ends[] = {"endmacro", NULL};
        parse_body(P, &s->body, ends);
        next_tok(P);
        expect_block_end(P);
    } else if (skip_name(P, "break") || skip_name(P, "continue")) {
        s = stmt(P, P->t[P->p - 1].s[0] == 'b' ? S_BREAK : S_CONTINUE, line);
        expect_block_end(P);
    } else if (skip_name(P, "generation")) { /* transformers' AssistantTracker: render as is */
        s = stmt(P, S_IF, line);
        expect_block_end(P);
        static const char *const ends[] = {"endgeneration", NULL};
        parse_body(P, &s->body, ends);
        next_tok(P);
        expect_block_end(P);
    } else {
        P->env->line = line;
        tpl_fail(P->env, MSBNB_ERR_UNSUPPORTED, "unsupported statement '%.*s'", (int)(t->len > 40 ? 40 : t->len), t->s);
    }
    P->depth--;
    return s;
}

/* Statements until a block whose first name is one of ends (NULL-terminated; NULL list = until
 * the end of the template). Returns the index of the end found, the cursor on its name. */
static int parse_body(parser *P, tpl_body *body, const char *const *ends) {
    enter(P);
    int cap = 0;
    for (;;) {
        const tpl_token *t = cur(P);
        if (t->type == T_EOF) {
            if (!ends) break;
            P->env->line = t->line;
            int last = 0;
            while (ends[last + 1]) last++;
            tpl_fail(P->env, MSBNB_ERR_FORMAT, "unexpected end of template, expected '{%% %s %%}'", ends[last]);
        }
        if (t->type == T_TEXT) {
            tpl_stmt *s = stmt(P, S_TEXT, t->line);
            s->text = t->s, s->len = t->len;
            body_add(P, body, &cap, s);
            next_tok(P);
        } else if (t->type == T_VAR_BEGIN) {
            next_tok(P);
            tpl_stmt *s = stmt(P, S_OUTPUT, t->line);
            s->expr = parse_tuple(P, true);
            if (cur(P)->type != T_VAR_END) fail_at(P, "'}}'");
            next_tok(P);
            body_add(P, body, &cap, s);
        } else if (t->type == T_BLOCK_BEGIN) {
            next_tok(P);
            for (int i = 0; ends && ends[i]; i++)
                if (is_name(P, ends[i])) {
                    P->depth--;
                    return i;
                }
            if (cur(P)->type == T_NAME && (is_name(P, "endif") || is_name(P, "endfor") || is_name(P, "else") ||
                                           is_name(P, "elif") || is_name(P, "endset") || is_name(P, "endmacro") ||
                                           is_name(P, "endgeneration"))) {
                P->env->line = cur(P)->line;
                tpl_fail(P->env, MSBNB_ERR_FORMAT, "unexpected '%.*s'", (int)cur(P)->len, cur(P)->s);
            }
            body_add(P, body, &cap, parse_statement(P));
        } else {
            fail_at(P, "text or a tag");
        }
    }
    P->depth--;
    return -1;
}

void tpl_parse(tpl_env *env, const tpl_token *toks, size_t ntoks, tpl_body *root) {
    parser P = {.env = env, .a = &env->arena, .t = toks, .nt = ntoks};
    parse_body(&P, root, NULL);
}
