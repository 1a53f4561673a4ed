/*
 * q4_testdata.h — test data shared by the NF4/FP4 and BLOCKWISE8 tests: random blocks mixed with
 * every edge case of the non-finite policy (fourbit_internal.h), block by block.
 */
#ifndef MSBNB_TESTS_QUANT_Q4_TESTDATA_H
#define MSBNB_TESTS_QUANT_Q4_TESTDATA_H

#include <float.h>
#include <math.h>

#include "test.h"

/* Block kinds, chosen per block of bs elements (the same generator for every ISA). */
enum {
    KIND_NORMAL,      /* N(0, 1) * random scale                                       */
    KIND_ZERO,        /* all +0                                                       */
    KIND_SIGNED_ZERO, /* ±0 only                                                      */
    KIND_DENORMAL,    /* subnormals only: absmax < 2^-128, reciprocal overflows         */
    KIND_DENORM_BIG,  /* subnormals near 2^-127: finite reciprocal                       */
    KIND_MIXED_DEN,   /* normals with subnormal and ±0 elements                          */
    KIND_INF,         /* normals with +Inf / -Inf                                        */
    KIND_NAN,         /* normals with NaN                                                */
    KIND_ALL_NAN,     /* NaN only                                                        */
    KIND_THRESHOLD,   /* absmax 4: elements exactly on a threshold * 4 and next to it     */
    KIND_HUGE,        /* near FLT_MAX: the reciprocal is subnormal                        */
    KIND_COUNT
};

/* thr: sorted thresholds (nthr of them) whose scaled hits KIND_THRESHOLD constructs. */
static inline void q4_fill_block(test_rng *r, float *x, size_t len, int kind, const float *thr, int nthr) {
    float scale = (float)pow(10.0, 4.0 * test_rng_uniform(r) - 2.0);
    for (size_t i = 0; i < len; i++) {
        float v = (float)test_rng_normal(r) * scale;
        switch (kind) {
        case KIND_ZERO: v = 0.0f; break;
        case KIND_SIGNED_ZERO: v = (test_rng_u64(r) & 1) ? -0.0f : 0.0f; break;
        case KIND_DENORMAL: v = (float)(test_rng_normal(r) * 1e-40); break;
        case KIND_DENORM_BIG: v = (float)(test_rng_normal(r) * 0x1p-128); break;
        case KIND_MIXED_DEN:
            if (i % 3 == 1) v = (float)(test_rng_normal(r) * 1e-42);
            if (i % 7 == 2) v = (i & 8) ? -0.0f : 0.0f;
            break;
        case KIND_INF:
            if (i % 11 == 3) v = (i & 16) ? -INFINITY : INFINITY;
            break;
        case KIND_NAN:
            if (i % 5 == 2) v = NAN;
            break;
        case KIND_ALL_NAN: v = (i & 1) ? -NAN : NAN; break;
        case KIND_THRESHOLD: {
            /* absmax 4 is a power of two: x * (1/4) is exact, so s hits the threshold itself */
            float t = thr[test_rng_u64(r) % (uint64_t)nthr] * 4.0f;
            int which = (int)(test_rng_u64(r) % 5);
            if (which == 0) v = t;
            if (which == 1) v = nextafterf(t, INFINITY);
            if (which == 2) v = nextafterf(t, -INFINITY);
            if (which == 3) v = -t;
            if (which == 4) v = (test_rng_u64(r) & 1) ? -4.0f : 4.0f;
            if (i == 0) v = 4.0f;
            if (fabsf(v) > 4.0f) v = 4.0f;
            break;
        }
        case KIND_HUGE: v = (float)(test_rng_normal(r) * 1e38); break;
        default: break;
        }
        x[i] = v;
    }
}

/* x [n] in blocks of bs with kinds cycling through every edge (2 of 3 blocks normal). */
static inline void q4_fill(test_rng *r, float *x, size_t n, size_t bs, const float *thr, int nthr) {
    for (size_t b0 = 0, blk = 0; b0 < n; b0 += bs, blk++) {
        size_t len = n - b0 < bs ? n - b0 : bs;
        int kind = (blk % 3 != 2) ? KIND_NORMAL : (int)((blk / 3) % KIND_COUNT);
        q4_fill_block(r, x + b0, len, kind, thr, nthr);
    }
}

/* Bitwise equality of float arrays (NaN patterns and ±0 included). */
static inline size_t q4_first_bit_diff(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(a + i, b + i, 4) != 0) return i;
    return n;
}
static inline size_t q4_first_byte_diff(const uint8_t *a, const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return i;
    return n;
}

#endif
