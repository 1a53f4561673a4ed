/* bench_parsers.c — section 'parsers': the safetensors header parser on inputs far past real
 * checkpoints (issue #15: the entry offset scan and the metadata insertion sort made these O(n^2),
 * 70 s for 20k tensors). Each figure is quoted against its limit: a 1M-tensor header opens in
 * under 2 s, a 200k-key __metadata__ (ascending and descending keys) in under 1 s. The headers are
 * built in memory and opened with msbnb_safetensors_open_memory (the parser alone, no disk). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, CLOCK_THREAD_CPUTIME_ID */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msbnb/io.h>

#include "bench.h"

/* A safetensors file whose header lists n zero-size tensors (or, meta, n metadata keys in
 * ascending or descending order and no tensor): malloc'ed, *len bytes. */
static unsigned char *make_header(size_t n, int meta, int descending, size_t *len) {
    size_t cap = 64 + n * 72;
    unsigned char *buf = malloc(cap);
    if (!buf) return NULL;
    char *h = (char *)buf + 8;
    size_t p = 0;
    p += (size_t)sprintf(h + p, meta ? "{\"__metadata__\":{" : "{");
    for (size_t i = 0; i < n; i++) {
        size_t k = descending ? n - 1 - i : i;
        if (meta) p += (size_t)sprintf(h + p, "%s\"key%08zu\":\"v\"", i ? "," : "", k);
        else p += (size_t)sprintf(h + p, "%s\"t%08zu\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                                  i ? "," : "", k);
    }
    p += (size_t)sprintf(h + p, meta ? "}}" : "}");
    for (int b = 0; b < 8; b++) buf[b] = (unsigned char)((uint64_t)p >> (8 * b));
    *len = 8 + p;
    return buf;
}

static double thread_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of this thread to open (and close) the header, *wall its wall-clock seconds; -1 when
 * it fails or holds the wrong count. CPU time is the figure: the parser is single-threaded, and on
 * a shared host wall time also counts the other processes' turns. */
static double time_open(size_t n, int meta, int descending, size_t *bytes, double *wall) {
    size_t len = 0;
    unsigned char *buf = make_header(n, meta, descending, &len);
    if (!buf) return -1;
    *bytes = len;
    msbnb_safetensors *f = NULL;
    double t0 = bench_now(), c0 = thread_cpu_seconds();
    msbnb_status st = msbnb_safetensors_open_memory(buf, len, "bench", &f);
    int ok = st == MSBNB_OK &&
             (meta ? msbnb_safetensors_metadata_count(f) == n : msbnb_safetensors_count(f) == n);
    msbnb_safetensors_close(f);
    double t = thread_cpu_seconds() - c0;
    *wall = bench_now() - t0;
    if (st != MSBNB_OK) fprintf(stderr, "parsers: %s\n", msbnb_last_error());
    free(buf);
    return ok ? t : -1;
}

/* "model name" of /proc/cpuinfo, or "unknown CPU". */
static void cpu_name(char *buf, size_t cap) {
    snprintf(buf, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && c) {
            c += 1 + (c[1] == ' ');
            c[strcspn(c, "\n")] = '\0';
            snprintf(buf, cap, "%s", c);
            break;
        }
    }
    if (f) fclose(f);
}

int bench_parsers(int quick) {
    const size_t n_tensors = quick ? 100000 : 1000000, n_keys = quick ? 20000 : 200000;
    char cpu[128];
    cpu_name(cpu, sizeof cpu);
    printf("\n== parsers: safetensors header open (msbnb_safetensors_open_memory: cJSON + msbnb checks), one "
           "thread, %s\n", cpu);
    printf("%-34s %8s %9s %9s %7s %7s\n", "input", "MB", "CPU s", "wall s", "limit", "ratio");
    struct {
        const char *what;
        size_t n;
        int meta, desc;
        double limit;
    } cases[] = {
        {"tensors (zero-size entries)", n_tensors, 0, 0, 2.0},
        {"__metadata__ keys, ascending", n_keys, 1, 0, 1.0},
        {"__metadata__ keys, descending", n_keys, 1, 1, 1.0},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t bytes = 0;
        double wall = 0, t = time_open(cases[i].n, cases[i].meta, cases[i].desc, &bytes, &wall);
        char label[64];
        snprintf(label, sizeof label, "%zuk %s", cases[i].n / 1000, cases[i].what);
        if (t < 0) {
            printf("%-34s failed\n", label);
            rc = 1;
            continue;
        }
        printf("%-34s %8.1f %9.3f %9.3f %6.1fs %7.2f%s\n", label, (double)bytes / 1e6, t, wall, cases[i].limit,
               t / cases[i].limit, t < cases[i].limit ? "" : "  OVER THE LIMIT");
        bench_record("parsers", label, "", 0, 1, t, "CPU s", "time limit", cases[i].limit, "");
        if (!quick && t >= cases[i].limit) rc = 1;
    }
    return rc;
}
