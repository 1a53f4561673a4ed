/* test_bnb.c — bitsandbytes checkpoint layouts (golden quant-state bytes from bitsandbytes itself),
 * msbnb's INT4/INT8 layouts, quantization_config, and PEFT adapters. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "test_scratch.h"

#include <msbnb/io.h>
#include <msbnb/quant.h>
#include <sys/stat.h>
#include <unistd.h>

#define GOLDEN MSBNB_SHARED_DIR "/golden/bnb/"

static char tmpdir[256];

static const char *tpath(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static float *golden_input(size_t *n) {
    size_t len = 0;
    float *x = test_read_file(GOLDEN "input_n20000.f32", &len);
    *n = len / 4;
    return x;
}

/* Quantize x [rows, cols] with cfg; NULL on failure (reported). */
static msbnb_qtensor *quantize(const float *x, int64_t rows, int64_t cols, msbnb_quant_config cfg) {
    msbnb_qtensor *q = NULL;
    CHECK_OK(msbnb_quantize(x, rows, cols, &cfg, &q));
    return q;
}

static void check_json_equals_golden(const msbnb_qtensor *q, const char *golden_file) {
    char *json = NULL;
    size_t len = 0, glen = 0;
    char *golden = test_read_file(golden_file, &glen);
    CHECK(golden != NULL);
    CHECK_OK(msbnb_bnb_quant_state_json(q, MSBNB_DTYPE_F32, &json, &len));
    if (json && golden) {
        CHECK_MSG_(len == glen && !memcmp(json, golden, len), "quant state\n  ours:   %.*s\n  golden: %.*s", (int)len,
                   json, (int)glen, golden);
    }
    free(json);
    free(golden);
}

TEST(quant_state_json_is_byte_identical_to_bitsandbytes) {
    size_t n;
    float *x = golden_input(&n);
    CHECK(x && n == 20000);
    if (!x) return;
    msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    cfg.blocksize = 64;
    cfg.double_quant = 1;
    msbnb_qtensor *q = quantize(x, 100, 200, cfg);
    if (q) check_json_equals_golden(q, GOLDEN "dq_nf4_bs64_n20000.quant_state_bitsandbytes__nf4.u8");
    msbnb_qtensor_free(q);
    cfg.double_quant = 0;
    q = quantize(x, 100, 200, cfg);
    if (q) check_json_equals_golden(q, GOLDEN "q4_nf4_bs64_shape100x200_nonnested.quant_state_bitsandbytes__nf4.u8");
    msbnb_qtensor_free(q);
    free(x);
}

/* Write q under "layer.weight", read it back, check the entries and that both dequantize to the
 * same bits. */
static void round_trip(const float *x, int64_t rows, int64_t cols, msbnb_quant_config cfg, const char *file) {
    msbnb_qtensor *q = quantize(x, rows, cols, cfg);
    if (!q) return;
    const char *path = tpath(file);
    msbnb_st_writer *w = NULL;
    CHECK_OK(msbnb_st_writer_create(path, &w));
    CHECK_OK(msbnb_bnb_write(w, "layer.weight", q, MSBNB_DTYPE_F32));
    CHECK_OK(msbnb_st_writer_finish(w));
    msbnb_st_writer_free(w);
    msbnb_checkpoint *ck = NULL;
    CHECK_OK(msbnb_checkpoint_open(path, &ck));
    msbnb_qtype type = MSBNB_QTYPE_NONE;
    CHECK_OK(msbnb_bnb_detect(ck, "layer.weight", &type));
    CHECK_EQ_INT(type, cfg.type);
    msbnb_qtensor *back = NULL;
    CHECK_OK(msbnb_bnb_read(ck, "layer.weight", &back));
    size_t n = (size_t)(rows * cols);
    float *a = malloc(n * 4), *b = malloc(n * 4);
    if (back) {
        CHECK_OK(msbnb_dequantize(q, a));
        CHECK_OK(msbnb_dequantize(back, b));
        CHECK_MSG_(!memcmp(a, b, n * 4), "%s: dequantized values differ after the file round trip", file);
        msbnb_qtensor_view v1, v2;
        msbnb_qtensor_get_view(q, &v1);
        msbnb_qtensor_get_view(back, &v2);
        CHECK(v1.data_bytes == v2.data_bytes && !memcmp(v1.data, v2.data, v1.data_bytes));
    }
    msbnb_tensor_info t;
    if (cfg.type == MSBNB_QTYPE_NF4 || cfg.type == MSBNB_QTYPE_FP4) {
        /* bitsandbytes' Params4bit: uint8 [ceil(n/2), 1]; absmax f32 (u8 codes when nested) */
        CHECK_OK(msbnb_checkpoint_find(ck, "layer.weight", &t));
        CHECK(t.dtype == MSBNB_ST_U8 && t.ndim == 2 && t.shape[0] == (int64_t)(n + 1) / 2 && t.shape[1] == 1);
        CHECK_OK(msbnb_checkpoint_find(ck, "layer.weight.absmax", &t));
        CHECK_EQ_INT(t.dtype, cfg.double_quant ? MSBNB_ST_U8 : MSBNB_ST_F32);
        CHECK_EQ_INT(t.numel, (int64_t)((n + (size_t)cfg.blocksize - 1) / (size_t)cfg.blocksize));
        CHECK_OK(msbnb_checkpoint_find(ck, "layer.weight.quant_map", &t));
        CHECK(t.dtype == MSBNB_ST_F32 && t.numel == 16);
        CHECK_STATUS(msbnb_checkpoint_find(ck, "layer.weight.nested_absmax", &t),
                     cfg.double_quant ? MSBNB_OK : MSBNB_ERR_NOT_FOUND);
        CHECK_OK(msbnb_checkpoint_find(ck, cfg.type == MSBNB_QTYPE_NF4 ? "layer.weight.quant_state.bitsandbytes__nf4"
                                                                        : "layer.weight.quant_state.bitsandbytes__fp4",
                                       &t));
        CHECK(t.dtype == MSBNB_ST_U8 && t.ndim == 1 && ((const char *)t.data)[0] == '{');
        /* the packed bytes are exactly the flat functional API's */
        uint8_t *packed = malloc((n + 1) / 2);
        float *absmax = malloc(((n + (size_t)cfg.blocksize - 1) / (size_t)cfg.blocksize) * 4);
        CHECK_OK(msbnb_quantize_4bit_blockwise(cfg.type, x, n, cfg.blocksize, packed, absmax));
        CHECK_OK(msbnb_checkpoint_find(ck, "layer.weight", &t));
        CHECK(!memcmp(t.data, packed, (n + 1) / 2));
        free(packed);
        free(absmax);
    } else if (cfg.type == MSBNB_QTYPE_INT8 && cfg.per_row && !cfg.asymmetric) {
        /* Linear8bitLt: weight int8 [out, in], SCB f32 [out], weight_format u8 scalar 0 */
        CHECK_OK(msbnb_checkpoint_find(ck, "layer.weight", &t));
        CHECK(t.dtype == MSBNB_ST_I8 && t.shape[0] == rows && t.shape[1] == cols);
        CHECK_OK(msbnb_checkpoint_find(ck, "layer.SCB", &t));
        CHECK(t.dtype == MSBNB_ST_F32 && t.numel == rows);
        CHECK_OK(msbnb_checkpoint_find(ck, "layer.weight_format", &t));
        CHECK(t.dtype == MSBNB_ST_U8 && t.ndim == 0 && ((const uint8_t *)t.data)[0] == 0);
    }
    free(a);
    free(b);
    msbnb_qtensor_free(back);
    msbnb_qtensor_free(q);
    msbnb_checkpoint_close(ck);
}

TEST(every_layout_round_trips) {
    size_t n;
    float *x = golden_input(&n);
    if (!x) return;
    msbnb_quant_config c;
    c = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    round_trip(x, 100, 200, c, "nf4.safetensors");
    c.double_quant = 1;
    round_trip(x, 100, 200, c, "nf4dq.safetensors");
    round_trip(x, 37, 81, c, "nf4dq_odd.safetensors"); /* odd n, partial last block */
    c = msbnb_quant_config_default(MSBNB_QTYPE_FP4);
    c.blocksize = 128;
    round_trip(x, 100, 200, c, "fp4.safetensors");
    c.double_quant = 1;
    round_trip(x, 100, 200, c, "fp4dq.safetensors");
    c = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
    round_trip(x, 100, 200, c, "int8.safetensors");
    c.asymmetric = 1;
    round_trip(x, 100, 200, c, "int8asym.safetensors");
    c.asymmetric = 0, c.per_row = 0;
    round_trip(x, 100, 200, c, "int8tensor.safetensors");
    c = msbnb_quant_config_default(MSBNB_QTYPE_INT4);
    c.group_size = 40;
    round_trip(x, 100, 200, c, "int4.safetensors");
    c.double_quant = 1;
    round_trip(x, 100, 200, c, "int4dq.safetensors");
    free(x);
}

/* Write a 4-bit layout with one entry replaced, check that reading rejects it. */
TEST(corrupt_parts_are_rejected) {
    size_t n;
    float *x = golden_input(&n);
    if (!x) return;
    msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    msbnb_qtensor *q = quantize(x, 100, 200, cfg);
    msbnb_qtensor_view v;
    msbnb_qtensor_get_view(q, &v);
    static const char *states[] = {
        "{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [100, 200]}",
        "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [100, 201]}",
        "{\"quant_type\": \"nf4\", \"blocksize\": 63, \"dtype\": \"float32\", \"shape\": [100, 200]}",
        "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"shape\": [1e300, 200]}",
        ("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [100, 200], "
         "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 0.5}"),
        "not json",
        /* issue #15: a dtype that is not a float and a 3-D shape (same element count) were accepted */
        "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"complex128\", \"shape\": [100, 200]}",
        "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [10, 10, 200]}",
        "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": 32, \"shape\": [100, 200]}",
    };
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        const char *path = tpath("corrupt.safetensors");
        msbnb_st_writer *w = NULL;
        CHECK_OK(msbnb_st_writer_create(path, &w));
        int64_t ps[2] = {(int64_t)v.data_bytes, 1}, na = (int64_t)v.n_stats, n16 = 16, js = (int64_t)strlen(states[i]);
        msbnb_st_writer_add(w, "w", MSBNB_ST_U8, 2, ps, v.data, v.data_bytes);
        msbnb_st_writer_add(w, "w.absmax", MSBNB_ST_F32, 1, &na, v.stats, v.n_stats * 4);
        msbnb_st_writer_add(w, "w.quant_map", MSBNB_ST_F32, 1, &n16, v.code, 64);
        msbnb_st_writer_add(w, "w.quant_state.bitsandbytes__nf4", MSBNB_ST_U8, 1, &js, states[i], (size_t)js);
        CHECK_OK(msbnb_st_writer_finish(w));
        msbnb_st_writer_free(w);
        msbnb_checkpoint *ck = NULL;
        CHECK_OK(msbnb_checkpoint_open(path, &ck));
        msbnb_qtensor *back = NULL;
        msbnb_status st = msbnb_bnb_read(ck, "w", &back);
        CHECK_MSG_(st != MSBNB_OK && back == NULL, "state %zu accepted: %s", i, states[i]);
        msbnb_qtensor_free(back);
        msbnb_checkpoint_close(ck);
    }
    msbnb_qtensor_free(q);
    free(x);
}

TEST(quantization_config_matches_transformers) {
    msbnb_quant_config cfg = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    cfg.double_quant = 1;
    const char *skip[] = {"lm_head"};
    char *s = NULL;
    CHECK_OK(msbnb_bnb_quantization_config_json(&cfg, skip, 1, &s));
    /* BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
     * llm_int8_skip_modules=["lm_head"]).to_dict(), transformers 5.x, key order kept */
    const char *want = "{\"quant_method\":\"bitsandbytes\",\"_load_in_8bit\":false,\"_load_in_4bit\":true,"
                       "\"llm_int8_threshold\":6.0,\"llm_int8_skip_modules\":[\"lm_head\"],"
                       "\"llm_int8_enable_fp32_cpu_offload\":false,\"llm_int8_has_fp16_weight\":false,"
                       "\"bnb_4bit_quant_type\":\"nf4\",\"bnb_4bit_use_double_quant\":true,"
                       "\"bnb_4bit_compute_dtype\":\"float32\",\"bnb_4bit_quant_storage\":\"uint8\","
                       "\"load_in_4bit\":true,\"load_in_8bit\":false}";
    CHECK_MSG_(s && !strcmp(s, want), "got %s", s ? s : "(null)");
    free(s);
    cfg = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
    CHECK_OK(msbnb_bnb_quantization_config_json(&cfg, NULL, 0, &s));
    CHECK(s && strstr(s, "\"load_in_8bit\":true") && strstr(s, "\"llm_int8_skip_modules\":null"));
    free(s);
}

TEST(peft_adapter_round_trip) {
    const char *dir = tpath("adapter");
    float a0[2 * 3] = {1, 2, 3, 4, 5, 6}, b0[4 * 2] = {-1, -2, -3, -4, -5, -6, -7, -8};
    float a1[2 * 4] = {0.5f, 0, 0, 0, 0, 0, 0, -0.5f}, b1[3 * 2] = {9, 8, 7, 6, 5, 4};
    msbnb_lora_pair pairs[2] = {{"model.layers.1.self_attn.v_proj", 2, 4, 3, a1, b1},
                                {"model.layers.0.self_attn.q_proj", 2, 3, 4, a0, b0}};
    msbnb_peft_config cfg = msbnb_peft_config_default();
    const char *targets[] = {"q_proj", "v_proj"};
    cfg.r = 2;
    cfg.lora_alpha = 16;
    cfg.lora_dropout = 0.05;
    cfg.target_modules = targets;
    cfg.n_target_modules = 2;
    cfg.base_model_name_or_path = "stories260K";
    CHECK_OK(msbnb_peft_save(dir, &cfg, pairs, 2));
    msbnb_peft_adapter *ad = NULL;
    CHECK_OK(msbnb_peft_load(dir, &ad));
    if (!ad) return;
    const msbnb_peft_config *c = msbnb_peft_adapter_config(ad);
    CHECK_EQ_INT(c->r, 2);
    CHECK(c->lora_alpha == 16 && c->lora_dropout == 0.05 && !c->use_rslora);
    CHECK(c->n_target_modules == 2 && !strcmp(c->target_modules[1], "v_proj"));
    CHECK(c->base_model_name_or_path && !strcmp(c->base_model_name_or_path, "stories260K"));
    CHECK(!strcmp(c->bias, "none") && c->task_type && !strcmp(c->task_type, "CAUSAL_LM"));
    CHECK_EQ_INT(msbnb_peft_adapter_count(ad), 2);
    msbnb_lora_pair p;
    CHECK_OK(msbnb_peft_adapter_get(ad, 0, &p)); /* sorted: layers.0 first */
    CHECK(!strcmp(p.module, "model.layers.0.self_attn.q_proj"));
    CHECK(p.r == 2 && p.in_features == 3 && p.out_features == 4);
    CHECK(!memcmp(p.A, a0, sizeof a0) && !memcmp(p.B, b0, sizeof b0));
    msbnb_peft_adapter_free(ad);
    /* PEFT key names on disk */
    char f[600];
    snprintf(f, sizeof f, "%s/adapter_model.safetensors", dir);
    msbnb_safetensors *st = NULL;
    CHECK_OK(msbnb_safetensors_open(f, &st));
    msbnb_tensor_info t;
    CHECK_OK(msbnb_safetensors_find(st, "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight", &t));
    CHECK(t.shape[0] == 3 && t.shape[1] == 2);
    msbnb_safetensors_close(st);
    /* rank mismatch refused at save; bad configs refused at parse */
    pairs[0].r = 3;
    CHECK_STATUS(msbnb_peft_save(tpath("adapter2"), &cfg, pairs, 2), MSBNB_ERR_SHAPE);
    static const char *bad[] = {"{\"peft_type\": \"LORA\"}", "{\"peft_type\": \"IA3\", \"r\": 8}",
                                "{\"peft_type\": \"LORA\", \"r\": 0}", "{\"peft_type\": \"LORA\", \"r\": 8, \"bias\": 3}",
                                "{\"peft_type\": \"LORA\", \"r\": 8, \"lora_dropout\": 1.5}",
                                "{\"peft_type\": \"LORA\", \"r\": 8, \"target_modules\": [1]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msbnb_peft_adapter *x = NULL;
        CHECK_STATUS(msbnb_peft_config_parse(bad[i], strlen(bad[i]), "adapter_config.json", &x), MSBNB_ERR_FORMAT);
        CHECK(x == NULL);
    }
    const char *ok = "{\"peft_type\": \"LORA\", \"r\": 4, \"target_modules\": \"q_proj|v_proj\", \"use_rslora\": true}";
    CHECK_OK(msbnb_peft_config_parse(ok, strlen(ok), "a.json", &ad));
    if (ad) CHECK(msbnb_peft_adapter_config(ad)->use_rslora && msbnb_peft_adapter_config(ad)->n_target_modules == 1);
    msbnb_peft_adapter_free(ad);
}

int main(void) {
    if (test_scratch_make(tmpdir, sizeof tmpdir, MSBNB_BINARY_DIR, "io_test_bnb")) return 1;
    RUN(quant_state_json_is_byte_identical_to_bitsandbytes);
    RUN(every_layout_round_trips);
    RUN(corrupt_parts_are_rejected);
    RUN(quantization_config_matches_transformers);
    RUN(peft_adapter_round_trip);
    test_scratch_remove(tmpdir);
    return test_report();
}
