/* cli_train.c — `msbnb finetune` (QLoRA fine-tuning on a text file, PEFT adapter out) and
 * `msbnb merge` (fold an adapter into a standalone checkpoint). Public API only. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, fileno, isatty */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <msbnb/io.h>
#include <msbnb/train.h>

#include "cli.h"
#include "svg_plot.h"

/* ================================================================ small helpers */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else {
                buf[n] = 0;
                *len = (size_t)n;
            }
        }
    }
    fclose(f);
    return buf;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The tokenizer: --tokenizer, else tok512.bin / tokenizer.bin in the model's directory or its
 * parent (the layout of ../shared/models/stories260K, whose hf/ sits beside tok512.bin). */
static int find_tokenizer(const char *model, const char *given, char *out, size_t cap) {
    if (given) {
        snprintf(out, cap, "%s", given);
        return file_exists(out);
    }
    struct stat st;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", model);
    if (stat(model, &st) == 0 && !S_ISDIR(st.st_mode)) {
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
    }
    const char *cands[] = {"%s/tok512.bin", "%s/tokenizer.bin", "%s/../tok512.bin", "%s/../tokenizer.bin"};
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        snprintf(out, cap, cands[i], dir);
        if (file_exists(out)) return 1;
    }
    return 0;
}

/* Tokenize text as a stream of paragraphs (split on blank lines, each encoded with BOS, as the
 * TinyStories documents the base model saw). Returns a malloc'ed id array, NULL on failure. */
static int32_t *tokenize_stream(const msbnb_tokenizer *tok, const char *text, size_t len, int64_t *n_out) {
    size_t cap = len + 16;
    int32_t *ids = malloc(sizeof(int32_t) * cap), *buf = NULL;
    size_t bufcap = 0;
    int64_t n = 0;
    size_t i = 0;
    while (ids && i < len) {
        while (i < len && (text[i] == '\n' || text[i] == '\r' || text[i] == ' ' || text[i] == '\t')) i++;
        size_t s = i;
        while (i < len && !(text[i] == '\n' && i + 1 < len && (text[i + 1] == '\n' || text[i + 1] == '\r'))) i++;
        size_t e = i;
        while (e > s && (text[e - 1] == '\n' || text[e - 1] == '\r' || text[e - 1] == ' ')) e--;
        if (e == s) continue;
        /* one paragraph: newlines inside it become spaces (the 512-token vocabulary has no line
         * structure worth learning); NUL bytes are not allowed by the tokenizer */
        size_t plen = e - s;
        if (plen + 3 > bufcap) {
            free(buf);
            bufcap = plen + 3;
            buf = malloc(sizeof(int32_t) * bufcap);
            if (!buf) break;
        }
        char *para = malloc(plen + 1);
        if (!para) break;
        for (size_t k = 0; k < plen; k++) {
            char c = text[s + k];
            para[k] = (c == '\n' || c == '\r' || c == 0) ? ' ' : c;
        }
        int got = 0;
        msbnb_status st = msbnb_tokenizer_encode(tok, para, plen, 1, 0, buf, (int)bufcap, &got);
        free(para);
        if (st != MSBNB_OK) {
            free(ids);
            ids = NULL;
            break;
        }
        memcpy(ids + n, buf, sizeof(int32_t) * (size_t)got);
        n += got;
    }
    free(buf);
    *n_out = n;
    return ids;
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int fail(const char *what) {
    fprintf(stderr, "msbnb: %s: %s\n", what, msbnb_last_error());
    return 1;
}

/* ================================================================ finetune */

typedef struct ft_opts {
    const char *model, *text, *out, *val, *resume, *tokenizer, *targets;
    msbnb_qtype quant;
    int double_quant;
    int r;
    float alpha, dropout, lr, val_frac;
    int steps, batch, seq, warmup, eval_every, val_windows, recompute, threads, quiet;
    int stop_at; /* stop (with a checkpoint) after this step; 0 = run to --steps */
    msbnb_optim_type optim;
    msbnb_compute compute;
    uint64_t seed;
} ft_opts;

static void finetune_usage(FILE *f) {
    fputs("usage: msbnb finetune MODEL TEXTFILE --out ADAPTER_DIR [options]\n"
          "  QLoRA fine-tuning of MODEL (HF dir or llama2.c .bin) on TEXTFILE; saves a PEFT adapter.\n"
          "  --quant nf4|fp4|int4|int8|f32  base format (default nf4)   --double-quant\n"
          "  --r 8 --alpha 16 --dropout 0.05 --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj\n"
          "  --lr 2e-4 --steps 200 --batch 4 --seq 64 --warmup 10 --optim adamw|adamw8bit --seed 0\n"
          "  --eval-every 50 --val TEXTFILE (default: last --val-frac 0.05 of TEXTFILE held out)\n"
          "  --val-windows 64 (validation windows of seq tokens; 0 = all)  --recompute (less memory)\n"
          "  --compute auto|fp32|bf16 (base products; auto = bf16 where the CPU has native bf16 dot\n"
          "  products, AVX512-BF16 or AMX, else fp32; LoRA weights and optimizer state stay fp32)\n"
          "  --resume DIR (continue a run saved in DIR, with the same options)  --stop-at N (stop after\n"
          "  step N as if interrupted)  --tokenizer PATH  --threads N  --quiet\n"
          "Writes ADAPTER_DIR/adapter_config.json, adapter_model.safetensors, metrics.jsonl, loss.svg,\n"
          "checkpoint/ (optimizer.bin, state.json), saved at every evaluation and at the end, so an\n"
          "interrupted run resumed with --resume ends bit-identical to an uninterrupted one.\n",
          f);
}

static int parse_finetune(int argc, char **argv, ft_opts *o) {
    *o = (ft_opts){0};
    o->quant = MSBNB_QTYPE_NF4;
    o->r = 8, o->alpha = 16, o->dropout = 0.05f, o->lr = 2e-4f, o->val_frac = 0.05f;
    o->steps = 200, o->batch = 4, o->seq = 64, o->warmup = 10, o->eval_every = 50, o->val_windows = 64;
    o->targets = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj";
    o->optim = MSBNB_OPTIM_ADAMW;
    const char *pos[2] = {0};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && ++i)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            finetune_usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--double-quant")) o->double_quant = 1;
        else if (!strcmp(a, "--recompute")) o->recompute = 1;
        else if (!strcmp(a, "--quiet")) o->quiet = 1;
        else if (OPT("--out")) o->out = v;
        else if (OPT("--val")) o->val = v;
        else if (OPT("--resume")) o->resume = v;
        else if (OPT("--tokenizer")) o->tokenizer = v;
        else if (OPT("--targets")) o->targets = v;
        else if (OPT("--quant")) {
            if (!strcmp(v, "f32") || !strcmp(v, "none")) o->quant = MSBNB_QTYPE_NONE;
            else if (msbnb_qtype_parse(v, &o->quant) != MSBNB_OK) return fprintf(stderr, "bad --quant %s\n", v), 0;
        } else if (OPT("--optim")) {
            if (!strcmp(v, "adamw")) o->optim = MSBNB_OPTIM_ADAMW;
            else if (!strcmp(v, "adamw8bit")) o->optim = MSBNB_OPTIM_ADAMW8BIT;
            else return fprintf(stderr, "bad --optim %s\n", v), 0;
        } else if (OPT("--compute")) {
            if (msbnb_compute_parse(v, &o->compute) != MSBNB_OK) return fprintf(stderr, "bad --compute %s\n", v), 0;
        } else if (OPT("--r")) o->r = atoi(v);
        else if (OPT("--alpha")) o->alpha = (float)atof(v);
        else if (OPT("--dropout")) o->dropout = (float)atof(v);
        else if (OPT("--lr")) o->lr = (float)atof(v);
        else if (OPT("--steps")) o->steps = atoi(v);
        else if (OPT("--batch")) o->batch = atoi(v);
        else if (OPT("--seq")) o->seq = atoi(v);
        else if (OPT("--warmup")) o->warmup = atoi(v);
        else if (OPT("--eval-every")) o->eval_every = atoi(v);
        else if (OPT("--val-windows")) o->val_windows = atoi(v);
        else if (OPT("--val-frac")) o->val_frac = (float)atof(v);
        else if (OPT("--threads")) o->threads = atoi(v);
        else if (OPT("--stop-at")) o->stop_at = atoi(v);
        else if (OPT("--seed")) o->seed = strtoull(v, NULL, 10);
        else if (a[0] == '-' && a[1] == '-') return fprintf(stderr, "unknown or incomplete option %s\n", a), 0;
        else if (npos < 2) pos[npos++] = a;
        else return fprintf(stderr, "unexpected argument %s\n", a), 0;
#undef OPT
    }
    o->model = pos[0], o->text = pos[1];
    if (!o->model || !o->text || !o->out) return fprintf(stderr, "MODEL, TEXTFILE and --out are required\n"), 0;
    if (o->steps < 1 || o->batch < 1 || o->seq < 2 || o->r < 1 || o->warmup < 0 || o->eval_every < 0 || o->stop_at < 0 ||
        o->dropout < 0 || o->dropout >= 1 || o->val_frac < 0 || o->val_frac >= 1 || o->lr <= 0)
        return fprintf(stderr, "an option is out of range\n"), 0;
    return 1;
}

/* Checkpoint state next to the adapter: what --resume needs besides the adapter and optimizer. */
static int save_state(const char *dir, int step, uint64_t rng, uint64_t dropout_step, const ft_opts *o) {
    char path[8400];
    snprintf(path, sizeof path, "%s/state.json.tmp", dir);
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fprintf(f, "{\"step\": %d, \"rng\": \"%016llx\", \"dropout_step\": %llu, \"seed\": %llu, \"steps\": %d, "
               "\"batch\": %d, \"seq\": %d, \"lr\": %.9g}\n",
            step, (unsigned long long)rng, (unsigned long long)dropout_step, (unsigned long long)o->seed, o->steps,
            o->batch, o->seq, (double)o->lr);
    if (fclose(f) != 0) return 0;
    char final[8400];
    snprintf(final, sizeof final, "%s/state.json", dir);
    return rename(path, final) == 0;
}

/* Reads checkpoint/state.json (written by save_state) through the library's validated JSON reader;
 * any missing, mistyped or out-of-range field rejects the checkpoint with a message. */
static int load_state(const char *dir, int *step, uint64_t *rng, uint64_t *dropout_step) {
    char path[8400];
    snprintf(path, sizeof path, "%s/checkpoint/state.json", dir);
    msbnb_config *c = NULL;
    if (msbnb_config_open(path, &c) != MSBNB_OK) {
        fprintf(stderr, "msbnb finetune: %s\n", msbnb_last_error());
        return 0;
    }
    int64_t st = -1, dst = -1;
    const char *hex = NULL;
    char *end = NULL;
    int ok = msbnb_config_get_int(c, "step", &st) == MSBNB_OK && msbnb_config_get_int(c, "dropout_step", &dst) == MSBNB_OK &&
             msbnb_config_get_string(c, "rng", &hex) == MSBNB_OK && st >= 0 && st <= INT32_MAX && dst >= 0 && hex &&
             strlen(hex) == 16;
    unsigned long long r = 0;
    if (ok) {
        errno = 0;
        r = strtoull(hex, &end, 16);
        ok = errno == 0 && end && *end == '\0';
    }
    if (!ok) fprintf(stderr, "msbnb finetune: %s: missing or invalid step / rng / dropout_step\n", path);
    msbnb_config_free(c);
    if (!ok) return 0;
    *step = (int)st;
    *rng = r;
    *dropout_step = (uint64_t)dst;
    return 1;
}

/* Adapter (PEFT files) + checkpoint/ (optimizer state, state.json with the step reached, the data
 * RNG and the dropout counter) of a run that has completed `step` steps. Returns 1 on success. */
static int save_checkpoint(msbnb_model *m, msbnb_optim *opt, msbnb_trainer *tr, const ft_opts *o, int step,
                           uint64_t rng) {
    if (msbnb_model_lora_save(m, "default", o->out, o->model) != MSBNB_OK) {
        fail("save adapter");
        return 0;
    }
    char path[4200], opath[4300];
    snprintf(path, sizeof path, "%s/checkpoint", o->out);
    mkdir(path, 0777);
    snprintf(opath, sizeof opath, "%s/optimizer.bin", path);
    if (msbnb_optim_save(opt, opath) != MSBNB_OK || !save_state(path, step, rng, msbnb_trainer_step_count(tr), o)) {
        fail("save checkpoint");
        return 0;
    }
    return 1;
}

typedef struct curve {
    double *x, *y;
    size_t n, cap;
} curve;
static void curve_add(curve *c, double x, double y) {
    if (c->n == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 256;
        double *nx = realloc(c->x, nc * sizeof(double)), *ny = nx ? realloc(c->y, nc * sizeof(double)) : NULL;
        if (!nx || !ny) {
            if (nx) c->x = nx;
            return;
        }
        c->x = nx, c->y = ny, c->cap = nc;
    }
    c->x[c->n] = x, c->y[c->n] = y, c->n++;
}

static void fmt_eta(double s, char *buf, size_t cap) {
    int t = (int)(s + 0.5);
    snprintf(buf, cap, "%d:%02d", t / 60, t % 60);
}

int cmd_finetune(int argc, char **argv) {
    ft_opts o;
    if (!parse_finetune(argc, argv, &o)) {
        finetune_usage(stderr);
        return 2;
    }
    if (o.threads > 0) msbnb_set_num_threads(o.threads);
    int rc = 1;
    msbnb_model *m = NULL;
    msbnb_tokenizer *tok = NULL;
    msbnb_trainer *tr = NULL;
    msbnb_optim *opt = NULL;
    char *text = NULL, *vtext = NULL;
    int32_t *train_ids = NULL, *val_ids = NULL, *batch = NULL;
    FILE *metrics = NULL;
    curve train_c = {0}, val_c = {0};
    char path[4200], tokpath[4096];

    /* ---- model and tokenizer */
    msbnb_model_params mp = msbnb_model_params_default();
    mp.quant = o.quant;
    mp.double_quant = o.double_quant;
    if (msbnb_model_load(o.model, &mp, &m) != MSBNB_OK) return fail(o.model);
    if (!find_tokenizer(o.model, o.tokenizer, tokpath, sizeof tokpath)) {
        fprintf(stderr, "msbnb: no tokenizer found for %s (use --tokenizer)\n", o.model);
        goto done;
    }
    if (msbnb_tokenizer_load(tokpath, msbnb_model_vocab_size(m), &tok) != MSBNB_OK) {
        fail(tokpath);
        goto done;
    }
    /* ---- data: training text, validation held out */
    size_t tlen = 0, vlen = 0;
    if (!(text = read_file(o.text, &tlen))) {
        fprintf(stderr, "msbnb: cannot read %s\n", o.text);
        goto done;
    }
    size_t split = tlen;
    if (o.val) {
        if (!(vtext = read_file(o.val, &vlen))) {
            fprintf(stderr, "msbnb: cannot read %s\n", o.val);
            goto done;
        }
    } else {
        /* last val_frac of the bytes, moved forward to a paragraph boundary */
        split = (size_t)((double)tlen * (1.0 - o.val_frac));
        while (split < tlen && !(text[split] == '\n' && split + 1 < tlen && text[split + 1] == '\n')) split++;
        vtext = text + split;
        vlen = tlen - split;
    }
    int64_t n_train = 0, n_val = 0;
    double t_tok = now_s();
    train_ids = tokenize_stream(tok, text, split, &n_train);
    val_ids = tokenize_stream(tok, vtext, vlen, &n_val);
    if (!train_ids || !val_ids) {
        fail("tokenize");
        goto done;
    }
    if (n_train < o.seq + 2 || n_val < 2) {
        fprintf(stderr, "msbnb: too little text: %lld training tokens, %lld validation tokens\n", (long long)n_train,
                (long long)n_val);
        goto done;
    }
    printf("data: %lld training tokens, %lld validation tokens (%s), tokenized in %.1fs\n", (long long)n_train,
           (long long)n_val, o.val ? o.val : "held out: end of the text", now_s() - t_tok);

    /* ---- adapters: new, or the one being resumed */
    int start_step = 0;
    uint64_t rng = o.seed * 0x2545F4914F6CDD1Dull + 1, dropout_step = 0;
    if (o.resume) {
        if (msbnb_model_lora_load(m, o.resume, "default") != MSBNB_OK) {
            fail(o.resume);
            goto done;
        }
        if (!load_state(o.resume, &start_step, &rng, &dropout_step)) {
            fprintf(stderr, "msbnb: %s/checkpoint/state.json missing or unreadable\n", o.resume);
            goto done;
        }
    } else {
        unsigned targets = 0;
        msbnb_lora_params lp = msbnb_lora_params_default();
        lp.r = o.r;
        lp.lora_alpha = o.alpha;
        lp.lora_dropout = o.dropout;
        lp.seed = o.seed;
        if (msbnb_lora_targets_parse(o.targets, &targets) != MSBNB_OK ||
            msbnb_model_lora_attach(m, "default", &lp, targets) != MSBNB_OK) {
            fail("attach adapters");
            goto done;
        }
    }
    msbnb_train_params tp = msbnb_train_params_default();
    tp.batch = o.batch;
    tp.seq_len = o.seq;
    tp.recompute = o.recompute;
    tp.seed = o.seed;
    tp.compute = o.compute;
    msbnb_adamw_params ap = msbnb_adamw_params_default();
    ap.lr = o.lr;
    ap.weight_decay = 0.0f;
    ap.max_grad_norm = 1.0f;
    ap.schedule = MSBNB_LR_WARMUP_COSINE;
    ap.warmup_steps = o.warmup < o.steps ? o.warmup : o.steps - 1;
    ap.total_steps = o.steps;
    ap.min_lr_ratio = 0.1f;
    if (msbnb_trainer_create(m, &tp, &tr) != MSBNB_OK || msbnb_optim_create(o.optim, &ap, &opt) != MSBNB_OK ||
        msbnb_trainer_register(tr, opt) != MSBNB_OK) {
        fail("trainer");
        goto done;
    }
    if (o.resume) {
        snprintf(path, sizeof path, "%s/checkpoint/optimizer.bin", o.resume);
        if (msbnb_optim_load(opt, path) != MSBNB_OK) {
            fail(path);
            goto done;
        }
        msbnb_trainer_set_step_count(tr, dropout_step);
    }
    int64_t base = 0, trainable = 0;
    msbnb_trainer_count_params(tr, &base, &trainable);
    printf("model: %lld base parameters (%s%s), LoRA r=%d: %lld trainable (%.3f%%); activations %.1f MB; "
           "compute %s (level %s)\n",
           (long long)base, o.quant == MSBNB_QTYPE_NONE ? "f32" : msbnb_qtype_name(o.quant),
           o.double_quant ? "+dq" : "", o.r, (long long)trainable, 100.0 * (double)trainable / (double)base,
           (double)msbnb_trainer_memory_bytes(tr) / 1e6, msbnb_compute_name(msbnb_trainer_compute(tr)),
           msbnb_isa_name(msbnb_isa_current()));

    /* ---- outputs */
    if (mkdir(o.out, 0777) != 0 && !file_exists(o.out)) {
        struct stat st;
        if (stat(o.out, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "msbnb: cannot create %s\n", o.out);
            goto done;
        }
    }
    snprintf(path, sizeof path, "%s/metrics.jsonl", o.out);
    metrics = fopen(path, start_step > 0 ? "a" : "w");
    if (!metrics) {
        fprintf(stderr, "msbnb: cannot write %s\n", path);
        goto done;
    }

    /* ---- training loop */
    int tty = isatty(fileno(stdout)) && !o.quiet;
    int print_every = o.steps / 20 > 0 ? o.steps / 20 : 1;
    batch = malloc(sizeof(int32_t) * (size_t)o.batch * (size_t)(o.seq + 1));
    if (!batch) goto done;
    double val_loss = NAN, first_val = NAN;
    int64_t vcount = 0;
    if (msbnb_trainer_eval_stream(tr, val_ids, n_val, o.val_windows, &val_loss, &vcount) != MSBNB_OK) {
        fail("validation");
        goto done;
    }
    first_val = val_loss;
    printf("step %4d: val loss %.4f (ppl %.2f) over %lld tokens\n", start_step, val_loss, exp(val_loss),
           (long long)vcount);
    curve_add(&val_c, start_step, val_loss);
    fprintf(metrics, "{\"step\": %d, \"val_loss\": %.6f, \"val_ppl\": %.4f}\n", start_step, val_loss, exp(val_loss));
    double t0 = now_s(), ema = NAN;
    int64_t tokens_done = 0;
    const int last = o.stop_at > 0 && o.stop_at < o.steps ? o.stop_at : o.steps; /* last step of this run */
    for (int step = start_step + 1; step <= last; step++) {
        for (int b = 0; b < o.batch; b++) {
            int64_t off = (int64_t)(rng_next(&rng) % (uint64_t)(n_train - o.seq - 1));
            memcpy(batch + (size_t)b * (size_t)(o.seq + 1), train_ids + off, sizeof(int32_t) * (size_t)(o.seq + 1));
        }
        double loss = 0;
        msbnb_optim_step_info info;
        msbnb_optim_zero_grad(opt);
        if (msbnb_trainer_step(tr, batch, &loss) != MSBNB_OK || msbnb_optim_step(opt, &info) != MSBNB_OK) {
            fail("training step");
            goto done;
        }
        tokens_done += (int64_t)o.batch * o.seq;
        ema = isnan(ema) ? loss : 0.9 * ema + 0.1 * loss;
        double el = now_s() - t0, tps = (double)tokens_done / el;
        int evald = (o.eval_every > 0 && step % o.eval_every == 0) || step == o.steps;
        if (evald) {
            if (msbnb_trainer_eval_stream(tr, val_ids, n_val, o.val_windows, &val_loss, &vcount) != MSBNB_OK) {
                fail("validation");
                goto done;
            }
            curve_add(&val_c, step, val_loss);
            /* periodic checkpoint: a killed run loses at most eval_every steps */
            if (step < last && !save_checkpoint(m, opt, tr, &o, step, rng)) goto done;
        }
        curve_add(&train_c, step, loss);
        fprintf(metrics, "{\"step\": %d, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": %.6g, \"tokens_per_s\": %.1f",
                step, loss, (double)info.lr, info.grad_norm, tps);
        if (evald) fprintf(metrics, ", \"val_loss\": %.6f, \"val_ppl\": %.4f", val_loss, exp(val_loss));
        fputs("}\n", metrics);
        char eta[32];
        fmt_eta(el / (double)(step - start_step) * (double)(o.steps - step), eta, sizeof eta);
        if (tty) {
            printf("\r\033[Kstep %d/%d | loss %.4f (avg %.4f) | val %.4f | lr %.2e | %.0f tok/s | ETA %s", step,
                   o.steps, loss, ema, val_loss, (double)info.lr, tps, eta);
            if (evald) printf("\n");
            fflush(stdout);
        } else if (!o.quiet && (step % print_every == 0 || evald)) {
            printf("step %4d/%d  loss %.4f  avg %.4f  val %.4f  lr %.2e  %.0f tok/s  ETA %s\n", step, o.steps, loss,
                   ema, val_loss, (double)info.lr, tps, eta);
            fflush(stdout);
        }
    }
    printf("validation loss %.4f -> %.4f, perplexity %.2f -> %.2f\n", first_val, val_loss, exp(first_val),
           exp(val_loss));

    /* ---- save: adapter (PEFT), checkpoint, curve */
    if (!save_checkpoint(m, opt, tr, &o, last, rng)) goto done;
    snprintf(path, sizeof path, "%s/loss.svg", o.out);
    svg_series series[2] = {{train_c.x, train_c.y, train_c.n, "train loss", "#1f77b4"},
                            {val_c.x, val_c.y, val_c.n, "validation loss", "#d62728"}};
    if (svg_plot_write(path, "msbnb finetune: loss", "step", "cross-entropy (nats/token)", series, 2) != 0)
        fprintf(stderr, "msbnb: cannot write %s\n", path);
    printf("saved adapter to %s (adapter_config.json, adapter_model.safetensors), metrics.jsonl, loss.svg, "
           "checkpoint/\n",
           o.out);
    rc = 0;
done:
    if (metrics) fclose(metrics);
    free(train_c.x), free(train_c.y), free(val_c.x), free(val_c.y);
    free(batch);
    free(train_ids);
    free(val_ids);
    if (o.val) free(vtext); /* else vtext points into text */
    free(text);
    msbnb_optim_free(opt);
    msbnb_trainer_free(tr);
    msbnb_tokenizer_free(tok);
    msbnb_model_free(m);
    return rc;
}

/* ================================================================ merge */

int cmd_merge(int argc, char **argv) {
    const char *pos[3] = {0};
    int npos = 0, requant = 0;
    msbnb_model_params mp = msbnb_model_params_default();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: msbnb merge MODEL ADAPTER_DIR OUT_DIR [--requantize] [--quant nf4|... --double-quant]\n"
                   "  Writes OUT_DIR (config.json + model.safetensors): MODEL with the adapter folded in,\n"
                   "  fp32 projections, or re-quantized in the base's format with --requantize.\n");
            return 0;
        } else if (!strcmp(argv[i], "--requantize")) requant = 1;
        else if (!strcmp(argv[i], "--double-quant")) mp.double_quant = 1;
        else if (!strcmp(argv[i], "--quant") && i + 1 < argc) {
            if (msbnb_qtype_parse(argv[++i], &mp.quant) != MSBNB_OK) {
                fprintf(stderr, "bad --quant %s\n", argv[i]);
                return 2;
            }
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        } else if (npos < 3) pos[npos++] = argv[i];
    }
    if (npos != 3) {
        fprintf(stderr, "usage: msbnb merge MODEL ADAPTER_DIR OUT_DIR [--requantize]\n");
        return 2;
    }
    msbnb_model *m = NULL;
    if (msbnb_model_load(pos[0], &mp, &m) != MSBNB_OK) return fail(pos[0]);
    int rc = 0;
    if (msbnb_model_lora_load(m, pos[1], "default") != MSBNB_OK) rc = fail(pos[1]);
    else if (msbnb_model_save_merged(m, pos[2], requant) != MSBNB_OK) rc = fail(pos[2]);
    else printf("merged %s + %s -> %s (%s)\n", pos[0], pos[1], pos[2], requant ? "re-quantized" : "fp32");
    msbnb_model_free(m);
    return rc;
}
