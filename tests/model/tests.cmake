# model tests: msbnb_add_test(name tests/model/file.c ...)
