/*
 * bench_infer.c — inference speed of the LLaMA model on a generated config (not a ctest):
 *
 *     build/tests/bench_llama_infer [dim layers]        (default 768 12; MSBNB_THREADS sets threads)
 *
 * Config: dim, hidden 8/3·dim rounded to 64, head size 64, vocab 32000 (tied), context 256, random
 * weights (msbnb_model_create_random). For fp32, INT8, NF4, NF4+DQ and INT4 projections it prints
 * weight bytes, prefill speed (one 128-token chunked forward) and decode speed (32 single-token
 * steps through the KV cache), wall clock and process CPU time; the 4-bit formats then again on
 * the same model in FAST precision (msbnb_model_set_precision: int8 products for decode, bf16 for
 * prefill where the CPU has them; row "… F").
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <msbnb/model.h>

static double wall(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static double cpu(void) { return (double)clock() / CLOCKS_PER_SEC; }

int main(int argc, char **argv) {
    int dim = argc > 1 ? atoi(argv[1]) : 768, layers = argc > 2 ? atoi(argv[2]) : 12;
    if (dim < 64 || dim % 64 != 0 || layers < 1) {
        fprintf(stderr, "usage: bench_llama_infer [dim (multiple of 64) layers]\n");
        return 2;
    }
    msbnb_model_config c = {0};
    c.dim = dim;
    c.hidden_dim = (dim * 8 / 3 + 63) / 64 * 64;
    c.n_layers = layers;
    c.n_heads = dim / 64;
    c.n_kv_heads = c.n_heads;
    c.vocab_size = 32000;
    c.seq_len = 256;
    c.norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.tied = 1;
    static const char *names[] = {"f32", "int8", "nf4", "nf4+dq", "int4"};
    static const msbnb_qtype types[] = {MSBNB_QTYPE_NONE, MSBNB_QTYPE_INT8, MSBNB_QTYPE_NF4, MSBNB_QTYPE_NF4,
                                        MSBNB_QTYPE_INT4};
    int32_t ids[160];
    for (int i = 0; i < 160; i++) ids[i] = (int32_t)((i * 7919) % c.vocab_size);
    float *logits = (float *)malloc(sizeof(float) * (size_t)c.vocab_size);
    printf("dim %d, hidden %d, %d layers, %d heads, vocab %d, %d threads\n", c.dim, c.hidden_dim, c.n_layers,
           c.n_heads, c.vocab_size, msbnb_get_num_threads());
    printf("%-9s %10s  %22s  %22s\n", "format", "weights MB", "prefill 128 tok/s (cpu s)", "decode 32 tok/s (cpu s)");
    for (int k = 0; k < 5 && logits; k++) {
        msbnb_model_params p = msbnb_model_params_default();
        p.quant = types[k];
        p.double_quant = k == 3;
        p.max_batch = 128;
        msbnb_model *m = NULL;
        if (msbnb_model_create_random(&c, &p, 1, &m) != MSBNB_OK) {
            fprintf(stderr, "%s: %s\n", names[k], msbnb_last_error());
            return 1;
        }
        const int passes = types[k] == MSBNB_QTYPE_NF4 || types[k] == MSBNB_QTYPE_INT4 ? 2 : 1;
        for (int pass = 0; pass < passes; pass++) { /* pass 1: the same model in FAST precision */
            if (pass && msbnb_model_set_precision(m, MSBNB_PRECISION_FAST) != MSBNB_OK) {
                fprintf(stderr, "%s: %s\n", names[k], msbnb_last_error());
                msbnb_model_free(m);
                return 1;
            }
            double t0 = wall(), c0 = cpu();
            int ok = msbnb_model_forward(m, ids, 128, 0, logits, 0) == MSBNB_OK;
            double t1 = wall(), c1 = cpu();
            for (int i = 0; ok && i < 32; i++)
                ok = msbnb_model_forward(m, ids + 128 + i, 1, 128 + i, logits, 0) == MSBNB_OK;
            double t2 = wall(), c2 = cpu();
            if (!ok) {
                fprintf(stderr, "%s: %s\n", names[k], msbnb_last_error());
                msbnb_model_free(m);
                return 1;
            }
            char name[16];
            snprintf(name, sizeof name, "%s%s", names[k], pass ? " F" : "");
            printf("%-9s %10.1f  %14.1f (%5.2f)  %14.1f (%5.2f)\n", name, (double)msbnb_model_weight_bytes(m) / 1e6,
                   128.0 / (t1 - t0), c1 - c0, 32.0 / (t2 - t1), c2 - c1);
        }
        msbnb_model_free(m);
    }
    free(logits);
    return 0;
}
