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
#include "cli_convert_util.h"
#include "cli_train_out.h"
#include "cli_train_state.h"
#include "cli_opts.h"

/* ================================================================ small helpers */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The tokenizer: --tokenizer, else tokenizer.json / tokenizer.model / tokenizer.bin / tok512.bin in
 * the model's directory, the llama2.c names also in its parent (the layout of
 * ../shared/models/stories260K, whose hf/ sits beside tok512.bin): msbnb_tokenizer_find. */
static int find_tokenizer(const char *model, const char *given, char *out, size_t cap) {
    if (given) {
        snprintf(out, cap, "%s", given);
        struct stat st;
        return stat(out, &st) == 0;
    }
    return msbnb_tokenizer_find(model, out, cap) == MSBNB_OK;
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
          "  --compute auto|fp32|bf16 (4-bit base products; auto = bf16 where the CPU has native bf16\n"
          "  dot products, AVX512-BF16 or AMX, else fp32; bf16 elsewhere: the same numbers at fp32\n"
          "  speed; LoRA weights and optimizer state stay fp32)\n"
          "  --resume DIR (continue a run saved in DIR, with the same options)  --stop-at N (stop after\n"
          "  step N as if interrupted)  --tokenizer PATH  --threads N  --quiet\n"
          "Writes ADAPTER_DIR/adapter_config.json, adapter_model.safetensors, metrics.jsonl, loss.svg,\n"
          "checkpoint/ (the adapter again, optimizer.bin, state.json): the whole directory is saved as one\n"
          "unit at every evaluation and at the end (a previous output stays until the first save), so an\n"
          "interrupted run resumed with --resume ends bit-identical to an uninterrupted one. A non-finite\n"
          "loss or gradient stops the run (exit 1), keeping the last save.\n",
          f);
}

/* Returns -1 to run, else the exit code (0 after --help, 2 after a usage error). */
static int parse_finetune(int argc, char **argv, ft_opts *o) {
    *o = (ft_opts){0};
    o->quant = MSBNB_QTYPE_NF4;
    o->r = 8, o->alpha = 16, o->dropout = 0.05f, o->lr = 2e-4f, o->val_frac = 0.05f;
    o->steps = 200, o->batch = 4, o->seq = 64, o->warmup = 10, o->eval_every = 50, o->val_windows = 64;
    o->targets = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj";
    o->optim = MSBNB_OPTIM_ADAMW;
    const char *pos[2] = {0}, *quant = NULL;
    static const char *const optims[] = {"adamw", "adamw8bit", NULL};
    static const char *const computes[] = {"auto", "fp32", "bf16", NULL}; /* msbnb_compute order */
    int optim = 0, compute = 0;
    bool dq = false, recompute = false, quiet = false;
    cli_args a;
    cli_args_begin(&a, "finetune", argc, argv);
    while (cli_args_next(&a)) {
        if (cli_is_help(&a)) {
            finetune_usage(stdout);
            return EXIT_OK;
        }
        (void)(cli_flag(&a, "--double-quant", &dq) || cli_flag(&a, "--recompute", &recompute) ||
            cli_flag(&a, "--quiet", &quiet) || cli_str(&a, "--out", &o->out) || cli_str(&a, "--val", &o->val) ||
            cli_str(&a, "--resume", &o->resume) || cli_str(&a, "--tokenizer", &o->tokenizer) ||
            cli_str(&a, "--targets", &o->targets) || cli_str(&a, "--quant", &quant) ||
            cli_choice(&a, "--optim", optims, &optim) || cli_choice(&a, "--compute", computes, &compute) ||
            cli_int(&a, "--r", 1, 4096, &o->r) ||
            cli_float(&a, "--alpha", 0, 1e6, &o->alpha) || cli_float(&a, "--dropout", 0, 1, &o->dropout) ||
            cli_float(&a, "--lr", 0, 1e30, &o->lr) || cli_int(&a, "--steps", 1, CLI_MAX_STEPS, &o->steps) ||
            cli_int(&a, "--batch", 1, CLI_MAX_BATCH, &o->batch) || cli_int(&a, "--seq", 2, CLI_MAX_SEQ, &o->seq) ||
            cli_int(&a, "--warmup", 0, CLI_MAX_STEPS, &o->warmup) ||
            cli_int(&a, "--eval-every", 0, CLI_MAX_STEPS, &o->eval_every) ||
            cli_int(&a, "--val-windows", 0, INT32_MAX, &o->val_windows) ||
            cli_float(&a, "--val-frac", 0, 1, &o->val_frac) ||
            cli_int(&a, "--threads", 1, CLI_MAX_THREADS, &o->threads) ||
            cli_int(&a, "--stop-at", 0, CLI_MAX_STEPS, &o->stop_at) || cli_u64(&a, "--seed", &o->seed) ||
            cli_positional(&a, pos, 2));
    }
    if (a.failed) return EXIT_USAGE;
    o->double_quant = dq, o->recompute = recompute, o->quiet = quiet;
    o->optim = optim ? MSBNB_OPTIM_ADAMW8BIT : MSBNB_OPTIM_ADAMW;
    o->compute = (msbnb_compute)compute;
    if (quant) {
        if (!strcmp(quant, "f32") || !strcmp(quant, "none")) o->quant = MSBNB_QTYPE_NONE;
        else if (msbnb_qtype_parse(quant, &o->quant) != MSBNB_OK || o->quant == MSBNB_QTYPE_BLOCKWISE8)
            return cli_args_error(&a, "--quant must be nf4, fp4, int4, int8 or f32, not '%s'", quant);
    }
    o->model = pos[0], o->text = pos[1];
    if (!o->model || !o->text || !o->out) return cli_args_error(&a, "MODEL, TEXTFILE and --out are required");
    if (!(o->dropout < 1)) return cli_args_error(&a, "--dropout must be in [0, 1)");
    if (!(o->val_frac < 1)) return cli_args_error(&a, "--val-frac must be in [0, 1)");
    if (!(o->lr > 0)) return cli_args_error(&a, "--lr must be > 0");
    return -1;
}

/* Reads DIR/checkpoint/state.json (cli_train_state.h), cross-checked against this run's options. */
static int load_state(const char *dir, const ft_opts *o, ft_state *out) {
    char path[8400];
    snprintf(path, sizeof path, "%s/checkpoint/state.json", dir);
    size_t len = 0;
    char *text = cli_read_file(path, 0, &len), err[400];
    ft_state expect = {0, 0, 0, o->seed, o->steps, o->batch, o->seq, o->lr};
    int ok = text && ft_state_parse(text, len, &expect, out, err, sizeof err);
    if (!text) fprintf(stderr, "msbnb finetune: %s: cannot read (no checkpoint to resume)\n", path);
    else if (!ok) fprintf(stderr, "msbnb finetune: %s: %s\n", path, err);
    free(text);
    return ok;
}

/* Save ADAPTER_DIR whole at `step` (cli_train_out.h): the adapter, the checkpoint (adapter,
 * optimizer, state.json with the data RNG and the trainer's dropout counter), metrics.jsonl,
 * loss.svg. Returns 1 on success. */
static int save_output(ft_out *out, msbnb_model *m, msbnb_optim *opt, msbnb_trainer *tr, const ft_opts *o, int step,
                       uint64_t rng) {
    ft_state s = {step, rng, msbnb_trainer_step_count(tr), o->seed, o->steps, o->batch, o->seq, o->lr};
    char err[600];
    if (ft_out_commit(out, m, opt, o->model, &s, err, sizeof err)) return 1;
    fprintf(stderr, "msbnb finetune: %s: %s\n", o->out, err);
    return 0;
}

/* A JSON number, or null for a non-finite value (JSON has no NaN). */
static void json_num(FILE *f, const char *key, const char *fmt, double v) {
    fprintf(f, ", \"%s\": ", key);
    if (isfinite(v)) fprintf(f, fmt, v);
    else fputs("null", f);
}

static void fmt_eta(double s, char *buf, size_t cap) {
    int t = (int)(s + 0.5);
    snprintf(buf, cap, "%d:%02d", t / 60, t % 60);
}

int cmd_finetune(int argc, char **argv) {
    ft_opts o;
    int prc = parse_finetune(argc, argv, &o);
    if (prc >= 0) return prc;
    if (o.threads > 0) msbnb_set_num_threads(o.threads);
    int rc = 1;
    msbnb_model *m = NULL;
    msbnb_tokenizer *tok = NULL;
    msbnb_trainer *tr = NULL;
    msbnb_optim *opt = NULL;
    char *text = NULL, *vtext = NULL;
    int32_t *train_ids = NULL, *val_ids = NULL, *batch = NULL;
    ft_out out = {0};
    char err[600];
    char path[4200], tokpath[4096];

    /* ---- model and tokenizer */
    msbnb_model_params mp = msbnb_model_params_default();
    mp.quant = o.quant;
    mp.double_quant = o.double_quant;
    /* the tokenizer is found before the (possibly large) model is loaded */
    if (!find_tokenizer(o.model, o.tokenizer, tokpath, sizeof tokpath)) {
        fprintf(stderr, "msbnb: no tokenizer found for %s (use --tokenizer)\n", o.model);
        return 1;
    }
    /* ADAPTER_DIR is replaced whole: it must not hold an input */
    const char *inputs[] = {o.model, o.text, o.val, tokpath};
    for (size_t k = 0; k < sizeof inputs / sizeof inputs[0]; k++)
        if (inputs[k] && msbnb_path_same_or_inside(o.out, inputs[k])) {
            fprintf(stderr, "msbnb finetune: %s: output would overwrite the input %s\n", o.out, inputs[k]);
            return 1;
        }
    /* resuming in place is fine (everything is read before the first save); any other overlap is not */
    if (o.resume && msbnb_path_same_or_inside(o.out, o.resume) != msbnb_path_same_or_inside(o.resume, o.out)) {
        fprintf(stderr, "msbnb finetune: %s: output would overwrite the checkpoint %s\n", o.out, o.resume);
        return 1;
    }
    if (msbnb_model_load(o.model, &mp, &m) != MSBNB_OK) return fail(o.model);
    if (msbnb_tokenizer_load(tokpath, msbnb_model_vocab_size(m), &tok) != MSBNB_OK) {
        fail(tokpath);
        goto done;
    }
    /* ---- data: training text, validation held out */
    size_t tlen = 0, vlen = 0;
    if (!(text = cli_read_file(o.text, 0, &tlen))) {
        fprintf(stderr, "msbnb: cannot read %s\n", o.text);
        goto done;
    }
    size_t split = tlen;
    if (o.val) {
        if (!(vtext = cli_read_file(o.val, 0, &vlen))) {
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
        /* the checkpoint unit: state first (cheap to refuse), then its own copy of the adapter */
        ft_state rs;
        if (!load_state(o.resume, &o, &rs)) goto done;
        start_step = rs.step, rng = rs.rng, dropout_step = rs.dropout_step;
        snprintf(path, sizeof path, "%s/checkpoint", o.resume);
        if (msbnb_model_lora_load(m, path, "default") != MSBNB_OK) {
            fail(path);
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
    /* the trainer's buffers are reserved, not yet touched: refuse before the first step rather
     * than be killed by the kernel in the middle of one */
    if (msbnb_trainer_check_memory(tr) != MSBNB_OK) {
        fprintf(stderr, "msbnb finetune: %s\n", msbnb_last_error()); /* --batch, --seq, --recompute */
        goto done;
    }
    int64_t base = 0, trainable = 0;
    msbnb_trainer_count_params(tr, &base, &trainable);
    printf("model: %lld base parameters (%s%s), LoRA r=%d: %lld trainable (%.3f%%); activations %.1f MB; "
           "compute %s%s (level %s)\n",
           (long long)base, o.quant == MSBNB_QTYPE_NONE ? "f32" : msbnb_qtype_name(o.quant),
           o.double_quant ? "+dq" : "", o.r, (long long)trainable, 100.0 * (double)trainable / (double)base,
           (double)msbnb_trainer_memory_bytes(tr) / 1e6, msbnb_compute_name(msbnb_trainer_compute(tr)),
           msbnb_trainer_compute(tr) == MSBNB_COMPUTE_BF16 && !msbnb_bf16_native() ? ", numerics on fp32 hardware" : "",
           msbnb_isa_name(msbnb_isa_current()));

    /* ---- outputs: ADAPTER_DIR checked now, written whole at every save (cli_train_out.h) */
    if (!ft_out_begin(&out, o.out, o.resume, start_step, err, sizeof err)) {
        fprintf(stderr, "msbnb finetune: %s\n", err);
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
    if (!isfinite(val_loss)) {
        fprintf(stderr, "msbnb finetune: validation loss is %g before training (%s)\n", val_loss,
                o.resume ? "the checkpoint's adapter holds non-finite values" : "the model is broken");
        goto done;
    }
    printf("step %4d: val loss %.4f (ppl %.2f) over %lld tokens\n", start_step, val_loss, exp(val_loss),
           (long long)vcount);
    if (start_step == 0) { /* a resumed run's history already holds it */
        ft_curve_add(&out.val, start_step, val_loss);
        fprintf(out.metrics, "{\"step\": %d", start_step);
        json_num(out.metrics, "val_loss", "%.6f", val_loss);
        json_num(out.metrics, "val_ppl", "%.4f", exp(val_loss));
        fputs("}\n", out.metrics);
    }
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
        /* divergence guard: stop before a non-finite value reaches a checkpoint or metrics.jsonl;
         * the last checkpoint written stays as it was */
        if (!isfinite(loss) || !isfinite(info.grad_norm)) {
            fprintf(stderr, "msbnb finetune: training diverged at step %d (loss %g, gradient norm %g); lower --lr; "
                            "the last checkpoint is kept\n", step, loss, info.grad_norm);
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
            if (!isfinite(val_loss)) {
                fprintf(stderr, "msbnb finetune: training diverged at step %d (validation loss %g); lower --lr; the "
                                "last checkpoint is kept\n", step, val_loss);
                goto done;
            }
            ft_curve_add(&out.val, step, val_loss);
        }
        ft_curve_add(&out.train, step, loss);
        fprintf(out.metrics, "{\"step\": %d", step);
        json_num(out.metrics, "loss", "%.6f", loss);
        json_num(out.metrics, "lr", "%.6g", (double)info.lr);
        json_num(out.metrics, "grad_norm", "%.6g", info.grad_norm);
        json_num(out.metrics, "tokens_per_s", "%.1f", tps);
        if (evald) {
            json_num(out.metrics, "val_loss", "%.6f", val_loss);
            json_num(out.metrics, "val_ppl", "%.4f", exp(val_loss));
        }
        fputs("}\n", out.metrics);
        if (evald) {
            /* the periodic save, history included (a killed run loses at most eval_every steps) */
            if (step < last && !save_output(&out, m, opt, tr, &o, step, rng)) goto done;
        }
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

    /* ---- save: adapter (PEFT), checkpoint, history, curve */
    if (!save_output(&out, m, opt, tr, &o, last, rng)) goto done;
    printf("saved adapter to %s (adapter_config.json, adapter_model.safetensors), metrics.jsonl, loss.svg, "
           "checkpoint/\n",
           o.out);
    rc = 0;
done:
    ft_out_free(&out); /* after a failure: the staging directory goes, ADAPTER_DIR keeps the last save */
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

static int merge_io_error(const char *err) {
    fprintf(stderr, "msbnb merge: %s\n", err);
    return EXIT_FAIL;
}

int cmd_merge(int argc, char **argv) {
    const char *pos[3] = {0}, *quant = NULL;
    bool requant = false, dq = false;
    int dtype_choice = -1;
    static const char *const dtypes[] = {"f32", "f16", "bf16", NULL}; /* msbnb_dtype order */
    msbnb_model_params mp = msbnb_model_params_default();
    cli_args a;
    cli_args_begin(&a, "merge", argc, argv);
    while (cli_args_next(&a)) {
        if (cli_is_help(&a)) {
            printf("usage: msbnb merge MODEL ADAPTER_DIR OUT_DIR [--requantize] [--dtype f32|f16|bf16]\n"
                   "                   [--quant nf4|... --double-quant]\n"
                   "  Writes OUT_DIR: MODEL with the adapter folded in (config.json, model.safetensors and\n"
                   "  MODEL's tokenizer / generation files). Plain tensors keep MODEL's dtype (a bf16 base\n"
                   "  gives bf16) unless --dtype says otherwise; --requantize re-quantizes each projection\n"
                   "  in the base's format.\n");
            return EXIT_OK;
        }
        (void)(cli_flag(&a, "--requantize", &requant) || cli_flag(&a, "--double-quant", &dq) ||
            cli_str(&a, "--quant", &quant) || cli_choice(&a, "--dtype", dtypes, &dtype_choice) ||
            cli_positional(&a, pos, 3));
    }
    if (a.failed) return EXIT_USAGE;
    mp.double_quant = dq;
    if (quant && msbnb_qtype_parse(quant, &mp.quant) != MSBNB_OK)
        return cli_args_error(&a, "--quant must be nf4, fp4, int4 or int8, not '%s'", quant);
    if (!pos[2]) return cli_args_error(&a, "needs MODEL, ADAPTER_DIR and OUT_DIR");
    for (int k = 0; k < 2; k++)
        if (msbnb_path_same_or_inside(pos[2], pos[k])) {
            fprintf(stderr, "msbnb merge: %s: output would overwrite the input %s\n", pos[2], pos[k]);
            return EXIT_FAIL;
        }
    msbnb_model *m = NULL;
    if (msbnb_model_load(pos[0], &mp, &m) != MSBNB_OK) return fail(pos[0]);
    int rc = 0;
    msbnb_outdir *out = NULL;
    if (msbnb_model_lora_load(m, pos[1], "default") != MSBNB_OK) rc = fail(pos[1]);
    else if (msbnb_outdir_begin(pos[2], &out) != MSBNB_OK) rc = merge_io_error(msbnb_last_error());
    else if (msbnb_model_save_merged_ex(m, msbnb_outdir_path(out), requant, dtype_choice) != MSBNB_OK) rc = fail(pos[2]);
    else {
        struct stat sb;
        /* tokenizer.json, tokenizer_config.json, generation_config.json, ...: a complete model */
        if (stat(pos[0], &sb) == 0 && S_ISDIR(sb.st_mode) &&
            msbnb_model_dir_copy_side_files(pos[0], msbnb_outdir_path(out)) != MSBNB_OK)
            rc = fail(pos[2]);
        if (rc == 0 && msbnb_outdir_commit(out) != MSBNB_OK) rc = merge_io_error(msbnb_last_error());
    }
    if (rc == 0) {
        msbnb_model_config c;
        msbnb_model_get_config(m, &c);
        printf("merged %s + %s -> %s (%s model, %s)\n", pos[0], pos[1], pos[2], msbnb_family_name(c.family),
               requant ? "re-quantized" : "plain");
    }
    msbnb_outdir_free(out); /* removes the temporary directory after a failure */
    msbnb_model_free(m);
    return rc;
}
