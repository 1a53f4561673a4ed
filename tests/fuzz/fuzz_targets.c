/* fuzz_targets.c — see fuzz_targets.h. */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_targets.h"
#include "model/llama_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msbnb/quant.h>

#include "io/io_internal.h"

const char *fuzz_scratch_dir(void) {
    static const char *dir;
    if (!dir) {
        const char *env = getenv("MSBNB_FUZZ_TMPDIR");
        /* the longest name appended is "/msbnb-fuzz-adapter-XXXXXX/adapter_model.safetensors" */
        if (env && *env && strlen(env) < FUZZ_PATH_MAX - 64) dir = env;
        else if (access("/dev/shm", W_OK | X_OK) == 0) dir = "/dev/shm";
        else dir = "/tmp";
    }
    return dir;
}

msbnb_status fuzz_one_safetensors(const uint8_t *data, size_t size) {
    msbnb_safetensors *f = NULL;
    msbnb_status st = msbnb_safetensors_open_memory(data, size, "fuzz.safetensors", &f);
    if (st != MSBNB_OK) return st;
    volatile float sink = 0;
    for (size_t i = 0; i < msbnb_safetensors_count(f); i++) {
        msbnb_tensor_info t, u;
        if (msbnb_safetensors_get(f, i, &t) != MSBNB_OK) abort();
        if (msbnb_safetensors_find(f, t.name, &u) != MSBNB_OK || u.data != t.data) abort();
        /* every byte of a tensor lies inside the input */
        if ((const uint8_t *)t.data < data || (const uint8_t *)t.data + t.nbytes > data + size) abort();
        if (t.numel <= 4096) {
            float *x = malloc((size_t)t.numel * sizeof(float) + 1);
            if (x && msbnb_tensor_to_f32(&t, x) == MSBNB_OK && t.numel > 0) sink += x[0];
            free(x);
        }
    }
    for (size_t i = 0; i < msbnb_safetensors_metadata_count(f); i++) {
        const char *k, *v;
        if (msbnb_safetensors_metadata_get(f, i, &k, &v) != MSBNB_OK) abort();
        sink += (float)strlen(k) + (float)strlen(v);
        if (msbnb_safetensors_metadata(f, k) == NULL) abort();
    }
    (void)sink;
    msbnb_safetensors_close(f);
    return MSBNB_OK;
}

msbnb_status fuzz_one_config(const uint8_t *data, size_t size) {
    msbnb_config *c = NULL;
    msbnb_status st = msbnb_config_parse((const char *)data, size, "fuzz.json", &c);
    if (st == MSBNB_OK) {
        static const char *const keys[] = {"num_hidden_layers", "hidden_size", "rope_theta", "rope_parameters.rope_theta",
                                           "rope_scaling.factor", "tie_word_embeddings", "model_type", "architectures",
                                           "a", "a.b", "a.b.c", "quantization_config.llm_int8_threshold", ""};
        int64_t i64;
        double d;
        int b;
        const char *s;
        size_t n;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            msbnb_config_get_int(c, keys[k], &i64);
            msbnb_config_get_double(c, keys[k], &d);
            msbnb_config_get_bool(c, keys[k], &b);
            if (msbnb_config_get_string(c, keys[k], &s) == MSBNB_OK && !s) abort();
            if (msbnb_config_array_len(c, keys[k], &n) == MSBNB_OK && n > 0) {
                msbnb_config_array_string(c, keys[k], n - 1, &s);
                msbnb_config_array_int(c, keys[k], 0, &i64);
            }
            msbnb_config_has(c, keys[k]);
        }
        if (!msbnb_config_json(c)) abort();
        msbnb_config_free(c);
        /* the model's reading of it: family, sizes, RoPE type and parameters, sliding window */
        msbnb_model_config mc;
        if (msbnb__llama_config_from_json((const char *)data, size, &mc) == MSBNB_OK &&
            (mc.head_dim < 2 || mc.n_kv_heads < 1 || mc.n_heads % mc.n_kv_heads != 0))
            abort();
    }
    fuzz_one_adapter_config(data, size);
    return st;
}

msbnb_status fuzz_one_adapter_config(const uint8_t *data, size_t size) {
    msbnb_peft_adapter *a = NULL;
    msbnb_status st = msbnb_peft_config_parse((const char *)data, size, "adapter_config.json", &a);
    if (st == MSBNB_OK) {
        const msbnb_peft_config *cfg = msbnb_peft_adapter_config(a);
        if (!cfg || cfg->r < 1 || !cfg->bias) abort();
        for (size_t i = 0; i < cfg->n_target_modules; i++)
            if (!cfg->target_modules[i]) abort();
        msbnb_peft_adapter_free(a);
    }
    return st;
}

msbnb_status fuzz_one_bnb(const uint8_t *data, size_t size) {
    msbnb_safetensors *f = NULL;
    msbnb_status st = msbnb_safetensors_open_memory(data, size, "fuzz.safetensors", &f);
    if (st != MSBNB_OK) return st;
    msbnb_checkpoint *ck = NULL;
    if ((st = msbnb__checkpoint_wrap(f, &ck)) != MSBNB_OK) return st;
    msbnb_status first_error = MSBNB_OK;
    for (size_t i = 0; i < msbnb_checkpoint_count(ck); i++) {
        msbnb_tensor_info t;
        msbnb_qtype type = MSBNB_QTYPE_NONE;
        if (msbnb_checkpoint_get(ck, i, &t) != MSBNB_OK) abort();
        if (msbnb_bnb_detect(ck, t.name, &type) != MSBNB_OK || type == MSBNB_QTYPE_NONE) continue;
        msbnb_qtensor *q = NULL;
        msbnb_status rs = msbnb_bnb_read(ck, t.name, &q);
        if (rs != MSBNB_OK) {
            if (q) abort();
            if (first_error == MSBNB_OK) first_error = rs;
            continue;
        }
        msbnb_qtensor_view v;
        if (msbnb_qtensor_get_view(q, &v) != MSBNB_OK) abort();
        if (v.rows * v.cols <= (1 << 16)) {
            float *y = malloc((size_t)(v.rows * v.cols) * sizeof(float) + 1);
            if (y && msbnb_dequantize(q, y) != MSBNB_OK) {
                /* a tensor the reader accepted must dequantize */
                abort();
            }
            free(y);
        }
        msbnb_qtensor_free(q);
    }
    msbnb_checkpoint_close(ck);
    return first_error;
}
