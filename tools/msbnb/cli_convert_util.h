/* cli_convert_util.h — helpers shared by the checkpoint commands (cli_convert.c, cli_inspect.c):
 * which tensors are linear weights, the parts of a quantized weight, output
 * directories that vanish on failure, progress bar, error statistics. Public API only. */
#ifndef MSBNB_CLI_CONVERT_UTIL_H
#define MSBNB_CLI_CONVERT_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <msbnb/io.h>

#include "cli_atomic.h"
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

/* Module path of a weight: "model.layers.0.mlp.up_proj" for "...up_proj.weight". Malloc'ed. */
char *cli_module_of(const char *weight_name);
/* Pattern match on module paths: globs (*, ?) match the whole path; a plain word matches a
 * whole dotted component run ("q_proj" matches "model.layers.0.self_attn.q_proj", "layers.0"
 * matches "model.layers.0.mlp.up_proj"). */
bool cli_pattern_match(const char *module, const char *pattern);
/* A 2-D floating-point "*.weight" that is not an embedding or a norm. */
bool cli_is_linear_weight(const msbnb_tensor_info *t);

/* If `name` is an auxiliary entry of a quantized weight present in ck (".absmax", ".SCB",
 * ".quant_state...."), the weight's name (malloc'ed); else NULL. */
char *cli_aux_parent(const msbnb_checkpoint *ck, const char *name);
/* Bytes on disk of a logical tensor: itself plus all its auxiliary entries. */
uint64_t cli_logical_bytes(const msbnb_checkpoint *ck, const msbnb_tensor_info *t);
/* Float32 values of a logical tensor (dequantized when quantized): *out malloc'ed [*n];
 * *type its quantization (NONE when plain). */
msbnb_status cli_read_values(const msbnb_checkpoint *ck, const char *name, float **out, size_t *n, msbnb_qtype *type);

/* Output location: a file, or a model directory written whole into a temporary directory beside
 * it and swapped into place by cli_output_commit (cli_atomic.h), so the previous output stays
 * intact until the new one is complete. On failure, cli_output_abort removes everything this run
 * created; the previous output is untouched. */
typedef struct cli_output {
    char *dir;          /* the directory to write into (the temporary one); NULL for a file */
    char *model_path;   /* the .safetensors to write */
    char **created;     /* files written so far (file mode) */
    size_t n_created;
    cli_atomic atomic;  /* dir mode */
} cli_output;
/* IN is the input path: refuses an OUT that is IN or contains it. dir_mode: OUT is a model
 * directory. */
msbnb_status cli_output_begin(cli_output *o, const char *in, const char *out, bool dir_mode);
void cli_output_created(cli_output *o, const char *path);
/* Dir mode: swap the finished directory into place. No-op for a file (the writer renamed it). */
msbnb_status cli_output_commit(cli_output *o);
void cli_output_abort(cli_output *o);
void cli_output_free(cli_output *o);
/* Copy the side files of a model directory (tokenizer, generation config, ...): every regular
 * file except *.safetensors, the index and config.json. */
msbnb_status cli_copy_side_files(cli_output *o, const char *in_dir);

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
