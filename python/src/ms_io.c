/*
 * ms_io.c — flat entry points for msbnb.mindspore: the llama2.c tokenizer, PEFT LoRA adapter
 * files, and HF model directories (config.json's quantization_config, output directories
 * committed in one rename) (include/msbnb/model.h, io.h), called with ctypes
 * (python/msbnb/mindspore/io.py).
 *
 * Errors: functions return msbnb_status; the message of a failure is copied into a thread-local
 * buffer read by msbnb_ms_io_last_error() (Python reads it right after the failing call).
 * Buffers: borrowed for the call unless stated; handles returned through `out` belong to the
 * caller and are released with the matching *_free.
 */
#include <msbnb/io.h>
#include <msbnb/model.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSBNB_MS_API __attribute__((visibility("default")))

static _Thread_local char io_err[1024];

static int rec(msbnb_status st) {
    if (st != MSBNB_OK) snprintf(io_err, sizeof io_err, "%s", msbnb_last_error());
    return (int)st;
}

MSBNB_MS_API const char *msbnb_ms_io_last_error(void) { return io_err; }

/* ---------------------------------------------------------------- tokenizer */

MSBNB_MS_API int msbnb_ms_tokenizer_load(const char *path, int vocab_size, msbnb_tokenizer **out) {
    return rec(msbnb_tokenizer_load(path, vocab_size, out));
}

MSBNB_MS_API void msbnb_ms_tokenizer_free(msbnb_tokenizer *t) { msbnb_tokenizer_free(t); }

/* ids [cap] int32, *n_ids the count (cap >= len + 3 always suffices). */
MSBNB_MS_API int msbnb_ms_tokenizer_encode(const msbnb_tokenizer *t, const char *text, size_t len, int bos, int eos,
                                           int32_t *ids, int cap, int *n_ids) {
    return rec(msbnb_tokenizer_encode(t, text, len, bos, eos, ids, cap, n_ids));
}

/* The text of ids [n] (each piece decoded after its predecessor, the first after prev) into
 * out [cap] bytes; *len the byte count needed (the text is cut at cap, never NUL-terminated). */
MSBNB_MS_API int msbnb_ms_tokenizer_decode(const msbnb_tokenizer *t, int32_t prev, const int32_t *ids, int n,
                                           char *out, size_t cap, size_t *len) {
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        const char *piece;
        size_t plen;
        msbnb_status st = msbnb_tokenizer_decode(t, prev, ids[i], &piece, &plen);
        if (st != MSBNB_OK) return rec(st);
        if (used < cap) memcpy(out + used, piece, plen <= cap - used ? plen : cap - used);
        used += plen;
        prev = ids[i];
    }
    *len = used;
    return MSBNB_OK;
}

/* ---------------------------------------------------------------- PEFT adapters */

/* Write a PEFT adapter directory. modules [n] module paths, A[i] float32 [r, in_f[i]], B[i]
 * float32 [out_f[i], r]; targets [n_targets] for adapter_config.json. */
MSBNB_MS_API int msbnb_ms_peft_save(const char *dir, int r, double lora_alpha, double lora_dropout,
                                    const char *base_model, const char *const *targets, size_t n_targets,
                                    const char *const *modules, const int64_t *in_f, const int64_t *out_f,
                                    const float *const *A, const float *const *B, size_t n) {
    msbnb_peft_config cfg = msbnb_peft_config_default();
    cfg.r = r;
    cfg.lora_alpha = lora_alpha;
    cfg.lora_dropout = lora_dropout;
    cfg.base_model_name_or_path = base_model;
    cfg.target_modules = targets;
    cfg.n_target_modules = n_targets;
    msbnb_lora_pair *pairs = calloc(n ? n : 1, sizeof *pairs);
    if (!pairs) {
        snprintf(io_err, sizeof io_err, "msbnb_ms_peft_save: out of memory");
        return MSBNB_ERR_OUT_OF_MEMORY;
    }
    for (size_t i = 0; i < n; i++) {
        pairs[i].module = modules[i];
        pairs[i].r = r;
        pairs[i].in_features = in_f[i];
        pairs[i].out_features = out_f[i];
        pairs[i].A = A[i];
        pairs[i].B = B[i];
    }
    int st = rec(msbnb_peft_save(dir, &cfg, pairs, n));
    free(pairs);
    return st;
}

MSBNB_MS_API int msbnb_ms_peft_load(const char *dir, msbnb_peft_adapter **out) {
    return rec(msbnb_peft_load(dir, out));
}

MSBNB_MS_API void msbnb_ms_peft_free(msbnb_peft_adapter *a) { msbnb_peft_adapter_free(a); }

/* r, lora_alpha, lora_dropout and the number of adapted modules. */
MSBNB_MS_API size_t msbnb_ms_peft_info(const msbnb_peft_adapter *a, int *r, double *alpha, double *dropout) {
    const msbnb_peft_config *c = msbnb_peft_adapter_config(a);
    *r = c->r;
    *alpha = c->lora_alpha;
    *dropout = c->lora_dropout;
    return msbnb_peft_adapter_count(a);
}

/* Pair i: its module path and shapes; A / B pointers borrowed from the adapter. */
MSBNB_MS_API int msbnb_ms_peft_get(const msbnb_peft_adapter *a, size_t i, const char **module, int64_t *r,
                                   int64_t *in_f, int64_t *out_f, const float **A, const float **B) {
    msbnb_lora_pair p;
    int st = rec(msbnb_peft_adapter_get(a, i, &p));
    if (st) return st;
    *module = p.module;
    *r = p.r;
    *in_f = p.in_features;
    *out_f = p.out_features;
    *A = p.A;
    *B = p.B;
    return MSBNB_OK;
}

/* ---------------------------------------------------------------- HF model directories */

/* transformers' quantization_config for a model whose layers are quantized like q (its type, block
 * or group size, double quant, INT8 flags and threshold; msbnb_bnb_quantization_config_json, as
 * `msbnb quantize` writes it); skip [n_skip] the linear modules left unquantized. *out is
 * malloc'ed JSON, released with msbnb_ms_free. */
MSBNB_MS_API int msbnb_ms_quantization_config_json(const msbnb_qtensor *q, const char *const *skip, size_t n_skip,
                                                   char **out) {
    msbnb_qtensor_view v;
    int st = rec(msbnb_qtensor_get_view(q, &v));
    if (st) return st;
    msbnb_quant_config cfg = msbnb_quant_config_default(v.type);
    cfg.blocksize = v.blocksize;
    cfg.group_size = v.group_size;
    cfg.double_quant = v.double_quant;
    cfg.asymmetric = v.asymmetric;
    cfg.per_row = v.per_row;
    cfg.threshold = v.threshold;
    return rec(msbnb_bnb_quantization_config_json(&cfg, skip, n_skip, out));
}

MSBNB_MS_API void msbnb_ms_free(void *p) { free(p); }

/* dst_path = src_path's config.json with "quantization_config" set to qjson (NULL removes it);
 * written atomically (msbnb_config_write_with_quantization). */
MSBNB_MS_API int msbnb_ms_config_write_with_quantization(const char *src_path, const char *dst_path,
                                                         const char *qjson) {
    return rec(msbnb_config_write_with_quantization(src_path, dst_path, qjson));
}

/* An output directory that appears whole or not at all (msbnb_outdir, io.h): begin creates the
 * temporary directory beside `final` (msbnb_ms_dir_path), commit swaps it into place, free removes
 * it when not committed. The handle belongs to the caller (msbnb_ms_dir_free; NULL accepted). */
MSBNB_MS_API int msbnb_ms_dir_begin(const char *final, msbnb_outdir **out) { return rec(msbnb_outdir_begin(final, out)); }

MSBNB_MS_API const char *msbnb_ms_dir_path(const msbnb_outdir *d) { return msbnb_outdir_path(d); }

MSBNB_MS_API int msbnb_ms_dir_commit(msbnb_outdir *d) { return rec(msbnb_outdir_commit(d)); }

MSBNB_MS_API void msbnb_ms_dir_free(msbnb_outdir *d) { msbnb_outdir_free(d); }
