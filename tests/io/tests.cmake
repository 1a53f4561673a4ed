# io tests: safetensors/config/model directories, bitsandbytes layouts, PEFT adapters, the CLI,
# and the fuzz corpus replayed without libFuzzer.
msbnb_add_test(test_io_safetensors tests/io/test_safetensors.c)
msbnb_add_test(test_io_bnb tests/io/test_bnb.c)
