/*
 * safetensors_read.c — memory-mapped, fully validated safetensors reader.
 *
 * File layout (https://github.com/huggingface/safetensors, "Format"):
 *
 *   bytes [0, 8)        N, little-endian u64: size of the JSON header
 *   bytes [8, 8+N)      UTF-8 JSON object: { "<name>": {"dtype": "F32", "shape": [..],
 *                       "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"} },
 *                       possibly padded with trailing spaces
 *   bytes [8+N, EOF)    data area; offsets are relative to its start; the tensors' byte ranges
 *                       tile it exactly (no gap, no overlap, nothing after the last tensor)
 *
 * Every field is untrusted: sizes are computed with overflow checks before any use, and each
 * error names the file, the tensor and a byte offset in the file.
 *
 * Complexity: O(N + n log n) for a header of N bytes and n tensors / metadata keys (UTF-8 and depth
 * scans, cJSON, one pass per entry; the name and offset sorts are skipped when already in order);
 * a byte offset for a message is searched once, only when an entry is rejected. Lookups by name
 * are O(log n). Measured: `msbnb_bench parsers` (1M tensors, 200k metadata keys), docs/io.md.
 */
#define _DEFAULT_SOURCE /* madvise */
#define _POSIX_C_SOURCE 200809L
#define IO_API "msbnb_safetensors_open"
#include "io/io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ================================================================ dtypes */

static const struct {
    const char *name;
    int bits;
} dtype_table[MSBNB_ST_DTYPE_COUNT] = {
    [MSBNB_ST_BOOL] = {"BOOL", 8},       [MSBNB_ST_U8] = {"U8", 8},
    [MSBNB_ST_I8] = {"I8", 8},           [MSBNB_ST_I16] = {"I16", 16},
    [MSBNB_ST_U16] = {"U16", 16},        [MSBNB_ST_F16] = {"F16", 16},
    [MSBNB_ST_BF16] = {"BF16", 16},      [MSBNB_ST_I32] = {"I32", 32},
    [MSBNB_ST_U32] = {"U32", 32},        [MSBNB_ST_F32] = {"F32", 32},
    [MSBNB_ST_F64] = {"F64", 64},        [MSBNB_ST_I64] = {"I64", 64},
    [MSBNB_ST_U64] = {"U64", 64},        [MSBNB_ST_F8_E5M2] = {"F8_E5M2", 8},
    [MSBNB_ST_F8_E4M3] = {"F8_E4M3", 8}, [MSBNB_ST_F8_E8M0] = {"F8_E8M0", 8},
    [MSBNB_ST_F4] = {"F4", 4},           [MSBNB_ST_F6_E2M3] = {"F6_E2M3", 6},
    [MSBNB_ST_F6_E3M2] = {"F6_E3M2", 6}, [MSBNB_ST_C64] = {"C64", 64},
};

const char *msbnb_st_dtype_name(msbnb_st_dtype t) {
    return (unsigned)t < MSBNB_ST_DTYPE_COUNT ? dtype_table[t].name : "?";
}

int msbnb_st_dtype_bits(msbnb_st_dtype t) { return (unsigned)t < MSBNB_ST_DTYPE_COUNT ? dtype_table[t].bits : 0; }

msbnb_status msbnb_st_dtype_parse(const char *name, msbnb_st_dtype *out) {
    RETURN_IF(!name || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    for (int i = 0; i < MSBNB_ST_DTYPE_COUNT; i++)
        if (!strcmp(name, dtype_table[i].name)) {
            *out = (msbnb_st_dtype)i;
            return MSBNB_OK;
        }
    return MSBNB_FAIL(MSBNB_ERR_FORMAT, "unknown safetensors dtype '%.40s'", name);
}

/* ================================================================ the handle */

typedef struct st_entry {
    char *name;
    msbnb_st_dtype dtype;
    int ndim;
    int64_t shape[MSBNB_MAX_NDIM];
    int64_t numel;
    uint64_t begin, end; /* relative to the data area */
} st_entry;

struct msbnb_safetensors {
    char *path;
    const uint8_t *buf; /* whole file (mapped or borrowed), len bytes */
    size_t len;
    void *map; /* non-NULL when we own an mmap of len bytes */
    uint64_t header_len;
    const uint8_t *data; /* buf + 8 + header_len */
    uint64_t data_len;
    st_entry *t; /* [n], sorted by name */
    size_t n;
    char **meta_key, **meta_val; /* [n_meta], sorted by key */
    size_t n_meta;
    char err[IO_ERRMSG_CAP];
};

void msbnb_safetensors_close(msbnb_safetensors *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_key[i]);
        free(f->meta_val[i]);
    }
    free(f->meta_key);
    free(f->meta_val);
    if (f->map) munmap(f->map, f->len);
    free(f->path);
    free(f);
}

/* ================================================================ header validation */

/* Byte offset in the file where a key's text begins (a hint for messages; the header start when
 * the key is escaped and cannot be found verbatim). */
static uint64_t key_offset(const msbnb_safetensors *f, const char *key) {
    size_t klen = strlen(key);
    const char *h = (const char *)f->buf + 8;
    size_t hl = (size_t)f->header_len;
    for (size_t i = 0; klen + 2 <= hl && i <= hl - klen - 2; i++)
        if (h[i] == '"' && !memcmp(h + i + 1, key, klen) && h[i + 1 + klen] == '"') return 8 + i;
    return 8;
}

#define BAD(f, st, ...) IO_FAIL((f)->err, (st), __VA_ARGS__)

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

/* Parse one tensor entry `it` (key `name`) into e. O(size of the entry): the key's byte offset,
 * a scan of the whole header, is looked up only for the message of a rejected entry (once per
 * open; per entry it made opening n tensors O(n^2)). */
static msbnb_status parse_entry(msbnb_safetensors *f, const cJSON *it, st_entry *e) {
    const char *name = it->string;
#define at key_offset(f, name)
    if (!cJSON_IsObject(it))
        return BAD(f, MSBNB_ERR_FORMAT, "%s: tensor '%.80s': entry is not an object (byte %llu)", f->path, name,
                   (unsigned long long)at);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off))
        return BAD(f, MSBNB_ERR_FORMAT,
                   "%s: tensor '%.80s': needs string \"dtype\", array \"shape\" and array \"data_offsets\" (byte %llu)",
                   f->path, name, (unsigned long long)at);
    int d = -1;
    for (int i = 0; i < MSBNB_ST_DTYPE_COUNT; i++)
        if (d < 0 && !strcmp(dt->valuestring, dtype_table[i].name)) d = i;
    if (d < 0)
        return BAD(f, MSBNB_ERR_FORMAT, "%s: tensor '%.80s': unknown dtype '%.20s' (byte %llu)", f->path, name,
                   dt->valuestring, (unsigned long long)at);
    e->dtype = (msbnb_st_dtype)d;

    int ndim = cJSON_GetArraySize(sh);
    if (ndim > MSBNB_MAX_NDIM)
        return BAD(f, MSBNB_ERR_FORMAT, "%s: tensor '%.80s': %d dimensions, at most %d supported (byte %llu)",
                   f->path, name, ndim, MSBNB_MAX_NDIM, (unsigned long long)at);
    e->ndim = ndim;
    uint64_t numel = 1;
    int k = 0;
    for (const cJSON *x = sh->child; x; x = x->next, k++) {
        int64_t v;
        if (!msbnb__json_int(x, 0, MSBNB_MAX_DIM, &v))
            return BAD(f, MSBNB_ERR_FORMAT,
                       "%s: tensor '%.80s': shape[%d] is not an integer in [0, 2^40] (byte %llu)", f->path, name, k,
                       (unsigned long long)at);
        e->shape[k] = v;
        /* numel stays <= 2^56, so the bit count below (<= 64 bits each) cannot overflow u64 */
        if (v != 0 && numel > ((uint64_t)1 << 56) / (uint64_t)v)
            return BAD(f, MSBNB_ERR_FORMAT, "%s: tensor '%.80s': shape product overflows (byte %llu)", f->path, name,
                       (unsigned long long)at);
        numel *= (uint64_t)v;
    }
    e->numel = (int64_t)numel;
    /* numel <= 2^56 and bits <= 64: the bit count fits in u64 without overflow. */
    uint64_t bits = numel * (uint64_t)dtype_table[d].bits;
    if (bits % 8)
        return BAD(f, MSBNB_ERR_FORMAT, "%s: tensor '%.80s': %llu elements of %s do not fill whole bytes (byte %llu)",
                   f->path, name, (unsigned long long)numel, dtype_table[d].name, (unsigned long long)at);
    uint64_t nbytes = bits / 8;

    int64_t b, en;
    if (cJSON_GetArraySize(off) != 2 || !msbnb__json_int(off->child, 0, INT64_C(1) << 53, &b) ||
        !msbnb__json_int(off->child->next, 0, INT64_C(1) << 53, &en))
        return BAD(f, MSBNB_ERR_FORMAT, "%s: tensor '%.80s': data_offsets must be two non-negative integers (byte %llu)",
                   f->path, name, (unsigned long long)at);
    if (b > en || (uint64_t)en > f->data_len)
        return BAD(f, MSBNB_ERR_FORMAT,
                   "%s: tensor '%.80s': data_offsets [%lld, %lld] outside the %llu-byte data area (byte %llu)", f->path,
                   name, (long long)b, (long long)en, (unsigned long long)f->data_len, (unsigned long long)at);
    if ((uint64_t)(en - b) != nbytes)
        return BAD(f, MSBNB_ERR_FORMAT,
                   "%s: tensor '%.80s': data_offsets span %lld bytes but dtype %s x shape needs %llu (byte %llu)",
                   f->path, name, (long long)(en - b), dtype_table[d].name, (unsigned long long)nbytes,
                   (unsigned long long)(8 + f->header_len + (uint64_t)b));
    e->begin = (uint64_t)b;
    e->end = (uint64_t)en;
    return MSBNB_OK;
#undef at
}

typedef struct meta_pair {
    char *key, *val;
} meta_pair;

static int cmp_meta_pair(const void *a, const void *b) {
    return strcmp(((const meta_pair *)a)->key, ((const meta_pair *)b)->key);
}

/* The __metadata__ string map, kept sorted by key for lookups: O(n log n) in its key count. */
static msbnb_status parse_metadata(msbnb_safetensors *f, const cJSON *meta) {
    if (!cJSON_IsObject(meta))
        return BAD(f, MSBNB_ERR_FORMAT, "%s: __metadata__ is not an object (byte %llu)", f->path,
                   (unsigned long long)key_offset(f, "__metadata__"));
    size_t n = 0;
    for (const cJSON *x = meta->child; x; x = x->next) {
        if (!cJSON_IsString(x))
            return BAD(f, MSBNB_ERR_FORMAT, "%s: __metadata__ value of '%.80s' is not a string (byte %llu)", f->path,
                       x->string, (unsigned long long)key_offset(f, x->string));
        n++;
    }
    meta_pair *p = calloc(n ? n : 1, sizeof(meta_pair));
    f->meta_key = calloc(n ? n : 1, sizeof(char *));
    f->meta_val = calloc(n ? n : 1, sizeof(char *));
    if (!p || !f->meta_key || !f->meta_val) {
        free(p);
        return BAD(f, MSBNB_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
    }
    size_t k = 0;
    for (const cJSON *x = meta->child; x; x = x->next, k++) {
        p[k].key = msbnb__strdup(x->string);
        p[k].val = msbnb__strdup(x->valuestring);
        if (!p[k].key || !p[k].val) {
            for (size_t j = 0; j <= k; j++) free(p[j].key), free(p[j].val);
            free(p);
            return BAD(f, MSBNB_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
        }
    }
    qsort(p, n, sizeof(meta_pair), cmp_meta_pair);
    for (size_t i = 0; i < n; i++) f->meta_key[i] = p[i].key, f->meta_val[i] = p[i].val;
    f->n_meta = n; /* owned by f from here on */
    free(p);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(f->meta_key[i - 1], f->meta_key[i]))
            return BAD(f, MSBNB_ERR_FORMAT, "%s: __metadata__ key '%.80s' appears twice (byte %llu)", f->path,
                       f->meta_key[i], (unsigned long long)key_offset(f, "__metadata__"));
    return MSBNB_OK;
}

/* The tensors' byte ranges, sorted by (begin, end), must tile [0, data_len) exactly. */
typedef struct byte_range {
    uint64_t begin, end;
    size_t idx;
} byte_range;

static int cmp_range(const void *pa, const void *pb) {
    const byte_range *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return 0;
}

/* One walk over the ranges in (begin, end) order: r [n] indices into f->t, or NULL when f->t is
 * already in that order (the usual case: writers lay tensors out in name order). */
static msbnb_status walk_tiling(msbnb_safetensors *f, const byte_range *r) {
    uint64_t pos = 0;
    for (size_t i = 0; i < f->n; i++) {
        const st_entry *e = &f->t[r ? r[i].idx : i];
        if (e->begin < pos)
            return BAD(f, MSBNB_ERR_FORMAT, "%s: tensor '%.80s': data_offsets [%llu, %llu] overlap another tensor (byte %llu)",
                       f->path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                       (unsigned long long)(8 + f->header_len + e->begin));
        if (e->begin > pos)
            return BAD(f, MSBNB_ERR_FORMAT, "%s: tensor '%.80s': gap of %llu unused bytes before its data (byte %llu)",
                       f->path, e->name, (unsigned long long)(e->begin - pos),
                       (unsigned long long)(8 + f->header_len + pos));
        pos = e->end;
    }
    if (pos != f->data_len)
        return BAD(f, MSBNB_ERR_FORMAT, "%s: %llu bytes after the last tensor are not covered by any tensor (byte %llu)",
                   f->path, (unsigned long long)(f->data_len - pos), (unsigned long long)(8 + f->header_len + pos));
    return MSBNB_OK;
}

/* O(n log n), O(n) when the entries are already in offset order. */
static msbnb_status check_tiling(msbnb_safetensors *f) {
    bool sorted = true;
    for (size_t i = 1; i < f->n && sorted; i++) {
        byte_range a = {f->t[i - 1].begin, f->t[i - 1].end, 0}, b = {f->t[i].begin, f->t[i].end, 0};
        sorted = cmp_range(&a, &b) <= 0;
    }
    if (sorted) return walk_tiling(f, NULL);
    byte_range *r = malloc((f->n ? f->n : 1) * sizeof(byte_range));
    if (!r) return BAD(f, MSBNB_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
    for (size_t i = 0; i < f->n; i++) r[i] = (byte_range){f->t[i].begin, f->t[i].end, i};
    qsort(r, f->n, sizeof(byte_range), cmp_range);
    msbnb_status st = walk_tiling(f, r);
    free(r);
    return st;
}

static msbnb_status parse_header(msbnb_safetensors *f) {
    if (f->len < 8)
        return BAD(f, MSBNB_ERR_FORMAT, "%s: %zu bytes, too short for the 8-byte header length (byte 0)", f->path,
                   f->len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->buf[i];
    if (n > MSBNB_SAFETENSORS_MAX_HEADER)
        return BAD(f, MSBNB_ERR_FORMAT, "%s: header length %llu exceeds the %u-byte limit (byte 0)", f->path,
                   (unsigned long long)n, MSBNB_SAFETENSORS_MAX_HEADER);
    if (n > f->len - 8)
        return BAD(f, MSBNB_ERR_FORMAT, "%s: header length %llu runs past the end of the %zu-byte file (byte 0)",
                   f->path, (unsigned long long)n, f->len);
    if (n < 2) return BAD(f, MSBNB_ERR_FORMAT, "%s: header of %llu bytes cannot hold a JSON object (byte 8)", f->path,
                          (unsigned long long)n);
    f->header_len = n;
    f->data = f->buf + 8 + n;
    f->data_len = f->len - 8 - n;
    if (f->buf[8] != '{')
        return BAD(f, MSBNB_ERR_FORMAT, "%s: header does not start with '{' (byte 8)", f->path);

    cJSON *root = NULL;
    size_t err_off;
    const char *reason;
    /* Entries nest 3 deep ({ "t": { "shape": [ ] } }); a little slack for unknown fields. */
    msbnb_status st = msbnb__json_parse((const char *)f->buf + 8, (size_t)n, 8, true, &root, &err_off, &reason);
    if (st != MSBNB_OK)
        return BAD(f, st, "%s: header: %s (byte %llu)", f->path, reason, (unsigned long long)(8 + err_off));
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return BAD(f, MSBNB_ERR_FORMAT, "%s: header is not a JSON object (byte 8)", f->path);
    }
    size_t count = 0;
    for (const cJSON *it = root->child; it; it = it->next)
        if (strcmp(it->string, "__metadata__")) count++;
    f->t = calloc(count ? count : 1, sizeof(st_entry));
    if (!f->t) {
        cJSON_Delete(root);
        return BAD(f, MSBNB_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
    }
    bool seen_meta = false;
    for (const cJSON *it = root->child; it && st == MSBNB_OK; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) {
            if (seen_meta)
                st = BAD(f, MSBNB_ERR_FORMAT, "%s: __metadata__ appears twice (byte 8)", f->path);
            else
                st = parse_metadata(f, it);
            seen_meta = true;
            continue;
        }
        st_entry *e = &f->t[f->n];
        st = parse_entry(f, it, e);
        if (st == MSBNB_OK) {
            /* the name string changes hands: cJSON_Delete skips a NULL key, close() frees it
             * (cJSON allocates with malloc: no cJSON_InitHooks anywhere in msbnb) */
            e->name = ((cJSON *)it)->string;
            ((cJSON *)it)->string = NULL;
            f->n++;
        }
    }
    cJSON_Delete(root);
    TRY(st);
    /* writers emit names in order, so the sort is usually skipped */
    bool sorted = true;
    for (size_t i = 1; i < f->n && sorted; i++) sorted = strcmp(f->t[i - 1].name, f->t[i].name) < 0;
    if (!sorted) qsort(f->t, f->n, sizeof(st_entry), cmp_entry_name);
    for (size_t i = 1; i < f->n; i++)
        if (!strcmp(f->t[i - 1].name, f->t[i].name))
            return BAD(f, MSBNB_ERR_FORMAT, "%s: tensor '%.80s' appears twice (byte %llu)", f->path, f->t[i].name,
                       (unsigned long long)key_offset(f, f->t[i].name));
    return check_tiling(f);
}

/* ================================================================ open */

static msbnb_status open_common(msbnb_safetensors *f, msbnb_safetensors **out) {
    msbnb_status st = parse_header(f);
    if (st != MSBNB_OK) {
        msbnb_safetensors_close(f);
        return st;
    }
    f->err[0] = '\0';
    *out = f;
    return MSBNB_OK;
}

msbnb_status msbnb_safetensors_open_memory(const void *buf, size_t len, const char *name, msbnb_safetensors **out) {
    RETURN_IF(!out || (!buf && len), MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    msbnb_safetensors *f = calloc(1, sizeof *f);
    RETURN_IF(!f, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    f->path = msbnb__strdup(name ? name : "<memory>");
    if (!f->path) {
        free(f);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    f->buf = buf;
    f->len = len;
    return open_common(f, out);
}

msbnb_status msbnb_safetensors_open(const char *path, msbnb_safetensors **out) {
    RETURN_IF(!path || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    msbnb_safetensors *f = calloc(1, sizeof *f);
    RETURN_IF(!f, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    f->path = msbnb__strdup(path);
    if (!f->path) {
        free(f);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        msbnb_status st = IO_FAIL(NULL, MSBNB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        msbnb_safetensors_close(f);
        return st;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        msbnb_safetensors_close(f);
        return IO_FAIL(NULL, MSBNB_ERR_IO, "%s: not a regular file", path);
    }
    f->len = (size_t)sb.st_size;
    if (f->len > 0) {
        void *m = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            msbnb_safetensors_close(f);
            return IO_FAIL(NULL, MSBNB_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
        }
        f->map = m;
        f->buf = m;
    }
    close(fd);
    return open_common(f, out);
}

/* ================================================================ queries */

static void fill_info(const msbnb_safetensors *f, const st_entry *e, msbnb_tensor_info *t) {
    memset(t, 0, sizeof *t);
    t->name = e->name;
    t->dtype = e->dtype;
    t->ndim = e->ndim;
    memcpy(t->shape, e->shape, sizeof e->shape);
    t->numel = e->numel;
    t->data = f->data + e->begin;
    t->nbytes = (size_t)(e->end - e->begin);
    t->file_offset = 8 + f->header_len + e->begin;
    t->file = f->path;
}

size_t msbnb_safetensors_count(const msbnb_safetensors *f) { return f ? f->n : 0; }

msbnb_status msbnb_safetensors_get(const msbnb_safetensors *f, size_t i, msbnb_tensor_info *t) {
    RETURN_IF(!f || !t, MSBNB_ERR_INVALID_ARG, "NULL argument");
    if (i >= f->n)
        return IO_FAIL(((msbnb_safetensors *)f)->err, MSBNB_ERR_INVALID_ARG, "%s: tensor index %zu out of range (%zu tensors)",
                       f->path, i, f->n);
    fill_info(f, &f->t[i], t);
    return MSBNB_OK;
}

msbnb_status msbnb_safetensors_find(const msbnb_safetensors *f, const char *name, msbnb_tensor_info *t) {
    RETURN_IF(!f || !name || !t, MSBNB_ERR_INVALID_ARG, "NULL argument");
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->t[mid].name, name);
        if (c == 0) {
            fill_info(f, &f->t[mid], t);
            return MSBNB_OK;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return IO_FAIL(((msbnb_safetensors *)f)->err, MSBNB_ERR_NOT_FOUND, "%s: no tensor named '%.120s'", f->path, name);
}

size_t msbnb_safetensors_metadata_count(const msbnb_safetensors *f) { return f ? f->n_meta : 0; }

msbnb_status msbnb_safetensors_metadata_get(const msbnb_safetensors *f, size_t i, const char **key, const char **value) {
    RETURN_IF(!f || i >= f->n_meta, MSBNB_ERR_INVALID_ARG, "metadata index out of range");
    if (key) *key = f->meta_key[i];
    if (value) *value = f->meta_val[i];
    return MSBNB_OK;
}

const char *msbnb_safetensors_metadata(const msbnb_safetensors *f, const char *key) {
    if (!f || !key) return NULL;
    size_t lo = 0, hi = f->n_meta; /* keys are sorted: binary search, O(log n) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->meta_key[mid], key);
        if (c == 0) return f->meta_val[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *msbnb_safetensors_path(const msbnb_safetensors *f) { return f ? f->path : ""; }
const char *msbnb_safetensors_errmsg(const msbnb_safetensors *f) { return f ? f->err : ""; }

void msbnb__safetensors_release(const msbnb_safetensors *f, const void *data, size_t n) {
    if (!f || !f->map || n == 0) return;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    uintptr_t lo = (uintptr_t)data, hi = lo + n;
    uintptr_t base = (uintptr_t)f->map, end = base + f->len;
    if (lo < base || hi > end) return;
    /* whole pages only: neighbours' bytes on a shared page stay resident */
    uintptr_t a = (lo + (uintptr_t)page - 1) & ~((uintptr_t)page - 1), b = hi & ~((uintptr_t)page - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}
