/* bench_tokenizer.c — tokenizer encode speed: MB/s of English text (../shared/data/austen.txt) on one
 * core, for the real tokenizers of ../shared/tokenizers, beside the Hugging Face tokenizers library
 * encoding the same text with the same tokenizer.json in the same run (bench/hf_tokenizers_peer.py,
 * when the interop venv ~/.cache/msbnb-venv exists). Both sides hash their ids: the line says
 * whether they agree on all of them. Target: >= 5 MB/s and >= 1.0 x HF. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <msbnb/tokenizer.h>

#include "bench.h"

#define TOK_DIR MSBNB_SHARED_DIR "/tokenizers/"
#define TEXT MSBNB_SHARED_DIR "/data/austen.txt"
#define PEER MSBNB_SOURCE_DIR "/bench/hf_tokenizers_peer.py"

static const char *const names[] = {"gpt-2", "llama-bpe", "llama-spm", "mistral-v3"};
#define N_TOK (sizeof names / sizeof names[0])

static void cpu_name(char *out, size_t cap) {
    snprintf(out, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c += 2;
                c[strcspn(c, "\n")] = '\0';
                snprintf(out, cap, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

static uint64_t fnv64(const int32_t *ids, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint32_t)ids[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

typedef struct {
    double mbs;
    size_t n_ids;
    uint64_t hash;
} result;

int bench_tokenizer(int quick) {
    FILE *f = fopen(TEXT, "rb");
    if (!f) {
        printf("tokenizer: %s missing, skipped\n", TEXT);
        return 0;
    }
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = (char *)malloc(len + 1);
    if (!text || fread(text, 1, len, f) != len) {
        fclose(f);
        free(text);
        return 1;
    }
    fclose(f);
    if (quick && len > (1u << 20)) { /* 1 MiB, cut at a line end (valid UTF-8) */
        len = 1u << 20;
        while (len > 0 && text[len - 1] != '\n') len--;
    }
    text[len] = '\0';
    const int repeats = quick ? 1 : 3;
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    printf("\n== tokenizer encode: %s (%.2f MB of English text), one core of %s; best of %d, thread CPU time\n",
           quick ? "austen.txt head" : "austen.txt", (double)len / 1e6, cpu, repeats);

    result ours[N_TOK], hf[N_TOK];
    memset(hf, 0, sizeof hf);
    int rc = 0;
    for (size_t k = 0; k < N_TOK; k++) {
        msbnb_tokenizer *tok = NULL;
        ours[k].mbs = 0;
        char path[512];
        snprintf(path, sizeof path, TOK_DIR "%s", names[k]);
        if (msbnb_tokenizer_load(path, 0, &tok) != MSBNB_OK) {
            printf("  %s: %s\n", names[k], msbnb_last_error());
            rc = 1;
            continue;
        }
        double best = 1e30;
        for (int r = 0; r < repeats; r++) {
            int32_t *ids = NULL;
            size_t n = 0;
            double t0 = bench_thread_cpu_now();
            msbnb_status st = msbnb_tokenizer_encode_alloc(tok, text, len, 0, &ids, &n);
            double dt = bench_thread_cpu_now() - t0;
            if (st != MSBNB_OK) {
                printf("  %s: %s\n", names[k], msbnb_last_error());
                rc = 1;
                break;
            }
            if (dt < best) best = dt;
            ours[k].n_ids = n;
            ours[k].hash = fnv64(ids, n);
            free(ids);
        }
        ours[k].mbs = best > 0 ? (double)len / best / 1e6 : 0;
        msbnb_tokenizer_free(tok);
    }

    /* the peer: HF tokenizers on the same text, same core count */
    int have_peer = 0;
    const char *home = getenv("HOME");
    char py[512], tmp[] = "/tmp/msbnb-bench-text-XXXXXX";
    snprintf(py, sizeof py, "%s/.cache/msbnb-venv/bin/python", home ? home : "");
    if (access(py, X_OK) == 0) {
        int fd = mkstemp(tmp);
        if (fd >= 0 && write(fd, text, len) == (ssize_t)len) {
            char cmd[4096];
            int off = snprintf(cmd, sizeof cmd, "%s %s %s %d", py, PEER, tmp, repeats);
            for (size_t k = 0; k < N_TOK; k++) off += snprintf(cmd + off, sizeof cmd - (size_t)off, " " TOK_DIR "%s", names[k]);
            FILE *p = popen(cmd, "r");
            char line[512];
            while (p && fgets(line, sizeof line, p)) {
                char name[64];
                double mbs;
                size_t n;
                unsigned long long h;
                if (sscanf(line, "%63s %lf %zu %llu", name, &mbs, &n, &h) != 4) continue;
                for (size_t k = 0; k < N_TOK; k++)
                    if (!strcmp(name, names[k])) {
                        hf[k].mbs = mbs;
                        hf[k].n_ids = n;
                        hf[k].hash = (uint64_t)h;
                        have_peer = 1;
                    }
            }
            if (p) pclose(p);
        }
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
    }
    printf("  %-12s %10s %10s %12s %9s %8s  %s\n", "tokenizer", "msbnb MB/s", "HF MB/s", "msbnb / HF", "ids", "target",
           "same ids as HF");
    for (size_t k = 0; k < N_TOK; k++) {
        char hfs[32] = "-", ratio[32] = "-";
        const char *same = "(no venv)";
        if (hf[k].mbs > 0) {
            snprintf(hfs, sizeof hfs, "%.2f", hf[k].mbs);
            snprintf(ratio, sizeof ratio, "%.2f x", ours[k].mbs / hf[k].mbs);
            same = (hf[k].n_ids == ours[k].n_ids && hf[k].hash == ours[k].hash) ? "yes" : "NO";
        }
        int met = ours[k].mbs >= 5.0 && (hf[k].mbs <= 0 || ours[k].mbs >= hf[k].mbs);
        printf("  %-12s %10.2f %10s %12s %9zu %8s  %s\n", names[k], ours[k].mbs, hfs, ratio, ours[k].n_ids,
               met ? "met" : "MISSED", same);
    }
    if (!have_peer) printf("  (HF tokenizers not measured: no interop venv at %s)\n", py);
    printf("  engine: msbnb tokenizer (PCRE2 JIT pre-tokenizer, BPE with a per-call word cache); peer: HF tokenizers "
           "(Rust, RAYON_NUM_THREADS=1), process CPU time\n");
    free(text);
    return rc;
}
