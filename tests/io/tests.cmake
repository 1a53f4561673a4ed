# io tests: safetensors/config/model directories, bitsandbytes layouts, PEFT adapters, the CLI,
# and the fuzz corpus replayed without libFuzzer.
msbnb_add_test(test_io_safetensors tests/io/test_safetensors.c)
msbnb_add_test(test_io_bnb tests/io/test_bnb.c)
# The fuzz corpus replayed as a plain test (no libFuzzer needed): tests/fuzz/replay.c.
msbnb_add_test(test_io_fuzz_replay tests/fuzz/replay.c tests/fuzz/fuzz_targets.c tests/fuzz/fuzz_targets_model.c
               tests/fuzz/fuzz_targets_tok.c tests/fuzz/fuzz_targets_chat.c tests/fuzz/fuzz_targets_train.c tools/msbnb/cli_train_state.c)
target_include_directories(test_io_fuzz_replay PRIVATE ${PROJECT_SOURCE_DIR}/tests/fuzz)
# The CLI driven as a user would: needs the msbnb binary built first.
msbnb_add_test(test_io_cli tests/io/test_cli.c)
add_dependencies(test_io_cli msbnb_cli)
# The whole-checkpoint API (convert.h: msbnb_quantize_model, msbnb_dequantize_model) and
# msbnb_outdir; compares its files with the binary's.
msbnb_add_test(test_io_quantize_model tests/io/test_quantize_model.c)
add_dependencies(test_io_quantize_model msbnb_cli)
# The one option parser of every command (tools/msbnb/cli_opts.c), alone and through the binary.
msbnb_add_test(test_io_cli_opts tests/io/test_cli_opts.c tools/msbnb/cli_opts.c)
add_dependencies(test_io_cli_opts msbnb_cli)
# Linear-time parsers on huge headers (1M tensors, 200k metadata keys, 20k-tensor shards); the
# timeout is the bound an O(n^2) parser overshoots by orders of magnitude (figures: bench parsers).
msbnb_add_test(test_io_parsers_scale tests/io/test_parsers_scale.c)
set_tests_properties(test_io_parsers_scale PROPERTIES TIMEOUT 300)
# adapter_config.json settings: alpha_pattern / rank_pattern / use_rslora honoured, the rest refused.
msbnb_add_test(test_io_peft_config tests/io/test_peft_config.c)
# The audit's CLI defects (issue #15) driven as a user would: one-unit checkpoints, state.json
# checks, divergence, whole output directories, empty inputs, memory limits, one-line errors.
if(MSBNB_SANITIZE)
  set(_robust_flag sanitized)
endif()
add_test(NAME cli_robust COMMAND sh ${PROJECT_SOURCE_DIR}/tests/io/robust_cli.sh $<TARGET_FILE:msbnb_cli>
         ${MSBNB_SHARED_DIR} ${_robust_flag})
set_tests_properties(cli_robust PROPERTIES ENVIRONMENT "OMP_WAIT_POLICY=passive" TIMEOUT 900)
