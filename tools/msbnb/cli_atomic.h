/* cli_atomic.h — output directories that appear whole or not at all (quantize, dequantize, merge,
 * finetune's output directory, cli_train_out.h).
 *
 * A run writes everything into a temporary directory beside the target,
 *     <parent>/.msbnb-tmp-<name>.<pid>
 * then cli_atomic_commit fsyncs every file in it and the directory, and swaps it into place in one
 * renameat2(RENAME_EXCHANGE) (or a plain rename when the target does not exist yet); the previous
 * output, now under the temporary name, is then removed. A killed run leaves at most a
 * temporary directory under that recognisable prefix; the next cli_atomic_begin for the same
 * target removes those whose process is gone. Where the file system cannot exchange, the old
 * output is first renamed to <temporary>.old, and a later run puts it back if the target is then
 * missing. */
#ifndef MSBNB_CLI_ATOMIC_H
#define MSBNB_CLI_ATOMIC_H

#include <stdbool.h>

#include <msbnb/msbnb.h>

typedef struct cli_atomic {
    char *final; /* the target directory */
    char *tmp;   /* where this run writes; NULL before begin and after commit/abort */
} cli_atomic;

/* Clean stale temporaries of `final` and create this run's. Refuses when `final` exists and is
 * not a directory. On failure returns MSBNB_ERR_IO with msbnb-style message in *err (cap bytes). */
msbnb_status cli_atomic_begin(cli_atomic *a, const char *final, char *err, size_t cap);
/* fsync the temporary tree, swap it into place, remove the previous output. */
msbnb_status cli_atomic_commit(cli_atomic *a, char *err, size_t cap);
/* Remove the temporary tree (after a failure); the target is untouched. Safe after commit. */
void cli_atomic_abort(cli_atomic *a);
void cli_atomic_free(cli_atomic *a);

/* Remove a directory tree (regular files, symlinks, subdirectories; never follows links). */
void cli_rmtree(const char *dir);
/* A whole file, malloc'ed and NUL-terminated (*len bytes before the NUL); NULL when unreadable or
 * longer than max bytes (0: no limit). */
char *cli_read_file(const char *path, size_t max, size_t *len);
/* a and b name the same existing file or directory, or b lies inside directory a. */
bool cli_same_or_inside(const char *a, const char *b);

#endif
