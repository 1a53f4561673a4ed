/* test_parsers_scale.c — the parsers stay linear on inputs far larger than real checkpoints
 * (issue #15: the safetensors entry offset scan, the __metadata__ insertion sort and the index
 * lookups were O(n^2): 20k tensors took 70 s, 200k descending metadata keys over 60 s).
 * The checks are on the results (counts, lookups, order); ctest's TIMEOUT on this test (300 s,
 * tests/io/tests.cmake: room for ASan on a loaded 2-core host, where it takes ~5-30 s) is the
 * generous bound an O(n^2) parser (hours at these sizes) breaks by orders of magnitude.
 * Timings against the limits are in `msbnb_bench parsers`. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "test_scratch.h"

#include <msbnb/io.h>
#include <sys/stat.h>
#include <unistd.h>

/* A safetensors file listing n tensors in descending name order, tensor k holding one F32 k (or
 * zero-size entries when zero): malloc'ed, *len bytes. meta_keys > 0: that many __metadata__ keys,
 * descending. */
static unsigned char *make_file(size_t n, size_t meta_keys, int zero, size_t *len) {
    size_t cap = 64 + n * 96 + meta_keys * 32 + n * 4;
    unsigned char *buf = malloc(cap);
    if (!buf) return NULL;
    char *h = (char *)buf + 8;
    size_t p = (size_t)sprintf(h, "{");
    if (meta_keys) {
        p += (size_t)sprintf(h + p, "\"__metadata__\":{");
        for (size_t i = 0; i < meta_keys; i++)
            p += (size_t)sprintf(h + p, "%s\"k%07zu\":\"v%zu\"", i ? "," : "", meta_keys - 1 - i, meta_keys - 1 - i);
        p += (size_t)sprintf(h + p, "}%s", n ? "," : "");
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = n - 1 - i; /* descending names; data in ascending k: offsets not in name order */
        if (zero)
            p += (size_t)sprintf(h + p, "%s\"t%07zu\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                                 i ? "," : "", k);
        else
            p += (size_t)sprintf(h + p, "%s\"t%07zu\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%zu,%zu]}",
                                 i ? "," : "", k, 4 * k, 4 * k + 4);
    }
    p += (size_t)sprintf(h + p, "}");
    for (int b = 0; b < 8; b++) buf[b] = (unsigned char)((uint64_t)p >> (8 * b));
    float *data = (float *)(h + p);
    for (size_t k = 0; !zero && k < n; k++) {
        float v = (float)k;
        memcpy((char *)data + 4 * k, &v, 4);
    }
    *len = 8 + p + (zero ? 0 : 4 * n);
    return buf;
}

TEST(many_tensors) {
    size_t n = 200000, len = 0;
    unsigned char *buf = make_file(n, 0, 0, &len);
    msbnb_safetensors *f = NULL;
    CHECK(buf && msbnb_safetensors_open_memory(buf, len, "many", &f) == MSBNB_OK);
    CHECK_EQ_INT((long long)msbnb_safetensors_count(f), (long long)n);
    msbnb_tensor_info t;
    const size_t probe[] = {0, 1, 12345, 199999};
    for (size_t i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%07zu", probe[i]);
        float v = -1;
        CHECK(msbnb_safetensors_find(f, name, &t) == MSBNB_OK && t.data);
        if (t.data) memcpy(&v, t.data, 4);
        CHECK_MSG_(v == (float)probe[i], "%s holds %g", name, (double)v);
    }
    /* index order is name order */
    CHECK(msbnb_safetensors_get(f, 0, &t) == MSBNB_OK && !strcmp(t.name, "t0000000"));
    msbnb_safetensors_close(f);
    free(buf);
    /* 1M zero-size entries (the 1M case, ~60 MB of header) */
    buf = make_file(1000000, 0, 1, &len);
    f = NULL;
    CHECK(buf && msbnb_safetensors_open_memory(buf, len, "zero", &f) == MSBNB_OK);
    CHECK_EQ_INT((long long)msbnb_safetensors_count(f), 1000000);
    msbnb_safetensors_close(f);
    free(buf);
}

TEST(many_metadata_keys) {
    size_t n = 200000, len = 0;
    unsigned char *buf = make_file(0, n, 0, &len);
    msbnb_safetensors *f = NULL;
    CHECK(buf && msbnb_safetensors_open_memory(buf, len, "meta", &f) == MSBNB_OK);
    CHECK_EQ_INT((long long)msbnb_safetensors_metadata_count(f), (long long)n);
    const char *k0 = NULL, *v = msbnb_safetensors_metadata(f, "k0123456");
    CHECK(v && !strcmp(v, "v123456"));
    CHECK(msbnb_safetensors_metadata_get(f, 0, &k0, NULL) == MSBNB_OK && k0 && !strcmp(k0, "k0000000"));
    /* every key looked up by name (a linear lookup made this loop quadratic: found by the
     * fuzzers' large seeds) */
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = NULL;
        if (msbnb_safetensors_metadata_get(f, i, &k, NULL) == MSBNB_OK && msbnb_safetensors_metadata(f, k)) found++;
    }
    CHECK_EQ_INT((long long)found, (long long)n);
    CHECK(msbnb_safetensors_metadata(f, "k9999999") == NULL);
    msbnb_safetensors_close(f);
    free(buf);
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(p, 1, n, f) == n);
    if (f) fclose(f);
}

/* A sharded model directory: 2 x 10k tensors and an index naming all 20k. */
TEST(sharded_directory) {
    char dir[64];
    CHECK(test_scratch_make(dir, sizeof dir, "/tmp", "msbnb_scale") == 0);
    size_t n = 10000, len = 0;
    char path[512];
    for (int s = 0; s < 2; s++) {
        unsigned char *buf = make_file(n, 0, 0, &len);
        /* shard s: names t0000000.. -> prefix the shard number so the names differ */
        char *h = (char *)buf + 8;
        for (char *q = h; (q = strstr(q, "\"t")); q += 2) q[1] = s ? 'u' : 't';
        snprintf(path, sizeof path, "%s/model-0000%d-of-00002.safetensors", dir, s + 1);
        write_file(path, buf, len);
        free(buf);
    }
    size_t cap = 64 + 2 * n * 64, p = 0;
    char *idx = malloc(cap);
    p += (size_t)sprintf(idx, "{\"metadata\": {}, \"weight_map\": {");
    for (int s = 0; s < 2; s++)
        for (size_t k = 0; k < n; k++)
            p += (size_t)sprintf(idx + p, "%s\"%c%07zu\": \"model-0000%d-of-00002.safetensors\"", s || k ? ", " : "",
                                 s ? 'u' : 't', k, s + 1);
    p += (size_t)sprintf(idx + p, "}}");
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    write_file(path, idx, p);
    free(idx);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_file(path, "{}", 2);
    msbnb_checkpoint *ck = NULL;
    CHECK_MSG_(msbnb_checkpoint_open(dir, &ck) == MSBNB_OK, "%s", msbnb_last_error());
    CHECK_EQ_INT((long long)msbnb_checkpoint_count(ck), (long long)(2 * n));
    msbnb_tensor_info t;
    CHECK(msbnb_checkpoint_find(ck, "u0009999", &t) == MSBNB_OK);
    msbnb_checkpoint_close(ck);
    CHECK(test_scratch_remove(dir) == 0);
}

int main(void) {
    RUN(many_tensors);
    RUN(many_metadata_keys);
    RUN(sharded_directory);
    return test_report();
}
