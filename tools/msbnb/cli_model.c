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

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!s[0] || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}
static int parse_float(const char *s, float *out) {
    char *end = NULL;
    double v = strtod(s, &end);
    if (!s[0] || *end) return 0;
    *out = (float)v;
    return 1;
}

/* Handle one model option at argv[*i]; 1 = consumed, 0 = not a model option, -1 = bad value. */
static int model_option(model_opts *o, int argc, char **argv, int *i, const char *cmd) {
    const char *a = argv[*i];
    const char *val = (*i + 1 < argc) ? argv[*i + 1] : NULL;
    int takes = 1;
    if (!strcmp(a, "--double-quant")) {
        o->mp.double_quant = 1;
        return 1;
    }
    if (!strcmp(a, "--fast")) {
        o->fast = 1;
        return 1;
    }
    if (!strcmp(a, "--quant")) {
        if (!val) goto missing;
        if (!strcmp(val, "f32") || !strcmp(val, "fp32") || !strcmp(val, "none")) o->mp.quant = MSBNB_QTYPE_NONE;
        else if (msbnb_qtype_parse(val, &o->mp.quant) != MSBNB_OK || o->mp.quant == MSBNB_QTYPE_BLOCKWISE8) {
            fprintf(stderr, "msbnb %s: --quant must be f32, int8, int4, nf4 or fp4 (got '%s')\n", cmd, val);
            return -1;
        }
    } else if (!strcmp(a, "--blocksize")) {
        if (!val) goto missing;
        if (!parse_int(val, 32, 4096, &o->mp.blocksize)) goto bad;
    } else if (!strcmp(a, "--group-size")) {
        if (!val) goto missing;
        if (!parse_int(val, 2, 1 << 20, &o->mp.group_size)) goto bad;
    } else if (!strcmp(a, "--threshold")) {
        if (!val) goto missing;
        if (!parse_float(val, &o->mp.int8_threshold) || !(o->mp.int8_threshold >= 0.0f)) goto bad;
    } else if (!strcmp(a, "--batch")) {
        if (!val) goto missing;
        if (!parse_int(val, 1, 1 << 16, &o->mp.max_batch)) goto bad;
    } else if (!strcmp(a, "--ctx")) {
        if (!val) goto missing;
        if (!parse_int(val, 2, 1 << 20, &o->mp.max_seq_len)) goto bad;
    } else if (!strcmp(a, "--tokenizer")) {
        if (!val) goto missing;
        o->tokenizer = val;
    } else if (!strcmp(a, "--threads")) {
        if (!val) goto missing;
        if (!parse_int(val, 1, 1024, &o->threads)) goto bad;
    } else {
        takes = 0;
    }
    if (takes) (*i)++;
    return takes;
missing:
    fprintf(stderr, "msbnb %s: %s needs a value\n", cmd, a);
    return -1;
bad:
    fprintf(stderr, "msbnb %s: bad value '%s' for %s\n", cmd, val, a);
    return -1;
}

static const char *model_options_help =
    "  --quant TYPE         f32 (default: as stored), int8, int4, nf4, fp4: quantize the 7 projections\n"
    "  --double-quant       quantize the 4-bit statistics too (nf4/fp4/int4)\n"
    "  --blocksize N        nf4/fp4 block size (64)\n"
    "  --group-size N       int4 group size (128; layers it does not divide use the next even divisor above it)\n"
    "  --threshold T        int8: LLM.int8() outlier threshold (0 = off)\n"
    "  --fast               FAST products for quantized projections (int8 activations for 1-2 tokens on\n"
    "                       AVX512-VNNI/AVX-VNNI, bf16 for longer batches on AVX512-BF16; docs/kernels.md)\n"
    "  --tokenizer PATH     llama2.c tokenizer (default: tok512.bin beside a .bin, in or above an HF dir)\n"
    "  --ctx N              KV cache length (default: the model's seq_len)\n"
    "  --batch N            tokens per forward pass over a prompt/window (default 64; 1 = as in generation)\n"
    "  --threads N          worker threads (default: MSBNB_THREADS or all cores)\n";

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Default tokenizer: <dir of model file>/tok512.bin, or <hf dir>/tok512.bin|tokenizer.bin, or
 * <hf dir>/../tok512.bin. Returns a malloc'ed path or NULL. */
char *cli_find_tokenizer(const char *model) {
    struct stat sb;
    int is_dir = stat(model, &sb) == 0 && S_ISDIR(sb.st_mode);
    size_t n = strlen(model) + 32;
    char *base = (char *)malloc(n), *path = (char *)malloc(n + 16);
    if (!base || !path) {
        free(base);
        free(path);
        return NULL;
    }
    snprintf(base, n, "%s", model);
    if (!is_dir) {
        char *slash = strrchr(base, '/');
        if (slash) *slash = '\0';
        else snprintf(base, n, ".");
    }
    const char *cands[] = {"%s/tok512.bin", "%s/tokenizer.bin", "%s/../tok512.bin"};
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        snprintf(path, n + 16, cands[i], base);
        if (file_exists(path)) {
            free(base);
            return path;
        }
    }
    free(base);
    free(path);
    return NULL;
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
    char *tpath = o->tokenizer ? NULL : cli_find_tokenizer(o->model);
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
    fprintf(stderr, "model: dim %d, hidden %d, %d layers, %d heads (%d kv), vocab %d, ctx %d; projections %s%s; "
                    "weights %.1f KiB%s; loaded in %.2f s\n",
            c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, msbnb_model_context_len(*m),
            o->mp.quant == MSBNB_QTYPE_NONE ? "as stored" : msbnb_qtype_name(o->mp.quant),
            o->mp.double_quant ? "+dq" : "", (double)msbnb_model_weight_bytes(*m) / 1024.0,
            o->fast ? "; FAST products" : "", now_seconds() - t0);
    return 0;
}

/* ================================================================ generate */

typedef struct {
    const msbnb_tokenizer *tok;
    int32_t prev;
} print_ctx;

static int print_token(void *ctx, int32_t token) {
    print_ctx *pc = (print_ctx *)ctx;
    const char *piece;
    size_t len;
    if (msbnb_tokenizer_decode(pc->tok, pc->prev, token, &piece, &len) == MSBNB_OK) fwrite(piece, 1, len, stdout);
    fflush(stdout);
    pc->prev = token;
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
    msbnb_sampler_params sp = msbnb_sampler_params_default();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = (i + 1 < argc) ? argv[i + 1] : NULL;
        int r = model_option(&o, argc, argv, &i, "generate");
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            generate_usage(stdout);
            return 0;
        }
        if (a[0] == '-' && a[1] == '-' && !val) {
            fprintf(stderr, "msbnb generate: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--prompt")) prompt = val;
        else if (!strcmp(a, "--steps")) {
            if (!parse_int(val, 0, 1 << 24, &steps)) goto bad;
        } else if (!strcmp(a, "--temp")) {
            if (!parse_float(val, &sp.temperature) || !(sp.temperature >= 0.0f)) goto bad;
        } else if (!strcmp(a, "--top-p")) {
            if (!parse_float(val, &sp.top_p) || !(sp.top_p > 0.0f && sp.top_p <= 1.0f)) goto bad;
        } else if (!strcmp(a, "--seed")) {
            char *end = NULL;
            sp.seed = strtoull(val, &end, 10);
            if (!val[0] || *end) goto bad;
        } else if (!strcmp(a, "--adapter")) {
            if (n_adapters == MAX_ADAPTERS) {
                fprintf(stderr, "msbnb generate: at most %d adapters\n", MAX_ADAPTERS);
                return 2;
            }
            const char *eq = strchr(val, '=');
            if (eq && (size_t)(eq - val) < sizeof adapter_names[0] && eq != val) {
                memcpy(adapter_names[n_adapters], val, (size_t)(eq - val));
                adapter_names[n_adapters][eq - val] = '\0';
                adapter_dirs[n_adapters] = eq + 1;
            } else {
                snprintf(adapter_names[n_adapters], sizeof adapter_names[0], "adapter%d", n_adapters);
                adapter_dirs[n_adapters] = val;
            }
            n_adapters++;
        } else if (!strcmp(a, "--use")) {
            use = val;
        } else if (a[0] == '-') {
            fprintf(stderr, "msbnb generate: unknown option '%s'\n\n", a);
            generate_usage(stderr);
            return 2;
        } else if (!o.model) {
            o.model = a;
            continue;
        } else {
            fprintf(stderr, "msbnb generate: unexpected argument '%s'\n", a);
            return 2;
        }
        i++;
        continue;
    bad:
        fprintf(stderr, "msbnb generate: bad value '%s' for %s\n", val, a);
        return 2;
    }
    if (!o.model) {
        generate_usage(stderr);
        return 2;
    }
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
    int32_t *ids = NULL, *out = NULL;
    if (rc == 0) {
        const size_t plen = strlen(prompt);
        const int ctx = msbnb_model_context_len(m);
        ids = (int32_t *)malloc((plen + 3) * sizeof(int32_t));
        out = (int32_t *)malloc((size_t)ctx * sizeof(int32_t));
        int n = 0, n_out = 0;
        if (!ids || !out || msbnb_tokenizer_encode(tok, prompt, plen, 1, 0, ids, (int)(plen + 3), &n) != MSBNB_OK) {
            fprintf(stderr, "msbnb generate: %s\n", msbnb_last_error());
            rc = 1;
        } else if (n > ctx) {
            fprintf(stderr, "msbnb generate: prompt of %d tokens exceeds the context of %d\n", n, ctx);
            rc = 1;
        } else {
            fwrite(prompt, 1, plen, stdout);
            print_ctx pc = {tok, ids[n - 1]};
            double t0 = now_seconds();
            if (msbnb_model_generate(m, ids, n, steps, &sp, print_token, &pc, out, ctx, &n_out) != MSBNB_OK) {
                fprintf(stderr, "\nmsbnb generate: %s\n", msbnb_last_error());
                rc = 1;
            } else {
                double dt = now_seconds() - t0;
                printf("\n");
                fflush(stdout); /* the text's last line before the statistics on stderr (2>&1) */
                fprintf(stderr, "%d prompt + %d new tokens in %.3f s (%.1f tokens/s)\n", n, n_out - n, dt,
                        dt > 0 ? (double)(n_out - n) / dt : 0.0);
            }
        }
    }
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
    const char *textfile = NULL, *sep_arg = NULL;
    msbnb_ppl_params pp = msbnb_ppl_params_default();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = (i + 1 < argc) ? argv[i + 1] : NULL;
        int r = model_option(&o, argc, argv, &i, "perplexity");
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            perplexity_usage(stdout);
            return 0;
        }
        int iv = 0;
        if (!strcmp(a, "--separator") && val) sep_arg = val;
        else if (!strcmp(a, "--window") && val && parse_int(val, 2, 1 << 20, &iv)) pp.window = iv;
        else if (!strcmp(a, "--stride") && val && parse_int(val, 1, 1 << 20, &iv)) pp.stride = iv;
        else if (!strcmp(a, "--max-tokens") && val && parse_int(val, 1, 1 << 30, &iv)) pp.max_tokens = iv;
        else if (a[0] == '-') {
            fprintf(stderr, "msbnb perplexity: unknown option or bad value '%s'\n\n", a);
            perplexity_usage(stderr);
            return 2;
        } else if (!o.model) {
            o.model = a;
            continue;
        } else if (!textfile) {
            textfile = a;
            continue;
        } else {
            fprintf(stderr, "msbnb perplexity: unexpected argument '%s'\n", a);
            return 2;
        }
        i++;
    }
    if (!o.model || !textfile) {
        perplexity_usage(stderr);
        return 2;
    }
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
