# tests of NF4/FP4/blockwise8/double quant
msbnb_add_test(test_golden_bnb tests/quant/test_golden_bnb.c)
msbnb_add_test(test_fourbit tests/quant/test_fourbit.c)
