/*
 * test.h — the tests' tiny harness (header-only; one test binary = one main()).
 *
 *     TEST(roundtrip) { CHECK(x == y); CHECK_NEAR(a, b, 1e-6); }
 *     int main(void) { RUN(roundtrip); return test_report(); }
 *
 * test_report() prints "N passed, N failed" (the line ctest logs and CI reads) and returns non-zero
 * if any check failed. A test counts as failed if any CHECK inside it failed.
 */
#ifndef MSBNB_TESTS_TEST_H
#define MSBNB_TESTS_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msbnb/msbnb.h>

static int test_checks_failed_in_current_;
static int test_passed_, test_failed_;
static const char *test_current_name_ = "";

#define TEST(name) static void test_##name(void)
#define RUN(name) test_run_(#name, test_##name)

static void test_run_(const char *name, void (*fn)(void)) {
    test_current_name_ = name;
    test_checks_failed_in_current_ = 0;
    fn();
    if (test_checks_failed_in_current_) {
        test_failed_++;
        printf("FAIL %s\n", name);
    } else {
        test_passed_++;
        printf("ok   %s\n", name);
    }
    fflush(stdout);
}

static int test_report(void) {
    printf("%d passed, %d failed\n", test_passed_, test_failed_);
    return test_failed_ ? 1 : 0;
}

/* Report at most this many failing checks per test, then stay quiet (the test still fails). */
#define TEST_MAX_REPORTS 10
#define CHECK_MSG_(cond, ...)                                                         \
    do {                                                                              \
        if (!(cond)) {                                                                \
            if (test_checks_failed_in_current_++ < TEST_MAX_REPORTS) {                \
                printf("  %s:%d: %s: ", __FILE__, __LINE__, test_current_name_);       \
                printf(__VA_ARGS__);                                                  \
                printf("\n");                                                         \
            }                                                                         \
        }                                                                             \
    } while (0)

#define CHECK(cond) CHECK_MSG_((cond), "check failed: %s", #cond)
#define CHECK_EQ_INT(a, b)                                                                     \
    do {                                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                                    \
        CHECK_MSG_(a_ == b_, "%s == %s failed: %lld vs %lld", #a, #b, a_, b_);                 \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                                                  \
    do {                                                                                       \
        double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol);                         \
        CHECK_MSG_(fabs(a_ - b_) <= t_, "|%s - %s| <= %g failed: %.9g vs %.9g", #a, #b, t_, a_, b_); \
    } while (0)
/* Status check: prints msbnb_last_error() on failure. */
#define CHECK_OK(expr)                                                                         \
    do {                                                                                       \
        msbnb_status s_ = (expr);                                                              \
        CHECK_MSG_(s_ == MSBNB_OK, "%s -> %s (%s)", #expr, msbnb_status_str(s_), msbnb_last_error()); \
    } while (0)
#define CHECK_STATUS(expr, want)                                                               \
    do {                                                                                       \
        msbnb_status s_ = (expr);                                                              \
        CHECK_MSG_(s_ == (want), "%s -> %s, expected %s", #expr, msbnb_status_str(s_), msbnb_status_str(want)); \
    } while (0)

/* ---------------------------------------------------------------- data helpers */

/* Deterministic generator (splitmix64) so every run sees the same data. */
typedef struct { uint64_t s; } test_rng;
static inline uint64_t test_rng_u64(test_rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* Uniform in [0, 1). */
static inline double test_rng_uniform(test_rng *r) { return (double)(test_rng_u64(r) >> 11) * 0x1p-53; }
/* Standard normal (Box-Muller). */
static inline double test_rng_normal(test_rng *r) {
    double u1 = test_rng_uniform(r), u2 = test_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
static inline void test_fill_normal(test_rng *r, float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(test_rng_normal(r) * scale);
}

/* Read a whole file into a malloc'ed buffer (caller frees); NULL if missing. */
static inline void *test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

/* Path inside ../shared: test_shared_path("golden/bnb/map_nf4.f32") (static buffer, one at a time). */
static inline const char *test_shared_path(const char *rel) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", MSBNB_SHARED_DIR, rel);
    return buf;
}

/* Calls fn once per ISA level the CPU supports up to the one in use (scalar first; MSBNB_ISA may
 * cap it), with that level forced; restores the level afterwards. fn receives the SIMD level its
 * kernels run at: for the ONEDNN level (last, where available) that is the detected SIMD level, with
 * the oneDNN engine on (msbnb_isa_current() tells the two runs apart). */
static inline void test_for_each_isa(void (*fn)(msbnb_isa isa, void *ctx), void *ctx) {
    msbnb_isa top = msbnb_isa_current();
    for (int l = 0; l <= (int)top; l++) {
        if (msbnb_isa_set((msbnb_isa)l) != MSBNB_OK) continue;
        fn(l == MSBNB_ISA_ONEDNN ? msbnb_isa_detected() : (msbnb_isa)l, ctx);
    }
    msbnb_isa_set(top);
}

#endif /* MSBNB_TESTS_TEST_H */
