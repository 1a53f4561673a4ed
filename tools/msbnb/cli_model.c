/* cli_model.c — `msbnb generate` and `msbnb perplexity`: inference with the reference LLaMA model
 * (include/msbnb/model.h), optionally quantized at load and with PEFT LoRA adapters. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <msbnb/model.h>
#include <msbnb/nn.h>
#include <msbnb/train.h>

#include "cli.h"
#include "cli_opts.h"

/* ================================================================ options shared by both commands */

typedef struct {
    const char *model;
    const char *tokenizer;
    msbnb_model_params mp;
    int threads;
    int fast; /* --fast: MSBNB_PRECISION_FAST products */
} model_opts;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Match one model option at the current argument (cli_opts.h); true when it was one. */
static bool model_option(model_opts *o, cli_args *a) {
    const char *quant = NULL;
    bool dq = false, fast = false;
    static const char *const head_types[] = {"none", "int8", "nf4", NULL};
    static const msbnb_qtype head_qtypes[] = {MSBNB_QTYPE_NONE, MSBNB_QTYPE_INT8, MSBNB_QTYPE_NF4};
    int head = -1;
    bool hit = cli_flag(a, "--double-quant", &dq) || cli_flag(a, "--fast", &fast) || cli_str(a, "--quant", &quant) ||
               cli_choice(a, "--quant-head", head_types, &head) ||
               cli_int(a, "--blocksize", 32, 4096, &o->mp.blocksize) ||
               cli_int(a, "--group-size", 2, 1 << 20, &o->mp.group_size) ||
               cli_float(a, "--threshold", 0, 1e30, &o->mp.int8_threshold) ||
               cli_int(a, "--batch", 1, CLI_MAX_BATCH, &o->mp.max_batch) ||
               cli_int(a, "--ctx", 2, CLI_MAX_SEQ, &o->mp.max_seq_len) || cli_str(a, "--tokenizer", &o->tokenizer) ||
               cli_int(a, "--threads", 1, CLI_MAX_THREADS, &o->threads);
    if (dq) o->mp.double_quant = 1;
    if (fast) o->fast = 1;
    if (head >= 0) o->mp.head_quant = head_qtypes[head];
    if (quant) {
        if (!strcmp(quant, "f32") || !strcmp(quant, "fp32") || !strcmp(quant, "none")) o->mp.quant = MSBNB_QTYPE_NONE;
        else if (msbnb_qtype_parse(quant, &o->mp.quant) != MSBNB_OK || o->mp.quant == MSBNB_QTYPE_BLOCKWISE8)
            cli_args_error(a, "--quant must be f32, int8, int4, nf4 or fp4, not '%s'", quant);
    }
    return hit;
}

static const char *model_options_help =
    "  --quant TYPE         f32 (default: as stored), int8, int4, nf4, fp4: quantize the 7 projections\n"
    "  --quant-head TYPE    none (default: lm_head / tied embedding as stored, bf16 stays bf16), int8, nf4\n"
    "  --double-quant       quantize the 4-bit statistics too (nf4/fp4/int4)\n"
    "  --blocksize N        nf4/fp4 block size (64)\n"
    "  --group-size N       int4 group size (128; layers it does not divide use the next even divisor above it)\n"
    "  --threshold T        int8: LLM.int8() outlier threshold (0 = off; default: an INT8 checkpoint's\n"
    "                       llm_int8_threshold, else 0)\n"
    "  --fast               FAST products for quantized projections (int8 activations for 1-2 tokens on\n"
    "                       AVX512-VNNI/AVX-VNNI, bf16 for longer batches on AVX512-BF16; docs/kernels.md)\n"
    "  --tokenizer PATH     tokenizer.json, tokenizer.model or llama2.c tokenizer file, or a directory\n"
    "                       (default: the one in MODEL's directory; tok512.bin also one level up)\n"
    "  --ctx N              KV cache length (default: the model's seq_len)\n"
    "  --batch N            tokens per forward pass over a prompt/window (default 64; 1 = as in generation)\n"
    "  --threads N          worker threads (default: MSBNB_THREADS or all cores)\n";

/* Default tokenizer: tokenizer.json, tokenizer.model, tokenizer.bin or tok512.bin in the model's
 * directory (or the directory of a model file), the llama2.c names also one level up
 * (msbnb_tokenizer_find). Returns a malloc'ed path or NULL. */
static char *find_tokenizer(const char *model) {
    char *path = (char *)malloc(4096);
    if (path && msbnb_tokenizer_find(model, path, 4096) != MSBNB_OK) {
        free(path);
        return NULL;
    }
    return path;
}

/* Load model and tokenizer; prints the error and returns 1 on failure. */
static int open_model(const model_opts *o, const char *cmd, msbnb_model **m, msbnb_tokenizer **tok) {
    if (o->threads > 0) msbnb_set_num_threads(o->threads);
    double t0 = now_seconds();
    if (msbnb_model_load(o->model, &o->mp, m) != MSBNB_OK ||
        (o->fast && msbnb_model_set_precision(*m, MSBNB_PRECISION_FAST) != MSBNB_OK)) {
        fprintf(stderr, "msbnb %s: %s\n", cmd, msbnb_last_error());
        return 1;
    }
    char *tpath = o->tokenizer ? NULL : find_tokenizer(o->model);
    const char *tp = o->tokenizer ? o->tokenizer : tpath;
    if (!tp) {
        fprintf(stderr, "msbnb %s: no tokenizer found near '%s'; pass --tokenizer PATH\n", cmd, o->model);
        return 1;
    }
    msbnb_status st = msbnb_tokenizer_load(tp, msbnb_model_vocab_size(*m), tok);
    free(tpath);
    if (st != MSBNB_OK) {
        fprintf(stderr, "msbnb %s: %s\n", cmd, msbnb_last_error());
        return 1;
    }
    msbnb_model_config c;
    msbnb_model_get_config(*m, &c);
    static const char *const rope_names[] = {"", ", rope linear", ", rope dynamic", ", rope yarn", ", rope llama3"};
    char window[48] = "";
    if (c.sliding_window > 0) snprintf(window, sizeof window, ", window %d", c.sliding_window);
    fprintf(stderr, "model: %s%s%s, dim %d, hidden %d, %d layers, %d heads (%d kv), vocab %d, ctx %d; projections %s%s; "
                    "weights %.1f KiB%s; loaded in %.2f s\n",
            msbnb_family_name(c.family), (unsigned)c.rope.type <= MSBNB_ROPE_LLAMA3 ? rope_names[c.rope.type] : "",
            window, c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, msbnb_model_context_len(*m),
            o->mp.quant == MSBNB_QTYPE_NONE ? "as stored" : msbnb_qtype_name(o->mp.quant),
            o->mp.double_quant ? "+dq" : "", (double)msbnb_model_weight_bytes(*m) / 1024.0,
            o->fast ? "; FAST products" : "", now_seconds() - t0);
    return 0;
}

/* ================================================================ generate */

/* Streams the text of new tokens: the detokenizer holds bytes back until a character is complete
 * and was primed with the prompt's ids, so spacing continues the prompt's text. */
static int print_token(void *ctx, int32_t token) {
    msbnb_detokenizer *d = (msbnb_detokenizer *)ctx;
    const char *text;
    size_t len;
    if (msbnb_detokenizer_push(d, token, &text, &len) == MSBNB_OK) fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static void generate_usage(FILE *f) {
    fprintf(f, "usage: msbnb generate MODEL [options]\n"
               "  MODEL                HF directory (config.json + model.safetensors) or llama2.c .bin\n"
               "  --prompt TEXT        text to continue (default: empty, start from BOS)\n"
               "  --steps N            new tokens at most (default 256)\n"
               "  --temp T             temperature (default 0 = greedy)\n"
               "  --top-p P            nucleus sampling (default 0.9; 1 = off)\n"
               "  --seed S             sampling seed (default 42)\n"
               "  --adapter [NAME=]DIR load a PEFT LoRA adapter (repeatable; NAME defaults to adapterK)\n"
               "  --use NAME|none      adapter to generate with (default: the last one loaded)\n"
               "  --chat               the prompt is a user message, wrapped in the model's chat template\n"
               "  --system TEXT        with --chat: a system message first\n"
               "  --chat-template FILE with --chat: this Jinja template instead of the model's\n"
               "  --max-new-tokens N   the same as --steps\n"
               "%s",
            model_options_help);
}

#define MAX_ADAPTERS 16

int cmd_generate(int argc, char **argv) {
    model_opts o;
    memset(&o, 0, sizeof o);
    o.mp = msbnb_model_params_default();
    const char *prompt = "", *use = NULL;
    const char *adapter_dirs[MAX_ADAPTERS];
    char adapter_names[MAX_ADAPTERS][64];
    int n_adapters = 0, steps = 256;
    bool chat = false;
    const char *system = NULL, *chat_template = NULL;
    msbnb_sampler_params sp = msbnb_sampler_params_default();
    cli_args a;
    cli_args_begin(&a, "generate", argc, argv);
    while (cli_args_next(&a)) {
        if (cli_is_help(&a)) {
            generate_usage(stdout);
            return EXIT_OK;
        }
        const char *adapter = NULL;
        (void)(model_option(&o, &a) || cli_str(&a, "--prompt", &prompt) ||
               cli_int(&a, "--steps", 0, CLI_MAX_STEPS, &steps) || cli_float(&a, "--temp", 0, 1e6, &sp.temperature) ||
               cli_float(&a, "--top-p", 0, 1, &sp.top_p) || cli_u64(&a, "--seed", &sp.seed) ||
               cli_str(&a, "--adapter", &adapter) || cli_str(&a, "--use", &use) || cli_flag(&a, "--chat", &chat) ||
               cli_str(&a, "--system", &system) || cli_str(&a, "--chat-template", &chat_template) ||
               cli_int(&a, "--max-new-tokens", 0, CLI_MAX_STEPS, &steps) || cli_positional(&a, &o.model, 1));
        if (a.failed || !adapter) continue;
        if (n_adapters == MAX_ADAPTERS) {
            cli_args_error(&a, "at most %d adapters", MAX_ADAPTERS);
            break;
        }
        const char *eq = strchr(adapter, '=');
        if (eq && (size_t)(eq - adapter) < sizeof adapter_names[0] && eq != adapter) {
            memcpy(adapter_names[n_adapters], adapter, (size_t)(eq - adapter));
            adapter_names[n_adapters][eq - adapter] = '\0';
            adapter_dirs[n_adapters] = eq + 1;
        } else {
            snprintf(adapter_names[n_adapters], sizeof adapter_names[0], "adapter%d", n_adapters);
            adapter_dirs[n_adapters] = adapter;
        }
        n_adapters++;
    }
    if (a.failed) return EXIT_USAGE;
    if (!(sp.top_p > 0.0f)) return cli_args_error(&a, "--top-p must be in (0, 1]");
    if (!o.model) return cli_args_error(&a, "needs MODEL");
    if (!chat && (system || chat_template)) return cli_args_error(&a, "--system and --chat-template need --chat");
    msbnb_model *m = NULL;
    msbnb_tokenizer *tok = NULL;
    int rc = open_model(&o, "generate", &m, &tok);
    for (int k = 0; rc == 0 && k < n_adapters; k++) {
        if (msbnb_model_lora_load(m, adapter_dirs[k], adapter_names[k]) != MSBNB_OK) {
            fprintf(stderr, "msbnb generate: adapter '%s': %s\n", adapter_dirs[k], msbnb_last_error());
            rc = 1;
        } else {
            fprintf(stderr, "adapter '%s' loaded from %s\n", adapter_names[k], adapter_dirs[k]);
        }
    }
    if (rc == 0 && (use || n_adapters > 0)) {
        const char *name = (use && strcmp(use, "none") != 0) ? use : NULL;
        if (!use) name = adapter_names[n_adapters - 1];
        if (msbnb_model_lora_set_active(m, name) != MSBNB_OK) {
            fprintf(stderr, "msbnb generate: --use %s: %s\n", use ? use : name, msbnb_last_error());
            rc = 1;
        } else {
            fprintf(stderr, "generating with %s%s\n", name ? "adapter " : "the base model", name ? name : "");
        }
    }
    int32_t *ids = NULL, *out = NULL, *stop = NULL;
    msbnb_detokenizer *detok = NULL;
    if (rc == 0) {
        size_t plen = strlen(prompt);
        const int ctx = msbnb_model_context_len(m);
        size_t n = 0;
        int n_out = 0;
        /* the prompt with the tokenizer's special tokens (BOS for Llama / Mistral, none for Qwen);
         * an empty prompt starts from BOS, or EOS for tokenizers without one (GPT-2) */
        int n_eos = 0;
        const int32_t *eos = msbnb_tokenizer_eos_ids(tok, &n_eos);
        if (chat) { /* the prompt through the chat template (cli_chat.c); the reply alone is printed */
            int n_chat = 0;
            rc = cli_chat_prompt_ids(o.model, chat_template, system, prompt, tok, "generate", &ids, &n_chat);
            n = rc ? 0 : (size_t)n_chat;
            plen = 0;
        } else if (msbnb_tokenizer_encode_alloc(tok, prompt, plen, MSBNB_ENCODE_ADD_SPECIAL, &ids, &n) != MSBNB_OK) {
            fprintf(stderr, "msbnb generate: %s\n", msbnb_last_error());
            rc = 1;
        } else if (n == 0 && (msbnb_tokenizer_bos(tok) >= 0 || n_eos > 0)) {
            ids[n++] = msbnb_tokenizer_bos(tok) >= 0 ? msbnb_tokenizer_bos(tok) : eos[0];
        }
        if (rc == 0 && (n == 0 || n > (size_t)ctx)) {
            fprintf(stderr, "msbnb generate: prompt of %zu tokens (the context holds %d, at least 1 is needed)\n", n, ctx);
            rc = 1;
        }
        /* stop on any EOS id, and on BOS (a new document) */
        stop = (int32_t *)malloc(((size_t)n_eos + 1) * sizeof(int32_t));
        out = (int32_t *)malloc((size_t)ctx * sizeof(int32_t));
        if (rc == 0 && (!stop || !out || msbnb_detokenizer_create(tok, 0, &detok) != MSBNB_OK)) {
            fprintf(stderr, "msbnb generate: out of memory\n");
            rc = 1;
        }
        if (rc == 0) {
            if (n_eos) memcpy(stop, eos, (size_t)n_eos * sizeof(int32_t));
            sp.stop_ids = stop;
            sp.n_stop = n_eos;
            if (msbnb_tokenizer_bos(tok) >= 0) stop[sp.n_stop++] = msbnb_tokenizer_bos(tok);
            const char *text;
            size_t tl;
            for (size_t i = 0; i < n; i++) (void)msbnb_detokenizer_push(detok, ids[i], &text, &tl);
            fwrite(prompt, 1, plen, stdout);
            double t0 = now_seconds();
            if (msbnb_model_generate(m, ids, (int)n, steps, &sp, print_token, detok, out, ctx, &n_out) != MSBNB_OK) {
                fprintf(stderr, "\nmsbnb generate: %s\n", msbnb_last_error());
                rc = 1;
            } else {
                double dt = now_seconds() - t0;
                if (msbnb_detokenizer_flush(detok, &text, &tl) == MSBNB_OK) fwrite(text, 1, tl, stdout);
                printf("\n");
                fflush(stdout); /* the text's last line before the statistics on stderr (2>&1) */
                fprintf(stderr, "%zu prompt + %zu new tokens in %.3f s (%.1f tokens/s)\n", n, (size_t)n_out - n, dt,
                        dt > 0 ? (double)((size_t)n_out - n) / dt : 0.0);
            }
        }
    }
    msbnb_detokenizer_free(detok);
    free(stop);
    free(ids);
    free(out);
    msbnb_tokenizer_free(tok);
    msbnb_model_free(m);
    return rc;
}

/* ================================================================ perplexity */

static void perplexity_usage(FILE *f) {
    fprintf(f, "usage: msbnb perplexity MODEL TEXTFILE [options]\n"
               "  Documents are TEXTFILE split on the separator, each strip()ped and encoded with BOS;\n"
               "  tokens 1..n-1 of each are scored. Documents longer than the window are scored in\n"
               "  overlapping windows (each token after the first window sees >= window-stride tokens).\n"
               "  --separator S        document separator (default '<|endoftext|>'; '' = whole file;\n"
               "                       \\n and \\t escapes are understood, e.g. '\\n\\n')\n"
               "  --window N           window length in tokens (default: the context length)\n"
               "  --stride N           window step (default: window/2)\n"
               "  --max-tokens N       stop after scoring N tokens (default: all)\n"
               "  --adapter DIR        score with a PEFT LoRA adapter applied (unmerged)\n"
               "%s",
            model_options_help);
}

/* Copy s with \n, \t, \\ unescaped into a malloc'ed string. */
static char *unescape(const char *s) {
    char *o = (char *)malloc(strlen(s) + 1), *p = o;
    if (!o) return NULL;
    for (; *s; s++) {
        if (s[0] == '\\' && (s[1] == 'n' || s[1] == 't' || s[1] == '\\')) {
            *p++ = s[1] == 'n' ? '\n' : s[1] == 't' ? '\t' : '\\';
            s++;
        } else {
            *p++ = *s;
        }
    }
    *p = '\0';
    return o;
}

int cmd_perplexity(int argc, char **argv) {
    model_opts o;
    memset(&o, 0, sizeof o);
    o.mp = msbnb_model_params_default();
    const char *textfile = NULL, *sep_arg = NULL, *adapter = NULL;
    msbnb_ppl_params pp = msbnb_ppl_params_default();
    const char *pos[2] = {0};
    cli_args a;
    cli_args_begin(&a, "perplexity", argc, argv);
    while (cli_args_next(&a)) {
        if (cli_is_help(&a)) {
            perplexity_usage(stdout);
            return EXIT_OK;
        }
        (void)(model_option(&o, &a) || cli_str(&a, "--separator", &sep_arg) || cli_str(&a, "--adapter", &adapter) ||
               cli_int(&a, "--window", 2, CLI_MAX_SEQ, &pp.window) ||
               cli_int(&a, "--stride", 1, CLI_MAX_SEQ, &pp.stride) ||
               cli_i64(&a, "--max-tokens", 1, INT64_C(1) << 40, &pp.max_tokens) || cli_positional(&a, pos, 2));
    }
    if (a.failed) return EXIT_USAGE;
    o.model = pos[0], textfile = pos[1];
    if (!o.model || !textfile) return cli_args_error(&a, "needs MODEL and TEXTFILE");
    FILE *f = fopen(textfile, "rb");
    if (!f) {
        fprintf(stderr, "msbnb perplexity: cannot open '%s'\n", textfile);
        return 1;
    }
    char *text = NULL;
    size_t len = 0;
    long flen = -1;
    if (fseek(f, 0, SEEK_END) == 0) flen = ftell(f);
    if (flen >= 0 && fseek(f, 0, SEEK_SET) == 0 && (text = (char *)malloc((size_t)flen + 1)) != NULL)
        len = fread(text, 1, (size_t)flen, f);
    fclose(f);
    if (!text || (long)len != flen) {
        fprintf(stderr, "msbnb perplexity: cannot read '%s'\n", textfile);
        free(text);
        return 1;
    }
    char *sep = sep_arg ? unescape(sep_arg) : NULL;
    if (sep) pp.separator = sep;
    msbnb_model *m = NULL;
    msbnb_tokenizer *tok = NULL;
    int rc = open_model(&o, "perplexity", &m, &tok);
    if (rc == 0 && adapter && msbnb_model_lora_load(m, adapter, "default") != MSBNB_OK) {
        fprintf(stderr, "msbnb perplexity: adapter '%s': %s\n", adapter, msbnb_last_error());
        rc = 1;
    }
    if (rc == 0) {
        msbnb_ppl_result r;
        double t0 = now_seconds();
        if (msbnb_model_perplexity(m, tok, text, len, &pp, &r) != MSBNB_OK) {
            fprintf(stderr, "msbnb perplexity: %s\n", msbnb_last_error());
            rc = 1;
        } else {
            double dt = now_seconds() - t0;
            printf("tokens %lld  docs %lld  nll/token %.6f  perplexity %.4f  weights %zu bytes\n",
                   (long long)r.n_tokens, (long long)r.n_docs, r.mean_nll, r.perplexity, msbnb_model_weight_bytes(m));
            fprintf(stderr, "scored in %.2f s (%.0f tokens/s)\n", dt, dt > 0 ? (double)r.n_tokens / dt : 0.0);
        }
    }
    free(sep);
    free(text);
    msbnb_tokenizer_free(tok);
    msbnb_model_free(m);
    return rc;
}

/* ================================================================ for cli_chat.c (cli.h) */

struct cli_model_opts {
    model_opts o;
};

cli_model_opts *cli_model_opts_create(void) {
    cli_model_opts *c = calloc(1, sizeof *c);
    if (c) c->o.mp = msbnb_model_params_default();
    return c;
}
void cli_model_opts_free(cli_model_opts *c) { free(c); }
bool cli_model_option(cli_model_opts *c, cli_args *a) { return model_option(&c->o, a); }
const char *cli_model_options_help(void) { return model_options_help; }
int cli_model_open(cli_model_opts *c, const char *model, const char *cmd, msbnb_model **m, msbnb_tokenizer **tok) {
    c->o.model = model;
    return open_model(&c->o, cmd, m, tok);
}
