/* outdir.c — output directories committed in one rename (msbnb_outdir_*, io.h), and the model
 * directory helpers around them: "would the output overwrite the input", side-file copies.
 *
 * A run writes everything into a temporary directory beside the target,
 *     <parent>/.msbnb-tmp-<name>.<pid>
 * then commit fsyncs every file in it and the directory, and swaps it into place in one
 * renameat2(RENAME_EXCHANGE) (or a plain rename when the target does not exist yet); the previous
 * output, now under the temporary name, is then removed. A killed run leaves at most a temporary
 * directory under that recognisable prefix; the next begin for the same target removes those whose
 * process is gone. Where the file system cannot exchange, the old output is first renamed to
 * <temporary>.old, and a later run puts it back if the target is then missing.
 *
 * Messages start with the path they are about (no function prefix): the tool prints them after
 * its own "msbnb CMD: " as it always did. */
#define _GNU_SOURCE /* renameat2, RENAME_EXCHANGE */
#include "io_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define TMP_PREFIX ".msbnb-tmp-"

struct msbnb_outdir {
    char *final; /* the target directory */
    char *tmp;   /* where this run writes; NULL after commit */
};

/* An I/O failure with a message that starts with its path (no "function: " prefix). */
#define OUT_FAIL(st, ...) msbnb__fail((st), NULL, __VA_ARGS__)

static char *dup_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* "dir/name" -> parent "dir" (or "."), base "name"; trailing slashes ignored. Malloc'ed. */
static bool split_path(const char *path, char **parent, char **base) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t s = n;
    while (s > 0 && path[s - 1] != '/') s--;
    *base = dup_printf("%.*s", (int)(n - s), path + s);
    *parent = s == 0 ? dup_printf(".") : s == 1 ? dup_printf("/") : dup_printf("%.*s", (int)(s - 1), path);
    if (*parent && *base && (*base)[0]) return true;
    free(*parent), free(*base);
    *parent = *base = NULL;
    return false;
}

void msbnb__rmtree(const char *dir) {
    struct stat sb;
    if (lstat(dir, &sb) != 0) return;
    if (!S_ISDIR(sb.st_mode)) {
        unlink(dir);
        return;
    }
    DIR *d = opendir(dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *p = dup_printf("%s/%s", dir, e->d_name);
            if (p) msbnb__rmtree(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

int msbnb_path_same_or_inside(const char *a, const char *b) {
    if (!a || !b) return 0;
    char ra[PATH_MAX], rb[PATH_MAX];
    if (!realpath(a, ra)) return 0;
    if (!realpath(b, rb)) {
        /* b does not exist yet: compare its parent */
        char *parent = NULL, *base = NULL;
        if (!split_path(b, &parent, &base)) return 0;
        bool r = realpath(parent, rb) != NULL;
        free(parent), free(base);
        if (!r) return 0;
    }
    size_t n = strlen(ra);
    return !strcmp(ra, rb) || (!strncmp(ra, rb, n) && rb[n] == '/');
}

/* Remove temporaries of target `base` in `parent` whose process is gone; put back an old output
 * a fallback commit left aside when the target is missing. */
static void clean_stale(const char *parent, const char *base, const char *final) {
    DIR *d = opendir(parent);
    if (!d) return;
    char *prefix = dup_printf(TMP_PREFIX "%s.", base);
    size_t pl = prefix ? strlen(prefix) : 0;
    for (struct dirent *e; prefix && (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, pl)) continue;
        const char *p = e->d_name + pl;
        char *end = NULL;
        long pid = strtol(p, &end, 10);
        if (end == p || pid <= 0 || (*end && strcmp(end, ".old"))) continue;
        if (pid != (long)getpid() && kill((pid_t)pid, 0) == 0) continue; /* a live run's */
        char *path = dup_printf("%s/%s", parent, e->d_name);
        struct stat sb;
        if (path && !strcmp(end, ".old") && stat(final, &sb) != 0) rename(path, final);
        else if (path) msbnb__rmtree(path);
        free(path);
    }
    free(prefix);
    closedir(d);
}

msbnb_status msbnb_outdir_begin(const char *final, msbnb_outdir **out) {
    if (out) *out = NULL;
    if (!final || !out) return MSBNB_FAIL(MSBNB_ERR_INVALID_ARG, "NULL argument");
    char *parent = NULL, *base = NULL;
    if (!split_path(final, &parent, &base)) return OUT_FAIL(MSBNB_ERR_IO, "%s: not a directory name", final);
    msbnb_status st = MSBNB_OK;
    msbnb_outdir *a = calloc(1, sizeof *a);
    struct stat sb;
    if (!a)
        st = OUT_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "%s: out of memory", final);
    else if (stat(parent, &sb) != 0 || !S_ISDIR(sb.st_mode))
        st = OUT_FAIL(MSBNB_ERR_IO, "%s: parent directory %s does not exist", final, parent);
    else {
        clean_stale(parent, base, final);
        if (stat(final, &sb) == 0 && !S_ISDIR(sb.st_mode))
            st = OUT_FAIL(MSBNB_ERR_IO, "%s: exists and is not a directory", final);
    }
    if (st == MSBNB_OK) {
        a->final = dup_printf("%s", final);
        a->tmp = dup_printf("%s/" TMP_PREFIX "%s.%ld", parent, base, (long)getpid());
        if (!a->final || !a->tmp) st = OUT_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "%s: out of memory", final);
        else {
            msbnb__rmtree(a->tmp); /* our own pid's leftover from an earlier commit in this run */
            if (mkdir(a->tmp, 0777) != 0)
                st = OUT_FAIL(MSBNB_ERR_IO, "%s: cannot create directory: %s", a->tmp, strerror(errno));
        }
    }
    if (st != MSBNB_OK) {
        if (a) free(a->tmp), a->tmp = NULL; /* nothing was created, or mkdir failed */
        msbnb_outdir_free(a);
    } else {
        *out = a;
    }
    free(parent), free(base);
    return st;
}

const char *msbnb_outdir_path(const msbnb_outdir *d) { return d ? d->tmp : NULL; }
const char *msbnb_outdir_final(const msbnb_outdir *d) { return d ? d->final : NULL; }

/* fsync every regular file under dir, then dir itself. */
static bool sync_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return false;
    bool ok = true;
    for (struct dirent *e; ok && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = dup_printf("%s/%s", dir, e->d_name);
        struct stat sb;
        if (!p || lstat(p, &sb) != 0) ok = false;
        else if (S_ISDIR(sb.st_mode)) ok = sync_tree(p);
        else if (S_ISREG(sb.st_mode)) {
            int fd = open(p, O_RDONLY);
            ok = fd >= 0 && fsync(fd) == 0;
            if (fd >= 0) close(fd);
        }
        free(p);
    }
    closedir(d);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    ok = ok && fd >= 0 && fsync(fd) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

static void sync_parent(const char *path) {
    char *parent = NULL, *base = NULL;
    if (!split_path(path, &parent, &base)) return;
    int fd = open(parent, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(parent), free(base);
}

msbnb_status msbnb_outdir_commit(msbnb_outdir *a) {
    if (!a) return MSBNB_FAIL(MSBNB_ERR_INVALID_ARG, "NULL argument");
    if (!a->tmp) return MSBNB_FAIL(MSBNB_ERR_INVALID_ARG, "%s: already committed", a->final);
    if (!sync_tree(a->tmp)) return OUT_FAIL(MSBNB_ERR_IO, "%s: fsync failed: %s", a->tmp, strerror(errno));
    struct stat sb;
    if (stat(a->final, &sb) != 0) {
        if (rename(a->tmp, a->final) != 0)
            return OUT_FAIL(MSBNB_ERR_IO, "%s: cannot rename %s into place: %s", a->final, a->tmp, strerror(errno));
    } else if (renameat2(AT_FDCWD, a->tmp, AT_FDCWD, a->final, RENAME_EXCHANGE) != 0) {
        /* no exchange here (EINVAL / ENOSYS): old aside, new in place */
        char *old = dup_printf("%s.old", a->tmp);
        if (!old) return OUT_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "%s: out of memory", a->final);
        if (rename(a->final, old) != 0 || rename(a->tmp, a->final) != 0) {
            int e = errno;
            if (stat(a->final, &sb) != 0) rename(old, a->final); /* put the old output back */
            free(old);
            return OUT_FAIL(MSBNB_ERR_IO, "%s: cannot rename %s into place: %s", a->final, a->tmp, strerror(e));
        }
        sync_parent(a->final);
        msbnb__rmtree(old);
        free(old);
        free(a->tmp);
        a->tmp = NULL;
        return MSBNB_OK;
    }
    sync_parent(a->final);
    msbnb__rmtree(a->tmp); /* the previous output (after an exchange) or nothing */
    free(a->tmp);
    a->tmp = NULL;
    return MSBNB_OK;
}

void msbnb_outdir_free(msbnb_outdir *a) {
    if (!a) return;
    if (a->tmp) msbnb__rmtree(a->tmp);
    free(a->tmp);
    free(a->final);
    free(a);
}

/* ================================================================ side files */

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !memcmp(s + a - b, suf, b);
}

/* src to dst through "<dst>.msbnb-tmp" and a rename. */
static msbnb_status copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb");
    if (!in) return OUT_FAIL(MSBNB_ERR_IO, "%s: cannot open: %s", src, strerror(errno));
    char *tmp = dup_printf("%s.msbnb-tmp", dst);
    if (!tmp) {
        fclose(in);
        return OUT_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    FILE *out = fopen(tmp, "wb");
    msbnb_status st = MSBNB_OK;
    if (!out) st = OUT_FAIL(MSBNB_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    char buf[1 << 16];
    size_t k;
    while (st == MSBNB_OK && (k = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, k, out) != k) st = OUT_FAIL(MSBNB_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    if (st == MSBNB_OK && ferror(in)) st = OUT_FAIL(MSBNB_ERR_IO, "%s: read failed", src);
    if (out && fclose(out) != 0 && st == MSBNB_OK) st = OUT_FAIL(MSBNB_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    fclose(in);
    if (st == MSBNB_OK && rename(tmp, dst) != 0) st = OUT_FAIL(MSBNB_ERR_IO, "%s: rename failed: %s", dst, strerror(errno));
    if (st != MSBNB_OK) unlink(tmp);
    free(tmp);
    return st;
}

msbnb_status msbnb_model_dir_copy_side_files(const char *in_dir, const char *out_dir) {
    if (!in_dir || !out_dir) return MSBNB_FAIL(MSBNB_ERR_INVALID_ARG, "NULL argument");
    DIR *d = opendir(in_dir);
    if (!d) return OUT_FAIL(MSBNB_ERR_IO, "%s: cannot list directory: %s", in_dir, strerror(errno));
    msbnb_status st = MSBNB_OK;
    for (struct dirent *e; st == MSBNB_OK && (e = readdir(d));) {
        const char *n = e->d_name;
        if (n[0] == '.' || ends_with(n, ".safetensors") || !strcmp(n, "model.safetensors.index.json") ||
            !strcmp(n, "config.json"))
            continue;
        char *src = msbnb__path_join(in_dir, n), *dst = msbnb__path_join(out_dir, n);
        struct stat sb;
        if (!src || !dst) st = OUT_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "out of memory");
        else if (stat(src, &sb) == 0 && S_ISREG(sb.st_mode)) st = copy_file(src, dst);
        free(src);
        free(dst);
    }
    closedir(d);
    return st;
}
