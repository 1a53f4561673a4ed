/*
 * test_scratch.h — one scratch directory per test binary, removed at the end (header-only; the
 * including file defines _POSIX_C_SOURCE 200809L before any include, for mkdtemp).
 *
 *     static char tmp[256];
 *     int main(void) {
 *         if (test_scratch_make(tmp, sizeof tmp, MSBNB_BINARY_DIR, "io_test_cli")) return 1;
 *         RUN(...);
 *         test_scratch_remove(tmp);
 *         return test_report();
 *     }
 */
#ifndef MSBNB_TESTS_TEST_SCRATCH_H
#define MSBNB_TESTS_TEST_SCRATCH_H

#include <stdio.h>
#include <stdlib.h>

/* mkdtemp of "<parent>/<name>_XXXXXX" into dir[cap]. 0 on success; -1 (dir empty, a line printed). */
static inline int test_scratch_make(char *dir, size_t cap, const char *parent, const char *name) {
    if ((size_t)snprintf(dir, cap, "%s/%s_XXXXXX", parent, name) >= cap || !mkdtemp(dir)) {
        printf("cannot create a scratch directory %s/%s_XXXXXX\n", parent, name);
        dir[0] = '\0';
        return -1;
    }
    return 0;
}

/* rm -rf dir (nothing for an empty name). 0 on success; -1 with a line printed. */
static inline int test_scratch_remove(const char *dir) {
    char cmd[1100];
    if (!dir[0]) return 0;
    if ((size_t)snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir) >= sizeof cmd || system(cmd) != 0) {
        printf("could not remove %s\n", dir);
        return -1;
    }
    return 0;
}

#endif
