# model inference tests
