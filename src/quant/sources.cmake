# quant: formats. Two owners' lists: 4-bit/blockwise (fourbit.cmake) and int8/int4 + the
# functional API (int.cmake).
include(${PROJECT_SOURCE_DIR}/src/quant/fourbit.cmake)
include(${PROJECT_SOURCE_DIR}/src/quant/int.cmake)
include(${PROJECT_SOURCE_DIR}/src/quant/method.cmake)
