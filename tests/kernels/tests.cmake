include(${PROJECT_SOURCE_DIR}/tests/kernels/fourbit.cmake)
include(${PROJECT_SOURCE_DIR}/tests/kernels/int8.cmake)
