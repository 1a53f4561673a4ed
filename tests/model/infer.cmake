# model inference tests (need ../shared/models/stories260K and ../shared/data)
msbnb_add_test(test_tokenizer tests/model/test_tokenizer.c)
msbnb_add_test(test_llama_golden tests/model/test_llama_golden.c)
msbnb_add_test(test_llama_load tests/model/test_load.c)
msbnb_add_test(test_llama_quant tests/model/test_llama_quant.c)

# The CLI on the real model: golden perplexity, greedy text, FAST products, usage and load errors
# (exit codes 2, 1).
set(_m ${MSBNB_SHARED_DIR}/models/stories260K)
add_test(NAME cli_model
  COMMAND sh -c "set -e
    $<TARGET_FILE:msbnb_cli> perplexity ${_m}/stories260K.bin ${MSBNB_SHARED_DIR}/data/tinystories_sample.txt 2>/dev/null | grep -q 'tokens 1804  docs 5  nll/token 1.26644[0-9]  perplexity 3.5482'
    $<TARGET_FILE:msbnb_cli> perplexity ${_m}/hf ${MSBNB_SHARED_DIR}/data/tinystories_sample.txt --quant nf4 --double-quant 2>/dev/null | grep -q 'tokens 1804'
    $<TARGET_FILE:msbnb_cli> generate ${_m}/hf --steps 20 --prompt 'Once upon a time' 2>/dev/null | grep -q '^Once upon a time, there was a little girl named Lily'
    $<TARGET_FILE:msbnb_cli> generate ${_m}/hf --quant nf4 --fast --steps 20 --prompt 'Once upon a time' 2>&1 | grep -q 'FAST products'
    $<TARGET_FILE:msbnb_cli> perplexity ${_m}/stories260K.bin ${MSBNB_SHARED_DIR}/data/tinystories_sample.txt --quant nf4 --fast --batch 1 --max-tokens 200 2>/dev/null | grep -q 'tokens 200 '
    rc=0; $<TARGET_FILE:msbnb_cli> perplexity ${_m}/hf ${MSBNB_SHARED_DIR}/data/tinystories_sample.txt --batch 0 2>/dev/null || rc=$?; test $rc = 2
    rc=0; $<TARGET_FILE:msbnb_cli> generate ${_m}/hf --quant nf5 2>/dev/null || rc=$?; test $rc = 2
    rc=0; $<TARGET_FILE:msbnb_cli> perplexity /nonexistent ${MSBNB_SHARED_DIR}/data/tinystories_sample.txt 2>/dev/null || rc=$?; test $rc = 1
    rc=0; $<TARGET_FILE:msbnb_cli> generate ${_m}/stories260K.bin --tokenizer ${_m}/stories260K.bin 2>/dev/null || rc=$?; test $rc = 1")

# Inference speed on a generated config (run by hand, not by ctest): build/tests/bench_llama_infer
add_executable(bench_llama_infer ${PROJECT_SOURCE_DIR}/tests/model/bench_infer.c)
target_compile_options(bench_llama_infer PRIVATE ${MSBNB_WARNINGS})
target_link_libraries(bench_llama_infer PRIVATE msbnb_static)
set_tests_properties(cli_model PROPERTIES ENVIRONMENT "OMP_WAIT_POLICY=passive")
