msbnb_add_test(test_core tests/core/test_core.c)
