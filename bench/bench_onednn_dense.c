/* bench_onednn_dense.c — part of benchmark section 'onednn': the model's dense products in training
 * (d768 x 12 configuration of `msbnb_bench train`, batch 4 x 256 = 1024 rows) on their current
 * engine against oneDNN, one thread, thread CPU time, best of interleaved rounds:
 *   - the output matrix (32000 x 768): forward logits = X · Wᵀ and dX = dlogits · W, through
 *     msbnb_matmul_f32 / _t (OpenBLAS on AVX2; msbnb's AVX-512 tiles from that level), against
 *     oneDNN's f32 tiles and, where the CPU has native bf16, oneDNN's bf16 tiles (the path bf16
 *     training takes there: msbnb__dense_bf16_pick);
 *   - attention's per-head products (T = 256, head_dim 64, 48 batch-heads): S = Q·Kᵀ and O = P·V,
 *     cblas_sgemm (as backward_ops.c runs them) against one oneDNN f32 matmul per head.
 * The rows behind the dense policy in src/kernels/matmul_bf16.c and docs/onednn.md. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#include <msbnb/kernels.h>

#include "bench.h"
#include "kernels/kernels_internal.h"
#include "kernels/onednn_matmul.h"

enum { H_FWD_BLAS, H_FWD_OD32, H_FWD_OD16, H_T_BLAS, H_T_OD32, H_T_OD16, A_S_BLAS, A_S_OD, A_O_BLAS, A_O_OD, N_ROWS };
static const char *const row_names[N_ROWS] = {
    "head fwd, msbnb_matmul_f32", "head fwd, oneDNN f32 tiles", "head fwd, oneDNN bf16 tiles",
    "head dX, msbnb_matmul_f32_t", "head dX, oneDNN f32 tiles", "head dX, oneDNN bf16 tiles",
    "attn S=QK^T, cblas_sgemm", "attn S=QK^T, oneDNN f32", "attn O=PV, cblas_sgemm", "attn O=PV, oneDNN f32"};

typedef struct dense_ops {
    int64_t V, D, N, BH, T, hd;
    const float *W, *X, *dY, *Q, *K, *P;
    float *Y, *dX, *S, *O;
    msbnb_isa simd, level;
} dense_ops;

/* one timed run of row r; seconds of thread CPU time, -1 on failure */
static double run_row(int r, const dense_ops *o) {
    msbnb_status st = MSBNB_OK;
    const int64_t qs = o->BH / 4 * o->hd; /* row stride of Q, K, O: 12 heads of a batch row */
    const msbnb__od_gemm gs = {MSBNB__OD_F32, o->T, o->T, o->hd, qs, qs, o->T, 1, 0};
    const msbnb__od_gemm go = {MSBNB__OD_F32, o->T, o->hd, o->T, o->T, qs, qs, 0, 0};
    if (r == H_FWD_BLAS || r == H_T_BLAS) msbnb_isa_set(o->simd);
    const double t0 = bench_thread_cpu_now();
    switch (r) {
    case H_FWD_BLAS: st = msbnb_matmul_f32(o->W, o->V, o->D, o->X, o->N, NULL, o->Y); break;
    case H_FWD_OD32: st = msbnb__matmul_dense_onednn(o->W, o->V, o->D, o->X, o->N, NULL, o->Y, MSBNB__OD_F32, 0); break;
    case H_FWD_OD16: st = msbnb__matmul_f32_bf16(o->W, o->V, o->D, o->X, o->N, NULL, o->Y); break;
    case H_T_BLAS: st = msbnb_matmul_f32_t(o->W, o->V, o->D, o->dY, o->N, o->dX, 0); break;
    case H_T_OD32: st = msbnb__matmul_dense_t_onednn(o->W, o->V, o->D, o->dY, o->N, o->dX, 0, MSBNB__OD_F32, 0); break;
    case H_T_OD16: st = msbnb__matmul_f32_t_bf16(o->W, o->V, o->D, o->dY, o->N, o->dX, 0); break;
    default:
        for (int64_t h = 0; h < o->BH && st == MSBNB_OK; h++) {
            const int64_t b = h / (o->BH / 4), hh = h % (o->BH / 4);
            const float *q = o->Q + b * o->T * qs + hh * o->hd, *k = o->K + b * o->T * qs + hh * o->hd;
            const float *p = o->P + h * o->T * o->T;
            float *s = o->S + h * o->T * o->T, *out = o->O + b * o->T * qs + hh * o->hd;
            if (r == A_S_BLAS)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)o->T, (int)o->T, (int)o->hd, 1.0f, q, (int)qs,
                            k, (int)qs, 0.0f, s, (int)o->T);
            else if (r == A_S_OD) st = msbnb__od_run(&gs, q, k, s);
            else if (r == A_O_BLAS)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)o->T, (int)o->hd, (int)o->T, 1.0f, p,
                            (int)o->T, k, (int)qs, 0.0f, out, (int)qs);
            else st = msbnb__od_run(&go, p, k, out);
        }
    }
    const double dt = bench_thread_cpu_now() - t0;
    msbnb_isa_set(o->level);
    return st == MSBNB_OK ? dt : -1.0;
}

int bench_onednn_dense(int quick) {
    if (!msbnb_onednn_available()) {
        printf("\n[onednn] dense products: no oneDNN level in this build / on this CPU\n");
        return 0;
    }
    dense_ops o = {quick ? 8000 : 32000, 768, quick ? 256 : 1024, quick ? 8 : 48, 256, 64, NULL, NULL, NULL,
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, msbnb_isa_detected(), msbnb_isa_current()};
    const int64_t qs = o.BH / 4 * o.hd, rows_qk = 4 * o.T * qs;
    float *W = malloc((size_t)(o.V * o.D) * sizeof(float)), *X = malloc((size_t)(o.N * o.D) * sizeof(float));
    float *dY = malloc((size_t)(o.N * o.V) * sizeof(float)), *Y = malloc((size_t)(o.N * o.V) * sizeof(float));
    float *dX = malloc((size_t)(o.N * o.D) * sizeof(float)), *Q = malloc((size_t)rows_qk * sizeof(float));
    float *K = malloc((size_t)rows_qk * sizeof(float)), *O = malloc((size_t)rows_qk * sizeof(float));
    float *P = malloc((size_t)(o.BH * o.T * o.T) * sizeof(float)), *S = malloc((size_t)(o.BH * o.T * o.T) * sizeof(float));
    int rc = !W || !X || !dY || !Y || !dX || !Q || !K || !O || !P || !S;
    if (rc) {
        printf("\n[onednn] dense products: out of memory\n");
        goto done;
    }
    bench_fill_uniform(W, (size_t)(o.V * o.D), 21, 0.05f), bench_fill_uniform(X, (size_t)(o.N * o.D), 22, 1.0f);
    bench_fill_uniform(dY, (size_t)(o.N * o.V), 23, 1e-3f), bench_fill_uniform(Q, (size_t)rows_qk, 24, 1.0f), bench_fill_uniform(K, (size_t)rows_qk, 25, 1.0f);
    bench_fill_uniform(P, (size_t)(o.BH * o.T * o.T), 26, 1.0f);
    o.W = W, o.X = X, o.dY = dY, o.Y = Y, o.dX = dX, o.Q = Q, o.K = K, o.P = P, o.S = S, o.O = O;
    const int bf16 = msbnb__od_has(MSBNB__OD_BF16);
    double best[N_ROWS];
    int failed[N_ROWS] = {0};
    failed[H_FWD_OD16] = failed[H_T_OD16] = !bf16; /* emulated bf16 is fp32 work: not a peer */
    const int rounds = quick ? 1 : 3;
    for (int r = 0; r < N_ROWS; r++) best[r] = 1e30;
    for (int round = -1; round < rounds; round++) /* round -1: warm-up (pages, primitives) */
        for (int r = 0; r < N_ROWS; r++) {
            if (failed[r]) continue;
            const double t = run_row(r, &o);
            if (t < 0) failed[r] = 1;
            else if (round >= 0 && t < best[r]) best[r] = t;
        }
    const double fl_head = 2.0 * (double)o.N * (double)o.V * (double)o.D / 1e9;
    const double fl_att = 2.0 * (double)o.BH * (double)o.T * (double)o.T * (double)o.hd / 1e9;
    const msbnb__od_gemm ghead = {MSBNB__OD_F32, o.N, 256, 768, 768, 768, o.V, 1, 0}; /* a forward tile */
    printf("\n[onednn] dense products of training (d768, %lld rows), one thread, best of %d interleaved rounds; "
           "OpenBLAS %s, oneDNN f32 %s, bf16 %s\n", (long long)o.N, rounds, openblas_get_corename(),
           msbnb__od_impl(&ghead), bf16 ? "native" : "not native here (rows skipped)");
    printf("  %-32s %10s %9s %s\n", "what", "shape", "GFLOP/s", "x current engine");
    for (int r = 0; r < N_ROWS; r++) {
        const int att = r >= A_S_BLAS;
        const int base = att ? (r < A_O_BLAS ? A_S_BLAS : A_O_BLAS) : (r < H_T_BLAS ? H_FWD_BLAS : H_T_BLAS);
        char shape[48];
        if (att) snprintf(shape, sizeof shape, "%lldx%dx%d", (long long)o.BH, (int)o.T, (int)o.T);
        else snprintf(shape, sizeof shape, "%lldx%lld", (long long)o.V, (long long)o.D);
        if (failed[r]) {
            printf("  %-32s %10s %9s\n", row_names[r], shape, r == H_FWD_OD16 || r == H_T_OD16 ? "-" : "failed");
            continue;
        }
        const double g = (att ? fl_att : fl_head) / best[r], g0 = failed[base] ? 0 : (att ? fl_att : fl_head) / best[base];
        printf("  %-32s %10s %9.1f %8.2f\n", row_names[r], shape, g, g0 > 0 ? g / g0 : 0.0);
        bench_record("onednn-dense", row_names[r], shape, o.N, 1, g, "GFLOP/s", r == base ? NULL : row_names[base], g0,
                     r == base ? openblas_get_corename() : msbnb__od_impl(&ghead));
    }
done:
    free(W), free(X), free(dY), free(Y), free(dX), free(Q), free(K), free(O), free(P), free(S);
    return rc;
}
