include(${PROJECT_SOURCE_DIR}/tests/model/infer.cmake)
include(${PROJECT_SOURCE_DIR}/tests/model/train.cmake)
# calibration-aware quantization: the AWQ fold is exact on the fp32 model
msbnb_add_test(test_awq_fold tests/model/test_awq_fold.c)
