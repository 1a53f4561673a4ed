# error-minimising quantizers (scale search, GPTQ)
msbnb_add_test(test_quant_method tests/quant/test_quant_method.c)

# The CLI: calibrated GPTQ (+ AWQ) files are identical for 1 and 3 threads; --method rtn is the
# default byte for byte; usage errors exit 2; a missing calibration file exits 1 and leaves no OUT.
set(_m ${MSBNB_SHARED_DIR}/models/stories260K/hf)
set(_c ${MSBNB_SHARED_DIR}/data/tinystories_sample.txt)
add_test(NAME cli_quant_methods
  COMMAND sh -c "set -e
    d=$(mktemp -d); trap 'rm -rf $d' EXIT
    MSBNB_THREADS=1 $<TARGET_FILE:msbnb_cli> quantize ${_m} $d/a --type nf4 --double-quant --method awq+gptq --calibrate ${_c} --quiet
    MSBNB_THREADS=3 $<TARGET_FILE:msbnb_cli> quantize ${_m} $d/b --type nf4 --double-quant --method awq+gptq --calibrate ${_c} --quiet
    cmp $d/a/model.safetensors $d/b/model.safetensors
    $<TARGET_FILE:msbnb_cli> perplexity $d/a ${_c} --tokenizer ${MSBNB_SHARED_DIR}/models/stories260K/tok512.bin 2>/dev/null | grep -q 'tokens 1804'
    $<TARGET_FILE:msbnb_cli> quantize ${_m} $d/r1 --type fp4 --quiet
    $<TARGET_FILE:msbnb_cli> quantize ${_m} $d/r2 --type fp4 --method rtn --quiet
    cmp $d/r1/model.safetensors $d/r2/model.safetensors
    $<TARGET_FILE:msbnb_cli> quantize ${_m} $d/s --type int4 --method search --quiet
    rc=0; $<TARGET_FILE:msbnb_cli> quantize ${_m} $d/x --type nf4 --method gptq 2>/dev/null || rc=$?; test $rc = 2
    rc=0; $<TARGET_FILE:msbnb_cli> quantize ${_m} $d/x --type int8 --method search 2>/dev/null || rc=$?; test $rc = 2
    rc=0; $<TARGET_FILE:msbnb_cli> quantize ${_m} $d/x --type nf4 --method gptq --calibrate /nonexistent 2>/dev/null || rc=$?; test $rc = 1
    test ! -e $d/x")
set_tests_properties(cli_quant_methods PROPERTIES ENVIRONMENT "OMP_WAIT_POLICY=passive")
