/* make_large_seeds.c — large fuzz seeds, generated at fuzz time (not kept in the repo): the
 * corpora in tests/fuzz/corpus are small hand-made files, and libFuzzer grows inputs slowly, so
 * without these the fuzzers never reach the sizes where a quadratic parser shows (issue #15: the
 * audit's fuzzers capped inputs at 64 KB). scripts/fuzz.sh runs the targets with -max_len 8 MiB.
 *
 *   make_large_seeds DIR   writes DIR/{safetensors,config,adapter_dir,state}/large_*           */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *buf;
static size_t len, cap;

static void put(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void put(const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(buf + len, cap - len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < cap - len) {
            len += (size_t)n;
            return;
        }
        cap = cap ? 2 * cap : 1 << 20;
        buf = realloc(buf, cap);
        if (!buf) exit(1);
    }
}

static void save(const char *dir, const char *sub, const char *name, const void *pre, size_t npre) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || (npre && fwrite(pre, 1, npre, f) != npre) || fwrite(buf, 1, len, f) != len || fclose(f) != 0) exit(1);
    len = 0;
}

/* safetensors: 8-byte length, then the header in buf */
static void save_st(const char *dir, const char *name) {
    uint8_t n8[8];
    for (int i = 0; i < 8; i++) n8[i] = (uint8_t)((uint64_t)len >> (8 * i));
    save(dir, "safetensors", name, n8, 8);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    const char *d = argv[1];
    mkdir(d, 0777);
    const int N = 100000;
    /* 100k zero-size tensors, names descending (the sort is not skipped) */
    put("{");
    for (int i = 0; i < N; i++) put("%s\"t%07d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}", i ? "," : "", N - i);
    put("}");
    save_st(d, "large_tensors_desc.safetensors");
    /* 100k metadata keys in descending order */
    put("{\"__metadata__\":{");
    for (int i = 0; i < N; i++) put("%s\"k%07d\":\"v\"", i ? "," : "", N - i);
    put("}}");
    save_st(d, "large_metadata_desc.safetensors");
    /* config.json with 100k keys and a 100k-element array */
    put("{\"num_hidden_layers\": 2, \"architectures\": [");
    for (int i = 0; i < N; i++) put("%s%d", i ? "," : "", i);
    put("]");
    for (int i = 0; i < N; i++) put(", \"key%d\": %d", i, i);
    put("}");
    save(d, "config", "large_config.json", NULL, 0);
    /* adapter directory: a config with 50k rank_pattern keys, no weights */
    char cfg_head[64];
    put("{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, \"rank_pattern\": {");
    for (int i = 0; i < N / 2; i++) put("%s\"model.layers.%d.self_attn.q_proj\": 2", i ? ", " : "", i);
    put("}}");
    uint32_t L = (uint32_t)len;
    memcpy(cfg_head, &L, 4); /* little-endian hosts only: this is a seed, any bytes are valid input */
    save(d, "adapter_dir", "large_rank_pattern.bin", cfg_head, 4);
    /* state.json padded with a megabyte of spaces */
    put("{\"step\": 1, \"rng\": \"0000000000000001\", \"dropout_step\": 1, \"seed\": 0, \"steps\": 2, \"batch\": 1, "
        "\"seq\": 2, \"lr\": 0.1");
    for (int i = 0; i < (1 << 20); i++) put(" ");
    put("}");
    save(d, "state", "large_state.json", NULL, 0);
    free(buf);
    return 0;
}
