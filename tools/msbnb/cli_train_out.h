/* cli_train_out.h — the output directory of `msbnb finetune` (ADAPTER_DIR), committed whole.
 *
 *   ADAPTER_DIR/adapter_config.json, adapter_model.safetensors   the PEFT adapter users load
 *               metrics.jsonl, loss.svg                          the history up to the saved step
 *               checkpoint/adapter_config.json, adapter_model.safetensors, optimizer.bin, state.json
 *                                                                what --resume reads
 *
 * At every evaluation and at the end, the whole directory is written into a temporary directory
 * beside it and swapped into place in one rename (msbnb_outdir, io.h), so ADAPTER_DIR is at every
 * moment one run's complete output at one step: the top-level adapter is the checkpoint's,
 * metrics.jsonl ends at the checkpoint's step. A fresh run into an existing ADAPTER_DIR leaves
 * the previous output intact until its first save; a run that fails (or diverges) leaves the last
 * save as it was. Between saves, metrics.jsonl's lines are kept in memory. */
#ifndef MSBNB_CLI_TRAIN_OUT_H
#define MSBNB_CLI_TRAIN_OUT_H

#include <stdbool.h>
#include <stdio.h>

#include <msbnb/train.h>

#include <msbnb/io.h>
#include "cli_train_state.h"

/* A loss curve for loss.svg: n points (x[i], y[i]), grown by ft_curve_add. */
typedef struct ft_curve {
    double *x, *y;
    size_t n, cap;
} ft_curve;
void ft_curve_add(ft_curve *c, double x, double y);

typedef struct ft_out {
    char *final;         /* ADAPTER_DIR */
    msbnb_outdir *dir;   /* where the next save is staged (msbnb_outdir_path); NULL between saves */
    FILE *metrics;   /* metrics.jsonl's whole text so far: open_memstream over text [len] */
    char *text;
    size_t len;
    ft_curve train, val; /* training loss per step, validation loss per evaluation */
} ft_out;

/* Check that out can be written (its parent exists, it is not a file), remove stale temporaries of
 * it, and start the metrics history: empty, or — resuming from resume_dir at step `step` — that
 * run's metrics.jsonl lines of steps <= step (later ones are redone), with the curves rebuilt from
 * them. False with a one-line reason in err. */
bool ft_out_begin(ft_out *u, const char *out, const char *resume_dir, int step, char *err, size_t cap);
/* Save everything at state s (s->step steps done): the adapter of m, the checkpoint (m's adapter
 * again, opt's state, s), metrics.jsonl and loss.svg, staged and swapped into place. base_model is
 * recorded in adapter_config.json. False with a one-line reason in err; ADAPTER_DIR then keeps
 * its previous content. */
bool ft_out_commit(ft_out *u, msbnb_model *m, const msbnb_optim *opt, const char *base_model, const ft_state *s,
                   char *err, size_t cap);
/* Remove the staging directory (if any) and free everything. NULL-safe on a zeroed ft_out. */
void ft_out_free(ft_out *u);

#endif
