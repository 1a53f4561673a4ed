/* fuzz_targets_train.c — fuzz target bodies (see fuzz_targets.h) for what `msbnb finetune
 * --resume` and adapter loading read: checkpoint/state.json (tools/msbnb/cli_train_state.c) and
 * whole PEFT adapter directories (adapter_config.json + adapter_model.safetensors). */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msbnb/model.h>
#include <msbnb/train.h>

#include "../../tools/msbnb/cli_train_state.h"

/* ---------------------------------------------------------------- state.json */

msbnb_status fuzz_one_train_state(const uint8_t *data, size_t size, char *err, size_t cap) {
    ft_state s, again;
    char e[400];
    if (!err) err = e, cap = sizeof e;
    err[0] = '\0';
    bool ok = ft_state_parse((const char *)data, size, NULL, &s, err, cap);
    /* the same text against a run's options: never accepted when the plain parse was not */
    const ft_state expect = {0, 0, 0, 0, 30, 2, 32, 2e-4};
    ft_state s2;
    char e2[400];
    if (ft_state_parse((const char *)data, size, &expect, &s2, e2, sizeof e2) && !ok) abort();
    if (!ok) {
        if (!err[0] || strchr(err, '\n')) abort(); /* a reason, on one line */
        return MSBNB_ERR_FORMAT;
    }
    /* invariants the resume loop relies on, and a round trip through the writer */
    if (s.step < 0 || s.step > s.steps || s.batch < 1 || s.seq < 2 || s.dropout_step != (uint64_t)s.step) abort();
    char text[400];
    if (!ft_state_format(&s, text, sizeof text)) abort();
    char e3[400];
    if (!ft_state_parse(text, strlen(text), NULL, &again, e3, sizeof e3)) abort();
    if (again.step != s.step || again.rng != s.rng || again.steps != s.steps || again.batch != s.batch ||
        again.seq != s.seq)
        abort();
    return MSBNB_OK;
}

/* ---------------------------------------------------------------- adapter directories */

/* A tiny model the adapters can attach to: dim 16, hidden 24, 2 layers, 4 heads (2 kv), vocab 32
 * (made per input: cheap, and no adapter accumulates). */
static msbnb_model *tiny_model(void) {
    msbnb_model *m = NULL;
    msbnb_model_config c;
    memset(&c, 0, sizeof c);
    c.dim = 16, c.hidden_dim = 24, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.vocab_size = 32;
    c.seq_len = 8, c.norm_eps = 1e-5f, c.rope_theta = 10000.0f, c.tied = 1;
    if (msbnb_model_create_random(&c, NULL, 1, &m) != MSBNB_OK) abort();
    return m;
}

static int write_file(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

msbnb_status fuzz_one_adapter_dir(const uint8_t *data, size_t size) {
    /* layout: u32 little-endian L, then L bytes of adapter_config.json, then the safetensors file */
    if (size < 4) return MSBNB_ERR_FORMAT;
    size_t L = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 | (size_t)data[3] << 24;
    if (L > size - 4) L = size - 4;
    char dir[FUZZ_PATH_MAX], cfg[FUZZ_PATH_MAX + 32], st_path[FUZZ_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/msbnb-fuzz-adapter-XXXXXX", fuzz_scratch_dir());
    if (!mkdtemp(dir)) abort();
    snprintf(cfg, sizeof cfg, "%s/adapter_config.json", dir);
    snprintf(st_path, sizeof st_path, "%s/adapter_model.safetensors", dir);
    if (!write_file(cfg, data + 4, L) || !write_file(st_path, data + 4 + L, size - 4 - L)) abort();
    msbnb_peft_adapter *a = NULL;
    msbnb_status st = msbnb_peft_load(dir, &a);
    if (st == MSBNB_OK) {
        const msbnb_peft_config *c = msbnb_peft_adapter_config(a);
        for (size_t i = 0; i < msbnb_peft_adapter_count(a); i++) {
            msbnb_lora_pair p;
            if (msbnb_peft_adapter_get(a, i, &p) != MSBNB_OK || !p.A || !p.B || p.r < 1) abort();
            if (c->r < 1) abort();
            (void)msbnb_peft_adapter_alpha(a, i);
        }
        msbnb_peft_adapter_free(a);
        /* onto a model: shapes are checked there; a load that succeeds is undone */
        msbnb_model *m = tiny_model();
        if (msbnb_model_lora_load(m, dir, "fz") == MSBNB_OK) {
            int32_t tok[2] = {1, 2};
            float logits[32];
            if (msbnb_model_forward(m, tok, 2, 0, logits, 0) != MSBNB_OK) abort();
        }
        msbnb_model_free(m);
    }
    unlink(cfg);
    unlink(st_path);
    rmdir(dir);
    return st;
}
