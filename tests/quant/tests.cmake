include(${PROJECT_SOURCE_DIR}/tests/quant/fourbit.cmake)
include(${PROJECT_SOURCE_DIR}/tests/quant/int.cmake)
include(${PROJECT_SOURCE_DIR}/tests/quant/method.cmake)
