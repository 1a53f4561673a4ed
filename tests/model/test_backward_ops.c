/*
 * test_backward_ops.c — every backward of src/model/backward_ops.c against central finite
 * differences, in double precision: the same source compiled here with BW_REAL = double.
 *
 * Each check builds a scalar L = Σ c ∘ f(x) with fixed random c, so ∂L/∂y = c, runs the op's
 * backward with dy = c and compares with (L(x + h e_i) - L(x - h e_i)) / 2h for every input
 * element. With h = 1e-5 in double the finite difference is exact to ~1e-9 (truncation h² f''' and
 * rounding 1e-16/h), so the bound 1e-6 · max(1, |g|) fails any wrong term by orders of magnitude.
 */
#define BW_REAL double
#define BW(name) dbl_##name
#define BW_EXP(x) exp(x)
#define BW_GEMM cblas_dgemm
#include "model/backward_ops.c"

#include "test.h"

#include <stdlib.h>

#define FD_H 1e-5

static void fill(test_rng *r, double *x, int64_t n, double scale) {
    for (int64_t i = 0; i < n; i++) x[i] = test_rng_normal(r) * scale;
}
static double dotv(const double *a, const double *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static int close_grad(double analytic, double fd) {
    return fabs(analytic - fd) <= 1e-6 * fmax(1.0, fabs(fd));
}

/* ---------------------------------------------------------------- RMSNorm */

TEST(rmsnorm_grad) {
    enum { N = 3, D = 7 };
    test_rng r = {1};
    double x[N * D], w[D], c[N * D], y[N * D], rstd[N], dx[N * D];
    fill(&r, x, N * D, 1.0);
    fill(&r, w, D, 1.0);
    fill(&r, c, N * D, 1.0);
    dbl_rmsnorm_fwd(x, w, N, D, 1e-5, y, rstd);
    /* forward against the definition */
    for (int n = 0; n < N; n++) {
        double ss = 0;
        for (int i = 0; i < D; i++) ss += x[n * D + i] * x[n * D + i];
        double rr = 1.0 / sqrt(ss / D + 1e-5);
        for (int i = 0; i < D; i++) CHECK_NEAR(y[n * D + i], x[n * D + i] * rr * w[i], 1e-14);
    }
    /* backward accumulates: start from 1 and subtract it afterwards */
    for (int i = 0; i < N * D; i++) dx[i] = 1.0;
    dbl_rmsnorm_bwd(c, x, w, rstd, N, D, dx);
    for (int i = 0; i < N * D; i++) {
        double keep = x[i];
        x[i] = keep + FD_H;
        dbl_rmsnorm_fwd(x, w, N, D, 1e-5, y, rstd);
        double lp = dotv(c, y, N * D);
        x[i] = keep - FD_H;
        dbl_rmsnorm_fwd(x, w, N, D, 1e-5, y, rstd);
        double lm = dotv(c, y, N * D);
        x[i] = keep;
        double fd = (lp - lm) / (2 * FD_H);
        CHECK_MSG_(close_grad(dx[i] - 1.0, fd), "dx[%d] %.12g vs fd %.12g", i, dx[i] - 1.0, fd);
    }
}

/* ---------------------------------------------------------------- RoPE */

static void rope_case(int interleaved) {
    enum { B = 2, T = 5, H = 3, HD = 6 };
    enum { NX = B * T * H * HD };
    test_rng r = {2 + (uint64_t)interleaved};
    double x[NX], y[NX], c[NX], dx[NX], cs[T * HD / 2 * 2];
    dbl_rope_table(T, HD, 10000.0, cs);
    fill(&r, x, NX, 1.0);
    fill(&r, c, NX, 1.0);
    /* forward against the definition: pair i at position t turns by t·θ^(-2i/hd) */
    memcpy(y, x, sizeof x);
    dbl_rope_apply(y, B, T, H, HD, cs, interleaved, 0);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++)
                for (int i = 0; i < HD / 2; i++) {
                    double a = t * pow(10000.0, -2.0 * i / HD);
                    int i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + HD / 2;
                    const double *v = x + ((b * T + t) * H + h) * HD;
                    const double *o = y + ((b * T + t) * H + h) * HD;
                    CHECK_NEAR(o[i0], v[i0] * cos(a) - v[i1] * sin(a), 1e-14);
                    CHECK_NEAR(o[i1], v[i0] * sin(a) + v[i1] * cos(a), 1e-14);
                }
    /* backward = inverse rotation of dy */
    memcpy(dx, c, sizeof c);
    dbl_rope_apply(dx, B, T, H, HD, cs, interleaved, 1);
    for (int i = 0; i < NX; i++) {
        double keep = x[i];
        x[i] = keep + FD_H;
        memcpy(y, x, sizeof x);
        dbl_rope_apply(y, B, T, H, HD, cs, interleaved, 0);
        double lp = dotv(c, y, NX);
        x[i] = keep - FD_H;
        memcpy(y, x, sizeof x);
        dbl_rope_apply(y, B, T, H, HD, cs, interleaved, 0);
        double lm = dotv(c, y, NX);
        x[i] = keep;
        double fd = (lp - lm) / (2 * FD_H);
        CHECK_MSG_(close_grad(dx[i], fd), "interleaved %d dx[%d] %.12g vs fd %.12g", interleaved, i, dx[i], fd);
    }
}
TEST(rope_grad_interleaved) { rope_case(1); }
TEST(rope_grad_rotate_half) { rope_case(0); }

/* ---------------------------------------------------------------- attention */

enum { AB = 2, AT = 6, AH = 4, AKVH = 2, AHD = 3 };
enum { NQ = AB * AT * AH * AHD, NKV = AB * AT * AKVH * AHD };

static double attn_loss(const double *q, const double *k, const double *v, const double *c, int window) {
    static double probs[AB * AH * AT * AT], out[NQ];
    dbl_attention_fwd(q, k, v, AB, AT, AH, AKVH, AHD, window, probs, out);
    return dotv(c, out, NQ);
}

/* window 0: causal; window W: a query sees its last W positions (Mistral's sliding window) */
static void attention_case(int window) {
    test_rng r = {7};
    static double q[NQ], k[NKV], v[NKV], c[NQ], probs[AB * AH * AT * AT], out[NQ];
    static double dq[NQ], dk[NKV], dv[NKV];
    fill(&r, q, NQ, 1.0);
    fill(&r, k, NKV, 1.0);
    fill(&r, v, NKV, 1.0);
    fill(&r, c, NQ, 1.0);
    dbl_attention_fwd(q, k, v, AB, AT, AH, AKVH, AHD, window, probs, out);
    /* causal: position 0 attends only to itself, so out[0] = v[0] of its kv head */
    for (int h = 0; h < AH; h++)
        for (int i = 0; i < AHD; i++) CHECK_NEAR(out[h * AHD + i], v[(h / (AH / AKVH)) * AHD + i], 1e-15);
    /* probabilities: rows sum to 1, zero above the diagonal */
    for (int row = 0; row < AB * AH * AT; row++) {
        int t = row % AT;
        double s = 0;
        for (int j = 0; j < AT; j++) {
            s += probs[row * AT + j];
            if (j > t || (window > 0 && j <= t - window)) CHECK(probs[row * AT + j] == 0.0);
        }
        CHECK_NEAR(s, 1.0, 1e-14);
    }
    double *scratch = malloc(sizeof(double) * (size_t)dbl_attention_bwd_scratch(AT));
    dbl_attention_bwd(c, q, k, v, probs, AB, AT, AH, AKVH, AHD, dq, dk, dv, scratch, msbnb_get_num_threads());
    free(scratch);
    struct { double *x, *g; int n; const char *name; } cases[] = {{q, dq, NQ, "dq"}, {k, dk, NKV, "dk"}, {v, dv, NKV, "dv"}};
    for (int cse = 0; cse < 3; cse++)
        for (int i = 0; i < cases[cse].n; i++) {
            double *x = cases[cse].x, keep = x[i];
            x[i] = keep + FD_H;
            double lp = attn_loss(q, k, v, c, window);
            x[i] = keep - FD_H;
            double lm = attn_loss(q, k, v, c, window);
            x[i] = keep;
            double fd = (lp - lm) / (2 * FD_H);
            CHECK_MSG_(close_grad(cases[cse].g[i], fd), "window %d %s[%d] %.12g vs fd %.12g", window,
                       cases[cse].name, i, cases[cse].g[i], fd);
        }
}
TEST(attention_grad) { attention_case(0); }
TEST(attention_grad_sliding_window) { attention_case(4); }

/* ---------------------------------------------------------------- SwiGLU */

TEST(swiglu_grad) {
    enum { N = 23 };
    test_rng r = {9};
    double g[N], u[N], c[N], h[N], dg[N], du[N];
    fill(&r, g, N, 2.0);
    fill(&r, u, N, 1.0);
    fill(&r, c, N, 1.0);
    dbl_swiglu_fwd(g, u, N, h);
    for (int i = 0; i < N; i++) CHECK_NEAR(h[i], g[i] / (1 + exp(-g[i])) * u[i], 1e-14);
    dbl_swiglu_bwd(c, g, u, N, dg, du);
    double *xs[2] = {g, u}, *gs[2] = {dg, du};
    for (int which = 0; which < 2; which++)
        for (int i = 0; i < N; i++) {
            double keep = xs[which][i];
            xs[which][i] = keep + FD_H;
            dbl_swiglu_fwd(g, u, N, h);
            double lp = dotv(c, h, N);
            xs[which][i] = keep - FD_H;
            dbl_swiglu_fwd(g, u, N, h);
            double lm = dotv(c, h, N);
            xs[which][i] = keep;
            double fd = (lp - lm) / (2 * FD_H);
            CHECK_MSG_(close_grad(gs[which][i], fd), "%s[%d] %.12g vs fd %.12g", which ? "du" : "dg", i,
                       gs[which][i], fd);
        }
}

/* ---------------------------------------------------------------- embedding */

TEST(embedding_fwd_bwd) {
    enum { V = 5, D = 3, N = 6 };
    double table[V * D], x[N * D], dx[N * D], dt[V * D] = {0};
    int32_t tok[N] = {4, 0, 4, 2, 1, 4};
    for (int i = 0; i < V * D; i++) table[i] = i;
    dbl_embedding_fwd(table, tok, N, D, x);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < D; i++) CHECK(x[n * D + i] == table[tok[n] * D + i]);
    for (int i = 0; i < N * D; i++) dx[i] = 1.0 + i;
    dbl_embedding_bwd(dx, tok, N, D, dt);
    /* token 4 appears at rows 0, 2, 5: its gradient row is the sum of theirs; token 3 none */
    for (int i = 0; i < D; i++) {
        CHECK(dt[4 * D + i] == dx[0 * D + i] + dx[2 * D + i] + dx[5 * D + i]);
        CHECK(dt[3 * D + i] == 0.0);
        CHECK(dt[0 * D + i] == dx[1 * D + i]);
    }
}

/* ---------------------------------------------------------------- cross-entropy */

TEST(cross_entropy_grad) {
    enum { N = 4, V = 9 };
    test_rng r = {11};
    double z[N * V], dz[N * V], rl[N];
    int32_t y[N] = {3, -1, 0, 8};
    fill(&r, z, N * V, 2.0);
    int64_t cnt = 0;
    double loss = dbl_cross_entropy(z, y, N, V, dz, rl, &cnt);
    CHECK_EQ_INT(cnt, 3);
    /* against the definition: mean over counted rows of logsumexp - z_y */
    double want = 0;
    for (int n = 0; n < N; n++) {
        if (y[n] < 0) continue;
        double s = 0;
        for (int i = 0; i < V; i++) s += exp(z[n * V + i]);
        want += log(s) - z[n * V + y[n]];
    }
    CHECK_NEAR(loss, want / 3, 1e-13);
    for (int i = 0; i < V; i++) CHECK(dz[1 * V + i] == 0.0); /* ignored row */
    for (int i = 0; i < N * V; i++) {
        double keep = z[i];
        z[i] = keep + FD_H;
        double lp = dbl_cross_entropy(z, y, N, V, NULL, rl, NULL);
        z[i] = keep - FD_H;
        double lm = dbl_cross_entropy(z, y, N, V, NULL, rl, NULL);
        z[i] = keep;
        double fd = (lp - lm) / (2 * FD_H);
        CHECK_MSG_(close_grad(dz[i], fd), "dz[%d] %.12g vs fd %.12g", i, dz[i], fd);
    }
    /* a large logit does not overflow */
    z[0] = 1e4;
    loss = dbl_cross_entropy(z, y, N, V, dz, rl, NULL);
    CHECK(isfinite(loss));
}

int main(void) {
    RUN(rmsnorm_grad);
    RUN(rope_grad_interleaved);
    RUN(rope_grad_rotate_half);
    RUN(attention_grad);
    RUN(attention_grad_sliding_window);
    RUN(swiglu_grad);
    RUN(embedding_fwd_bwd);
    RUN(cross_entropy_grad);
    return test_report();
}
