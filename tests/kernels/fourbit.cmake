# tests of 4-bit products
msbnb_add_test(test_matmul_4bit tests/kernels/test_matmul_4bit.c)
msbnb_add_test(test_matmul_4bit_fast tests/kernels/test_matmul_4bit_fast.c)
msbnb_add_test(test_dq_scales tests/kernels/test_dq_scales.c)
msbnb_add_test(test_simd_exit_state tests/kernels/test_simd_exit_state.c)
msbnb_add_test(test_onednn tests/kernels/test_onednn.c)
