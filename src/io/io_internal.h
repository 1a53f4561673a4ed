/*
 * io_internal.h — helpers shared by the files under src/io/ (never installed).
 *
 *  - per-handle error messages (sqlite's errmsg): io_fail() records the message both on the
 *    handle and as the thread's msbnb_last_error();
 *  - untrusted JSON: UTF-8 validation, a nesting-depth limit checked before cJSON recurses,
 *    parsing with the byte offset of a syntax error;
 *  - atomic file creation: a temporary file in the destination's directory, fsync, rename,
 *    fsync of the directory.
 */
#ifndef MSBNB_IO_INTERNAL_H
#define MSBNB_IO_INTERNAL_H

#include <msbnb/io.h>

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"

#define IO_ERRMSG_CAP 512

/* Format the message into errbuf (IO_ERRMSG_CAP bytes; may be NULL) and into msbnb_last_error()
 * as "<func>: <message>"; returns st. */
msbnb_status msbnb__io_fail(char *errbuf, msbnb_status st, const char *func, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Messages start with the public entry point, not the static helper that failed: each file
 * defines IO_API (e.g. "msbnb_safetensors_open") before including this header. */
#ifdef IO_API
#undef MSBNB_FAIL
#define MSBNB_FAIL(st, ...) msbnb__fail((st), IO_API, __VA_ARGS__)
#define IO_FAIL(errbuf, st, ...) msbnb__io_fail((errbuf), (st), IO_API, __VA_ARGS__)
#else
#define IO_FAIL(errbuf, st, ...) msbnb__io_fail((errbuf), (st), __func__, __VA_ARGS__)
#endif

/* ---------------------------------------------------------------- JSON */

/* True when buf[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF) without
 * NUL bytes; otherwise *bad_offset is the offset of the first offending byte. */
bool msbnb__utf8_valid(const char *buf, size_t len, size_t *bad_offset);

/* Parse untrusted JSON text[0..len) (need not be NUL-terminated): validates UTF-8, refuses
 * nesting deeper than max_depth (counted outside strings, before cJSON recurses), requires only
 * whitespace after the value (`trailing_spaces_only`: only 0x20, as safetensors pads headers).
 * On failure returns FORMAT with *err_offset = offset in text of the problem and a short reason
 * in *reason (static string). The caller deletes *out with cJSON_Delete. */
msbnb_status msbnb__json_parse(const char *text, size_t len, int max_depth, bool trailing_spaces_only,
                               cJSON **out, size_t *err_offset, const char **reason);

/* cJSON_Print with Python's json.dump(indent=2) look (two spaces, "key": value) and a final
 * newline; malloc'ed, NULL on allocation failure. */
char *msbnb__json_print_pretty(const cJSON *item);
/* A JSON number item for a value that came from a float32: the shortest decimal that reads back
 * to the same float32 when there is one (0.05f -> 0.05, not 0.05000000074505806), Python style. */
cJSON *msbnb__json_float_number(double v, bool integral_as_int);

/* Integer value of a JSON number that is integral and within [lo, hi]; false otherwise. */
bool msbnb__json_int(const cJSON *item, int64_t lo, int64_t hi, int64_t *out);

/* ---------------------------------------------------------------- files */

/* Create a temporary file "<dir of dest>/.<base of dest>.msbnb-tmp-<pid>-XXXXXX" for writing,
 * after removing those of the same dest whose process is gone (a killed writer's).
 * *tmp_path is malloc'ed (caller frees). Returns IO with a message on failure. */
msbnb_status msbnb__tmp_create(const char *dest, int *fd, char **tmp_path, char *errbuf);
/* Write all of buf (retrying short writes and EINTR). */
msbnb_status msbnb__write_all(int fd, const void *buf, size_t n, const char *path, char *errbuf);
/* fsync fd, close it, rename tmp_path onto dest, fsync dest's directory. On failure tmp_path is
 * unlinked and dest untouched. fd is closed in every case. */
msbnb_status msbnb__tmp_commit(int fd, const char *tmp_path, const char *dest, char *errbuf);
/* Write a whole small file atomically (tmp + fsync + rename). */
msbnb_status msbnb__write_file_atomic(const char *dest, const void *buf, size_t n, char *errbuf);
/* Read a whole file of at most max_bytes into a malloc'ed buffer (NUL-terminated for text). */
msbnb_status msbnb__read_file(const char *path, size_t max_bytes, char **out, size_t *len, char *errbuf);
/* Remove a directory tree (regular files, symlinks, subdirectories; never follows links); a file
 * alone is unlinked. Best effort, silent (outdir.c). */
void msbnb__rmtree(const char *path);
/* malloc'ed "a/b" (a without trailing '/'). NULL on allocation failure. */
char *msbnb__path_join(const char *dir, const char *name);
/* malloc'ed copy (NULL in -> NULL out). */
char *msbnb__strdup(const char *s);

/* ---------------------------------------------------------------- checkpoints, bnb */

/* A checkpoint over one already-open file (ownership of f passes to the checkpoint, also on
 * failure). The fuzz target uses it to run the bitsandbytes reader on in-memory files. */
msbnb_status msbnb__checkpoint_wrap(msbnb_safetensors *f, msbnb_checkpoint **out);
/* Look a tensor up without recording an error (probing for optional entries). */
bool msbnb__checkpoint_lookup(const msbnb_checkpoint *ck, const char *name, msbnb_tensor_info *t);
/* madvise(MADV_DONTNEED) over the whole pages inside [data, data+n) when f is memory-mapped. */
void msbnb__safetensors_release(const msbnb_safetensors *f, const void *data, size_t n);
/* "<name><suffix>" / "<module of name><key>" (Linear8bitLt's SCB beside "weight"), malloc'ed. */
char *msbnb__bnb_key(const char *name, const char *suffix);
char *msbnb__bnb_module_key(const char *weight_name, const char *key);
/* Python's repr() of a double, as json.dumps writes floats. */
void msbnb__python_float_repr(double v, char *out, size_t cap);

#endif /* MSBNB_IO_INTERNAL_H */
