/* cli_train_state.c — checkpoint/state.json of `msbnb finetune` (see cli_train_state.h). */
#include "cli_train_state.h"

#include <stdio.h>
#include <string.h>

#include <msbnb/io.h>

#include "cli_opts.h"

static bool get_int(const msbnb_config *c, const char *key, int64_t lo, int64_t hi, int64_t *out, char *err,
                    size_t cap) {
    if (msbnb_config_get_int(c, key, out) == MSBNB_OK && *out >= lo && *out <= hi) return true;
    snprintf(err, cap, "\"%s\" missing or not an integer in %lld..%lld", key, (long long)lo, (long long)hi);
    return false;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool ft_state_parse(const char *text, size_t len, const ft_state *expect, ft_state *out, char *err, size_t cap) {
    msbnb_config *c = NULL;
    if (msbnb_config_parse(text, len, "state.json", &c) != MSBNB_OK) {
        snprintf(err, cap, "%s", msbnb_last_error());
        return false;
    }
    int64_t step = 0, dst = 0, steps = 0, batch = 0, seq = 0;
    ft_state s = {0};
    const char *hex = NULL;
    double lr = 0, seedd = -1;
    bool ok = get_int(c, "steps", 1, CLI_MAX_STEPS, &steps, err, cap) &&
              get_int(c, "step", 0, steps, &step, err, cap) &&
              get_int(c, "dropout_step", 0, CLI_MAX_STEPS, &dst, err, cap) &&
              get_int(c, "batch", 1, CLI_MAX_BATCH, &batch, err, cap) &&
              get_int(c, "seq", 2, CLI_MAX_SEQ, &seq, err, cap);
    if (ok && dst != step) {
        snprintf(err, cap, "\"dropout_step\" %lld differs from \"step\" %lld", (long long)dst, (long long)step);
        ok = false;
    }
    if (ok && (msbnb_config_get_string(c, "rng", &hex) != MSBNB_OK || !hex || strlen(hex) != 16)) {
        snprintf(err, cap, "\"rng\" missing or not 16 hex digits");
        ok = false;
    }
    for (int i = 0; ok && i < 16; i++) {
        int d = hex_digit(hex[i]);
        if (d < 0) {
            snprintf(err, cap, "\"rng\" missing or not 16 hex digits");
            ok = false;
        } else {
            s.rng = (s.rng << 4) | (uint64_t)d;
        }
    }
    /* "seed": the writer prints the uint64 in decimal; the JSON reader keeps numbers as doubles
     * (exact below 2^53), so seeds are compared as doubles. */
    if (ok && (msbnb_config_get_double(c, "seed", &seedd) != MSBNB_OK || !(seedd >= 0))) {
        snprintf(err, cap, "\"seed\" missing or negative");
        ok = false;
    }
    if (ok && (msbnb_config_get_double(c, "lr", &lr) != MSBNB_OK || !(lr > 0 && lr <= 1e30))) {
        snprintf(err, cap, "\"lr\" missing or not a positive number");
        ok = false;
    }
    if (ok) {
        s.step = (int)step, s.dropout_step = (uint64_t)dst, s.steps = (int)steps, s.batch = (int)batch;
        s.seq = (int)seq, s.lr = lr;
        s.seed = seedd < 18446744073709551616.0 ? (uint64_t)seedd : UINT64_MAX;
    }
    if (ok && expect) {
        const char *what = expect->steps != s.steps ? "steps"
                           : expect->batch != s.batch ? "batch"
                           : expect->seq != s.seq     ? "seq"
                           : (double)expect->seed != (double)s.seed ? "seed"
                                                                    : NULL;
        if (what) {
            snprintf(err, cap, "the checkpoint was made with another --%s (resume with the run's options)", what);
            ok = false;
        }
    }
    msbnb_config_free(c);
    if (ok) *out = s;
    return ok;
}

bool ft_state_format(const ft_state *s, char *buf, size_t cap) {
    int n = snprintf(buf, cap,
                     "{\"step\": %d, \"rng\": \"%016llx\", \"dropout_step\": %llu, \"seed\": %llu, \"steps\": %d, "
                     "\"batch\": %d, \"seq\": %d, \"lr\": %.9g}\n",
                     s->step, (unsigned long long)s->rng, (unsigned long long)s->dropout_step,
                     (unsigned long long)s->seed, s->steps, s->batch, s->seq, s->lr);
    return n > 0 && (size_t)n < cap;
}
