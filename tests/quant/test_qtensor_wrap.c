/*
 * test_qtensor_wrap.c — msbnb_qtensor_wrap (zero-copy, borrowed buffers) and msbnb_qtensor_validate.
 *
 * Every part of a quantized tensor is copied into its own exact-size buffer that starts 4 bytes
 * past a malloc'ed address (4-byte but not 8/16/64-byte aligned, as a safetensors memory map
 * gives them; the end of each buffer is the end of its allocation, so AddressSanitizer sees any
 * read past it), wrapped, and every consumer — dequantize, row ranges, fp16 output, error
 * statistics, info, the products (EXACT and FAST, several n, every ISA level) and the transposed
 * product — must give the same bits as on the library-owned original.
 */
#include "test.h"

#include <msbnb/kernels.h>
#include <msbnb/quant.h>

/* One borrowed part: `mem` is the allocation, `p` = mem + off the buffer handed to wrap. */
typedef struct {
    unsigned char *mem;
    void *p;
} part;

static void *part_copy(part *pt, const void *src, size_t bytes, size_t off) {
    pt->mem = NULL, pt->p = NULL;
    if (!src) return NULL;
    pt->mem = malloc(bytes + off);
    pt->p = pt->mem + off;
    memcpy(pt->p, src, bytes);
    return pt->p;
}

typedef struct {
    part data, stats, zp, stats_q, nested_absmax, nested_code, code;
    msbnb_qtensor_view v;
} borrowed;

/* A copy of q's parts at the given offsets (data_off for the codes, 4 for float/int32 parts). */
static void borrow(const msbnb_qtensor *q, borrowed *b, size_t data_off) {
    msbnb_qtensor_get_view(q, &b->v);
    msbnb_qtensor_view *v = &b->v;
    v->data = part_copy(&b->data, v->data, v->data_bytes, data_off);
    v->stats = part_copy(&b->stats, v->stats, v->n_stats * sizeof(float), 4);
    v->zero_point = part_copy(&b->zp, v->zero_point, v->n_stats * sizeof(int32_t), 4);
    v->stats_q = part_copy(&b->stats_q, v->stats_q, v->n_stats, 4);
    v->nested_absmax = part_copy(&b->nested_absmax, v->nested_absmax, v->n_nested * sizeof(float), 4);
    v->nested_code = part_copy(&b->nested_code, v->nested_code, 256 * sizeof(float), 4);
    v->code = part_copy(&b->code, v->code, (size_t)v->code_len * sizeof(float), 4);
}

static void unborrow(borrowed *b) {
    free(b->data.mem);
    free(b->stats.mem);
    free(b->zp.mem);
    free(b->stats_q.mem);
    free(b->nested_absmax.mem);
    free(b->nested_code.mem);
    free(b->code.mem);
}

static int same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

typedef struct {
    const msbnb_qtensor *owned, *wrapped;
    const float *x;
    int bad;
} products_ctx;

static void products_each_isa(msbnb_isa isa, void *vctx) {
    products_ctx *c = vctx;
    msbnb_qtensor_view v;
    msbnb_qtensor_get_view(c->owned, &v);
    const int64_t ns[] = {1, 3, 17};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        const int64_t n = ns[k];
        float *y0 = malloc((size_t)(n * v.rows) * sizeof(float)), *y1 = malloc((size_t)(n * v.rows) * sizeof(float));
        float *d0 = malloc((size_t)(n * v.cols) * sizeof(float)), *d1 = malloc((size_t)(n * v.cols) * sizeof(float));
        for (int prec = 0; prec <= 1; prec++) {
            CHECK_OK(msbnb_matmul(c->owned, c->x, n, NULL, y0, (msbnb_precision)prec));
            CHECK_OK(msbnb_matmul(c->wrapped, c->x, n, NULL, y1, (msbnb_precision)prec));
            CHECK_MSG_(same_bits(y0, y1, (size_t)(n * v.rows)), "%s %s n %lld prec %d: products differ",
                       msbnb_qtype_name(v.type), msbnb_isa_name(isa), (long long)n, prec);
        }
        CHECK_OK(msbnb_matmul_t(c->owned, y0, n, d0, 0));
        CHECK_OK(msbnb_matmul_t(c->wrapped, y0, n, d1, 0));
        CHECK_MSG_(same_bits(d0, d1, (size_t)(n * v.cols)), "%s %s n %lld: transposed products differ",
                   msbnb_qtype_name(v.type), msbnb_isa_name(isa), (long long)n);
        free(y0), free(y1), free(d0), free(d1);
    }
}

/* Quantize w [rows, cols] with cfg, wrap a 4-byte-aligned copy, compare every consumer. */
static void check_config(const msbnb_quant_config *cfg, int64_t rows, int64_t cols, size_t data_off) {
    test_rng r = {(uint64_t)(rows * 7919 + cols)};
    const size_t n = (size_t)(rows * cols);
    float *w = malloc(n * sizeof(float)), *x = malloc((size_t)(17 * cols) * sizeof(float));
    test_fill_normal(&r, w, n, 0.05f);
    test_fill_normal(&r, x, (size_t)(17 * cols), 1.0f);
    msbnb_qtensor *q = NULL, *wq = NULL;
    CHECK_OK(msbnb_quantize(w, rows, cols, cfg, &q));
    if (!q) goto done;
    borrowed b;
    borrow(q, &b, data_off);
    CHECK_OK(msbnb_qtensor_wrap(&b.v, &wq));
    if (!wq) goto undo;
    CHECK_OK(msbnb_qtensor_validate(wq));
    msbnb_qtensor_view wv;
    msbnb_qtensor_get_view(wq, &wv);
    CHECK(wv.data == b.v.data); /* borrowed, not copied */
    CHECK(wv.double_quant ? wv.stats_q == b.v.stats_q : wv.stats == b.v.stats);

    float *y0 = malloc(n * sizeof(float)), *y1 = malloc(n * sizeof(float));
    CHECK_OK(msbnb_dequantize(q, y0));
    CHECK_OK(msbnb_dequantize(wq, y1));
    CHECK_MSG_(same_bits(y0, y1, n), "%s: dequantize differs", msbnb_qtype_name(cfg->type));
    int64_t r0 = rows / 3, nr = rows / 2 + 1;
    CHECK_OK(msbnb_dequantize_rows(wq, r0, nr, y1));
    CHECK(same_bits(y0 + r0 * cols, y1, (size_t)(nr * cols)));
    uint16_t *h0 = malloc(n * 2), *h1 = malloc(n * 2);
    CHECK_OK(msbnb_dequantize_ex(q, MSBNB_DTYPE_F16, h0));
    CHECK_OK(msbnb_dequantize_ex(wq, MSBNB_DTYPE_F16, h1));
    CHECK(memcmp(h0, h1, n * 2) == 0);
    msbnb_error_stats e0, e1;
    CHECK_OK(msbnb_estimate_quantization_error(w, q, &e0));
    CHECK_OK(msbnb_estimate_quantization_error(w, wq, &e1));
    CHECK(e0.mse == e1.mse && e0.max_abs_error == e1.max_abs_error && e0.snr_db == e1.snr_db);
    msbnb_quant_info i0, i1;
    CHECK_OK(msbnb_get_quantization_info(q, &i0));
    CHECK_OK(msbnb_get_quantization_info(wq, &i1));
    CHECK(i0.total_bytes == i1.total_bytes && i0.bits_per_weight == i1.bits_per_weight);
    if (cfg->type != MSBNB_QTYPE_BLOCKWISE8) {
        products_ctx c = {q, wq, x, 0};
        test_for_each_isa(products_each_isa, &c);
    }
    msbnb_qtensor *clone = NULL; /* a deep copy of a wrapped tensor owns its buffers */
    CHECK_OK(msbnb_qtensor_clone(wq, &clone));
    if (clone) {
        CHECK_OK(msbnb_dequantize(clone, y1));
        CHECK(same_bits(y0, y1, n));
        msbnb_qtensor_get_view(clone, &wv);
        CHECK(wv.data != b.v.data);
    }
    msbnb_qtensor_free(clone);
    free(y0), free(y1), free(h0), free(h1);
    msbnb_qtensor_free(wq); /* the handle only: the buffers are still ours */
undo:
    unborrow(&b);
done:
    msbnb_qtensor_free(q);
    free(w), free(x);
}

TEST(wrap_every_format_4byte_aligned) {
    msbnb_quant_config c = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
    check_config(&c, 37, 131, 4);
    c.asymmetric = 1;
    check_config(&c, 37, 131, 1);
    c.per_row = 0;
    check_config(&c, 5, 67, 4);
    c = msbnb_quant_config_default(MSBNB_QTYPE_INT4);
    c.group_size = 26;
    check_config(&c, 37, 130, 4);
    c.double_quant = 1;
    check_config(&c, 37, 130, 1);
    c = msbnb_quant_config_default(MSBNB_QTYPE_NF4);
    check_config(&c, 37, 133, 4); /* odd element count: the last byte holds one code */
    c.double_quant = 1;
    check_config(&c, 64, 300, 1);
    c = msbnb_quant_config_default(MSBNB_QTYPE_FP4);
    c.blocksize = 128;
    check_config(&c, 19, 96, 4);
    c = msbnb_quant_config_default(MSBNB_QTYPE_BLOCKWISE8);
    check_config(&c, 9, 100, 4);
}

TEST(wrap_checks_are_o1_and_reject_bad_views) {
    float w[64 * 64];
    test_rng r = {5};
    test_fill_normal(&r, w, 64 * 64, 1.0f);
    msbnb_quant_config c = msbnb_quant_config_default(MSBNB_QTYPE_INT8);
    c.asymmetric = 1;
    msbnb_qtensor *q = NULL, *wq = NULL;
    CHECK_OK(msbnb_quantize(w, 64, 64, &c, &q));
    borrowed b;
    borrow(q, &b, 0);
    msbnb_qtensor_view v = b.v;
    v.data_bytes--;
    CHECK_STATUS(msbnb_qtensor_wrap(&v, &wq), MSBNB_ERR_SHAPE);
    CHECK(wq == NULL);
    v = b.v;
    v.stats = (const float *)((const char *)v.stats + 2);
    CHECK_STATUS(msbnb_qtensor_wrap(&v, &wq), MSBNB_ERR_INVALID_ARG);
    CHECK(strstr(msbnb_last_error(), "4-byte aligned") != NULL);
    v = b.v;
    v.zero_point = NULL;
    CHECK_STATUS(msbnb_qtensor_wrap(&v, &wq), MSBNB_ERR_INVALID_ARG);
    CHECK_STATUS(msbnb_qtensor_wrap(NULL, &wq), MSBNB_ERR_INVALID_ARG);
    /* values are not read by wrap; validate finds them */
    ((int32_t *)b.zp.p)[63] = 300;
    CHECK_OK(msbnb_qtensor_wrap(&b.v, &wq));
    CHECK_STATUS(msbnb_qtensor_validate(wq), MSBNB_ERR_FORMAT);
    CHECK(strstr(msbnb_last_error(), "zero_point[63] = 300") != NULL);
    msbnb_qtensor *copy = NULL; /* from_view runs the same value checks */
    CHECK_STATUS(msbnb_qtensor_from_view(&b.v, &copy), MSBNB_ERR_FORMAT);
    CHECK(copy == NULL);
    msbnb_qtensor_free(wq);
    wq = NULL;
    ((int32_t *)b.zp.p)[63] = 0;
    ((float *)b.stats.p)[7] = -1.0f;
    CHECK_OK(msbnb_qtensor_wrap(&b.v, &wq));
    CHECK_STATUS(msbnb_qtensor_validate(wq), MSBNB_ERR_FORMAT);
    CHECK(strstr(msbnb_last_error(), "stats[7]") != NULL);
    CHECK_STATUS(msbnb_qtensor_validate(NULL), MSBNB_ERR_INVALID_ARG);
    msbnb_qtensor_free(wq);
    unborrow(&b);
    msbnb_qtensor_free(q);
}

int main(void) {
    RUN(wrap_every_format_4byte_aligned);
    RUN(wrap_checks_are_o1_and_reject_bad_views);
    return test_report();
}
