# tests of NF4/FP4/blockwise8/double quant
msbnb_add_test(test_golden_bnb tests/quant/test_golden_bnb.c)
msbnb_add_test(test_fourbit tests/quant/test_fourbit.c)
msbnb_add_test(test_blockwise8 tests/quant/test_blockwise8.c)
msbnb_add_test(test_double_quant tests/quant/test_double_quant.c)
