/*
 * fast_int8_model.h — test-side model of the FAST int8 product of 4-bit weights for small n (the levels with int8 loops: max_n rows)
 * (src/kernels/x86/matmul_4bit_avx512vnni.c), written from its documented semantics
 * (docs/kernels.md), not from its code:
 *   per 64-element chunk c of an activation row: a = max|x|, x̂ = rint(x · (127/a)) in float32
 *   (0 when a = 0), activation step sx = a/127;
 *   per code q: t̂ = rint(table[q] · m) / m, m = 127/max|table| (1 for integer tables: INT4);
 *   y = Σ_k (s_k · t̂_k) · (sx_c · x̂_k) (+ bias).
 * fast_int8_model() evaluates that in double (the "ideal" FAST value), the floating-point error the
 * kernel may add to it, and the distance the mode may have from the exact product (activation and
 * code rounding), all per output element. Include after kernels/matmul_4bit.h.
 */
#ifndef MSBNB_TESTS_FAST_INT8_MODEL_H
#define MSBNB_TESTS_FAST_INT8_MODEL_H

#include <math.h>
#include <stdint.h>

/* Does the FAST int8 kernel run for this product at this level? (its documented domain: the
 * AVX512-VNNI levels, and the AVX2 level on CPUs with AVX-VNNI) */
static inline int fast_int8_applies(msbnb_isa isa, const msbnb_qtensor *q, int64_t n) {
    msbnb__w4 w;
    msbnb__w4_init(q, &w);
    /* the levels with int8 loops (AVX2, AVX512-VNNI and up), and how many activation rows each takes */
    const int max_n = isa >= MSBNB_ISA_AVX512_VNNI ? msbnb__fi8_avx512vnni.max_n
                      : isa == MSBNB_ISA_AVX2      ? msbnb__fi8_avx2.max_n
                                                   : 0;
    /* beyond max_n rows the bf16 tiles take over where the level has them; elsewhere the int8 loops
     * run in passes of max_n rows */
    const int rows_ok =
        max_n > 0 && (n <= max_n || (isa < MSBNB_ISA_AVX512_BF16 && w.cols >= MSBNB__FI8_PASSES_MIN_IN));
    return rows_ok && w.cols % 64 == 0 && w.block % 64 == 0;
}

static inline double fast_int8_code_multiplier(const float table[16]) {
    double mx = 0;
    int integral = 1;
    for (int i = 0; i < 16; i++) {
        mx = fmax(mx, fabs((double)table[i]));
        integral &= table[i] == rintf(table[i]) && fabsf(table[i]) <= 127.0f;
    }
    return integral || !(mx > 0) ? 1.0 : 127.0f / (float)mx;
}

/* For X [n, in] (finite), W [out, in] 4-bit, bias [out] or NULL; outputs [n, out]:
 *   ideal  the FAST value in double;
 *   fp     bound of the kernel's floating-point error around ideal: (in/16 + 32)·u times the
 *          magnitude of every term it adds (the +128 offset dot products and their correction
 *          included), + u·|ideal|;
 *   mode   bound of |ideal - exact product with the dequantized weights|:
 *          Σ |s·t̂|·|sx·x̂ - x| + Σ |x|·s·|t̂ - t|. */
static inline void fast_int8_model(const msbnb_qtensor *q, const float *X, int64_t n, const float *bias, double *ideal,
                            double *fp, double *mode) {
    msbnb__w4 w;
    msbnb__w4_init(q, &w);
    const int64_t in = w.cols, out = w.rows;
    const double m = fast_int8_code_multiplier(w.table), u = 0x1p-24, gamma = ((double)in / 16 + 32) * u;
    double th[16]; /* t̂ · m, an integer */
    for (int i = 0; i < 16; i++) th[i] = rint((double)(w.table[i] * (float)m));
    float *xh = malloc((size_t)in * sizeof(float)); /* x̂ of one row */
    double *sx = malloc((size_t)(in / 64 + 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        const float *x = X + i * in;
        for (int64_t c = 0; c * 64 < in; c++) {
            float a = 0;
            for (int k = 0; k < 64; k++) a = fmaxf(a, fabsf(x[64 * c + k]));
            const float inv = a > 0 ? 127.0f / a : 0.0f;
            sx[c] = (double)a / 127.0;
            for (int k = 0; k < 64; k++) xh[64 * c + k] = rintf(x[64 * c + k] * inv);
        }
        for (int64_t o = 0; o < out; o++) {
            double y = 0, mag = 0, md = 0;
            for (int64_t k = 0; k < in; k++) {
                const unsigned nib = msbnb__w4_nibble(&w, o, k);
                const double s = msbnb__w4_stat(&w, msbnb__w4_stat_index(&w, o, k));
                const double step = sx[k / 64];
                y += s * th[nib] / m * step * xh[k];
                mag += fabs(s) / m * step * (fabs(th[nib]) + 128.0) * fabs((double)xh[k]);
                md += fabs(s * th[nib] / m) * fabs(step * xh[k] - (double)x[k]) +
                      fabs((double)x[k]) * fabs(s) * fabs(th[nib] / m - (double)w.table[nib]);
            }
            if (bias) y += bias[o];
            ideal[i * out + o] = y;
            fp[i * out + o] = gamma * mag + u * fabs(y) + 1e-37;
            mode[i * out + o] = md;
        }
    }
    free(xh);
    free(sx);
}

#endif
