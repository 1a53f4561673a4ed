/* bench_onednn.c — benchmark section 'onednn': the compute-bound 4-bit products (n = 512) against
 * oneDNN's own matmul on dense weights of the same shape, measured in the same run, one thread.
 *
 * Peers: oneDNN's dense matmul with float32 weights, and with bf16 weights and activations where
 * oneDNN implements bf16 on this CPU (each printed with oneDNN's implementation string). msbnb: NF4
 * and NF4 + double quant, EXACT and FAST, at the current level (`onednn` by default where built in)
 * and at the plain SIMD level (msbnb's own tiles), forward and transposed (dX). Rows are timed in
 * interleaved rounds (every row once per round, best of the rounds), thread CPU time (robust to
 * preemption on a shared host). Ratios are to the dense peers of the same run.
 *
 * Then the crossover table: GFLOP/s of msbnb's own tiles and of the oneDNN tile path (forced, f32;
 * bf16 where implemented) on 4096 x 4096 NF4 for n = 16 ... 512, forward and transposed — the
 * measurements behind the thresholds in src/kernels/onednn_matmul.c. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msbnb/kernels.h>
#include <msbnb/quant.h>

#include "bench.h"
#include "kernels/onednn_matmul.h"

/* one row of the main table */
typedef enum { R_DENSE_F32, R_DENSE_BF16, R_FWD, R_FWD_OWN, R_T, R_T_OWN } row_kind;
typedef struct brow {
    const char *name;
    row_kind kind;
    int dq;                 /* NF4 + double quant */
    msbnb_precision prec;   /* forward rows */
    double best;            /* seconds */
    int failed;
} brow;

typedef struct operands {
    int64_t out, in, n;
    const float *W, *X, *dY;
    const uint16_t *Wb, *Xb; /* bf16 copies (NULL when oneDNN has no bf16 here) */
    float *Y, *dX;
    msbnb_qtensor *q[2]; /* nf4, nf4+dq */
} operands;

/* Runs row r once; returns seconds of thread CPU time, or -1 on failure. */
static double run_row(const brow *r, const operands *o) {
    const msbnb_isa level = msbnb_isa_current();
    msbnb_status st = MSBNB_OK;
    double t0 = bench_thread_cpu_now();
    switch (r->kind) {
    case R_DENSE_F32:
    case R_DENSE_BF16: {
        const int bf = r->kind == R_DENSE_BF16;
        const msbnb__od_gemm g = {bf ? MSBNB__OD_BF16 : MSBNB__OD_F32, o->n, o->out, o->in, o->in, o->in, o->out, 1, 0};
        st = msbnb__od_run(&g, bf ? (const void *)o->Xb : (const void *)o->X, bf ? (const void *)o->Wb : (const void *)o->W,
                           o->Y);
        break;
    }
    case R_FWD_OWN:
    case R_T_OWN:
        msbnb_isa_set(msbnb_isa_detected()); /* msbnb's own kernels: the SIMD level, no oneDNN */
        t0 = bench_thread_cpu_now();
        /* fall through */
    case R_FWD:
    case R_T:
        if (r->kind == R_FWD || r->kind == R_FWD_OWN) st = msbnb_matmul(o->q[r->dq], o->X, o->n, NULL, o->Y, r->prec);
        else st = msbnb_matmul_t(o->q[r->dq], o->dY, o->n, o->dX, 0);
        break;
    }
    const double dt = bench_thread_cpu_now() - t0;
    msbnb_isa_set(level);
    return st == MSBNB_OK ? dt : -1.0;
}

/* Which engine a row's call took (the dispatcher's rule for this level and n). */
static const char *path_name(const brow *r, int64_t n) {
    const msbnb_isa simd = msbnb_isa_detected();
    msbnb__od_dtype dt = MSBNB__OD_F32;
    int od = 0;
    switch (r->kind) {
    case R_DENSE_F32:
    case R_DENSE_BF16: return "oneDNN, dense weights";
    case R_FWD: od = msbnb__od4_forward_dtype(simd, n, r->prec, &dt); break;
    case R_T: od = msbnb__od4_transposed_dtype(simd, n, 0, &dt); break;
    default: break;
    }
    if (od) return dt == MSBNB__OD_BF16 ? "oneDNN bf16 tiles" : "oneDNN f32 tiles";
    if (r->kind == R_FWD || r->kind == R_FWD_OWN)
        return r->prec == MSBNB_PRECISION_FAST ? (simd >= MSBNB_ISA_AVX512_BF16 ? "msbnb bf16 tiles" : "msbnb int8 / tiles")
                                               : "msbnb tiles";
    return "msbnb tiles";
}

static int main_table(int64_t out, int64_t in, int64_t n, int rounds) {
    operands o = {out, in, n, NULL, NULL, NULL, NULL, NULL, NULL, NULL, {NULL, NULL}};
    float *W = malloc((size_t)(out * in) * sizeof(float)), *X = malloc((size_t)(n * in) * sizeof(float));
    float *dY = malloc((size_t)(n * out) * sizeof(float)), *Y = malloc((size_t)(n * out) * sizeof(float));
    float *dX = malloc((size_t)(n * in) * sizeof(float));
    const int bf16 = msbnb__od_has(MSBNB__OD_BF16);
    uint16_t *Wb = bf16 ? malloc((size_t)(out * in) * sizeof(uint16_t)) : NULL;
    uint16_t *Xb = bf16 ? malloc((size_t)(n * in) * sizeof(uint16_t)) : NULL;
    int rc = 0;
    if (!W || !X || !dY || !Y || !dX || (bf16 && (!Wb || !Xb))) {
        printf("[onednn] out of memory for %lld x %lld\n", (long long)out, (long long)in);
        rc = 1;
        goto done;
    }
    bench_fill_uniform(W, (size_t)(out * in), 3, 0.05f);
    bench_fill_uniform(X, (size_t)(n * in), 5, 1.0f);
    bench_fill_uniform(dY, (size_t)(n * out), 9, 1.0f);
    if (bf16) {
        msbnb_f32_to_bf16_array(W, Wb, (size_t)(out * in));
        msbnb_f32_to_bf16_array(X, Xb, (size_t)(n * in));
    }
    o.W = W, o.X = X, o.dY = dY, o.Y = Y, o.dX = dX, o.Wb = Wb, o.Xb = Xb;
    for (int dq = 0; dq < 2; dq++) {
        msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
        cfg.double_quant = dq;
        if (msbnb_quantize(W, out, in, &cfg, &o.q[dq]) != MSBNB_OK) {
            printf("[onednn] quantize: %s\n", msbnb_last_error());
            rc = 1;
            goto done;
        }
    }
    brow rows[] = {
        {"oneDNN dense f32", R_DENSE_F32, 0, MSBNB_PRECISION_EXACT, 1e30, 0},
        {"oneDNN dense bf16", R_DENSE_BF16, 0, MSBNB_PRECISION_EXACT, 1e30, !bf16},
        {"nf4 exact", R_FWD, 0, MSBNB_PRECISION_EXACT, 1e30, 0},
        {"nf4 exact own", R_FWD_OWN, 0, MSBNB_PRECISION_EXACT, 1e30, 0},
        {"nf4 fast", R_FWD, 0, MSBNB_PRECISION_FAST, 1e30, 0},
        {"nf4 fast own", R_FWD_OWN, 0, MSBNB_PRECISION_FAST, 1e30, 0},
        {"nf4+dq exact", R_FWD, 1, MSBNB_PRECISION_EXACT, 1e30, 0},
        {"nf4+dq exact own", R_FWD_OWN, 1, MSBNB_PRECISION_EXACT, 1e30, 0},
        {"nf4+dq fast", R_FWD, 1, MSBNB_PRECISION_FAST, 1e30, 0},
        {"nf4 dX", R_T, 0, MSBNB_PRECISION_EXACT, 1e30, 0},
        {"nf4 dX own", R_T_OWN, 0, MSBNB_PRECISION_EXACT, 1e30, 0},
        {"nf4+dq dX", R_T, 1, MSBNB_PRECISION_EXACT, 1e30, 0},
        {"nf4+dq dX own", R_T_OWN, 1, MSBNB_PRECISION_EXACT, 1e30, 0},
    };
    const int n_rows = (int)(sizeof rows / sizeof rows[0]);
    for (int r = 0; r < n_rows; r++) /* untimed warm-up: pages, primitive creation */
        if (!rows[r].failed && run_row(&rows[r], &o) < 0) rows[r].failed = 1;
    for (int round = 0; round < rounds; round++)
        for (int r = 0; r < n_rows; r++) {
            if (rows[r].failed) continue;
            const double t = run_row(&rows[r], &o);
            if (t < 0) rows[r].failed = 1;
            else if (t < rows[r].best) rows[r].best = t;
        }
    const double flops = 2.0 * (double)n * (double)in * (double)out;
    const double f32 = rows[0].failed ? 0 : flops / rows[0].best / 1e9;
    const double b16 = rows[1].failed ? 0 : flops / rows[1].best / 1e9;
    const msbnb__od_gemm gf = {MSBNB__OD_F32, n, out, in, in, in, out, 1, 0};
    const msbnb__od_gemm gb = {MSBNB__OD_BF16, n, out, in, in, in, out, 1, 0};
    char impl_f32[96], impl_bf16[96], shape[48];
    snprintf(impl_f32, sizeof impl_f32, "%s", msbnb__od_impl(&gf));
    snprintf(impl_bf16, sizeof impl_bf16, "%s", msbnb__od_impl(&gb));
    snprintf(shape, sizeof shape, "%lldx%lld", (long long)out, (long long)in);
    printf("\n[onednn] W %s (out x in), n = %lld, one thread, best of %d interleaved rounds; dense peers: f32 %s, "
           "bf16 %s\n", shape, (long long)n, rounds, impl_f32, bf16 ? impl_bf16 : "(no native bf16 here: not run)");
    printf("  %-18s %9s %9s %10s %10s  %s\n", "what", "ms", "GFLOP/s", "x dense32", "x dense16", "ran on");
    double best_nf4 = 0, best_dq = 0;
    for (int r = 0; r < n_rows; r++) {
        if (rows[r].failed) {
            printf("  %-18s %9s\n", rows[r].name, r == 1 ? "unimplemented" : "failed");
            continue;
        }
        const double gfl = flops / rows[r].best / 1e9;
        char x16[16] = "-";
        if (b16 > 0) snprintf(x16, sizeof x16, "%.2f", gfl / b16);
        printf("  %-18s %9.2f %9.1f %10.2f %10s  %s\n", rows[r].name, rows[r].best * 1e3, gfl, f32 > 0 ? gfl / f32 : 0.0,
               x16, path_name(&rows[r], n));
        const char *impl = r == 0 ? impl_f32 : r == 1 ? impl_bf16 : "";
        bench_record("onednn", rows[r].name, shape, n, 1, gfl, "GFLOP/s", r == 0 ? NULL : "oneDNN dense f32", f32, impl);
        if (r >= 1 && b16 > 0) bench_record("onednn", rows[r].name, shape, n, 1, gfl, "GFLOP/s", "oneDNN dense bf16", b16, impl);
        if (rows[r].kind == R_FWD || rows[r].kind == R_FWD_OWN) {
            if (rows[r].dq) best_dq = gfl > best_dq ? gfl : best_dq;
            else best_nf4 = gfl > best_nf4 ? gfl : best_nf4;
        }
    }
    const double peer = b16 > 0 ? b16 : f32;
    printf("  msbnb's best forward mode: nf4 %.1f, nf4+dq %.1f GFLOP/s = %.2f / %.2f x oneDNN dense %s (target >= 0.8 x "
           "dense bf16%s)\n", best_nf4, best_dq, peer > 0 ? best_nf4 / peer : 0.0, peer > 0 ? best_dq / peer : 0.0,
           b16 > 0 ? "bf16" : "f32", b16 > 0 ? "" : "; no bf16 peer on this CPU, so against f32");
    /* the targets: >= 0.8 x oneDNN's dense bf16 matmul (where it exists), >= 500 GFLOP/s on AMX */
    const msbnb__od_class cls = msbnb__od_cpu_class();
    if (b16 > 0)
        printf("  target: >= 0.8 x oneDNN dense bf16: nf4 %.2f %s, nf4+dq %.2f %s\n", best_nf4 / b16,
               best_nf4 >= 0.8 * b16 ? "PASS" : "FAIL", best_dq / b16, best_dq >= 0.8 * b16 ? "PASS" : "FAIL");
    else
        printf("  target >= 0.8 x oneDNN dense bf16: not measurable here (no native bf16 matmul in oneDNN on class %s)\n",
               msbnb__od_class_name(cls));
    if (cls == MSBNB__OD_AMX)
        printf("  target (AMX host): >= 500 GFLOP/s: nf4 %.0f %s, nf4+dq %.0f %s\n", best_nf4,
               best_nf4 >= 500 ? "PASS" : "FAIL", best_dq, best_dq >= 500 ? "PASS" : "FAIL");
    else
        printf("  target (AMX hosts) >= 500 GFLOP/s: not measurable here (class %s)\n", msbnb__od_class_name(cls));
    bench_record("onednn", "nf4 best forward", shape, n, 1, best_nf4, "GFLOP/s", b16 > 0 ? "oneDNN dense bf16" : "oneDNN dense f32",
                 peer, "");
    bench_record("onednn", "nf4+dq best forward", shape, n, 1, best_dq, "GFLOP/s",
                 b16 > 0 ? "oneDNN dense bf16" : "oneDNN dense f32", peer, "");
done:
    msbnb_qtensor_free(o.q[0]);
    msbnb_qtensor_free(o.q[1]);
    free(W), free(X), free(dY), free(Y), free(dX), free(Wb), free(Xb);
    return rc;
}

/* GFLOP/s of one call, best of `reps` */
#define BEST_OF(reps, best, call)                                                                            \
    do {                                                                                                     \
        best = 1e30;                                                                                         \
        for (int rep_ = 0; rep_ < (reps); rep_++) {                                                          \
            double t0_ = bench_thread_cpu_now();                                                                          \
            call;                                                                                            \
            double dt_ = bench_thread_cpu_now() - t0_;                                                                    \
            if (dt_ < best) best = dt_;                                                                      \
        }                                                                                                    \
    } while (0)

static int crossover_table(int64_t out, int64_t in, int quick) {
#if MSBNB_HAVE_X86
    static const int64_t ns[] = {16, 32, 64, 128, 256, 512};
    const int n_ns = quick ? 4 : 6;
    const int64_t nmax = ns[n_ns - 1];
    float *W = malloc((size_t)(out * in) * sizeof(float)), *X = malloc((size_t)(nmax * in) * sizeof(float));
    float *Y = malloc((size_t)(nmax * (out > in ? out : in)) * sizeof(float));
    msbnb_qtensor *q = NULL;
    msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    int rc = 0;
    if (!W || !X || !Y) rc = 1;
    if (!rc) {
        bench_fill_uniform(W, (size_t)(out * in), 11, 0.05f);
        bench_fill_uniform(X, (size_t)(nmax * in), 13, 1.0f);
        if (msbnb_quantize(W, out, in, &cfg, &q) != MSBNB_OK) rc = 1;
    }
    const msbnb_isa simd = msbnb_isa_detected(), level = msbnb_isa_current();
    if (rc || simd < MSBNB_ISA_AVX2 || !msbnb__od_has(MSBNB__OD_F32)) {
        if (!rc) printf("\n[onednn] crossover: no oneDNN f32 path on this build/CPU\n");
        goto done;
    }
    msbnb__mm4_kernels k = simd >= MSBNB_ISA_AVX512 ? msbnb__mm4_avx512 : msbnb__mm4_avx2;
    if (simd >= MSBNB_ISA_AVX512_BF16) k.to_bf16 = msbnb__mm4_avx512bf16.to_bf16;
    const int bf16 = msbnb__od_has(MSBNB__OD_BF16);
    msbnb__w4 w;
    msbnb__w4_init(q, &w);
    char shape[48];
    snprintf(shape, sizeof shape, "%lldx%lld", (long long)out, (long long)in);
    printf("\n[onednn] crossover, NF4 W %s, one thread, GFLOP/s: msbnb's own tiles (level %s) against the oneDNN "
           "tile path forced (f32%s); thresholds in src/kernels/onednn_matmul.c\n", shape, msbnb_isa_name(simd),
           bf16 ? ", bf16" : "; bf16 not implemented here");
    printf("  %5s %10s %10s %10s %10s %10s %10s\n", "n", "fwd own", "fwd od32", "fwd od16", "dX own", "dX od32", "dX od16");
    for (int ni = 0; ni < n_ns; ni++) {
        const int64_t n = ns[ni];
        const double fl = 2.0 * (double)n * (double)in * (double)out / 1e9;
        const int reps = 2;
        double t[6] = {0};
        msbnb_isa_set(simd);
        BEST_OF(reps, t[0], msbnb_matmul(q, X, n, NULL, Y, MSBNB_PRECISION_EXACT));
        BEST_OF(reps, t[3], msbnb_matmul_t(q, Y, n, X, 0));
        msbnb_isa_set(level);
        BEST_OF(reps, t[1], msbnb__matmul_4bit_onednn(&k, &w, X, n, NULL, Y, MSBNB__OD_F32, 0));
        BEST_OF(reps, t[4], msbnb__matmul_4bit_t_onednn(&k, &w, Y, n, X, 0, MSBNB__OD_F32, 0));
        if (bf16) {
            BEST_OF(reps, t[2], msbnb__matmul_4bit_onednn(&k, &w, X, n, NULL, Y, MSBNB__OD_BF16, 0));
            BEST_OF(reps, t[5], msbnb__matmul_4bit_t_onednn(&k, &w, Y, n, X, 0, MSBNB__OD_BF16, 0));
        }
        printf("  %5lld", (long long)n);
        static const char *names[6] = {"fwd own", "fwd onednn f32", "fwd onednn bf16", "dX own", "dX onednn f32",
                                       "dX onednn bf16"};
        for (int c = 0; c < 6; c++) {
            if (t[c] > 0) {
                printf(" %10.1f", fl / t[c]);
                bench_record("onednn-crossover", names[c], shape, n, 1, fl / t[c], "GFLOP/s", NULL, 0, "");
            } else {
                printf(" %10s", "-");
            }
        }
        printf("\n");
    }
done:
    msbnb_qtensor_free(q);
    free(W), free(X), free(Y);
    return rc;
#else
    (void)out, (void)in, (void)quick;
    return 0;
#endif
}

int bench_onednn(int quick) {
    const int saved = msbnb_get_num_threads();
    msbnb_set_num_threads(1);
    printf("\n[onednn] CPU %s; engine %s\n", bench_cpu_model(), bench_engine());
    int rc = 0;
    if (quick) {
        rc |= main_table(1024, 1024, 256, 1);
        rc |= crossover_table(1024, 1024, 1);
        rc |= bench_onednn_int8(1);
        rc |= bench_onednn_dense(1);
    } else {
        rc |= main_table(4096, 4096, 512, 3);
        rc |= main_table(11008, 4096, 512, 2);
        rc |= crossover_table(4096, 4096, 0);
        rc |= bench_onednn_int8(0);
        rc |= bench_onednn_dense(0);
    }
    msbnb_set_num_threads(saved);
    return rc;
}
