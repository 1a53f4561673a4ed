include(${CMAKE_SOURCE_DIR}/tests/quant/fourbit.cmake)
include(${CMAKE_SOURCE_DIR}/tests/quant/int.cmake)
include(${CMAKE_SOURCE_DIR}/tests/quant/method.cmake)
