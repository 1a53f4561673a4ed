/*
 * tpl_eval.c — walks the template tree: expressions with Python semantics (jinja2 compiles to
 * Python; we interpret), statements writing to the output buffer, scopes as Jinja has them (a for
 * loop and a macro call open one; `set` inside a loop does not leak out, namespace() attributes
 * do), the step budget.
 */
#include "chat/tpl_internal.h"

#include <math.h>
#include <string.h>

typedef struct tpl_frame {
    struct tpl_frame *parent;
    tpl_dict *vars;
} tpl_frame;

int tpl_check_steps(tpl_ctx *c) { return tpl_charge_steps(c, 1); }

int tpl_charge_steps(tpl_ctx *c, uint64_t n) {
    if (n > c->max_steps - c->steps) /* c->steps never exceeds c->max_steps: tpl_fail does not return */
        tpl_fail(c->env, MSBNB_ERR_UNSUPPORTED, "template stopped after %llu evaluation steps (a runaway loop?)",
                 (unsigned long long)c->max_steps);
    c->steps += n;
    return 0;
}

static tpl_frame *push_frame(tpl_ctx *c, tpl_frame *parent) {
    tpl_frame *f = tpl_alloc(c->a, sizeof *f);
    f->parent = parent;
    f->vars = tpl_dict_new(c->a, 4);
    return f;
}

static tpl_value lookup(tpl_ctx *c, const tpl_str *name) {
    for (tpl_frame *f = c->frame; f; f = f->parent) {
        const tpl_value *v = tpl_dict_get(f->vars, name->s, name->len);
        if (v) return *v;
    }
    const int g = tpl_global_id(name->s, name->len);
    if (g >= 0) return tpl_func(g, NULL);
    return tpl_undef(name);
}

static void assign(tpl_ctx *c, const tpl_str *name, tpl_value v) {
    tpl_dict_set(c->a, c->frame->vars, tpl_str_value(name), v);
}

static _Noreturn void undefined_error(tpl_ctx *c, const tpl_value *v) {
    if (v->u.s) tpl_fail(c->env, MSBNB_ERR_FORMAT, "'%s' is undefined", v->u.s->s);
    tpl_fail(c->env, MSBNB_ERR_FORMAT, "a value is undefined");
}

static tpl_value eval(tpl_ctx *c, const tpl_expr *e);

/* ---------------------------------------------------------------- arithmetic */

static bool is_num(const tpl_value *v) { return v->t == V_BOOL || v->t == V_INT || v->t == V_FLOAT; }
static double num(const tpl_value *v) { return v->t == V_FLOAT ? v->u.f : (double)v->u.i; }

static const char *op_name(int op) {
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_FLOORDIV: return "//";
    case OP_MOD: return "%";
    case OP_POW: return "**";
    default: return "?";
    }
}

static _Noreturn void bad_operands(tpl_ctx *c, int op, const tpl_value *a, const tpl_value *b) {
    if (a->t == V_UNDEF) undefined_error(c, a);
    if (b->t == V_UNDEF) undefined_error(c, b);
    tpl_fail(c->env, MSBNB_ERR_FORMAT, "unsupported operand types for %s: '%s' and '%s'", op_name(op), tpl_type_name(a),
             tpl_type_name(b));
}

/* s repeated n times (str * int, list * int). */
static tpl_value repeat(tpl_ctx *c, const tpl_value *s, int64_t n) {
    if (n < 0) n = 0;
    if (s->t == V_STR) {
        size_t bytes;
        if (!msbnb__mul_ok(s->u.s->len, (size_t)n, &bytes) || bytes > c->a->cap)
            tpl_fail(c->env, MSBNB_ERR_OUT_OF_MEMORY, "string repetition too large");
        tpl_buf b = {0};
        for (int64_t i = 0; i < n; i++) tpl_buf_put(c->a, &b, s->u.s->s, s->u.s->len);
        return tpl_str_value(tpl_buf_str(c->a, &b));
    }
    size_t items;
    if (!msbnb__mul_ok(s->u.l->n, (size_t)n, &items) || items > c->a->cap / sizeof(tpl_value))
        tpl_fail(c->env, MSBNB_ERR_OUT_OF_MEMORY, "list repetition too large");
    tpl_list *l = tpl_list_new(c->a, items);
    for (int64_t i = 0; i < n; i++)
        for (size_t k = 0; k < s->u.l->n; k++) tpl_list_push(c->a, l, s->u.l->v[k]);
    return tpl_list_value(l, s->tuple);
}

static tpl_value arith(tpl_ctx *c, int op, const tpl_value *a, const tpl_value *b) {
    if (op == OP_TILDE) {
        tpl_buf buf = {0};
        tpl_to_str(c->a, &buf, a, 0);
        tpl_to_str(c->a, &buf, b, 0);
        return tpl_str_value(tpl_buf_str(c->a, &buf));
    }
    if (op == OP_ADD && a->t == V_STR && b->t == V_STR) {
        tpl_buf buf = {0};
        tpl_buf_put(c->a, &buf, a->u.s->s, a->u.s->len);
        tpl_buf_put(c->a, &buf, b->u.s->s, b->u.s->len);
        return tpl_str_value(tpl_buf_str(c->a, &buf));
    }
    if (op == OP_ADD && a->t == V_LIST && b->t == V_LIST && a->tuple == b->tuple) {
        tpl_list *l = tpl_list_new(c->a, a->u.l->n + b->u.l->n);
        for (size_t i = 0; i < a->u.l->n; i++) tpl_list_push(c->a, l, a->u.l->v[i]);
        for (size_t i = 0; i < b->u.l->n; i++) tpl_list_push(c->a, l, b->u.l->v[i]);
        return tpl_list_value(l, a->tuple);
    }
    if (op == OP_MUL && (a->t == V_STR || a->t == V_LIST) && (b->t == V_INT || b->t == V_BOOL)) return repeat(c, a, b->u.i);
    if (op == OP_MUL && (b->t == V_STR || b->t == V_LIST) && (a->t == V_INT || a->t == V_BOOL)) return repeat(c, b, a->u.i);
    if (!is_num(a) || !is_num(b)) bad_operands(c, op, a, b);
    if (a->t != V_FLOAT && b->t != V_FLOAT) { /* integers: Python semantics, overflow refused */
        const int64_t x = a->u.i, y = b->u.i;
        int64_t r = 0;
        bool ovf = false;
        switch (op) {
        case OP_ADD: ovf = __builtin_add_overflow(x, y, &r); break;
        case OP_SUB: ovf = __builtin_sub_overflow(x, y, &r); break;
        case OP_MUL: ovf = __builtin_mul_overflow(x, y, &r); break;
        case OP_DIV:
            if (y == 0) tpl_fail(c->env, MSBNB_ERR_FORMAT, "division by zero");
            return tpl_float((double)x / (double)y);
        case OP_FLOORDIV:
        case OP_MOD: {
            if (y == 0) tpl_fail(c->env, MSBNB_ERR_FORMAT, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) {
                ovf = true;
                break;
            }
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) q--, m += y; /* floor, remainder with the divisor's sign */
            r = op == OP_FLOORDIV ? q : m;
            break;
        }
        case OP_POW:
            if (y < 0) return tpl_float(pow((double)x, (double)y));
            r = 1;
            for (int64_t k = 0; k < y && !ovf; k++) {
                ovf = __builtin_mul_overflow(r, x, &r);
                if (r == 0 || r == 1) break;
                if (r == -1) { r = (y % 2) ? -1 : 1; break; }
            }
            break;
        }
        if (ovf) tpl_fail(c->env, MSBNB_ERR_UNSUPPORTED, "integer overflow in %s", op_name(op));
        return tpl_int(r);
    }
    const double x = num(a), y = num(b);
    switch (op) {
    case OP_ADD: return tpl_float(x + y);
    case OP_SUB: return tpl_float(x - y);
    case OP_MUL: return tpl_float(x * y);
    case OP_DIV:
        if (y == 0) tpl_fail(c->env, MSBNB_ERR_FORMAT, "float division by zero");
        return tpl_float(x / y);
    case OP_FLOORDIV:
    case OP_MOD: {
        if (y == 0) tpl_fail(c->env, MSBNB_ERR_FORMAT, "float modulo by zero");
        double m = fmod(x, y);
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        return tpl_float(op == OP_MOD ? m : floor((x - m) / y + 0.5));
    }
    case OP_POW: return tpl_float(pow(x, y));
    }
    bad_operands(c, op, a, b);
}

/* ---------------------------------------------------------------- items and slices */

static tpl_value str_char(tpl_ctx *c, const tpl_str *s, size_t cp_index) {
    const size_t o = tpl_utf8_offset(s->s, s->len, cp_index), e = tpl_utf8_offset(s->s, s->len, cp_index + 1);
    return tpl_string(c->a, s->s + o, e - o);
}

static tpl_value getitem(tpl_ctx *c, const tpl_value *obj, const tpl_value *key) {
    if (obj->t == V_UNDEF) undefined_error(c, obj);
    if ((obj->t == V_LIST || obj->t == V_STR) && (key->t == V_INT || key->t == V_BOOL)) {
        const size_t n = obj->t == V_LIST ? obj->u.l->n : tpl_utf8_len(obj->u.s->s, obj->u.s->len);
        int64_t i = key->u.i;
        if (i < 0) i += (int64_t)n;
        if (i < 0 || (uint64_t)i >= n) return tpl_undef(NULL);
        return obj->t == V_LIST ? obj->u.l->v[i] : str_char(c, obj->u.s, (size_t)i);
    }
    if (obj->t == V_DICT || obj->t == V_NS) {
        const tpl_value *v = tpl_dict_find(c->env, obj->u.d, *key);
        if (v) return *v;
    }
    if (key->t == V_STR) return tpl_getattr(c, obj, key->u.s->s, key->u.s->len);
    return tpl_undef(NULL);
}

/* Python slice bounds (start, stop, step) over n items. */
static void slice_bounds(tpl_ctx *c, const tpl_value *vs, int64_t n, int64_t *start, int64_t *stop, int64_t *step) {
    for (int k = 0; k < 3; k++)
        if (vs[k].t != V_NONE && vs[k].t != V_UNDEF && vs[k].t != V_INT && vs[k].t != V_BOOL)
            tpl_fail(c->env, MSBNB_ERR_FORMAT, "slice indices must be integers or None, not %s", tpl_type_name(&vs[k]));
    *step = vs[2].t == V_INT || vs[2].t == V_BOOL ? vs[2].u.i : 1;
    if (*step == 0) tpl_fail(c->env, MSBNB_ERR_FORMAT, "slice step cannot be zero");
    const bool has0 = vs[0].t == V_INT || vs[0].t == V_BOOL, has1 = vs[1].t == V_INT || vs[1].t == V_BOOL;
    int64_t lo = *step > 0 ? 0 : -1, hi = *step > 0 ? n : n - 1;
    int64_t s = has0 ? vs[0].u.i : (*step > 0 ? 0 : hi), e = has1 ? vs[1].u.i : (*step > 0 ? n : lo);
    if (has0) {
        if (s < 0) s = s + n < lo ? lo : s + n;
        else if (s > hi) s = hi;
    }
    if (has1) {
        if (e < 0) e = e + n < lo ? lo : e + n;
        else if (e > hi) e = hi;
    }
    *start = s, *stop = e;
}

static tpl_value slice(tpl_ctx *c, const tpl_expr *e) {
    const tpl_value obj = eval(c, e->a);
    tpl_value vs[3] = {tpl_none(), tpl_none(), tpl_none()};
    if (e->b) vs[0] = eval(c, e->b);
    if (e->c) vs[1] = eval(c, e->c);
    if (e->d) vs[2] = eval(c, e->d);
    if (obj.t == V_UNDEF) undefined_error(c, &obj);
    if (obj.t != V_LIST && obj.t != V_STR) tpl_fail(c->env, MSBNB_ERR_FORMAT, "'%s' object is not subscriptable", tpl_type_name(&obj));
    const bool ascii_str = obj.t == V_STR && tpl_utf8_len(obj.u.s->s, obj.u.s->len) == obj.u.s->len;
    const int64_t n = obj.t == V_LIST ? (int64_t)obj.u.l->n : (int64_t)tpl_utf8_len(obj.u.s->s, obj.u.s->len);
    int64_t start, stop, step;
    slice_bounds(c, vs, n, &start, &stop, &step);
    if (obj.t == V_LIST) {
        tpl_list *l = tpl_list_new(c->a, 0);
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) tpl_list_push(c->a, l, obj.u.l->v[i]);
        return tpl_list_value(l, obj.tuple);
    }
    tpl_buf b = {0};
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (ascii_str) {
            tpl_buf_putc(c->a, &b, obj.u.s->s[i]);
        } else {
            const size_t o = tpl_utf8_offset(obj.u.s->s, obj.u.s->len, (size_t)i);
            const size_t w = tpl_utf8_offset(obj.u.s->s + o, obj.u.s->len - o, 1);
            tpl_buf_put(c->a, &b, obj.u.s->s + o, w);
        }
    }
    return tpl_str_value(tpl_buf_str(c->a, &b));
}

/* ---------------------------------------------------------------- calls */

static tpl_args eval_args(tpl_ctx *c, const tpl_expr *e) {
    tpl_args args = {0};
    if (!e->nargs) return args;
    tpl_value *pos = tpl_alloc_array(c->a, (size_t)e->nargs, sizeof *pos);
    tpl_value *kwv = tpl_alloc_array(c->a, (size_t)e->nargs, sizeof *kwv);
    const tpl_str **kwn = tpl_alloc_array(c->a, (size_t)e->nargs, sizeof *kwn);
    for (int i = 0; i < e->nargs; i++) {
        if (e->kw[i]) {
            kwn[args.nkw] = e->kw[i];
            kwv[args.nkw++] = eval(c, e->args[i]);
        } else {
            pos[args.npos++] = eval(c, e->args[i]);
        }
    }
    args.pos = pos, args.kwv = kwv, args.kwn = kwn;
    return args;
}

static void exec_body(tpl_ctx *c, const tpl_body *b);

tpl_value tpl_call_macro(tpl_ctx *c, const tpl_value *macro, const tpl_args *args) {
    const tpl_stmt *m = macro->u.macro;
    if (c->call_depth >= TPL_MAX_CALL_DEPTH)
        tpl_fail(c->env, MSBNB_ERR_UNSUPPORTED, "macros nested deeper than %d calls", TPL_MAX_CALL_DEPTH);
    if (args->npos > m->nnames)
        tpl_fail(c->env, MSBNB_ERR_FORMAT, "macro '%s' takes not more than %d argument(s)", m->macro_name->s, m->nnames);
    tpl_frame *saved_frame = c->frame;
    tpl_buf *saved_out = c->out;
    const int saved_loops = c->loop_depth;
    tpl_buf out = {0};
    c->frame = push_frame(c, c->root);
    for (int i = 0; i < m->nnames; i++) {
        tpl_value v = tpl_undef(m->names[i]);
        if (i < args->npos) v = args->pos[i];
        else if (m->defaults[i]) v = eval(c, m->defaults[i]);
        assign(c, m->names[i], v);
    }
    for (int k = 0; k < args->nkw; k++) {
        int i = 0;
        while (i < m->nnames && strcmp(m->names[i]->s, args->kwn[k]->s)) i++;
        if (i == m->nnames)
            tpl_fail(c->env, MSBNB_ERR_FORMAT, "macro '%s' has no parameter '%s'", m->macro_name->s, args->kwn[k]->s);
        assign(c, m->names[i], args->kwv[k]);
    }
    c->call_depth++;
    c->out = &out;
    c->loop_depth = 0;
    exec_body(c, &m->body);
    c->call_depth--;
    c->out = saved_out;
    c->frame = saved_frame;
    c->loop_depth = saved_loops;
    return tpl_str_value(tpl_buf_str(c->a, &out));
}

static tpl_value call(tpl_ctx *c, const tpl_expr *e) {
    const tpl_value f = eval(c, e->a);
    const tpl_args args = eval_args(c, e);
    if (f.t == V_FUNC) return tpl_call_builtin(c, f.fn, f.u.self, &args);
    if (f.t == V_MACRO) return tpl_call_macro(c, &f, &args);
    if (f.t == V_UNDEF) undefined_error(c, &f);
    tpl_fail(c->env, MSBNB_ERR_FORMAT, "'%s' object is not callable", tpl_type_name(&f));
}

/* ---------------------------------------------------------------- expressions */

static bool contains(tpl_ctx *c, const tpl_value *item, const tpl_value *seq) {
    if (seq->t == V_STR) {
        if (item->t != V_STR)
            tpl_fail(c->env, MSBNB_ERR_FORMAT, "'in <string>' requires string as left operand, not %s", tpl_type_name(item));
        const tpl_str *h = seq->u.s, *n = item->u.s;
        if (!n->len) return true;
        for (size_t i = 0; i + n->len <= h->len; i++)
            if (!memcmp(h->s + i, n->s, n->len)) return true;
        return false;
    }
    if (seq->t == V_LIST) {
        for (size_t i = 0; i < seq->u.l->n; i++)
            if (tpl_equal(c->env, item, &seq->u.l->v[i], 0)) return true;
        return false;
    }
    if (seq->t == V_DICT || seq->t == V_NS) return tpl_dict_find(c->env, seq->u.d, *item) != NULL;
    if (seq->t == V_UNDEF) undefined_error(c, seq);
    tpl_fail(c->env, MSBNB_ERR_FORMAT, "argument of type '%s' is not iterable", tpl_type_name(seq));
}

static bool compare_op(tpl_ctx *c, int op, const tpl_value *a, const tpl_value *b) {
    switch (op) {
    case OP_EQ: return tpl_equal(c->env, a, b, 0);
    case OP_NE: return !tpl_equal(c->env, a, b, 0);
    case OP_IN: return contains(c, a, b);
    case OP_NOTIN: return !contains(c, a, b);
    default: break;
    }
    if (a->t == V_UNDEF) undefined_error(c, a);
    if (b->t == V_UNDEF) undefined_error(c, b);
    const int r = tpl_compare(c->env, a, b, 0);
    return op == OP_LT ? r < 0 : op == OP_LE ? r <= 0 : op == OP_GT ? r > 0 : r >= 0;
}

static tpl_value eval(tpl_ctx *c, const tpl_expr *e) {
    tpl_check_steps(c);
    const int saved_line = c->env->line;
    c->env->line = e->line;
    tpl_value r;
    switch ((tpl_expr_kind)e->kind) {
    case E_CONST: r = e->cval; break;
    case E_NAME: r = lookup(c, e->name); break;
    case E_LIST:
    case E_TUPLE: {
        tpl_list *l = tpl_list_new(c->a, (size_t)e->nargs);
        for (int i = 0; i < e->nargs; i++) tpl_list_push(c->a, l, eval(c, e->args[i]));
        r = tpl_list_value(l, e->kind == E_TUPLE);
        break;
    }
    case E_DICT: {
        tpl_dict *d = tpl_dict_new(c->a, (size_t)e->nargs / 2);
        for (int i = 0; i + 1 < e->nargs; i += 2) {
            const tpl_value k = eval(c, e->args[i]);
            if (k.t == V_LIST && !k.tuple) tpl_fail(c->env, MSBNB_ERR_FORMAT, "unhashable type: 'list'");
            if (k.t == V_DICT) tpl_fail(c->env, MSBNB_ERR_FORMAT, "unhashable type: 'dict'");
            tpl_dict_set(c->a, d, k, eval(c, e->args[i + 1]));
        }
        r = (tpl_value){.t = V_DICT};
        r.u.d = d;
        break;
    }
    case E_ATTR: {
        const tpl_value obj = eval(c, e->a);
        if (obj.t == V_UNDEF) undefined_error(c, &obj);
        r = tpl_getattr(c, &obj, e->name->s, e->name->len);
        break;
    }
    case E_ITEM: {
        const tpl_value obj = eval(c, e->a), key = eval(c, e->b);
        r = getitem(c, &obj, &key);
        break;
    }
    case E_SLICE: r = slice(c, e); break;
    case E_CALL: r = call(c, e); break;
    case E_FILTER: {
        const tpl_value v = eval(c, e->a);
        const tpl_args args = eval_args(c, e);
        c->env->line = e->line;
        r = tpl_apply_filter(c, e->fn, &v, &args);
        break;
    }
    case E_TEST: {
        const tpl_value v = eval(c, e->a);
        const tpl_args args = eval_args(c, e);
        c->env->line = e->line;
        r = tpl_bool(tpl_apply_test(c, e->fn, &v, &args) != (e->op != 0));
        break;
    }
    case E_NOT: {
        const tpl_value v = eval(c, e->a);
        r = tpl_bool(!tpl_truthy(&v));
        break;
    }
    case E_NEG:
    case E_POS: {
        const tpl_value v = eval(c, e->a);
        if (v.t == V_FLOAT) r = tpl_float(e->kind == E_NEG ? -v.u.f : v.u.f);
        else if (v.t == V_INT || v.t == V_BOOL) {
            if (e->kind == E_NEG && v.u.i == INT64_MIN) tpl_fail(c->env, MSBNB_ERR_UNSUPPORTED, "integer overflow in -");
            r = tpl_int(e->kind == E_NEG ? -v.u.i : v.u.i);
        } else if (v.t == V_UNDEF) undefined_error(c, &v);
        else tpl_fail(c->env, MSBNB_ERR_FORMAT, "bad operand type for unary %s: '%s'", e->kind == E_NEG ? "-" : "+",
                      tpl_type_name(&v));
        break;
    }
    case E_BINOP: {
        const tpl_value a = eval(c, e->a), b = eval(c, e->b);
        c->env->line = e->line;
        r = arith(c, e->op, &a, &b);
        break;
    }
    case E_AND:
        r = eval(c, e->a);
        if (tpl_truthy(&r)) r = eval(c, e->b);
        break;
    case E_OR:
        r = eval(c, e->a);
        if (!tpl_truthy(&r)) r = eval(c, e->b);
        break;
    case E_COMPARE: {
        tpl_value left = eval(c, e->a);
        bool ok = true;
        for (int i = 0; i < e->nargs && ok; i++) {
            const tpl_value right = eval(c, e->args[i]);
            c->env->line = e->line;
            ok = compare_op(c, e->ops[i], &left, &right);
            left = right;
        }
        r = tpl_bool(ok);
        break;
    }
    case E_COND: {
        const tpl_value cond = eval(c, e->a);
        r = tpl_truthy(&cond) ? eval(c, e->b) : e->c ? eval(c, e->c) : tpl_undef(NULL);
        break;
    }
    default: tpl_fail(c->env, MSBNB_ERR_INTERNAL, "unknown expression kind %d", e->kind);
    }
    c->env->line = saved_line;
    return r;
}

/* ---------------------------------------------------------------- statements */

/* The items a for loop walks: list/tuple items, dict keys, string characters. */
const tpl_list *tpl_iter(tpl_ctx *c, const tpl_value *v) {
    switch ((tpl_type)v->t) {
    case V_UNDEF: return tpl_list_new(c->a, 1);
    case V_LIST: return v->u.l;
    case V_DICT: {
        tpl_list *l = tpl_list_new(c->a, v->u.d->n);
        for (size_t i = 0; i < v->u.d->n; i++) tpl_list_push(c->a, l, v->u.d->k[i]);
        return l;
    }
    case V_STR: {
        const size_t n = tpl_utf8_len(v->u.s->s, v->u.s->len);
        tpl_list *l = tpl_list_new(c->a, n);
        for (size_t i = 0, o = 0; i < n; i++) {
            const size_t w = tpl_utf8_offset(v->u.s->s + o, v->u.s->len - o, 1);
            tpl_list_push(c->a, l, tpl_string(c->a, v->u.s->s + o, w));
            o += w;
        }
        return l;
    }
    default: tpl_fail(c->env, MSBNB_ERR_FORMAT, "'%s' object is not iterable", tpl_type_name(v));
    }
}

static void bind_targets(tpl_ctx *c, const tpl_stmt *s, const tpl_value *v) {
    if (s->nnames == 1) {
        assign(c, s->names[0], *v);
        return;
    }
    const tpl_list *items = v->t == V_LIST ? v->u.l : NULL;
    if (v->t == V_STR || v->t == V_DICT) items = tpl_iter(c, v);
    if (!items) tpl_fail(c->env, MSBNB_ERR_FORMAT, "cannot unpack '%s' into %d names", tpl_type_name(v), s->nnames);
    if (items->n != (size_t)s->nnames)
        tpl_fail(c->env, MSBNB_ERR_FORMAT, "cannot unpack %zu values into %d names", items->n, s->nnames);
    for (int i = 0; i < s->nnames; i++) assign(c, s->names[i], items->v[i]);
}

static void exec_for(tpl_ctx *c, const tpl_stmt *s) {
    const tpl_value seq = eval(c, s->expr);
    const tpl_list *items = tpl_iter(c, &seq);
    tpl_frame *saved = c->frame;
    c->frame = push_frame(c, saved);
    if (s->cond) { /* `for x in xs if cond`: filter first; loop.* counts the kept items */
        tpl_list *kept = tpl_list_new(c->a, items->n);
        for (size_t i = 0; i < items->n; i++) {
            bind_targets(c, s, &items->v[i]);
            const tpl_value ok = eval(c, s->cond);
            if (tpl_truthy(&ok)) tpl_list_push(c->a, kept, items->v[i]);
        }
        items = kept;
    }
    const tpl_str *loop_name = tpl_str_new(c->a, "loop", 4);
    c->loop_depth++;
    /* Each turn starts from the outer values (Jinja): the turn's scope is emptied and reused, so
     * a long loop does not grow memory; `loop` is one object updated in place, as Jinja's is. */
    tpl_frame *turn = push_frame(c, c->frame);
    tpl_loop *lp = tpl_alloc(c->a, sizeof *lp);
    lp->length = (int64_t)items->n;
    lp->items = items;
    tpl_value lv = {.t = V_LOOP};
    lv.u.loop = lp;
    for (size_t i = 0; i < items->n; i++) {
        tpl_check_steps(c);
        turn->vars->n = 0;
        c->frame = turn;
        bind_targets(c, s, &items->v[i]);
        lp->index0 = (int64_t)i;
        assign(c, loop_name, lv);
        exec_body(c, &s->body);
        if (c->loop_ctl == 1) {
            c->loop_ctl = 0;
            break;
        }
        c->loop_ctl = 0;
    }
    c->loop_depth--;
    if (items->n == 0) exec_body(c, &s->orelse);
    c->frame = saved;
}

static void exec_stmt(tpl_ctx *c, const tpl_stmt *s) {
    tpl_check_steps(c);
    c->env->line = s->line;
    switch ((tpl_stmt_kind)s->kind) {
    case S_TEXT: tpl_buf_put(c->a, c->out, s->text, s->len); break;
    case S_OUTPUT: {
        const tpl_value v = eval(c, s->expr);
        tpl_to_str(c->a, c->out, &v, 0);
        break;
    }
    case S_IF: {
        bool yes = true;
        if (s->expr) {
            const tpl_value v = eval(c, s->expr);
            yes = tpl_truthy(&v);
        }
        exec_body(c, yes ? &s->body : &s->orelse);
        break;
    }
    case S_FOR: exec_for(c, s); break;
    case S_SET: {
        const tpl_value v = eval(c, s->expr);
        bind_targets(c, s, &v);
        break;
    }
    case S_SET_ATTR: {
        const tpl_value ns = lookup(c, s->names[0]);
        const tpl_value v = eval(c, s->expr);
        if (ns.t != V_NS) tpl_fail(c->env, MSBNB_ERR_FORMAT, "cannot assign attribute on non-namespace object '%s'", s->names[0]->s);
        tpl_dict_set(c->a, ns.u.d, tpl_str_value(s->names[1]), v);
        break;
    }
    case S_SET_BLOCK: {
        tpl_buf *saved = c->out;
        tpl_buf out = {0};
        c->out = &out;
        exec_body(c, &s->body);
        c->out = saved;
        assign(c, s->names[0], tpl_str_value(tpl_buf_str(c->a, &out)));
        break;
    }
    case S_MACRO: {
        tpl_value m = {.t = V_MACRO};
        m.u.macro = s;
        assign(c, s->macro_name, m);
        break;
    }
    case S_BREAK:
    case S_CONTINUE:
        if (!c->loop_depth) tpl_fail(c->env, MSBNB_ERR_FORMAT, "'%s' outside a loop", s->kind == S_BREAK ? "break" : "continue");
        c->loop_ctl = s->kind == S_BREAK ? 1 : 2;
        break;
    }
}

static void exec_body(tpl_ctx *c, const tpl_body *b) {
    for (int i = 0; i < b->n && !c->loop_ctl; i++) exec_stmt(c, b->s[i]);
}

void tpl_render(tpl_ctx *c, const tpl_body *root, tpl_dict *globals) {
    tpl_frame *g = tpl_alloc(c->a, sizeof *g);
    g->vars = globals;
    c->root = g;
    c->frame = push_frame(c, g); /* top-level `set` shadows the render variables */
    c->root = c->frame;
    exec_body(c, root);
}
