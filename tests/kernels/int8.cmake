# tests of int8 products, LLM.int8() and the dense fp32 products (owner: kern8)
msbnb_add_test(test_matmul_int8 tests/kernels/test_matmul_int8.c)
msbnb_add_test(test_llm_int8 tests/kernels/test_llm_int8.c)
msbnb_add_test(test_dense tests/kernels/test_dense.c)
# Correctness tests, not timings: on an oversubscribed host (CI runners, shared machines) spinning
# OpenMP workers of the 2- and 3-thread checks steal the core the other worker needs.
set_tests_properties(test_matmul_int8 test_llm_int8 test_dense PROPERTIES ENVIRONMENT "OMP_WAIT_POLICY=passive")
