# quant tests: msbnb_add_test(name tests/quant/file.c ...)
