# INT8, INT4, qtensor object, functional API, statistics
list(APPEND MSBNB_SRC
  ${CMAKE_SOURCE_DIR}/src/quant/int8.c
  ${CMAKE_SOURCE_DIR}/src/quant/int4.c
  ${CMAKE_SOURCE_DIR}/src/quant/qtensor.c
  ${CMAKE_SOURCE_DIR}/src/quant/qtensor_convert.c
  ${CMAKE_SOURCE_DIR}/src/quant/stats.c)
list(APPEND MSBNB_SRC_AVX2 ${CMAKE_SOURCE_DIR}/src/quant/x86/int_avx2.c)
list(APPEND MSBNB_SRC_AVX512 ${CMAKE_SOURCE_DIR}/src/quant/x86/int_avx512.c)
