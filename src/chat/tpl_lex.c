/*
 * tpl_lex.c — template source → tokens, with the whitespace rules of Jinja as transformers
 * configures it (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False):
 *  - newlines are normalized to "\n" and one trailing newline of the template is dropped;
 *  - `{%-`, `{{-`, `{#-` strip all whitespace before the tag; `-%}`, `-}}`, `-#}` all after it;
 *  - trim_blocks: a block or comment tag ending in plain `%}` / `#}` eats one newline after it;
 *  - lstrip_blocks: spaces and tabs between the start of a line and a block or comment tag
 *    (`{%`, `{#`, not `{{`) are dropped; `{%+` keeps them.
 * Inside tags: names, strings (Python escapes), integers, floats and operators; the end of a tag
 * is only recognised outside brackets, as in Jinja. One pass over the source: linear time.
 */
#include "chat/tpl_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct lexer {
    tpl_env *env;
    const char *s; /* normalized source */
    size_t n, p;
    int line;       /* line of s[p] */
    size_t line_at; /* position up to which `line` counts newlines */
    tpl_token *t;
    size_t nt, cap;
} lexer;

static int line_of(lexer *L, size_t pos) {
    for (; L->line_at < pos; L->line_at++)
        if (L->s[L->line_at] == '\n') L->line++;
    return L->line;
}

static tpl_token *push(lexer *L, tpl_tok_type type, size_t pos) {
    if (L->nt == L->cap) {
        const size_t cap = L->cap ? L->cap * 2 : 256;
        tpl_token *nt = tpl_alloc_array(&L->env->arena, cap, sizeof *nt);
        if (L->nt) memcpy(nt, L->t, L->nt * sizeof *nt);
        L->t = nt, L->cap = cap;
    }
    tpl_token *t = &L->t[L->nt++];
    memset(t, 0, sizeof *t);
    t->type = (uint8_t)type;
    t->line = line_of(L, pos);
    return t;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd; /* lone surrogates cannot be UTF-8 */
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xc0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
    if (cp < 0x10000)
        return o[0] = (char)(0xe0 | (cp >> 12)), o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[2] = (char)(0x80 | (cp & 0x3f)), 3;
    o[0] = (char)(0xf0 | (cp >> 18)), o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string literal at L->p (quote char); Python escapes decoded (Jinja decodes with
 * "unicode-escape"); unknown escapes stay as written. */
static void lex_string(lexer *L) {
    const char q = L->s[L->p];
    const size_t start = L->p;
    size_t e = L->p + 1;
    while (e < L->n && L->s[e] != q) e += L->s[e] == '\\' ? 2 : 1;
    if (e >= L->n) {
        L->env->line = line_of(L, start);
        tpl_fail(L->env, MSBNB_ERR_FORMAT, "unterminated string");
    }
    tpl_token *t = push(L, T_STRING, start);
    char *o = tpl_alloc(&L->env->arena, e - start + 1); /* decoded is never longer */
    size_t n = 0;
    for (size_t i = start + 1; i < e; i++) {
        const char c = L->s[i];
        if (c != '\\') {
            o[n++] = c;
            continue;
        }
        const char x = L->s[++i];
        switch (x) {
        case 'n': o[n++] = '\n'; break;
        case 't': o[n++] = '\t'; break;
        case 'r': o[n++] = '\r'; break;
        case '\\': o[n++] = '\\'; break;
        case '\'': o[n++] = '\''; break;
        case '"': o[n++] = '"'; break;
        case 'a': o[n++] = '\a'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'v': o[n++] = '\v'; break;
        case '\n': break; /* line continuation */
        case 'x':
        case 'u':
        case 'U': {
            const int digits = x == 'x' ? 2 : x == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int k = 1; k <= digits; k++) {
                const int h = i + (size_t)k < e ? hexval(L->s[i + (size_t)k]) : -1;
                if (h < 0) {
                    L->env->line = line_of(L, start);
                    tpl_fail(L->env, MSBNB_ERR_FORMAT, "truncated \\%c escape in a string", x);
                }
                cp = cp * 16 + (uint32_t)h;
            }
            if (cp > 0x10ffff) {
                L->env->line = line_of(L, start);
                tpl_fail(L->env, MSBNB_ERR_FORMAT, "\\%c escape out of range", x);
            }
            i += (size_t)digits;
            n += put_utf8(o + n, cp);
            break;
        }
        default:
            if (x >= '0' && x <= '7') { /* up to 3 octal digits */
                uint32_t cp = (uint32_t)(x - '0');
                for (int k = 0; k < 2 && i + 1 < e && L->s[i + 1] >= '0' && L->s[i + 1] <= '7'; k++)
                    cp = cp * 8 + (uint32_t)(L->s[++i] - '0');
                n += put_utf8(o + n, cp);
            } else {
                o[n++] = '\\';
                o[n++] = x;
            }
        }
    }
    t->s = o;
    t->len = n;
    L->p = e + 1;
}

/* Digits with optional single underscores between them (Python/Jinja literals). */
static size_t scan_digits(const lexer *L, size_t p) {
    while (p < L->n && (is_digit(L->s[p]) || (L->s[p] == '_' && p + 1 < L->n && is_digit(L->s[p + 1])))) p++;
    return p;
}

static void lex_number(lexer *L) {
    const size_t start = L->p;
    size_t p = scan_digits(L, start);
    bool is_float = false;
    if (p + 1 < L->n && L->s[p] == '.' && is_digit(L->s[p + 1])) is_float = true, p = scan_digits(L, p + 1);
    if (p < L->n && (L->s[p] == 'e' || L->s[p] == 'E')) {
        size_t q = p + 1;
        if (q < L->n && (L->s[q] == '+' || L->s[q] == '-')) q++;
        if (q < L->n && is_digit(L->s[q])) is_float = true, p = scan_digits(L, q);
    }
    char buf[64];
    size_t k = 0;
    for (size_t i = start; i < p && k < sizeof buf - 1; i++)
        if (L->s[i] != '_') buf[k++] = L->s[i];
    buf[k] = 0;
    tpl_token *t = push(L, is_float ? T_FLOAT : T_INT, start);
    if (is_float) {
        t->f = strtod(buf, NULL);
    } else {
        if (p - start > 18) { /* past int64: Python ints are unbounded, ours are not */
            L->env->line = t->line;
            tpl_fail(L->env, MSBNB_ERR_UNSUPPORTED, "integer literal %s is too large", buf);
        }
        t->i = strtoll(buf, NULL, 10);
    }
    L->p = p;
}

static const struct {
    const char *s;
    uint8_t op;
} ops[] = {{"//", OP_FLOORDIV}, {"**", OP_POW}, {"==", OP_EQ}, {"!=", OP_NE}, {">=", OP_GE}, {"<=", OP_LE},
           {"+", OP_ADD},       {"-", OP_SUB},  {"*", OP_MUL},  {"/", OP_DIV},  {"%", OP_MOD},  {"~", OP_TILDE},
           {"[", OP_LBRACK},    {"]", OP_RBRACK}, {"(", OP_LPAREN}, {")", OP_RPAREN}, {"{", OP_LBRACE},
           {"}", OP_RBRACE},    {">", OP_GT},   {"<", OP_LT},   {"=", OP_ASSIGN}, {".", OP_DOT}, {":", OP_COLON},
           {"|", OP_PIPE},      {",", OP_COMMA}, {";", OP_SEMI}};

/* Tokens inside {{ }} or {% %} up to and including the end tag. Returns whether the tag ended
 * with a newline consumed (for lstrip_blocks' "line starting" rule). */
static bool lex_tag(lexer *L, bool block) {
    int depth = 0;
    const size_t open = L->p;
    for (;;) {
        while (L->p < L->n && is_ws(L->s[L->p])) L->p++;
        if (L->p >= L->n) {
            L->env->line = line_of(L, open);
            tpl_fail(L->env, MSBNB_ERR_FORMAT, "tag opened here is never closed (expected '%s')", block ? "%}" : "}}");
        }
        const char *s = L->s + L->p;
        const size_t left = L->n - L->p;
        if (depth == 0) {
            const char close = block ? '%' : '}';
            size_t k = 0;
            char sign = 0;
            if (left >= 3 && (s[0] == '-' || (block && s[0] == '+')) && s[1] == close && s[2] == '}') sign = s[0], k = 3;
            else if (left >= 2 && s[0] == close && s[1] == '}') k = 2;
            if (k) {
                push(L, block ? T_BLOCK_END : T_VAR_END, L->p);
                L->p += k;
                bool nl = false;
                if (sign == '-') {
                    const size_t before = L->p;
                    while (L->p < L->n && is_ws(L->s[L->p])) L->p++;
                    nl = L->p > before && L->s[L->p - 1] == '\n';
                } else if (block && !sign && L->p < L->n && L->s[L->p] == '\n') {
                    L->p++; /* trim_blocks */
                    nl = true;
                }
                return nl;
            }
        }
        if (is_alpha(s[0])) {
            size_t e = 1;
            while (e < left && (is_alpha(s[e]) || is_digit(s[e]))) e++;
            tpl_token *t = push(L, T_NAME, L->p);
            t->s = s, t->len = e;
            L->p += e;
        } else if (s[0] == '\'' || s[0] == '"') {
            lex_string(L);
        } else if (is_digit(s[0])) {
            lex_number(L);
        } else {
            size_t i = 0;
            for (; i < sizeof ops / sizeof ops[0]; i++) {
                const size_t k = strlen(ops[i].s);
                if (k <= left && !memcmp(s, ops[i].s, k)) break;
            }
            if (i == sizeof ops / sizeof ops[0]) {
                L->env->line = line_of(L, L->p);
                tpl_fail(L->env, MSBNB_ERR_FORMAT, "unexpected character '%c' in a tag", s[0]);
            }
            const uint8_t op = ops[i].op;
            if (op == OP_LBRACK || op == OP_LPAREN || op == OP_LBRACE) depth++;
            if ((op == OP_RBRACK || op == OP_RPAREN || op == OP_RBRACE) && depth > 0) depth--;
            tpl_token *t = push(L, T_OP, L->p);
            t->op = op;
            L->p += strlen(ops[i].s);
        }
    }
}

/* Newlines normalized to \n, one trailing newline dropped (Jinja's keep_trailing_newline=False). */
static char *normalize(tpl_env *env, const char *src, size_t n, size_t *out_n) {
    char *s = tpl_alloc(&env->arena, n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\r') {
            s[k++] = '\n';
            if (i + 1 < n && src[i + 1] == '\n') i++;
        } else {
            s[k++] = src[i];
        }
    }
    if (k && s[k - 1] == '\n') k--;
    *out_n = k;
    return s;
}

void tpl_lex(tpl_env *env, const char *src, size_t n, tpl_token **toks, size_t *ntoks) {
    lexer L = {.env = env, .line = 1};
    L.s = normalize(env, src, n, &L.n);
    bool line_starting = true; /* the previous tag ended a line (or we are at the start) */
    while (L.p < L.n) {
        /* the next tag opener */
        size_t q = L.p;
        while (q + 1 < L.n && !(L.s[q] == '{' && (L.s[q + 1] == '{' || L.s[q + 1] == '%' || L.s[q + 1] == '#'))) q++;
        if (q + 1 >= L.n) q = L.n;
        const char kind = q < L.n ? L.s[q + 1] : 0;
        const char sign = q + 2 < L.n && (L.s[q + 2] == '-' || L.s[q + 2] == '+') ? L.s[q + 2] : 0;
        size_t text_end = q;
        if (kind && sign == '-') {
            while (text_end > L.p && is_ws(L.s[text_end - 1])) text_end--;
        } else if (kind && kind != '{' && sign != '+') { /* lstrip_blocks */
            size_t l = q;
            while (l > L.p && L.s[l - 1] != '\n') l--;
            bool blank = l < q;
            for (size_t i = l; i < q && blank; i++) blank = is_ws(L.s[i]);
            if (blank && (l > L.p || line_starting)) text_end = l;
        }
        if (text_end > L.p) {
            tpl_token *t = push(&L, T_TEXT, L.p);
            t->s = L.s + L.p;
            t->len = text_end - L.p;
        }
        if (!kind) break;
        L.p = q + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            size_t e = L.p;
            while (e + 1 < L.n && !(L.s[e] == '#' && L.s[e + 1] == '}')) e++;
            if (e + 1 >= L.n) {
                L.env->line = line_of(&L, q);
                tpl_fail(env, MSBNB_ERR_FORMAT, "comment opened here is never closed (expected '#}')");
            }
            const char end_sign = e > L.p && (L.s[e - 1] == '-' || L.s[e - 1] == '+') ? L.s[e - 1] : 0;
            L.p = e + 2;
            line_starting = false;
            if (end_sign == '-') {
                const size_t before = L.p;
                while (L.p < L.n && is_ws(L.s[L.p])) L.p++;
                line_starting = L.p > before && L.s[L.p - 1] == '\n';
            } else if (!end_sign && L.p < L.n && L.s[L.p] == '\n') {
                L.p++;
                line_starting = true;
            }
            continue;
        }
        push(&L, kind == '%' ? T_BLOCK_BEGIN : T_VAR_BEGIN, q);
        line_starting = lex_tag(&L, kind == '%');
    }
    push(&L, T_EOF, L.n);
    *toks = L.t;
    *ntoks = L.nt;
}
