/* cli_convert_util.h — helpers shared by the commands (cli_convert.c, cli_inspect.c, cli_train.c,
 * cli_chat.c): error lines, option lists, a tensor's values, whole files, progress bar, error
 * statistics, sizes. Public API only (the conversions themselves: msbnb/convert.h). */
#ifndef MSBNB_CLI_CONVERT_UTIL_H
#define MSBNB_CLI_CONVERT_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <msbnb/io.h>

#include "cli_opts.h" /* exit codes, usage errors */

/* "msbnb CMD: <msbnb_last_error()>" on stderr; returns EXIT_FAIL. */
int cli_fail(const char *cmd);
/* Out of memory in the tool itself: sets the message cli_fail prints; returns OUT_OF_MEMORY. */
msbnb_status cli_oom(void);
/* A failure while processing tensor t: msbnb_last_error() alone when it already names a
 * tensor and a byte offset, else prefixed with t's file, name and offset. Returns EXIT_FAIL. */
int cli_tensor_error(const char *cmd, const msbnb_tensor_info *t);
/* Split "a,b,c" into a NULL-terminated malloc'ed array of malloc'ed strings (*n entries). */
char **cli_split_list(const char *s, size_t *n);
void cli_free_list(char **list);

/* Float32 values of a logical tensor (dequantized when quantized): *out malloc'ed [*n];
 * *type its quantization (NONE when plain). */
msbnb_status cli_read_values(const msbnb_checkpoint *ck, const char *name, float **out, size_t *n, msbnb_qtype *type);

/* A whole file, malloc'ed and NUL-terminated (*len bytes before the NUL); NULL when unreadable or
 * longer than max bytes (0: no limit). */
char *cli_read_file(const char *path, size_t max, size_t *len);

/* Progress bar on stderr: tensors done, MB/s, ETA; only when stderr is a terminal. */
typedef struct cli_progress {
    bool on;
    size_t total;
    uint64_t bytes_total, bytes_done;
    double t0;
} cli_progress;
void cli_progress_begin(cli_progress *p, size_t total, uint64_t bytes_total, bool quiet);
void cli_progress_step(cli_progress *p, size_t done, uint64_t bytes);
void cli_progress_end(cli_progress *p);

/* Error of approx against ref, streaming-friendly: accumulate, then finish. */
typedef struct cli_err_acc {
    double sum_sq_ref, sum_sq_err, max_abs;
    size_t n;
} cli_err_acc;
void cli_err_add(cli_err_acc *a, const float *ref, const float *approx, size_t n);
/* relative error % (100 ||e|| / ||x||) and SNR dB (inf when exact). */
void cli_err_finish(const cli_err_acc *a, double *rel_pct, double *snr_db, double *mse);

/* "[64, 172]" into buf. */
const char *cli_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap);
/* "1.23 MB" into buf. */
const char *cli_bytes_str(uint64_t b, char *buf, size_t cap);

#endif
