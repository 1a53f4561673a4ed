# nn tests: msbnb_add_test(name tests/nn/file.c ...)
