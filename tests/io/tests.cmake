# io tests: msbnb_add_test(name tests/io/file.c ...)
