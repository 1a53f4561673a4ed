/*
 * safetensors_write.c — streaming, crash-safe safetensors writer.
 *
 * Tensors arrive one at a time and go straight to an anonymous spill file (created beside the
 * destination, unlinked at once, so a crash leaves nothing behind). finish() then writes the real
 * file: a temporary ".<name>.msbnb-tmp-<pid>-XXXXXX" in the destination directory receives the header
 * and the data copied from the spill file, is fsync'd and renamed over the destination. Memory
 * use is one tensor plus a copy buffer, whatever the model size.
 *
 * Layout written (as the reference Python writer): header keys "__metadata__" then tensors
 * sorted by name; the header padded with spaces so the data area starts at a multiple of 8;
 * data ordered by element size (largest first) then name, so every tensor is aligned to its
 * element size in the file (and in a memory map of it).
 */
#define _GNU_SOURCE
#define IO_API "msbnb_st_writer"
#include "io/io_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct wr_entry {
    char *name;
    msbnb_st_dtype dtype;
    int ndim;
    int64_t shape[MSBNB_MAX_NDIM];
    uint64_t spill_offset, nbytes;
    uint64_t begin; /* offset in the final data area, set at finish */
} wr_entry;

struct msbnb_st_writer {
    char *dest;
    int spill_fd;
    uint64_t spill_len;
    wr_entry *t;
    size_t n, cap;
    char **meta_key, **meta_val;
    size_t n_meta;
    int finished;
    char err[IO_ERRMSG_CAP];
};

void msbnb_st_writer_free(msbnb_st_writer *w) {
    if (!w) return;
    if (w->spill_fd >= 0) close(w->spill_fd);
    for (size_t i = 0; i < w->n; i++) free(w->t[i].name);
    free(w->t);
    for (size_t i = 0; i < w->n_meta; i++) {
        free(w->meta_key[i]);
        free(w->meta_val[i]);
    }
    free(w->meta_key);
    free(w->meta_val);
    free(w->dest);
    free(w);
}

const char *msbnb_st_writer_errmsg(const msbnb_st_writer *w) { return w ? w->err : ""; }
uint64_t msbnb_st_writer_bytes(const msbnb_st_writer *w) { return w ? w->spill_len : 0; }

msbnb_status msbnb_st_writer_set_metadata(msbnb_st_writer *w, const char *key, const char *value) {
    RETURN_IF(!w || !key || !value, MSBNB_ERR_INVALID_ARG, "NULL argument");
    for (size_t i = 0; i < w->n_meta; i++)
        if (!strcmp(w->meta_key[i], key)) {
            char *v = msbnb__strdup(value);
            RETURN_IF(!v, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
            free(w->meta_val[i]);
            w->meta_val[i] = v;
            return MSBNB_OK;
        }
    char **k = realloc(w->meta_key, (w->n_meta + 1) * sizeof *k);
    if (k) w->meta_key = k;
    char **v = realloc(w->meta_val, (w->n_meta + 1) * sizeof *v);
    if (v) w->meta_val = v;
    RETURN_IF(!k || !v, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    w->meta_key[w->n_meta] = msbnb__strdup(key);
    w->meta_val[w->n_meta] = msbnb__strdup(value);
    w->n_meta++;
    RETURN_IF(!w->meta_key[w->n_meta - 1] || !w->meta_val[w->n_meta - 1], MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    return MSBNB_OK;
}

msbnb_status msbnb_st_writer_create(const char *path, msbnb_st_writer **out) {
    RETURN_IF(!path || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    msbnb_st_writer *w = calloc(1, sizeof *w);
    RETURN_IF(!w, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    w->spill_fd = -1;
    w->dest = msbnb__strdup(path);
    if (!w->dest) {
        msbnb_st_writer_free(w);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    char *spill = NULL;
    msbnb_status st = msbnb__tmp_create(path, &w->spill_fd, &spill, NULL);
    if (st == MSBNB_OK) {
        unlink(spill); /* anonymous from now on: nothing to clean up after a crash */
        free(spill);
        char ver[16];
        snprintf(ver, sizeof ver, "%d", MSBNB_FORMAT_VERSION);
        st = msbnb_st_writer_set_metadata(w, "format", "pt");
        if (st == MSBNB_OK) st = msbnb_st_writer_set_metadata(w, "msbnb_format_version", ver);
    }
    if (st != MSBNB_OK) {
        msbnb_st_writer_free(w);
        return st;
    }
    *out = w;
    return MSBNB_OK;
}

msbnb_status msbnb_st_writer_add(msbnb_st_writer *w, const char *name, msbnb_st_dtype dtype, int ndim,
                                 const int64_t *shape, const void *data, size_t nbytes) {
    RETURN_IF(!w || !name || (ndim > 0 && !shape) || (!data && nbytes), MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(w->finished, MSBNB_ERR_INVALID_ARG, "%s: writer already finished", w->dest);
    RETURN_IF(ndim < 0 || ndim > MSBNB_MAX_NDIM, MSBNB_ERR_INVALID_ARG, "tensor '%.120s': %d dimensions", name, ndim);
    RETURN_IF(msbnb_st_dtype_bits(dtype) == 0, MSBNB_ERR_INVALID_ARG, "tensor '%.120s': bad dtype %d", name, (int)dtype);
    RETURN_IF(!strncmp(name, "__metadata__", 12), MSBNB_ERR_INVALID_ARG, "tensor name '%.120s' is reserved", name);
    size_t ok_len = 0;
    RETURN_IF(!msbnb__utf8_valid(name, strlen(name), &ok_len), MSBNB_ERR_INVALID_ARG, "tensor name is not UTF-8");
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        RETURN_IF(shape[i] < 0 || shape[i] > MSBNB_MAX_DIM, MSBNB_ERR_INVALID_ARG, "tensor '%.120s': dim %d is %lld",
                  name, i, (long long)shape[i]);
        RETURN_IF(shape[i] && numel > ((uint64_t)1 << 56) / (uint64_t)shape[i], MSBNB_ERR_SHAPE,
                  "tensor '%.120s': shape overflows", name);
        numel *= (uint64_t)shape[i];
    }
    uint64_t bits = numel * (uint64_t)msbnb_st_dtype_bits(dtype);
    RETURN_IF(bits % 8 || bits / 8 != nbytes, MSBNB_ERR_SHAPE,
              "tensor '%.120s': %zu bytes given, dtype %s x shape needs %llu bits", name, nbytes,
              msbnb_st_dtype_name(dtype), (unsigned long long)bits);
    for (size_t i = 0; i < w->n; i++)
        RETURN_IF(!strcmp(w->t[i].name, name), MSBNB_ERR_INVALID_ARG, "tensor '%.120s' added twice", name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        wr_entry *t = realloc(w->t, cap * sizeof *t);
        RETURN_IF(!t, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
        w->t = t;
        w->cap = cap;
    }
    wr_entry *e = &w->t[w->n];
    memset(e, 0, sizeof *e);
    e->name = msbnb__strdup(name);
    RETURN_IF(!e->name, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->spill_offset = w->spill_len;
    e->nbytes = nbytes;
    msbnb_status st = msbnb__write_all(w->spill_fd, data, nbytes, w->dest, w->err);
    if (st != MSBNB_OK) {
        free(e->name);
        return st;
    }
    w->spill_len += nbytes;
    w->n++;
    return MSBNB_OK;
}

msbnb_status msbnb_st_writer_add_f32(msbnb_st_writer *w, const char *name, int ndim, const int64_t *shape,
                                     const float *data) {
    size_t numel = 1;
    for (int i = 0; i < ndim && shape; i++)
        RETURN_IF(shape[i] < 0 || !msbnb__mul_ok(numel, (size_t)shape[i], &numel), MSBNB_ERR_SHAPE, "bad shape");
    RETURN_IF(numel > SIZE_MAX / 4, MSBNB_ERR_SHAPE, "shape overflows");
    return msbnb_st_writer_add(w, name, MSBNB_ST_F32, ndim, shape, data, numel * 4);
}

/* ================================================================ finish */

/* Growable string for the header. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}
static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

/* JSON string literal of UTF-8 s (quotes, backslashes and control bytes escaped). */
static void sb_json_string(sbuf *b, const char *s) {
    sb_putn(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sb_putn(b, esc, 2);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_puts(b, esc);
        } else {
            sb_putn(b, (const char *)&c, 1);
        }
    }
    sb_putn(b, "\"", 1);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const wr_entry *)a)->name, ((const wr_entry *)b)->name);
}

/* Copy n bytes at spill offset `from` to fd (current position). */
static msbnb_status copy_from_spill(msbnb_st_writer *w, int fd, uint64_t from, uint64_t n, char *buf, size_t cap) {
    while (n > 0) {
        size_t chunk = n < cap ? (size_t)n : cap;
        ssize_t k = pread(w->spill_fd, buf, chunk, (off_t)from);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return IO_FAIL(w->err, MSBNB_ERR_IO, "%s: reading back the spill file failed", w->dest);
        TRY(msbnb__write_all(fd, buf, (size_t)k, w->dest, w->err));
        from += (uint64_t)k;
        n -= (uint64_t)k;
    }
    return MSBNB_OK;
}

msbnb_status msbnb_st_writer_finish(msbnb_st_writer *w) {
    RETURN_IF(!w, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(w->finished, MSBNB_ERR_INVALID_ARG, "%s: writer already finished", w->dest);

    /* Data order: element size descending, then name (alignment); header order: name. */
    if (w->n > 1) qsort(w->t, w->n, sizeof(wr_entry), cmp_name); /* w->t is NULL when empty: qsort(NULL, 0) is UB */
    size_t *order = malloc((w->n ? w->n : 1) * sizeof(size_t));
    RETURN_IF(!order, MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    size_t k = 0;
    static const int bit_classes[] = {64, 32, 16, 8, 6, 4};
    for (size_t c = 0; c < sizeof bit_classes / sizeof bit_classes[0]; c++)
        for (size_t i = 0; i < w->n; i++)
            if (msbnb_st_dtype_bits(w->t[i].dtype) == bit_classes[c]) order[k++] = i;
    uint64_t pos = 0;
    for (size_t i = 0; i < k; i++) {
        w->t[order[i]].begin = pos;
        pos += w->t[order[i]].nbytes;
    }

    /* Header. */
    sbuf h = {0};
    sb_puts(&h, "{\"__metadata__\":{");
    /* metadata keys in order: sort the (key, value) pairs in place */
    for (size_t i = 1; i < w->n_meta; i++)
        for (size_t j = i; j > 0 && strcmp(w->meta_key[j - 1], w->meta_key[j]) > 0; j--) {
            char *tk = w->meta_key[j], *tv = w->meta_val[j];
            w->meta_key[j] = w->meta_key[j - 1];
            w->meta_val[j] = w->meta_val[j - 1];
            w->meta_key[j - 1] = tk;
            w->meta_val[j - 1] = tv;
        }
    for (size_t i = 0; i < w->n_meta; i++) {
        if (i) sb_puts(&h, ",");
        sb_json_string(&h, w->meta_key[i]);
        sb_puts(&h, ":");
        sb_json_string(&h, w->meta_val[i]);
    }
    sb_puts(&h, "}");
    for (size_t i = 0; i < w->n; i++) {
        const wr_entry *e = &w->t[i];
        char num[64];
        sb_puts(&h, ",");
        sb_json_string(&h, e->name);
        sb_puts(&h, ":{\"dtype\":\"");
        sb_puts(&h, msbnb_st_dtype_name(e->dtype));
        sb_puts(&h, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)e->shape[d]);
            sb_puts(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)e->begin,
                 (unsigned long long)(e->begin + e->nbytes));
        sb_puts(&h, num);
    }
    sb_puts(&h, "}");
    while (!h.oom && h.len % 8) sb_puts(&h, " ");
    if (h.oom) {
        free(order);
        free(h.p);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (h.len > MSBNB_SAFETENSORS_MAX_HEADER) {
        free(order);
        free(h.p);
        return IO_FAIL(w->err, MSBNB_ERR_UNSUPPORTED, "%s: header of %zu bytes exceeds the limit", w->dest, h.len);
    }

    /* The file. */
    int fd = -1;
    char *tmp = NULL;
    char *buf = malloc((size_t)8 << 20);
    msbnb_status st = buf ? msbnb__tmp_create(w->dest, &fd, &tmp, w->err)
                          : MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == MSBNB_OK) {
        uint8_t len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
        st = msbnb__write_all(fd, len8, 8, w->dest, w->err);
        if (st == MSBNB_OK) st = msbnb__write_all(fd, h.p, h.len, w->dest, w->err);
        for (size_t i = 0; i < k && st == MSBNB_OK; i++)
            st = copy_from_spill(w, fd, w->t[order[i]].spill_offset, w->t[order[i]].nbytes, buf, (size_t)8 << 20);
        if (st == MSBNB_OK) {
            st = msbnb__tmp_commit(fd, tmp, w->dest, w->err);
        } else {
            close(fd);
            unlink(tmp);
        }
    }
    free(tmp);
    free(buf);
    free(order);
    free(h.p);
    if (st == MSBNB_OK) w->finished = 1;
    return st;
}
