/*
 * convert_internal.h — what msbnb_quantize_model (quantize_model.c, quantize_calib.c) and
 * msbnb_dequantize_model (convert.c) share (never installed): the output location, which tensors
 * are linear layers, module patterns, tensor-context error messages.
 */
#ifndef MSBNB_IO_CONVERT_INTERNAL_H
#define MSBNB_IO_CONVERT_INTERNAL_H

#include <msbnb/convert.h>

#include <stdbool.h>

#include "io/io_internal.h"

/* A failure whose message names its own context (a file, a tensor, a parameter): no function
 * prefix, so the tool prints it after "msbnb CMD: " as it always did. */
#define CONVERT_FAIL(st, ...) msbnb__fail((st), NULL, __VA_ARGS__)

/* Output location: a .safetensors file, or a model directory written into a temporary directory
 * beside it and swapped into place on commit (msbnb_outdir). On failure, abort removes everything
 * this run created; the previous output is untouched. */
typedef struct convert_out {
    msbnb_outdir *dir;  /* dir mode; msbnb_outdir_path(dir) is where to write */
    char *model_path;   /* the .safetensors to write */
    char **created;     /* files written so far (file mode) [n_created] */
    size_t n_created;
} convert_out;
/* Refuses (IO) an OUT that is IN or contains it. dir_mode: OUT is a model directory. */
msbnb_status msbnb__convert_out_begin(convert_out *o, const char *in, const char *out, bool dir_mode);
void msbnb__convert_out_created(convert_out *o, const char *path);
/* Dir mode: config.json from IN with quantization_config set to qjson (NULL removes it), IN's side
 * files, then the swap into place. File mode: nothing more (the writer renamed its file). */
msbnb_status msbnb__convert_out_finish(convert_out *o, const char *in, bool dir_mode, const char *qjson);
void msbnb__convert_out_abort(convert_out *o);
void msbnb__convert_out_free(convert_out *o);

/* IN is a file and OUT an existing directory: INVALID_ARG with the message the tool prints. */
msbnb_status msbnb__convert_check_file_pair(const char *in, const char *out);

/* Module path of a weight: "model.layers.0.mlp.up_proj" for "...up_proj.weight". Malloc'ed. */
char *msbnb__module_of(const char *weight_name);
/* Globs (*, ?, [) match the whole module path; a plain word matches a whole run of dotted
 * components ("q_proj" matches "model.layers.0.self_attn.q_proj"). */
bool msbnb__pattern_match(const char *module, const char *pattern);
/* A 2-D floating-point "*.weight" that is not an embedding or a norm. */
bool msbnb__is_linear_weight(const msbnb_tensor_info *t);

/* A step on tensor t failed with st: msbnb_last_error() alone when it already names a tensor and
 * a byte offset, else prefixed with t's file, name and offset. Returns st. */
msbnb_status msbnb__convert_tensor_fail(msbnb_status st, const msbnb_tensor_info *t);

/* Call p's progress function (when set) with a TENSOR event. */
void msbnb__convert_progress(msbnb_convert_progress_fn fn, void *ctx, size_t done, size_t total, uint64_t bytes,
                             uint64_t bytes_total);

#endif
