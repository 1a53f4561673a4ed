/* bench_record.c — what every section needs to make its figures readable on any host: the CPU's
 * name, the engine that ran, and a machine-readable copy of every figure (JSON lines). */
#include "bench.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <msbnb/msbnb.h>

#include "kernels/onednn.h"

const char *bench_cpu_model(void) {
    static char name[128];
    if (name[0]) return name;
    snprintf(name, sizeof name, "unknown CPU");
    /* "model name" alone may be as vague as "AMD EPYC" in a VM: family and model numbers too */
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512], model[96] = "", family[16] = "?", num[16] = "?";
    while (f && fgets(line, sizeof line, f)) {
        const char *v = strchr(line, ':');
        if (!v) {
            if (model[0]) break; /* end of the first processor's block */
            continue;
        }
        v++;
        while (*v == ' ' || *v == '\t') v++;
        if (!strncmp(line, "model name", 10)) snprintf(model, sizeof model, "%.*s", (int)strcspn(v, "\n"), v);
        else if (!strncmp(line, "cpu family", 10)) snprintf(family, sizeof family, "%.*s", (int)strcspn(v, "\n"), v);
        else if (!strncmp(line, "model\t", 6)) snprintf(num, sizeof num, "%.*s", (int)strcspn(v, "\n"), v);
    }
    if (f) fclose(f);
    if (model[0]) snprintf(name, sizeof name, "%s (family %s model %s)", model, family, num);
    return name;
}

const char *bench_engine(void) {
    static char buf[192];
    snprintf(buf, sizeof buf, "msbnb level %s (SIMD %s), %s", msbnb_isa_name(msbnb_isa_current()),
             msbnb_isa_name(msbnb_isa_detected()), msbnb__od_version());
    return buf;
}

static FILE *jsonl;
static char jsonl_path[1024];

/* results.jsonl beside the bench binary (build/bench/), truncated at the start of a run. */
int bench_jsonl_open(const char *argv0) {
    const char *slash = strrchr(argv0, '/');
    if (slash) snprintf(jsonl_path, sizeof jsonl_path, "%.*s/results.jsonl", (int)(slash - argv0), argv0);
    else snprintf(jsonl_path, sizeof jsonl_path, "results.jsonl");
    jsonl = fopen(jsonl_path, "w");
    if (!jsonl) {
        fprintf(stderr, "bench: cannot write %s (figures are printed only)\n", jsonl_path);
        return -1;
    }
    return 0;
}

const char *bench_jsonl_path(void) { return jsonl ? jsonl_path : "(not written)"; }

void bench_jsonl_close(void) {
    if (jsonl) fclose(jsonl);
    jsonl = NULL;
}

/* JSON string body of s (quotes, backslashes and control characters escaped) into f */
static void put_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", (unsigned char)*s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

void bench_record(const char *section, const char *what, const char *shape, long long n, int threads, double value,
                  const char *unit, const char *limit_name, double limit_value, const char *impl) {
    if (!jsonl) return;
    fprintf(jsonl, "{\"section\":");
    put_str(jsonl, section);
    fprintf(jsonl, ",\"what\":");
    put_str(jsonl, what);
    fprintf(jsonl, ",\"shape\":");
    put_str(jsonl, shape ? shape : "");
    fprintf(jsonl, ",\"n\":%lld,\"threads\":%d,\"value\":%.6g,\"unit\":", n, threads, value);
    put_str(jsonl, unit);
    if (limit_name) {
        fprintf(jsonl, ",\"limit\":");
        put_str(jsonl, limit_name);
        fprintf(jsonl, ",\"limit_value\":%.6g,\"ratio\":%.4g", limit_value, limit_value > 0 ? value / limit_value : 0.0);
    }
    fprintf(jsonl, ",\"impl\":");
    put_str(jsonl, impl ? impl : "");
    fprintf(jsonl, ",\"cpu\":");
    put_str(jsonl, bench_cpu_model());
    fprintf(jsonl, ",\"engine\":");
    put_str(jsonl, bench_engine());
    fprintf(jsonl, "}\n");
    fflush(jsonl);
}
