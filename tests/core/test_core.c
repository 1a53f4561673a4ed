/* test_core.c — status strings, ISA control, thread count, half-precision conversion. */
#include "test.h"

#include <string.h>

#include "core/internal.h"
#include <msbnb/model.h>

TEST(status_strings) {
    CHECK(strcmp(msbnb_status_str(MSBNB_OK), "ok") == 0);
    CHECK(strcmp(msbnb_status_str(MSBNB_ERR_SHAPE), "shape mismatch") == 0);
    CHECK(strcmp(msbnb_status_str((msbnb_status)-99), "unknown status") == 0);
    CHECK_EQ_INT(MSBNB_ERR_INVALID_ARG, -1);
    CHECK_EQ_INT(MSBNB_ERR_INTERNAL, -9);
}

TEST(version) {
    CHECK_EQ_INT(msbnb_version_number(), MSBNB_VERSION_NUMBER);
    CHECK(strcmp(msbnb_version_string(), MSBNB_VERSION_STRING) == 0);
}

TEST(error_message) {
    msbnb_status st = MSBNB_FAIL(MSBNB_ERR_SHAPE, "rows %d", 7);
    CHECK_EQ_INT(st, MSBNB_ERR_SHAPE);
    CHECK(strstr(msbnb_last_error(), "rows 7") != NULL);
    /* a file-local function's name means nothing to a user: not in the message */
    CHECK(strcmp(msbnb_last_error(), "rows 7") == 0);
    /* a public API function's name is kept in front */
    CHECK_STATUS(msbnb_proj_parse(NULL, NULL), MSBNB_ERR_INVALID_ARG);
    CHECK(strncmp(msbnb_last_error(), "msbnb_proj_parse: ", 18) == 0);
}

TEST(checked_mul) {
    size_t n;
    CHECK_OK(msbnb__checked_mul(1 << 20, 1 << 20, &n));
    CHECK(n == ((size_t)1 << 40));
    CHECK_STATUS(msbnb__checked_mul(INT64_MAX, 3, &n), MSBNB_ERR_OUT_OF_MEMORY);
    CHECK_STATUS(msbnb__checked_mul(-1, 3, &n), MSBNB_ERR_INVALID_ARG);
}

TEST(isa_control) {
    msbnb_isa top = msbnb_isa_detected(), cur = msbnb_isa_current();
    CHECK(top < MSBNB_ISA_ONEDNN);
    CHECK(cur <= top || (cur == MSBNB_ISA_ONEDNN && msbnb_onednn_available()));
    CHECK_OK(msbnb_isa_set(MSBNB_ISA_SCALAR));
    CHECK_EQ_INT(msbnb_isa_current(), MSBNB_ISA_SCALAR);
    if (top < MSBNB_ISA_AVX512_BF16) CHECK_STATUS(msbnb_isa_set((msbnb_isa)(top + 1)), MSBNB_ERR_UNSUPPORTED);
    CHECK_STATUS(msbnb_isa_set((msbnb_isa)17), MSBNB_ERR_INVALID_ARG);
    CHECK_OK(msbnb_isa_set(top));
    /* the oneDNN level: available with oneDNN built in and an AVX2 CPU, else refused */
    CHECK_STATUS(msbnb_isa_set(MSBNB_ISA_ONEDNN), msbnb_onednn_available() ? MSBNB_OK : MSBNB_ERR_UNSUPPORTED);
    CHECK_EQ_INT(msbnb_isa_current(), msbnb_onednn_available() ? MSBNB_ISA_ONEDNN : top);
    CHECK_OK(msbnb_isa_set(cur));
    msbnb_isa parsed;
    CHECK_OK(msbnb_isa_parse("onednn", &parsed));
    CHECK_EQ_INT(parsed, MSBNB_ISA_ONEDNN);
    CHECK_OK(msbnb_isa_parse("avx512_vnni", &parsed));
    CHECK_EQ_INT(parsed, MSBNB_ISA_AVX512_VNNI);
    CHECK_STATUS(msbnb_isa_parse("sse9", &parsed), MSBNB_ERR_INVALID_ARG);
    printf("  detected ISA: %s; current level %s\n", msbnb_isa_name(top), msbnb_isa_name(cur));
}

TEST(threads) {
    msbnb_set_num_threads(3);
    CHECK_EQ_INT(msbnb_get_num_threads(), 3);
    msbnb_set_num_threads(0);
    CHECK(msbnb_get_num_threads() >= 1);
}

/* Golden bit patterns (IEEE 754 binary16 / bfloat16, round to nearest even). */
TEST(half_golden) {
    CHECK_EQ_INT(msbnb_f32_to_f16(1.0f), 0x3c00);
    CHECK_EQ_INT(msbnb_f32_to_f16(-2.0f), 0xc000);
    CHECK_EQ_INT(msbnb_f32_to_f16(65504.0f), 0x7bff);
    CHECK_EQ_INT(msbnb_f32_to_f16(65520.0f), 0x7c00);     /* tie rounds up to Inf */
    CHECK_EQ_INT(msbnb_f32_to_f16(65519.0f), 0x7bff);
    CHECK_EQ_INT(msbnb_f32_to_f16(0x1p-24f), 0x0001);     /* smallest subnormal */
    CHECK_EQ_INT(msbnb_f32_to_f16(0x1p-25f), 0x0000);     /* tie to even: 0 */
    CHECK_EQ_INT(msbnb_f32_to_f16(0x1.8p-24f), 0x0002);   /* 1.5 ulp -> 2 (even) */
    CHECK_EQ_INT(msbnb_f32_to_f16(1.0f + 0x1p-11f), 0x3c00); /* tie to even */
    CHECK_EQ_INT(msbnb_f32_to_f16(1.0f + 0x1.8p-11f), 0x3c01);
    CHECK_EQ_INT(msbnb_f32_to_f16(INFINITY), 0x7c00);
    CHECK((msbnb_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (msbnb_f32_to_f16(NAN) & 0x3ff) != 0);
    CHECK(msbnb_f16_to_f32(0x3555) == 0x1.554p-2f);
    CHECK(msbnb_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(isinf(msbnb_f16_to_f32(0xfc00)) && msbnb_f16_to_f32(0xfc00) < 0);
    CHECK_EQ_INT(msbnb_f32_to_bf16(1.0f), 0x3f80);
    CHECK_EQ_INT(msbnb_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);      /* tie to even */
    CHECK_EQ_INT(msbnb_f32_to_bf16(1.0f + 0x1.8p-8f), 0x3f81);
    CHECK(isnan(msbnb_bf16_to_f32(msbnb_f32_to_bf16(NAN))));
    CHECK(msbnb_bf16_to_f32(0xc040) == -3.0f);
}

/* Every binary16 value survives f16 -> f32 -> f16 exactly. */
TEST(half_roundtrip_all) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = msbnb_f16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        if (msbnb_f32_to_f16(f) != h) bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

int main(void) {
    RUN(status_strings);
    RUN(version);
    RUN(error_message);
    RUN(checked_mul);
    RUN(isa_control);
    RUN(threads);
    RUN(half_golden);
    RUN(half_roundtrip_all);
    return test_report();
}
