# model training tests
msbnb_add_test(test_backward_ops tests/model/test_backward_ops.c)
msbnb_add_test(test_grad_llama tests/model/test_grad_llama.c)
msbnb_add_test(test_finetune tests/model/test_finetune.c)
