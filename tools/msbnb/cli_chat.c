/* cli_chat.c — `msbnb chat MODEL`: a conversation through the model's own chat template
 * (include/msbnb/chat.h), one-shot (--prompt) or interactive (lines from stdin), the reply
 * streamed token by token; and the prompt of `msbnb generate --chat`.
 *
 * Each turn renders the whole conversation again, as transformers' apply_chat_template does, and
 * tokenizes it with special tokens matched and nothing added (add_special_tokens=False): the
 * template writes BOS itself. Only the ids after the longest prefix already in the model's KV
 * cache are run, so a long conversation costs one prefill per turn, not per message. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <msbnb/chat.h>
#include <msbnb/model.h>

#include "cli.h"
#include "cli_convert_util.h" /* cli_read_file */
#include "cli_opts.h"

/* ================================================================ tokenizer glue */

/* Text → ids with special tokens matched and nothing added (HF add_special_tokens=False): the
 * template has written the special tokens when it knows their text. add_bos prepends the
 * tokenizer's BOS id for templates that do not (a --chat-template file over a llama2.c tokenizer,
 * whose bos_token text is unknown). *ids malloc'ed. */
static msbnb_status encode(const msbnb_tokenizer *tok, const char *text, size_t len, int add_bos, int32_t **ids, int *n) {
    size_t count = 0;
    int32_t *body = NULL;
    msbnb_status st = msbnb_tokenizer_encode_alloc(tok, text, len, 0, &body, &count);
    if (st != MSBNB_OK) return st;
    const int32_t bos = add_bos ? msbnb_tokenizer_bos(tok) : -1;
    const size_t lead = bos >= 0 ? 1 : 0;
    if (count + lead > (size_t)INT32_MAX || !(*ids = malloc((count + lead + 1) * sizeof(int32_t)))) {
        free(body);
        return MSBNB_ERR_OUT_OF_MEMORY;
    }
    if (lead) (*ids)[0] = bos;
    memcpy(*ids + lead, body, count * sizeof(int32_t));
    free(body);
    *n = (int)(count + lead);
    return MSBNB_OK;
}

/* End of the assistant's turn: any of the tokenizer's EOS ids (eos_token_id may be a list), or a
 * BOS (a new document: llama2.c models emit it after a story). */
static int is_stop(const msbnb_tokenizer *tok, int32_t id) {
    return msbnb_tokenizer_is_eos(tok, id) || id == msbnb_tokenizer_bos(tok);
}

/* ================================================================ template */

/* --chat-template FILE, else the model's own. *own: the template came from the model's
 * tokenizer_config.json and knows the BOS / EOS text. Prints the error; 1 on failure. */
static int load_template(const char *model, const char *file, const char *cmd, msbnb_chat_template **t, int *own) {
    *own = 0;
    if (!file) {
        if (msbnb_chat_template_load(model, t) != MSBNB_OK) {
            fprintf(stderr, "msbnb %s: %s\n", cmd, msbnb_last_error());
            return 1;
        }
        *own = msbnb_chat_template_bos_token(*t) != NULL;
        return 0;
    }
    size_t len = 0;
    char *src = cli_read_file(file, 16u << 20, &len); /* the engine's own limit: 16 MiB */
    if (!src) {
        fprintf(stderr, "msbnb %s: cannot read the chat template '%s' (missing, unreadable or over 16 MiB)\n", cmd, file);
        return 1;
    }
    msbnb_status st = msbnb_chat_template_compile(src, len, t);
    free(src);
    if (st != MSBNB_OK) {
        fprintf(stderr, "msbnb %s: %s: %s\n", cmd, file, msbnb_last_error());
        return 1;
    }
    return 0;
}

/* The conversation so far (role / content owned here). */
typedef struct conversation {
    msbnb_chat_message *m;
    int n, cap;
} conversation;

static int conv_add(conversation *c, const char *role, const char *content, size_t len) {
    if (c->n == c->cap) {
        const int cap = c->cap ? c->cap * 2 : 8;
        msbnb_chat_message *nm = realloc(c->m, (size_t)cap * sizeof *nm);
        if (!nm) return 0;
        c->m = nm, c->cap = cap;
    }
    char *r = strdup(role), *t = malloc(len + 1);
    if (!r || !t) {
        free(r);
        free(t);
        return 0;
    }
    memcpy(t, content, len);
    t[len] = 0;
    c->m[c->n].role = r;
    c->m[c->n++].content = t;
    return 1;
}

static void conv_clear(conversation *c, int keep) {
    for (int i = keep; i < c->n; i++) {
        free((char *)c->m[i].role);
        free((char *)c->m[i].content);
    }
    c->n = keep < c->n ? keep : c->n;
}

/* Render the conversation with the generation prompt and tokenize it. Prints the error; 1 on failure. */
static int render_ids(const msbnb_chat_template *t, int own, const conversation *c, const msbnb_tokenizer *tok,
                      const char *cmd, int32_t **ids, int *n) {
    msbnb_chat_render_params p = msbnb_chat_render_params_default();
    if (!own) p.bos_token = ""; /* BOS goes in as an id below */
    char *text = NULL;
    size_t len = 0;
    if (msbnb_chat_template_render(t, c->m, (size_t)c->n, &p, &text, &len) != MSBNB_OK ||
        encode(tok, text, len, !own, ids, n) != MSBNB_OK) {
        fprintf(stderr, "msbnb %s: %s\n", cmd, msbnb_last_error());
        free(text);
        return 1;
    }
    free(text);
    return 0;
}

int cli_chat_prompt_ids(const char *model, const char *template_file, const char *system, const char *user,
                        const msbnb_tokenizer *tok, const char *cmd, int32_t **ids, int *n) {
    msbnb_chat_template *t = NULL;
    int own = 0;
    if (load_template(model, template_file, cmd, &t, &own)) return 1;
    conversation c = {0};
    int rc = 0;
    if ((system && !conv_add(&c, "system", system, strlen(system))) || !conv_add(&c, "user", user, strlen(user))) {
        fprintf(stderr, "msbnb %s: out of memory\n", cmd);
        rc = 1;
    }
    if (rc == 0) rc = render_ids(t, own, &c, tok, cmd, ids, n);
    conv_clear(&c, 0);
    free(c.m);
    msbnb_chat_template_free(t);
    return rc;
}

/* ================================================================ a session */

typedef struct session {
    msbnb_model *m;
    const msbnb_tokenizer *tok;
    const msbnb_chat_template *t;
    int own;
    int32_t *cache; /* [ctx] ids whose keys/values are in the model's cache, positions 0..n_cache-1 */
    int n_cache, ctx, vocab;
    float *logits; /* [vocab] */
    msbnb_sampler_params sp;
    uint64_t rng;
    int max_new;
} session;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Print a piece of the reply as it comes and keep it in *buf (malloc'ed, grown). 0 when out of memory. */
static int keep_text(char **buf, size_t *len, size_t *cap, const char *piece, size_t n) {
    if (!n) return 1;
    fwrite(piece, 1, n, stdout);
    fflush(stdout);
    if (*cap - *len < n + 1) {
        const size_t c = (*cap + n) * 2 + 64;
        char *nb = realloc(*buf, c);
        if (!nb) return 0;
        *buf = nb, *cap = c;
    }
    memcpy(*buf + *len, piece, n);
    *len += n;
    return 1;
}

/* One assistant turn over the conversation: prefill what the cache lacks, sample until an end of
 * turn, --max-new-tokens or the end of the context, printing each piece as it comes. The reply
 * is appended to the conversation. Returns 1 on failure (printed). */
static int assistant_turn(session *s, conversation *c) {
    int32_t *ids = NULL;
    int n = 0;
    if (render_ids(s->t, s->own, c, s->tok, "chat", &ids, &n)) return 1;
    if (n >= s->ctx) {
        fprintf(stderr, "msbnb chat: the conversation is %d tokens, the context %d: start again (/reset) or "
                        "raise --ctx\n", n, s->ctx);
        free(ids);
        return 1;
    }
    int k = 0; /* ids already in the cache */
    while (k < s->n_cache && k < n && s->cache[k] == ids[k]) k++;
    if (k == n) k = n - 1; /* the last prompt id runs again: its logits start the reply */
    const double t0 = now_seconds();
    if (msbnb_model_forward(s->m, ids + k, n - k, k, s->logits, 0) != MSBNB_OK) {
        fprintf(stderr, "msbnb chat: %s\n", msbnb_last_error());
        free(ids);
        return 1;
    }
    memcpy(s->cache, ids, (size_t)n * sizeof(int32_t));
    s->n_cache = n;
    const int reused = k;
    free(ids);
    const double t1 = now_seconds();
    char *reply = NULL;
    size_t rlen = 0, rcap = 0;
    int made = 0, rc = 0;
    msbnb_detokenizer *dt = NULL;
    if (msbnb_detokenizer_create(s->tok, 0, &dt) != MSBNB_OK) {
        fprintf(stderr, "msbnb chat: %s\n", msbnb_last_error());
        return 1;
    }
    const char *why = "--max-new-tokens";
    for (; made < s->max_new; made++) {
        const int32_t id = msbnb_sample(s->logits, s->vocab, &s->sp, &s->rng);
        if (is_stop(s->tok, id)) {
            why = "end of turn";
            break;
        }
        const char *piece = NULL;
        size_t plen = 0;
        if (msbnb_detokenizer_push(dt, id, &piece, &plen) != MSBNB_OK || !keep_text(&reply, &rlen, &rcap, piece, plen)) {
            rc = 1;
            break;
        }
        if (s->n_cache >= s->ctx) {
            why = "the end of the context";
            made++;
            break;
        }
        s->cache[s->n_cache] = id;
        if (msbnb_model_forward(s->m, &id, 1, s->n_cache, s->logits, 0) != MSBNB_OK) {
            fprintf(stderr, "\nmsbnb chat: %s\n", msbnb_last_error());
            rc = 1;
            break;
        }
        s->n_cache++;
    }
    const char *tail = NULL;
    size_t tlen = 0;
    if (rc == 0 && (msbnb_detokenizer_flush(dt, &tail, &tlen) != MSBNB_OK || !keep_text(&reply, &rlen, &rcap, tail, tlen)))
        rc = 1;
    if (rc) fprintf(stderr, "\nmsbnb chat: %s\n", msbnb_last_error());
    msbnb_detokenizer_free(dt);
    printf("\n");
    fflush(stdout);
    const double t2 = now_seconds();
    fprintf(stderr, "[%d prompt tokens (%d from the cache) in %.2f s; %d new tokens in %.2f s (%.1f tokens/s); "
                    "stopped at %s]\n",
            n, reused, t1 - t0, made, t2 - t1, t2 > t1 ? made / (t2 - t1) : 0.0, why);
    if (rc == 0 && !conv_add(c, "assistant", reply ? reply : "", rlen)) {
        fprintf(stderr, "msbnb chat: out of memory\n");
        rc = 1;
    }
    free(reply);
    return rc;
}

/* ================================================================ the command */

static void chat_usage(FILE *f) {
    fprintf(f,
            "usage: msbnb chat MODEL [options]\n"
            "  MODEL                HF directory (config.json, weights, tokenizer files) or llama2.c .bin\n"
            "  --prompt TEXT        one user message: print the reply and exit (default: read messages\n"
            "                       from stdin, one per line; /reset starts over, /exit ends)\n"
            "  --system TEXT        system message first\n"
            "  --chat-template FILE Jinja chat template to use instead of the model's (tokenizer_config.json\n"
            "                       \"chat_template\" or chat_template.jinja); models without one need it\n"
            "  --max-new-tokens N   reply length at most (default 512)\n"
            "  --temp T             temperature (default 0 = greedy)\n"
            "  --top-p P            nucleus sampling (default 0.9; 1 = off)\n"
            "  --seed S             sampling seed (default 42)\n"
            "%s",
            cli_model_options_help());
}

int cmd_chat(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *system = NULL, *template_file = NULL;
    int max_new = 512;
    msbnb_sampler_params sp = msbnb_sampler_params_default();
    cli_model_opts *mo = cli_model_opts_create();
    if (!mo) {
        fprintf(stderr, "msbnb chat: out of memory\n");
        return EXIT_FAIL;
    }
    cli_args a;
    cli_args_begin(&a, "chat", argc, argv);
    while (cli_args_next(&a)) {
        if (cli_is_help(&a)) {
            chat_usage(stdout);
            cli_model_opts_free(mo);
            return EXIT_OK;
        }
        (void)(cli_model_option(mo, &a) || cli_str(&a, "--prompt", &prompt) || cli_str(&a, "--system", &system) ||
               cli_str(&a, "--chat-template", &template_file) ||
               cli_int(&a, "--max-new-tokens", 0, CLI_MAX_STEPS, &max_new) ||
               cli_float(&a, "--temp", 0, 1e6, &sp.temperature) || cli_float(&a, "--top-p", 0, 1, &sp.top_p) ||
               cli_u64(&a, "--seed", &sp.seed) || cli_positional(&a, &model, 1));
    }
    if (!a.failed && !(sp.top_p > 0.0f)) cli_args_error(&a, "--top-p must be in (0, 1]");
    if (!a.failed && !model) cli_args_error(&a, "needs MODEL");
    if (a.failed) {
        cli_model_opts_free(mo);
        return EXIT_USAGE;
    }
    /* the template first: a model without one fails before its weights are read */
    msbnb_chat_template *t = NULL;
    int own = 0;
    if (load_template(model, template_file, "chat", &t, &own)) {
        cli_model_opts_free(mo);
        return EXIT_FAIL;
    }
    session s = {.t = t, .own = own, .sp = sp, .rng = sp.seed, .max_new = max_new};
    msbnb_tokenizer *tok = NULL;
    int rc = cli_model_open(mo, model, "chat", &s.m, &tok);
    s.tok = tok;
    if (rc == 0) {
        s.ctx = msbnb_model_context_len(s.m);
        s.vocab = msbnb_model_vocab_size(s.m);
        s.cache = malloc((size_t)s.ctx * sizeof(int32_t));
        s.logits = malloc((size_t)s.vocab * sizeof(float));
        if (!s.cache || !s.logits) {
            fprintf(stderr, "msbnb chat: out of memory\n");
            rc = 1;
        }
    }
    conversation c = {0};
    if (rc == 0 && system && !conv_add(&c, "system", system, strlen(system))) rc = 1;
    const int keep = c.n; /* /reset keeps the system message */
    if (rc == 0 && prompt) {
        rc = conv_add(&c, "user", prompt, strlen(prompt)) ? assistant_turn(&s, &c) : 1;
    } else if (rc == 0) {
        const int tty = isatty(STDIN_FILENO);
        char *line = NULL;
        size_t cap = 0;
        for (;;) {
            if (tty) fprintf(stderr, "> "), fflush(stderr);
            const ssize_t k = getline(&line, &cap, stdin);
            if (k < 0) break;
            size_t len = (size_t)k;
            while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
            line[len] = 0;
            if (!len) continue;
            if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
            if (!strcmp(line, "/reset")) {
                conv_clear(&c, keep);
                fprintf(stderr, "[conversation cleared]\n");
                continue;
            }
            if (!conv_add(&c, "user", line, len) || assistant_turn(&s, &c)) {
                rc = 1;
                break;
            }
        }
        free(line);
    }
    conv_clear(&c, 0);
    free(c.m);
    free(s.cache);
    free(s.logits);
    msbnb_tokenizer_free(tok);
    msbnb_model_free(s.m);
    msbnb_chat_template_free(t);
    cli_model_opts_free(mo);
    return rc ? EXIT_FAIL : EXIT_OK;
}
