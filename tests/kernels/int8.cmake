# tests of int8 products, LLM.int8() and the dense fp32 products (owner: kern8)
msbnb_add_test(test_matmul_int8 tests/kernels/test_matmul_int8.c)
msbnb_add_test(test_llm_int8 tests/kernels/test_llm_int8.c)
msbnb_add_test(test_dense tests/kernels/test_dense.c)
