/*
 * qlora_layer.c — the memory of one QLoRA layer, from the library's own footprint queries:
 * a 4096 x 4096 base in NF4 with double quantization (blocksize 64, nested blocksize 256), an
 * r = 16 LoRA adapter, and 8-bit AdamW state for the adapter. Expected: ≈ 4.127 bits per base
 * weight (4 + 8/64 + 32/(64·256)), plus the adapter's fp32 A, B and their gradients, plus 2 bytes
 * per adapter element of optimizer state. One training step runs at the end to show it all works.
 *
 * Run: ./qlora_layer [dim] [rank]      (defaults 4096 16)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <msbnb/optim.h>

#define CHECKED(call)                                                                          \
    do {                                                                                       \
        msbnb_status st_ = (call);                                                             \
        if (st_ != MSBNB_OK) {                                                                 \
            fprintf(stderr, "%s failed: %s (%s)\n", #call, msbnb_status_str(st_), msbnb_last_error()); \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

static double now(void) {
    struct timespec ts; /* C11 wall clock (clock_gettime needs POSIX feature macros) */
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

int main(int argc, char **argv) {
    const int64_t dim = argc > 1 ? atoll(argv[1]) : 4096;
    const int rank = argc > 2 ? atoi(argv[2]) : 16;
    const int64_t batch = 4;

    /* Base: nn.Linear-initialised fp32 weights, quantized to NF4 + double quantization. */
    double t0 = now();
    msbnb_linear *dense = NULL, *layer = NULL;
    CHECKED(msbnb_linear_create(dim, dim, 0, 1, &dense));
    msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    cfg.double_quant = 1;
    CHECKED(msbnb_linear4bit_from_linear(dense, &cfg, &layer));
    msbnb_linear_free(dense);
    double t_quant = now() - t0;

    msbnb_lora_params lp = msbnb_lora_params_default();
    lp.r = rank;
    lp.lora_alpha = 2.0f * (float)rank;
    CHECKED(msbnb_lora_add(layer, "default", &lp));

    msbnb_adamw_params ap = msbnb_adamw_params_default(); /* blocksize 256, min_8bit_size 4096 */
    ap.lr = 2e-4f;
    msbnb_optim *opt = NULL;
    CHECKED(msbnb_adamw8bit_create(&ap, &opt));
    CHECKED(msbnb_optim_add_linear(opt, layer, "layer"));

    msbnb_linear_memory m;
    CHECKED(msbnb_linear_memory_usage(layer, &m));
    int n8 = 0;
    size_t opt_bytes = msbnb_optim_state_bytes(opt, &n8);
    const size_t nw = (size_t)(dim * dim), na = (size_t)rank * (size_t)(2 * dim);

    printf("QLoRA layer %lld x %lld, NF4 + double quantization, LoRA r = %d (quantized in %.2f s)\n\n",
           (long long)dim, (long long)dim, rank, t_quant);
    printf("  base codes            %12zu bytes  %8.2f MiB   (4 bits x %zu weights)\n", m.weight_bytes,
           mib(m.weight_bytes), nw);
    printf("  base statistics       %12zu bytes  %8.2f MiB   (8-bit absmax per 64 + fp32 per 256 blocks)\n",
           m.stats_bytes, mib(m.stats_bytes));
    printf("  => bits per base weight: %.4f\n\n", m.base_bits_per_weight);
    printf("  adapter A + B (fp32)  %12zu bytes  %8.2f MiB   (%zu parameters)\n", m.adapter_bytes,
           mib(m.adapter_bytes), na);
    printf("  adapter gradients     %12zu bytes  %8.2f MiB\n", m.adapter_grad_bytes, mib(m.adapter_grad_bytes));
    printf("  8-bit AdamW state     %12zu bytes  %8.2f MiB   (%d tensors in 8-bit; %.3f bytes/parameter)\n",
           opt_bytes, mib(opt_bytes), n8, (double)opt_bytes / (double)na);
    size_t total = m.total_bytes + opt_bytes;
    printf("  total                 %12zu bytes  %8.2f MiB\n\n", total, mib(total));
    size_t full = nw * 4 * 4; /* fp32 weights + gradients + two fp32 Adam moments */
    printf("  full fp32 fine-tuning would hold %.2f MiB (weights, gradients, Adam moments): %.1fx more\n",
           mib(full), (double)full / (double)total);
    printf("  the base alone: %.2f MiB in fp32, %.2f MiB in fp16 -> %.2f MiB here (%.1f%% / %.1f%% saved)\n\n",
           mib(m.f32_weight_bytes), mib(m.f32_weight_bytes / 2), mib(m.weight_bytes + m.stats_bytes),
           100.0 * (1.0 - (double)(m.weight_bytes + m.stats_bytes) / (double)m.f32_weight_bytes),
           100.0 * (1.0 - (double)(m.weight_bytes + m.stats_bytes) / (double)(m.f32_weight_bytes / 2)));

    /* One training step: forward, a squared-error gradient toward zero, backward, 8-bit AdamW. */
    float *X = malloc(sizeof(float) * (size_t)(batch * dim)), *Y = malloc(sizeof(float) * (size_t)(batch * dim));
    float *dX = malloc(sizeof(float) * (size_t)(batch * dim));
    for (int64_t i = 0; i < batch * dim; i++) X[i] = (float)((i * 7919) % 2001 - 1000) / 1000.0f;
    msbnb_linear_set_training(layer, 1);
    t0 = now();
    CHECKED(msbnb_linear_forward(layer, X, batch, Y));
    double t_fwd = now() - t0;
    t0 = now();
    CHECKED(msbnb_linear_backward(layer, X, Y, batch, dX)); /* dL/dY = Y for L = ½‖Y‖² */
    double t_bwd = now() - t0;
    t0 = now();
    msbnb_optim_step_info info;
    CHECKED(msbnb_optim_step(opt, &info));
    double t_opt = now() - t0;
    printf("one step on a batch of %lld: forward %.1f ms, backward %.1f ms, optimizer %.1f ms (grad norm %.3g)\n",
           (long long)batch, 1e3 * t_fwd, 1e3 * t_bwd, 1e3 * t_opt, info.grad_norm);

    free(X);
    free(Y);
    free(dX);
    msbnb_optim_free(opt);
    msbnb_linear_free(layer);
    return 0;
}
