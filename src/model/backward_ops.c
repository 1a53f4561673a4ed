/*
 * backward_ops.c — training forward and backward of RMSNorm, RoPE, causal GQA attention, SwiGLU,
 * embedding and cross-entropy, batched over N = B*T rows. See backward_ops.h for shapes.
 *
 * Written over BW_REAL so the tests can compile this file again in double precision; the library
 * builds it once with float. Transcendentals are evaluated in double and rounded to BW_REAL.
 *
 * Math (standard derivations, e.g. the LLaMA paper's blocks; PyTorch's autograd formulas):
 *   RMSNorm  y = x r w, r = (mean x² + eps)^-½:  dx = r (w∘dy) - x r³ (Σ (w∘dy)∘x) / D
 *   softmax  P = softmax(S):                     dS = P ∘ (dP - Σ_s P dP)
 *   SwiGLU   h = g σ(g) u:                       dg = dh u σ(g)(1 + g(1-σ(g))), du = dh g σ(g)
 *   CE       L = mean(logsumexp(z) - z_y):       dz = (softmax(z) - onehot(y)) / count
 */
#include "model/backward_ops.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/internal.h"

typedef BW_REAL real;

/* exp in the working precision: expf for the float build (the hot softmax and SiLU loops), exp
 * for the double build the tests use. */
#ifndef BW_EXP
#define BW_EXP(x) expf(x)
#endif

/* Open a parallel region only when the op has enough work (BW(parallel_min) element operations,
 * 2^17 by default) to pay for waking the threads: a tiny model otherwise spends its time in
 * OpenMP barriers. Outputs are disjoint either way, so results do not depend on it. */
int64_t BW(parallel_min) = (int64_t)1 << 17;
#define BW_PARALLEL(work) ((int64_t)(work) >= BW(parallel_min))

/* ================================================================ RMSNorm */

void BW(rmsnorm_fwd)(const real *x, const real *w, int64_t N, int64_t D, double eps, real *y, real *rstd) {
#pragma omp parallel for if(BW_PARALLEL(N * D)) num_threads(msbnb__threads()) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const real *xr = x + n * D;
        real *yr = y + n * D;
        double ss = 0.0;
        for (int64_t i = 0; i < D; i++) ss += (double)xr[i] * xr[i];
        real r = (real)(1.0 / sqrt(ss / (double)D + eps));
        rstd[n] = r;
        for (int64_t i = 0; i < D; i++) yr[i] = xr[i] * r * w[i];
    }
}

void BW(rmsnorm_bwd)(const real *dy, const real *x, const real *w, const real *rstd, int64_t N, int64_t D,
                     real *dx) {
#pragma omp parallel for if(BW_PARALLEL(N * D)) num_threads(msbnb__threads()) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const real *xr = x + n * D, *dyr = dy + n * D;
        real *dxr = dx + n * D;
        double r = rstd[n];
        double dot = 0.0; /* Σ (w∘dy)∘x */
        for (int64_t i = 0; i < D; i++) dot += (double)w[i] * dyr[i] * xr[i];
        double c = r * r * r * dot / (double)D;
        for (int64_t i = 0; i < D; i++) dxr[i] += (real)(r * w[i] * dyr[i] - c * xr[i]);
    }
}

/* ================================================================ RoPE */

void BW(rope_table)(int64_t T, int64_t hd, double theta, real *cos_sin) {
    int64_t half = hd / 2;
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < half; i++) {
            /* inv_freq as HF computes it: theta^-(2i/hd) */
            double freq = 1.0 / pow(theta, (double)(2 * i) / (double)hd);
            double a = (double)t * freq;
            cos_sin[(t * half + i) * 2 + 0] = (real)cos(a);
            cos_sin[(t * half + i) * 2 + 1] = (real)sin(a);
        }
}

void BW(rope_apply)(real *x, int64_t B, int64_t T, int64_t H, int64_t hd, const real *cos_sin, int interleaved,
                    int inverse) {
    int64_t half = hd / 2;
    int64_t rows = B * T;
#pragma omp parallel for if(BW_PARALLEL(rows * H * hd)) num_threads(msbnb__threads()) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = r % T;
        const real *cs = cos_sin + t * half * 2;
        for (int64_t h = 0; h < H; h++) {
            real *v = x + (r * H + h) * hd;
            for (int64_t i = 0; i < half; i++) {
                real c = cs[2 * i], s = inverse ? -cs[2 * i + 1] : cs[2 * i + 1];
                int64_t i0 = interleaved ? 2 * i : i;
                int64_t i1 = interleaved ? 2 * i + 1 : i + half;
                real a = v[i0], b = v[i1];
                v[i0] = a * c - b * s;
                v[i1] = a * s + b * c;
            }
        }
    }
}

/* ================================================================ attention
 *
 * Per (batch, head) the products are matrix products over strided views of the activations
 * (a head's rows are hd apart inside rows of H·hd), done by BLAS: S = Q·Kᵀ over the full T×T
 * square (the masked half is wasted, and still far cheaper than scalar loops), then the masked
 * softmax row by row, then O = P·V. */
#ifndef BW_GEMM
#define BW_GEMM cblas_sgemm
#endif

void BW(attention_fwd)(const real *q, const real *k, const real *v, int64_t B, int64_t T, int64_t H, int64_t KVH,
                       int64_t hd, int64_t window, real *probs, real *out) {
    int64_t rep = H / KVH;
    real scale = (real)(1.0 / sqrt((double)hd));
    int qs = (int)(H * hd), ks = (int)(KVH * hd); /* row strides of q/out and k/v */
    /* one (batch, head) pair per iteration: disjoint blocks of probs and out */
#pragma omp parallel for if(BW_PARALLEL(B * H * T * T * hd)) num_threads(msbnb__threads()) schedule(static)
    for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H, kh = h / rep;
        const real *qh = q + b * T * H * hd + h * hd, *kk = k + b * T * KVH * hd + kh * hd;
        const real *vv = v + b * T * KVH * hd + kh * hd;
        real *P = probs + (b * H + h) * T * T; /* P: [T, T] */
        /* S[t, s] = scale · q_t · k_s */
        BW_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)hd, scale, qh, qs, kk, ks, 0, P,
                (int)T);
        for (int64_t t = 0; t < T; t++) {
            real *p = P + t * T;
            const int64_t s0 = (window > 0 && t + 1 > window) ? t + 1 - window : 0; /* first visible key */
            real mx = p[s0];
            for (int64_t s = s0 + 1; s <= t; s++)
                if (p[s] > mx) mx = p[s];
            real sum = 0;
            for (int64_t s = s0; s <= t; s++) {
                p[s] = BW_EXP(p[s] - mx);
                sum += p[s];
            }
            real inv = 1 / sum;
            for (int64_t s = 0; s < s0; s++) p[s] = 0; /* sliding window */
            for (int64_t s = s0; s <= t; s++) p[s] *= inv;
            for (int64_t s = t + 1; s < T; s++) p[s] = 0; /* causal mask */
        }
        /* out_h[T, hd] = P · V */
        BW_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)hd, (int)T, 1, P, (int)T, vv, ks, 0,
                out + b * T * H * hd + h * hd, qs);
    }
}

int64_t BW(attention_bwd_scratch)(int64_t T) { return (int64_t)msbnb__threads() * T * T; }

void BW(attention_bwd)(const real *dout, const real *q, const real *k, const real *v, const real *probs, int64_t B,
                       int64_t T, int64_t H, int64_t KVH, int64_t hd, real *dq, real *dk, real *dv, real *scratch, int slots) {
    int64_t rep = H / KVH;
    int nt = msbnb__threads() < slots ? msbnb__threads() : slots;
    real scale = (real)(1.0 / sqrt((double)hd));
    int qs = (int)(H * hd), ks = (int)(KVH * hd);
    /* One (batch, kv head) pair per iteration: it owns dk/dv of that kv head and dq of its query
     * heads, and adds the query heads in ascending order (fixed reduction order). */
#pragma omp parallel for if(BW_PARALLEL(B * H * T * T * hd) && nt > 1) num_threads(nt) schedule(static)
    for (int64_t bk = 0; bk < B * KVH; bk++) {
        int64_t b = bk / KVH, kh = bk % KVH;
        real *dS = scratch + (int64_t)omp_get_thread_num() * T * T; /* dS: [T, T] */
        const real *kk = k + b * T * KVH * hd + kh * hd, *vv = v + b * T * KVH * hd + kh * hd;
        real *dkk = dk + b * T * KVH * hd + kh * hd, *dvv = dv + b * T * KVH * hd + kh * hd;
        for (int64_t s = 0; s < T; s++) {
            memset(dkk + s * KVH * hd, 0, (size_t)hd * sizeof(real));
            memset(dvv + s * KVH * hd, 0, (size_t)hd * sizeof(real));
        }
        for (int64_t h = kh * rep; h < (kh + 1) * rep; h++) {
            const real *P = probs + (b * H + h) * T * T;
            const real *doh = dout + b * T * H * hd + h * hd, *qh = q + b * T * H * hd + h * hd;
            /* dP[t, s] = dout_t · v_s */
            BW_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)hd, 1, doh, qs, vv, ks, 0, dS,
                    (int)T);
            /* dS = P ∘ (dP − Σ_s P dP) · scale: ∂L/∂(q·k); zero above the diagonal */
            for (int64_t t = 0; t < T; t++) {
                const real *p = P + t * T;
                real *d = dS + t * T;
                real pdp = 0;
                for (int64_t s = 0; s <= t; s++) pdp += p[s] * d[s];
                for (int64_t s = 0; s <= t; s++) d[s] = p[s] * (d[s] - pdp) * scale;
                for (int64_t s = t + 1; s < T; s++) d[s] = 0;
            }
            /* dq_h = dS · K;  dk += dSᵀ · q_h;  dv += Pᵀ · dout_h */
            BW_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)hd, (int)T, 1, dS, (int)T, kk, ks, 0,
                    dq + b * T * H * hd + h * hd, qs);
            BW_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)T, (int)hd, (int)T, 1, dS, (int)T, qh, qs, 1, dkk,
                    ks);
            BW_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)T, (int)hd, (int)T, 1, P, (int)T, doh, qs, 1, dvv,
                    ks);
        }
    }
}

/* ================================================================ SwiGLU */

void BW(swiglu_fwd)(const real *g, const real *u, int64_t n, real *h) {
#pragma omp parallel for if(BW_PARALLEL(n * 8)) num_threads(msbnb__threads()) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        real sg = 1 / (1 + BW_EXP(-g[i]));
        h[i] = g[i] * sg * u[i];
    }
}

void BW(swiglu_bwd)(const real *dh, const real *g, const real *u, int64_t n, real *dg, real *du) {
#pragma omp parallel for if(BW_PARALLEL(n * 8)) num_threads(msbnb__threads()) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        real sg = 1 / (1 + BW_EXP(-g[i]));
        real silu = g[i] * sg;
        du[i] = dh[i] * silu;
        dg[i] = dh[i] * u[i] * sg * (1 + g[i] * (1 - sg));
    }
}

/* ================================================================ embedding */

void BW(embedding_fwd)(const real *table, const int32_t *tok, int64_t N, int64_t D, real *x) {
    for (int64_t n = 0; n < N; n++) memcpy(x + n * D, table + (int64_t)tok[n] * D, (size_t)D * sizeof(real));
}

void BW(embedding_bwd)(const real *dx, const int32_t *tok, int64_t N, int64_t D, real *dtable) {
    /* sequential: two rows may hit the same token, and the order of their sum is fixed */
    for (int64_t n = 0; n < N; n++) {
        real *row = dtable + (int64_t)tok[n] * D;
        for (int64_t i = 0; i < D; i++) row[i] += dx[n * D + i];
    }
}

/* ================================================================ cross-entropy */

double BW(cross_entropy)(const real *logits, const int32_t *targets, int64_t N, int64_t V, real *dlogits,
                         double *row_loss, int64_t *count) {
    int64_t cnt = 0;
    for (int64_t n = 0; n < N; n++) cnt += targets[n] >= 0;
    if (count) *count = cnt;
    double inv_cnt = cnt > 0 ? 1.0 / (double)cnt : 0.0;
#pragma omp parallel for if(BW_PARALLEL(N * V)) num_threads(msbnb__threads()) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const real *z = logits + n * V;
        real *dz = dlogits ? dlogits + n * V : NULL;
        if (targets[n] < 0) {
            row_loss[n] = 0.0;
            if (dz) memset(dz, 0, (size_t)V * sizeof(real));
            continue;
        }
        real mx = -INFINITY;
        for (int64_t i = 0; i < V; i++)
            if (z[i] > mx) mx = z[i];
        /* one exp per logit, in the working precision (the vocabulary-wide loop is the hot part):
         * e_i = exp(z_i - max) is kept in dz, summed in double, then dz = e_i / Σe / count */
        double sum = 0.0;
        if (dz) {
            for (int64_t i = 0; i < V; i++) {
                real e = BW_EXP(z[i] - mx);
                dz[i] = e;
                sum += (double)e;
            }
        } else {
            for (int64_t i = 0; i < V; i++) sum += (double)BW_EXP(z[i] - mx);
        }
        double lse = (double)mx + log(sum);
        row_loss[n] = lse - (double)z[targets[n]];
        if (dz) {
            real scale = (real)(inv_cnt / sum);
            for (int64_t i = 0; i < V; i++) dz[i] *= scale;
            dz[targets[n]] -= (real)inv_cnt;
        }
    }
    double total = 0.0;
    for (int64_t n = 0; n < N; n++) total += row_loss[n];
    return total * inv_cnt;
}
