/*
 * lora_model.c — helpers over a collection of layers (the seed's freeze_model_except_lora,
 * print_trainable_params and print_lora_info; PEFT's mark_only_lora_as_trainable and
 * print_trainable_parameters).
 */
#include <stdio.h>

#include "nn/nn_internal.h"

msbnb_status msbnb_freeze_model_except_lora(msbnb_linear *const *layers, int n) {
    RETURN_IF(!layers && n > 0, MSBNB_ERR_INVALID_ARG, "layers is NULL");
    for (int i = 0; i < n; i++)
        if (layers[i]) TRY(msbnb_linear_set_frozen(layers[i], 1));
    return MSBNB_OK;
}

void msbnb_print_trainable_params(msbnb_linear *const *layers, int n, FILE *f) {
    if (!f) f = stdout;
    int64_t trainable = 0, total = 0;
    for (int i = 0; layers && i < n; i++) {
        int64_t t = 0, a = 0;
        msbnb_linear_count_params(layers[i], &t, &a);
        trainable += t;
        total += a;
    }
    fprintf(f, "trainable params: %lld || all params: %lld || trainable%%: %.4f\n", (long long)trainable,
            (long long)total, total > 0 ? 100.0 * (double)trainable / (double)total : 0.0);
}

static const char *storage_name(const msbnb_linear *l) {
    msbnb_qtype t = msbnb_linear_weight_qtype(l);
    return t == MSBNB_QTYPE_NONE ? "f32" : msbnb_qtype_name(t);
}

void msbnb_print_lora_info(msbnb_linear *const *layers, const char *const *names, int n, FILE *f) {
    if (!f) f = stdout;
    size_t base_bytes = 0, adapter_bytes = 0, f32_bytes = 0;
    int n_lora = 0;
    fprintf(f, "%-24s %-5s %-5s %11s  %-12s %4s %7s %8s %7s %6s %12s\n", "layer", "kind", "store", "shape", "adapter",
            "r", "alpha", "scaling", "dropout", "merged", "bytes");
    for (int i = 0; layers && i < n; i++) {
        msbnb_linear *l = layers[i];
        if (!l) continue;
        char fallback[32];
        snprintf(fallback, sizeof fallback, "layer%d", i);
        const char *name = (names && names[i]) ? names[i] : fallback;
        msbnb_linear_memory m;
        if (msbnb_linear_memory_usage(l, &m) != MSBNB_OK) continue;
        base_bytes += m.weight_bytes + m.stats_bytes + m.bias_bytes;
        adapter_bytes += m.adapter_bytes;
        f32_bytes += m.f32_weight_bytes + m.bias_bytes;
        char shape[40];
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)l->out, (long long)l->in);
        int idx = l->merged >= 0 ? l->merged : l->active;
        if (idx >= 0) {
            const lora_adapter *a = &l->adapters[idx];
            n_lora++;
            fprintf(f, "%-24s %-5s %-5s %11s  %-12s %4d %7.2f %8.4f %7.3f %6s %12zu\n", name,
                    msbnb_linear_kind_name(l->kind), storage_name(l), shape, a->name, a->r, (double)a->alpha,
                    (double)a->scaling, (double)a->dropout, l->merged >= 0 ? "yes" : "no", m.total_bytes);
        } else {
            fprintf(f, "%-24s %-5s %-5s %11s  %-12s %4s %7s %8s %7s %6s %12zu\n", name,
                    msbnb_linear_kind_name(l->kind), storage_name(l), shape, "-", "-", "-", "-", "-", "-",
                    m.total_bytes);
        }
    }
    fprintf(f, "layers with an active adapter: %d of %d; base weights %zu bytes (fp32 would be %zu, %.1f%% saved); "
               "adapters %zu bytes\n",
            n_lora, n, base_bytes, f32_bytes, f32_bytes ? 100.0 * (1.0 - (double)base_bytes / (double)f32_bytes) : 0.0,
            adapter_bytes);
    msbnb_print_trainable_params(layers, n, f);
}
