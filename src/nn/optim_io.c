/*
 * optim_io.c — save and restore optimizer state (format in optim.c's header comment and
 * docs/nn.md). The file is assembled in memory, written to "<path>.tmp" and renamed over path, so
 * a crash never leaves a half-written state under the final name. Loading parses and checks the
 * whole file (magic, version, CRC, tensor names and sizes) before touching the optimizer.
 * Complexity: linear in the file size (one CRC pass, one pass over the records).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/optim_internal.h"

#define OPT_MAGIC "MSBNBOPT"
#define OPT_VERSION 1u

/* ================================================================ CRC-32 (IEEE 802.3, reflected) */

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
    uint32_t table[256]; /* built per call (2K operations): no shared mutable state */
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ================================================================ growing buffer */

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
    int oom;
} buf;

static void put(buf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }

static int little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

msbnb_status msbnb_optim_save(const msbnb_optim *o, const char *path) {
    RETURN_IF(!o || !path, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(!little_endian(), MSBNB_ERR_UNSUPPORTED, "state files are little-endian; big-endian host");
    buf b = {0};
    put(&b, OPT_MAGIC, 8);
    put_u32(&b, OPT_VERSION);
    put_u32(&b, (uint32_t)o->type);
    put_u64(&b, (uint64_t)o->step);
    put_u32(&b, (uint32_t)o->n_tensors);
    put_u32(&b, (uint32_t)o->p.blocksize);
    for (int i = 0; i < o->n_tensors; i++) {
        const optim_tensor *t = &o->t[i];
        uint32_t nl = (uint32_t)strlen(t->name);
        put_u32(&b, nl);
        put(&b, t->name, nl);
        put_u64(&b, (uint64_t)t->n);
        put_u32(&b, (uint32_t)t->is8bit);
        if (t->is8bit) {
            put(&b, t->qm, t->n);
            put(&b, t->qv, t->n);
            put(&b, t->am, t->n_blocks * sizeof(float));
            put(&b, t->av, t->n_blocks * sizeof(float));
        } else {
            put(&b, t->m, t->n * sizeof(float));
            put(&b, t->v, t->n * sizeof(float));
        }
    }
    if (!b.oom) put_u32(&b, crc32_update(0, b.p, b.len));
    if (b.oom) {
        free(b.p);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "state buffer");
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) {
        free(b.p);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "path");
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    msbnb_status st = MSBNB_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = MSBNB_FAIL(MSBNB_ERR_IO, "cannot create '%s'", tmp);
    } else {
        int ok = fwrite(b.p, 1, b.len, f) == b.len;
        ok = (fflush(f) == 0) && ok;
        ok = (fclose(f) == 0) && ok;
        if (!ok) {
            remove(tmp);
            st = MSBNB_FAIL(MSBNB_ERR_IO, "writing '%s' failed", tmp);
        } else if (rename(tmp, path) != 0) {
            remove(tmp);
            st = MSBNB_FAIL(MSBNB_ERR_IO, "cannot rename '%s' to '%s'", tmp, path);
        }
    }
    free(tmp);
    free(b.p);
    return st;
}

/* ================================================================ load */

typedef struct reader {
    const uint8_t *p;
    size_t len, pos;
} reader;

static int take(reader *r, void *dst, size_t n) {
    if (r->len - r->pos < n) return 0;
    if (dst) memcpy(dst, r->p + r->pos, n);
    r->pos += n;
    return 1;
}

/* Where tensor i's state sits inside the file (validated against the optimizer). */
typedef struct tensor_loc {
    size_t off_a, off_b, off_c, off_d; /* qm/m, qv/v, am, av */
} tensor_loc;

static msbnb_status parse_and_check(const msbnb_optim *o, const uint8_t *data, size_t len, int64_t *step,
                                    tensor_loc *loc) {
    RETURN_IF(len < 8 + 4 + 4 + 8 + 4 + 4 + 4, MSBNB_ERR_FORMAT, "state file truncated (%zu bytes)", len);
    RETURN_IF(memcmp(data, OPT_MAGIC, 8) != 0, MSBNB_ERR_FORMAT, "bad magic (not an msbnb optimizer state)");
    uint32_t crc;
    memcpy(&crc, data + len - 4, 4);
    RETURN_IF(crc32_update(0, data, len - 4) != crc, MSBNB_ERR_FORMAT, "CRC mismatch (corrupt state file)");
    reader r = {data, len - 4, 8};
    uint32_t version, type, n_tensors, blocksize;
    uint64_t st;
    take(&r, &version, 4);
    take(&r, &type, 4);
    take(&r, &st, 8);
    take(&r, &n_tensors, 4);
    take(&r, &blocksize, 4);
    RETURN_IF(version != OPT_VERSION, MSBNB_ERR_FORMAT, "state version %u, expected %u", version, OPT_VERSION);
    RETURN_IF(type != (uint32_t)o->type, MSBNB_ERR_SHAPE, "state of optimizer type %u, this one is %d", type,
              (int)o->type);
    RETURN_IF((int)n_tensors != o->n_tensors, MSBNB_ERR_SHAPE, "state holds %u tensors, optimizer has %d",
              n_tensors, o->n_tensors);
    RETURN_IF(blocksize != (uint32_t)o->p.blocksize, MSBNB_ERR_SHAPE, "state blocksize %u, optimizer %d", blocksize,
              o->p.blocksize);
    /* INT64_MAX is refused too: the next msbnb_optim_step would overflow the counter. */
    RETURN_IF(st >= (uint64_t)INT64_MAX, MSBNB_ERR_FORMAT, "step %llu out of range", (unsigned long long)st);
    for (int i = 0; i < o->n_tensors; i++) {
        const optim_tensor *t = &o->t[i];
        uint32_t nl, is8;
        uint64_t n;
        RETURN_IF(!take(&r, &nl, 4) || nl >= MSBNB_OPTIM_NAME_MAX || r.len - r.pos < nl, MSBNB_ERR_FORMAT,
                  "tensor %d: bad name at byte %zu", i, r.pos);
        RETURN_IF(nl != strlen(t->name) || memcmp(r.p + r.pos, t->name, nl) != 0, MSBNB_ERR_SHAPE,
                  "tensor %d: saved as '%.*s', registered as '%s'", i, (int)nl, (const char *)(r.p + r.pos), t->name);
        r.pos += nl;
        RETURN_IF(!take(&r, &n, 8) || !take(&r, &is8, 4), MSBNB_ERR_FORMAT, "tensor %d: truncated header", i);
        RETURN_IF(n != (uint64_t)t->n || is8 != (uint32_t)t->is8bit, MSBNB_ERR_SHAPE,
                  "tensor '%s': saved %llu elements (8-bit %u), registered %zu (8-bit %d)", t->name,
                  (unsigned long long)n, is8, t->n, t->is8bit);
        size_t ea = t->is8bit ? t->n : t->n * sizeof(float);
        size_t ec = t->is8bit ? t->n_blocks * sizeof(float) : 0;
        loc[i].off_a = r.pos;
        RETURN_IF(!take(&r, NULL, ea), MSBNB_ERR_FORMAT, "tensor '%s': truncated", t->name);
        loc[i].off_b = r.pos;
        RETURN_IF(!take(&r, NULL, ea), MSBNB_ERR_FORMAT, "tensor '%s': truncated", t->name);
        loc[i].off_c = r.pos;
        RETURN_IF(!take(&r, NULL, ec), MSBNB_ERR_FORMAT, "tensor '%s': truncated", t->name);
        loc[i].off_d = r.pos;
        RETURN_IF(!take(&r, NULL, ec), MSBNB_ERR_FORMAT, "tensor '%s': truncated", t->name);
    }
    RETURN_IF(r.pos != r.len, MSBNB_ERR_FORMAT, "%zu trailing bytes", r.len - r.pos);
    *step = (int64_t)st;
    return MSBNB_OK;
}

msbnb_status msbnb_optim_load(msbnb_optim *o, const char *path) {
    RETURN_IF(!o || !path, MSBNB_ERR_INVALID_ARG, "NULL argument");
    RETURN_IF(!little_endian(), MSBNB_ERR_UNSUPPORTED, "state files are little-endian; big-endian host");
    FILE *f = fopen(path, "rb");
    RETURN_IF(!f, MSBNB_ERR_IO, "cannot open '%s'", path);
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 65536;
            uint8_t *p = realloc(data, nc);
            if (!p) {
                free(data);
                fclose(f);
                return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "reading '%s'", path);
            }
            data = p;
            cap = nc;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(data);
        return MSBNB_FAIL(MSBNB_ERR_IO, "reading '%s' failed", path);
    }
    tensor_loc *loc = calloc((size_t)(o->n_tensors > 0 ? o->n_tensors : 1), sizeof *loc);
    if (!loc) {
        free(data);
        return MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "tensor table");
    }
    int64_t step = 0;
    msbnb_status st = parse_and_check(o, data, len, &step, loc);
    if (st == MSBNB_OK) {
        for (int i = 0; i < o->n_tensors; i++) {
            optim_tensor *t = &o->t[i];
            if (t->is8bit) {
                memcpy(t->qm, data + loc[i].off_a, t->n);
                memcpy(t->qv, data + loc[i].off_b, t->n);
                memcpy(t->am, data + loc[i].off_c, t->n_blocks * sizeof(float));
                memcpy(t->av, data + loc[i].off_d, t->n_blocks * sizeof(float));
            } else {
                memcpy(t->m, data + loc[i].off_a, t->n * sizeof(float));
                memcpy(t->v, data + loc[i].off_b, t->n * sizeof(float));
            }
        }
        o->step = step;
    }
    free(loc);
    free(data);
    return st;
}
