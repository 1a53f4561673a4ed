/*
 * io.h — files: safetensors (read + write), Hugging Face model directories, config.json,
 * bitsandbytes-compatible quantized checkpoints, PEFT LoRA adapters.
 *
 * Usage (open a model directory, read a weight as float32, look up a config value):
 *
 *     #include <msbnb/io.h>
 *
 *     msbnb_checkpoint *ck = NULL;
 *     if (msbnb_checkpoint_open("models/stories260K/hf", &ck) != MSBNB_OK) {
 *         fprintf(stderr, "msbnb: %s\n", msbnb_last_error());   // names file, tensor, byte offset
 *         return 1;
 *     }
 *     msbnb_tensor_info t;
 *     if (msbnb_checkpoint_find(ck, "model.layers.0.self_attn.q_proj.weight", &t) == MSBNB_OK) {
 *         float *w = malloc(t.numel * sizeof(float));
 *         msbnb_tensor_to_f32(&t, w);                           // F32/F16/BF16/I8/U8/I32/I64 -> f32
 *         ...
 *     }
 *     int64_t layers;
 *     msbnb_config_get_int(msbnb_checkpoint_config(ck), "num_hidden_layers", &layers);
 *     double theta;
 *     msbnb_config_get_double(msbnb_checkpoint_config(ck), "rope_parameters.rope_theta", &theta);
 *     msbnb_checkpoint_close(ck);
 *
 * Trust model: every file is untrusted input. Opening a safetensors file validates all of it
 * before returning (see msbnb_safetensors_open); nothing is read outside the mapped file, no size
 * computation can overflow, and every failure returns a status with a one-line message of the
 * form "<file>: tensor '<name>': <problem> (byte <offset>)" through msbnb_last_error() and, for
 * later calls on an open handle, through the handle's errmsg function (as sqlite3_errmsg).
 *
 * Thread safety: handles may be read from several threads at once (lookups and tensor data are
 * read-only after open); a writer handle belongs to one thread.
 */
#ifndef MSBNB_IO_H
#define MSBNB_IO_H

#include "msbnb.h"
#include "quant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Format version of the files msbnb writes, stored in every safetensors `__metadata__` as
 * "msbnb_format_version" (a decimal string). Bumped when our own layouts (INT4, asymmetric
 * INT8) change; the bitsandbytes layouts are bitsandbytes'. */
#define MSBNB_FORMAT_VERSION 1

/* Largest safetensors JSON header accepted (bytes), as the reference implementation. */
#define MSBNB_SAFETENSORS_MAX_HEADER 100000000u
/* Most dimensions a tensor may have. */
#define MSBNB_MAX_NDIM 8

/* ---------------------------------------------------------------- element types */

/* Every dtype the safetensors specification names. Sizes are in bits because F4/F6 pack several
 * elements per byte (a tensor's bit count must then be a multiple of 8). Append-only. */
typedef enum msbnb_st_dtype {
    MSBNB_ST_BOOL = 0,
    MSBNB_ST_U8,
    MSBNB_ST_I8,
    MSBNB_ST_I16,
    MSBNB_ST_U16,
    MSBNB_ST_F16,
    MSBNB_ST_BF16,
    MSBNB_ST_I32,
    MSBNB_ST_U32,
    MSBNB_ST_F32,
    MSBNB_ST_F64,
    MSBNB_ST_I64,
    MSBNB_ST_U64,
    MSBNB_ST_F8_E5M2,
    MSBNB_ST_F8_E4M3,
    MSBNB_ST_F8_E8M0,
    MSBNB_ST_F4,
    MSBNB_ST_F6_E2M3,
    MSBNB_ST_F6_E3M2,
    MSBNB_ST_C64,
    MSBNB_ST_DTYPE_COUNT
} msbnb_st_dtype;

/* "F32", "BF16", ... (the spelling in files); "?" for an unknown value. Static string. */
const char *msbnb_st_dtype_name(msbnb_st_dtype t);
/* Parse a spelling as above (exact, case-sensitive). MSBNB_ERR_FORMAT if unknown. */
msbnb_status msbnb_st_dtype_parse(const char *name, msbnb_st_dtype *out);
/* Bits per element (1 byte = 8); 0 for an unknown value. */
int msbnb_st_dtype_bits(msbnb_st_dtype t);

/* ---------------------------------------------------------------- tensors */

/* One tensor of an open file. Everything points into the file's memory map and lives as long as
 * the handle it came from (borrowed; never free). `data` is read-only and may be unaligned when
 * the writer did not pad its header to 8 bytes (ours and Hugging Face's do): use memcpy or
 * msbnb_tensor_to_f32 rather than casting it when in doubt. */
typedef struct msbnb_tensor_info {
    const char *name;           /* NUL-terminated UTF-8 key                                      */
    msbnb_st_dtype dtype;
    int ndim;                   /* 0..MSBNB_MAX_NDIM (0 = scalar, one element)                   */
    int64_t shape[MSBNB_MAX_NDIM];
    int64_t numel;              /* product of shape (1 for a scalar; may be 0)                   */
    const void *data;           /* nbytes bytes                                                  */
    size_t nbytes;
    uint64_t file_offset;       /* absolute byte offset of data in its file (for messages)      */
    const char *file;           /* path of the file holding it                                   */
} msbnb_tensor_info;

/* Convert t's elements to float32: out has t->numel floats (caller-allocated). Accepts F32, F16,
 * BF16, F64, I8, U8, BOOL, I16, U16, I32, U32, I64, U64 (integers converted exactly when they fit
 * a float's 24-bit mantissa, else rounded). MSBNB_ERR_UNSUPPORTED for F8/F6/F4/C64. */
msbnb_status msbnb_tensor_to_f32(const msbnb_tensor_info *t, float *out);

/* ---------------------------------------------------------------- safetensors: reading */

typedef struct msbnb_safetensors msbnb_safetensors;

/* Map and validate a .safetensors file. Checks, in this order, with the byte offset of the first
 * failure in the message: the file holds at least 8 bytes; the little-endian u64 header length N
 * is <= MSBNB_SAFETENSORS_MAX_HEADER and 8 + N <= file size; the header is valid UTF-8 JSON whose
 * top level is an object; each entry other than "__metadata__" is an object with a known "dtype"
 * string, a "shape" array of <= MSBNB_MAX_NDIM non-negative integers (each <= 2^40, product and
 * byte size computed with overflow checks), and "data_offsets" [begin, end] with begin <= end <=
 * data size and end - begin equal to the byte size; "__metadata__", if present, maps strings to
 * strings; keys are unique; the tensors' byte ranges, sorted, tile the data area exactly (no
 * overlap, no gap, nothing left over). Trailing whitespace (0x20) in the header is allowed.
 * *out receives a handle to close with msbnb_safetensors_close; on failure *out is NULL.
 * Errors: INVALID_ARG, IO (open/stat/mmap), FORMAT (any check above), OUT_OF_MEMORY. */
msbnb_status msbnb_safetensors_open(const char *path, msbnb_safetensors **out);
/* Same over a caller's buffer (borrowed: must outlive the handle); `name` is used in messages.
 * Used by the fuzz targets and for in-memory files. */
msbnb_status msbnb_safetensors_open_memory(const void *buf, size_t len, const char *name,
                                           msbnb_safetensors **out);
void msbnb_safetensors_close(msbnb_safetensors *f);

/* Number of tensors (metadata excluded). Tensors are indexed 0..count-1 in key order (bytewise
 * strcmp), whatever order the header used. */
size_t msbnb_safetensors_count(const msbnb_safetensors *f);
/* Fill *t with tensor i. MSBNB_ERR_INVALID_ARG if i >= count. */
msbnb_status msbnb_safetensors_get(const msbnb_safetensors *f, size_t i, msbnb_tensor_info *t);
/* Look a tensor up by name (binary search). MSBNB_ERR_NOT_FOUND if absent (message on handle). */
msbnb_status msbnb_safetensors_find(const msbnb_safetensors *f, const char *name, msbnb_tensor_info *t);
/* "__metadata__" entries: count, and the i-th key/value (borrowed strings, key order). */
size_t msbnb_safetensors_metadata_count(const msbnb_safetensors *f);
msbnb_status msbnb_safetensors_metadata_get(const msbnb_safetensors *f, size_t i, const char **key,
                                            const char **value);
/* Value of a metadata key, or NULL when absent. */
const char *msbnb_safetensors_metadata(const msbnb_safetensors *f, const char *key);
/* Path given to open. */
const char *msbnb_safetensors_path(const msbnb_safetensors *f);
/* Message of the last failed call on this handle ("" if none). Valid until the next call. */
const char *msbnb_safetensors_errmsg(const msbnb_safetensors *f);

/* ---------------------------------------------------------------- safetensors: writing */

typedef struct msbnb_st_writer msbnb_st_writer;

/* Start writing `path`. Nothing appears at `path` until msbnb_st_writer_finish succeeds: tensor
 * bytes go to a temporary file in the same directory (".<name>.msbnb-tmp-<pid>-XXXXXX", removed on
 * failure or msbnb_st_writer_free), so memory stays at one tensor whatever the model size, and
 * the final file is fsync'd and renamed into place atomically. The input files of a conversion
 * are never touched. Metadata always gets "format": "pt" and "msbnb_format_version".
 * Errors: INVALID_ARG, IO (directory not writable), OUT_OF_MEMORY. */
msbnb_status msbnb_st_writer_create(const char *path, msbnb_st_writer **out);
/* Add a "__metadata__" string entry (copied; a later value for the same key replaces it). */
msbnb_status msbnb_st_writer_set_metadata(msbnb_st_writer *w, const char *key, const char *value);
/* Add a tensor: data holds the exact byte size of (dtype, shape) and is copied to disk now (the
 * caller may free it on return). Keys are sorted at finish; a duplicate name, a name starting
 * with "__metadata__", more than MSBNB_MAX_NDIM dims or a negative dim is MSBNB_ERR_INVALID_ARG;
 * nbytes not matching the shape is MSBNB_ERR_SHAPE. */
msbnb_status msbnb_st_writer_add(msbnb_st_writer *w, const char *name, msbnb_st_dtype dtype, int ndim,
                                 const int64_t *shape, const void *data, size_t nbytes);
/* Convenience: float32 matrix/vector (ndim as shape says). */
msbnb_status msbnb_st_writer_add_f32(msbnb_st_writer *w, const char *name, int ndim, const int64_t *shape,
                                     const float *data);
/* Write the header (keys sorted, padded with spaces to a multiple of 8 bytes) and the data,
 * fsync, rename to the destination, fsync the directory. On any failure the destination is left
 * as it was before create. The handle must still be freed. */
msbnb_status msbnb_st_writer_finish(msbnb_st_writer *w);
/* Tensor data bytes added so far (header excluded); the difference around a call to
 * msbnb_bnb_write is the on-disk size of one quantized weight. */
uint64_t msbnb_st_writer_bytes(const msbnb_st_writer *w);
/* Release; removes temporary files if finish did not succeed. NULL accepted. */
void msbnb_st_writer_free(msbnb_st_writer *w);
const char *msbnb_st_writer_errmsg(const msbnb_st_writer *w);

/* ---------------------------------------------------------------- config.json */

/* A parsed JSON object (config.json, adapter_config.json, quantization_config), read-only. */
typedef struct msbnb_config msbnb_config;

/* Parse a JSON file whose top level is an object (UTF-8 validated, nesting depth <= 64, size
 * <= 16 MB). Errors: IO, FORMAT (message with the byte offset of the error), OUT_OF_MEMORY. */
msbnb_status msbnb_config_open(const char *path, msbnb_config **out);
/* Same from memory (len bytes, need not be NUL-terminated; `name` used in messages). */
msbnb_status msbnb_config_parse(const char *text, size_t len, const char *name, msbnb_config **out);
void msbnb_config_free(msbnb_config *c);

/* Getters: `key` is a dotted path into nested objects ("rope_parameters.rope_theta").
 * MSBNB_ERR_NOT_FOUND when absent or null; MSBNB_ERR_FORMAT when present with another type (an
 * integer getter rejects 1.5, a double getter accepts 1 and 1.5, a bool getter accepts only
 * true/false). get_string's result is borrowed from the config. On failure *out is unchanged, so
 * callers can preset a default:  int64_t n = 32; msbnb_config_get_int(c, "n", &n);  */
msbnb_status msbnb_config_get_int(const msbnb_config *c, const char *key, int64_t *out);
msbnb_status msbnb_config_get_double(const msbnb_config *c, const char *key, double *out);
msbnb_status msbnb_config_get_bool(const msbnb_config *c, const char *key, int *out);
msbnb_status msbnb_config_get_string(const msbnb_config *c, const char *key, const char **out);
/* Arrays: number of elements (MSBNB_ERR_FORMAT if not an array), and element i as a string / int. */
msbnb_status msbnb_config_array_len(const msbnb_config *c, const char *key, size_t *out);
msbnb_status msbnb_config_array_string(const msbnb_config *c, const char *key, size_t i, const char **out);
msbnb_status msbnb_config_array_int(const msbnb_config *c, const char *key, size_t i, int64_t *out);
/* 1 if key is present (null counts as present), else 0. */
int msbnb_config_has(const msbnb_config *c, const char *key);
/* The whole object re-serialized as compact JSON (owned by the config, valid until free). */
const char *msbnb_config_json(const msbnb_config *c);
const char *msbnb_config_errmsg(const msbnb_config *c);

/* ---------------------------------------------------------------- model directories */

/* A checkpoint: one .safetensors file, or a Hugging Face model directory holding config.json and
 * either model.safetensors or model.safetensors.index.json + its shards (model-0000k-of-0000n).
 * One handle looks tensors up across all shards. */
typedef struct msbnb_checkpoint msbnb_checkpoint;

/* Open and validate every file (each shard as msbnb_safetensors_open; the index's weight_map
 * must name every tensor of every shard exactly once and nothing else; shard names must be plain
 * file names inside the directory). config.json is optional for a single file, required for a
 * directory. Errors: as msbnb_safetensors_open, NOT_FOUND (no model file in the directory). */
msbnb_status msbnb_checkpoint_open(const char *path, msbnb_checkpoint **out);
void msbnb_checkpoint_close(msbnb_checkpoint *ck);
/* All tensors of all shards, sorted by name. */
size_t msbnb_checkpoint_count(const msbnb_checkpoint *ck);
msbnb_status msbnb_checkpoint_get(const msbnb_checkpoint *ck, size_t i, msbnb_tensor_info *t);
msbnb_status msbnb_checkpoint_find(const msbnb_checkpoint *ck, const char *name, msbnb_tensor_info *t);
/* Read a tensor as float32 into out (caller-allocated, n = numel floats). SHAPE if n differs. */
msbnb_status msbnb_checkpoint_read_f32(const msbnb_checkpoint *ck, const char *name, float *out, size_t n);
/* Drop a tensor's pages from the process's resident memory (madvise MADV_DONTNEED on the
 * mapping). The data stays valid and is read again from the file if touched; converters call
 * this after each tensor so that resident memory stays near one tensor, not the model. No-op
 * for unknown names. */
void msbnb_checkpoint_release(const msbnb_checkpoint *ck, const char *name);
/* config.json (borrowed) or NULL when there is none. */
const msbnb_config *msbnb_checkpoint_config(const msbnb_checkpoint *ck);
/* Number of safetensors files and the i-th one (borrowed). */
size_t msbnb_checkpoint_shard_count(const msbnb_checkpoint *ck);
const msbnb_safetensors *msbnb_checkpoint_shard(const msbnb_checkpoint *ck, size_t i);
/* 1 if opened from a directory. */
int msbnb_checkpoint_is_dir(const msbnb_checkpoint *ck);
const char *msbnb_checkpoint_errmsg(const msbnb_checkpoint *ck);

/* ---------------------------------------------------------------- bitsandbytes layouts */

/* How a weight `<name>` (ending in ".weight") is stored in a checkpoint:
 *
 *  NF4 / FP4 (bitsandbytes Linear4bit / Params4bit, QuantState.as_dict(packed=True)):
 *    <name>                                  U8  [ceil(rows*cols/2), 1]  packed codes
 *    <name>.absmax                           F32 [n_blocks]   (U8 [n_blocks] when double quant)
 *    <name>.quant_map                        F32 [16]
 *    <name>.nested_absmax                    F32 [ceil(n_blocks/256)]        (double quant only)
 *    <name>.nested_quant_map                 F32 [256]                       (double quant only)
 *    <name>.quant_state.bitsandbytes__nf4    U8  [len]  JSON, byte-identical to bitsandbytes':
 *      {"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [rows, cols],
 *       "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 2.563678741455078}
 *  INT8 symmetric per row (bitsandbytes Linear8bitLt, has_fp16_weights=False), with P = name
 *  minus its trailing "weight":
 *    <name> I8 [rows, cols];  <P>SCB F32 [rows];  <P>weight_format U8 [] = 0 ("row")
 *  msbnb's own layouts (not bitsandbytes formats; documented in docs/io.md), same file style:
 *    INT4 per group:  <name> U8 [rows, cols/2]; <name>.scales F32 [cols/group_size, rows]
 *      (U8 with double quant, plus .nested_absmax / .nested_quant_map as above);
 *      <name>.quant_state.msbnb__int4 U8 JSON {"quant_type": "int4", "group_size": 128, "dtype":
 *      "float32", "shape": [rows, cols], "format_version": 1, nested_* as above}.
 *    INT8 asymmetric or per tensor: <name> U8/I8 [rows, cols]; <name>.scales F32; <name>.zero_point
 *      I32 (asymmetric); <name>.quant_state.msbnb__int8 U8 JSON.
 */

/* Which parts a checkpoint has for `name`: MSBNB_QTYPE_NONE (a plain tensor), NF4, FP4, INT4 or
 * INT8. MSBNB_ERR_NOT_FOUND if `name` is absent. Does not validate the parts (read does). */
msbnb_status msbnb_bnb_detect(const msbnb_checkpoint *ck, const char *name, msbnb_qtype *out);
/* 1 if `name` is an auxiliary entry of a quantized weight (".absmax", ".SCB", ".quant_state..."),
 * i.e. something `inspect` folds under its weight and `dequantize` drops. */
int msbnb_bnb_is_aux_name(const char *name);

/* Read a quantized weight into a new msbnb_qtensor (caller frees): validates every part's dtype,
 * shape and JSON against the others. Errors: NOT_FOUND, FORMAT, SHAPE, OUT_OF_MEMORY. */
msbnb_status msbnb_bnb_read(const msbnb_checkpoint *ck, const char *name, msbnb_qtensor **out);
/* Add the entries of q under `name` (see the table above) to w. The bitsandbytes quant-state
 * JSON records "dtype" as `orig_dtype` (F32 -> "float32", F16 -> "float16", BF16 -> "bfloat16").
 * Errors: INVALID_ARG, UNSUPPORTED (a qtype with no file layout), IO. */
msbnb_status msbnb_bnb_write(msbnb_st_writer *w, const char *name, const msbnb_qtensor *q, msbnb_dtype orig_dtype);
/* The exact JSON bytes of the bitsandbytes quant state of q (NF4/FP4 only), without a NUL
 * terminator: *out is malloc'ed (caller frees with free()), *len its length. */
msbnb_status msbnb_bnb_quant_state_json(const msbnb_qtensor *q, msbnb_dtype orig_dtype, char **out, size_t *len);

/* Hugging Face transformers' BitsAndBytesConfig.to_dict() for the given settings, as compact JSON
 * (malloc'ed, caller frees). skip = modules not converted (llm_int8_skip_modules), may be NULL. */
msbnb_status msbnb_bnb_quantization_config_json(const msbnb_quant_config *cfg, const char *const *skip,
                                                size_t n_skip, char **out);
/* Copy config.json from src_path to dst_path (atomically, as the writer) with
 * "quantization_config" set to quantization_config_json (NULL removes it). */
msbnb_status msbnb_config_write_with_quantization(const char *src_path, const char *dst_path,
                                                  const char *quantization_config_json);
/* If `name` is an auxiliary entry of a quantized weight present in ck (".absmax", ".SCB",
 * ".quant_state....", ...), *parent = that weight's name (malloc'ed, caller frees) and 1 is
 * returned; else *parent = NULL and 0. */
int msbnb_bnb_aux_parent(const msbnb_checkpoint *ck, const char *name, char **parent);
/* Bytes on disk of the logical tensor `name`: itself plus, when quantized, all its auxiliary
 * entries (0 when name is absent). */
uint64_t msbnb_bnb_logical_bytes(const msbnb_checkpoint *ck, const char *name);

/* ---------------------------------------------------------------- output directories written whole */

/* An output directory that appears whole or not at all (what `msbnb quantize`, `dequantize`,
 * `merge` and `finetune` write, and msbnb_quantize_model):
 *
 *     msbnb_outdir *d = NULL;
 *     if (msbnb_outdir_begin("out/model-nf4", &d) != MSBNB_OK) ...   // msbnb_last_error()
 *     write files under msbnb_outdir_path(d) ...
 *     msbnb_status st = ok ? msbnb_outdir_commit(d) : MSBNB_OK;
 *     msbnb_outdir_free(d);          // removes the temporary directory unless committed
 *
 * begin creates a temporary directory beside the target, "<parent>/.msbnb-tmp-<name>.<pid>",
 * after removing stale ones of the same target whose process is gone (a killed run's). commit
 * fsyncs every file in it and the directory, and swaps it into place in one
 * renameat2(RENAME_EXCHANGE) (a plain rename when the target does not exist yet); the previous
 * output, now under the temporary name, is removed. Where the file system cannot exchange, the old
 * output is first renamed to "<temporary>.old", and a later begin puts it back if the target is
 * then missing. Until commit succeeds the previous output stays as it was. Errors (IO,
 * OUT_OF_MEMORY, INVALID_ARG for NULL) carry a one-line message starting with the path. */
typedef struct msbnb_outdir msbnb_outdir;
/* Refuses a final_path that exists and is not a directory, or whose parent does not exist. */
msbnb_status msbnb_outdir_begin(const char *final_path, msbnb_outdir **out);
/* The temporary directory to write into (owned by d); NULL once committed. */
const char *msbnb_outdir_path(const msbnb_outdir *d);
/* The target given to begin (owned by d). */
const char *msbnb_outdir_final(const msbnb_outdir *d);
/* fsync, swap into place, remove the previous output. After a failure d stays uncommitted (free
 * removes the temporary directory); committing twice is an INVALID_ARG. */
msbnb_status msbnb_outdir_commit(msbnb_outdir *d);
/* Removes the temporary directory when not committed; the target is untouched. NULL accepted. */
void msbnb_outdir_free(msbnb_outdir *d);

/* 1 when a and b name the same existing file or directory, or b lies inside directory a (b need
 * not exist yet: its parent is compared); 0 otherwise. For "output would overwrite the input". */
int msbnb_path_same_or_inside(const char *a, const char *b);
/* Copy the side files of a model directory (tokenizer files, generation_config.json, ...) into
 * out_dir: every regular file of in_dir except hidden ones, *.safetensors, the shard index and
 * config.json, each written to a temporary name and renamed. Errors: IO, OUT_OF_MEMORY. */
msbnb_status msbnb_model_dir_copy_side_files(const char *in_dir, const char *out_dir);

/* ---------------------------------------------------------------- PEFT LoRA adapters */

/* adapter_config.json as PEFT writes it (peft_type "LORA"). Strings are borrowed in a call to
 * msbnb_peft_save and owned by the adapter handle after msbnb_peft_load. */
typedef struct msbnb_peft_config {
    int r;                             /* rank                                                   */
    double lora_alpha;                 /* scaling = lora_alpha / r (or / sqrt(r) with rslora)    */
    double lora_dropout;
    int use_rslora;
    int fan_in_fan_out;                /* 0 for nn.Linear                                        */
    int inference_mode;
    const char *bias;                  /* "none" | "all" | "lora_only"                          */
    const char *task_type;             /* "CAUSAL_LM" or NULL                                    */
    const char *base_model_name_or_path; /* may be NULL                                          */
    const char *const *target_modules; /* e.g. {"q_proj", "v_proj"}                             */
    size_t n_target_modules;
} msbnb_peft_config;

/* PEFT's defaults: r 8, lora_alpha 8, dropout 0, bias "none", task_type "CAUSAL_LM", no targets. */
msbnb_peft_config msbnb_peft_config_default(void);

/* One adapted module: A [r, in_features], B [out_features, r], float32 row-major. `module` is the
 * module path inside the model ("model.layers.0.self_attn.q_proj"); files store it as
 * "base_model.model.<module>.lora_A.weight" / ".lora_B.weight". */
typedef struct msbnb_lora_pair {
    const char *module;
    int64_t r, in_features, out_features;
    const float *A;
    const float *B;
} msbnb_lora_pair;

/* Write dir/adapter_config.json and dir/adapter_model.safetensors (dir is created if missing;
 * each file written atomically). Every pair's r must equal cfg->r.
 * Errors: INVALID_ARG, SHAPE, IO, OUT_OF_MEMORY. */
msbnb_status msbnb_peft_save(const char *dir, const msbnb_peft_config *cfg, const msbnb_lora_pair *pairs,
                             size_t n_pairs);

typedef struct msbnb_peft_adapter msbnb_peft_adapter;
/* Read an adapter directory (or the two files' directory). Validates peft_type == "LORA", r > 0,
 * every lora_A has a lora_B with matching r and shapes [r, in] / [out, r], F32/F16/BF16 converted
 * to float32 (owned by the adapter). Each module's rank must be the config's r or its
 * rank_pattern entry; alpha_pattern gives per-module alphas (msbnb_peft_adapter_alpha);
 * use_rslora is honoured. Settings msbnb does not implement are refused with UNSUPPORTED:
 * use_dora, fan_in_fan_out true, bias other than "none", a rank/alpha pattern that is a regular
 * expression beyond module names, and any other key whose value is not off (null, false, 0, "",
 * {}, []) except metadata and initialisation settings. Linear in the file sizes. Keys are accepted with or without the "base_model.model."
 * prefix and with PEFT's optional adapter name (".lora_A.default.weight").
 * Errors: IO, FORMAT, SHAPE, NOT_FOUND, UNSUPPORTED, OUT_OF_MEMORY. */
msbnb_status msbnb_peft_load(const char *dir, msbnb_peft_adapter **out);
/* Parse adapter_config.json text alone (used by msbnb_peft_load and the fuzz target). */
msbnb_status msbnb_peft_config_parse(const char *text, size_t len, const char *name, msbnb_peft_adapter **out);
void msbnb_peft_adapter_free(msbnb_peft_adapter *a);
/* Borrowed from the adapter. */
const msbnb_peft_config *msbnb_peft_adapter_config(const msbnb_peft_adapter *a);
size_t msbnb_peft_adapter_count(const msbnb_peft_adapter *a);
/* Pair i, modules sorted by name; pointers borrowed from the adapter. */
msbnb_status msbnb_peft_adapter_get(const msbnb_peft_adapter *a, size_t i, msbnb_lora_pair *out);
/* lora_alpha of pair i: its alpha_pattern entry, else the config's lora_alpha (0 when i is out of
 * range). Its scaling is alpha / r, or alpha / sqrt(r) with use_rslora. */
double msbnb_peft_adapter_alpha(const msbnb_peft_adapter *a, size_t i);

#ifdef __cplusplus
}
#endif
#endif /* MSBNB_IO_H */
