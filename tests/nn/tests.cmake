# nn: layers, LoRA adapters, optimizers.
msbnb_add_test(test_nn_grad tests/nn/test_nn_grad.c)
msbnb_add_test(test_nn_lora tests/nn/test_nn_lora.c)
msbnb_add_test(test_nn_optim tests/nn/test_nn_optim.c)
msbnb_add_test(test_nn_train tests/nn/test_nn_train.c)
