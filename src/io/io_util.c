/* io_util.c — error messages on handles, untrusted-JSON parsing, atomic file writes. */
#define _POSIX_C_SOURCE 200809L
#define IO_API "msbnb io"
#include "io/io_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ================================================================ errors */

msbnb_status msbnb__io_fail(char *errbuf, msbnb_status st, const char *func, const char *fmt, ...) {
    char msg[IO_ERRMSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One line: a hostile name could smuggle a newline or control byte into the message. */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20) *p = '?';
    if (errbuf) snprintf(errbuf, IO_ERRMSG_CAP, "%s", msg);
    return msbnb__fail(st, func, "%s", msg);
}

char *msbnb__strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *msbnb__path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    while (a > 1 && dir[a - 1] == '/') a--;
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* ================================================================ UTF-8 and JSON */

bool msbnb__utf8_valid(const char *buf, size_t len, size_t *bad_offset) {
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t need;
        unsigned cp, min;
        if (c == 0) goto bad;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            need = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            need = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            goto bad;
        }
        if (len - i <= need) goto bad;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) goto bad;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) goto bad;
        i += need + 1;
    }
    return true;
bad:
    if (bad_offset) *bad_offset = i;
    return false;
}

/* Depth of [ and { outside strings; cJSON recurses once per level, so this bounds its stack. */
static bool json_depth_ok(const char *s, size_t len, int max_depth, size_t *bad_offset) {
    int depth = 0;
    bool in_string = false, escape = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (escape) escape = false;
            else if (c == '\\') escape = true;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth) {
                *bad_offset = i;
                return false;
            }
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

msbnb_status msbnb__json_parse(const char *text, size_t len, int max_depth, bool trailing_spaces_only,
                               cJSON **out, size_t *err_offset, const char **reason) {
    *out = NULL;
    *err_offset = 0;
    size_t bad = 0;
    if (!msbnb__utf8_valid(text, len, &bad)) {
        *err_offset = bad;
        *reason = "invalid UTF-8 or NUL byte";
        return MSBNB_ERR_FORMAT;
    }
    if (!json_depth_ok(text, len, max_depth, &bad)) {
        *err_offset = bad;
        *reason = "JSON nested too deeply";
        return MSBNB_ERR_FORMAT;
    }
    /* cJSON wants a NUL-terminated buffer it may read one byte past the value; give it a copy. */
    char *copy = malloc(len + 1);
    if (!copy) {
        *reason = "out of memory";
        return MSBNB_ERR_OUT_OF_MEMORY;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 0);
    if (!root) {
        *err_offset = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : 0;
        *reason = "JSON syntax error";
        free(copy);
        return MSBNB_ERR_FORMAT;
    }
    size_t pos = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : len;
    for (; pos < len; pos++) {
        char c = copy[pos];
        bool ws = trailing_spaces_only ? c == ' ' : (c == ' ' || c == '\t' || c == '\n' || c == '\r');
        if (!ws) {
            *err_offset = pos;
            *reason = "unexpected bytes after the JSON value";
            cJSON_Delete(root);
            free(copy);
            return MSBNB_ERR_FORMAT;
        }
    }
    free(copy);
    *out = root;
    return MSBNB_OK;
}

bool msbnb__json_int(const cJSON *item, int64_t lo, int64_t hi, int64_t *out) {
    if (!cJSON_IsNumber(item)) return false;
    double v = item->valuedouble;
    /* 2^53 bounds what a double holds exactly; every range we ask for lies inside it. */
    if (!(v >= (double)lo && v <= (double)hi) || v != floor(v) || fabs(v) > 9007199254740992.0) return false;
    *out = (int64_t)v;
    return true;
}

char *msbnb__json_print_pretty(const cJSON *item) {
    char *text = cJSON_Print(item);
    if (!text) return NULL;
    /* cJSON indents with tabs; raw tabs occur only as formatting (strings escape them) */
    size_t tabs = 0, n = strlen(text);
    for (const char *p = text; *p; p++) tabs += *p == '\t';
    char *out = malloc(n + tabs + 2);
    if (!out) {
        free(text);
        return NULL;
    }
    size_t k = 0;
    for (const char *p = text; *p; p++) {
        if (*p != '\t') out[k++] = *p;
        else if (p > text && p[-1] == ':') out[k++] = ' ';
        else out[k++] = ' ', out[k++] = ' ';
    }
    out[k++] = '\n';
    out[k] = '\0';
    free(text);
    return out;
}

cJSON *msbnb__json_float_number(double v, bool integral_as_int) {
    char buf[64], repr[64];
    float f = (float)v;
    if (isfinite(v) && (double)f == v) {
        for (int prec = 1; prec <= 9; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
            if (strtof(buf, NULL) == f) {
                v = strtod(buf, NULL);
                break;
            }
        }
    }
    if (!isfinite(v)) return cJSON_CreateNull();
    msbnb__python_float_repr(v, repr, sizeof repr);
    /* integral values stay integers ("lora_alpha": 16), as PEFT writes them */
    if (integral_as_int && v == floor(v) && fabs(v) < 1e15) snprintf(repr, sizeof repr, "%.0f", v);
    return cJSON_CreateRaw(repr);
}

/* ================================================================ files */

/* Remove "<dir>/.<base>.msbnb-tmp-<pid>-XXXXXX" files left by killed processes (pid gone): the
 * next write of the same file cleans up after a killed one. Linear in the directory's entries. */
static void remove_stale_tmp(const char *dest, size_t dir_len, const char *base) {
    char *dir = dir_len ? strndup(dest, dir_len) : msbnb__strdup(".");
    size_t pl = strlen(base) + sizeof "..msbnb-tmp-";
    char *prefix = malloc(pl);
    DIR *d = dir && prefix ? opendir(dir) : NULL;
    if (prefix) snprintf(prefix, pl, ".%s.msbnb-tmp-", base);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, pl - 1) != 0) continue;
        const char *p = e->d_name + pl - 1;
        char *end = NULL;
        long pid = strtol(p, &end, 10);
        if (end == p || *end != '-' || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive (or not ours to judge) */
        char *path = msbnb__path_join(dir, e->d_name);
        if (path) unlink(path);
        free(path);
    }
    if (d) closedir(d);
    free(prefix);
    free(dir);
}

msbnb_status msbnb__tmp_create(const char *dest, int *fd, char **tmp_path, char *errbuf) {
    *fd = -1;
    *tmp_path = NULL;
    const char *slash = strrchr(dest, '/');
    size_t dir_len = slash ? (size_t)(slash - dest + 1) : 0;
    const char *base = slash ? slash + 1 : dest;
    if (!*base) return IO_FAIL(errbuf, MSBNB_ERR_INVALID_ARG, "%s: not a file name", dest);
    remove_stale_tmp(dest, dir_len, base);
    size_t n = dir_len + 1 + strlen(base) + strlen(".msbnb-tmp--XXXXXX") + 24 + 1;
    char *tmp = malloc(n);
    if (!tmp) return IO_FAIL(errbuf, MSBNB_ERR_OUT_OF_MEMORY, "%s: out of memory", dest);
    /* the pid tells a later run whether the writer is gone (remove_stale_tmp) */
    snprintf(tmp, n, "%.*s.%s.msbnb-tmp-%ld-XXXXXX", (int)dir_len, dest, base, (long)getpid());
    int f = mkstemp(tmp);
    if (f < 0) {
        int e = errno;
        free(tmp);
        return IO_FAIL(errbuf, MSBNB_ERR_IO, "%s: cannot create a temporary file beside it: %s", dest, strerror(e));
    }
    *fd = f;
    *tmp_path = tmp;
    return MSBNB_OK;
}

msbnb_status msbnb__write_all(int fd, const void *buf, size_t n, const char *path, char *errbuf) {
    const char *p = buf;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t k = write(fd, p, chunk);
        if (k < 0) {
            if (errno == EINTR) continue;
            return IO_FAIL(errbuf, MSBNB_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        }
        if (k == 0) return IO_FAIL(errbuf, MSBNB_ERR_IO, "%s: write returned 0", path);
        p += k;
        n -= (size_t)k;
    }
    return MSBNB_OK;
}

static void fsync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : msbnb__strdup(".");
    if (!dir) return;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* best effort: some filesystems refuse fsync on directories */
        close(dfd);
    }
    free(dir);
}

msbnb_status msbnb__tmp_commit(int fd, const char *tmp_path, const char *dest, char *errbuf) {
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp_path);
        return IO_FAIL(errbuf, MSBNB_ERR_IO, "%s: fsync failed: %s", dest, strerror(e));
    }
    /* mkstemp makes 0600 files; give the result the usual permissions (umask applies). */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp_path);
        return IO_FAIL(errbuf, MSBNB_ERR_IO, "%s: close failed: %s", dest, strerror(e));
    }
    if (rename(tmp_path, dest) != 0) {
        int e = errno;
        unlink(tmp_path);
        return IO_FAIL(errbuf, MSBNB_ERR_IO, "%s: rename failed: %s", dest, strerror(e));
    }
    fsync_parent_dir(dest);
    return MSBNB_OK;
}

msbnb_status msbnb__write_file_atomic(const char *dest, const void *buf, size_t n, char *errbuf) {
    int fd;
    char *tmp;
    TRY(msbnb__tmp_create(dest, &fd, &tmp, errbuf));
    msbnb_status st = msbnb__write_all(fd, buf, n, dest, errbuf);
    if (st != MSBNB_OK) {
        close(fd);
        unlink(tmp);
    } else {
        st = msbnb__tmp_commit(fd, tmp, dest, errbuf);
    }
    free(tmp);
    return st;
}

msbnb_status msbnb__read_file(const char *path, size_t max_bytes, char **out, size_t *len, char *errbuf) {
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IO_FAIL(errbuf, MSBNB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return IO_FAIL(errbuf, MSBNB_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > max_bytes) {
        close(fd);
        return IO_FAIL(errbuf, MSBNB_ERR_FORMAT, "%s: %lld bytes, more than the %zu allowed", path,
                       (long long)sb.st_size, max_bytes);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return IO_FAIL(errbuf, MSBNB_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    if (got != n) {
        free(buf);
        return IO_FAIL(errbuf, MSBNB_ERR_IO, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return MSBNB_OK;
}
