# kernels tests: msbnb_add_test(name tests/kernels/file.c ...)
