/*
 * checkpoint.c — a model on disk: one .safetensors file, or a Hugging Face directory with
 * config.json and model.safetensors, or model.safetensors.index.json + shards
 * (model-00001-of-00003.safetensors ...). One sorted name index spans every shard.
 * Also: element conversion of any readable tensor to float32.
 * Complexity: O(n log n) in the tensor count over all shards (each shard as safetensors_read.c;
 * the index's weight_map and the shards' names are sorted and compared in one walk); lookups
 * O(log n).
 */
#define _POSIX_C_SOURCE 200809L
#define IO_API "msbnb_checkpoint"
#include "io/io_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ================================================================ dtype -> float32 */

msbnb_status msbnb_tensor_to_f32(const msbnb_tensor_info *t, float *out) {
    RETURN_IF(!t || (!out && t->numel), MSBNB_ERR_INVALID_ARG, "NULL argument");
    const uint8_t *p = t->data;
    size_t n = (size_t)t->numel;
    /* memcpy per element: data may be unaligned (see io.h) */
#define CONVERT(ctype, expr)                        \
    for (size_t i = 0; i < n; i++) {                \
        ctype v;                                    \
        memcpy(&v, p + i * sizeof(ctype), sizeof v); \
        out[i] = (expr);                            \
    }                                               \
    return MSBNB_OK
    switch (t->dtype) {
    case MSBNB_ST_F32: memcpy(out, p, n * sizeof(float)); return MSBNB_OK;
    case MSBNB_ST_F16: CONVERT(uint16_t, msbnb_f16_to_f32(v));
    case MSBNB_ST_BF16: CONVERT(uint16_t, msbnb_bf16_to_f32(v));
    case MSBNB_ST_F64: CONVERT(double, (float)v);
    case MSBNB_ST_I8: CONVERT(int8_t, (float)v);
    case MSBNB_ST_U8: CONVERT(uint8_t, (float)v);
    case MSBNB_ST_BOOL: CONVERT(uint8_t, v ? 1.0f : 0.0f);
    case MSBNB_ST_I16: CONVERT(int16_t, (float)v);
    case MSBNB_ST_U16: CONVERT(uint16_t, (float)v);
    case MSBNB_ST_I32: CONVERT(int32_t, (float)v);
    case MSBNB_ST_U32: CONVERT(uint32_t, (float)v);
    case MSBNB_ST_I64: CONVERT(int64_t, (float)v);
    case MSBNB_ST_U64: CONVERT(uint64_t, (float)v);
    default: break;
    }
#undef CONVERT
    return MSBNB_FAIL(MSBNB_ERR_UNSUPPORTED, "%s: tensor '%.120s': no float32 conversion for dtype %s (byte %llu)",
                      t->file ? t->file : "?", t->name ? t->name : "?", msbnb_st_dtype_name(t->dtype),
                      (unsigned long long)t->file_offset);
}

/* ================================================================ the handle */

typedef struct ck_ref {
    const char *name; /* borrowed from the shard */
    size_t shard, idx;
} ck_ref;

struct msbnb_checkpoint {
    char *path;
    int is_dir;
    msbnb_safetensors **shards;
    size_t n_shards;
    ck_ref *refs; /* sorted by name */
    size_t n;
    msbnb_config *config;
    char err[IO_ERRMSG_CAP];
};

void msbnb_checkpoint_close(msbnb_checkpoint *ck) {
    if (!ck) return;
    for (size_t i = 0; i < ck->n_shards; i++) msbnb_safetensors_close(ck->shards[i]);
    free(ck->shards);
    free(ck->refs);
    msbnb_config_free(ck->config);
    free(ck->path);
    free(ck);
}

static int cmp_ref(const void *a, const void *b) { return strcmp(((const ck_ref *)a)->name, ((const ck_ref *)b)->name); }

static msbnb_status add_shard(msbnb_checkpoint *ck, const char *file) {
    msbnb_safetensors *f = NULL;
    TRY(msbnb_safetensors_open(file, &f));
    if (!ck->shards) { /* a single file; open_sharded sizes the array for every shard */
        ck->shards = malloc(sizeof *ck->shards);
        if (!ck->shards) {
            msbnb_safetensors_close(f);
            return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    ck->shards[ck->n_shards++] = f;
    return MSBNB_OK;
}

static msbnb_status build_index(msbnb_checkpoint *ck) {
    size_t total = 0;
    for (size_t s = 0; s < ck->n_shards; s++) total += msbnb_safetensors_count(ck->shards[s]);
    ck->refs = malloc((total ? total : 1) * sizeof(ck_ref));
    RETURN_IF(!ck->refs, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t s = 0; s < ck->n_shards; s++) {
        for (size_t i = 0; i < msbnb_safetensors_count(ck->shards[s]); i++) {
            msbnb_tensor_info t;
            TRY(msbnb_safetensors_get(ck->shards[s], i, &t));
            ck->refs[ck->n++] = (ck_ref){t.name, s, i};
        }
    }
    qsort(ck->refs, ck->n, sizeof(ck_ref), cmp_ref);
    for (size_t i = 1; i < ck->n; i++)
        if (!strcmp(ck->refs[i - 1].name, ck->refs[i].name))
            return IO_FAIL(ck->err, MSBNB_ERR_FORMAT, "%s: tensor '%.120s' is in two shards (%s and %s)", ck->path,
                           ck->refs[i].name, msbnb_safetensors_path(ck->shards[ck->refs[i - 1].shard]),
                           msbnb_safetensors_path(ck->shards[ck->refs[i].shard]));
    return MSBNB_OK;
}

/* A shard name from an index must be a plain file name in the model directory. */
static bool plain_file_name(const char *s) {
    return s[0] && strcmp(s, ".") && strcmp(s, "..") && !strchr(s, '/') && !strchr(s, '\\');
}

typedef struct map_entry {
    const char *name, *file; /* borrowed from the parsed index */
} map_entry;

static int cmp_map_name(const void *a, const void *b) {
    return strcmp(((const map_entry *)a)->name, ((const map_entry *)b)->name);
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static const char *base_name(const char *p) {
    const char *b = strrchr(p, '/');
    return b ? b + 1 : p;
}

/* O(n log n) in the tensor count: the weight_map entries and the shards' tensors are both sorted
 * by name and compared in one walk; each distinct shard file is opened once. */
static msbnb_status open_sharded(msbnb_checkpoint *ck, const char *index_path) {
    msbnb_config *idx = NULL;
    TRY(msbnb_config_open(index_path, &idx));
    msbnb_status st = MSBNB_OK;
    /* The config getters speak dotted paths, but tensor names contain dots: walk the JSON. */
    size_t off;
    const char *reason;
    cJSON *root = NULL;
    const char *json = msbnb_config_json(idx);
    st = msbnb__json_parse(json, strlen(json), 64, false, &root, &off, &reason);
    msbnb_config_free(idx);
    TRY(st);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return IO_FAIL(ck->err, MSBNB_ERR_FORMAT, "%s: no \"weight_map\" object", index_path);
    }
    size_t n_entries = 0;
    for (const cJSON *e = map->child; e; e = e->next) n_entries++;
    map_entry *ent = malloc((n_entries ? n_entries : 1) * sizeof *ent);     /* [n_entries] */
    const char **files = malloc((n_entries ? n_entries : 1) * sizeof *files); /* [n_entries] */
    if (!ent || !files) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    size_t k = 0;
    for (const cJSON *e = map->child; e && st == MSBNB_OK; e = e->next, k++) {
        if (!cJSON_IsString(e) || !plain_file_name(e->valuestring)) {
            st = IO_FAIL(ck->err, MSBNB_ERR_FORMAT, "%s: weight_map entry '%.120s' is not a file name in the directory",
                         index_path, e->string);
            break;
        }
        ent[k] = (map_entry){e->string, e->valuestring};
        files[k] = e->valuestring;
    }
    /* distinct shard files, in name order */
    size_t n_files = 0;
    if (st == MSBNB_OK) {
        qsort(files, n_entries, sizeof *files, cmp_str);
        for (size_t i = 0; i < n_entries; i++)
            if (!n_files || strcmp(files[n_files - 1], files[i])) files[n_files++] = files[i];
        ck->shards = malloc((n_files ? n_files : 1) * sizeof *ck->shards);
        if (!ck->shards) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (size_t i = 0; i < n_files && st == MSBNB_OK; i++) {
        char *file = msbnb__path_join(ck->path, files[i]);
        st = file ? add_shard(ck, file) : MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
        free(file);
    }
    if (st == MSBNB_OK) st = build_index(ck);
    /* Every tensor of every shard is in the map, under its own shard, and nothing else is. */
    if (st == MSBNB_OK && n_entries != ck->n)
        st = IO_FAIL(ck->err, MSBNB_ERR_FORMAT, "%s: weight_map names %zu tensors but the shards hold %zu", index_path,
                     n_entries, ck->n);
    if (st == MSBNB_OK) qsort(ent, n_entries, sizeof *ent, cmp_map_name);
    for (size_t i = 0; i < ck->n && st == MSBNB_OK; i++) {
        const char *p = msbnb_safetensors_path(ck->shards[ck->refs[i].shard]);
        if (strcmp(ent[i].name, ck->refs[i].name) || strcmp(ent[i].file, base_name(p)))
            st = IO_FAIL(ck->err, MSBNB_ERR_FORMAT, "%s: tensor '%.120s' of %s is not mapped to that shard", index_path,
                         ck->refs[i].name, p);
    }
    free(ent);
    free(files);
    cJSON_Delete(root);
    return st;
}

static bool is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static msbnb_status open_dir(msbnb_checkpoint *ck) {
    char *cfg = msbnb__path_join(ck->path, "config.json");
    char *single = msbnb__path_join(ck->path, "model.safetensors");
    char *index = msbnb__path_join(ck->path, "model.safetensors.index.json");
    msbnb_status st = MSBNB_OK;
    if (!cfg || !single || !index) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    else if (!is_file(cfg))
        st = IO_FAIL(ck->err, MSBNB_ERR_NOT_FOUND, "%s: no config.json in the model directory", ck->path);
    else if ((st = msbnb_config_open(cfg, &ck->config)) != MSBNB_OK) {
    } else if (is_file(index))
        st = open_sharded(ck, index);
    else if (is_file(single)) {
        st = add_shard(ck, single);
        if (st == MSBNB_OK) st = build_index(ck);
    } else
        st = IO_FAIL(ck->err, MSBNB_ERR_NOT_FOUND,
                     "%s: neither model.safetensors nor model.safetensors.index.json in the model directory", ck->path);
    free(cfg);
    free(single);
    free(index);
    return st;
}

msbnb_status msbnb_checkpoint_open(const char *path, msbnb_checkpoint **out) {
    RETURN_IF(!path || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    msbnb_checkpoint *ck = calloc(1, sizeof *ck);
    RETURN_IF(!ck, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    ck->path = msbnb__strdup(path);
    msbnb_status st;
    struct stat sb;
    if (!ck->path) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    else if (stat(path, &sb) != 0) st = IO_FAIL(NULL, MSBNB_ERR_IO, "%s: no such file or directory", path);
    else if (S_ISDIR(sb.st_mode)) {
        ck->is_dir = 1;
        st = open_dir(ck);
    } else {
        st = add_shard(ck, path);
        if (st == MSBNB_OK) st = build_index(ck);
    }
    if (st != MSBNB_OK) {
        msbnb_checkpoint_close(ck);
        return st;
    }
    ck->err[0] = '\0';
    *out = ck;
    return MSBNB_OK;
}

msbnb_status msbnb__checkpoint_wrap(msbnb_safetensors *f, msbnb_checkpoint **out) {
    *out = NULL;
    msbnb_checkpoint *ck = calloc(1, sizeof *ck);
    msbnb_status st = MSBNB_OK;
    if (ck) ck->path = msbnb__strdup(msbnb_safetensors_path(f));
    if (ck) ck->shards = malloc(sizeof *ck->shards);
    if (!ck || !ck->path || !ck->shards) {
        msbnb_checkpoint_close(ck);
        msbnb_safetensors_close(f);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    ck->shards[0] = f;
    ck->n_shards = 1;
    if ((st = build_index(ck)) != MSBNB_OK) {
        msbnb_checkpoint_close(ck);
        return st;
    }
    *out = ck;
    return MSBNB_OK;
}

/* ================================================================ queries */

size_t msbnb_checkpoint_count(const msbnb_checkpoint *ck) { return ck ? ck->n : 0; }

msbnb_status msbnb_checkpoint_get(const msbnb_checkpoint *ck, size_t i, msbnb_tensor_info *t) {
    RETURN_IF(!ck || !t, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(i >= ck->n, MSBNB_ERR_INVALID_ARG, "tensor index %zu out of range (%zu tensors)", i, ck->n);
    return msbnb_safetensors_get(ck->shards[ck->refs[i].shard], ck->refs[i].idx, t);
}

msbnb_status msbnb_checkpoint_find(const msbnb_checkpoint *ck, const char *name, msbnb_tensor_info *t) {
    RETURN_IF(!ck || !name || !t, MSBNB_ERR_INVALID_ARG, "NULL argument");
    size_t lo = 0, hi = ck->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ck->refs[mid].name, name);
        if (c == 0) return msbnb_safetensors_get(ck->shards[ck->refs[mid].shard], ck->refs[mid].idx, t);
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return IO_FAIL(((msbnb_checkpoint *)ck)->err, MSBNB_ERR_NOT_FOUND, "%s: no tensor named '%.120s'", ck->path, name);
}

bool msbnb__checkpoint_lookup(const msbnb_checkpoint *ck, const char *name, msbnb_tensor_info *t) {
    if (!ck || !name) return false;
    size_t lo = 0, hi = ck->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ck->refs[mid].name, name);
        if (c == 0) return msbnb_safetensors_get(ck->shards[ck->refs[mid].shard], ck->refs[mid].idx, t) == MSBNB_OK;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return false;
}

msbnb_status msbnb_checkpoint_read_f32(const msbnb_checkpoint *ck, const char *name, float *out, size_t n) {
    msbnb_tensor_info t;
    TRY(msbnb_checkpoint_find(ck, name, &t));
    if ((size_t)t.numel != n)
        return IO_FAIL(((msbnb_checkpoint *)ck)->err, MSBNB_ERR_SHAPE, "%s: tensor '%.120s' has %lld elements, caller expects %zu (byte %llu)",
                       t.file, name, (long long)t.numel, n, (unsigned long long)t.file_offset);
    return msbnb_tensor_to_f32(&t, out);
}

void msbnb_checkpoint_release(const msbnb_checkpoint *ck, const char *name) {
    if (!ck || !name) return;
    size_t lo = 0, hi = ck->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ck->refs[mid].name, name);
        if (c == 0) {
            msbnb_tensor_info t;
            const msbnb_safetensors *f = ck->shards[ck->refs[mid].shard];
            if (msbnb_safetensors_get(f, ck->refs[mid].idx, &t) == MSBNB_OK) msbnb__safetensors_release(f, t.data, t.nbytes);
            return;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
}

const msbnb_config *msbnb_checkpoint_config(const msbnb_checkpoint *ck) { return ck ? ck->config : NULL; }
size_t msbnb_checkpoint_shard_count(const msbnb_checkpoint *ck) { return ck ? ck->n_shards : 0; }
const msbnb_safetensors *msbnb_checkpoint_shard(const msbnb_checkpoint *ck, size_t i) {
    return ck && i < ck->n_shards ? ck->shards[i] : NULL;
}
int msbnb_checkpoint_is_dir(const msbnb_checkpoint *ck) { return ck ? ck->is_dir : 0; }
const char *msbnb_checkpoint_errmsg(const msbnb_checkpoint *ck) { return ck ? ck->err : ""; }
