# quant: formats. Two owners' lists: 4-bit/blockwise (fourbit.cmake) and int8/int4 + the
# functional API (int.cmake).
include(${CMAKE_SOURCE_DIR}/src/quant/fourbit.cmake)
include(${CMAKE_SOURCE_DIR}/src/quant/int.cmake)
include(${CMAKE_SOURCE_DIR}/src/quant/method.cmake)
