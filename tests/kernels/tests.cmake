include(${CMAKE_SOURCE_DIR}/tests/kernels/fourbit.cmake)
include(${CMAKE_SOURCE_DIR}/tests/kernels/int8.cmake)
