/* cli_atomic.c — output directories committed in one rename (see cli_atomic.h). */
#define _GNU_SOURCE /* renameat2, RENAME_EXCHANGE */
#include "cli_atomic.h"

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

static msbnb_status io_fail(char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return MSBNB_ERR_IO;
}

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

void cli_rmtree(const char *dir) {
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
            if (p) cli_rmtree(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

char *cli_read_file(const char *path, size_t max, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && (!max || (size_t)n <= max) &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = 0;
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

bool cli_same_or_inside(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    if (!realpath(a, ra)) return false;
    if (!realpath(b, rb)) {
        /* b does not exist yet: compare its parent */
        char *parent = NULL, *base = NULL;
        if (!split_path(b, &parent, &base)) return false;
        bool r = realpath(parent, rb) != NULL;
        free(parent), free(base);
        if (!r) return false;
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
        else if (path) cli_rmtree(path);
        free(path);
    }
    free(prefix);
    closedir(d);
}

msbnb_status cli_atomic_begin(cli_atomic *a, const char *final, char *err, size_t cap) {
    memset(a, 0, sizeof *a);
    char *parent = NULL, *base = NULL;
    if (!split_path(final, &parent, &base)) return io_fail(err, cap, "%s: not a directory name", final);
    msbnb_status st = MSBNB_OK;
    struct stat sb;
    if (stat(parent, &sb) != 0 || !S_ISDIR(sb.st_mode))
        st = io_fail(err, cap, "%s: parent directory %s does not exist", final, parent);
    else {
        clean_stale(parent, base, final);
        if (stat(final, &sb) == 0 && !S_ISDIR(sb.st_mode))
            st = io_fail(err, cap, "%s: exists and is not a directory", final);
    }
    if (st == MSBNB_OK) {
        a->final = dup_printf("%s", final);
        a->tmp = dup_printf("%s/" TMP_PREFIX "%s.%ld", parent, base, (long)getpid());
        if (!a->final || !a->tmp) st = io_fail(err, cap, "%s: out of memory", final);
        else {
            cli_rmtree(a->tmp); /* our own pid's leftover from an earlier commit in this run */
            if (mkdir(a->tmp, 0777) != 0)
                st = io_fail(err, cap, "%s: cannot create directory: %s", a->tmp, strerror(errno));
        }
    }
    if (st != MSBNB_OK) cli_atomic_free(a);
    free(parent), free(base);
    return st;
}

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

msbnb_status cli_atomic_commit(cli_atomic *a, char *err, size_t cap) {
    if (!a->tmp) return io_fail(err, cap, "internal: commit without a temporary directory");
    if (!sync_tree(a->tmp)) return io_fail(err, cap, "%s: fsync failed: %s", a->tmp, strerror(errno));
    struct stat sb;
    if (stat(a->final, &sb) != 0) {
        if (rename(a->tmp, a->final) != 0)
            return io_fail(err, cap, "%s: cannot rename %s into place: %s", a->final, a->tmp, strerror(errno));
    } else if (renameat2(AT_FDCWD, a->tmp, AT_FDCWD, a->final, RENAME_EXCHANGE) != 0) {
        /* no exchange here (EINVAL / ENOSYS): old aside, new in place */
        char *old = dup_printf("%s.old", a->tmp);
        if (!old) return io_fail(err, cap, "%s: out of memory", a->final);
        if (rename(a->final, old) != 0 || rename(a->tmp, a->final) != 0) {
            int e = errno;
            if (stat(a->final, &sb) != 0) rename(old, a->final); /* put the old output back */
            free(old);
            return io_fail(err, cap, "%s: cannot rename %s into place: %s", a->final, a->tmp, strerror(e));
        }
        sync_parent(a->final);
        cli_rmtree(old);
        free(old);
        free(a->tmp);
        a->tmp = NULL;
        return MSBNB_OK;
    }
    sync_parent(a->final);
    cli_rmtree(a->tmp); /* the previous output (after an exchange) or nothing */
    free(a->tmp);
    a->tmp = NULL;
    return MSBNB_OK;
}

void cli_atomic_abort(cli_atomic *a) {
    if (a->tmp) cli_rmtree(a->tmp);
    free(a->tmp);
    a->tmp = NULL;
}

void cli_atomic_free(cli_atomic *a) {
    cli_atomic_abort(a);
    free(a->final);
    a->final = NULL;
}
