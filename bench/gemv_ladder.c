/* gemv_ladder.c — where the n = 1 FAST int8 kernel loses against the read bandwidth: the kernel's
 * loop rebuilt one ingredient at a time, every rung and the library's kernel itself timed in one
 * process, interleaved, against the same read (docs/kernels.md, "n = 1 FAST int8"). Not part of
 * the CMake build (it needs AVX512-VNNI and AVX512-VBMI):
 *   gcc -O2 -mavx512f -mavx512bw -mavx512dq -mavx512vnni -Iinclude -Isrc bench/gemv_ladder.c \
 *       build/libmsbnb.a -fopenmp -lopenblas -lcjson -lm -o gemv_ladder
 *   ./gemv_ladder [REPS]          (W 11008 x 4096 NF4-sized: 22.5 MB codes + 2.8 MB fp32 statistics)
 * Rungs (all with the kernel's software prefetch, one T0 per 64-byte line PF bytes ahead):
 *   codes        the code bytes alone, summed (a pure stream: the ceiling)
 *   + stats      and one 64-byte line of statistics per 512 code bytes (the second stream)
 *   + act loads  and the two activation loads per 64 code bytes (L1 hits)
 *   + arithmetic and the kernel's arithmetic (nibble lookups, vpdpbusd, scale FMA), one flat loop
 *   + row ends   and each 2048-byte row's reduction and store, as the kernel does
 *   library      msbnb's kernel (msbnb__fi8_avx512vnni through its driver) on the same bytes
 * Each figure: bytes ÷ best thread-CPU time, ÷ the best 256 MiB read taken between the calls. The
 * compute rate of the arithmetic rungs with their data in L2 is printed at the end. */
#define _GNU_SOURCE
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msbnb/kernels.h>

#include "gemv_tools.h"

#include "kernels/matmul_4bit.h"

#define PF 6144 /* the kernel's prefetch distance (VN_PF) */

/* gemv_alloc_huge, written once (the rungs read every byte) */
static void *alloc_filled(size_t bytes) {
    void *p = gemv_alloc_huge(bytes);
    if (p) memset(p, 1, bytes);
    return p;
}

/* rung "codes" (also the read probe): sum of c [n] */
__attribute__((noinline)) static float codes_only(const uint8_t *c, size_t n) {
    __m512i a = _mm512_setzero_si512(), b = a;
    for (size_t i = 0; i < n; i += 128) {
        _mm_prefetch((const char *)(c + i + PF), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i + 64 + PF), _MM_HINT_T0);
        a = _mm512_add_epi32(a, _mm512_load_si512(c + i));
        b = _mm512_add_epi32(b, _mm512_load_si512(c + i + 64));
    }
    return (float)_mm512_reduce_add_epi32(_mm512_add_epi32(a, b));
}

/* rungs "+ stats" (act = 0) and "+ act loads" (act = 1): codes c [n], statistics s [n / 32] */
__attribute__((noinline)) static float with_loads(const uint8_t *c, const float *s, const int8_t *xo,
                                                  const int8_t *xe, size_t n, size_t row_bytes, int act) {
    __m512i a = _mm512_setzero_si512(), b = a, e = a;
    __m512 d = _mm512_setzero_ps();
    for (size_t r0 = 0; r0 < n; r0 += row_bytes)
        for (size_t p0 = 0; p0 < row_bytes; p0 += 512) {
            d = _mm512_add_ps(d, _mm512_loadu_ps(s + (r0 + p0) / 32));
            for (size_t q = 0; q < 512; q += 64) {
                _mm_prefetch((const char *)(c + r0 + p0 + q + PF), _MM_HINT_T0);
                a = _mm512_add_epi32(a, _mm512_load_si512(c + r0 + p0 + q));
                if (act) {
                    b = _mm512_add_epi32(b, _mm512_load_si512(xo + p0 + q));
                    e = _mm512_add_epi32(e, _mm512_load_si512(xe + p0 + q));
                }
            }
        }
    return (float)_mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a, b), e)) + _mm512_reduce_add_ps(d);
}

static inline __m512i vpermb(__m512i idx, __m512i T) {
    __m512i r;
    __asm__("vpermb %2, %1, %0" : "=v"(r) : "v"(idx), "v"(T));
    return r;
}

/* rungs "+ arithmetic" (row_ends = 0: one sum for all) and "+ row ends" (Y [n / row_bytes]) */
__attribute__((noinline)) static float with_arithmetic(const uint8_t *c, const float *s, const int8_t *xo,
                                                       const int8_t *xe, const float *sxm, size_t n, size_t row_bytes,
                                                       float *Y, int row_ends) {
    const __m512i T = _mm512_set1_epi32((int)0x80818283u);
    const __m512i upper = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    __m512i idx[8];
    for (int q = 0; q < 8; q++) idx[q] = _mm512_add_epi32(_mm512_set1_epi32(2 * q), upper);
    __m512 acc[4];
    for (int k = 0; k < 4; k++) acc[k] = _mm512_setzero_ps();
    for (size_t r0 = 0, row = 0; r0 < n; r0 += row_bytes, row++) {
        for (size_t p0 = 0; p0 < row_bytes; p0 += 512) {
            const size_t i = r0 + p0;
            const __m512 sg = _mm512_mul_ps(_mm512_loadu_ps(s + i / 32), _mm512_loadu_ps(sxm + p0 / 32));
            _Pragma("GCC unroll 8") for (int q = 0; q < 8; q++) {
                const size_t j = i + 64 * (size_t)q, p = p0 + 64 * (size_t)q;
                _mm_prefetch((const char *)(c + j + PF), _MM_HINT_T0);
                const __m512i v = _mm512_load_si512(c + j);
                const __m512i wl = vpermb(v, T), wh = vpermb(_mm512_srli_epi16(v, 4), T);
                __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wl, _mm512_load_si512(xo + p));
                d = _mm512_dpbusd_epi32(d, wh, _mm512_load_si512(xe + p));
                acc[q & 3] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_permutexvar_ps(idx[q], sg), acc[q & 3]);
            }
        }
        if (row_ends) {
            Y[row] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
            for (int k = 0; k < 4; k++) acc[k] = _mm512_setzero_ps();
        }
    }
    return row_ends ? Y[0] : _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

enum { CODES, STATS, ACT, ARITH, ROWS, LIBRARY, N_RUNGS };
static const char *const RUNG[N_RUNGS] = {"codes", "+ stats", "+ act loads", "+ arithmetic", "+ row ends", "library"};

int main(int argc, char **argv) {
    const size_t rows = 11008, in = 4096, row_bytes = in / 2, S = rows * row_bytes, probe = (size_t)256 << 20;
    const int reps = argc > 1 ? atoi(argv[1]) : 15;
    if (!__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("avx512vbmi")) {
        fprintf(stderr, "needs AVX512-VNNI and AVX512-VBMI\n");
        return 2;
    }
    uint8_t *c = alloc_filled(S), *ev = alloc_filled(probe);
    float *s = alloc_filled(S / 8), *sxm = alloc_filled((in / 64 + 16) * sizeof(float));
    float *X = alloc_filled(in * sizeof(float)), *Y = alloc_filled(rows * sizeof(float));
    int8_t *xo = alloc_filled(row_bytes), *xe = alloc_filled(row_bytes);
    if (!c || !ev || !s || !sxm || !X || !Y || !xo || !xe) return 1;
    for (size_t i = 0; i < S; i++) c[i] = (uint8_t)((i * 2654435761u) >> 13);
    for (size_t i = 0; i < S / 32; i++) s[i] = 1.0f + (float)(i % 7);
    for (size_t i = 0; i < row_bytes; i++) xo[i] = (int8_t)(i % 13) - 6, xe[i] = (int8_t)(i % 11) - 5;
    for (size_t i = 0; i < in / 64 + 16; i++) sxm[i] = 0.01f;
    for (size_t i = 0; i < in; i++) X[i] = (float)(i % 7) - 3.0f;
    msbnb__w4 w; /* the library's view of the same bytes: NF4-shaped, plain statistics */
    memset(&w, 0, sizeof w);
    w.data = c, w.rows = (int64_t)rows, w.cols = (int64_t)in, w.flat_blocks = 1, w.block = 64, w.stats = s;
    w.nested_shift = -1;
    for (int k = 0; k < 16; k++) w.table[k] = (float)(k - 8) / 8.0f;
    msbnb_set_num_threads(1);

    volatile float sink = 0;
    double best_read = 1e30, best[N_RUNGS];
    for (int k = 0; k < N_RUNGS; k++) best[k] = 1e30;
    for (int r = 0; r < reps; r++)
        for (int v = 0; v < N_RUNGS; v++) {
            const int k = (v + r) % N_RUNGS;
            double t = gemv_thread_cpu_now();
            sink += codes_only(ev, probe);
            t = gemv_thread_cpu_now() - t;
            if (t < best_read) best_read = t;
            t = gemv_thread_cpu_now();
            switch (k) {
            case CODES: sink += codes_only(c, S); break;
            case STATS: sink += with_loads(c, s, xo, xe, S, row_bytes, 0); break;
            case ACT: sink += with_loads(c, s, xo, xe, S, row_bytes, 1); break;
            case ARITH: sink += with_arithmetic(c, s, xo, xe, sxm, S, row_bytes, Y, 0); break;
            case ROWS: sink += with_arithmetic(c, s, xo, xe, sxm, S, row_bytes, Y, 1); break;
            default:
                if (msbnb__matmul_4bit_fast_int8(&msbnb__fi8_avx512vnni, &w, X, 1, NULL, Y, 0) != MSBNB_OK) return 1;
            }
            t = gemv_thread_cpu_now() - t;
            if (t < best[k]) best[k] = t;
        }
    const double read = (double)probe / best_read;
    printf("W %zu x %zu, n = 1, one thread; best read %.1f GB/s\n", rows, in, read * 1e-9);
    for (int k = 0; k < N_RUNGS; k++) {
        const double bytes = (double)(k == CODES ? S : S + S / 8);
        printf("  %-13s %.3f x read (%.1f GB/s)\n", RUNG[k], bytes / best[k] / read, bytes / best[k] * 1e-9);
    }
    /* the arithmetic rungs' compute rate, 128 rows (288 KiB with statistics) in L2 */
    const size_t L = row_bytes * 128;
    double ca = 1e30, cr = 1e30;
    for (int r = 0; r < 300; r++) {
        double t = gemv_thread_cpu_now();
        sink += with_arithmetic(c, s, xo, xe, sxm, L, row_bytes, Y, 0);
        t = gemv_thread_cpu_now() - t;
        if (t < ca) ca = t;
        t = gemv_thread_cpu_now();
        sink += with_arithmetic(c, s, xo, xe, sxm, L, row_bytes, Y, 1);
        t = gemv_thread_cpu_now() - t;
        if (t < cr) cr = t;
    }
    printf("  compute rate in L2: + arithmetic %.1f GB/s, + row ends %.1f GB/s (%.2f / %.2f x read)\n",
           (double)(L + L / 8) / ca * 1e-9, (double)(L + L / 8) / cr * 1e-9, (double)(L + L / 8) / ca / read,
           (double)(L + L / 8) / cr / read);
    (void)sink;
    free(c), free(ev), free(s), free(sxm), free(X), free(Y), free(xo), free(xe);
    return 0;
}
