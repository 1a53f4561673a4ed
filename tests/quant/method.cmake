# error-minimising quantizers (scale search, GPTQ)
msbnb_add_test(test_quant_method tests/quant/test_quant_method.c)
