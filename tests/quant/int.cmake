# tests of INT8/INT4/functional API
msbnb_add_test(test_int8 tests/quant/test_int8.c)
msbnb_add_test(test_int4 tests/quant/test_int4.c)
msbnb_add_test(test_qtensor tests/quant/test_qtensor.c)
msbnb_add_test(test_stats tests/quant/test_stats.c)
msbnb_add_test(test_qtensor_wrap tests/quant/test_qtensor_wrap.c)
