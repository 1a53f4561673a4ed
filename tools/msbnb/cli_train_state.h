/* cli_train_state.h — checkpoint/state.json of `msbnb finetune`: what --resume needs besides the
 * adapter and the optimizer state (all three live in ADAPTER_DIR/checkpoint/ and are committed as
 * one unit, see msbnb_outdir in io.h).
 *
 *   {"step": 20, "rng": "0123456789abcdef", "dropout_step": 20, "seed": 0, "steps": 30,
 *    "batch": 2, "seq": 32, "lr": 0.0002}
 *
 * step: steps completed; rng: the data sampler's state, exactly 16 lowercase or uppercase hex
 * digits; dropout_step: the trainer's step counter (equals step); seed, steps, batch, seq: the run's
 * options, which a resumed run must repeat; lr: informative. Parsing is linear in the text. */
#ifndef MSBNB_CLI_TRAIN_STATE_H
#define MSBNB_CLI_TRAIN_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ft_state {
    int step;
    uint64_t rng, dropout_step, seed;
    int steps, batch, seq;
    double lr;
} ft_state;

/* Validate text [len] (any bytes) as a state.json: every field present, of its type and in range
 * (0 <= step <= steps <= CLI_MAX_STEPS, 1 <= batch <= CLI_MAX_BATCH, 2 <= seq <= CLI_MAX_SEQ,
 * dropout_step == step). With `expect`, its seed, steps, batch and seq must match too. On failure
 * returns false with a one-line reason in err. */
bool ft_state_parse(const char *text, size_t len, const ft_state *expect, ft_state *out, char *err, size_t cap);
/* The JSON text of s into buf (one line + newline); false when cap is too small. */
bool ft_state_format(const ft_state *s, char *buf, size_t cap);

#endif
